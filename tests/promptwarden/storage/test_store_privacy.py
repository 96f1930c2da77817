"""Storage for privacy on a real SQLite file: reminder claims, the DM budget, appeals,
a person's export and erasure across guilds, retention, and hygiene (mode, excerpt cap)."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import (
    ERASED_TEXT,
    EXCERPT_LIMIT,
    ReminderRecord,
    Storage,
    open_storage,
)
from promptwarden.storage.models import EXPORT_KIND, REPORT_KIND
from tests.helpers import GUILD_A, GUILD_B
from tests.promptwarden.storage.old_schemas import script

ME, SOMEONE_ELSE = 30, 31
NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
DAY = timedelta(days=1)


async def incident(
    storage: Storage,
    guild_id: int = GUILD_A,
    user_id: int = ME,
    message_id: int = 20,
    created_at: datetime = NOW,
    excerpt: str = "a nude knight",
) -> int:
    incident_id, _ = await storage.record_incident(
        guild_id=guild_id,
        channel_id=10,
        message_id=message_id,
        user_id=user_id,
        prompt_excerpt=excerpt,
        categories=["sexual"],
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=[{"category": "sexual", "term": "nude", "text": "nude", "source": "rule:sexual"}],
        action="block",
        created_at=created_at,
        job_key=f"{user_id}:{message_id}",
    )
    return incident_id


# `storage` (conftest) runs every test below once on SQLite and once on PostgreSQL.


async def test_one_reminder_per_person_kind_and_interval(storage: Storage) -> None:
    month = timedelta(days=30)
    claim = storage.claim_reminder
    assert await claim(GUILD_A, ME, "private_mode", interval=month, now=NOW)
    assert not await claim(GUILD_A, ME, "private_mode", interval=month, now=NOW + 29 * DAY)
    # Another kind, another guild, another person: each has its own allowance.
    assert await claim(GUILD_A, ME, "personal_info:email", interval=month, now=NOW + DAY)
    assert await claim(GUILD_B, ME, "private_mode", interval=month, now=NOW + DAY)
    assert await claim(GUILD_A, SOMEONE_ELSE, "private_mode", interval=month, now=NOW + DAY)
    assert await claim(GUILD_A, ME, "private_mode", interval=month, now=NOW + 30 * DAY)
    # A released claim (never sent) lets the next prompt try again.
    later = NOW + 61 * DAY
    assert await claim(GUILD_A, ME, "private_mode", interval=month, now=later)
    await storage.release_reminder(GUILD_A, ME, "private_mode", sent_at=later)
    assert await claim(GUILD_A, ME, "private_mode", interval=month, now=later)


async def test_concurrent_claims_send_one_reminder(storage: Storage) -> None:
    results = await asyncio.gather(
        *(
            storage.claim_reminder(GUILD_A, ME, "private_mode", interval=DAY, now=NOW)
            for _ in range(20)
        )
    )
    assert results.count(True) == 1


async def test_reminder_state_is_read_and_written_for_many_members_at_once(
    storage: Storage,
) -> None:
    many = list(range(1000, 1700))  # more ids than one SQLite statement binds
    await storage.set_reminders_enabled(ME, False, now=NOW)
    await storage.set_reminders_enabled(many[-1], True, now=NOW)
    assert await storage.get_reminder_choices([ME, SOMEONE_ELSE, *many]) == {
        ME: False,
        many[-1]: True,
    }
    assert await storage.get_reminder_choices([]) == {}

    await storage.save_reminders(
        [ReminderRecord(GUILD_A, u, "private_mode", NOW) for u in many]
        + [
            ReminderRecord(GUILD_B, ME, "private_mode", NOW),
            ReminderRecord(GUILD_A, ME, "export", NOW),
        ]
    )
    sent = await storage.get_reminders_sent(GUILD_A, "private_mode", [ME, *many])
    assert sent == dict.fromkeys(many, NOW)  # ME got one in guild B and an export only
    # A later time moves a record forward; an older batch never moves it back.
    await storage.save_reminders(
        [
            ReminderRecord(GUILD_A, many[0], "private_mode", NOW + DAY),
            ReminderRecord(GUILD_A, many[1], "private_mode", NOW - DAY),
        ]
    )
    sent = await storage.get_reminders_sent(GUILD_A, "private_mode", many[:2])
    assert sent == {many[0]: NOW + DAY, many[1]: NOW}
    # What was saved in a batch is what a claim sees: no second reminder in the interval.
    assert not await storage.claim_reminder(
        GUILD_A, many[2], "private_mode", interval=DAY, now=NOW + DAY / 2
    )
    await storage.save_reminders([])
    assert (await storage.export_member_data(many[1])).reminders[0].sent_at == NOW


async def test_dm_budget_counts_per_guild_and_minute(storage: Storage) -> None:
    takes = [await storage.take_dm_budget(GUILD_A, limit=3, now=NOW) for _ in range(5)]
    assert takes == [True, True, True, False, False]
    assert await storage.take_dm_budget(GUILD_B, limit=3, now=NOW)  # its own budget
    # The next minute starts afresh.
    next_minute = NOW.replace(second=0) + timedelta(minutes=1)
    assert await storage.take_dm_budget(GUILD_A, limit=3, now=next_minute)
    concurrent = await asyncio.gather(
        *(storage.take_dm_budget(GUILD_B, limit=5, now=next_minute) for _ in range(20))
    )
    assert concurrent.count(True) == 5


async def test_one_open_appeal_per_incident_and_decided_once(storage: Storage) -> None:
    first = await incident(storage)
    appeal = await storage.create_appeal(GUILD_A, first, ME, "it was a statue", now=NOW)
    assert appeal is not None and appeal.status == "open" and appeal.reason == "it was a statue"
    assert await storage.create_appeal(GUILD_A, first, ME, "again", now=NOW) is None
    # Only the incident's own member, only in its guild.
    assert await storage.create_appeal(GUILD_A, first, SOMEONE_ELSE, "me too") is None
    assert await storage.create_appeal(GUILD_B, first, ME, "wrong guild") is None
    with pytest.raises(ValueError, match="1000"):
        await storage.create_appeal(GUILD_A, first, ME, "x" * 1001)

    assert await storage.get_appeal(GUILD_B, appeal.id) is None
    assert await storage.decide_appeal(GUILD_B, appeal.id, "accepted", 77) is None
    decided = await storage.decide_appeal(GUILD_A, appeal.id, "rejected", 77, now=NOW + DAY)
    assert decided is not None and not decided.strike_revoked
    assert (decided.appeal.status, decided.appeal.moderator_id) == ("rejected", 77)
    assert await storage.decide_appeal(GUILD_A, appeal.id, "accepted", 78) is None
    assert [a.status for a in await storage.list_appeals(GUILD_A, first)] == ["rejected"]
    stored = await storage.get_incident(GUILD_A, first)
    assert stored is not None and stored.status == "upheld"


async def test_accepting_an_appeal_revokes_the_strike_and_dismisses_at_once(
    storage: Storage,
) -> None:
    first = await incident(storage)
    await storage.add_strike(GUILD_A, ME, 2, incident_id=first, window=30 * DAY, now=NOW)
    appeal = await storage.create_appeal(GUILD_A, first, ME, "it was a statue", now=NOW)
    assert appeal is not None
    decisions = await asyncio.gather(
        storage.decide_appeal(GUILD_A, appeal.id, "accepted", 77, now=NOW),
        storage.decide_appeal(GUILD_A, appeal.id, "rejected", 78, now=NOW),
    )
    [decided] = [d for d in decisions if d is not None]
    assert decided.appeal.status == "accepted" and decided.strike_revoked
    stored = await storage.get_incident(GUILD_A, first)
    assert stored is not None and stored.status == "dismissed"
    assert await storage.active_points(GUILD_A, ME, window=30 * DAY, now=NOW) == 0


async def test_export_spans_guilds_and_holds_only_that_person(storage: Storage) -> None:
    mine_a = await incident(storage, GUILD_A, ME, 1)
    mine_b = await incident(storage, GUILD_B, ME, 2)
    theirs = await incident(storage, GUILD_A, SOMEONE_ELSE, 3)
    await storage.add_strike(GUILD_A, ME, 2, incident_id=mine_a, window=30 * DAY, now=NOW)
    await storage.add_strike(GUILD_A, SOMEONE_ELSE, 1, incident_id=theirs, window=30 * DAY)
    await storage.record_action_outcome(GUILD_B, mine_b, "delete", "done")
    await storage.record_action_outcome(GUILD_A, theirs, "delete", "done")
    await storage.create_appeal(GUILD_B, mine_b, ME, "context matters")
    await storage.set_reminders_enabled(ME, False, now=NOW)
    await storage.claim_reminder(GUILD_A, ME, "private_mode", interval=DAY, now=NOW)
    await storage.claim_reminder(GUILD_A, SOMEONE_ELSE, "private_mode", interval=DAY, now=NOW)

    data = await storage.export_member_data(ME)

    assert {(i.guild_id, i.id) for i in data.incidents} == {(GUILD_A, mine_a), (GUILD_B, mine_b)}
    assert [(s.guild_id, s.incident_id) for s in data.strikes] == [(GUILD_A, mine_a)]
    assert [(g, a.incident_id, a.action) for g, a in data.actions] == [(GUILD_B, mine_b, "delete")]
    assert [a.reason for a in data.appeals] == ["context matters"]
    assert data.preferences is not None and data.preferences.reminders_enabled is False
    assert [(r.guild_id, r.user_id) for r in data.reminders] == [(GUILD_A, ME)]


async def test_erasure_redacts_prompts_and_keeps_the_actions(storage: Storage) -> None:
    mine = await incident(storage, GUILD_A, ME, 1)
    elsewhere = await incident(storage, GUILD_B, ME, 2)
    theirs = await incident(storage, GUILD_A, SOMEONE_ELSE, 3)
    await storage.add_strike(GUILD_A, ME, 2, incident_id=mine, window=30 * DAY, now=NOW)
    await storage.record_action_outcome(GUILD_A, mine, "delete", "done")
    await storage.create_appeal(GUILD_A, mine, ME, "my reason")
    await storage.set_reminders_enabled(ME, False)
    await storage.claim_reminder(GUILD_A, ME, "private_mode", interval=DAY, now=NOW)

    report = await storage.erase_member_data(ME)

    assert (report.preferences, report.reminders) == (1, 1)
    assert (report.incidents_redacted, report.appeals_redacted) == (2, 1)
    for guild_id, incident_id in ((GUILD_A, mine), (GUILD_B, elsewhere)):
        stored = await storage.get_incident(guild_id, incident_id)
        assert stored is not None and stored.prompt_excerpt == ERASED_TEXT
        assert stored.action == "block" and stored.categories == ("sexual",)
        assert all("text" not in m for m in stored.matches)
        assert stored.matches[0]["term"] == "nude"  # which rule fired stays
    assert [o.action for o in await storage.list_action_outcomes(GUILD_A, mine)] == ["delete"]
    assert await storage.active_points(GUILD_A, ME, window=30 * DAY, now=NOW) == 2
    [appeal] = await storage.list_appeals(GUILD_A, mine)
    assert appeal.reason == ERASED_TEXT
    assert await storage.get_reminder_choices([ME]) == {}
    assert await storage.claim_reminder(GUILD_A, ME, "private_mode", interval=DAY, now=NOW)
    other = await storage.get_incident(GUILD_A, theirs)
    assert other is not None and other.prompt_excerpt == "a nude knight"


async def test_erasure_takes_the_reasons_of_reports_but_keeps_the_rate_limits(
    storage: Storage,
) -> None:
    theirs = await incident(storage, GUILD_A, SOMEONE_ELSE, 1)
    # I reported someone else's prompt, with a reason in my own words.
    await storage.record_modlog_press(GUILD_A, theirs, ME, REPORT_KIND)
    await storage.record_action_outcome(GUILD_A, theirs, REPORT_KIND, "done", "my words about it")
    await storage.record_action_outcome(GUILD_A, theirs, "delete", "done", "10/1")
    assert await storage.claim_reminder(GUILD_A, ME, EXPORT_KIND, interval=DAY, now=NOW)
    assert await storage.claim_reminder(GUILD_A, ME, REPORT_KIND, interval=DAY, now=NOW)

    await storage.erase_member_data(ME)

    details = {o.action: o.detail for o in await storage.list_action_outcomes(GUILD_A, theirs)}
    assert details == {REPORT_KIND: ERASED_TEXT, "delete": "10/1"}
    # Erasing does not hand back the export or report spent today.
    assert not await storage.claim_reminder(GUILD_A, ME, EXPORT_KIND, interval=DAY, now=NOW)
    assert not await storage.claim_reminder(GUILD_A, ME, REPORT_KIND, interval=DAY, now=NOW)


async def test_retention_deletes_old_incidents_with_their_rows_in_that_guild_only(
    storage: Storage,
) -> None:
    old = await incident(storage, GUILD_A, ME, 1, created_at=NOW - 200 * DAY)
    recent = await incident(storage, GUILD_A, ME, 2, created_at=NOW - 10 * DAY)
    old_b = await incident(storage, GUILD_B, ME, 3, created_at=NOW - 200 * DAY)
    await storage.add_strike(GUILD_A, ME, 2, incident_id=old, window=30 * DAY, now=NOW)
    await storage.record_action_outcome(GUILD_A, old, "delete", "done")
    await storage.record_modlog_press(GUILD_A, old, 77, "uphold")
    await storage.create_appeal(GUILD_A, old, ME, "please")

    assert await storage.stored_guild_ids() == [GUILD_A, GUILD_B]
    assert await storage.delete_incidents_before(GUILD_A, NOW - 180 * DAY) == 1

    assert await storage.get_incident(GUILD_A, old) is None
    assert await storage.get_incident(GUILD_A, recent) is not None
    assert await storage.get_incident(GUILD_B, old_b) is not None
    assert await storage.list_strikes(GUILD_A, ME) == []
    assert await storage.list_action_outcomes(GUILD_A, old) == []
    assert await storage.list_modlog_presses(GUILD_A, old) == []
    assert await storage.list_appeals(GUILD_A, old) == []


async def test_old_reminder_history_is_forgotten_per_guild(storage: Storage) -> None:
    await storage.claim_reminder(GUILD_A, ME, "private_mode", interval=DAY, now=NOW - 40 * DAY)
    await storage.claim_reminder(GUILD_A, ME, "personal_info:email", interval=DAY, now=NOW)
    await storage.claim_reminder(GUILD_B, ME, "private_mode", interval=DAY, now=NOW - 40 * DAY)

    assert await storage.stored_guild_ids() == [GUILD_A, GUILD_B]
    assert await storage.delete_reminders_before(GUILD_A, NOW - 30 * DAY) == 1

    kinds = {(r.guild_id, r.kind) for r in (await storage.export_member_data(ME)).reminders}
    assert kinds == {(GUILD_A, "personal_info:email"), (GUILD_B, "private_mode")}


async def test_database_file_is_owner_only_and_excerpts_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "pw.db"
    async with await open_storage(path) as storage:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        long_id = await incident(storage, excerpt="a knight " * 500)
        stored = await storage.get_incident(GUILD_A, long_id)
        assert stored is not None and len(stored.prompt_excerpt) == EXCERPT_LIMIT
        assert stored.prompt_excerpt.endswith("…")


async def test_schema_2_databases_upgrade_with_their_incidents(tmp_path: Path) -> None:
    path = tmp_path / "old.db"

    with sqlite3.connect(path) as conn:
        for version in (1, 2):
            conn.executescript(script(version, "sqlite"))
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute(
            "INSERT INTO incidents (guild_id, channel_id, message_id, user_id, prompt_excerpt, "
            "categories, severity, verdict, matches, action, status, created_at) VALUES "
            "(1, 2, 3, 4, 'x', '[]', 'high', 'block', '[]', 'block', 'open', ?)",
            (NOW.isoformat(),),
        )
    async with await open_storage(path) as storage:
        assert storage.version_at_open == 2
        assert [a.id for a in await storage.find_incidents(1)] == [1]
        assert await storage.create_appeal(1, 1, 4, "upgrade kept it") is not None
