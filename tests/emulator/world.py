"""What the emulated Discord knows: users, guilds with their roles and channels, messages, DMs.

Payloads are built here in the shapes discord.py 2.7 parses, with the details that bite an
emulator (see the module docs of `server.py`). Message ids are real snowflakes of the
current time, so "history after id" and "posted within the last 24 h" mean what they mean
on Discord.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
MIDJOURNEY_BOT_ID = 936929561302675456
NIJI_BOT_ID = 1022952195194359889
# View Channels, Send Messages (+ in threads), Embed Links, Attach Files, Read Message
# History, Manage Messages, Moderate Members: what the bot's invite asks for.
BOT_PERMISSIONS = 1374389660672
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5


class Snowflakes:
    """Strictly increasing ids that encode the current time, as Discord's do."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            self._last = max(now, self._last + 1)
            return self._last


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class User:
    id: int
    name: str
    bot: bool = False
    dms_closed: bool = False  # sending a DM answers 403 code 50007, as for a real user

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class Member:
    user: User
    roles: list[int] = field(default_factory=list)
    joined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    timed_out_until: str | None = None

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "joined_at": iso(self.joined_at),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "pending": False,
            "communication_disabled_until": self.timed_out_until,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class Channel:
    id: int
    name: str
    guild_id: int | None  # None: a DM
    type: int = 0  # 0 text, 1 DM, 4 category
    parent_id: int | None = None
    recipient: User | None = None
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)  # insertion = id order
    # Every id ever stored, ascending (deleted ones too): history finds its page by bisection,
    # so reading a channel of a million messages costs a page, not the channel.
    order: list[int] = field(default_factory=list)

    def payload(self, position: int = 0) -> dict[str, Any]:
        if self.guild_id is None:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": 1,
                "last_message_id": None,
                "recipients": [self.recipient.payload()],
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
        }


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    bot_role_id: int
    admin_role_id: int
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    bot_permissions: int = BOT_PERMISSIONS  # of the bot's role; grant Manage Server to test it
    automod_rules: dict[int, dict[str, Any]] = field(default_factory=dict)  # by id, REST shape
    joined: bool = True  # False until the bot is invited: no READY entry, no GUILD_CREATE

    def roles_payload(self) -> list[dict[str, Any]]:
        def role(role_id: int, name: str, position: int, permissions: int) -> dict[str, Any]:
            return {
                "id": str(role_id),
                "name": name,
                "color": 0,
                "hoist": False,
                "position": position,
                "permissions": str(permissions),
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }

        # The bot's own role is managed by its integration, as Discord makes it.
        bot_role = role(self.bot_role_id, "PromptWarden", 10, self.bot_permissions)
        bot_role.update(managed=True, tags={"bot_id": str(self.members_bot_id())})
        return [
            role(self.id, "@everyone", 0, 0),  # @everyone's id is the guild's
            role(self.admin_role_id, "Admin", 1, ADMINISTRATOR),
            bot_role,
        ]

    def members_bot_id(self) -> int:
        return next(m.user.id for m in self.members.values() if self.bot_role_id in m.roles)

    def create_payload(self, bot_id: int) -> dict[str, Any]:
        """GUILD_CREATE: only the bot's own member is sent, and member_count says so.

        A member_count above the members sent makes discord.py wait for member chunks.
        """
        members = [self.members[bot_id].payload()]
        channels = [c.payload(i) for i, c in enumerate(self.channels.values())]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "roles": self.roles_payload(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": channels,
            "threads": [],
            "members": members,
            "member_count": len(members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "unavailable": False,
            "large": False,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "mfa_level": 0,
            "verification_level": 0,
            "explicit_content_filter": 0,
            "default_message_notifications": 0,
            "system_channel_flags": 0,
            "afk_timeout": 300,
            "joined_at": iso(datetime.now(UTC)),
            "max_members": 500000,
        }


class World:
    """Guilds with text channels, members, generator bots and the bot itself.

    There is always one guild, `guild` (the first); `add_guild` makes more. Each guild has
    the bot, its own owner and the generator bots as members; a channel and a member belong
    to the guild they were added to (the first unless told).
    """

    def __init__(self, *, app_id: int, bot_name: str = "PromptWarden") -> None:
        self.ids = Snowflakes()
        self.app_id = app_id
        self.bot = User(app_id, bot_name, bot=True)
        self.users: dict[int, User] = {app_id: self.bot}
        self.guilds: dict[int, Guild] = {}  # in creation order
        self.dm_channels: dict[int, Channel] = {}  # by recipient id
        self.channels: dict[int, Channel] = {}  # every channel, guild and DM, by id
        for bot_id, name in ((MIDJOURNEY_BOT_ID, "Midjourney Bot"), (NIJI_BOT_ID, "niji")):
            self.users[bot_id] = User(bot_id, name, bot=True)
        self.guild = self.add_guild("Prompt Gallery", owner_name="owner")
        self._names = itertools.count(1)

    # -- building the world

    def add_guild(self, name: str, *, owner_name: str | None = None, joined: bool = True) -> Guild:
        """A guild with its own owner (an administrator), the bot and the generator bots.

        `joined=False`: the bot is not in it yet (the gateway says nothing of it).
        """
        owner = User(self.ids.next(), owner_name or f"owner of {name}")
        self.users[owner.id] = owner
        guild = Guild(
            id=self.ids.next(),
            name=name,
            owner_id=owner.id,
            bot_role_id=self.ids.next(),
            admin_role_id=self.ids.next(),
            joined=joined,
        )
        self.guilds[guild.id] = guild
        guild.members[self.app_id] = Member(self.bot, roles=[guild.bot_role_id])
        guild.members[owner.id] = Member(owner, roles=[guild.admin_role_id])
        for bot_id in (MIDJOURNEY_BOT_ID, NIJI_BOT_ID):
            guild.members[bot_id] = Member(self.users[bot_id])
        return guild

    def add_user(
        self,
        name: str | None = None,
        *,
        bot: bool = False,
        user_id: int | None = None,
        guild: Guild | None = None,
    ) -> User:
        user = User(user_id or self.ids.next(), name or f"member{self.ids.next() % 100000}", bot)
        self.users[user.id] = user
        self.join(user, guild or self.guild)
        return user

    def join(self, user: User, guild: Guild) -> Member:
        """Make `user` a member of `guild` too (a person is often in several servers)."""
        member = guild.members.get(user.id)
        if member is None:
            member = guild.members[user.id] = Member(user)
        return member

    def add_channel(
        self,
        name: str,
        *,
        type: int = 0,
        parent_id: int | None = None,
        guild: Guild | None = None,
    ) -> Channel:
        guild = guild or self.guild
        channel = Channel(self.ids.next(), name, guild.id, type=type, parent_id=parent_id)
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def guild_of(self, channel: Channel) -> Guild | None:
        """The guild a channel is in; None for a DM."""
        return None if channel.guild_id is None else self.guilds[channel.guild_id]

    def dm_channel(self, user: User) -> Channel:
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = Channel(self.ids.next(), f"dm-{user.id}", None, type=1, recipient=user)
            self.dm_channels[user.id] = channel
            self.channels[channel.id] = channel
        return channel

    # -- messages

    def message_payload(
        self,
        channel: Channel,
        author: User,
        content: str,
        *,
        message_id: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        mentions: list[User] | None = None,
        components: list[dict[str, Any]] | None = None,
        reference: int | None = None,
    ) -> dict[str, Any]:
        message_id = message_id or self.ids.next()
        data: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": iso(snowflake_time(message_id)),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [u.payload() for u in mentions or ()],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "components": components or [],
            "pinned": False,
            "type": 19 if reference else 0,
            "flags": 0,
        }
        guild = self.guild_of(channel)
        if reference:
            data["message_reference"] = {
                "message_id": str(reference),
                "channel_id": str(channel.id),
                "guild_id": str((guild or self.guild).id),
            }
        if guild is not None:
            data["guild_id"] = str(guild.id)
            member = guild.members.get(author.id)
            if member is not None:
                data["member"] = member.payload(with_user=False)
            # As Discord does in a guild: each mentioned member's partial member object.
            for mentioned in data["mentions"]:
                member = guild.members.get(int(mentioned["id"]))
                if member is not None:
                    mentioned["member"] = member.payload(with_user=False)
        return data

    def store(self, data: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels[int(data["channel_id"])]
        message_id = int(data["id"])
        if message_id not in channel.messages:
            channel.order.append(message_id)
        channel.messages[message_id] = data
        return data

    def history(
        self,
        channel: Channel,
        *,
        limit: int = 50,
        before: int | None = None,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, as Discord answers; with `after`, the oldest `limit` after it."""
        order, messages = channel.order, channel.messages
        chosen: list[int] = []
        if after is not None:
            at = bisect.bisect_right(order, after)
            while at < len(order) and len(chosen) < limit:
                i = order[at]
                if before is not None and i >= before:
                    break
                if i in messages:
                    chosen.append(i)
                at += 1
        else:
            at = bisect.bisect_left(order, before) if before is not None else len(order)
            while at > 0 and len(chosen) < limit:
                at -= 1
                if order[at] in messages:
                    chosen.append(order[at])
            chosen.reverse()
        return [messages[i] for i in reversed(chosen)]
