"""Bursts and faults over real sockets: every violation gets exactly one incident and its actions.

A burst is pushed as fast as the emulator's socket takes it (about 2% violating, most of
it Midjourney Bot job messages). What a moderator would check is read where they would
see it: the incident log in the bot's database, and the deletes and DMs Discord received.
Counts are CI-sized; PROMPTWARDEN_E2E_SCALE multiplies them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import open_storage
from tests.emulator import BotProcess
from tests.emulator.traffic import ActionLog
from tests.helpers import (
    DM_BUDGET,
    assert_exactly_once,
    dm_total,
    incidents_by_message,
    make_burst,
    outcomes,
    push,
    scaled,
    violations,
    wait_until_settled,
)
from tests.helpers import EmulatedServer as Server

RSS_GROWTH_LIMIT_KB = 64 * 1024  # far above what a few thousand messages need; catches leaks


def test_a_burst_gets_one_incident_and_one_delete_and_dm_per_violation(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    bot = start_bot()
    rss_before = bot.rss_kb()
    planned = make_burst(server, scaled(500))
    ids = push(emu, planned)
    wait_until_settled(server, violations(planned, ids))
    rss_after = bot.rss_kb()

    assert_exactly_once(server, planned, ids)
    generator_violations = [p for p, _ in violations(planned, ids) if p.post.author.bot]
    assert generator_violations, "the burst must include Midjourney Bot violations"
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_KB, (rss_before, rss_after)
    assert "Traceback" not in bot.stderr()


def test_a_dropped_gateway_is_resumed_and_the_missed_events_replayed(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    start_bot()
    planned = make_burst(server, scaled(300))
    half = len(planned) // 2
    ids = push(emu, planned[:half])
    emu.drop_gateway(resumable=True)
    ids += push(emu, planned[half:])  # kept by the session while the bot reconnects
    emu.wait_until(lambda: emu.gateway.resumed.is_set(), what="the bot to RESUME")
    wait_until_settled(server, violations(planned, ids))

    assert emu.gateway.identifies == 1
    assert_exactly_once(server, planned, ids)


def test_a_lost_session_is_caught_up_from_channel_history(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    """Discord drops the session: what was posted meanwhile never arrives as an event."""
    emu = server.emulator
    start_bot()
    planned = make_burst(server, scaled(300))
    half = len(planned) // 2
    ids = push(emu, planned[:half])
    emu.drop_gateway(resumable=False)
    ids += push(emu, planned[half:])  # the gap: only in channel history
    emu.wait_until(lambda: emu.gateway.identifies == 2, timeout=60, what="a new IDENTIFY")
    wait_until_settled(server, violations(planned, ids))

    gap = set(ids[half:])
    assert any(i in gap for _, i in violations(planned, ids)), "the gap must hold violations"
    assert emu.calls("GET /channels/{channel_id}/messages"), "caught up through history"
    assert_exactly_once(server, planned, ids)


def test_live_messages_before_ready_do_not_hide_the_gap_from_catch_up(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    """Live traffic resumes at once after IDENTIFY; on_ready (and catch-up) comes later."""
    emu = server.emulator
    # A ready delay longer than handling the live part makes the order certain.
    start_bot(DISCORD_GUILD_READY_TIMEOUT="3")
    planned = make_burst(server, scaled(150))
    third = len(planned) // 3
    gap_violation = next(p for p in planned[third : 2 * third] if p.violating)
    ids = push(emu, planned[:third])
    emu.drop_gateway(resumable=False)
    ids += push(emu, planned[third : 2 * third])  # the gap
    emu.wait_until(lambda: emu.gateway.identifies == 2, timeout=60, what="a new IDENTIFY")
    ids += push(emu, planned[2 * third :])  # live again, before on_ready
    gap_id = ids[planned.index(gap_violation)]
    emu.wait_until(
        lambda: "dm_warning" in outcomes(server.database).get(gap_id, {}),
        timeout=8,
        what=f"the violation posted in the gap ({gap_violation.tag}) to be caught up",
    )


def test_rest_faults_are_retried_or_recorded_and_no_incident_is_lost(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    start_bot()
    planned = make_burst(server, scaled(300))
    bad = [p for p in planned if p.violating]
    assert len(bad) >= 4
    # Transient faults, retried by discord.py: 429s (retry_after in the body) and a 500.
    emu.fail("DELETE /channels/{channel_id}/messages/{message_id}", 429, times=3)
    emu.fail("POST /channels/{channel_id}/messages", 500, times=1)
    emu.fail("POST /users/@me/channels", 429, times=2, retry_after=0.2)
    first = planned.index(bad[1]) + 1
    ids = push(emu, planned[:first])
    wait_until_settled(server, violations(planned[:first], ids))

    # The next two violations: one already deleted by someone (404), one not allowed (403).
    rest = planned[first:]
    later = [p for p in rest if p.violating]
    gone_at, denied_at = rest.index(later[0]), rest.index(later[1])
    # Ids are given when a message is posted, so each fault is armed just before the
    # part of the burst that ends with the violation it is meant for.
    emu.fail("DELETE /channels/{channel_id}/messages/{message_id}", 404, times=1)
    ids += push(emu, rest[: gone_at + 1])
    emu.wait_until(
        lambda: outcomes(server.database).get(ids[-1], {}).get("delete") == "not_found",
        what="the 404 delete to be recorded",
    )
    emu.fail("DELETE /channels/{channel_id}/messages/{message_id}", 403, times=1)
    ids += push(emu, rest[gone_at + 1 : denied_at + 1])
    emu.wait_until(
        lambda: outcomes(server.database).get(ids[-1], {}).get("delete") == "forbidden",
        what="the 403 delete to be recorded",
    )
    ids += push(emu, rest[denied_at + 1 :])
    expected = violations(planned, ids)
    gone, denied = ids[first + gone_at], ids[first + denied_at]
    wait_until_settled(server, expected)

    incidents = incidents_by_message(server.database)
    assert set(incidents) == {i for _, i in expected}
    assert all(n == 1 for n in incidents.values())
    found = outcomes(server.database)
    assert found[gone]["delete"] == "not_found"
    assert found[denied]["delete"] == "forbidden"
    assert emu.message_exists(server.watched, denied)  # still there for a moderator
    for _, message_id in expected:
        if message_id not in (gone, denied):
            assert found[message_id]["delete"] == "done", found[message_id]
        assert found[message_id]["dm_warning"] == "done", found[message_id]
    statuses = Counter(c.status for c in emu.calls())
    assert statuses[429] == 5 and statuses[500] == 1, statuses


@pytest.mark.parametrize(
    "count",
    [
        pytest.param(600, id="within-queue"),
        # Beyond the work queue's 1,000 slots: producers wait in line, in order, and the
        # cursor never passes a message still waiting in memory.
        pytest.param(3000, id="under-backpressure"),
    ],
)
def test_killed_mid_burst_and_restarted_every_violation_has_one_incident(
    server: Server, start_bot: Callable[..., BotProcess], count: int
) -> None:
    emu = server.emulator
    bot = start_bot()
    planned = make_burst(server, scaled(count))
    half = len(planned) // 2
    ids = push(emu, planned[:half])
    first_half = violations(planned[:half], ids)
    emu.wait_until(
        lambda: len(incidents_by_message(server.database)) >= max(1, len(first_half) // 2),
        what="some incidents before the kill",
    )
    bot.kill()
    # A warning's DM slot is taken with its incident; a kill can waste the slots of the
    # warnings it cut short: those with no recorded DM outcome yet.
    at_kill = outcomes(server.database)
    killed_in_flight = sum(
        "dm_warning" not in at_kill.get(m, {}) for m in incidents_by_message(server.database)
    )
    ids += push(emu, planned[half:])  # posted while the bot is down
    start_bot()
    expected = violations(planned, ids)
    # Every violation settled, those the kill cut short included (a violation's actions run
    # apart from its channel's queue, so the last message is not necessarily the last done).
    wait_until_settled(server, expected, timeout=60)

    incidents = incidents_by_message(server.database)
    assert set(incidents) == {i for _, i in expected}, "incidents for exactly the violations"
    assert all(n == 1 for n in incidents.values()), incidents.most_common(3)
    actions = ActionLog(emu).update()
    found = outcomes(server.database)
    cut_short = []
    for p, message_id in expected:
        assert not emu.message_exists(server.watched, message_id), p.tag  # removed
        assert len([c for c in actions.deletes.get(message_id, []) if c.ok]) == 1, p.tag
        if "dm_warning" in found.get(message_id, {}):
            # A delete whose outcome the kill kept from being written is tried again on
            # restart and finds the message gone.
            assert found[message_id]["delete"] in ("done", "not_found"), (p.tag, found[message_id])
            if found[message_id]["dm_warning"] == "rate_limited":
                # The guild's DM budget (DM_BUDGET a minute) is spent: queued for later.
                # A warning's slot is taken with its incident, and incidents are acted on
                # side by side: a kill may cut short a few warnings whose slots were taken.
                assert dm_total(actions) >= DM_BUDGET - killed_in_flight, p.tag
                continue
            assert found[message_id]["dm_warning"] == "done", (p.tag, found[message_id])
            # a DM whose outcome the kill kept from being written is sent again: at least once
            assert actions.dm_posts(p.tag), p.tag
        else:
            cut_short.append(p.tag)
    # Killed between a delete and writing its outcome: the restart resumes the incident.
    assert not cut_short, cut_short


def test_an_incident_cut_short_by_a_kill_is_finished_after_restart(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    """The state a SIGKILL leaves between the delete and its outcome, built directly."""
    emu = server.emulator
    member = server.members[0]
    gone = emu.in_loop(emu.world.ids.next)  # deleted on Discord, so not in history

    async def record() -> None:
        storage = await open_storage(server.database)
        async with storage:
            await storage.record_incident(
                guild_id=server.guild_id,
                channel_id=server.watched.id,
                message_id=gone,
                user_id=member.id,
                prompt_excerpt="hentai porn #900000",
                categories=["sexual"],
                severity=Severity.HIGH,
                verdict=Verdict.BLOCK,
                matches=[],
                action="block",
            )

    asyncio.run(record())
    start_bot()
    actions = ActionLog(emu)
    emu.wait_until(
        lambda: bool(actions.update().dm_posts("#900000")),
        timeout=5,
        what="the warning DM of the incident cut short",
    )
    emu.wait_until(
        lambda: {"strike", "modlog"} <= outcomes(server.database).get(gone, {}).keys(),
        timeout=5,
        what="the strike and mod-log entry of the incident cut short",
    )
    found = outcomes(server.database)[gone]
    assert found == {
        "delete": "not_found",  # already gone: recorded, and the rest still happens
        "strike": "done",
        "dm_warning": "done",
        "modlog": "done",
    }, found
    assert len(actions.update().dm_posts("#900000")) == 1
    assert incidents_by_message(server.database)[gone] == 1


def test_a_violation_waiting_on_discord_does_not_hold_up_the_next_one_in_its_channel(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    first, second = server.members[0], server.members[1]

    async def no_reminders() -> None:
        # Only the warnings open DM channels here, so the 429 below meets the first one.
        storage = await open_storage(server.database)
        async with storage:
            await storage.set_privacy_config(
                server.guild_id, {"dm_per_minute": DM_BUDGET, "reminders_enabled": False}
            )

    asyncio.run(no_reminders())
    start_bot()
    # Discord rate limits opening the first member's DM channel for a second.
    emu.fail("POST /users/@me/channels", 429, times=1, retry_after=1.0)
    slow = emu.post(server.watched, first, "hentai porn, closed doors")
    quick = emu.post(server.watched, second, "hentai porn behind closed doors")
    emu.wait_until(
        lambda: all(
            outcomes(server.database).get(i, {}).get("dm_warning") == "done" for i in (slow, quick)
        ),
        what="both warnings",
    )

    calls = emu.calls()
    deletes = [
        n
        for n, c in enumerate(calls)
        if c.ok and c.route == "DELETE /channels/{channel_id}/messages/{message_id}"
    ]
    opened = [
        n
        for n, c in enumerate(calls)
        if c.ok
        and c.route == "POST /users/@me/channels"
        and str(c.body.get("recipient_id")) == str(first.id)
    ]
    [quick_deleted] = [n for n in deletes if calls[n].param("message_id") == quick]
    # The second message was removed while the first one's warning still waited for Discord.
    assert quick_deleted < opened[0]
    assert incidents_by_message(server.database) == Counter({slow: 1, quick: 1})
