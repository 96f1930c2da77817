"""What a moderator's decision sets right besides the incident's status, and a timeout no
crash can lose, through the real bot and SimCord:

- Dismiss (mod-log button, `/incidents resolve`, an accepted appeal) lifts a timeout the
  dismissed strike alone earned, and records it;
- Dismiss or Uphold on an incident with an open appeal decides the appeal the same way
  and tells the member;
- a strike stored without its timeout (the call failed or the process died) gets the
  timeout when the message is seen again, exactly once.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import simcord

from tests.helpers import GORE, NUDE, World, field, world


async def timed_out_twice_over(w: World) -> tuple[Any, Any]:
    """A block (2 points) then a warning (1 point): the warning crosses 3, one hour."""
    await w.member.send(w.channel, NUDE)
    await w.member.send(w.channel, GORE)
    first, second = await w.incidents()
    assert w.timed_out_until(w.member) is not None
    assert (await w.outcomes(second))["timeout"] == "done"
    return first, second


def timeout_patches(w: World) -> list[Any]:
    path = f"/guilds/{w.guild.id}/members/{w.member.id}"
    return [
        r
        for r in w.env.http_requests
        if r.method == "PATCH"
        and r.path == path
        and "communication_disabled_until" in (r.json or {})
    ]


async def test_dismissing_the_strike_that_earned_a_timeout_lifts_it(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    _, second = await timed_out_twice_over(w)
    entry = w.modlog_entries()[-1]

    await w.moderator.click(entry, custom_id=f"pw:incident:dismiss:{second.id}")

    assert w.timed_out_until(w.member) is None
    assert await w.points() == 2
    actions = field(w.modlog_entries()[-1].embeds[0], "Moderator actions")
    assert f"Dismissed as a false positive by <@{w.moderator.id}>" in actions
    assert "strike removed; timeout lifted" in actions
    records = await w.bot.storage.list_action_outcomes(w.guild.id, second.id)
    [lifted] = [r for r in records if r.action == "timeout_lifted"]
    assert (lifted.outcome, lifted.detail) == ("done", "2 point(s) left")
    assert timeout_patches(w)[-1].json["communication_disabled_until"] is None


async def test_a_timeout_still_earned_stays(simcord_env: simcord.Env) -> None:
    """Dismissing the earlier block leaves 1 point: below 3, but that strike did not
    earn the timeout (the warning did), so the timeout stays until a moderator acts."""
    w = await world(simcord_env)
    first, _ = await timed_out_twice_over(w)

    await w.moderator.click(w.modlog_entries()[0], custom_id=f"pw:incident:dismiss:{first.id}")

    assert w.timed_out_until(w.member) is not None
    assert "timeout_lifted" not in await w.outcomes(first)
    assert "timeout lifted" not in field(w.modlog_entries()[0].embeds[0], "Moderator actions")


async def test_resolve_dismissed_lifts_the_timeout_and_says_so(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    _, second = await timed_out_twice_over(w)

    result = await w.moderator.slash(
        w.channel, "incidents resolve", incident_id=second.id, outcome="dismissed"
    )

    assert result.ephemeral and result.response is not None
    assert result.response.content == (
        f"Incident #{second.id} marked dismissed; its strike was removed; timeout lifted."
    )
    assert w.timed_out_until(w.member) is None


async def test_a_timeout_given_by_a_moderator_afterwards_is_not_lifted(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    _, second = await timed_out_twice_over(w)
    await w.env.advance_time(30 * 60)
    # A moderator times the member out for a day in Discord itself.
    guild = w.bot.get_guild(w.guild.id)
    assert guild is not None
    member = await guild.fetch_member(w.member.id)
    await member.timeout(timedelta(days=1), reason="a moderator's own decision")

    await w.moderator.click(w.modlog_entries()[-1], custom_id=f"pw:incident:dismiss:{second.id}")

    assert w.timed_out_until(w.member) is not None
    assert "timeout_lifted" not in await w.outcomes(second)


async def test_a_pardon_lifts_the_timeout_its_strikes_earned(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await timed_out_twice_over(w)

    result = await w.moderator.slash(w.channel, "strikes pardon", user=w.member)

    assert result.response is not None
    assert "2 strike(s), 3 point(s) revoked (recorded); timeout lifted." in (
        result.response.content
    )
    assert w.timed_out_until(w.member) is None


# ---------------------------------------------------------------- open appeals


async def open_appeal(w: World, incident: Any) -> None:
    dm = next(m for m in reversed(w.dms()) if m.embeds)
    shown = await w.member.user.click(dm, custom_id=f"pw:appeal:open:{w.guild.id}:{incident.id}")
    assert shown.modal is not None
    await w.member.user.submit_modal(shown, {"reason": "It is a war painting."})


async def test_dismiss_accepts_an_open_appeal_and_tells_the_member(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    _, second = await timed_out_twice_over(w)
    incident_entry = w.modlog_entries()[-1]
    await open_appeal(w, second)
    appeal_entry = w.modlog_entries()[-1]
    assert appeal_entry.components  # Accept and Reject

    await w.moderator.click(incident_entry, custom_id=f"pw:incident:dismiss:{second.id}")

    [appeal] = await w.bot.storage.list_appeals(w.guild.id, second.id)
    assert (appeal.status, appeal.moderator_id) == ("accepted", w.moderator.id)
    answer = w.dms()[-1].content
    assert f"appeal of incident #{second.id} in Prompt Art was accepted" in answer
    assert "Your timeout was lifted." in answer
    assert w.timed_out_until(w.member) is None
    actions = field(w.modlog_entries()[-2].embeds[0], "Moderator actions")
    assert f"appeal #{appeal.id} accepted, member told by DM" in actions
    assert "timeout lifted" in actions
    decided = w.modlog_entries()[-1]
    assert decided.components == []  # no Accept/Reject left on a settled appeal
    assert f"Accepted by <@{w.moderator.id}>" in field(decided.embeds[0], "Decision")
    assert decided.embeds[0].footer.text == "Status: accepted"


async def test_uphold_rejects_an_open_appeal(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)
    [incident] = await w.incidents()
    incident_entry = w.modlog_entries()[-1]
    await open_appeal(w, incident)

    await w.moderator.click(incident_entry, custom_id=f"pw:incident:uphold:{incident.id}")

    [appeal] = await w.bot.storage.list_appeals(w.guild.id, incident.id)
    assert appeal.status == "rejected"
    assert "was rejected by the moderators; the decision stands" in w.dms()[-1].content
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "upheld"
    assert await w.points() == 1
    assert w.modlog_entries()[-1].components == []


async def test_accepting_an_appeal_lifts_the_timeout(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    _, second = await timed_out_twice_over(w)
    await open_appeal(w, second)

    await w.moderator.click(w.modlog_entries()[-1], label="Accept")

    assert w.timed_out_until(w.member) is None
    decision = field(w.modlog_entries()[-1].embeds[0], "Decision")
    assert "strike removed, timeout lifted; member told by DM" in decision
    assert "Your timeout was lifted." in w.dms()[-1].content


# ---------------------------------------------------------------- a timeout never lost


async def test_a_timeout_that_failed_is_applied_when_the_message_is_seen_again(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, NUDE)  # 2 points
    # The strike that crosses 3 is stored, then Discord fails the timeout (as a crash
    # between the two would leave it: a strike without its timeout).
    w.env.inject_error("PATCH", f"/guilds/{w.guild.id}/members/{w.member.id}", status=500)
    sent = await w.member.send(w.channel, GORE)
    assert w.timed_out_until(w.member) is None
    second = (await w.incidents())[-1]
    assert (await w.outcomes(second))["timeout"] == "failed"
    assert await w.points() == 3

    await w.member.edit(sent, GORE + " at dusk")  # seen again: the incident resumes

    assert w.timed_out_until(w.member) is not None
    records = await w.bot.storage.list_action_outcomes(w.guild.id, second.id)
    assert [r.outcome for r in records if r.action == "timeout"] == ["failed", "done"]
    assert await w.points() == 3  # no second strike
    assert len([m for m in w.dms() if m.embeds]) == 2  # no second warning

    await w.member.edit(sent, GORE + " at night")  # and never twice
    assert len(timeout_patches(w)) == 2  # the one that failed, the one that held


async def test_a_strike_stored_without_its_record_still_earns_its_timeout(
    simcord_env: simcord.Env,
) -> None:
    """The process stopped after the strike was stored and before anything else about it
    was: re-adding it changes nothing, yet the step it made is known and acted on."""
    w = await world(simcord_env)
    await w.member.send(w.channel, NUDE)  # 2 points
    w.env.inject_error("PATCH", f"/guilds/{w.guild.id}/members/{w.member.id}", status=500)
    sent = await w.member.send(w.channel, GORE)
    second = (await w.incidents())[-1]
    # What a crash right after the strike's transaction leaves: no record of the strike.
    path = w.bot.settings.database_path
    with sqlite3.connect(path) as db:
        db.execute(
            "DELETE FROM incident_actions WHERE incident_id = ? "
            "AND action IN ('strike', 'timeout')",
            (second.id,),
        )
    db.close()

    await w.member.edit(sent, GORE + " at dusk")

    assert w.timed_out_until(w.member) is not None
    records = await w.bot.storage.list_action_outcomes(w.guild.id, second.id)
    assert [(r.action, r.outcome, r.detail) for r in records if r.action == "strike"] == [
        ("strike", "done", "+1: 2 -> 3")
    ]
    assert await w.points() == 3


async def test_a_dismissed_incident_seen_again_gets_no_timeout(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, NUDE)
    w.env.inject_error("PATCH", f"/guilds/{w.guild.id}/members/{w.member.id}", status=500)
    sent = await w.member.send(w.channel, GORE)
    second = (await w.incidents())[-1]
    await w.moderator.click(w.modlog_entries()[-1], custom_id=f"pw:incident:dismiss:{second.id}")

    await w.member.edit(sent, GORE + " at dusk")

    assert w.timed_out_until(w.member) is None
    assert len(timeout_patches(w)) == 1  # only the attempt that failed
