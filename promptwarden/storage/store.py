"""Every query, once, for SQLite and PostgreSQL alike.

Cogs and the core talk to `Storage` only. Every per-guild method takes the guild id first
and filters by it: one guild can never read or change another's rows. What truly differs
between the databases (row locks, notifications, upsert syntax, JSON lookups) is asked of
`self._db`, a `Backend` from `backends`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
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
from promptwarden.storage import models as m
from promptwarden.storage import schema as t
from promptwarden.storage.backends import Backend, StorageError

log = logging.getLogger(__name__)

# Called with the guild whose settings changed, or None when any guild's may have (e.g.
# after the notification channel reconnected and changes could have been missed).
SettingsListener = Callable[[int | None], Awaitable[None] | None]
MAX_PAGE = 500
_Model = TypeVar("_Model")


def _now() -> datetime:
    return datetime.now(UTC)


def _of(table: Table, guild_id: int, **equal: Any) -> ColumnElement[bool]:
    """The guild's rows of `table` whose columns hold the values given."""
    return and_(table.c.guild_id == guild_id, *(table.c[k] == v for k, v in equal.items()))


def _check(value: str, allowed: Collection[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {tuple(allowed)}, not {value!r}")


class Storage:
    def __init__(self, backend: Backend, version_at_open: int) -> None:
        self._db = backend
        self._version_at_open = version_at_open
        self._listeners: list[SettingsListener] = []
        backend.on_remote_change = self._announce
        # Built once: the hot paths of every screened violation.
        self._insert_strike = backend.insert(t.strikes).on_conflict_do_nothing()
        self._insert_incident = (
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

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def schema_version(self) -> int:
        async with self._db.read() as conn:
            return await self._db.read_version(conn)

    # -- plumbing

    async def _rows(self, statement: Any) -> Sequence[Row[Any]]:
        async def rows(conn: Any) -> Sequence[Row[Any]]:
            found: Sequence[Row[Any]] = (await conn.execute(statement)).all()
            return found

        return await self._db.transaction(rows, write=False)

    async def _load(self, model: Callable[..., _Model], statement: Any) -> list[_Model]:
        """Rows as `model`s: the columns selected are its fields, by name."""
        return [model(**r._asdict()) for r in await self._rows(statement)]

    async def _value(self, statement: Any) -> Any:
        async def value(conn: Any) -> Any:
            return (await conn.execute(statement)).scalar()

        return await self._db.transaction(value, write=False)

    async def _count(self, statement: Any) -> int:
        """Run one write on its own; how many rows it changed."""

        async def count(conn: Any) -> int:
            changed: int = (await conn.execute(statement)).rowcount
            return max(changed, 0)

        return await self._db.transaction(count)

    def _upsert(
        self, table: Table, row: Mapping[str, Any], where: Callable[[Any], Any] | None = None
    ) -> Any:
        """INSERT `row`; when its primary key exists, set the row's other columns instead
        (only where `where(excluded)` holds, `excluded` being the row offered)."""
        keys = [c.name for c in table.primary_key]
        statement = self._db.insert(table).values(row)
        new = statement.excluded
        return statement.on_conflict_do_update(
            index_elements=keys,
            set_={k: new[k] for k in row if k not in keys},
            where=None if where is None else where(new),
        )

    @staticmethod
    def _for_incident(
        table: Table,
        guild_id: int,
        incident_id: int,
        values: Mapping[str, Any],
        *where: Any,
        into: Callable[[Table], Any] = insert,
    ) -> Any:
        """INSERT a row of an incident only if the incident is the guild's (and `where`)."""
        i = t.incidents
        source = select(
            i.c.guild_id, i.c.id, *(literal(v, table.c[k].type) for k, v in values.items())
        ).where(_of(i, guild_id, id=incident_id), *where)
        return into(table).from_select(["guild_id", "incident_id", *values], source)

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

    async def get_guild_settings(self, guild_id: int) -> m.GuildSettings:
        """Every setting of the guild in one read: what the per-guild cache loads."""
        gs = t.guild_settings
        columns = (*t.SETTING_COLUMNS, "modlog_channel_id")

        async def read(conn: Any) -> m.GuildSettings:
            found = await conn.execute(
                select(*(gs.c[c] for c in columns)).where(gs.c.guild_id == guild_id)
            )
            row = found.first()
            watched = await conn.execute(_watched_channels(guild_id))
            bots = await conn.execute(_generator_bots(guild_id))
            saved: dict[str, Any] = dict.fromkeys(columns)
            if row is not None:
                saved.update((k, _plain(v)) for k, v in zip(columns, row, strict=True))
            return m.GuildSettings(
                **saved,
                watched=tuple(m.WatchedChannel(**r._asdict()) for r in watched.all()),
                generator_bots=tuple(int(r[0]) for r in bots.all()),
            )

        return await self._db.transaction(read, write=False)

    async def get_modlog_channel(self, guild_id: int) -> int | None:
        return cast(int | None, await self._get_setting("modlog_channel_id", guild_id))

    async def set_modlog_channel(self, guild_id: int, channel_id: int | None) -> None:
        await self._save_setting(guild_id, "modlog_channel_id", channel_id)

    async def _get_setting(self, column: str, guild_id: int) -> Any:
        gs = t.guild_settings
        return _plain(await self._value(select(gs.c[column]).where(gs.c.guild_id == guild_id)))

    async def _save_setting(self, guild_id: int, column: str, value: Any) -> None:
        if column not in (*t.SETTING_COLUMNS, "modlog_channel_id"):
            raise ValueError(f"not a settings column: {column!r}")
        row = {"guild_id": guild_id, column: value, "updated_at": _now()}
        async with self._settings_write(guild_id) as conn:
            await conn.execute(self._upsert(t.guild_settings, row))

    async def get_screening_rules(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's rule overrides as saved, or None when it never set any."""
        return cast(dict[str, Any] | None, await self._get_setting("screening_rules", guild_id))

    async def set_screening_rules(self, guild_id: int, rules: Mapping[str, Any]) -> None:
        """Store a JSON-serialisable blob; the screening engine validates its content."""
        await self._save_setting(guild_id, "screening_rules", dict(rules))

    async def get_enforcement_config(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's enforcement settings as saved (promptwarden.enforcement validates)."""
        return cast(dict[str, Any] | None, await self._get_setting("enforcement", guild_id))

    async def set_enforcement_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._save_setting(guild_id, "enforcement", dict(config))

    async def get_privacy_config(self, guild_id: int) -> dict[str, Any] | None:
        """The guild's privacy settings as saved (promptwarden.privacy validates)."""
        return cast(dict[str, Any] | None, await self._get_setting("privacy", guild_id))

    async def set_privacy_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._save_setting(guild_id, "privacy", dict(config))

    # -- watched channels and generator bots (besides the built-in Midjourney and niji ids)

    async def add_watched_channel(
        self, guild_id: int, channel_id: int, kind: m.WatchKind = "channel"
    ) -> bool:
        """True when newly added; re-adding updates the kind and returns False."""
        _check(kind, m.WATCH_KINDS, "kind")
        wc = t.watched_channels
        row = {"guild_id": guild_id, "channel_id": channel_id, "kind": kind}
        async with self._settings_write(guild_id) as conn:
            added = await conn.execute(self._db.insert(wc).values(row).on_conflict_do_nothing())
            if added.rowcount > 0:
                return True
            await conn.execute(
                update(wc).where(_of(wc, guild_id, channel_id=channel_id)).values(kind=kind)
            )
        return False

    async def remove_watched_channel(self, guild_id: int, channel_id: int) -> bool:
        """True when something was removed."""
        return await self._remove_setting(t.watched_channels, guild_id, channel_id=channel_id)

    async def _remove_setting(self, table: Table, guild_id: int, **key: int) -> bool:
        async with self._settings_write(guild_id) as conn:
            gone = await conn.execute(delete(table).where(_of(table, guild_id, **key)))
        return gone.rowcount > 0

    async def list_watched_channels(self, guild_id: int) -> list[m.WatchedChannel]:
        return await self._load(m.WatchedChannel, _watched_channels(guild_id))

    async def add_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        row = {"guild_id": guild_id, "bot_id": bot_id}
        async with self._settings_write(guild_id) as conn:
            added = await conn.execute(
                self._db.insert(t.generator_bots).values(row).on_conflict_do_nothing()
            )
        return added.rowcount > 0

    async def remove_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        return await self._remove_setting(t.generator_bots, guild_id, bot_id=bot_id)

    async def list_generator_bots(self, guild_id: int) -> list[int]:
        return [r[0] for r in await self._rows(_generator_bots(guild_id))]

    # -- incidents

    async def record_incident(self, **fields: Any) -> tuple[int, bool]:
        """Record an incident once (`fields`: its columns, as `_incident_row` takes them):
        (id, True) when new, (existing id, False) when the guild already has one for this
        message or job key. The database's unique keys decide, so it holds across restarts
        and processes."""
        recorded = await self.record_incident_with(fields)
        return recorded.incident.id, recorded.created

    async def set_incident_status(
        self, guild_id: int, incident_id: int, status: m.IncidentStatus
    ) -> bool:
        """True when the incident exists in this guild (whether or not the status changed)."""
        _check(status, m.INCIDENT_STATUSES, "status")
        i = t.incidents
        changed = await self._count(
            update(i).where(_of(i, guild_id, id=incident_id)).values(status=status)
        )
        return changed > 0

    async def get_incident(self, guild_id: int, incident_id: int) -> m.Incident | None:
        i = t.incidents
        found = await self._load(_incident, select(i).where(_of(i, guild_id, id=incident_id)))
        return found[0] if found else None

    async def find_incidents(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        category: str | None = None,
        status: m.IncidentStatus | None = None,
        verdict: Verdict | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        oldest_first: bool = False,
        limit: int = 50,
    ) -> list[m.Incident]:
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
        return await self._load(_incident, query)

    async def incidents_since(
        self, guild_id: int, since: datetime | None, *, limit: int = 50_000
    ) -> list[m.Incident]:
        """Every incident created at or after `since` (all when None), oldest first, at
        most `limit`: for exports and statistics."""
        i = t.incidents
        query = select(i).where(i.c.guild_id == guild_id)
        if since is not None:
            query = query.where(i.c.created_at >= since)
        query = query.order_by(i.c.created_at, i.c.id).limit(max(1, limit))
        return await self._load(_incident, query)

    # -- incident actions and mod-log presses

    async def record_action_outcome(
        self,
        guild_id: int,
        incident_id: int,
        action: str,
        outcome: m.ActionOutcome,
        detail: str = "",
        *,
        at: datetime | None = None,
    ) -> None:
        _check(outcome, m.ACTION_OUTCOMES, "outcome")
        values = {"action": action, "outcome": outcome, "detail": detail[:500], "at": at or _now()}
        await self._count(self._for_incident(t.incident_actions, guild_id, incident_id, values))

    async def list_action_outcomes(self, guild_id: int, incident_id: int) -> list[m.ActionRecord]:
        """Oldest first."""
        a = t.incident_actions
        query = _select(m.ActionRecord, a).where(_of(a, guild_id, incident_id=incident_id))
        return await self._load(m.ActionRecord, query.order_by(a.c.id))

    async def list_unsettled_incidents(
        self,
        guild_id: int,
        *,
        since: datetime,
        planned: Mapping[str, Collection[str]],
        limit: int = 200,
    ) -> list[m.Incident]:
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
                a.c.outcome.not_in(m.RETRYABLE_OUTCOMES),
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
        return await self._load(_incident, query)

    async def record_modlog_press(
        self,
        guild_id: int,
        incident_id: int,
        moderator_id: int,
        action: str,
        *,
        at: datetime | None = None,
    ) -> None:
        values = {"moderator_id": moderator_id, "action": action, "at": at or _now()}
        await self._count(self._for_incident(t.modlog_presses, guild_id, incident_id, values))

    async def list_modlog_presses(self, guild_id: int, incident_id: int) -> list[m.ModlogPress]:
        """Oldest first."""
        p = t.modlog_presses
        query = _select(m.ModlogPress, p).where(_of(p, guild_id, incident_id=incident_id))
        return await self._load(m.ModlogPress, query.order_by(p.c.id))

    # -- strikes

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

        async def strike(conn: Any) -> tuple[int, int]:
            return await self._strike(conn, guild_id, user_id, points, incident_id, now, window)

        return await self._db.transaction(strike)

    async def _strike(
        self,
        conn: Any,
        guild_id: int,
        user_id: int,
        points: int,
        incident_id: int | None,
        now: datetime,
        window: timedelta,
    ) -> tuple[int, int]:
        """The member's active points, and with `points` a strike: (before, after). The
        member's lock queues concurrent strikes until commit, whichever process adds them,
        so the read sees every strike committed before and a threshold is crossed once."""
        key = {"guild_id": guild_id, "user_id": user_id, "cutoff": now - window}
        if points:
            await self._db.lock_member(conn, guild_id, user_id)
        before = int((await conn.execute(_ACTIVE_POINTS, key)).scalar_one())
        if not points:
            return before, before
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
        return await self._count(_revoke_strike(guild_id, incident_id, now or _now())) > 0

    async def active_points(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> int:
        key = {"guild_id": guild_id, "user_id": user_id, "cutoff": (now or _now()) - window}
        async with self._db.read() as conn:
            return int((await conn.execute(_ACTIVE_POINTS, key)).scalar_one())

    async def revoke_active_strikes(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> list[m.StrikeRecord]:
        """Revoke every strike of the member still counting (a pardon); returns them as
        they were before revoking, so the caller can record who pardoned which incident."""
        now = now or _now()
        s = t.strikes
        active = and_(
            _of(s, guild_id, user_id=user_id),
            s.c.revoked_at.is_(None),
            s.c.created_at > now - window,
        )
        async with self._db.write() as conn:
            await self._db.lock_member(conn, guild_id, user_id)
            query = select(s).where(active).order_by(s.c.id.desc()).with_for_update()
            rows = (await conn.execute(query)).all()
            if rows:
                ids = [r.id for r in rows]
                await conn.execute(update(s).where(s.c.id.in_(ids)).values(revoked_at=now))
        return [m.StrikeRecord(**r._asdict()) for r in rows]

    async def list_strikes(self, guild_id: int, user_id: int) -> list[m.StrikeRecord]:
        """Every strike of the member, revoked and expired included, newest first."""
        s = t.strikes
        query = select(s).where(_of(s, guild_id, user_id=user_id)).order_by(s.c.id.desc())
        return await self._load(m.StrikeRecord, query)

    # -- catch-up

    async def get_catchup_cursor(self, guild_id: int, channel_id: int) -> int | None:
        """The newest message id screened in that channel, if any."""
        c = t.catchup_cursors
        query = select(c.c.last_message_id).where(_of(c, guild_id, channel_id=channel_id))
        return cast(int | None, await self._value(query))

    async def set_catchup_cursors(self, cursors: Mapping[tuple[int, int], int]) -> None:
        """Move each (guild, channel) cursor forward to its message id, all in one
        transaction (a busy process advances many channels per save); an older id never
        moves a cursor back."""
        c = t.catchup_cursors

        async def save(conn: Any) -> None:
            for (guild_id, channel_id), message_id in cursors.items():
                row = {
                    "guild_id": guild_id,
                    "channel_id": channel_id,
                    "last_message_id": message_id,
                }
                await conn.execute(
                    self._upsert(c, row, lambda new: new.last_message_id > c.c.last_message_id)
                )

        await self._db.transaction(save)

    # -- privacy: member preferences, reminders, DM budget

    async def set_reminders_enabled(
        self, user_id: int, enabled: bool, *, now: datetime | None = None
    ) -> None:
        row = {"user_id": user_id, "reminders_enabled": enabled, "updated_at": now or _now()}
        await self._count(self._upsert(t.member_preferences, row))

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
        return await self._count(self._upsert(r, row, lambda _: r.c.sent_at <= now - interval)) > 0

    async def release_reminder(
        self, guild_id: int, user_id: int, kind: str, *, sent_at: datetime
    ) -> None:
        """Undo a claim whose reminder was never sent (e.g. the DM budget ran out)."""
        r = t.reminders_sent
        await self._count(
            delete(r).where(_of(r, guild_id, user_id=user_id, kind=kind, sent_at=sent_at))
        )

    async def get_reminder_choices(self, user_ids: Collection[int]) -> dict[int, bool]:
        """Each person's own reminder choice, for those of `user_ids` who made one: one
        round trip for many members (promptwarden.reminders seeds its table with it)."""
        p = t.member_preferences
        rows: list[Any] = []
        for chunk in _chunks(user_ids):
            rows += await self._rows(
                select(p.c.user_id, p.c.reminders_enabled).where(p.c.user_id.in_(chunk))
            )
        return {int(r[0]): bool(r[1]) for r in rows}

    async def get_reminders_sent(
        self, guild_id: int, kind: str, user_ids: Collection[int]
    ) -> dict[int, datetime]:
        """When each of `user_ids` last got a reminder of `kind` in the guild, for those
        who got one (and whose record retention has not forgotten)."""
        r = t.reminders_sent
        rows: list[Any] = []
        for chunk in _chunks(user_ids):
            query = select(r.c.user_id, r.c.sent_at).where(_of(r, guild_id, kind=kind))
            rows += await self._rows(query.where(r.c.user_id.in_(chunk)))
        return {int(x[0]): x[1] for x in rows}

    async def save_reminders(self, sent: Sequence[m.ReminderRecord]) -> None:
        """Note many reminders as sent, in one transaction: the write-behind batch of
        promptwarden.reminders. A stored time later than the one given is kept, so an
        old batch never moves a record back."""
        if not sent:
            return
        r = t.reminders_sent
        rows = [dataclasses.asdict(x) for x in sent]
        # One statement, run with each row's values.
        upsert = self._upsert(r, rows[0], lambda new: r.c.sent_at < new.sent_at)

        async def save(conn: Any) -> None:
            for row in rows:
                await conn.execute(upsert, row)

        await self._db.transaction(save)

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
    ) -> m.Appeal | None:
        """A new open appeal; None when the incident (in this guild, of this user) does not
        exist or already has an open appeal. Reasons longer than 1,000 characters raise
        ValueError."""
        if len(reason) > m.APPEAL_REASON_LIMIT:
            raise ValueError(f"an appeal's reason is at most {m.APPEAL_REASON_LIMIT} characters")
        values = {
            "user_id": user_id,
            "reason": reason,
            "status": "open",
            "created_at": now or _now(),
        }
        mine = t.incidents.c.user_id == user_id
        statement = self._for_incident(
            t.appeals, guild_id, incident_id, values, mine, into=self._db.insert
        )
        async with self._db.write() as conn:
            # The unique index of open appeals: a second one is not inserted.
            new = await conn.execute(statement.on_conflict_do_nothing().returning(*t.appeals.c))
            row = new.first()
        return None if row is None else m.Appeal(**row._asdict())

    async def set_appeal_modlog(
        self, guild_id: int, appeal_id: int, channel_id: int, message_id: int
    ) -> None:
        """Where the appeal's mod-log entry is, for marking the decision on it."""
        a = t.appeals
        await self._count(
            update(a)
            .where(_of(a, guild_id, id=appeal_id))
            .values(modlog_channel_id=channel_id, modlog_message_id=message_id)
        )

    async def get_appeal(self, guild_id: int, appeal_id: int) -> m.Appeal | None:
        a = t.appeals
        found = await self._load(m.Appeal, select(a).where(_of(a, guild_id, id=appeal_id)))
        return found[0] if found else None

    async def list_appeals(self, guild_id: int, incident_id: int) -> list[m.Appeal]:
        """The incident's appeals, oldest first."""
        a = t.appeals
        query = select(a).where(_of(a, guild_id, incident_id=incident_id)).order_by(a.c.id)
        return await self._load(m.Appeal, query)

    async def decide_appeal(
        self,
        guild_id: int,
        appeal_id: int,
        status: m.AppealStatus,
        moderator_id: int,
        *,
        now: datetime | None = None,
    ) -> m.AppealDecision | None:
        """Close an open appeal, in one transaction with its effect: accepted revokes the
        incident's strike and marks it dismissed; rejected marks an open incident upheld.
        None when the appeal is not open (two moderators pressing at once decide once)."""
        if status not in m.APPEAL_STATUSES or status == "open":
            raise ValueError(f"an appeal is decided as accepted or rejected, not {status!r}")
        when = now or _now()
        a, i = t.appeals, t.incidents
        async with self._db.write() as conn:
            decided = await conn.execute(
                update(a)
                .where(_of(a, guild_id, id=appeal_id, status="open"))
                .values(status=status, moderator_id=moderator_id, decided_at=when)
                .returning(*a.c)
            )
            row = decided.first()
            if row is None:
                return None
            incident = _of(i, guild_id, id=row.incident_id)
            revoked = 0
            if status == "accepted":
                revoked = (
                    await conn.execute(_revoke_strike(guild_id, row.incident_id, when))
                ).rowcount
                await conn.execute(update(i).where(incident).values(status="dismissed"))
            else:
                await conn.execute(
                    update(i).where(incident, i.c.status == "open").values(status="upheld")
                )
        return m.AppealDecision(m.Appeal(**row._asdict()), strike_revoked=revoked > 0)

    # -- a person's own data, across guilds (their export and erasure rights)

    async def export_member_data(self, user_id: int) -> m.MemberData:
        """Everything stored about the person in every guild. Deliberately not scoped by
        guild: it answers the person's own request, never a moderator's."""
        i, a = t.incidents, t.incident_actions
        joined = a.join(i, and_(i.c.id == a.c.incident_id, i.c.guild_id == a.c.guild_id))
        actions = select(a).select_from(joined).where(i.c.user_id == user_id).order_by(a.c.id)
        async with self._db.read() as conn:

            async def load(model: Callable[..., _Model], table: Table, *order: Any) -> list[_Model]:
                query = select(table).where(table.c.user_id == user_id).order_by(*order)
                return [model(**r._asdict()) for r in (await conn.execute(query)).all()]

            preferences = await load(m.MemberPreferences, t.member_preferences)
            incidents = await load(_incident, i, i.c.id)
            done = (await conn.execute(actions)).all()
            strikes = await load(m.StrikeRecord, t.strikes, t.strikes.c.id)
            appeals = await load(m.Appeal, t.appeals, t.appeals.c.id)
            r = t.reminders_sent
            reminders = await load(m.ReminderRecord, r, r.c.guild_id, r.c.kind)
        return m.MemberData(
            user_id=user_id,
            preferences=preferences[0] if preferences else None,
            incidents=tuple(incidents),
            actions=tuple(
                (x.guild_id, m.ActionRecord(x.incident_id, x.action, x.outcome, x.detail, x.at))
                for x in done
            ),
            strikes=tuple(strikes),
            appeals=tuple(appeals),
            reminders=tuple(reminders),
        )

    async def erase_member_data(self, user_id: int) -> m.ErasureReport:
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
                delete(sent).where(
                    sent.c.user_id == user_id, sent.c.kind.not_in(m.RATE_LIMIT_KINDS)
                )
            )
            # Reasons the person wrote when reporting others' prompts. A reason is not linked
            # to its writer, so every report reason of an incident they reported goes.
            presses, acts = t.modlog_presses, t.incident_actions
            reported = select(presses.c.incident_id).where(
                presses.c.moderator_id == user_id, presses.c.action == m.REPORT_KIND
            )
            await conn.execute(
                update(acts)
                .where(
                    acts.c.action == m.REPORT_KIND,
                    acts.c.incident_id.in_(reported),
                    acts.c.detail != m.ERASED_TEXT,
                )
                .values(detail=m.ERASED_TEXT)
            )
            found = await conn.execute(
                select(i.c.id, i.c.matches)
                .where(i.c.user_id == user_id, i.c.prompt_excerpt != m.ERASED_TEXT)
                .with_for_update()
            )
            rows = found.all()
            for row in rows:
                await conn.execute(
                    update(i)
                    .where(i.c.id == row.id)
                    .values(
                        prompt_excerpt=m.ERASED_TEXT, matches=_matches_without_text(row.matches)
                    )
                )
            appeals = await conn.execute(
                update(ap)
                .where(ap.c.user_id == user_id, ap.c.reason != m.ERASED_TEXT)
                .values(reason=m.ERASED_TEXT)
            )
        return m.ErasureReport(
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
        return [r[0] for r in await self._rows(guilds.order_by("guild_id"))]

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
        query = select(t.meta.c.value).where(t.meta.c.key == key)
        return cast(str | None, await self._value(query))

    async def set_meta(self, key: str, value: str) -> None:
        await self._count(self._upsert(t.meta, {"key": key, "value": value}))

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
    ) -> m.RecordedIncident:
        """`record_incidents_with` for one incident."""
        request = m.IncidentRequest(fields, strike_points, window, settled, dm_limit)
        (recorded,) = await self.record_incidents_with(
            [request], now=now, strike_detail=strike_detail
        )
        return recorded

    async def record_incidents_with(
        self,
        requests: Sequence[m.IncidentRequest],
        *,
        now: datetime | None = None,
        strike_detail: Callable[[int, int, int], str] = lambda p, b, a: f"+{p}: {b} -> {a}",
    ) -> list[m.RecordedIncident]:
        """`record_incident(**fields)` for each request in order, and for a new incident in
        the same transaction: its strike of `strike_points` (with its outcome,
        `strike_detail(points, before, after)`), the actions `settled` names as skipped with
        their detail, with a `window` the member's active points once recorded, and with
        `dm_limit` a slot of the guild's DM budget for its warning (`take_dm_budget`). An
        incident found already is returned as stored, nothing added to it. One commit for
        all (a channel's backlog costs one, not one per incident), so a stop leaves either
        none of it or all of it; the store answers the whole rows, so no read follows."""
        for request in requests:
            if request.strike_points < 0:
                raise ValueError("a strike needs at least one point")
            if request.strike_points and request.window is None:
                raise ValueError("a strike needs the policy's window")
        rows = [_incident_row(**request.fields) for request in requests]
        now = now or _now()

        outcome_rows: list[dict[str, Any]] = []  # of the whole batch: one statement

        async def record(
            conn: Any, row: dict[str, Any], request: m.IncidentRequest
        ) -> m.RecordedIncident:
            # A conflicting insert waits for a concurrent one of the same message or job to
            # commit, so the SELECT after it finds that row: one incident, ever.
            found = (await conn.execute(self._insert_incident, row)).first()
            if found is None:
                old = (await conn.execute(_same_incident(row))).first()
                if old is None:  # pragma: no cover - a conflict means such a row exists
                    raise StorageError("an incident conflicted with a row that then vanished")
                return m.RecordedIncident(_incident(**old._asdict()), False, None, None)
            incident = _incident(**found._asdict())
            guild_id, user_id = incident.guild_id, incident.user_id
            outcomes: list[tuple[str, m.ActionOutcome, str]] = [
                (action, "skipped", detail) for action, detail in (request.settled or {}).items()
            ]
            strike: tuple[int, int] | None = None
            points: int | None = None
            if request.window is not None:
                before, points = await self._strike(
                    conn, guild_id, user_id, request.strike_points, incident.id, now, request.window
                )
                if request.strike_points:
                    strike = (before, points)
                    detail = strike_detail(request.strike_points, before, points)
                    outcomes.insert(0, ("strike", "done", detail))
            dm_allowed = None
            if (dm_limit := request.dm_limit) is not None:
                upsert = self._dm_budget_upsert(guild_id, dm_limit, now)
                dm_allowed = dm_limit > 0 and (await conn.execute(upsert)).rowcount > 0
                # Kept with the incident: a resume after a stop honours it (no second slot).
                outcomes.append((m.DM_SLOT, "done" if dm_allowed else "skipped", "DM budget"))
            at = _now()
            outcome_rows.extend(
                _outcome(m.OutcomeRow(guild_id, incident.id, *o, at)) for o in outcomes
            )
            return m.RecordedIncident(incident, True, strike, points, dm_allowed)

        async def record_all(conn: Any) -> list[m.RecordedIncident]:
            outcome_rows.clear()  # a transaction retried starts again
            # Members' locks in one order, whatever the batch's: two batches striking the
            # same members at once wait for each other instead of deadlocking.
            members = {
                (row["guild_id"], row["user_id"])
                for row, r in zip(rows, requests, strict=True)
                if r.strike_points
            }
            for guild_id, user_id in sorted(members):
                await self._db.lock_member(conn, guild_id, user_id)
            done = [await record(conn, row, r) for row, r in zip(rows, requests, strict=True)]
            if outcome_rows:
                await conn.execute(_INSERT_OUTCOME, outcome_rows)
            return done

        return await self._db.transaction(record_all)

    async def add_outcomes(self, rows: Sequence[m.OutcomeRow]) -> None:
        """Record many steps' outcomes, of any incidents and guilds, in one transaction
        (each only on its own guild's incident), with where each posted mod-log entry
        went: the write-behind batch of promptwarden.actions."""
        for row in rows:
            if row.outcome not in m.ACTION_OUTCOMES:
                raise ValueError(f"outcome must be one of {m.ACTION_OUTCOMES}, not {row.outcome!r}")
        if not rows:
            return
        i = t.incidents

        async def add(conn: Any) -> None:
            # Each row only on its own guild's incident: one read says which are.
            found: set[tuple[int, int]] = set()
            for chunk in _chunks([row.incident_id for row in rows]):
                known = await conn.execute(select(i.c.guild_id, i.c.id).where(i.c.id.in_(chunk)))
                found.update((int(g), int(n)) for g, n in known.all())
            kept = [row for row in rows if (row.guild_id, row.incident_id) in found]
            if kept:
                await conn.execute(_INSERT_OUTCOME, [_outcome(row) for row in kept])
            for row in kept:
                if row.modlog is not None:
                    channel_id, message_id = row.modlog
                    await conn.execute(
                        update(i)
                        .where(i.c.guild_id == row.guild_id, i.c.id == row.incident_id)
                        .values(modlog_channel_id=channel_id, modlog_message_id=message_id)
                    )

        await self._db.transaction(add)


_ACTIVE_POINTS = select(func.coalesce(func.sum(t.strikes.c.points), 0)).where(
    t.strikes.c.guild_id == bindparam("guild_id"),
    t.strikes.c.user_id == bindparam("user_id"),
    t.strikes.c.revoked_at.is_(None),
    t.strikes.c.created_at > bindparam("cutoff", type_=t.UtcTime),
)


# One statement for every outcome row, run with many rows at once (executemany): compiled
# once, whatever the batch size.
_INSERT_OUTCOME = insert(t.incident_actions)


def _plain(value: Any) -> Any:
    """A stored settings value as callers take it: a JSON object as a plain dict."""
    return dict(value) if isinstance(value, Mapping) else value


def _watched_channels(guild_id: int) -> Any:
    wc = t.watched_channels
    return select(wc).where(wc.c.guild_id == guild_id).order_by(wc.c.kind, wc.c.channel_id)


def _generator_bots(guild_id: int) -> Any:
    gb = t.generator_bots
    return select(gb.c.bot_id).where(gb.c.guild_id == guild_id).order_by(gb.c.bot_id)


def _outcome(row: m.OutcomeRow) -> dict[str, Any]:
    """An outcome's row; details are capped, as the column is meant for a short reason."""
    return {
        "guild_id": row.guild_id,
        "incident_id": row.incident_id,
        "action": row.action,
        "outcome": row.outcome,
        "detail": row.detail[:500],
        "at": row.at,
    }


def _revoke_strike(guild_id: int, incident_id: int, when: datetime) -> Any:
    """Revoke the incident's strike, if it still counts."""
    s = t.strikes
    active = and_(_of(s, guild_id, incident_id=incident_id), s.c.revoked_at.is_(None))
    return update(s).where(active).values(revoked_at=when)


def _chunks(ids: Collection[int], size: int = 500) -> list[tuple[int, ...]]:
    """Distinct ids in groups well under SQLite's limit on bound parameters."""
    unique = tuple(dict.fromkeys(ids))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def _same_incident(row: Mapping[str, Any]) -> Any:
    """The guild's first incident of `row`'s message or job: the one its insert met."""
    i = t.incidents
    same = or_(i.c.message_id == row["message_id"], i.c.job_key == row["job_key"])
    return select(i).where(i.c.guild_id == row["guild_id"], same).order_by(i.c.id).limit(1)


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
    status: m.IncidentStatus = "open",
    created_at: datetime | None = None,
    job_key: str | None = None,
    source: str = "screening",
) -> dict[str, Any]:
    """An incident's row as `record_incident` takes it, checked and its excerpt capped."""
    _check(status, m.INCIDENT_STATUSES, "status")
    _check(source, m.INCIDENT_SOURCES, "source")
    excerpt = prompt_excerpt
    if len(excerpt) > m.EXCERPT_LIMIT:
        excerpt = excerpt[: m.EXCERPT_LIMIT - 1] + "…"
    row = {
        "guild_id": guild_id,
        "channel_id": channel_id,
        "message_id": message_id,
        "user_id": user_id,
        "prompt_excerpt": excerpt,
        "categories": list(categories),
        "severity": Severity(severity).name.lower(),
        "verdict": Verdict(verdict).value,
        "matches": [dict(x) for x in matches],
        "action": action,
        "status": status,
        "created_at": created_at or _now(),
        "job_key": job_key,
        "source": source,
    }
    return row


def _select(model: type, table: Table) -> Any:
    """SELECT the columns of `table` that are fields of `model`."""
    return select(*(table.c[f.name] for f in dataclasses.fields(model)))


def _incident(**fields: Any) -> m.Incident:
    """An incident from its row: JSON lists become tuples, names become enums."""
    fields["categories"] = tuple(fields["categories"])
    fields["matches"] = tuple(fields["matches"])
    fields["severity"] = Severity.parse(fields["severity"])
    fields["verdict"] = Verdict(fields["verdict"])
    return m.Incident(**fields)


def _matches_without_text(matches: list[Any]) -> list[Any]:
    """Stored matches minus the words quoted from the prompt; which rule fired stays."""
    for match in matches:
        if isinstance(match, dict):
            match.pop("text", None)
            if match.get("source") == "model":
                match.pop("term", None)  # the learned tier's terms are the prompt's words
    return matches
