"""What members and moderators see, over real sockets: closed DMs, and mod-log buttons that
still work after the bot process was restarted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.emulator import BotProcess
from tests.helpers import EmulatedServer as Server
from tests.helpers import outcomes, read_db

CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
EDIT_ORIGINAL = "PATCH /webhooks/{app_id}/{token}/messages/@original"
DEFERRED_UPDATE = 6


def test_a_member_with_closed_dms_is_told_in_the_channel(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    closed = emu.add_member("closed-dms", dms_closed=True)
    start_bot()
    message_id = emu.post(server.watched, closed, "hentai porn, closed doors")
    emu.wait_until(
        lambda: "channel_notice" in outcomes(server.database).get(message_id, {}),
        what="the channel notice for a member whose DMs are closed",
    )

    found = outcomes(server.database)[message_id]
    assert found["delete"] == "done"
    assert found["dm_warning"] == "forbidden"
    assert found["channel_notice"] == "done"
    dm = emu.world.dm_channels[closed.id]
    refused = [c for c in emu.calls("POST /channels/{channel_id}/messages") if c.status == 403]
    assert [c.param("channel_id") for c in refused] == [dm.id]
    notices = [
        c
        for c in emu.calls("POST /channels/{channel_id}/messages")
        if c.ok and c.param("channel_id") == server.watched.id
    ]
    assert len(notices) == 1
    assert f"<@{closed.id}>" in notices[0].body["content"]
    assert "DMs are closed" in notices[0].body["content"]


def _modlog_entry(server: Server) -> tuple[int, dict[str, Any]]:
    emu = server.emulator

    def entries() -> list[dict[str, Any]]:
        return [dict(m) for m in server.modlog.messages.values() if m.get("components")]

    found = emu.in_loop(entries)
    assert len(found) == 1, found
    return int(found[0]["id"]), found[0]


def _button(entry: dict[str, Any], action: str) -> str:
    ids = [b["custom_id"] for row in entry["components"] for b in row["components"]]
    return next(i for i in ids if i.startswith(f"pw:incident:{action}:"))


def test_mod_log_buttons_work_after_a_restart_and_only_for_moderators(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    member = server.members[2]
    bot = start_bot()
    message_id = emu.post(server.watched, member, "severed head dripping blood, gore")
    emu.wait_until(
        lambda: outcomes(server.database).get(message_id, {}).get("modlog") == "done",
        what="the mod-log entry",
    )
    entry_id, entry = _modlog_entry(server)
    dismiss = _button(entry, "dismiss")
    assert bot.stop() == 0
    start_bot()  # a new process: the buttons must still be understood

    refused = emu.press_button(server.modlog, member, entry_id, dismiss)
    pressed = emu.press_button(server.modlog, server.moderator, entry_id, dismiss)
    emu.wait_until(
        lambda: {refused, pressed} <= {c.param("interaction_id") for c in emu.calls(CALLBACK)},
        what="answers to both presses",
    )
    answers = {c.param("interaction_id"): c for c in emu.calls(CALLBACK)}
    assert answers[refused].body["data"]["flags"] & 64  # only the member sees the refusal
    assert answers[pressed].ok
    # The press is acknowledged first; the entry is edited once the work is done.
    assert answers[pressed].body["type"] == DEFERRED_UPDATE
    token = answers[pressed].params["token"]
    emu.wait_until(
        lambda: any(c.ok and c.params["token"] == token for c in emu.calls(EDIT_ORIGINAL)),
        what="the mod-log entry edited after the press",
    )

    rows = read_db(server.database, "SELECT status, message_id FROM incidents")
    assert rows == [("dismissed", message_id)]
    presses = read_db(server.database, "SELECT moderator_id, action FROM modlog_presses")
    assert presses == [(server.moderator.id, "dismiss")]
    revoked = read_db(server.database, "SELECT revoked_at IS NOT NULL FROM strikes")
    assert revoked == [(1,)]  # a false positive costs the member nothing
