"""The violation path's writes on both backends: an incident recorded with its strike in
one transaction, and many steps' outcomes written together."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import IncidentRequest, OutcomeRow, Storage, open_storage
from promptwarden.storage import schema as t

GUILD_A, GUILD_B = 111111111111111111, 222222222222222222
MEMBER = 30
NOW = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = timedelta(days=30)


def fields(guild_id: int = GUILD_A, message_id: int = 20, **more: Any) -> dict[str, Any]:
    return {
        "guild_id": guild_id,
        "channel_id": 10,
        "message_id": message_id,
        "user_id": MEMBER,
        "prompt_excerpt": "a nude knight",
        "categories": ["sexual"],
        "severity": Severity.HIGH,
        "verdict": Verdict.BLOCK,
        "matches": [{"category": "sexual", "term": "nude"}],
        "action": "block",
        "created_at": NOW,
        "job_key": f"{MEMBER}:{message_id}",
        **more,
    }


async def test_an_incident_is_recorded_with_its_strike_and_settled_steps(
    storage: Storage,
) -> None:
    recorded = await storage.record_incident_with(
        fields(),
        strike_points=2,
        window=WINDOW,
        now=NOW,
        settled={"delete": "blocked by AutoMod before anyone saw it"},
    )

    assert recorded.created and recorded.strike == (0, 2) and recorded.points == 2
    assert recorded.incident == await storage.get_incident(GUILD_A, recorded.incident.id)
    assert recorded.incident.prompt_excerpt == "a nude knight"
    history = await storage.list_action_outcomes(GUILD_A, recorded.incident.id)
    assert [(r.action, r.outcome, r.detail) for r in history] == [
        ("strike", "done", "+2: 0 -> 2"),
        ("delete", "skipped", "blocked by AutoMod before anyone saw it"),
    ]
    [strike] = await storage.list_strikes(GUILD_A, MEMBER)
    assert (strike.incident_id, strike.points, strike.points_before, strike.points_after) == (
        recorded.incident.id,
        2,
        0,
        2,
    )

    # The same job seen again (its result message): the stored incident, nothing added.
    again = await storage.record_incident_with(
        fields(message_id=21, job_key=f"{MEMBER}:20"), strike_points=2, window=WINDOW, now=NOW
    )
    assert not again.created and again.incident == recorded.incident
    assert again.strike is None and again.points is None
    assert len(await storage.list_strikes(GUILD_A, MEMBER)) == 1
    assert len(await storage.list_action_outcomes(GUILD_A, recorded.incident.id)) == 2


async def test_without_a_strike_the_member_s_points_are_read_with_the_incident(
    storage: Storage,
) -> None:
    await storage.record_incident_with(fields(), strike_points=3, window=WINDOW, now=NOW)
    warned = await storage.record_incident_with(
        fields(message_id=30, verdict=Verdict.WARN, action="warn"), window=WINDOW, now=NOW
    )
    assert warned.created and warned.strike is None and warned.points == 3
    assert await storage.list_action_outcomes(GUILD_A, warned.incident.id) == []
    quiet = await storage.record_incident_with(fields(message_id=40), now=NOW)
    assert quiet.created and quiet.points is None


async def test_a_channel_s_incidents_are_recorded_together_in_order(storage: Storage) -> None:
    first = await storage.record_incident_with(fields(message_id=5), now=NOW)
    batch = [
        IncidentRequest(fields(message_id=n), strike_points=1, window=WINDOW, dm_limit=2)
        for n in (6, 7, 8)
    ]
    # A message recorded already, in the batch again (read back after a failure): found.
    batch.insert(1, IncidentRequest(fields(message_id=5), strike_points=1, window=WINDOW))
    recorded = await storage.record_incidents_with(batch, now=NOW)

    assert [r.created for r in recorded] == [True, False, True, True]
    assert recorded[1].incident == first.incident
    # Strikes add up in message order, and the DM budget is spent in that order too.
    assert [r.strike for r in recorded] == [(0, 1), None, (1, 2), (2, 3)]
    assert [r.dm_allowed for r in recorded] == [True, None, True, False]
    assert [r.incident.message_id for r in recorded] == [6, 5, 7, 8]
    assert len(await storage.list_strikes(GUILD_A, MEMBER)) == 3


async def test_a_warning_s_dm_slot_is_taken_with_its_incident_within_the_budget(
    storage: Storage,
) -> None:
    allowed = [
        (await storage.record_incident_with(fields(message_id=n), now=NOW, dm_limit=2)).dm_allowed
        for n in range(3)
    ]
    assert allowed == [True, True, False]
    # The same minute's budget, whichever way a slot is asked for.
    assert not await storage.take_dm_budget(GUILD_A, limit=2, now=NOW)
    assert await storage.take_dm_budget(GUILD_A, limit=2, now=NOW + timedelta(minutes=1))
    assert (await storage.record_incident_with(fields(message_id=9), now=NOW)).dm_allowed is None


async def test_incidents_recorded_at_once_cross_a_threshold_exactly_once(
    storage: Storage,
) -> None:
    results = await asyncio.gather(
        *(
            storage.record_incident_with(
                fields(message_id=100 + n), strike_points=1, window=WINDOW, now=NOW
            )
            for n in range(10)
        )
    )
    assert sorted(r.strike for r in results if r.strike) == [(n, n + 1) for n in range(10)]


async def test_two_batches_striking_the_same_members_in_opposite_orders_both_commit(
    storage: Storage,
) -> None:
    def batch(first: int, members: list[int]) -> list[IncidentRequest]:
        return [
            IncidentRequest(
                fields(message_id=first + k, user_id=member, job_key=f"{member}:{first + k}"),
                strike_points=1,
                window=WINDOW,
            )
            for k, member in enumerate(members)
        ]

    # Two channels' batches at once, their members in opposite orders: on PostgreSQL each
    # member's strikes are serialised by a lock, which must not deadlock the two.
    one, two = await asyncio.wait_for(
        asyncio.gather(
            storage.record_incidents_with(batch(200, [31, 32, 33]), now=NOW),
            storage.record_incidents_with(batch(300, [33, 32, 31]), now=NOW),
        ),
        timeout=30,
    )
    assert all(r.created for r in [*one, *two])
    for member in (31, 32, 33):
        strikes = await storage.list_strikes(GUILD_A, member)
        assert sorted((s.points_before, s.points_after) for s in strikes) == [(0, 1), (1, 2)]


async def test_many_outcomes_are_written_together_each_on_its_own_guild(
    storage: Storage,
) -> None:
    a = (await storage.record_incident_with(fields(), now=NOW)).incident
    b = (await storage.record_incident_with(fields(GUILD_B), now=NOW)).incident

    await storage.add_outcomes(
        [
            OutcomeRow(GUILD_A, a.id, "delete", "done", "", NOW),
            OutcomeRow(GUILD_B, b.id, "delete", "not_found", "gone", NOW),
            OutcomeRow(GUILD_A, a.id, "modlog", "done", "", NOW, modlog=(77, 88)),
            # Another guild's incident id: never written, whatever the id.
            OutcomeRow(GUILD_B, a.id, "dm_warning", "done", "", NOW, modlog=(1, 2)),
        ]
    )

    history = await storage.list_action_outcomes(GUILD_A, a.id)
    assert [(r.action, r.outcome) for r in history] == [("delete", "done"), ("modlog", "done")]
    [gone] = await storage.list_action_outcomes(GUILD_B, b.id)
    assert (gone.action, gone.outcome, gone.detail) == ("delete", "not_found", "gone")
    stored = await storage.get_incident(GUILD_A, a.id)
    assert stored is not None and (stored.modlog_channel_id, stored.modlog_message_id) == (77, 88)
    other = await storage.get_incident(GUILD_B, b.id)
    assert other is not None and other.modlog_message_id is None


async def test_a_large_batch_keeps_every_outcome_in_order(storage: Storage) -> None:
    a = (await storage.record_incident_with(fields(), now=NOW)).incident
    rows = [OutcomeRow(GUILD_A, a.id, "note", "done", f"line {n}", NOW) for n in range(103)]

    await storage.add_outcomes(rows)

    history = await storage.list_action_outcomes(GUILD_A, a.id)
    assert [r.detail for r in history] == [f"line {n}" for n in range(103)]


async def test_a_batch_that_fails_part_way_leaves_none_of_its_outcomes(storage: Storage) -> None:
    a = (await storage.record_incident_with(fields(), now=NOW)).incident
    rows = [OutcomeRow(GUILD_A, a.id, "note", "done", f"line {n}", NOW) for n in range(3)]
    bad = OutcomeRow(GUILD_A, a.id, "note", "done", "line 3", NOW, modlog=(1, 2**70))

    with pytest.raises(Exception):  # noqa: B017 - each driver names an overflow its own way
        await storage.add_outcomes([*rows, bad])

    assert await storage.list_action_outcomes(GUILD_A, a.id) == []


async def test_writes_from_many_tasks_at_once_each_land_whole(storage: Storage) -> None:
    records = [
        storage.record_incident_with(
            fields(message_id=100 + n), strike_points=1, window=WINDOW, now=NOW
        )
        for n in range(20)
    ]
    cursors = [storage.set_catchup_cursors({(GUILD_A, 10): 500 + n}) for n in range(20)]
    done = await asyncio.gather(*records, *cursors)

    recorded = [r for r in done if r is not None]
    assert len({r.incident.id for r in recorded}) == 20
    for r in recorded:
        outcomes = await storage.list_action_outcomes(GUILD_A, r.incident.id)
        assert [o.action for o in outcomes] == ["strike"]
    assert sorted(r.strike or (0, 0) for r in recorded) == [(n, n + 1) for n in range(20)]
    assert await storage.get_catchup_cursor(GUILD_A, 10) == 519


async def test_sqlite_refuses_a_transaction_that_awaits_anything_but_its_statements(
    tmp_path: Path,
) -> None:
    # A SQLite transaction runs whole in the database's thread; a body that waited on the
    # event loop there would hold the write lock for as long as it waited.
    async with await open_storage(tmp_path / "promptwarden.db") as storage:

        async def body(conn: Any) -> None:
            await conn.execute(
                insert(t.catchup_cursors).values(guild_id=GUILD_A, channel_id=1, last_message_id=5)
            )
            await asyncio.sleep(0)

        with pytest.raises(RuntimeError, match="awaited something besides SQL"):
            await storage.backend.transaction(body)

        assert await storage.get_catchup_cursor(GUILD_A, 1) is None
        await storage.set_catchup_cursors({(GUILD_A, 1): 6})  # the connection is still usable
        assert await storage.get_catchup_cursor(GUILD_A, 1) == 6
