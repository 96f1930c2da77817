"""Every query, once, for SQLite and PostgreSQL alike.

Cogs and the core talk to `Storage` only. Every per-guild method takes the guild id first
and filters by it: one guild can never read or change another's rows. What truly differs
between the databases (row locks, notifications, upsert syntax, JSON lookups) is asked of
`self._db`, a `Backend` from `backends`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import schema as t
from promptwarden.storage.backends import Backend, StorageError
from promptwarden.storage.models import (
    ACTION_OUTCOMES,
    APPEAL_REASON_LIMIT,
    APPEAL_STATUSES,
    ERASED_TEXT,
    EXCERPT_LIMIT,
    INCIDENT_SOURCES,
    INCIDENT_STATUSES,
    RATE_LIMIT_KINDS,
    REPORT_KIND,
    RETRYABLE_OUTCOMES,
    WATCH_KINDS,
    ActionOutcome,
    ActionRecord,
    Appeal,
    AppealDecision,
    AppealStatus,
    ErasureReport,
    Incident,
    IncidentStatus,
    MemberData,
    MemberPreferences,
    ModlogPress,
    OutcomeRow,
    RecordedIncident,
    ReminderRecord,
    StrikeRecord,
    WatchedChannel,
    WatchKind,
)

log = logging.getLogger(__name__)

# Called with the guild whose settings changed, or None when any guild's may have (e.g.
# after the notification channel reconnected and changes could have been missed).
SettingsListener = Callable[[int | None], Awaitable[None] | None]
MAX_PAGE = 500

_appeal_columns = [c for c in t.appeals.c]


def _now() -> datetime:
    return datetime.now(UTC)


class Storage:
    def __init__(self, backend: Backend, version_at_open: int) -> None:
        self._db = backend
        self._version_at_open = version_at_open
        self._listeners: list[SettingsListener] = []
        backend.on_remote_change = self._announce
        # Built once: the hot paths of every screened violation.
        self._insert_incident = (
            backend.insert(t.incidents).on_conflict_do_nothing().returning(t.incidents.c.id)
        )
        self._insert_strike = backend.insert(t.strikes).on_conflict_do_nothing()
        self._insert_incident_row = (
            backend.insert(t.incidents).on_conflict_do_nothing().returning(*t.incidents.c)
        )

    @property
    def version_at_open(self) -> int:
        """Schema version found before migrating (0 for a new database)."""
        return self._version_at_open

    @property
    def backend(self) -> Backend:
        return self._db

    async def close(self) -> None:
        """Idempotent."""
        await self._db.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def schema_version(self) -> int:
        async with self._db.read() as conn:
            return await self._db.read_version(conn)

    # -- plumbing

    async def _rows(self, statement: Any) -> Sequence[Row[Any]]:
        async with self._db.read() as conn:
            return (await conn.execute(statement)).all()

    async def _value(self, statement: Any) -> Any:
        async with self._db.read() as conn:
            return (await conn.execute(statement)).scalar()

    async def _count(self, statement: Any) -> int:
        async with self._db.write() as conn:
            return max((await conn.execute(statement)).rowcount, 0)

    # -- settings-change news

    async def subscribe_settings_changes(self, listener: SettingsListener) -> None:
        """Call `listener(guild_id)` whenever a guild's settings change.

        Processes cache per-guild configuration; this is how they learn to drop it. Changes
        made through this object are delivered once committed; on PostgreSQL other
        processes' changes arrive too, within a second or so, through LISTEN/NOTIFY.
        """
        self._listeners.append(listener)
        await self._db.listen()

    async def _announce(self, guild_id: int | None) -> None:
        """Run every listener; one failing listener must not starve the others."""
        for listener in list(self._listeners):
            try:
                result = listener(guild_id)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a settings-change listener failed for guild %s", guild_id)

    @asynccontextmanager
    async def _settings_write(self, guild_id: int) -> AsyncIterator[AsyncConnection]:
        """A settings write: other processes hear of it at commit, this one right after."""
        async with self._db.write() as conn:
            yield conn
            await self._db.notify(conn, guild_id)
        await self._announce(guild_id)

    # -- guild settings

    async def get_modlog_channel(self, guild_id: int) -> int | None:
        gs = t.guild_settings
        return cast(
            int | None,
            await self._value(select(gs.c.modlog_channel_id).where(gs.c.guild_id == guild_id)),
        )

    async def set_modlog_channel(self, guild_id: int, channel_id: int | None) -> None:
        await self._save_setting(guild_id, "modlog_channel_id", channel_id)

    async def _get_setting(self, column: str, guild_id: int) -> dict[str, Any] | None:
        gs = t.guild_settings
        value = await self._value(select(gs.c[column]).where(gs.c.guild_id == guild_id))
        return None if value is None else dict(value)

    async def _save_setting(self, guild_id: int, column: str, value: Any) -> None:
        if column not in (*t.SETTING_COLUMNS, "modlog_channel_id"):
            raise ValueError(f"not a settings column: {column!r}")
        row = {"guild_id": guild_id, column: value, "updated_at": _now()}
        upsert = self._db.insert(t.guild_settings).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["guild_id"],
            set_={column: upsert.excluded[column], "updated_at": upsert.excluded.updated_at},
        )
        async with self._settings_write(guild_id) as conn:
            await conn.execute(upsert)

    async def get_screening_rules(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's rule overrides as saved, or None when it never set any."""
        return await self._get_setting("screening_rules", guild_id)

    async def set_screening_rules(self, guild_id: int, rules: Mapping[str, Any]) -> None:
        """Store a JSON-serialisable blob; the screening engine validates its content."""
        await self._save_setting(guild_id, "screening_rules", dict(rules))

    async def get_enforcement_config(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's enforcement settings as saved (promptwarden.enforcement validates)."""
        return await self._get_setting("enforcement", guild_id)

    async def set_enforcement_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._save_setting(guild_id, "enforcement", dict(config))

    async def get_privacy_config(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's privacy settings as saved (promptwarden.privacy validates)."""
        return await self._get_setting("privacy", guild_id)

    async def set_privacy_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._save_setting(guild_id, "privacy", dict(config))

    # -- watched channels and generator bots (besides the built-in Midjourney and niji ids)

    async def add_watched_channel(
        self, guild_id: int, channel_id: int, kind: WatchKind = "channel"
    ) -> bool:
        """True when newly added; re-adding updates the kind and returns False."""
        if kind not in WATCH_KINDS:
            raise ValueError(f"kind must be one of {WATCH_KINDS}, not {kind!r}")
        wc = t.watched_channels
        row = {"guild_id": guild_id, "channel_id": channel_id, "kind": kind}
        async with self._settings_write(guild_id) as conn:
            added = await conn.execute(self._db.insert(wc).values(row).on_conflict_do_nothing())
            if added.rowcount > 0:
                return True
            key = and_(wc.c.guild_id == guild_id, wc.c.channel_id == channel_id)
            await conn.execute(update(wc).where(key).values(kind=kind))
        return False

    async def remove_watched_channel(self, guild_id: int, channel_id: int) -> bool:
        """True when something was removed."""
        wc = t.watched_channels
        async with self._settings_write(guild_id) as conn:
            gone = await conn.execute(
                delete(wc).where(wc.c.guild_id == guild_id, wc.c.channel_id == channel_id)
            )
        return gone.rowcount > 0

    async def list_watched_channels(self, guild_id: int) -> list[WatchedChannel]:
        wc = t.watched_channels
        rows = await self._rows(
            select(wc).where(wc.c.guild_id == guild_id).order_by(wc.c.kind, wc.c.channel_id)
        )
        return [WatchedChannel(r.guild_id, r.channel_id, r.kind) for r in rows]

    async def add_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        row = {"guild_id": guild_id, "bot_id": bot_id}
        async with self._settings_write(guild_id) as conn:
            added = await conn.execute(
                self._db.insert(t.generator_bots).values(row).on_conflict_do_nothing()
            )
        return added.rowcount > 0

    async def remove_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        gb = t.generator_bots
        async with self._settings_write(guild_id) as conn:
            gone = await conn.execute(
                delete(gb).where(gb.c.guild_id == guild_id, gb.c.bot_id == bot_id)
            )
        return gone.rowcount > 0

    async def list_generator_bots(self, guild_id: int) -> list[int]:
        gb = t.generator_bots
        rows = await self._rows(
            select(gb.c.bot_id).where(gb.c.guild_id == guild_id).order_by(gb.c.bot_id)
        )
        return [r[0] for r in rows]

    # -- incidents

    async def add_incident(self, **fields: Any) -> int:
        """Record an incident and return its id (the existing one for a duplicate message
        or job, see `record_incident`). The excerpt is capped at EXCERPT_LIMIT."""
        incident_id, _ = await self.record_incident(**fields)
        return incident_id

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
        the guild already has one for this message or this job key.

        The check is the database's unique keys, so it holds across restarts and processes.
        """
        row = _incident_row(
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
        i = t.incidents
        async with self._db.write() as conn:
            # A conflicting insert waits for a concurrent one of the same message or job to
            # commit, so the SELECT after it finds that row: one incident, ever.
            new = (await conn.execute(self._insert_incident, row)).scalar()
            if new is not None:
                return int(new), True
            same = or_(i.c.message_id == message_id, i.c.job_key == job_key)
            found = await conn.execute(
                select(i.c.id).where(i.c.guild_id == guild_id, same).order_by(i.c.id).limit(1)
            )
            existing = found.scalar()
        if existing is None:  # pragma: no cover - a conflict means such a row exists
            raise StorageError("an incident conflicted with a row that then vanished; retry")
        return int(existing), False

    async def set_incident_status(
        self, guild_id: int, incident_id: int, status: IncidentStatus
    ) -> bool:
        """True when the incident exists in this guild (whether or not the status changed)."""
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}, not {status!r}")
        i = t.incidents
        return (
            await self._count(
                update(i)
                .where(i.c.guild_id == guild_id, i.c.id == incident_id)
                .values(status=status)
            )
            > 0
        )

    async def set_incident_modlog(
        self, guild_id: int, incident_id: int, channel_id: int, message_id: int
    ) -> None:
        """Where the incident's mod-log entry is, for later edits."""
        i = t.incidents
        await self._count(
            update(i)
            .where(i.c.guild_id == guild_id, i.c.id == incident_id)
            .values(modlog_channel_id=channel_id, modlog_message_id=message_id)
        )

    async def get_incident(self, guild_id: int, incident_id: int) -> Incident | None:
        i = t.incidents
        rows = await self._rows(select(i).where(i.c.guild_id == guild_id, i.c.id == incident_id))
        return _incident(rows[0]) if rows else None

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
        return await self.find_incidents(
            guild_id, user_id=user_id, status=status, since=since, before_id=before_id, limit=limit
        )

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
        i = t.incidents
        where: list[ColumnElement[bool]] = [i.c.guild_id == guild_id]
        if user_id is not None:
            where.append(i.c.user_id == user_id)
        if category is not None:
            where.append(self._db.has_category(category))
        if status is not None:
            where.append(i.c.status == status)
        if verdict is not None:
            where.append(i.c.verdict == Verdict(verdict).value)
        if since is not None:
            where.append(i.c.created_at >= since)
        if before_id is not None:
            where.append(i.c.id < before_id)
        if after_id is not None:
            where.append(i.c.id > after_id)
        order = i.c.id.asc() if oldest_first else i.c.id.desc()
        query = select(i).where(*where).order_by(order).limit(max(1, min(limit, MAX_PAGE)))
        return [_incident(r) for r in await self._rows(query)]

    async def incidents_since(
        self, guild_id: int, since: datetime | None, *, limit: int = 50_000
    ) -> list[Incident]:
        """Every incident created at or after `since` (all when None), oldest first, at
        most `limit`: for exports and statistics."""
        i = t.incidents
        query = select(i).where(i.c.guild_id == guild_id)
        if since is not None:
            query = query.where(i.c.created_at >= since)
        query = query.order_by(i.c.created_at, i.c.id).limit(max(1, limit))
        return [_incident(r) for r in await self._rows(query)]

    # -- incident actions and mod-log presses

    async def record_action_outcome(
        self,
        guild_id: int,
        incident_id: int,
        action: str,
        outcome: ActionOutcome,
        detail: str = "",
        *,
        at: datetime | None = None,
    ) -> None:
        if outcome not in ACTION_OUTCOMES:
            raise ValueError(f"outcome must be one of {ACTION_OUTCOMES}, not {outcome!r}")
        i, a = t.incidents, t.incident_actions
        source = select(
            i.c.guild_id,
            i.c.id,
            literal(action),
            literal(outcome),
            literal(detail[:500]),
            literal(at or _now(), t.UtcTime),
        ).where(i.c.guild_id == guild_id, i.c.id == incident_id)
        await self._count(
            insert(a).from_select(
                ["guild_id", "incident_id", "action", "outcome", "detail", "at"], source
            )
        )

    async def list_action_outcomes(self, guild_id: int, incident_id: int) -> list[ActionRecord]:
        """Oldest first."""
        a = t.incident_actions
        rows = await self._rows(
            select(a)
            .where(a.c.guild_id == guild_id, a.c.incident_id == incident_id)
            .order_by(a.c.id)
        )
        return [_action(r) for r in rows]

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
        i, a = t.incidents, t.incident_actions

        def settled(action: str) -> ColumnElement[bool]:
            return exists().where(
                a.c.guild_id == i.c.guild_id,
                a.c.incident_id == i.c.id,
                a.c.action == action,
                a.c.outcome.not_in(RETRYABLE_OUTCOMES),
            )

        kinds = [
            and_(i.c.action == kind, or_(*(not_(settled(action)) for action in actions)))
            for kind, actions in planned.items()
            if actions
        ]
        if not kinds:
            return []
        query = (
            select(i)
            .where(i.c.guild_id == guild_id, i.c.created_at >= since, i.c.status != "dismissed")
            .where(or_(*kinds))
            .order_by(i.c.id)
            .limit(max(1, min(limit, MAX_PAGE)))
        )
        return [_incident(r) for r in await self._rows(query)]

    async def record_modlog_press(
        self,
        guild_id: int,
        incident_id: int,
        moderator_id: int,
        action: str,
        *,
        at: datetime | None = None,
    ) -> None:
        i = t.incidents
        source = select(
            i.c.guild_id,
            i.c.id,
            literal(moderator_id),
            literal(action),
            literal(at or _now(), t.UtcTime),
        ).where(i.c.guild_id == guild_id, i.c.id == incident_id)
        await self._count(
            insert(t.modlog_presses).from_select(
                ["guild_id", "incident_id", "moderator_id", "action", "at"], source
            )
        )

    async def list_modlog_presses(self, guild_id: int, incident_id: int) -> list[ModlogPress]:
        """Oldest first."""
        p = t.modlog_presses
        rows = await self._rows(
            select(p.c.incident_id, p.c.moderator_id, p.c.action, p.c.at)
            .where(p.c.guild_id == guild_id, p.c.incident_id == incident_id)
            .order_by(p.c.id)
        )
        return [ModlogPress(r.incident_id, r.moderator_id, r.action, r.at) for r in rows]

    # -- strikes

    @staticmethod
    def _active(guild_id: int, user_id: int, cutoff: datetime) -> ColumnElement[bool]:
        s = t.strikes
        return and_(
            s.c.guild_id == guild_id,
            s.c.user_id == user_id,
            s.c.revoked_at.is_(None),
            s.c.created_at > cutoff,
        )

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
        if points <= 0:
            raise ValueError("a strike needs at least one point")
        now = now or _now()
        key = {"guild_id": guild_id, "user_id": user_id, "cutoff": now - window}
        async with self._db.write() as conn:
            # One member's strikes queue behind this lock until commit, whichever process
            # adds them; the next statement sees every strike committed before.
            await self._db.lock_member(conn, guild_id, user_id)
            before = int((await conn.execute(_ACTIVE_POINTS, key)).scalar_one())
            row = {
                "guild_id": guild_id,
                "user_id": user_id,
                "incident_id": incident_id,
                "points": points,
                "created_at": now,
                "points_before": before,
                "points_after": before + points,
            }
            added = await conn.execute(self._insert_strike, row)
        return before, before + points if added.rowcount > 0 else before

    async def revoke_strike_for_incident(
        self, guild_id: int, incident_id: int, *, now: datetime | None = None
    ) -> bool:
        """True when an active strike of that incident was revoked."""
        s = t.strikes
        key = and_(s.c.guild_id == guild_id, s.c.incident_id == incident_id)
        return (
            await self._count(
                update(s).where(key, s.c.revoked_at.is_(None)).values(revoked_at=now or _now())
            )
            > 0
        )

    async def active_points(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> int:
        key = {"guild_id": guild_id, "user_id": user_id, "cutoff": (now or _now()) - window}
        async with self._db.read() as conn:
            return int((await conn.execute(_ACTIVE_POINTS, key)).scalar_one())

    async def revoke_active_strikes(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> list[StrikeRecord]:
        """Revoke every strike of the member still counting (a pardon); returns them as
        they were before revoking, so the caller can record who pardoned which incident."""
        now = now or _now()
        s = t.strikes
        active = self._active(guild_id, user_id, now - window)
        async with self._db.write() as conn:
            await self._db.lock_member(conn, guild_id, user_id)
            rows = (
                await conn.execute(
                    select(s).where(active).order_by(s.c.id.desc()).with_for_update()
                )
            ).all()
            ids = [r.id for r in rows]
            if ids:
                await conn.execute(update(s).where(s.c.id.in_(ids)).values(revoked_at=now))
        return [_strike(r) for r in rows]

    async def list_strikes(self, guild_id: int, user_id: int) -> list[StrikeRecord]:
        """Every strike of the member, revoked and expired included, newest first."""
        s = t.strikes
        rows = await self._rows(
            select(s)
            .where(s.c.guild_id == guild_id, s.c.user_id == user_id)
            .order_by(s.c.id.desc())
        )
        return [_strike(r) for r in rows]

    # -- catch-up

    async def get_catchup_cursor(self, guild_id: int, channel_id: int) -> int | None:
        """The newest message id screened in that channel, if any."""
        c = t.catchup_cursors
        return cast(
            int | None,
            await self._value(
                select(c.c.last_message_id).where(
                    c.c.guild_id == guild_id, c.c.channel_id == channel_id
                )
            ),
        )

    async def set_catchup_cursor(self, guild_id: int, channel_id: int, message_id: int) -> None:
        """Move the cursor forward; an older id never moves it back."""
        c = t.catchup_cursors
        row = {"guild_id": guild_id, "channel_id": channel_id, "last_message_id": message_id}
        upsert = self._db.insert(c).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["guild_id", "channel_id"],
            set_={"last_message_id": upsert.excluded.last_message_id},
            where=upsert.excluded.last_message_id > c.c.last_message_id,
        )
        await self._count(upsert)

    # -- privacy: member preferences, reminders, DM budget

    async def get_reminders_enabled(self, user_id: int) -> bool | None:
        """The person's own choice (for every guild), or None when they never made one."""
        m = t.member_preferences
        value = await self._value(select(m.c.reminders_enabled).where(m.c.user_id == user_id))
        return None if value is None else bool(value)

    async def set_reminders_enabled(
        self, user_id: int, enabled: bool, *, now: datetime | None = None
    ) -> None:
        row = {"user_id": user_id, "reminders_enabled": enabled, "updated_at": now or _now()}
        upsert = self._db.insert(t.member_preferences).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "reminders_enabled": upsert.excluded.reminders_enabled,
                "updated_at": upsert.excluded.updated_at,
            },
        )
        await self._count(upsert)

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
        now = now or _now()
        r = t.reminders_sent
        row = {"guild_id": guild_id, "user_id": user_id, "kind": kind, "sent_at": now}
        # One statement: two processes seeing the same prompt claim it once.
        upsert = self._db.insert(r).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["guild_id", "user_id", "kind"],
            set_={"sent_at": upsert.excluded.sent_at},
            where=r.c.sent_at <= now - interval,
        )
        return await self._count(upsert) > 0

    async def release_reminder(
        self, guild_id: int, user_id: int, kind: str, *, sent_at: datetime
    ) -> None:
        """Undo a claim whose reminder was never sent (e.g. the DM budget ran out)."""
        r = t.reminders_sent
        await self._count(
            delete(r).where(
                r.c.guild_id == guild_id,
                r.c.user_id == user_id,
                r.c.kind == kind,
                r.c.sent_at == sent_at,
            )
        )

    async def get_reminder_choices(self, user_ids: Collection[int]) -> dict[int, bool]:
        """Each person's own reminder choice, for those of `user_ids` who made one: one
        round trip for many members (promptwarden.reminders seeds its table with it)."""
        m = t.member_preferences
        rows: list[Any] = []
        for chunk in _chunks(user_ids):
            query = select(m.c.user_id, m.c.reminders_enabled).where(m.c.user_id.in_(chunk))
            rows += await self._rows(query)
        return {int(r[0]): bool(r[1]) for r in rows}

    async def get_reminders_sent(
        self, guild_id: int, kind: str, user_ids: Collection[int]
    ) -> dict[int, datetime]:
        """When each of `user_ids` last got a reminder of `kind` in the guild, for those
        who got one (and whose record retention has not forgotten)."""
        r = t.reminders_sent
        rows: list[Any] = []
        for chunk in _chunks(user_ids):
            query = select(r.c.user_id, r.c.sent_at).where(
                r.c.guild_id == guild_id, r.c.kind == kind, r.c.user_id.in_(chunk)
            )
            rows += await self._rows(query)
        return {int(x[0]): x[1] for x in rows}

    async def save_reminders(self, sent: Sequence[ReminderRecord]) -> None:
        """Note many reminders as sent, in one transaction: the write-behind batch of
        promptwarden.reminders. A stored time later than the one given is kept, so an
        old batch never moves a record back."""
        if not sent:
            return
        r = t.reminders_sent
        upsert = self._db.insert(r)
        upsert = upsert.on_conflict_do_update(
            index_elements=["guild_id", "user_id", "kind"],
            set_={"sent_at": upsert.excluded.sent_at},
            where=r.c.sent_at < upsert.excluded.sent_at,
        )
        async with self._db.write() as conn:
            for x in sent:
                row = {"guild_id": x.guild_id, "user_id": x.user_id, "kind": x.kind}
                await conn.execute(upsert, {**row, "sent_at": x.sent_at})

    async def take_dm_budget(
        self, guild_id: int, *, limit: int, now: datetime | None = None
    ) -> bool:
        """Count one DM against the guild's budget for the current minute; False (and
        nothing counted) when `limit` DMs were already sent in that minute."""
        if limit <= 0:
            return False
        return await self._count(self._dm_budget_upsert(guild_id, limit, now or _now())) > 0

    def _dm_budget_upsert(self, guild_id: int, limit: int, now: datetime) -> Any:
        window = now.astimezone(UTC).replace(second=0, microsecond=0)
        b = t.dm_budget
        # A new minute starts the count again; within the minute it counts up to `limit`.
        # SET reads the old row, and the WHERE refuses the update once the limit is reached.
        upsert = self._db.insert(b).values(guild_id=guild_id, window_start=window, count=1)
        same_minute = b.c.window_start == upsert.excluded.window_start
        return upsert.on_conflict_do_update(
            index_elements=["guild_id"],
            set_={
                "count": case((same_minute, b.c.count + 1), else_=1),
                "window_start": upsert.excluded.window_start,
            },
            where=or_(not_(same_minute), b.c.count < limit),
        )

    # -- appeals

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
        if len(reason) > APPEAL_REASON_LIMIT:
            raise ValueError(f"an appeal's reason is at most {APPEAL_REASON_LIMIT} characters")
        i, a = t.incidents, t.appeals
        source = select(
            i.c.guild_id,
            i.c.id,
            i.c.user_id,
            literal(reason, t.CleanText),
            literal("open"),
            literal(now or _now(), t.UtcTime),
        ).where(i.c.guild_id == guild_id, i.c.id == incident_id, i.c.user_id == user_id)
        statement = self._db.insert(a).from_select(
            ["guild_id", "incident_id", "user_id", "reason", "status", "created_at"], source
        )
        async with self._db.write() as conn:
            new = await conn.execute(statement.on_conflict_do_nothing().returning(*_appeal_columns))
            row = new.first()
        return None if row is None else _appeal(row)

    async def set_appeal_modlog(
        self, guild_id: int, appeal_id: int, channel_id: int, message_id: int
    ) -> None:
        """Where the appeal's mod-log entry is, for marking the decision on it."""
        a = t.appeals
        await self._count(
            update(a)
            .where(a.c.guild_id == guild_id, a.c.id == appeal_id)
            .values(modlog_channel_id=channel_id, modlog_message_id=message_id)
        )

    async def get_appeal(self, guild_id: int, appeal_id: int) -> Appeal | None:
        a = t.appeals
        rows = await self._rows(select(a).where(a.c.guild_id == guild_id, a.c.id == appeal_id))
        return _appeal(rows[0]) if rows else None

    async def list_appeals(self, guild_id: int, incident_id: int) -> list[Appeal]:
        """The incident's appeals, oldest first."""
        a = t.appeals
        rows = await self._rows(
            select(a)
            .where(a.c.guild_id == guild_id, a.c.incident_id == incident_id)
            .order_by(a.c.id)
        )
        return [_appeal(r) for r in rows]

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
        if status not in APPEAL_STATUSES or status == "open":
            raise ValueError(f"an appeal is decided as accepted or rejected, not {status!r}")
        when = now or _now()
        a, i, s = t.appeals, t.incidents, t.strikes
        async with self._db.write() as conn:
            decided = await conn.execute(
                update(a)
                .where(a.c.guild_id == guild_id, a.c.id == appeal_id, a.c.status == "open")
                .values(status=status, moderator_id=moderator_id, decided_at=when)
                .returning(*_appeal_columns)
            )
            row = decided.first()
            if row is None:
                return None
            incident = and_(i.c.guild_id == guild_id, i.c.id == row.incident_id)
            revoked = 0
            if status == "accepted":
                revoked = (
                    await conn.execute(
                        update(s)
                        .where(s.c.guild_id == guild_id, s.c.incident_id == row.incident_id)
                        .where(s.c.revoked_at.is_(None))
                        .values(revoked_at=when)
                    )
                ).rowcount
                await conn.execute(update(i).where(incident).values(status="dismissed"))
            else:
                await conn.execute(
                    update(i).where(incident, i.c.status == "open").values(status="upheld")
                )
        return AppealDecision(_appeal(row), strike_revoked=revoked > 0)

    # -- a person's own data, across guilds (their export and erasure rights)

    async def export_member_data(self, user_id: int) -> MemberData:
        """Everything stored about the person in every guild. Deliberately not scoped by
        guild: it answers the person's own request, never a moderator's."""
        i, a, s, ap, r, m = (
            t.incidents,
            t.incident_actions,
            t.strikes,
            t.appeals,
            t.reminders_sent,
            t.member_preferences,
        )
        joined = a.join(i, and_(i.c.id == a.c.incident_id, i.c.guild_id == a.c.guild_id))
        async with self._db.read() as conn:

            async def rows(query: Any) -> Sequence[Row[Any]]:
                return (await conn.execute(query)).all()

            preferences = await rows(select(m).where(m.c.user_id == user_id))
            incidents = await rows(select(i).where(i.c.user_id == user_id).order_by(i.c.id))
            actions = await rows(
                select(a).select_from(joined).where(i.c.user_id == user_id).order_by(a.c.id)
            )
            strikes = await rows(select(s).where(s.c.user_id == user_id).order_by(s.c.id))
            appeals = await rows(select(ap).where(ap.c.user_id == user_id).order_by(ap.c.id))
            reminders = await rows(
                select(r).where(r.c.user_id == user_id).order_by(r.c.guild_id, r.c.kind)
            )
        return MemberData(
            user_id=user_id,
            preferences=next(
                (
                    MemberPreferences(p.user_id, bool(p.reminders_enabled), p.updated_at)
                    for p in preferences
                ),
                None,
            ),
            incidents=tuple(_incident(x) for x in incidents),
            actions=tuple((x.guild_id, _action(x)) for x in actions),
            strikes=tuple(_strike(x) for x in strikes),
            appeals=tuple(_appeal(x) for x in appeals),
            reminders=tuple(
                ReminderRecord(x.guild_id, x.user_id, x.kind, x.sent_at) for x in reminders
            ),
        )

    async def erase_member_data(self, user_id: int) -> ErasureReport:
        """Remove the person's preferences and reminder history and redact the prompt text
        of their incidents, the reasons of their appeals and of their reports of others'
        prompts, keeping the action records and the rate limits they spent."""
        i, ap = t.incidents, t.appeals
        async with self._db.write() as conn:
            preferences = await conn.execute(
                delete(t.member_preferences).where(t.member_preferences.c.user_id == user_id)
            )
            sent = t.reminders_sent
            reminders = await conn.execute(
                delete(sent).where(sent.c.user_id == user_id, sent.c.kind.not_in(RATE_LIMIT_KINDS))
            )
            # Reasons the person wrote when reporting others' prompts. A reason is not linked
            # to its writer, so every report reason of an incident they reported goes.
            presses, acts = t.modlog_presses, t.incident_actions
            reported = select(presses.c.incident_id).where(
                presses.c.moderator_id == user_id, presses.c.action == REPORT_KIND
            )
            await conn.execute(
                update(acts)
                .where(
                    acts.c.action == REPORT_KIND,
                    acts.c.incident_id.in_(reported),
                    acts.c.detail != ERASED_TEXT,
                )
                .values(detail=ERASED_TEXT)
            )
            found = await conn.execute(
                select(i.c.id, i.c.matches)
                .where(i.c.user_id == user_id, i.c.prompt_excerpt != ERASED_TEXT)
                .with_for_update()
            )
            rows = found.all()
            for row in rows:
                await conn.execute(
                    update(i)
                    .where(i.c.id == row.id)
                    .values(prompt_excerpt=ERASED_TEXT, matches=_matches_without_text(row.matches))
                )
            appeals = await conn.execute(
                update(ap)
                .where(ap.c.user_id == user_id, ap.c.reason != ERASED_TEXT)
                .values(reason=ERASED_TEXT)
            )
        return ErasureReport(
            preferences=max(preferences.rowcount, 0),
            reminders=max(reminders.rowcount, 0),
            incidents_redacted=len(rows),
            appeals_redacted=max(appeals.rowcount, 0),
        )

    # -- retention

    async def stored_guild_ids(self) -> list[int]:
        """Guilds with incidents or reminder history stored (including guilds the bot has
        left, whose data must expire too)."""
        guilds = union(select(t.incidents.c.guild_id), select(t.reminders_sent.c.guild_id))
        rows = await self._rows(guilds.order_by("guild_id"))
        return [r[0] for r in rows]

    async def delete_incidents_before(self, guild_id: int, cutoff: datetime) -> int:
        """Delete the guild's incidents created before `cutoff` with their actions, presses,
        strikes and appeals; returns how many incidents were deleted."""
        i = t.incidents
        old = and_(i.c.guild_id == guild_id, i.c.created_at < cutoff)
        async with self._db.write() as conn:
            # Explicit rather than left to foreign keys, so every backend deletes the same.
            for table in (t.incident_actions, t.modlog_presses, t.appeals, t.strikes):
                await conn.execute(
                    delete(table).where(
                        table.c.guild_id == guild_id,
                        table.c.incident_id.in_(select(i.c.id).where(old)),
                    )
                )
            deleted = await conn.execute(delete(i).where(old))
        return max(deleted.rowcount, 0)

    async def delete_reminders_before(self, guild_id: int, cutoff: datetime) -> int:
        """Forget reminders sent before `cutoff` (they no longer hold back the next one)."""
        r = t.reminders_sent
        return await self._count(delete(r).where(r.c.guild_id == guild_id, r.c.sent_at < cutoff))

    # -- bot-wide key/value (e.g. the hash of the last synced command tree)

    async def get_meta(self, key: str) -> str | None:
        return cast(
            str | None, await self._value(select(t.meta.c.value).where(t.meta.c.key == key))
        )

    async def set_meta(self, key: str, value: str) -> None:
        upsert = self._db.insert(t.meta).values(key=key, value=value)
        await self._count(
            upsert.on_conflict_do_update(
                index_elements=["key"], set_={"value": upsert.excluded.value}
            )
        )

    # -- written together: the watcher's violation path (promptwarden.actions)
    #
    # A violating message costs a transaction to record its incident with what is
    # decided already, and a share of a batched transaction for its steps' outcomes.

    async def record_incident_with(
        self,
        fields: Mapping[str, Any],
        *,
        strike_points: int = 0,
        window: timedelta | None = None,
        now: datetime | None = None,
        strike_detail: Callable[[int, int, int], str] = lambda p, b, a: f"+{p}: {b} -> {a}",
        settled: Mapping[str, str] | None = None,
        dm_limit: int | None = None,
    ) -> RecordedIncident:
        """`record_incident(**fields)`, and for a new incident in the same transaction:
        its strike of `strike_points` (with its outcome, `strike_detail(points, before,
        after)`), the actions `settled` names as skipped with their detail, with a
        `window` the member's active points once recorded, and with `dm_limit` a slot of
        the guild's DM budget for its warning (`take_dm_budget`). An incident found
        already is returned as stored, nothing added to it. One commit, so a stop leaves
        either none of it or all of it; the store answers the whole row, so no read
        follows."""
        if strike_points < 0:
            raise ValueError("a strike needs at least one point")
        if strike_points and window is None:
            raise ValueError("a strike needs the policy's window")
        row = _incident_row(**fields)
        now = now or _now()
        i, a = t.incidents, t.incident_actions
        strike: tuple[int, int] | None = None
        points: int | None = None
        async with self._db.write() as conn:
            found = (await conn.execute(self._insert_incident_row, row)).first()
            if found is None:
                same = or_(i.c.message_id == row["message_id"], i.c.job_key == row["job_key"])
                existing = await conn.execute(
                    select(i).where(i.c.guild_id == row["guild_id"], same).order_by(i.c.id).limit(1)
                )
                old = existing.first()
                if old is None:  # pragma: no cover - a conflict means such a row exists
                    raise StorageError("an incident conflicted with a row that then vanished")
                return RecordedIncident(_incident(old), False, None, None)
            incident = _incident(found)
            guild_id, user_id = incident.guild_id, incident.user_id
            outcomes: list[dict[str, Any]] = []
            if window is not None:
                key = {"guild_id": guild_id, "user_id": user_id, "cutoff": now - window}
                if strike_points:
                    await self._db.lock_member(conn, guild_id, user_id)
                before = int((await conn.execute(_ACTIVE_POINTS, key)).scalar_one())
                points = before
                if strike_points:
                    points = before + strike_points
                    strike = (before, points)
                    await conn.execute(
                        self._insert_strike,
                        {
                            "guild_id": guild_id,
                            "user_id": user_id,
                            "incident_id": incident.id,
                            "points": strike_points,
                            "created_at": now,
                            "points_before": before,
                            "points_after": points,
                        },
                    )
                    detail = strike_detail(strike_points, before, points)
                    outcomes.append({"action": "strike", "outcome": "done", "detail": detail})
            for action, detail in (settled or {}).items():
                outcomes.append({"action": action, "outcome": "skipped", "detail": detail})
            dm_allowed = None
            if dm_limit is not None:
                taken = 0
                if dm_limit > 0:
                    upsert = self._dm_budget_upsert(guild_id, dm_limit, now)
                    taken = (await conn.execute(upsert)).rowcount
                dm_allowed = taken > 0
            for outcome in outcomes:
                values = {**outcome, "detail": outcome["detail"][:500], "at": _now()}
                await conn.execute(
                    insert(a), {"guild_id": guild_id, "incident_id": incident.id, **values}
                )
        return RecordedIncident(incident, True, strike, points, dm_allowed)

    async def add_outcomes(self, rows: Sequence[OutcomeRow]) -> None:
        """Record many steps' outcomes, of any incidents and guilds, in one transaction
        (each only on its own guild's incident), with where each posted mod-log entry
        went: the write-behind batch of promptwarden.actions."""
        for row in rows:
            if row.outcome not in ACTION_OUTCOMES:
                raise ValueError(f"outcome must be one of {ACTION_OUTCOMES}, not {row.outcome!r}")
        if not rows:
            return
        i = t.incidents
        async with self._db.write() as conn:
            # Each row only on its own guild's incident: one read says which are.
            found: set[tuple[int, int]] = set()
            for chunk in _chunks([row.incident_id for row in rows]):
                known = await conn.execute(select(i.c.guild_id, i.c.id).where(i.c.id.in_(chunk)))
                found.update((int(g), int(n)) for g, n in known.all())
            kept = [row for row in rows if (row.guild_id, row.incident_id) in found]
            for piece in _pieces(kept):
                values: dict[str, Any] = {}
                for k, row in enumerate(piece):
                    values.update(
                        {
                            f"guild_id_{k}": row.guild_id,
                            f"incident_id_{k}": row.incident_id,
                            f"action_{k}": row.action,
                            f"outcome_{k}": row.outcome,
                            f"detail_{k}": row.detail[:500],
                            f"at_{k}": row.at,
                        }
                    )
                await conn.execute(_outcome_insert(len(piece)), values)
            for row in kept:
                if row.modlog is not None:
                    channel_id, message_id = row.modlog
                    await conn.execute(
                        update(i)
                        .where(i.c.guild_id == row.guild_id, i.c.id == row.incident_id)
                        .values(modlog_channel_id=channel_id, modlog_message_id=message_id)
                    )


_ACTIVE_POINTS = select(func.coalesce(func.sum(t.strikes.c.points), 0)).where(
    t.strikes.c.guild_id == bindparam("guild_id"),
    t.strikes.c.user_id == bindparam("user_id"),
    t.strikes.c.revoked_at.is_(None),
    t.strikes.c.created_at > bindparam("cutoff", type_=t.UtcTime),
)


_OUTCOME_COLUMNS = ("guild_id", "incident_id", "action", "outcome", "detail", "at")


@functools.lru_cache(maxsize=8)
def _outcome_insert(size: int) -> Any:
    """A multi-row INSERT of `size` outcomes, its values bound by name (`action_3`),
    built once per size. SQLAlchemy gives multi-row INSERTs no cache key, so each batch
    is compiled once: one compile per batch, not per row."""
    rows: list[dict[str, Any]] = [
        {c: bindparam(f"{c}_{k}") for c in _OUTCOME_COLUMNS} for k in range(size)
    ]
    return insert(t.incident_actions).values(rows)


def _pieces(rows: Sequence[Any], largest: int = 64) -> list[Sequence[Any]]:
    """Rows in groups of a power of two, largest first: a multi-row INSERT per group, and
    only a few statement shapes to compile and keep."""
    pieces: list[Sequence[Any]] = []
    start = 0
    while start < len(rows):
        size = largest
        while size > len(rows) - start:
            size //= 2
        pieces.append(rows[start : start + size])
        start += size
    return pieces


def _chunks(ids: Collection[int], size: int = 500) -> list[tuple[int, ...]]:
    """Distinct ids in groups well under SQLite's limit on bound parameters."""
    unique = tuple(dict.fromkeys(ids))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def _incident_row(
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
) -> dict[str, Any]:
    """An incident's row as `record_incident` takes it, checked and its excerpt capped."""
    if status not in INCIDENT_STATUSES:
        raise ValueError(f"status must be one of {INCIDENT_STATUSES}, not {status!r}")
    if source not in INCIDENT_SOURCES:
        raise ValueError(f"source must be one of {INCIDENT_SOURCES}, not {source!r}")
    excerpt = prompt_excerpt
    if len(excerpt) > EXCERPT_LIMIT:
        excerpt = excerpt[: EXCERPT_LIMIT - 1] + "…"
    row = {
        "guild_id": guild_id,
        "channel_id": channel_id,
        "message_id": message_id,
        "user_id": user_id,
        "prompt_excerpt": excerpt,
        "categories": list(categories),
        "severity": Severity(severity).name.lower(),
        "verdict": Verdict(verdict).value,
        "matches": [dict(m) for m in matches],
        "action": action,
        "status": status,
        "created_at": created_at or _now(),
        "job_key": job_key,
        "source": source,
    }
    return row


def _incident(row: Row[Any]) -> Incident:
    fields = row._asdict()
    fields["categories"] = tuple(fields["categories"])
    fields["matches"] = tuple(fields["matches"])
    fields["severity"] = Severity.parse(fields["severity"])
    fields["verdict"] = Verdict(fields["verdict"])
    return Incident(**fields)


def _action(row: Row[Any]) -> ActionRecord:
    return ActionRecord(row.incident_id, row.action, row.outcome, row.detail, row.at)


# Their columns are their fields, by name.
def _strike(row: Row[Any]) -> StrikeRecord:
    return StrikeRecord(**row._asdict())


def _appeal(row: Row[Any]) -> Appeal:
    return Appeal(**row._asdict())


def _matches_without_text(matches: list[Any]) -> list[Any]:
    """Stored matches minus the words quoted from the prompt; which rule fired stays."""
    for match in matches:
        if isinstance(match, dict):
            match.pop("text", None)
            if match.get("source") == "model":
                match.pop("term", None)  # the learned tier's terms are the prompt's words
    return matches
