"""Every setting of a guild in one object, and the one cache that holds them.

The watcher reads a guild's settings for every message, enforcement for every incident,
privacy for every DM. One `GuildState` carries all of them (rules, enforcement, privacy,
watched channels, generator bots, mod-log channel), loaded in one go; `GuildStates`
keeps them per guild and drops one only when storage says that guild's settings changed
(`Storage.subscribe_settings_changes`: local writes announce themselves, PostgreSQL also
relays other processes' writes by NOTIFY). No time to live: a setting applies the moment
its change is announced, and an unchanged guild is never read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from promptwarden.enforcement import EnforcementConfig
from promptwarden.privacy import PrivacyConfig
from promptwarden.screening.extract import GENERATOR_BOT_IDS
from promptwarden.screening.rules import GuildRules
from promptwarden.storage import Storage, WatchedChannel

log = logging.getLogger("promptwarden.settings")

# Guilds kept at once; the least recently used one is dropped beyond this.
DEFAULT_MAX_GUILDS = 10_000


@dataclass(frozen=True, slots=True)
class GuildState:
    """Everything the bot needs to know about one guild's settings."""

    guild_id: int
    watched: tuple[WatchedChannel, ...] = ()
    generator_bots: frozenset[int] = GENERATOR_BOT_IDS
    rules: GuildRules = field(default_factory=GuildRules)
    config: EnforcementConfig = field(default_factory=EnforcementConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    modlog_channel_id: int | None = None

    @property
    def watched_ids(self) -> frozenset[int]:
        return frozenset(w.channel_id for w in self.watched)

    def in_scope(self, channel_chain: Iterable[int | None]) -> bool:
        """`channel_chain`: the channel, its parent (for a thread or forum post) and the
        category above them. A watched channel covers its threads; a category covers every
        channel, thread and forum post inside it. Exempt channels win."""
        chain = {c for c in channel_chain if c is not None}
        if chain & self.config.exempt_channel_ids:
            return False
        return bool(chain & self.watched_ids)

    def is_generator(self, user_id: int) -> bool:
        return user_id in self.generator_bots


async def load_guild_state(storage: Storage, guild_id: int) -> GuildState:
    """Read every setting of the guild, in one read. Broken stored settings fall back to
    the defaults with a warning: screening, enforcement and DMs must go on."""
    saved = await storage.get_guild_settings(guild_id)
    try:
        rules = GuildRules.from_dict(saved.screening_rules)
    except ValueError as error:
        log.warning("guild %d: screening rules ignored, using defaults: %s", guild_id, error)
        rules = GuildRules()
    try:
        config = EnforcementConfig.from_dict(saved.enforcement)
    except ValueError as error:
        log.warning("guild %d: enforcement settings ignored, using defaults: %s", guild_id, error)
        config = EnforcementConfig()
    try:
        privacy = PrivacyConfig.from_dict(saved.privacy)
    except ValueError as error:
        log.warning("guild %d: privacy settings ignored, using defaults: %s", guild_id, error)
        privacy = PrivacyConfig()
    return GuildState(
        guild_id=guild_id,
        watched=saved.watched,
        generator_bots=GENERATOR_BOT_IDS | frozenset(saved.generator_bots),
        rules=rules,
        config=config,
        privacy=privacy,
        modlog_channel_id=saved.modlog_channel_id,
    )


class GuildStates:
    """Per-guild settings, each loaded once and kept until its guild's settings change.

    Concurrent callers for a guild not loaded yet share one load (one future), so a burst
    of messages reads the database once. A change announced while a load is running makes
    that load's result stale: it is handed to the callers already waiting but not kept.
    Bounded: beyond `max_guilds` the least recently used guild is dropped.
    """

    def __init__(self, storage: Storage, *, max_guilds: int = DEFAULT_MAX_GUILDS) -> None:
        self._storage = storage
        self._max = max(1, max_guilds)
        self._states: OrderedDict[int, GuildState] = OrderedDict()
        # guild -> (the load running, the generations it started in)
        self._loading: dict[int, tuple[asyncio.Task[GuildState], tuple[int, int]]] = {}
        # Bumped by every invalidation of a guild: a load that started before it is stale.
        self._generation: dict[int, int] = {}
        self._all_generation = 0
        self.loads = 0  # how many times storage was read, for tests and status

    async def subscribe(self) -> None:
        """Drop a guild whenever storage announces a change to its settings."""
        await self._storage.subscribe_settings_changes(self._on_change)

    def _on_change(self, guild_id: int | None) -> None:
        if guild_id is None:
            self.clear()
        else:
            self.forget(guild_id)

    def forget(self, guild_id: int) -> None:
        self._states.pop(guild_id, None)
        self._generation[guild_id] = self._generation.get(guild_id, 0) + 1

    def clear(self) -> None:
        self._states.clear()
        self._all_generation += 1

    invalidate = forget

    def cached(self, guild_id: int) -> GuildState | None:
        return self._states.get(guild_id)

    async def get(self, guild_id: int) -> GuildState:
        state = self._states.get(guild_id)
        if state is not None:
            self._states.move_to_end(guild_id)
            return state
        now = (self._generation.get(guild_id, 0), self._all_generation)
        entry = self._loading.get(guild_id)
        # A load that began before the latest change may have read the old settings: a
        # caller arriving after the change starts a fresh one instead of sharing it.
        if entry is None or entry[1] != now:
            task = asyncio.create_task(self._load(guild_id, now), name=f"guild-state-{guild_id}")
            entry = self._loading[guild_id] = (task, now)
        # Shielded: one caller being cancelled must not cancel the others' load.
        return await asyncio.shield(entry[0])

    async def _load(self, guild_id: int, started: tuple[int, int]) -> GuildState:
        try:
            self.loads += 1
            state = await load_guild_state(self._storage, guild_id)
        finally:
            entry = self._loading.get(guild_id)
            if entry is not None and entry[0] is asyncio.current_task():
                del self._loading[guild_id]
        if started == (self._generation.get(guild_id, 0), self._all_generation):
            self._states[guild_id] = state
            self._states.move_to_end(guild_id)
            while len(self._states) > self._max:
                self._states.popitem(last=False)
        return state
