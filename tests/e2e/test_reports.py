""" "Report prompt" over real sockets: members send prompts to the review queue, privately,
once a minute each, and many reports of one message stay one incident."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cogs.reports import NOT_WATCHED, THANKS, TOO_SOON
from tests.emulator import MIDJOURNEY_BOT_ID, BotProcess, Emulator, User
from tests.emulator.world import Channel
from tests.helpers import Backend, read_db
from tests.helpers import EmulatedServer as Server

CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
MODAL = 9
EPHEMERAL = 64


def callback(emu: Emulator, interaction_id: int) -> dict[str, Any]:
    def found() -> list[Any]:
        return [c for c in emu.calls(CALLBACK) if c.param("interaction_id") == interaction_id]

    emu.wait_until(lambda: bool(found()), what=f"the answer to interaction {interaction_id}")
    (call,) = found()
    body: dict[str, Any] = call.body
    return body


def private_text(emu: Emulator, interaction_id: int) -> str:
    body = callback(emu, interaction_id)
    assert body["type"] == 4 and body["data"]["flags"] & EPHEMERAL, body
    return str(body["data"]["content"])


def report(
    emu: Emulator, channel: Channel, reporter: User, message_id: int, reason: str = ""
) -> str:
    """Apps > Report prompt on a message, then the form sent: what the reporter is told."""
    opened = callback(
        emu, emu.invoke_message_command(channel, reporter, "Report prompt", message_id)
    )
    if opened["type"] != MODAL:
        return str(opened["data"]["content"])
    form = opened["data"]
    inputs = [c["custom_id"] for row in form["components"] for c in row["components"]]
    assert inputs == ["reason"]
    # A person takes a moment to fill in the form. discord.py registers a modal only once
    # the HTTP answer that showed it has returned, so a form sent the same instant could
    # arrive before the bot knows it (under load, it did): wait as a person would.
    time.sleep(0.5)
    return private_text(
        emu, emu.submit_modal(channel, reporter, form["custom_id"], {"reason": reason})
    )


INCIDENTS = "SELECT id, source, message_id, user_id, verdict, status FROM incidents ORDER BY id"


def incidents(server: Server) -> list[tuple[object, ...]]:
    return read_db(server.database, INCIDENTS)


def modlog_entries(emu: Emulator, server: Server) -> list[dict[str, Any]]:
    return [
        c.body["embeds"][0]
        for c in emu.calls("POST /channels/{channel_id}/messages")
        if c.ok and c.param("channel_id") == server.modlog.id and c.body.get("embeds")
    ]


def test_reports_reach_the_review_queue_once_per_message_and_once_a_minute_per_member(
    server: Server, backend: Backend, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    author, first, second = server.members[:3]
    start_bot(**backend.env)
    message_id = emu.post(server.watched, author, "a portrait of the mayor in a bathtub")

    assert report(emu, server.watched, first, message_id, "  a real   person ") == THANKS
    emu.wait_until(lambda: len(modlog_entries(emu, server)) == 1, what="the review entry")
    (incident,) = backend.query(INCIDENTS)
    incident_id = incident[0]
    assert incident[1:] == ("report", message_id, author.id, "review", "open")
    (entry,) = modlog_entries(emu, server)
    assert entry["title"] == f"Incident #{incident_id} · Needs review"
    assert {"name": "Raised by", "value": "Member reports", "inline": True} in entry["fields"]

    # Another member reports the same message: still one incident, one mod-log entry.
    assert report(emu, server.watched, second, message_id, "") == THANKS
    assert backend.query(INCIDENTS) == [incident]
    reporters = backend.query(
        f"SELECT moderator_id FROM modlog_presses WHERE incident_id = {incident_id} "
        "AND action = 'report' ORDER BY id",
    )
    assert reporters == [(first.id,), (second.id,)]
    reasons = backend.query(
        f"SELECT detail FROM incident_actions WHERE incident_id = {incident_id} "
        "AND action = 'report' ORDER BY id",
    )
    assert reasons == [("a real person",), ("",)]
    # Nobody was warned or struck on a report alone.
    assert backend.query("SELECT id FROM strikes") == []
    assert author.id not in emu.world.dm_channels

    # Within a minute a member's next report is refused, whatever the message.
    other = emu.post(server.watched, author, "a cat on a windowsill")
    assert report(emu, server.watched, first, other, "spam") == TOO_SOON
    assert report(emu, server.watched, first, message_id) == TOO_SOON
    assert [row[2] for row in backend.query(INCIDENTS)] == [message_id]
    assert len(modlog_entries(emu, server)) == 1

    # The review queue shows it to moderators.
    queue = emu.invoke(server.modlog, server.moderator, "incidents", "queue")
    shown = callback(emu, queue)["data"]
    assert [e["title"] for e in shown["embeds"]] == [entry["title"]]

    # A minute on, the member may report again. The bot reads the time of the last report
    # from its database, so moving that time back stands in for the minute passing.
    backend.execute(
        "UPDATE reminders_sent SET sent_at = '2000-01-01T00:00:00+00:00' "
        f"WHERE user_id = {first.id} AND kind = 'report'"
    )
    assert report(emu, server.watched, first, other, "spam") == THANKS
    assert [row[2] for row in backend.query(INCIDENTS)] == [message_id, other]
    emu.wait_until(lambda: len(modlog_entries(emu, server)) == 2, what="the second review entry")
    assert report(emu, server.watched, first, message_id) == TOO_SOON


def test_a_report_joins_screenings_incident_and_finds_a_generator_prompts_requester(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    author, reporter, late = server.members[3:6]
    start_bot()
    # Screening warns about it (not removed), and a member reports it too.
    flagged = emu.post(server.watched, author, "a pile of cocaine on a mirror")
    emu.wait_until(lambda: len(incidents(server)) == 1, what="screening's incident")
    assert report(emu, server.watched, reporter, flagged, "drugs") == THANKS
    assert [row[1:3] for row in incidents(server)] == [("screening", flagged)]
    assert report(emu, server.watched, reporter, flagged) == TOO_SOON

    # A generator's echo of a member's job: the requester is the one reported.
    midjourney = emu.user(MIDJOURNEY_BOT_ID)
    echo = emu.post(
        server.watched,
        midjourney,
        f"**a quiet lake at dawn** - <@{author.id}> (fast)",
        mentions=[author],
    )
    assert report(emu, server.watched, late, echo) == THANKS
    emu.wait_until(lambda: len(incidents(server)) == 2, what="the report's incident")
    assert incidents(server)[-1][1:4] == ("report", echo, author.id)


def test_reports_outside_watched_channels_and_of_ones_own_message_are_refused(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    author, reporter = server.members[6:8]
    start_bot()
    elsewhere = emu.post(server.other, author, "hello there")
    answer = callback(
        emu, emu.invoke_message_command(server.other, reporter, "Report prompt", elsewhere)
    )
    assert answer["type"] == 4 and answer["data"]["content"] == NOT_WATCHED
    own = emu.post(server.watched, reporter, "my own prompt")
    answer = callback(
        emu, emu.invoke_message_command(server.watched, reporter, "Report prompt", own)
    )
    assert answer["data"]["flags"] & EPHEMERAL
    assert incidents(server) == []
