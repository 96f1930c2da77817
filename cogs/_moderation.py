"""Moderator decisions shared by commands and buttons: resolve, warn, pardon.

Each one is scoped to the guild it is called for, records who decided, and applies the
guild's settings at once (`promptwarden_settings_changed` is for settings; these change
incidents and strikes, which the watcher reads fresh every time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import discord

from cogs._incident_ui import attempt, warning_embed, with_outcome
from cogs._settle import settle
from cogs._timeouts import guild_config, lift_unearned_timeout
from discordbot import PromptWardenBot
from promptwarden.policy import strike_detail
from promptwarden.screening.decision import Verdict
from promptwarden.storage import Incident, IncidentStatus, StrikeRecord

log = logging.getLogger("promptwarden.commands")

NOTE_LIMIT = 400


@dataclass(frozen=True, slots=True)
class Resolution:
    incident: Incident
    strike_revoked: bool
    notes: tuple[str, ...] = ()  # the appeal decided with it, a timeout lifted


async def resolve_incident(
    bot: PromptWardenBot,
    guild_id: int,
    incident_id: int,
    status: IncidentStatus,
    moderator_id: int,
    note: str = "",
) -> Resolution | None:
    """Mark upheld or dismissed (a dismissal is a false positive: its strike goes).
    None when the guild has no such incident."""
    storage = bot.storage
    incident = await storage.get_incident(guild_id, incident_id)
    if incident is None:
        return None
    await storage.record_modlog_press(
        guild_id, incident_id, moderator_id, "dismiss" if status == "dismissed" else "uphold"
    )
    settled = await settle(bot, guild_id, incident, status, moderator_id)
    revoked = settled.strike_revoked
    if note:
        await storage.record_action_outcome(
            guild_id, incident_id, "note", "done", f"<@{moderator_id}>: {note[:NOTE_LIMIT]}"
        )
    updated = await storage.get_incident(guild_id, incident_id)
    line = ("Dismissed as a false positive" if status == "dismissed" else "Upheld") + (
        f" by <@{moderator_id}>"
        + "".join(f"; {n}" for n in (("strike removed",) if revoked else ()) + settled.notes)
    )
    await annotate_modlog(bot, guild_id, incident_id, line, status)
    return Resolution(updated or incident, revoked, settled.notes)


async def warn_for_incident(
    bot: PromptWardenBot, guild: discord.Guild, incident: Incident, moderator_id: int
) -> str:
    """A moderator upholds a `review` incident as a warning: the same DM and strike as the
    watcher's `warn`, and a timeout when a threshold is crossed. Returns a summary line."""
    storage = bot.storage
    config = await guild_config(bot, guild.id)
    policy = config.strike_policy
    points_to_add = policy.points.get(Verdict.WARN, 0)
    await storage.record_modlog_press(guild.id, incident.id, moderator_id, "warn")
    await storage.set_incident_status(guild.id, incident.id, "upheld")
    now = discord.utils.utcnow()
    points = await storage.active_points(guild.id, incident.user_id, window=policy.window, now=now)
    timeout = None
    if points_to_add:
        before, points = await storage.add_strike(
            guild.id,
            incident.user_id,
            points_to_add,
            incident_id=incident.id,
            window=policy.window,
            now=now,
        )
        await storage.record_action_outcome(
            guild.id, incident.id, "strike", "done", strike_detail(points_to_add, before, points)
        )
        timeout = policy.timeout_for(before, points)
    warned = replace(incident, verdict=Verdict.WARN)
    embed = warning_embed(warned, guild.name, points=points, config=config)

    async def send() -> None:
        user = bot.get_user(incident.user_id) or await bot.fetch_user(incident.user_id)
        await user.send(embed=embed)

    dm = await attempt(storage, guild.id, incident.id, "dm_warning", send)
    line = f"warned (DM: {dm}), {points} active point(s)"
    await annotate_modlog(bot, guild.id, incident.id, f"Warned by <@{moderator_id}>", "upheld")
    if timeout is not None:

        async def time_out() -> None:
            member = await guild.fetch_member(incident.user_id)
            await member.timeout(
                timeout, reason=f"PromptWarden: {points} strike points (incident #{incident.id})"
            )

        outcome = await attempt(
            storage, guild.id, incident.id, "timeout", time_out, detail=str(timeout)
        )
        line += f", timed out ({outcome})"
    return line


@dataclass(frozen=True, slots=True)
class Pardon:
    revoked: list[StrikeRecord]
    lifted: tuple[str, ...]  # what became of a timeout those strikes earned


async def pardon(bot: PromptWardenBot, guild_id: int, user_id: int, moderator_id: int) -> Pardon:
    """Revoke every active strike of the member, recording the pardon on each incident;
    a timeout the strikes earned goes with them."""
    config = await guild_config(bot, guild_id)
    storage = bot.storage
    revoked = await storage.revoke_active_strikes(
        guild_id, user_id, window=config.strike_policy.window, now=discord.utils.utcnow()
    )
    lifted: list[str] = []
    for strike in revoked:
        if strike.incident_id is None:
            continue
        await storage.record_modlog_press(guild_id, strike.incident_id, moderator_id, "pardon")
        incident = await storage.get_incident(guild_id, strike.incident_id)
        if incident is not None and not lifted:
            line = await lift_unearned_timeout(bot, guild_id, incident, moderator_id)
            if line:
                lifted.append(line)
    return Pardon(revoked, tuple(lifted))


async def annotate_modlog(
    bot: PromptWardenBot,
    guild_id: int,
    incident_id: int,
    line: str,
    status: IncidentStatus | None,
) -> bool:
    """Add what a moderator decided by command to the incident's mod-log entry, as its
    buttons do, so the mod-log never shows an open incident that was settled elsewhere.
    Best effort: False when there is no entry or it cannot be edited."""
    storage = bot.storage
    posted = [
        o.detail
        for o in await storage.list_action_outcomes(guild_id, incident_id)
        if o.action == "modlog" and o.outcome == "done" and o.detail.startswith("message ")
    ]
    channel_id = await storage.get_modlog_channel(guild_id)
    if not posted or channel_id is None:
        return False
    try:
        message_id = int(posted[-1].removeprefix("message "))
        channel = bot.get_partial_messageable(channel_id, guild_id=guild_id)
        message = await channel.fetch_message(message_id)
        if not message.embeds:
            return False
        await message.edit(embed=with_outcome(message.embeds[0], line, status))
    except (ValueError, discord.HTTPException) as error:
        log.info("incident %d: mod-log entry not updated: %s", incident_id, error)
        return False
    return True
