"""The PostgreSQL backend: a connection pool shared by one process, many processes per database.

Several bot processes (one per shard range, on several machines) write to the same
database, so every read-modify-write here is either a single upsert or a transaction that
locks what it reads. Settings changes are announced on the `promptwarden_settings` channel
(LISTEN/NOTIFY) so other processes drop their cached per-guild configuration at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Collection, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage.base import (
    SETTING_COLUMNS,
    SETTINGS_CHANNEL,
    SettingColumn,
    SettingsListener,
    Storage,
    StorageError,
)
from promptwarden.storage.models import (
    ACTION_OUTCOMES,
    APPEAL_REASON_LIMIT,
    APPEAL_STATUSES,
    ERASED_TEXT,
    EXCERPT_LIMIT,
    INCIDENT_SOURCES,
    INCIDENT_STATUSES,
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
    ReminderRecord,
    StrikeRecord,
    WatchedChannel,
    WatchKind,
)
from promptwarden.storage.postgres_migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    SCHEMA_VERSION_TABLE,
)
from promptwarden.storage.sqlite import (
    _APPEAL_COLUMNS,
    _STRIKE_COLUMNS,
    MAX_PAGE,
    _matches_without_text,
    newer_schema_message,
)

log = logging.getLogger(__name__)

# Any fixed number: every PromptWarden process migrating the same database takes it.
MIGRATION_LOCK = 0x50574D49  # "PWMI"
# Seeds the hash that turns (guild, member) into the advisory lock a strike takes.
STRIKE_LOCK_SEED = 0x5057534B  # "PWSK"
CONNECT_TIMEOUT = 10.0
LISTEN_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)

_INCIDENT_COLUMNS = (
    "id, guild_id, channel_id, message_id, user_id, prompt_excerpt, categories, severity, "
    "verdict, matches, action, status, created_at, job_key, modlog_channel_id, modlog_message_id, "
    "source"
)


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class PostgresStorage(Storage):
    def __init__(self, pool: asyncpg.Pool, url: str, version_at_open: int) -> None:
        self._pool: asyncpg.Pool | None = pool
        self.url = url
        self._version_at_open = version_at_open
        self._listen_conn: asyncpg.Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._listen_lock = asyncio.Lock()
        self._closing = False
        self._pending: set[asyncio.Task[None]] = set()
        # Tags this object's NOTIFYs: it announces its own writes at once, so the echo
        # of them is skipped and each change reaches local listeners once.
        self._token = uuid.uuid4().hex[:16]

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresStorage:
        """Connect and migrate; any failure is a StorageError naming the (redacted) URL."""
        shown = redact_url(url)
        try:
            # No idle-connection timer: a bot queries all the time, and a timer per
            # released connection only crowds the event loop's schedule.
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT,
                max_inactive_connection_lifetime=0,
            )
        except (asyncpg.PostgresError, OSError, TimeoutError, ValueError) as error:
            raise StorageError(_connect_message(shown, error)) from error
        try:
            found = await _migrate(pool, shown)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url, found)

    @property
    def version_at_open(self) -> int:
        return self._version_at_open

    async def close(self) -> None:
        self._closing = True
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._pending):
            pending.cancel()
        await self._close_listen_connection()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("the database is closed")
        return self._pool

    async def schema_version(self) -> int:
        return int(await self.pool.fetchval("SELECT version FROM schema_version"))

    # -- settings-change notifications

    async def subscribe_settings_changes(self, listener: SettingsListener) -> None:
        await super().subscribe_settings_changes(listener)
        async with self._listen_lock:
            if self._listen_conn is None and self._listen_task is None:
                try:
                    await self._listen()  # the first subscription fails loudly
                except (asyncpg.PostgresError, OSError, TimeoutError) as error:
                    raise StorageError(
                        f"cannot listen for settings changes on {redact_url(self.url)}: "
                        f"{error}; other processes' changes would not reach this one"
                    ) from error

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        conn.add_termination_listener(self._on_listen_lost)
        await conn.add_listener(SETTINGS_CHANNEL, self._on_notification)
        self._listen_conn = conn

    def _on_notification(self, conn: object, pid: int, channel: str, payload: object) -> None:
        del conn, pid, channel
        text, _, token = str(payload).partition(":")
        if token == self._token:
            return  # our own write, announced already
        try:
            guild_id: int | None = int(text)
        except ValueError:
            guild_id = None
        self._spawn(self._announce_settings_change(guild_id))

    def _on_listen_lost(self, conn: object) -> None:
        del conn
        self._listen_conn = None
        if not self._closing and self._listen_task is None:
            log.warning("lost the settings-change channel; reconnecting")
            self._listen_task = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        """Listen again; changes may have been missed meanwhile, so everyone forgets all."""
        attempt = 0
        try:
            while not self._closing:
                try:
                    async with self._listen_lock:
                        await self._listen()
                except (asyncpg.PostgresError, OSError, TimeoutError) as error:
                    delay = LISTEN_RETRY_SECONDS[min(attempt, len(LISTEN_RETRY_SECONDS) - 1)]
                    attempt += 1
                    log.warning("settings-change channel: %s; retrying in %.0f s", error, delay)
                    await asyncio.sleep(delay)
                    continue
                await self._announce_settings_change(None)
                return
        finally:
            self._listen_task = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _close_listen_connection(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None:
            conn.remove_termination_listener(self._on_listen_lost)
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await conn.close(timeout=5)

    async def _save_setting(self, guild_id: int, sql: str, *args: Any) -> None:
        """Write and announce in one transaction: NOTIFY is sent only if the write commits."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(sql, guild_id, *args)
            await self._notify(conn, guild_id)
        await self._announce_settings_change(guild_id)

    async def _notify(self, conn: Any, guild_id: int) -> None:
        """Tell the other processes, inside the write's transaction (sent on commit)."""
        payload = f"{guild_id}:{self._token}"
        await conn.execute("SELECT pg_notify($1, $2)", SETTINGS_CHANNEL, payload)

    async def _change_setting_rows(self, guild_id: int, sql: str, *args: Any) -> str:
        """A watched-channel or generator-bot write, announced like `_save_setting` when
        it changed a row; returns the command status."""
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(sql, guild_id, *args)
            if _count(status) > 0:
                await self._notify(conn, guild_id)
        if _count(status) > 0:
            await self._announce_settings_change(guild_id)
        return str(status)

    # -- guild settings

    async def get_modlog_channel(self, guild_id: int) -> int | None:
        value = await self.pool.fetchval(
            "SELECT modlog_channel_id FROM guild_settings WHERE guild_id = $1", guild_id
        )
        return None if value is None else int(value)

    async def set_modlog_channel(self, guild_id: int, channel_id: int | None) -> None:
        await self._save_setting(
            guild_id,
            "INSERT INTO guild_settings (guild_id, modlog_channel_id, updated_at) "
            "VALUES ($1, $2, now()) ON CONFLICT (guild_id) DO UPDATE SET "
            "modlog_channel_id = excluded.modlog_channel_id, updated_at = excluded.updated_at",
            channel_id,
        )

    async def get_screening_rules(self, guild_id: int) -> dict[str, Any] | None:
        return await self._get_setting("screening_rules", guild_id)

    async def set_screening_rules(self, guild_id: int, rules: Mapping[str, Any]) -> None:
        await self._set_setting("screening_rules", guild_id, rules)

    async def _get_setting(self, column: SettingColumn, guild_id: int) -> dict[str, Any] | None:
        """One guild's JSON settings blob; `column` is one of SETTING_COLUMNS, never input."""
        if column not in SETTING_COLUMNS:
            raise ValueError(f"not a settings column: {column!r}")
        value = await self.pool.fetchval(
            f"SELECT {column} FROM guild_settings WHERE guild_id = $1", guild_id
        )
        return None if value is None else cast(dict[str, Any], json.loads(value))

    async def _set_setting(
        self, column: SettingColumn, guild_id: int, value: Mapping[str, Any]
    ) -> None:
        if column not in SETTING_COLUMNS:
            raise ValueError(f"not a settings column: {column!r}")
        await self._save_setting(
            guild_id,
            f"INSERT INTO guild_settings (guild_id, {column}, updated_at) "
            f"VALUES ($1, $2::jsonb, now()) ON CONFLICT (guild_id) DO UPDATE SET "
            f"{column} = excluded.{column}, updated_at = excluded.updated_at",
            _json(dict(value)),
        )

    # -- watched channels

    async def add_watched_channel(
        self, guild_id: int, channel_id: int, kind: WatchKind = "channel"
    ) -> bool:
        if kind not in WATCH_KINDS:
            raise ValueError(f"kind must be one of {WATCH_KINDS}, not {kind!r}")
        # xmax = 0 only on a freshly inserted row: one statement tells new from updated.
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO watched_channels (guild_id, channel_id, kind) VALUES ($1, $2, $3) "
                "ON CONFLICT (guild_id, channel_id) DO UPDATE SET kind = excluded.kind "
                "RETURNING xmax = 0",
                guild_id,
                channel_id,
                kind,
            )
            await self._notify(conn, guild_id)
        await self._announce_settings_change(guild_id)
        return bool(inserted)

    async def remove_watched_channel(self, guild_id: int, channel_id: int) -> bool:
        status = await self._change_setting_rows(
            guild_id,
            "DELETE FROM watched_channels WHERE guild_id = $1 AND channel_id = $2",
            channel_id,
        )
        return _count(status) > 0

    async def list_watched_channels(self, guild_id: int) -> list[WatchedChannel]:
        rows = await self.pool.fetch(
            "SELECT guild_id, channel_id, kind FROM watched_channels WHERE guild_id = $1 "
            "ORDER BY kind, channel_id",
            guild_id,
        )
        return [WatchedChannel(int(r[0]), int(r[1]), cast(WatchKind, r[2])) for r in rows]

    # -- generator bots

    async def add_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        status = await self._change_setting_rows(
            guild_id,
            "INSERT INTO generator_bots (guild_id, bot_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            bot_id,
        )
        return _count(status) > 0

    async def remove_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        status = await self._change_setting_rows(
            guild_id, "DELETE FROM generator_bots WHERE guild_id = $1 AND bot_id = $2", bot_id
        )
        return _count(status) > 0

    async def list_generator_bots(self, guild_id: int) -> list[int]:
        rows = await self.pool.fetch(
            "SELECT bot_id FROM generator_bots WHERE guild_id = $1 ORDER BY bot_id", guild_id
        )
        return [int(r[0]) for r in rows]

    # -- incidents

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
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}, not {status!r}")
        if source not in INCIDENT_SOURCES:
            raise ValueError(f"source must be one of {INCIDENT_SOURCES}, not {source!r}")
        excerpt = prompt_excerpt
        if len(excerpt) > EXCERPT_LIMIT:
            excerpt = excerpt[: EXCERPT_LIMIT - 1] + "…"
        async with self.pool.acquire() as conn:
            # ON CONFLICT DO NOTHING waits for a concurrent insert of the same message or
            # job to commit, so the SELECT after it finds that row: one incident, ever.
            row_id = await conn.fetchval(
                "INSERT INTO incidents (guild_id, channel_id, message_id, user_id, "
                "prompt_excerpt, categories, severity, verdict, matches, action, status, "
                "created_at, job_key, source) VALUES "
                "($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10, $11, $12, $13, $14) "
                "ON CONFLICT DO NOTHING RETURNING id",
                guild_id,
                channel_id,
                message_id,
                user_id,
                _text(excerpt),
                _json(list(categories)),
                Severity(severity).name.lower(),
                Verdict(verdict).value,
                _json([dict(m) for m in matches]),
                action,
                status,
                _aware(created_at or datetime.now(UTC)),
                job_key,
                source,
            )
            if row_id is not None:
                return int(row_id), True
            existing = await conn.fetchval(
                "SELECT id FROM incidents WHERE guild_id = $1 "
                "AND (message_id = $2 OR job_key = $3) ORDER BY id LIMIT 1",
                guild_id,
                message_id,
                job_key,
            )
        if existing is None:  # pragma: no cover - a conflict means such a row exists
            raise StorageError("an incident conflicted with a row that then vanished; retry")
        return int(existing), False

    async def set_incident_modlog(
        self, guild_id: int, incident_id: int, channel_id: int, message_id: int
    ) -> None:
        await self.pool.execute(
            "UPDATE incidents SET modlog_channel_id = $1, modlog_message_id = $2 "
            "WHERE guild_id = $3 AND id = $4",
            channel_id,
            message_id,
            guild_id,
            incident_id,
        )

    async def set_appeal_modlog(
        self, guild_id: int, appeal_id: int, channel_id: int, message_id: int
    ) -> None:
        await self.pool.execute(
            "UPDATE appeals SET modlog_channel_id = $1, modlog_message_id = $2 "
            "WHERE guild_id = $3 AND id = $4",
            channel_id,
            message_id,
            guild_id,
            appeal_id,
        )

    async def set_incident_status(
        self, guild_id: int, incident_id: int, status: IncidentStatus
    ) -> bool:
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}, not {status!r}")
        result = await self.pool.execute(
            "UPDATE incidents SET status = $1 WHERE guild_id = $2 AND id = $3",
            status,
            guild_id,
            incident_id,
        )
        return _count(result) > 0

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
        await self.pool.execute(
            "INSERT INTO incident_actions (guild_id, incident_id, action, outcome, detail, at) "
            "SELECT guild_id, id, $1, $2, $3, $4 FROM incidents WHERE guild_id = $5 AND id = $6",
            action,
            outcome,
            _text(detail[:500]),
            _aware(at or datetime.now(UTC)),
            guild_id,
            incident_id,
        )

    async def list_action_outcomes(self, guild_id: int, incident_id: int) -> list[ActionRecord]:
        rows = await self.pool.fetch(
            "SELECT incident_id, action, outcome, detail, at FROM incident_actions "
            "WHERE guild_id = $1 AND incident_id = $2 ORDER BY id",
            guild_id,
            incident_id,
        )
        return [
            ActionRecord(int(r[0]), r[1], cast(ActionOutcome, r[2]), r[3], _utc(r[4])) for r in rows
        ]

    async def list_unsettled_incidents(
        self,
        guild_id: int,
        *,
        since: datetime,
        planned: Mapping[str, Collection[str]],
        limit: int = 200,
    ) -> list[Incident]:
        pairs = [(kind, action) for kind, actions in planned.items() for action in actions]
        if not pairs:
            return []
        rows = await self.pool.fetch(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents "
            "WHERE guild_id = $1 AND created_at >= $2 AND status != 'dismissed' AND EXISTS ("
            "  SELECT 1 FROM unnest($3::text[], $4::text[]) AS p(kind, action) "
            "  WHERE p.kind = incidents.action AND NOT EXISTS ("
            "    SELECT 1 FROM incident_actions a WHERE a.guild_id = incidents.guild_id "
            "    AND a.incident_id = incidents.id AND a.action = p.action "
            "    AND a.outcome <> ALL($5::text[]))) "
            "ORDER BY id LIMIT $6",
            guild_id,
            _aware(since),
            [k for k, _ in pairs],
            [a for _, a in pairs],
            list(RETRYABLE_OUTCOMES),
            max(1, min(limit, MAX_PAGE)),
        )
        return [_incident(r) for r in rows]

    async def record_modlog_press(
        self,
        guild_id: int,
        incident_id: int,
        moderator_id: int,
        action: str,
        *,
        at: datetime | None = None,
    ) -> None:
        await self.pool.execute(
            "INSERT INTO modlog_presses (guild_id, incident_id, moderator_id, action, at) "
            "SELECT guild_id, id, $1, $2, $3 FROM incidents WHERE guild_id = $4 AND id = $5",
            moderator_id,
            action,
            _aware(at or datetime.now(UTC)),
            guild_id,
            incident_id,
        )

    async def list_modlog_presses(self, guild_id: int, incident_id: int) -> list[ModlogPress]:
        rows = await self.pool.fetch(
            "SELECT incident_id, moderator_id, action, at FROM modlog_presses "
            "WHERE guild_id = $1 AND incident_id = $2 ORDER BY id",
            guild_id,
            incident_id,
        )
        return [ModlogPress(int(r[0]), int(r[1]), r[2], _utc(r[3])) for r in rows]

    # -- strikes

    _ACTIVE_POINTS = (
        "SELECT COALESCE(SUM(points), 0) FROM strikes WHERE guild_id = $1 AND user_id = $2 "
        "AND revoked_at IS NULL AND created_at > $3"
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
        if points <= 0:
            raise ValueError("a strike needs at least one point")
        now = _aware(now or datetime.now(UTC))
        cutoff = now - window
        async with self.pool.acquire() as conn, conn.transaction():
            # One member's strikes queue behind this lock until commit, whichever process
            # adds them; each statement after it sees every strike committed before.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
                f"strike:{guild_id}:{user_id}",
                STRIKE_LOCK_SEED,
            )
            # A new statement, so a new snapshot: it sees every strike committed before
            # the lock was granted. Reading and inserting in one statement saves round trips.
            row = await conn.fetchrow(
                "WITH before AS ("
                "  SELECT COALESCE(SUM(points), 0) AS points FROM strikes WHERE guild_id = $1 "
                "  AND user_id = $2 AND revoked_at IS NULL AND created_at > $3), "
                "added AS ("
                "  INSERT INTO strikes (guild_id, user_id, incident_id, points, created_at, "
                "  points_before, points_after) SELECT $1, $2, $4, $5::int, $6, before.points, "
                "  before.points + $5::int FROM before ON CONFLICT DO NOTHING RETURNING points) "
                "SELECT before.points, "
                "before.points + COALESCE((SELECT SUM(points) FROM added), 0) FROM before",
                guild_id,
                user_id,
                cutoff,
                incident_id,
                points,
                now,
            )
        assert row is not None
        before, after = row[0], row[1]
        return int(before), int(after)

    async def revoke_strike_for_incident(
        self, guild_id: int, incident_id: int, *, now: datetime | None = None
    ) -> bool:
        result = await self.pool.execute(
            "UPDATE strikes SET revoked_at = $1 WHERE guild_id = $2 AND incident_id = $3 "
            "AND revoked_at IS NULL",
            _aware(now or datetime.now(UTC)),
            guild_id,
            incident_id,
        )
        return _count(result) > 0

    async def active_points(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> int:
        now = _aware(now or datetime.now(UTC))
        value = await self.pool.fetchval(self._ACTIVE_POINTS, guild_id, user_id, now - window)
        return int(value)

    async def list_strikes(self, guild_id: int, user_id: int) -> list[StrikeRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_STRIKE_COLUMNS} FROM strikes WHERE guild_id = $1 AND user_id = $2 "
            "ORDER BY id DESC",
            guild_id,
            user_id,
        )
        return [_strike(r) for r in rows]

    # -- enforcement settings and catch-up

    async def get_enforcement_config(self, guild_id: int) -> dict[str, Any] | None:
        return await self._get_setting("enforcement", guild_id)

    async def set_enforcement_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._set_setting("enforcement", guild_id, config)

    async def get_catchup_cursor(self, guild_id: int, channel_id: int) -> int | None:
        value = await self.pool.fetchval(
            "SELECT last_message_id FROM catchup_cursors WHERE guild_id = $1 AND channel_id = $2",
            guild_id,
            channel_id,
        )
        return None if value is None else int(value)

    async def set_catchup_cursor(self, guild_id: int, channel_id: int, message_id: int) -> None:
        await self.pool.execute(
            "INSERT INTO catchup_cursors AS c (guild_id, channel_id, last_message_id) "
            "VALUES ($1, $2, $3) ON CONFLICT (guild_id, channel_id) DO UPDATE SET "
            "last_message_id = GREATEST(c.last_message_id, excluded.last_message_id)",
            guild_id,
            channel_id,
            message_id,
        )

    async def get_incident(self, guild_id: int, incident_id: int) -> Incident | None:
        row = await self.pool.fetchrow(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE guild_id = $1 AND id = $2",
            guild_id,
            incident_id,
        )
        return None if row is None else _incident(row)

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
        where: list[str] = ["guild_id = $1"]
        params: list[Any] = [guild_id]
        for column, op, value in (
            ("user_id", "=", user_id),
            ("status", "=", status),
            ("created_at", ">=", None if since is None else _aware(since)),
            ("id", "<", before_id),
        ):
            if value is not None:
                params.append(value)
                where.append(f"{column} {op} ${len(params)}")
        params.append(max(1, min(limit, MAX_PAGE)))
        rows = await self.pool.fetch(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} "
            f"ORDER BY id DESC LIMIT ${len(params)}",
            *params,
        )
        return [_incident(r) for r in rows]

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
        where: list[str] = ["guild_id = $1"]
        params: list[Any] = [guild_id]
        for template, value in (
            ("user_id = {}", user_id),
            ("categories ? {}", category),  # JSONB: the array holds that string
            ("status = {}", status),
            ("verdict = {}", None if verdict is None else Verdict(verdict).value),
            ("created_at >= {}", None if since is None else _aware(since)),
            ("id < {}", before_id),
            ("id > {}", after_id),
        ):
            if value is not None:
                params.append(value)
                where.append(template.format(f"${len(params)}"))
        params.append(max(1, min(limit, MAX_PAGE)))
        order = "ASC" if oldest_first else "DESC"
        rows = await self.pool.fetch(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} "
            f"ORDER BY id {order} LIMIT ${len(params)}",
            *params,
        )
        return [_incident(r) for r in rows]

    async def incidents_since(
        self, guild_id: int, since: datetime | None, *, limit: int = 50_000
    ) -> list[Incident]:
        rows = await self.pool.fetch(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE guild_id = $1 "
            "AND ($2::timestamptz IS NULL OR created_at >= $2) ORDER BY created_at, id LIMIT $3",
            guild_id,
            None if since is None else _aware(since),
            max(1, limit),
        )
        return [_incident(r) for r in rows]

    async def revoke_active_strikes(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> list[StrikeRecord]:
        now = _aware(now or datetime.now(UTC))
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
                f"strike:{guild_id}:{user_id}",
                STRIKE_LOCK_SEED,
            )
            rows = await conn.fetch(
                f"SELECT {_STRIKE_COLUMNS} FROM strikes WHERE guild_id = $1 AND user_id = $2 "
                "AND revoked_at IS NULL AND created_at > $3 ORDER BY id DESC FOR UPDATE",
                guild_id,
                user_id,
                now - window,
            )
            await conn.execute(
                "UPDATE strikes SET revoked_at = $1 WHERE id = ANY($2::bigint[])",
                now,
                [r[0] for r in rows],
            )
        return [_strike(r) for r in rows]

    # -- privacy

    async def get_privacy_config(self, guild_id: int) -> dict[str, Any] | None:
        return await self._get_setting("privacy", guild_id)

    async def set_privacy_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._set_setting("privacy", guild_id, config)

    async def get_reminders_enabled(self, user_id: int) -> bool | None:
        value = await self.pool.fetchval(
            "SELECT reminders_enabled FROM member_preferences WHERE user_id = $1", user_id
        )
        return None if value is None else bool(value)

    async def set_reminders_enabled(
        self, user_id: int, enabled: bool, *, now: datetime | None = None
    ) -> None:
        await self.pool.execute(
            "INSERT INTO member_preferences (user_id, reminders_enabled, updated_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET "
            "reminders_enabled = excluded.reminders_enabled, updated_at = excluded.updated_at",
            user_id,
            enabled,
            _aware(now or datetime.now(UTC)),
        )

    async def claim_reminder(
        self,
        guild_id: int,
        user_id: int,
        kind: str,
        *,
        interval: timedelta,
        now: datetime | None = None,
    ) -> bool:
        now = _aware(now or datetime.now(UTC))
        # One upsert under the row's lock: two processes seeing the same prompt claim it once.
        status = await self.pool.execute(
            "INSERT INTO reminders_sent AS r (guild_id, user_id, kind, sent_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (guild_id, user_id, kind) "
            "DO UPDATE SET sent_at = excluded.sent_at WHERE r.sent_at <= $5",
            guild_id,
            user_id,
            kind,
            now,
            now - interval,
        )
        return _count(status) > 0

    async def release_reminder(
        self, guild_id: int, user_id: int, kind: str, *, sent_at: datetime
    ) -> None:
        await self.pool.execute(
            "DELETE FROM reminders_sent WHERE guild_id = $1 AND user_id = $2 AND kind = $3 "
            "AND sent_at = $4",
            guild_id,
            user_id,
            kind,
            _aware(sent_at),
        )

    async def get_reminder_choices(self, user_ids: Collection[int]) -> dict[int, bool]:
        if not user_ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT user_id, reminders_enabled FROM member_preferences "
            "WHERE user_id = ANY($1::bigint[])",
            list(set(user_ids)),
        )
        return {int(r[0]): bool(r[1]) for r in rows}

    async def get_reminders_sent(
        self, guild_id: int, kind: str, user_ids: Collection[int]
    ) -> dict[int, datetime]:
        if not user_ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT user_id, sent_at FROM reminders_sent WHERE guild_id = $1 AND kind = $2 "
            "AND user_id = ANY($3::bigint[])",
            guild_id,
            kind,
            list(set(user_ids)),
        )
        return {int(r[0]): _utc(r[1]) for r in rows}

    async def save_reminders(self, sent: Sequence[ReminderRecord]) -> None:
        if not sent:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO reminders_sent AS r (guild_id, user_id, kind, sent_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (guild_id, user_id, kind) "
                "DO UPDATE SET sent_at = excluded.sent_at WHERE r.sent_at < excluded.sent_at",
                [(r.guild_id, r.user_id, r.kind, _aware(r.sent_at)) for r in sent],
            )

    async def take_dm_budget(
        self, guild_id: int, *, limit: int, now: datetime | None = None
    ) -> bool:
        if limit <= 0:
            return False
        now = _aware(now or datetime.now(UTC)).astimezone(UTC)
        window = now.replace(second=0, microsecond=0)
        # Count, check and spend in one upsert under the row's lock: processes sharing a
        # guild's budget never overspend it.
        status = await self.pool.execute(
            "INSERT INTO dm_budget AS b (guild_id, window_start, count) VALUES ($1, $2, 1) "
            "ON CONFLICT (guild_id) DO UPDATE SET "
            "count = CASE WHEN b.window_start = excluded.window_start "
            "THEN b.count + 1 ELSE 1 END, window_start = excluded.window_start "
            "WHERE b.window_start <> excluded.window_start OR b.count < $3",
            guild_id,
            window,
            limit,
        )
        return _count(status) > 0

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
        if len(reason) > APPEAL_REASON_LIMIT:
            raise ValueError(f"an appeal's reason is at most {APPEAL_REASON_LIMIT} characters")
        row = await self.pool.fetchrow(
            "INSERT INTO appeals (guild_id, incident_id, user_id, reason, status, created_at) "
            "SELECT guild_id, id, user_id, $1, 'open', $2 FROM incidents "
            "WHERE guild_id = $3 AND id = $4 AND user_id = $5 "
            f"ON CONFLICT DO NOTHING RETURNING {_APPEAL_COLUMNS}",
            _text(reason),
            _aware(now or datetime.now(UTC)),
            guild_id,
            incident_id,
            user_id,
        )
        return None if row is None else _appeal(row)

    async def get_appeal(self, guild_id: int, appeal_id: int) -> Appeal | None:
        row = await self.pool.fetchrow(
            f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE guild_id = $1 AND id = $2",
            guild_id,
            appeal_id,
        )
        return None if row is None else _appeal(row)

    async def list_appeals(self, guild_id: int, incident_id: int) -> list[Appeal]:
        rows = await self.pool.fetch(
            f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE guild_id = $1 AND incident_id = $2 "
            "ORDER BY id",
            guild_id,
            incident_id,
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
        if status not in APPEAL_STATUSES or status == "open":
            raise ValueError(f"an appeal is decided as accepted or rejected, not {status!r}")
        when = _aware(now or datetime.now(UTC))
        revoked = 0
        async with self.pool.acquire() as conn, conn.transaction():
            # The row lock of this UPDATE makes a second moderator's press wait, then find
            # the appeal no longer open: decided once.
            row = await conn.fetchrow(
                "UPDATE appeals SET status = $1, moderator_id = $2, decided_at = $3 "
                f"WHERE guild_id = $4 AND id = $5 AND status = 'open' RETURNING {_APPEAL_COLUMNS}",
                status,
                moderator_id,
                when,
                guild_id,
                appeal_id,
            )
            if row is None:
                return None
            incident_id = row[2]
            if status == "accepted":
                revoked = _count(
                    await conn.execute(
                        "UPDATE strikes SET revoked_at = $1 WHERE guild_id = $2 "
                        "AND incident_id = $3 AND revoked_at IS NULL",
                        when,
                        guild_id,
                        incident_id,
                    )
                )
                await conn.execute(
                    "UPDATE incidents SET status = 'dismissed' WHERE guild_id = $1 AND id = $2",
                    guild_id,
                    incident_id,
                )
            else:
                await conn.execute(
                    "UPDATE incidents SET status = 'upheld' WHERE guild_id = $1 AND id = $2 "
                    "AND status = 'open'",
                    guild_id,
                    incident_id,
                )
        return AppealDecision(_appeal(row), strike_revoked=revoked > 0)

    # -- a person's own data

    async def export_member_data(self, user_id: int) -> MemberData:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            preferences = await conn.fetchrow(
                "SELECT user_id, reminders_enabled, updated_at FROM member_preferences "
                "WHERE user_id = $1",
                user_id,
            )
            incidents = await conn.fetch(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE user_id = $1 ORDER BY id",
                user_id,
            )
            actions = await conn.fetch(
                "SELECT a.guild_id, a.incident_id, a.action, a.outcome, a.detail, a.at "
                "FROM incident_actions a JOIN incidents i "
                "ON i.id = a.incident_id AND i.guild_id = a.guild_id "
                "WHERE i.user_id = $1 ORDER BY a.id",
                user_id,
            )
            strikes = await conn.fetch(
                f"SELECT {_STRIKE_COLUMNS} FROM strikes WHERE user_id = $1 ORDER BY id", user_id
            )
            appeals = await conn.fetch(
                f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE user_id = $1 ORDER BY id", user_id
            )
            reminders = await conn.fetch(
                "SELECT guild_id, user_id, kind, sent_at FROM reminders_sent WHERE user_id = $1 "
                "ORDER BY guild_id, kind",
                user_id,
            )
        return MemberData(
            user_id=user_id,
            preferences=None
            if preferences is None
            else MemberPreferences(int(preferences[0]), bool(preferences[1]), _utc(preferences[2])),
            incidents=tuple(_incident(r) for r in incidents),
            actions=tuple(
                (
                    int(r[0]),
                    ActionRecord(int(r[1]), r[2], cast(ActionOutcome, r[3]), r[4], _utc(r[5])),
                )
                for r in actions
            ),
            strikes=tuple(_strike(r) for r in strikes),
            appeals=tuple(_appeal(r) for r in appeals),
            reminders=tuple(
                ReminderRecord(int(r[0]), int(r[1]), r[2], _utc(r[3])) for r in reminders
            ),
        )

    async def erase_member_data(self, user_id: int) -> ErasureReport:
        async with self.pool.acquire() as conn, conn.transaction():
            preferences = _count(
                await conn.execute("DELETE FROM member_preferences WHERE user_id = $1", user_id)
            )
            reminders = _count(
                await conn.execute("DELETE FROM reminders_sent WHERE user_id = $1", user_id)
            )
            rows = await conn.fetch(
                "SELECT id, matches FROM incidents WHERE user_id = $1 AND prompt_excerpt <> $2 "
                "FOR UPDATE",
                user_id,
                ERASED_TEXT,
            )
            await conn.executemany(
                "UPDATE incidents SET prompt_excerpt = $1, matches = $2::jsonb WHERE id = $3",
                [(ERASED_TEXT, _matches_without_text(r[1]), r[0]) for r in rows],
            )
            appeals = _count(
                await conn.execute(
                    "UPDATE appeals SET reason = $1 WHERE user_id = $2 AND reason <> $1",
                    ERASED_TEXT,
                    user_id,
                )
            )
        return ErasureReport(
            preferences=preferences,
            reminders=reminders,
            incidents_redacted=len(rows),
            appeals_redacted=appeals,
        )

    # -- retention

    async def stored_guild_ids(self) -> list[int]:
        rows = await self.pool.fetch(
            "SELECT guild_id FROM incidents UNION SELECT guild_id FROM reminders_sent "
            "ORDER BY guild_id"
        )
        return [int(r[0]) for r in rows]

    async def delete_reminders_before(self, guild_id: int, cutoff: datetime) -> int:
        status = await self.pool.execute(
            "DELETE FROM reminders_sent WHERE guild_id = $1 AND sent_at < $2",
            guild_id,
            _aware(cutoff),
        )
        return _count(status)

    async def delete_incidents_before(self, guild_id: int, cutoff: datetime) -> int:
        old = "SELECT id FROM incidents WHERE guild_id = $1 AND created_at < $2"
        async with self.pool.acquire() as conn, conn.transaction():
            # Explicit rather than left to foreign keys, so every backend deletes the same.
            for table in ("incident_actions", "modlog_presses", "appeals", "strikes"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE guild_id = $1 AND incident_id IN ({old})",
                    guild_id,
                    _aware(cutoff),
                )
            status = await conn.execute(
                "DELETE FROM incidents WHERE guild_id = $1 AND created_at < $2",
                guild_id,
                _aware(cutoff),
            )
        return _count(status)

    # -- meta

    async def get_meta(self, key: str) -> str | None:
        value = await self.pool.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def set_meta(self, key: str, value: str) -> None:
        await self.pool.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )


async def _migrate(pool: asyncpg.Pool, shown: str) -> int:
    """Apply missing steps under an advisory lock, so processes starting together take turns."""
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(SCHEMA_VERSION_TABLE)
                found = int(await conn.fetchval("SELECT version FROM schema_version FOR UPDATE"))
                if found > LATEST_VERSION:
                    raise StorageError(newer_schema_message(found, LATEST_VERSION, "DATABASE_URL"))
                for version in range(found, LATEST_VERSION):
                    await conn.execute(MIGRATIONS[version])
                    await conn.execute("UPDATE schema_version SET version = $1", version + 1)
                    log.info("database %s migrated to schema %d", shown, version + 1)
        except asyncpg.PostgresError as error:
            raise StorageError(
                f"could not prepare the database at {shown}: {error}; "
                "the database was left unchanged"
            ) from error
    return found


def _connect_message(shown: str, error: BaseException) -> str:
    if isinstance(
        error, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        hint = "check the user name and password in DATABASE_URL"
    elif isinstance(error, asyncpg.InvalidCatalogNameError):
        hint = "create the database first (createdb) or fix its name in DATABASE_URL"
    elif isinstance(error, OSError | TimeoutError):
        hint = "is the server running and reachable from this machine?"
    else:
        hint = "check DATABASE_URL"
    detail = str(error).strip() or type(error).__name__
    return f"cannot connect to PostgreSQL at {shown}: {detail}; {hint}"


def _count(status: str) -> int:
    """Rows affected, from a command tag such as 'INSERT 0 1' or 'DELETE 3'."""
    return int(status.rsplit(" ", 1)[-1])


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; SQLite can. Drop it rather than lose the incident.
    return value.replace("\x00", "")


def _json(value: Any) -> str:
    # JSONB refuses the escaped NUL too.
    return json.dumps(value, ensure_ascii=False).replace("\\u0000", "")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment


def _incident(row: asyncpg.Record) -> Incident:
    return Incident(
        id=int(row[0]),
        guild_id=int(row[1]),
        channel_id=int(row[2]),
        message_id=None if row[3] is None else int(row[3]),
        user_id=int(row[4]),
        prompt_excerpt=row[5],
        categories=tuple(json.loads(row[6])),
        severity=Severity.parse(row[7]),
        verdict=Verdict(row[8]),
        matches=tuple(json.loads(row[9])),
        action=row[10],
        status=cast(IncidentStatus, row[11]),
        created_at=_utc(row[12]),
        job_key=row[13],
        modlog_channel_id=None if row[14] is None else int(row[14]),
        modlog_message_id=None if row[15] is None else int(row[15]),
        source=row[16],
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _strike(row: asyncpg.Record) -> StrikeRecord:
    return StrikeRecord(
        id=int(row[0]),
        guild_id=int(row[1]),
        user_id=int(row[2]),
        incident_id=None if row[3] is None else int(row[3]),
        points=int(row[4]),
        created_at=_utc(row[5]),
        revoked_at=None if row[6] is None else _utc(row[6]),
        points_before=int(row[7]),
        points_after=int(row[8]),
    )


def _appeal(row: asyncpg.Record) -> Appeal:
    return Appeal(
        id=int(row[0]),
        guild_id=int(row[1]),
        incident_id=int(row[2]),
        user_id=int(row[3]),
        reason=row[4],
        status=cast(AppealStatus, row[5]),
        moderator_id=None if row[6] is None else int(row[6]),
        created_at=_utc(row[7]),
        decided_at=None if row[8] is None else _utc(row[8]),
        modlog_channel_id=None if row[9] is None else int(row[9]),
        modlog_message_id=None if row[10] is None else int(row[10]),
    )
