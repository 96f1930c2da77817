"""Storage for enforcement, on a SQLite file and on PostgreSQL: one incident per message
and per job, atomic strikes, action outcomes, mod-log presses, settings and catch-up cursors."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import open_storage
from tests.helpers import GUILD_A, GUILD_B, NOW, WINDOW, record
from tests.promptwarden.storage.old_schemas import script


async def test_same_message_or_same_job_never_gets_two_incidents(database: str) -> None:
    path = database
    async with await open_storage(path) as storage:
        first, created = await record(storage)
        assert created
        # A progress edit: same message.
        assert await record(storage, job_key="other") == (first, False)
        # The job's result: another message, same job.
        assert await record(storage, message_id=21) == (first, False)
        # Another guild may have the very same ids.
        other, created_b = await record(storage, GUILD_B)
        assert created_b and other != first
    # After a restart (the crash case) the keys still hold.
    async with await open_storage(path) as storage:
        assert await record(storage, message_id=22) == (first, False)
        assert len(await storage.find_incidents(GUILD_A)) == 1
        incident = await storage.get_incident(GUILD_A, first)
        assert incident is not None and incident.job_key == "30:abc:2026-03-01"


async def test_incidents_recorded_concurrently_for_one_job_stay_one(database: str) -> None:
    async with await open_storage(database) as storage:
        results = await asyncio.gather(*(record(storage, message_id=100 + i) for i in range(20)))
        assert len({incident_id for incident_id, _ in results}) == 1
        assert sum(created for _, created in results) == 1


async def test_strikes_add_up_within_the_window_and_report_before_and_after(
    database: str,
) -> None:
    async with await open_storage(database) as storage:
        old, _ = await record(storage, message_id=1, job_key="old")
        a, _ = await record(storage, message_id=2, job_key="a")
        b, _ = await record(storage, message_id=3, job_key="b")
        expired = await storage.add_strike(
            GUILD_A, 30, 2, incident_id=old, window=WINDOW, now=NOW - timedelta(days=31)
        )
        assert expired == (0, 2)
        assert await storage.add_strike(GUILD_A, 30, 2, incident_id=a, window=WINDOW, now=NOW) == (
            0,
            2,
        )
        assert await storage.add_strike(GUILD_A, 30, 1, incident_id=b, window=WINDOW, now=NOW) == (
            2,
            3,
        )
        # One strike per incident: a retry after a crash changes nothing.
        assert await storage.add_strike(GUILD_A, 30, 1, incident_id=b, window=WINDOW, now=NOW) == (
            3,
            3,
        )
        assert await storage.active_points(GUILD_A, 30, window=WINDOW, now=NOW) == 3
        assert await storage.active_points(GUILD_B, 30, window=WINDOW, now=NOW) == 0

        assert await storage.revoke_strike_for_incident(GUILD_A, a, now=NOW)
        assert not await storage.revoke_strike_for_incident(GUILD_A, a, now=NOW)
        assert not await storage.revoke_strike_for_incident(GUILD_B, b, now=NOW)
        assert await storage.active_points(GUILD_A, 30, window=WINDOW, now=NOW) == 1
        strikes = await storage.list_strikes(GUILD_A, 30)
        assert [(s.incident_id, s.revoked_at is not None) for s in strikes] == [
            (b, False),
            (a, True),
            (old, False),
        ]


async def test_concurrent_strikes_cross_each_threshold_exactly_once(database: str) -> None:
    """Ten strikes at once: every (before, after) pair is distinct and they chain up."""
    async with await open_storage(database) as storage:
        ids = [(await record(storage, message_id=i, job_key=str(i)))[0] for i in range(10)]
        pairs = await asyncio.gather(
            *(
                storage.add_strike(GUILD_A, 30, 1, incident_id=i, window=WINDOW, now=NOW)
                for i in ids
            )
        )
        assert sorted(pairs) == [(n, n + 1) for n in range(10)]
        assert sum(1 for before, after in pairs if before < 3 <= after) == 1


async def test_two_connections_on_one_file_keep_strikes_exact(database: str) -> None:
    """Two processes on one SQLite file: BEGIN IMMEDIATE serialises the read-insert-read."""
    path = database
    async with await open_storage(path) as one, await open_storage(path) as two:
        ids = [(await record(one, message_id=i, job_key=str(i)))[0] for i in range(8)]
        pairs = await asyncio.gather(
            *(
                (one if n % 2 else two).add_strike(
                    GUILD_A, 30, 1, incident_id=i, window=WINDOW, now=NOW
                )
                for n, i in enumerate(ids)
            )
        )
        assert sorted(pairs) == [(n, n + 1) for n in range(8)]


async def test_action_outcomes_and_presses_are_kept_per_incident_and_guild(
    database: str,
) -> None:
    async with await open_storage(database) as storage:
        incident, _ = await record(storage)
        await storage.record_action_outcome(GUILD_A, incident, "delete", "done", at=NOW)
        await storage.record_action_outcome(
            GUILD_A, incident, "dm_warning", "forbidden", "50007 Cannot send messages", at=NOW
        )
        await storage.record_action_outcome(GUILD_B, incident, "delete", "done")  # not B's
        outcomes = await storage.list_action_outcomes(GUILD_A, incident)
        assert [(o.action, o.outcome, o.detail) for o in outcomes] == [
            ("delete", "done", ""),
            ("dm_warning", "forbidden", "50007 Cannot send messages"),
        ]
        assert await storage.list_action_outcomes(GUILD_B, incident) == []
        with pytest.raises(ValueError, match="outcome must be one of"):
            await storage.record_action_outcome(GUILD_A, incident, "delete", "maybe")  # type: ignore[arg-type]

        await storage.record_modlog_press(GUILD_A, incident, 77, "dismiss", at=NOW)
        presses = await storage.list_modlog_presses(GUILD_A, incident)
        assert [(p.moderator_id, p.action, p.at) for p in presses] == [(77, "dismiss", NOW)]
        assert await storage.set_incident_status(GUILD_A, incident, "dismissed")
        assert not await storage.set_incident_status(GUILD_B, incident, "upheld")
        stored = await storage.get_incident(GUILD_A, incident)
        assert stored is not None and stored.status == "dismissed"


async def test_enforcement_config_and_cursors(database: str) -> None:
    async with await open_storage(database) as storage:
        assert await storage.get_enforcement_config(GUILD_A) is None
        await storage.set_modlog_channel(GUILD_A, 5)
        await storage.set_enforcement_config(GUILD_A, {"moderators_exempt": False})
        assert await storage.get_enforcement_config(GUILD_A) == {"moderators_exempt": False}
        assert await storage.get_modlog_channel(GUILD_A) == 5  # other settings untouched
        assert await storage.get_enforcement_config(GUILD_B) is None

        assert await storage.get_catchup_cursor(GUILD_A, 9) is None
        await storage.set_catchup_cursors({(GUILD_A, 9): 500})
        await storage.set_catchup_cursors({(GUILD_A, 9): 400})  # late, older: ignored
        assert await storage.get_catchup_cursor(GUILD_A, 9) == 500
        assert await storage.get_catchup_cursor(GUILD_B, 9) is None
        # One save moves many channels at once, each only forward.
        await storage.set_catchup_cursors({(GUILD_A, 9): 450, (GUILD_A, 10): 7, (GUILD_B, 9): 8})
        assert await storage.get_catchup_cursor(GUILD_A, 9) == 500
        assert await storage.get_catchup_cursor(GUILD_A, 10) == 7
        assert await storage.get_catchup_cursor(GUILD_B, 9) == 8


async def test_version_one_database_is_upgraded_keeping_its_incidents(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(script(1, "sqlite"))
        conn.execute(
            "INSERT INTO incidents (guild_id, channel_id, message_id, user_id, prompt_excerpt, "
            "categories, severity, verdict, matches, action, created_at) "
            "VALUES (1, 2, 3, 4, 'old', '[]', 'low', 'warn', '[]', 'warn', ?)",
            (NOW.isoformat(),),
        )
        conn.execute("PRAGMA user_version = 1")
    async with await open_storage(path) as storage:
        assert storage.version_at_open == 1
        [old] = await storage.find_incidents(1)
        assert old.prompt_excerpt == "old" and old.job_key is None
        assert await storage.record_incident(
            guild_id=1,
            channel_id=2,
            message_id=3,
            user_id=4,
            prompt_excerpt="again",
            categories=[],
            severity=Severity.LOW,
            verdict=Verdict.WARN,
            matches=[],
            action="warn",
        ) == (old.id, False)


async def test_unsettled_incidents_are_those_with_a_planned_action_not_final(
    tmp_path: Path,
) -> None:
    """What a stop half-way left undone: an action with no outcome, or only failed or
    rate-limited attempts; dismissed, old and other guilds' incidents are left alone."""
    planned = {"block": ("delete", "strike", "dm_warning", "modlog"), "review": ("modlog",)}
    async with await open_storage(tmp_path / "pw.db") as storage:

        async def incident(message_id: int, **fields: object) -> int:
            incident_id, _ = await record(
                storage,
                message_id=message_id,
                job_key=f"job-{message_id}",
                created_at=fields.pop("created_at", NOW),
                **fields,
            )
            return incident_id

        async def settle(incident_id: int, *actions: str, guild_id: int = GUILD_A) -> None:
            for action in actions:
                await storage.record_action_outcome(guild_id, incident_id, action, "done")

        cut_short = await incident(1)
        await settle(cut_short, "delete")
        settled = await incident(2)
        await settle(settled, "delete", "strike", "dm_warning")
        await storage.record_action_outcome(GUILD_A, settled, "modlog", "forbidden")
        retry = await incident(3)
        await settle(retry, "delete", "strike", "modlog")
        await storage.record_action_outcome(GUILD_A, retry, "dm_warning", "rate_limited")
        review = await incident(4, verdict=Verdict.REVIEW, action="review")
        reviewed = await incident(5, verdict=Verdict.REVIEW, action="review")
        await settle(reviewed, "modlog")
        dismissed = await incident(6)
        await storage.set_incident_status(GUILD_A, dismissed, "dismissed")
        await incident(7, created_at=NOW - timedelta(days=2))  # outside the window
        await incident(8, verdict=Verdict.REMIND, action="remind")  # nothing planned for it
        other = await incident(9, guild_id=GUILD_B)

        found = await storage.list_unsettled_incidents(
            GUILD_A, since=NOW - timedelta(days=1), planned=planned
        )
        assert [i.id for i in found] == [cut_short, retry, review]
        assert await storage.list_unsettled_incidents(GUILD_A, since=NOW, planned={}) == []
        other_guild = await storage.list_unsettled_incidents(
            GUILD_B, since=NOW - timedelta(days=1), planned=planned
        )
        assert [i.id for i in other_guild] == [other]
