"""The storage interface every backend implements.

Cogs and the core talk to `Storage` only, never to a driver, so a PostgreSQL backend can
slot in beside SQLite without the callers knowing. Every per-guild method takes the
guild id first and every implementation filters by it: one guild can never read or
change another's rows.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage.models import (
    ActionOutcome,
    ActionRecord,
    Appeal,
    AppealDecision,
    AppealStatus,
    ErasureReport,
    Incident,
    IncidentStatus,
    MemberData,
    ModlogPress,
    ReminderRecord,
    StrikeRecord,
    WatchedChannel,
    WatchKind,
)

log = logging.getLogger(__name__)

# Called with the guild whose settings changed, or None when any guild's may have (e.g.
# after the notification channel reconnected and changes could have been missed).
SettingsListener = Callable[[int | None], Awaitable[None] | None]
SETTINGS_CHANNEL = "promptwarden_settings"

# The per-guild JSON settings columns of guild_settings. The backends interpolate these
# names into SQL, so only these literals are ever accepted.
SettingColumn = Literal["screening_rules", "enforcement", "privacy"]
SETTING_COLUMNS: tuple[SettingColumn, ...] = ("screening_rules", "enforcement", "privacy")


class StorageError(Exception):
    """The database cannot be used as it is; the message says what to do, in one line."""


class Storage(ABC):
    _settings_listeners: list[SettingsListener]

    async def subscribe_settings_changes(self, listener: SettingsListener) -> None:
        """Call `listener(guild_id)` whenever a guild's settings change.

        Processes cache per-guild configuration; this is how they learn to drop it. The
        base class delivers changes made through this same object (enough for SQLite,
        where one process owns the file); PostgreSQL also delivers other processes'
        changes, within a second or so, through LISTEN/NOTIFY.
        """
        self._listeners().append(listener)

    def _listeners(self) -> list[SettingsListener]:
        try:
            return self._settings_listeners
        except AttributeError:
            self._settings_listeners = []
            return self._settings_listeners

    async def _announce_settings_change(self, guild_id: int | None) -> None:
        """Run every listener; one failing listener must not starve the others."""
        for listener in list(self._listeners()):
            try:
                result = listener(guild_id)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a settings-change listener failed for guild %s", guild_id)

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
        source: str = "screening",
    ) -> int:
        """Record an incident and return its id (the existing one for a duplicate message
        or job, see `record_incident`). The excerpt is capped at EXCERPT_LIMIT."""
        incident_id, _ = await self.record_incident(
            guild_id=guild_id,
            channel_id=channel_id,
            message_id=message_id,
            user_id=user_id,
            prompt_excerpt=prompt_excerpt,
            categories=categories,
            severity=severity,
            verdict=verdict,
            matches=matches,
            action=action,
            status=status,
            created_at=created_at,
            job_key=job_key,
            source=source,
        )
        return incident_id

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
    async def find_incidents(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        category: str | None = None,
        status: IncidentStatus | None = None,
        verdict: Verdict | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        oldest_first: bool = False,
        limit: int = 50,
    ) -> list[Incident]:
        """Incidents matching every filter given (`category`: one of its categories).

        Newest first, or oldest first with `oldest_first`; `before_id`/`after_id` page
        by incident id in either direction (keyset paging: stable while new ones arrive).
        """

    @abstractmethod
    async def incidents_since(
        self, guild_id: int, since: datetime | None, *, limit: int = 50_000
    ) -> list[Incident]:
        """Every incident created at or after `since` (all when None), oldest first, at
        most `limit`: for exports and statistics."""

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
        source: str = "screening",
    ) -> tuple[int, bool]:
        """Record an incident once: returns (id, True) when new, (existing id, False) when
        the guild already has one for this message or this job key (whatever raised it:
        `source` is one of INCIDENT_SOURCES, and the first record keeps its own).

        The check is the database's unique keys, so it holds across restarts and processes.
        """

    @abstractmethod
    async def set_incident_modlog(
        self, guild_id: int, incident_id: int, channel_id: int, message_id: int
    ) -> None:
        """Where the incident's mod-log entry was posted, so later edits (a moderator's
        decision, an erasure) find it."""

    @abstractmethod
    async def set_appeal_modlog(
        self, guild_id: int, appeal_id: int, channel_id: int, message_id: int
    ) -> None:
        """Where the appeal's mod-log entry (with Accept and Reject) was posted."""

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
    async def list_unsettled_incidents(
        self,
        guild_id: int,
        *,
        since: datetime,
        planned: Mapping[str, Collection[str]],
        limit: int = 200,
    ) -> list[Incident]:
        """Incidents created at or after `since`, not dismissed, for which one of the actions
        planned for their kind (`planned[incident.action]`, e.g. "block" -> delete, strike,
        dm_warning, modlog) has no final outcome yet: none recorded, or only `failed` and
        `rate_limited`. What a stop half-way left undone; oldest first, at most `limit`."""

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

        At most one strike per incident: a repeat returns (total, total). The stored
        strike keeps (before, after) as `points_before` and `points_after`.
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
    async def revoke_active_strikes(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> list[StrikeRecord]:
        """Revoke every strike of the member still counting (a pardon); returns them as
        they were before revoking, so the caller can record who pardoned which incident."""

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

    # -- privacy: guild settings, member preferences, reminders, DM budget

    @abstractmethod
    async def get_privacy_config(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's privacy settings as saved (promptwarden.privacy validates)."""

    @abstractmethod
    async def set_privacy_config(self, guild_id: int, config: Mapping[str, Any]) -> None: ...

    @abstractmethod
    async def get_reminders_enabled(self, user_id: int) -> bool | None:
        """The person's own choice (for every guild), or None when they never made one."""

    @abstractmethod
    async def set_reminders_enabled(
        self, user_id: int, enabled: bool, *, now: datetime | None = None
    ) -> None: ...

    @abstractmethod
    async def claim_reminder(
        self,
        guild_id: int,
        user_id: int,
        kind: str,
        *,
        interval: timedelta,
        now: datetime | None = None,
    ) -> bool:
        """Atomically note a reminder as sent now, unless one of that kind went to that
        person in that guild within `interval`; True when the caller may send it."""

    @abstractmethod
    async def release_reminder(
        self, guild_id: int, user_id: int, kind: str, *, sent_at: datetime
    ) -> None:
        """Undo a claim whose reminder was never sent (e.g. the DM budget ran out)."""

    @abstractmethod
    async def get_reminder_choices(self, user_ids: Collection[int]) -> dict[int, bool]:
        """Each person's own reminder choice, for those of `user_ids` who made one: one
        round trip for many members (promptwarden.reminders seeds its table with it)."""

    @abstractmethod
    async def get_reminders_sent(
        self, guild_id: int, kind: str, user_ids: Collection[int]
    ) -> dict[int, datetime]:
        """When each of `user_ids` last got a reminder of `kind` in the guild, for those
        who got one (and whose record retention has not forgotten)."""

    @abstractmethod
    async def save_reminders(self, sent: Sequence[ReminderRecord]) -> None:
        """Note many reminders as sent, in one transaction: the write-behind batch of
        promptwarden.reminders. A stored time later than the one given is kept, so an
        old batch never moves a record back."""

    @abstractmethod
    async def take_dm_budget(
        self, guild_id: int, *, limit: int, now: datetime | None = None
    ) -> bool:
        """Count one DM against the guild's budget for the current minute; False (and
        nothing counted) when `limit` DMs were already sent in that minute."""

    # -- appeals

    @abstractmethod
    async def create_appeal(
        self,
        guild_id: int,
        incident_id: int,
        user_id: int,
        reason: str,
        *,
        now: datetime | None = None,
    ) -> Appeal | None:
        """A new open appeal; None when the incident (in this guild, of this user) does not
        exist or already has an open appeal. Reasons longer than 1,000 characters raise
        ValueError."""

    @abstractmethod
    async def get_appeal(self, guild_id: int, appeal_id: int) -> Appeal | None: ...

    @abstractmethod
    async def list_appeals(self, guild_id: int, incident_id: int) -> list[Appeal]:
        """The incident's appeals, oldest first."""

    @abstractmethod
    async def decide_appeal(
        self,
        guild_id: int,
        appeal_id: int,
        status: AppealStatus,
        moderator_id: int,
        *,
        now: datetime | None = None,
    ) -> AppealDecision | None:
        """Close an open appeal, in one transaction with its effect: accepted revokes the
        incident's strike and marks it dismissed; rejected marks an open incident upheld.
        None when the appeal is not open (two moderators pressing at once decide once)."""

    # -- a person's own data, across guilds (their export and erasure rights)

    @abstractmethod
    async def export_member_data(self, user_id: int) -> MemberData:
        """Everything stored about the person in every guild. Deliberately not scoped by
        guild: it answers the person's own request, never a moderator's."""

    @abstractmethod
    async def erase_member_data(self, user_id: int) -> ErasureReport:
        """Remove the person's preferences and reminder history and redact the prompt text
        of their incidents and the reasons of their appeals, keeping the action records."""

    # -- retention

    @abstractmethod
    async def stored_guild_ids(self) -> list[int]:
        """Guilds with incidents or reminder history stored (including guilds the bot has
        left, whose data must expire too)."""

    @abstractmethod
    async def delete_incidents_before(self, guild_id: int, cutoff: datetime) -> int:
        """Delete the guild's incidents created before `cutoff` with their actions, presses,
        strikes and appeals; returns how many incidents were deleted."""

    @abstractmethod
    async def delete_reminders_before(self, guild_id: int, cutoff: datetime) -> int:
        """Forget reminders sent before `cutoff` (they no longer hold back the next one)."""

    # -- bot-wide key/value (e.g. the hash of the last synced command tree)
    @abstractmethod
    async def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None: ...
