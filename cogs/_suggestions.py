"""After a dismissal, propose allow-listing a term moderators keep dismissing.

The counting is Discord-free (`promptwarden.allow_suggestions`); this module reads the
guild's dismissed incidents and allow list and posts the note in its mod-log channel.
"""

from __future__ import annotations

import logging

import discord

from discordbot import PromptWardenBot
from promptwarden.allow_suggestions import RECENT_DISMISSALS, Suggestion, note, reached, suggestions
from promptwarden.screening.rules import GuildRules
from promptwarden.storage import Incident

log = logging.getLogger("promptwarden.commands")


async def allow_suggestions(bot: PromptWardenBot, guild_id: int) -> list[Suggestion]:
    """The guild's current suggestions, most dismissed first."""
    storage = bot.storage
    try:
        allowed = GuildRules.from_dict(await storage.get_screening_rules(guild_id)).allow_terms
    except ValueError:
        allowed = ()  # broken stored rules: the watcher falls back to the defaults too
    dismissed = await storage.find_incidents(guild_id, status="dismissed", limit=RECENT_DISMISSALS)
    return suggestions((i.matches for i in dismissed), allowed)


async def suggest_allow_listing(bot: PromptWardenBot, guild_id: int, incident: Incident) -> None:
    """Call after `incident` was dismissed: a mod-log note for each term it brought to the
    threshold, or kept above it. Best effort: the dismissal stands whatever happens here."""
    try:
        found = reached(await allow_suggestions(bot, guild_id), incident.matches)
        channel_id = await bot.storage.get_modlog_channel(guild_id)
        if not found or channel_id is None:
            return
        channel = bot.get_partial_messageable(channel_id, guild_id=guild_id)
        await channel.send(
            "\n".join(note(s) for s in found), allowed_mentions=discord.AllowedMentions.none()
        )
    except Exception:  # a suggestion must never turn a done dismissal into an error
        log.exception("incident %d: allow-list suggestion not posted", incident.id)
