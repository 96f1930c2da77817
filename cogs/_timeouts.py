"""Strike timeouts after the fact: lifting one a dismissed incident no longer earns, and
finishing one a crash left unapplied.

Shared by the mod-log buttons, `/incidents resolve`, appeals and the watcher; the rule
for each decision is pure (promptwarden.policy), this module only reads the records and
calls Discord.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import discord

from cogs._outcomes import attempt
from discordbot import PromptWardenBot
from promptwarden.enforcement import EnforcementConfig
from promptwarden.policy import parse_strike_detail, timeout_to_lift
from promptwarden.storage import ActionRecord, Incident, Storage

log = logging.getLogger("promptwarden.enforcement")


async def guild_config(bot: PromptWardenBot, guild_id: int) -> EnforcementConfig:
    """The guild's enforcement settings; broken stored ones fall back to the defaults,
    as the watcher does."""
    try:
        return EnforcementConfig.from_dict(await bot.storage.get_enforcement_config(guild_id))
    except ValueError:
        return EnforcementConfig()


def strike_step(records: list[ActionRecord]) -> tuple[int, int] | None:
    """(before, after) of the incident's recorded strike, if it has one."""
    for record in reversed(records):
        if record.action == "strike" and record.outcome == "done":
            return parse_strike_detail(record.detail)
    return None


async def lift_unearned_timeout(
    bot: PromptWardenBot, guild_id: int, incident: Incident, moderator_id: int
) -> str | None:
    """After a dismissal: end the timeout this incident's strike caused when the member's
    remaining points no longer earn it. Returns a line for the mod-log, or None when
    there was nothing to lift."""
    storage = bot.storage
    records = await storage.list_action_outcomes(guild_id, incident.id)
    timeouts = [r for r in records if r.action in ("timeout", "timeout_lifted")]
    if not timeouts or timeouts[-1].action != "timeout" or timeouts[-1].outcome != "done":
        return None
    step = strike_step(records)
    guild = bot.get_guild(guild_id)
    if step is None or guild is None:
        return None
    policy = (await guild_config(bot, guild_id)).strike_policy
    now = discord.utils.utcnow()
    points = await storage.active_points(guild_id, incident.user_id, window=policy.window, now=now)
    try:
        member = await guild.fetch_member(incident.user_id)
    except discord.HTTPException as error:
        log.info("incident %d: timeout not checked: %s", incident.id, error)
        return None
    if not timeout_to_lift(policy, *step, points, timed_out_until=member.timed_out_until, now=now):
        return None

    async def lift() -> None:
        await member.timeout(
            None,
            reason=f"PromptWarden: incident #{incident.id} dismissed by moderator "
            f"{moderator_id}; {points} strike point(s) left",
        )

    outcome = await attempt(
        storage, guild_id, incident.id, "timeout_lifted", lift, detail=f"{points} point(s) left"
    )
    if outcome == "done":
        return "timeout lifted"
    return f"timeout not lifted ({outcome.replace('_', ' ')})"


# Discord's clock and ours may differ a little; a timeout ending this close counts as ours.
CLOCK_SLACK = timedelta(minutes=1)


async def already_timed_out(
    storage: Storage, incident: Incident, member: discord.Member, duration: timedelta
) -> bool:
    """Whether the member is timed out at least as long as the incident's strike earned,
    counted from when the strike was stored: then a resumed incident must not time them
    out again (the first call reached Discord before the process stopped)."""
    until = member.timed_out_until
    if until is None:
        return False
    strikes = await storage.list_strikes(incident.guild_id, incident.user_id)
    stored = next((s for s in strikes if s.incident_id == incident.id), None)
    return stored is not None and until >= stored.created_at + duration - CLOCK_SLACK
