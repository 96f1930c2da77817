"""The discord.py side of PromptWarden: the Bot, its command tree and its start-up.

Kept apart from `promptwarden/` (which never imports discord) so the core stays pure and
testable; cogs in `cogs/` are thin layers that call into the core and into `bot.storage`.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import logging
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

import cogs
from cogs._facts import Arrival
from cogs._replies import SOMETHING_WENT_WRONG
from promptwarden.actions import Actions
from promptwarden.config import Settings, format_shard_ids
from promptwarden.dedupe import JobKeyer, installation_job_keyer
from promptwarden.guild_states import GuildStates
from promptwarden.permissions import NEEDED_PERMISSIONS, invite_url
from promptwarden.storage import Storage, open_storage

log = logging.getLogger("promptwarden.bot")
# The channels whose last_message_id discord.py's own parser keeps up to date.
_LAST_MESSAGE_CHANNELS = (
    discord.TextChannel,
    discord.VoiceChannel,
    discord.Thread,
    discord.StageChannel,
)

# Labels as the Discord client shows them (discord.py's names differ for some).
PERMISSION_LABELS = {p.attr: p.label for p in NEEDED_PERMISSIONS} | {
    "manage_guild": "Manage Server",
    "administrator": "Administrator",
}


def required_intents() -> discord.Intents:
    """Only what screening needs: guild messages and their text, DMs for replies, and
    AutoMod's executions (delivered only where the bot has Manage Server) for the incident log.

    `members` is deliberately off: a message's author arrives as a Member with roles
    already, and timeouts take an id, so the privileged member list is never needed.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = True  # privileged: must be enabled in the Developer Portal
    intents.dm_messages = True
    intents.auto_moderation_execution = True  # not privileged
    return intents


def use_discord_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Point discord.py's REST and gateway at a proxy or an emulator instead of Discord.

    discord.py keeps both as class attributes, so this is process-wide; None keeps the
    current value (Discord's own unless something already changed it). A plain Bot never
    asks /gateway/bot for the gateway address: it connects to DEFAULT_GATEWAY directly.
    """
    if api_base is not None:
        discord.http.Route.BASE = api_base
    if gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def extension_names() -> list[str]:
    """Every module in cogs/ that defines `setup`; `_`-prefixed modules are helpers.

    Found by reading the source rather than importing it: `load_extension` executes the
    module itself, and executing it twice would leave two copies of its classes.
    """
    names = []
    for info in sorted(pkgutil.iter_modules(cogs.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        spec = importlib.util.find_spec(f"{cogs.__name__}.{info.name}")
        if spec is None or spec.origin is None:
            continue
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        if any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "setup"
            for node in tree.body
        ):
            names.append(spec.name)
    return names


def _permission_names(names: list[str]) -> str:
    return ", ".join(PERMISSION_LABELS.get(n, n.replace("_", " ").title()) for n in names)


class PromptWardenTree(app_commands.CommandTree["PromptWardenBot"]):
    """Turns check failures into a short private reply instead of a silent failure."""

    async def on_error(
        self, interaction: discord.Interaction[PromptWardenBot], error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            names = _permission_names(error.missing_permissions)
            text = f"You need the {names} permission to use this."
        elif isinstance(error, app_commands.BotMissingPermissions):
            text = (
                f"I am missing the {_permission_names(error.missing_permissions)} permission here; "
                "ask an admin to grant it to my role."
            )
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works only in a server."
        elif isinstance(error, app_commands.CheckFailure):
            text = "You cannot use this command here."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command /%s failed", command, exc_info=error)
            text = SOMETHING_WENT_WRONG
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as reply_error:  # e.g. the interaction expired
            log.warning("could not tell the user about an error: %s", reply_error)


class GuildCache(Protocol):
    """Anything holding per-guild configuration that must be dropped when it changes."""

    def forget(self, guild_id: int) -> None: ...

    def clear(self) -> None: ...


class PromptWardenBot(commands.AutoShardedBot):
    """The bot. Pass `storage` to reuse a database opened (and checked) before connecting.

    Always an AutoShardedBot: with SHARD_COUNT unset Discord recommends the count and this
    one process runs every shard; with SHARD_COUNT and SHARD_IDS, each process of a
    cluster runs its own share over one PostgreSQL database.
    """

    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        shard_count = settings.shard_count
        if shard_count is None and settings.discord_gateway_url is not None:
            # Asking Discord for a count (GET /gateway/bot) would also hand back Discord's
            # own gateway URL, bypassing DISCORD_GATEWAY_URL: one shard unless told more.
            shard_count = 1
        sharding: dict[str, Any] = {"shard_count": shard_count}
        if settings.shard_ids is not None:
            sharding["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=required_intents(),
            tree_cls=PromptWardenTree,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            **sharding,
            guild_ready_timeout=settings.guild_ready_timeout,
        )
        use_discord_endpoints(settings.discord_api_base, settings.discord_gateway_url)
        self.settings = settings
        self._storage = storage
        self._job_keyer: JobKeyer | None = None
        self._guild_caches: list[GuildCache] = []
        self._guild_states: GuildStates | None = None
        self._actions: Actions | None = None
        # Called in place for every new message and every screened prompt (see dispatch
        # and prompt_seen); they must not block and not raise.
        self.message_hooks: list[Callable[[Arrival], None]] = []
        self.prompt_hooks: list[Callable[[Arrival, int], None]] = []
        self._connection.parsers["MESSAGE_CREATE"] = self._message_create

    def _message_create(self, data: Any) -> None:
        """discord.py's MESSAGE_CREATE parser, except that the discord.Message is built
        only when something needs it (see `cogs._facts.Arrival`): the message hooks run
        in place on the payload's facts (no task per message), and for an allowed prompt
        nothing else does. Messages built are cached as discord.py caches them."""
        state = self._connection
        channel, guild = state._get_guild_channel(data)
        arrival = Arrival.from_payload(state, data, channel, guild)
        for hook in self.message_hooks:
            try:
                hook(arrival)
            except Exception:
                # Never into discord.py's gateway reader: that would drop the session.
                log.exception("taking in message %s failed", data.get("id"))
        if arrival.built or self._message_listened():
            message = arrival.message
            self.dispatch("message", message)
            if state._messages is not None:
                state._messages.append(message)
        if channel.__class__ in _LAST_MESSAGE_CHANNELS:
            channel.last_message_id = int(data["id"])

    def _message_listened(self) -> bool:
        """Whether anything receives `on_message`: prefix commands, listeners, wait_for."""
        return bool(
            self.all_commands
            or self.extra_events.get("on_message")
            or self._listeners.get("message")
        )

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """discord.py starts one task per listener per event. A new message (see
        `_message_create`) is dispatched only when something is there to receive it:
        this bot has slash commands only."""
        if event_name == "message":
            if not self._message_listened():
                return
        elif event_name == "socket_event_type" and not (
            self.extra_events.get("on_socket_event_type")
            or self._listeners.get("socket_event_type")
            or hasattr(self, "on_socket_event_type")
        ):
            # discord.py dispatches this for every gateway event; with no receiver the
            # dispatch is pure cost (a method lookup that raises AttributeError each time).
            return
        super().dispatch(event_name, *args, **kwargs)

    def prompt_seen(self, arrival: Arrival, user_id: int) -> None:
        """The watcher screens a new prompt of `user_id` (the privacy cog reminds people
        that the channel is public). Hooks run in place; `on_promptwarden_prompt`
        listeners, if any, get the event with the discord.Message."""
        for hook in self.prompt_hooks:
            hook(arrival, user_id)
        if self.extra_events.get("on_promptwarden_prompt"):
            self.dispatch("promptwarden_prompt", arrival.message, user_id)

    def register_guild_cache(self, cache: GuildCache) -> None:
        """Have `cache` forget a guild whenever any process changes that guild's settings."""
        self._guild_caches.append(cache)

    async def _on_settings_changed(self, guild_id: int | None) -> None:
        """Storage says a guild's settings changed (here or in another process).

        Cogs listen with `on_promptwarden_settings_changed(guild_id: int)`; None from
        storage (changes may have been missed) becomes one event per guild served here.
        """
        for cache in self._guild_caches:
            if guild_id is None:
                cache.clear()
            else:
                cache.forget(guild_id)
        for changed in [guild_id] if guild_id is not None else [g.id for g in self.guilds]:
            self.dispatch("promptwarden_settings_changed", changed)

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("storage is opened in setup_hook; it is not available yet")
        return self._storage

    @property
    def guild_states(self) -> GuildStates:
        """Every guild's settings, cached until storage announces a change."""
        if self._guild_states is None:
            raise RuntimeError("guild states are set up in setup_hook; not available yet")
        return self._guild_states

    @property
    def actions(self) -> Actions:
        """The one path from a decision to Discord (see promptwarden.actions)."""
        if self._actions is None:
            raise RuntimeError("the actions service is set up in setup_hook; not available yet")
        return self._actions

    @property
    def job_keyer(self) -> JobKeyer:
        """Keys stored job identities with this installation's secret (see dedupe)."""
        if self._job_keyer is None:
            raise RuntimeError("the job keyer is loaded in setup_hook; it is not available yet")
        return self._job_keyer

    async def setup_hook(self) -> None:
        if self._storage is None:
            self._storage = await open_storage(self.settings.database)
        self._job_keyer = await installation_job_keyer(self._storage)
        from cogs._port import BotPort  # the cogs import this module

        self._guild_states = GuildStates(self._storage)
        await self._guild_states.subscribe()
        self._actions = Actions(
            self._storage, BotPort(self), self._guild_states, clock=discord.utils.utcnow
        )
        await self._storage.subscribe_settings_changes(self._on_settings_changed)
        for name in extension_names():
            await self.load_extension(name)
            log.debug("loaded extension %s", name)
        await self.sync_commands_if_changed()

    def _sync_scope(self) -> tuple[discord.Object | None, str]:
        guild_id = self.settings.dev_guild_id
        if guild_id is None:
            return None, "global"
        return discord.Object(id=guild_id), f"guild:{guild_id}"

    def command_payload(self) -> list[dict[str, Any]]:
        """What a sync would send, for the scope this bot syncs to."""
        guild, _ = self._sync_scope()
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        return [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]

    async def sync_commands_if_changed(self) -> bool:
        """Sync only when the tree differs from the last synced one (restarts stay cheap).

        Discord rate-limits command syncs hard, so the payload's hash is kept in the
        database per application and scope, and stored only after a successful sync.
        """
        guild, scope = self._sync_scope()
        payload = json.dumps(self.command_payload(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(payload.encode()).hexdigest()
        key = f"command_sync:{self.application_id}:{scope}"
        if await self.storage.get_meta(key) == digest:
            log.info("slash commands unchanged since the last sync (%s); not syncing", scope)
            return False
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as error:
            log.error("syncing slash commands (%s) failed: %s; will retry next start", scope, error)
            return False
        await self.storage.set_meta(key, digest)
        log.info("synced %d slash command(s) (%s)", len(synced), scope)
        return True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info(
            "ready as %s in %d server(s) on shard(s) %s of %s; invite URL: %s",
            self.user,
            len(self.guilds),
            format_shard_ids(sorted(self.shards)),
            self.shard_count,
            invite_url(self.application_id or self.user.id),
        )

    async def close(self) -> None:
        try:
            if self._actions is not None:
                await self._actions.close()
            await super().close()
        finally:
            if self._actions is not None:
                await self._actions.finish()  # outcomes written behind, before the close
            if self._storage is not None:
                await self._storage.close()
