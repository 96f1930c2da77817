"""A Discord on 127.0.0.1 for the unmodified `python bot.py`, driven from synchronous tests.

The server runs on its own thread and event loop; tests call the methods below from the
test thread and wait on conditions (never fixed sleeps). The bot finds it through the
DISCORD_API_BASE and DISCORD_GATEWAY_URL settings (`Emulator.env()`).

Details that bite (and are handled here): JSON answers carry exactly `application/json`;
READY has `resume_gateway_url`; GUILD_CREATE's `member_count` equals the members sent; a 429
has `retry_after` in its body and a `Via` header; frames are text, never compressed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from . import automod
from .gateway import Gateway
from .rest import Call, Fault, Rest
from .world import Channel, Guild, User, World

T = TypeVar("T")

APP_ID = 1052345678901234567
# Shaped like a real token; the first part is APP_ID in base64, as Discord builds them.
GOOD_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.loopback-good-token_0123456789abcdef"
BAD_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.loopback-revoked-token_0123456789abc"


@dataclass
class Post:
    """A message for `Emulator.post_many`: who writes what where."""

    channel: Channel
    author: User
    content: str
    mentions: list[User] = field(default_factory=list)
    embeds: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None


class Emulator:
    def __init__(
        self,
        *,
        token: str = GOOD_TOKEN,
        refuse_privileged_intents: bool = False,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self.world = World(app_id=APP_ID)
        self.rest = Rest(self.world, token)
        self.gateway = Gateway(
            self.world,
            token,
            heartbeat_interval_ms=heartbeat_interval_ms,
            refuse_privileged_intents=refuse_privileged_intents,
        )
        self.rest.gateway = self.gateway
        self.sent_at: dict[int, float] = {}  # message id -> monotonic time its event went out
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        self._run(self._start())

    def stop(self) -> None:
        if self._runner is not None:
            self._run(self.gateway.close())
            self._run(self._runner.cleanup())
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.rest.add_routes(app)
        self.gateway.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.gateway.url = self.gateway_url

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def in_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the emulator's loop: read the world without racing the server."""

        async def call() -> T:
            return fn()

        return self._run(call())

    # -- how the bot finds it

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def env(self) -> dict[str, str]:
        """Settings that point `python bot.py` here and keep start-up fast."""
        return {
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
            "DISCORD_GUILD_READY_TIMEOUT": "0.2",
        }

    # -- the world

    def add_guild(self, name: str, *, joined: bool = True) -> Guild:
        """Another guild with the bot in it. Made before the bot connects, it comes in READY
        and its own GUILD_CREATE; made after, the bot is told with a GUILD_CREATE, as when it
        is invited to a server. `joined=False`: not yet, until `invite(guild)`."""
        guild = self.in_loop(lambda: self.world.add_guild(name, joined=False))
        if joined:
            self.invite(guild)
        return guild

    def invite(self, guild: Guild) -> None:
        """The bot joins `guild`: a GUILD_CREATE to every live session."""

        async def join() -> None:
            guild.joined = True
            await self.gateway.dispatch("GUILD_CREATE", guild.create_payload(self.world.app_id))

        self._run(join())

    def add_channel(self, name: str, *, guild: Guild | None = None) -> Channel:
        return self.in_loop(lambda: self.world.add_channel(name, guild=guild))

    def add_member(
        self, name: str | None = None, *, dms_closed: bool = False, guild: Guild | None = None
    ) -> User:
        def add() -> User:
            user = self.world.add_user(name, guild=guild)
            user.dms_closed = dms_closed
            return user

        return self.in_loop(add)

    def join(self, user: User, guild: Guild) -> None:
        """`user` is a member of `guild` too (people are in many servers)."""
        self.in_loop(lambda: self.world.join(user, guild))

    def user(self, user_id: int) -> User:
        return self.world.users[user_id]

    def set_bot_permissions(self, permissions: int, *, guild: Guild | None = None) -> None:
        """Change what the bot's role may do, and tell the bot as Discord does."""

        async def change() -> None:
            where = guild or self.world.guild
            where.bot_permissions = permissions
            role = next(r for r in where.roles_payload() if int(r["id"]) == where.bot_role_id)
            await self.gateway.dispatch(
                "GUILD_ROLE_UPDATE", {"guild_id": str(where.id), "role": role}
            )

        self._run(change())

    # -- AutoMod

    def automod_rules(self, *, guild: Guild | None = None) -> list[dict[str, Any]]:
        where = guild or self.world.guild
        return self.in_loop(lambda: [dict(r) for r in where.automod_rules.values()])

    def add_automod_rule(
        self,
        name: str,
        keywords: list[str],
        *,
        actions: list[dict[str, Any]] | None = None,
        guild: Guild | None = None,
    ) -> dict[str, Any]:
        """A keyword rule the guild's owner made by hand (not the bot's); it blocks unless
        given other `actions`."""
        where = guild or self.world.guild

        def add() -> dict[str, Any]:
            body = {
                "name": name,
                "trigger_type": 1,
                "trigger_metadata": {"keyword_filter": keywords},
                "actions": actions if actions is not None else [{"type": 1, "metadata": {}}],
                "enabled": True,
            }
            rule = automod.build_rule(self.world, body, creator_id=where.owner_id, guild=where)
            where.automod_rules[int(rule["id"])] = rule
            return rule

        return self.in_loop(add)

    def automod_hit(
        self,
        rule_id: int,
        channel: Channel,
        member: User,
        content: str,
        keyword: str,
        *,
        blocked: bool = True,
    ) -> int | None:
        """A member's message caught by a rule: one execution event per action of the rule.

        A blocked message never exists (no id); otherwise it is posted too, and its id is
        returned.
        """

        async def hit() -> int | None:
            world = self.world
            guild = world.guild_of(channel)
            assert guild is not None, "AutoMod acts in guild channels only"
            rule = guild.automod_rules[rule_id]
            message_id = None
            if not blocked:
                data = world.store(world.message_payload(channel, member, content))
                message_id = int(data["id"])
                await self.gateway.dispatch("MESSAGE_CREATE", data)
            events = automod.execution_events(
                world,
                rule,
                channel=channel,
                member=member,
                content=content,
                keyword=keyword,
                message_id=message_id,
            )
            await automod.dispatch_execution(self.rest, events)
            return message_id

        return self._run(hit())

    # -- messages in

    def post(self, channel: Channel, author: User, content: str, **kwargs: Any) -> int:
        return self.post_many([Post(channel, author, content, **kwargs)])[0]

    def post_many(
        self, posts: Iterable[Post], *, rate: float | None = None, timeout: float = 600
    ) -> list[int]:
        """Create the messages and dispatch them as fast as the socket takes them (or at
        `rate` a second). `posts` is consumed as it goes: a generator streams a burst of
        any size without building it first."""
        return self._run(self._post_many(posts, rate), timeout=timeout)

    async def _post_many(self, posts: Iterable[Post], rate: float | None) -> list[int]:
        ids = []
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, p in enumerate(posts):
            if rate is not None:
                due = start + n / rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
            data = self.world.store(
                self.world.message_payload(
                    p.channel,
                    p.author,
                    p.content,
                    mentions=p.mentions,
                    embeds=p.embeds,
                    attachments=p.attachments,
                )
            )
            message_id = int(data["id"])
            ids.append(message_id)
            await self.gateway.dispatch("MESSAGE_CREATE", data)
            self.sent_at[message_id] = time.monotonic()
            # Discord serves REST beside the gateway: without a turn here a REST call
            # waits until the socket's buffer fills, and acting on incidents lags the burst.
            await asyncio.sleep(0)
        return ids

    def edit(self, channel: Channel, message_id: int, content: str) -> None:
        async def edit() -> None:
            data = channel.messages[message_id]
            data["content"] = content
            data["edited_timestamp"] = data["timestamp"]
            await self.gateway.dispatch("MESSAGE_UPDATE", dict(data))

        self._run(edit())

    # -- interactions

    def invoke(
        self,
        channel: Channel,
        user: User,
        command: str,
        *subcommand: str,
        options: dict[str, str | int] | None = None,
    ) -> int:
        """A slash command as `user` typed it (`options`: its text and integer options);
        returns the interaction id.

        The command's id is the one this emulator gave it when the bot synced its tree.
        """
        command_id = self.in_loop(lambda: self.rest.command_ids[command])
        typed: list[dict[str, Any]] = [
            {"name": name, "type": 4 if isinstance(value, int) else 3, "value": value}
            for name, value in (options or {}).items()
        ]
        for name in reversed(subcommand):
            typed = [{"name": name, "type": 1, "options": typed}]
        data = {"id": str(command_id), "name": command, "type": 1, "options": typed}
        return self._interact(channel, user, 2, data)

    def invoke_message_command(
        self, channel: Channel, user: User, command: str, message_id: int
    ) -> int:
        """A message context-menu command (Apps > `command`) on one message."""
        command_id = self.in_loop(lambda: self.rest.command_ids[command])
        message = self.in_loop(lambda: dict(channel.messages[message_id]))
        data = {
            "id": str(command_id),
            "name": command,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): message}},
        }
        return self._interact(channel, user, 2, data)

    def submit_modal(
        self, channel: Channel, user: User, custom_id: str, values: dict[str, str]
    ) -> int:
        """A submitted form: `values` maps each text input's custom_id to what was typed."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        return self._interact(channel, user, 5, {"custom_id": custom_id, "components": rows})

    def press_button(self, channel: Channel, user: User, message_id: int, custom_id: str) -> int:
        """A click on a button of one of the bot's messages; returns the interaction id."""
        message = self.in_loop(lambda: dict(channel.messages[message_id]))
        data = {"custom_id": custom_id, "component_type": 2}
        return self._interact(channel, user, 3, data, message=message)

    def _interact(
        self,
        channel: Channel,
        user: User,
        kind: int,
        data: dict[str, Any],
        *,
        message: dict[str, Any] | None = None,
    ) -> int:
        async def send() -> int:
            world = self.world
            guild = world.guild_of(channel) or world.guild
            interaction_id = world.ids.next()
            self.rest.interaction_channels[interaction_id] = channel
            member = guild.members[user.id]
            admin = guild.admin_role_id in member.roles
            payload: dict[str, Any] = {
                "id": str(interaction_id),
                "application_id": str(world.app_id),
                "type": kind,
                "token": f"interaction-token-{interaction_id}",
                "version": 1,
                "guild_id": str(guild.id),
                "channel_id": str(channel.id),
                "channel": channel.payload(),
                "member": {**member.payload(), "permissions": str((1 << 41) - 1 if admin else 0)},
                "data": data,
                "app_permissions": str(guild.bot_permissions),
                "locale": "en-US",
                "guild_locale": "en-US",
                "entitlements": [],
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
                # discord.py 2.7 reads this unconditionally
                "attachment_size_limit": 10 * 1024 * 1024,
            }
            if message is not None:
                payload["message"] = message
            await self.gateway.dispatch("INTERACTION_CREATE", payload)
            return interaction_id

        return self._run(send())

    def message_exists(self, channel: Channel, message_id: int) -> bool:
        return self.in_loop(lambda: message_id in channel.messages)

    # -- faults

    def drop_gateway(self, *, code: int = 4000, resumable: bool = True) -> None:
        self._run(self.gateway.drop(code=code, resumable=resumable))

    def fail(
        self,
        route: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        **params: int | str,
    ) -> Fault:
        """Answer the next `times` calls of `route` (templated, e.g. "DELETE /channels/
        {channel_id}/messages/{message_id}"), optionally only those with these params."""
        fault = Fault(route, status, times, retry_after, {k: str(v) for k, v in params.items()})
        with self.rest.changed:
            self.rest.faults.append(fault)
        return fault

    # -- what the bot did

    def calls(self, route: str | None = None) -> list[Call]:
        with self.rest.changed:
            return [c for c in self.rest.calls if route is None or c.route == route]

    def wait_until(
        self, predicate: Callable[[], bool], *, timeout: float = 30, what: str = "condition"
    ) -> None:
        """Block until `predicate()` holds, re-checking after every REST call (and 10x a second)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = len(self.rest.calls)
            # Evaluated without the lock: a predicate may read the world through in_loop().
            if predicate():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            with self.rest.changed:
                if len(self.rest.calls) == seen:
                    self.rest.changed.wait(min(left, 0.1))

    @property
    def command_puts(self) -> list[Any]:
        return [c.body for c in self.calls("PUT /applications/{app_id}/commands")]
