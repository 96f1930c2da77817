"""Plain facts about a Discord message, for the Discord-free core to decide on.

Shared by the watcher and the "Report prompt" command, so a reported message is judged in
scope and attributed exactly as the watcher would.
"""

from __future__ import annotations

from typing import Any

import discord

from promptwarden.enforcement import MessageFacts


def channel_chain(channel: Any) -> tuple[int | None, ...]:
    """The channel, its parent (threads and forum posts) and the category above them."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        return (channel.id, channel.parent_id, getattr(parent, "category_id", None))
    return (channel.id, None, getattr(channel, "category_id", None))


def message_facts(message: discord.Message) -> MessageFacts | None:
    if message.guild is None:
        return None
    return MessageFacts(
        guild_id=message.guild.id,
        channel_id=message.channel.id,
        message_id=message.id,
        author_id=message.author.id,
        author_is_bot=message.author.bot,
        content=message.content,
        created_at=message.created_at,
        channel_chain=channel_chain(message.channel),
        webhook_id=message.webhook_id,
    )
