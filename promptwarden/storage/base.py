"""The storage interface every backend implements.

Cogs and the core talk to `Storage` only, never to a driver, so a PostgreSQL backend can
slot in beside SQLite without the callers knowing. Every per-guild method takes the
guild id first and every implementation filters by it: one guild can never read or
change another's rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage.models import Incident, IncidentStatus, WatchedChannel, WatchKind


class StorageError(Exception):
    """The database cannot be used as it is; the message says what to do, in one line."""


class Storage(ABC):
    @property
    @abstractmethod
    def version_at_open(self) -> int:
        """Schema version found before migrating (0 for a new database)."""

    @abstractmethod
    async def close(self) -> None:
        """Idempotent."""

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def schema_version(self) -> int: ...

    # -- guild settings
    @abstractmethod
    async def get_modlog_channel(self, guild_id: int) -> int | None: ...

    @abstractmethod
    async def set_modlog_channel(self, guild_id: int, channel_id: int | None) -> None: ...

    @abstractmethod
    async def get_screening_rules(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's rule overrides as saved, or None when it never set any."""

    @abstractmethod
    async def set_screening_rules(self, guild_id: int, rules: Mapping[str, Any]) -> None:
        """Store a JSON-serialisable blob; the screening engine validates its content."""

    # -- watched channels
    @abstractmethod
    async def add_watched_channel(
        self, guild_id: int, channel_id: int, kind: WatchKind = "channel"
    ) -> bool:
        """True when newly added; re-adding updates the kind and returns False."""

    @abstractmethod
    async def remove_watched_channel(self, guild_id: int, channel_id: int) -> bool:
        """True when something was removed."""

    @abstractmethod
    async def list_watched_channels(self, guild_id: int) -> list[WatchedChannel]: ...

    # -- generator bots (besides the built-in Midjourney and niji ids)
    @abstractmethod
    async def add_generator_bot(self, guild_id: int, bot_id: int) -> bool: ...

    @abstractmethod
    async def remove_generator_bot(self, guild_id: int, bot_id: int) -> bool: ...

    @abstractmethod
    async def list_generator_bots(self, guild_id: int) -> list[int]: ...

    # -- incidents
    @abstractmethod
    async def add_incident(
        self,
        *,
        guild_id: int,
        channel_id: int,
        message_id: int | None,
        user_id: int,
        prompt_excerpt: str,
        categories: Sequence[str],
        severity: Severity,
        verdict: Verdict,
        matches: Sequence[Mapping[str, Any]],
        action: str,
        status: IncidentStatus = "open",
        created_at: datetime | None = None,
    ) -> int:
        """Record an incident and return its id. The excerpt is capped at EXCERPT_LIMIT."""

    @abstractmethod
    async def get_incident(self, guild_id: int, incident_id: int) -> Incident | None: ...

    @abstractmethod
    async def list_incidents(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        status: IncidentStatus | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Incident]:
        """Newest first; `before_id` pages backwards from an incident id."""

    # -- bot-wide key/value (e.g. the hash of the last synced command tree)
    @abstractmethod
    async def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None: ...
