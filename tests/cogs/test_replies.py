"""Every click, form and slow command is acknowledged before its Discord calls, so a slow
or failing call cannot cost the user their answer (Discord forgets an interaction not
answered within 3 s: "Unknown interaction", 10062).

Through the real bot and SimCord. `slow` makes one Discord route take seconds of SimCord's
virtual time; SimCord enforces the 3 s deadline on that clock, so the same tests against
callbacks that answered last fail with 10062.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import discord
import pytest
import simcord
from discord.http import Route

from cogs._replies import SOMETHING_WENT_WRONG
from tests.helpers import (
    GORE,
    Server,
    World,
    appeal,
    close_dms,
    field,
    privacy_world,
    warned,
    world,
)

SLOW = 5.0  # seconds a slowed Discord call takes: past the 3 s deadline
DEFERRED_MESSAGE = 5  # "thinking…", answered by the first follow-up
DEFERRED_UPDATE = 6  # a click that will edit its own message
EPHEMERAL = 64

MEMBER = "/guilds/{guild_id}/members/{member_id}"
MESSAGE = "/channels/{channel_id}/messages/{message_id}"
MESSAGES = "/channels/{channel_id}/messages"

Slow = Callable[[str, str], None]


@pytest.fixture
def slow(simcord_env: simcord.Env, monkeypatch: pytest.MonkeyPatch) -> Slow:
    """`slow(method, route)`: the simulated Discord takes SLOW seconds to answer calls to
    that route (a discord.py route template), as under latency or a rate limit."""
    http: Any = simcord_env.bot.http
    real = http.request
    slowed: set[tuple[str, str]] = set()

    async def request(route: Route, **kwargs: Any) -> Any:
        if (route.method, route.path) in slowed:
            await asyncio.sleep(SLOW)
        return await real(route, **kwargs)

    monkeypatch.setattr(http, "request", request)
    return lambda method, path: slowed.add((method, path))


class Calls:
    """The bot's REST calls from now on, to check what came first."""

    def __init__(self, env: simcord.Env) -> None:
        self.env = env
        self.start = len(env.http_requests)

    def all(self) -> list[Any]:
        return self.env.http_requests[self.start :]

    def first_is_acknowledgement(self, callback_type: int, *, ephemeral: bool = False) -> None:
        calls = self.all()
        assert calls, "the interaction was never answered"
        first = calls[0]
        assert (first.method, first.path.rsplit("/", 1)[-1]) == ("POST", "callback"), [
            (c.method, c.path) for c in calls
        ]
        assert first.json["type"] == callback_type
        flags = (first.json.get("data") or {}).get("flags", 0)
        assert bool(flags & EPHEMERAL) == ephemeral

    def paths(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.all()]


async def gore_incident(w: World) -> tuple[Any, discord.Message]:
    await w.member.send(w.channel, GORE)
    [incident] = await w.incidents()
    [entry] = w.modlog_entries()
    return incident, entry


# ---------------------------------------------------------------- mod-log buttons


@pytest.mark.parametrize(
    ("action", "line"),
    [
        ("dismiss", "Dismissed as a false positive by <@{mod}>; strike removed"),
        ("uphold", "Upheld by <@{mod}>"),
        ("timeout", "Time out 1 h by <@{mod}>: done"),
        ("delete", "Delete message by <@{mod}>: done"),
    ],
)
async def test_every_mod_log_button_acknowledges_before_calling_discord(
    simcord_env: simcord.Env, action: str, line: str
) -> None:
    w = await world(simcord_env)
    incident, entry = await gore_incident(w)
    calls = Calls(simcord_env)

    result = await w.moderator.click(entry, custom_id=f"pw:incident:{action}:{incident.id}")

    calls.first_is_acknowledgement(DEFERRED_UPDATE)
    assert not result.ephemeral and result.followups == []
    actions = field(w.modlog_entries()[0].embeds[0], "Moderator actions")
    assert line.format(mod=w.moderator.id) in actions
    # The entry keeps its buttons, as before.
    assert w.modlog_entries()[0].components


@pytest.mark.parametrize(
    ("action", "slowed", "line", "outcome"),
    [
        ("timeout", ("GET", MEMBER), "Time out 1 h by <@{mod}>: done", "manual_timeout"),
        ("delete", ("DELETE", MESSAGE), "Delete message by <@{mod}>: done", "manual_delete"),
    ],
)
async def test_a_slow_discord_call_still_gets_the_moderator_their_answer(
    simcord_env: simcord.Env,
    slow: Slow,
    action: str,
    slowed: tuple[str, str],
    line: str,
    outcome: str,
) -> None:
    w = await world(simcord_env)
    incident, entry = await gore_incident(w)
    slow(*slowed)

    result = await w.moderator.click(entry, custom_id=f"pw:incident:{action}:{incident.id}")
    assert result.acknowledged  # at once, while Discord is still busy
    # A timeout reads the member twice: for the role check, then to time them out.
    await simcord_env.advance_time(2 * SLOW)

    actions = field(w.modlog_entries()[0].embeds[0], "Moderator actions")
    assert line.format(mod=w.moderator.id) in actions
    assert (await w.outcomes(incident))[outcome] == "done"


async def test_deleting_a_message_already_gone_still_answers(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    incident, entry = await gore_incident(w)
    simcord_env.inject_error(
        "DELETE",
        f"/channels/{w.channel.id}/messages/*",
        status=404,
        code=10008,
        message="Unknown Message",
    )
    calls = Calls(simcord_env)

    await w.moderator.click(entry, custom_id=f"pw:incident:delete:{incident.id}")

    calls.first_is_acknowledgement(DEFERRED_UPDATE)
    actions = field(w.modlog_entries()[0].embeds[0], "Moderator actions")
    assert f"Delete message by <@{w.moderator.id}>: already gone" in actions
    assert (await w.outcomes(incident))["manual_delete"] == "not_found"


async def test_a_click_that_fails_after_acknowledging_tells_the_moderator(
    simcord_env: simcord.Env, caplog: pytest.LogCaptureFixture
) -> None:
    w = await world(simcord_env)
    incident, entry = await gore_incident(w)
    # Editing the entry fails: the incident is settled, the moderator must hear of it.
    simcord_env.inject_error("PATCH", "/webhooks/*/messages/@original", status=500)

    result = await w.moderator.click(entry, custom_id=f"pw:incident:dismiss:{incident.id}")

    [note] = result.followups
    assert note.ephemeral and note.content == SOMETHING_WENT_WRONG
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "dismissed"
    # Still logged for the operator, by discord.py's handler for view errors.
    assert any(
        r.exc_info and isinstance(r.exc_info[1], discord.HTTPException) for r in caplog.records
    )


async def test_refusals_are_still_answered_directly(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    incident, entry = await gore_incident(w)

    refused = await w.member.click(entry, custom_id=f"pw:incident:delete:{incident.id}")
    await w.bot.storage.delete_incidents_before(w.guild.id, simcord_env.now().replace(year=2100))
    gone = await w.moderator.click(entry, custom_id=f"pw:incident:delete:{incident.id}")

    assert refused.ephemeral and "Manage Messages" in refused.response.content
    assert gone.ephemeral and "no longer exists" in gone.response.content
    assert GORE in w.messages()  # nothing was deleted


# ---------------------------------------------------------------- appeals


async def test_accept_with_the_members_dms_closed_still_answers_the_moderator(
    simcord_env: simcord.Env,
) -> None:
    w = await privacy_world(simcord_env)
    incident, dm = await warned(w)
    await appeal(w, dm, incident, "It is a museum painting.")
    entry = w.modlog_entries()[-1]
    close_dms(simcord_env, w.member)
    calls = Calls(simcord_env)

    await w.moderator.click(entry, label="Accept")

    calls.first_is_acknowledgement(DEFERRED_UPDATE)
    decided = w.modlog_entries()[-1]
    decision = field(decided.embeds[0], "Decision")
    assert f"Accepted by <@{w.moderator.id}>" in decision
    assert "the member could not be told by DM (forbidden)" in decision
    assert decided.components == []
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "dismissed"
    assert (await w.outcomes(incident))["dm_appeal_outcome"][0] == "forbidden"


async def test_a_slow_dm_during_accept_still_answers_the_moderator(
    simcord_env: simcord.Env, slow: Slow
) -> None:
    w = await privacy_world(simcord_env)
    incident, dm = await warned(w)
    await appeal(w, dm, incident, "It is a museum painting.")
    entry = w.modlog_entries()[-1]
    slow("POST", MESSAGES)

    result = await w.moderator.click(entry, label="Accept")
    assert result.acknowledged
    await simcord_env.advance_time(SLOW)

    decision = field(w.modlog_entries()[-1].embeds[0], "Decision")
    assert f"Accepted by <@{w.moderator.id}>" in decision and "member told by DM" in decision
    assert "was accepted" in w.dms()[-1].content


async def test_dismissing_an_appealed_incident_with_dms_closed_still_answers(
    simcord_env: simcord.Env,
) -> None:
    """Dismiss decides the open appeal too and DMs the member: the DM fails, the
    moderator still sees the whole outcome on the entry."""
    w = await privacy_world(simcord_env)
    incident, dm = await warned(w)
    await appeal(w, dm, incident, "It is a museum painting.")
    [appealed] = await w.bot.storage.list_appeals(w.guild.id, incident.id)
    entry = next(
        e for e in w.modlog_entries() if (e.embeds[0].title or "").startswith("Incident #")
    )
    close_dms(simcord_env, w.member)
    calls = Calls(simcord_env)

    await w.moderator.click(entry, custom_id=f"pw:incident:dismiss:{incident.id}")

    calls.first_is_acknowledgement(DEFERRED_UPDATE)
    updated = next(m for m in w.modlog.history() if m.id == entry.id)
    actions = field(updated.embeds[0], "Moderator actions")
    assert f"Dismissed as a false positive by <@{w.moderator.id}>" in actions
    assert (
        f"appeal #{appealed.id} accepted, the member could not be told by DM (forbidden)" in actions
    )
    [decided] = await w.bot.storage.list_appeals(w.guild.id, incident.id)
    assert decided.status == "accepted"


async def test_the_appeal_form_answers_even_when_the_mod_log_is_slow(
    simcord_env: simcord.Env, slow: Slow
) -> None:
    w = await privacy_world(simcord_env)
    _, dm = await warned(w)
    shown = await w.member.user.click(dm, label="Appeal")
    slow("POST", MESSAGES)
    calls = Calls(simcord_env)

    sent = await w.member.user.submit_modal(shown, {"reason": "It is a museum painting."})
    assert sent.acknowledged
    await simcord_env.advance_time(SLOW)

    calls.first_is_acknowledgement(DEFERRED_MESSAGE)
    assert "sent to the moderators of Prompt Art" in sent.response.content
    assert w.modlog_entries()[-1].embeds[0].description == "It is a museum painting."


# ---------------------------------------------------------------- review queue and commands


async def test_warn_from_the_queue_with_a_slow_dm_still_updates_the_queue(
    simcord_env: simcord.Env, slow: Slow
) -> None:
    s = Server(simcord_env)
    await s.watch()
    await s.storage.set_screening_rules(s.guild.id, {"actions": {"violence": "review"}})
    s.bot.dispatch("promptwarden_settings_changed", s.guild.id)
    await simcord_env.settle()
    await s.member.send(s.channel, GORE)
    [incident] = await s.storage.find_incidents(s.guild.id)
    queue = await s.slash(s.moderator, "incidents queue")
    slow("POST", MESSAGES)
    calls = Calls(simcord_env)

    pressed = await s.moderator.click(
        queue.response.message, custom_id=f"pw:queue:warn:{incident.id}"
    )
    await simcord_env.advance_time(SLOW)

    calls.first_is_acknowledgement(DEFERRED_UPDATE)
    after = pressed.response
    assert after.ephemeral
    assert after.content.startswith(f"Incident #{incident.id}: warned (DM: done)")
    assert "The review queue is empty." in after.content


@pytest.mark.parametrize(
    ("command", "options", "says"),
    [
        ("incidents export", {}, "1 incident(s)"),
        ("incidents resolve", {"outcome": "dismissed"}, "marked dismissed"),
        ("strikes pardon", {}, "Pardoned"),
    ],
)
async def test_slow_moderator_commands_acknowledge_first(
    simcord_env: simcord.Env, command: str, options: dict[str, Any], says: str
) -> None:
    w = await world(simcord_env)
    incident, _ = await gore_incident(w)
    if command == "incidents resolve":
        options = {**options, "incident_id": incident.id}
    if command == "strikes pardon":
        options = {**options, "user": w.member}
    calls = Calls(simcord_env)

    result = await w.moderator.slash(w.channel, command, **options)

    calls.first_is_acknowledgement(DEFERRED_MESSAGE, ephemeral=True)
    assert result.ephemeral and says in result.response.content


async def test_privacy_export_with_a_slow_dm_still_answers(
    simcord_env: simcord.Env, slow: Slow
) -> None:
    w = await privacy_world(simcord_env)
    await warned(w)
    slow("POST", MESSAGES)
    calls = Calls(simcord_env)

    result = await w.member.slash(w.channel, "privacy export")
    await simcord_env.advance_time(SLOW)

    calls.first_is_acknowledgement(DEFERRED_MESSAGE, ephemeral=True)
    assert result.ephemeral
    assert result.response.content.startswith("I sent you a DM with your data: 1 incident(s)")
    assert w.dms()[-1].attachments


async def test_confirming_erasure_acknowledges_first(simcord_env: simcord.Env) -> None:
    w = await privacy_world(simcord_env)
    await warned(w)
    asked = await w.member.slash(w.channel, "privacy delete")
    calls = Calls(simcord_env)

    done = await w.member.click(asked.response, label="Delete my data")

    calls.first_is_acknowledgement(DEFERRED_UPDATE)
    assert done.response.content.startswith("Done. Your preferences and reminder history")
    assert done.response.components == []
