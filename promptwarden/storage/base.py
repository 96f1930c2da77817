"""The storage interface every backend implements.

Cogs and the core talk to `Storage` only, never to a driver, so a PostgreSQL backend can
slot in beside SQLite without the callers knowing. Every per-guild method takes the
guild id first and every implementation filters by it: one guild can never read or
change another's rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage.models import (
    ActionOutcome,
    ActionRecord,
    Incident,
    IncidentStatus,
    ModlogPress,
    StrikeRecord,
    WatchedChannel,
    WatchKind,
)


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
        job_key: str | None = None,
    ) -> int:
        """Record an incident and return its id (the existing one for a duplicate message
        or job, see `record_incident`). The excerpt is capped at EXCERPT_LIMIT."""

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

    @abstractmethod
    async def record_incident(
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
        job_key: str | None = None,
    ) -> tuple[int, bool]:
        """Record an incident once: returns (id, True) when new, (existing id, False) when
        the guild already has one for this message or this job key.

        The check is the database's unique keys, so it holds across restarts and processes.
        """

    @abstractmethod
    async def set_incident_status(
        self, guild_id: int, incident_id: int, status: IncidentStatus
    ) -> bool:
        """True when the incident exists in this guild (whether or not the status changed)."""

    # -- incident actions and mod-log presses
    @abstractmethod
    async def record_action_outcome(
        self,
        guild_id: int,
        incident_id: int,
        action: str,
        outcome: ActionOutcome,
        detail: str = "",
        *,
        at: datetime | None = None,
    ) -> None: ...

    @abstractmethod
    async def list_action_outcomes(self, guild_id: int, incident_id: int) -> list[ActionRecord]:
        """Oldest first."""

    @abstractmethod
    async def record_modlog_press(
        self,
        guild_id: int,
        incident_id: int,
        moderator_id: int,
        action: str,
        *,
        at: datetime | None = None,
    ) -> None: ...

    @abstractmethod
    async def list_modlog_presses(self, guild_id: int, incident_id: int) -> list[ModlogPress]:
        """Oldest first."""

    # -- strikes
    @abstractmethod
    async def add_strike(
        self,
        guild_id: int,
        user_id: int,
        points: int,
        *,
        incident_id: int | None,
        window: timedelta,
        now: datetime | None = None,
    ) -> tuple[int, int]:
        """Add a strike; returns the member's active points (before, after) read in the
        same transaction as the insert, so concurrent strikes cross a threshold once.

        At most one strike per incident: a repeat returns (total, total).
        """

    @abstractmethod
    async def revoke_strike_for_incident(
        self, guild_id: int, incident_id: int, *, now: datetime | None = None
    ) -> bool:
        """True when an active strike of that incident was revoked."""

    @abstractmethod
    async def active_points(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> int: ...

    @abstractmethod
    async def list_strikes(self, guild_id: int, user_id: int) -> list[StrikeRecord]:
        """Every strike of the member, revoked and expired included, newest first."""

    # -- enforcement settings and catch-up
    @abstractmethod
    async def get_enforcement_config(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's enforcement settings as saved (promptwarden.enforcement validates)."""

    @abstractmethod
    async def set_enforcement_config(self, guild_id: int, config: Mapping[str, Any]) -> None: ...

    @abstractmethod
    async def get_catchup_cursor(self, guild_id: int, channel_id: int) -> int | None:
        """The newest message id screened in that channel, if any."""

    @abstractmethod
    async def set_catchup_cursor(self, guild_id: int, channel_id: int, message_id: int) -> None:
        """Move the cursor forward; an older id never moves it back."""

    # -- bot-wide key/value (e.g. the hash of the last synced command tree)
    @abstractmethod
    async def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None: ...
