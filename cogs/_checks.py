"""Permission checks for slash commands and moderator buttons, enforced when they run.

Default member permissions hide a command from members who lack them, but a server's
admins can override that in Server Settings > Integrations, and Discord weighs them
against the channel's overwrites; buttons have none at all. So every privileged command
and button re-checks the member's server-wide permissions when it runs (RoboDanny's
`hybrid_permissions_check` idea, for app commands). The rules themselves are pure
(`promptwarden.permissions.refusal`); this module only gathers the facts from Discord
and answers a refusal privately.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import discord
from discord import app_commands

from discordbot import PromptWardenBot
from promptwarden.permissions import Facts, Standing, missing, refusal

T = TypeVar("T")
log = logging.getLogger("promptwarden.commands")


def held(permissions: discord.Permissions) -> frozenset[str]:
    return frozenset(name for name, value in permissions if value)


def standing(member: discord.Member) -> Standing:
    return Standing(
        held(member.guild_permissions), member.top_role.position, member.id == member.guild.owner_id
    )


def _server_wide(needed: tuple[str, ...]) -> Callable[[discord.Interaction[Any]], bool]:
    def predicate(interaction: discord.Interaction[Any]) -> bool:
        member = interaction.user
        if interaction.guild is None or not isinstance(member, discord.Member):
            raise app_commands.NoPrivateMessage()
        lacking = missing(held(member.guild_permissions), needed)
        if lacking:
            raise app_commands.MissingPermissions(lacking)
        return True

    return predicate


def guild_permissions_check(**perms: bool) -> Callable[[T], T]:
    """Hide the command from members without `perms` and refuse them at run time too,
    judging the member's roles server-wide (an overwrite in one channel does not count).

    On a subcommand Discord ignores default permissions (they belong to the top-level
    group: give the group `default_permissions=`), but the run-time check still applies.
    """
    needed = tuple(name for name, wanted in perms.items() if wanted)

    def decorator(func: T) -> T:
        app_commands.default_permissions(**perms)(func)
        app_commands.check(_server_wide(needed))(func)
        return func

    return decorator


async def _member(guild: discord.Guild, user_id: int, *, fresh: bool) -> discord.Member | None:
    """The member, None when they left. `fresh` reads Discord, not the cache (whose
    timeout may be stale). Other Discord errors propagate: the check fails closed."""
    member = None if fresh else guild.get_member(user_id)
    if member is not None:
        return member
    try:
        return await guild.fetch_member(user_id)
    except discord.NotFound:
        return None


UNCHECKED = (
    "I could not read this member's roles from Discord just now, so nothing was done; "
    "try again in a moment."
)


async def _in_force(bot: PromptWardenBot, guild_id: int, incident_id: int) -> bool:
    """Whether the incident's strike timed the member out and nothing lifted it since."""
    records = await bot.storage.list_action_outcomes(guild_id, incident_id)
    timeouts = [r for r in records if r.action in ("timeout", "timeout_lifted")]
    return bool(timeouts) and timeouts[-1].action == "timeout" and timeouts[-1].outcome == "done"


async def _acknowledge(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge as the entry point itself would (a private "thinking…" for a command,
    a silent update for a button), so reading the target from Discord cannot cost the
    interaction its 3 seconds; the entry point's own acknowledgement then does nothing."""
    if interaction.type == discord.InteractionType.application_command:
        await interaction.response.defer(ephemeral=True, thinking=True)
    else:
        await interaction.response.defer()


async def refuse(
    interaction: discord.Interaction[Any],
    action: str,
    *,
    incident_id: int | None = None,
    appeal_id: int | None = None,
    target: discord.User | discord.Member | None = None,
) -> bool:
    """Check `action` (one of `promptwarden.permissions.ACTIONS`) for the member who
    pressed or ran it; True when refused, after answering them privately. Call it first,
    before any effect.

    The presser's own permissions are judged at once. When the rule also weighs the
    member acted on (timing out, warning, lifting a timeout), they are read from Discord
    after acknowledging the interaction; `target` spares that read when a command already
    has them. Outside a server, or with the incident or appeal gone, nothing is refused
    here (the entry point says what is missing)."""
    guild = interaction.guild
    presser = interaction.user
    bot = interaction.client
    if guild is None or not isinstance(presser, discord.Member):
        return False
    assert isinstance(bot, PromptWardenBot)
    storage = bot.storage
    if appeal_id is not None:
        appeal = await storage.get_appeal(guild.id, appeal_id)
        if appeal is None or appeal.status != "open":
            return False
        incident_id = appeal.incident_id
    incident = None
    if incident_id is not None:
        incident = await storage.get_incident(guild.id, incident_id)
        if incident is None:
            return False
    facts = Facts(presser=standing(presser), bot=standing(guild.me))
    if incident is not None and action == "delete":
        channel = guild.get_channel_or_thread(incident.channel_id)
        if channel is not None:
            facts = replace(
                facts,
                presser_in_channel=held(channel.permissions_for(presser)),
                bot_in_channel=held(channel.permissions_for(guild.me)),
            )
    if isinstance(target, discord.Member):
        facts = replace(facts, target=standing(target))
    text = refusal(action, facts)
    in_force = (
        incident is not None
        and action in ("dismiss", "appeal_accept")
        and await _in_force(bot, guild.id, incident.id)
    )
    weighs_target = action in ("timeout", "warn") or in_force
    if text is None and incident is not None and weighs_target:
        await _acknowledge(interaction)
        try:
            member = await _member(guild, incident.user_id, fresh=in_force)
        except discord.HTTPException as error:
            log.info("incident %d: member not read for a permission check: %s", incident.id, error)
            text = UNCHECKED
        else:
            now = discord.utils.utcnow()
            facts = replace(
                facts,
                target=standing(member) if member is not None else None,
                lifts_timeout=member is not None and (member.timed_out_until or now) > now,
            )
            text = refusal(action, facts)
    if text is None:
        return False
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)
    return True


async def refuse_without_manage_messages(interaction: discord.Interaction[Any], what: str) -> bool:
    """Buttons have no default permissions: whoever can see a message can press them, so
    every moderator button re-checks Manage Messages, server-wide, when pressed. True when
    refused."""
    member = interaction.user
    if isinstance(member, discord.Member) and not missing(
        held(member.guild_permissions), ("manage_messages",)
    ):
        return False
    await interaction.response.send_message(
        f"You need the **Manage Messages** permission (server-wide, from your roles) to {what}.",
        ephemeral=True,
    )
    return True


MANAGE_GUILD = discord.Permissions(manage_guild=True)
