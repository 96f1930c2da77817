"""Plain facts about a Discord message, for the Discord-free core to decide on.

Shared by the watcher and the "Report prompt" command, so a reported message is judged in
scope and attributed exactly as the watcher would.
"""

from __future__ import annotations

from collections.abc import Callable
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


class Arrival:
    """A message as it arrived: its facts at once, its discord.Message only when asked.

    Building a discord.Message (author, member, mentions, embeds) costs more than screening
    its prompt, and nearly every prompt is allowed and needs nothing further, so a message
    from the gateway is read from its payload and built only for what goes on: an incident,
    a queued message, a reminder, an `on_message` listener.
    """

    __slots__ = ("_build", "_message", "channel", "facts")

    def __init__(
        self,
        facts: MessageFacts | None,
        channel: Any,
        *,
        message: discord.Message | None = None,
        build: Callable[[], discord.Message] | None = None,
    ) -> None:
        self.facts = facts
        self.channel = channel  # as discord.py resolves it for the Message
        self._message = message
        self._build = build

    @classmethod
    def of(cls, message: discord.Message) -> Arrival:
        return cls(message_facts(message), message.channel, message=message)

    @classmethod
    def from_payload(
        cls, state: Any, data: dict[str, Any], channel: Any, guild: discord.Guild | None
    ) -> Arrival:
        """From MESSAGE_CREATE's payload: the same facts `message_facts` reads."""

        def build() -> discord.Message:
            return discord.Message(state=state, channel=channel, data=data)  # type: ignore[arg-type]

        if guild is None:
            return cls(None, channel, build=build)
        message_id = int(data["id"])
        author = data["author"]
        webhook = data.get("webhook_id")
        facts = MessageFacts(
            guild_id=guild.id,
            channel_id=int(data["channel_id"]),
            message_id=message_id,
            author_id=int(author["id"]),
            author_is_bot=author.get("bot", False),
            content=data["content"],
            created_at=discord.utils.snowflake_time(message_id),
            channel_chain=channel_chain(channel),
            webhook_id=None if webhook is None else int(webhook),
        )
        return cls(facts, channel, build=build)

    def hold(self) -> None:
        """Build the Message now, for a message kept waiting: it holds less than its
        payload, which then goes."""
        self.message  # noqa: B018 - the property builds it

    @property
    def built(self) -> bool:
        return self._message is not None

    @property
    def message(self) -> discord.Message:
        if self._message is None:
            assert self._build is not None
            self._message = self._build()
            self._build = None  # the payload goes: a Message holds less than its dict
        return self._message
