"""A backlog beyond what intake holds, a database locked for a while, a stop mid-backlog.

Read where a moderator would look: the incident log, the deletes Discord received, and the
bot's own log (no error for a clean stop).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from tests.emulator import BotProcess
from tests.emulator.traffic import DELETE_MESSAGE
from tests.helpers import EmulatedServer as Server
from tests.helpers import (
    assert_exactly_once,
    incidents_by_message,
    make_burst,
    outcomes,
    push,
    scaled,
    violations,
    wait_until_settled,
)

HISTORY = "GET /channels/{channel_id}/messages"
SMALL_INTAKE = {"INTAKE_MAX_MESSAGES": "40", "INTAKE_CHANNEL_MESSAGES": "20"}


def test_a_backlog_larger_than_intake_gets_one_incident_per_violation(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    bot = start_bot(**SMALL_INTAKE)
    # An allowed prompt is screened as it arrives and never held: intake holds the
    # violations, so a quarter of the burst violates, five times what intake holds.
    planned = make_burst(server, scaled(800), violating_share=0.25)
    reads_at_start = len(emu.calls(HISTORY))
    ids = push(emu, planned)
    wait_until_settled(server, violations(planned, ids), timeout=300)

    assert_exactly_once(server, planned, ids)
    # The overflow was not held: it was read back from channel history, page by page.
    assert len(emu.calls(HISTORY)) - reads_at_start >= len(planned) // 100
    assert "Traceback" not in bot.stderr()


def test_a_prompt_is_removed_soon_after_a_locked_database_recovers(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    bot = start_bot()
    # Violations only: those after the first are screened on arrival and queued behind
    # it, then let go with it when its recording fails, and must be screened again.
    planned = make_burst(server, 4, violating_share=1.0)
    lock = sqlite3.connect(server.database, timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # held past the bot's busy_timeout
        ids = push(emu, planned)
        message_id = ids[-1]  # the closing message always violates
        bot.wait_for_log("database is locked", timeout=60)  # a write gave up
        assert emu.message_exists(server.watched, message_id)  # fail-open, for now
    finally:
        lock.rollback()
        lock.close()
    # Within a minute of the database recovering, without any reconnect.
    emu.wait_until(
        lambda: not emu.message_exists(server.watched, message_id),
        timeout=60,
        what="the prompt to be removed once the database recovered",
    )
    wait_until_settled(server, violations(planned, ids), timeout=60)
    assert_exactly_once(server, planned, ids)
    assert emu.gateway.identifies == 1 and emu.gateway.resumes == 0


def test_a_stop_with_a_backlog_is_clean_and_the_rest_is_handled_on_restart(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    bot = start_bot(**SMALL_INTAKE)
    # A quarter violating: a channel's incidents are recorded in batches, so a backlog of
    # a dozen is through before the stop arrives.
    planned = make_burst(server, scaled(600), violating_share=0.25)
    ids = push(emu, planned)
    emu.wait_until(
        lambda: len(incidents_by_message(server.database)) >= 1,
        timeout=60,
        what="the bot to work through the backlog",
    )
    assert bot.stop(timeout=60) == 0
    log = bot.stderr()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    handled_before = len(emu.calls(DELETE_MESSAGE))
    assert handled_before < len(violations(planned, ids)), "stopped with a backlog"

    start_bot(**SMALL_INTAKE)
    wait_until_settled(server, violations(planned, ids), timeout=300)
    assert_exactly_once(server, planned, ids, dm_at_least_once=True)
    assert all("delete" in outcomes(server.database)[i] for _, i in violations(planned, ids))
