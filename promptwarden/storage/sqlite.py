"""The SQLite backend: one aiosqlite connection, WAL, versioned migrations.

All SQL in the project lives here and in `sqlite_migrations`. Statements are
parameterised; the connection runs in autocommit mode and migrations bring their own
transaction, so a failed upgrade leaves the database exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiosqlite

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage.base import SETTING_COLUMNS, SettingColumn, Storage, StorageError
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
from promptwarden.storage.sqlite_migrations import LATEST_VERSION, MIGRATIONS

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
MAX_PAGE = 500

_APPEAL_COLUMNS = (
    "id, guild_id, incident_id, user_id, reason, status, moderator_id, created_at, decided_at, "
    "modlog_channel_id, modlog_message_id"
)
_STRIKE_COLUMNS = (
    "id, guild_id, user_id, incident_id, points, created_at, revoked_at, points_before, "
    "points_after"
)
_INCIDENT_COLUMNS = (
    "id, guild_id, channel_id, message_id, user_id, prompt_excerpt, categories, severity, "
    "verdict, matches, action, status, created_at, job_key, modlog_channel_id, modlog_message_id, "
    "source"
)


def newer_schema_message(found: int, known: int, setting: str = "DATABASE_PATH") -> str:
    return (
        f"this database was written by a newer PromptWarden (schema {found}); this version "
        f"knows up to {known}; upgrade PromptWarden or point {setting} elsewhere"
    )


class SQLiteStorage(Storage):
    def __init__(self, connection: aiosqlite.Connection, path: Path, version_at_open: int) -> None:
        self._conn: aiosqlite.Connection | None = connection
        self.path = path
        self._version_at_open = version_at_open
        # One connection serves every coroutine: a transaction spanning several awaits must
        # not let another coroutine's statement slip into it, so writes take turns.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SQLiteStorage:
        """Open (creating if needed) and migrate the database at `path`."""
        path = Path(path)
        _create_private_file(path)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise StorageError(f"cannot open the database at {path}: {error}") from error
        try:
            found = await _prepare(conn, path)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path, found)

    @property
    def version_at_open(self) -> int:
        return self._version_at_open

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @property
    def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("the database is closed")
        return self._conn

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> Iterable[sqlite3.Row]:
        return await self._db.execute_fetchall(sql, params)

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, int | None]:
        """Run one statement; returns (rows changed, last inserted row id)."""
        async with self._write_lock:
            return await self._execute(sql, params)

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, int | None]:
        async with self._db.execute(sql, params) as cursor:
            return cursor.rowcount, cursor.lastrowid

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """BEGIN IMMEDIATE .. COMMIT: takes SQLite's write lock at once, so a second process
        on the same file waits (busy_timeout) instead of interleaving."""
        async with self._write_lock:
            await self._execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._execute("ROLLBACK")
                raise
            await self._execute("COMMIT")

    async def schema_version(self) -> int:
        row = await self._one("PRAGMA user_version")
        return int(row[0]) if row else 0

    # -- guild settings

    async def get_modlog_channel(self, guild_id: int) -> int | None:
        row = await self._one(
            "SELECT modlog_channel_id FROM guild_settings WHERE guild_id = ?", (guild_id,)
        )
        return None if row is None or row[0] is None else int(row[0])

    async def set_modlog_channel(self, guild_id: int, channel_id: int | None) -> None:
        await self._write(
            "INSERT INTO guild_settings (guild_id, modlog_channel_id, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET "
            "modlog_channel_id = excluded.modlog_channel_id, updated_at = excluded.updated_at",
            (guild_id, channel_id, _now_text()),
        )
        await self._announce_settings_change(guild_id)

    async def get_screening_rules(self, guild_id: int) -> dict[str, Any] | None:
        return await self._get_setting("screening_rules", guild_id)

    async def set_screening_rules(self, guild_id: int, rules: Mapping[str, Any]) -> None:
        await self._set_setting("screening_rules", guild_id, rules)

    async def _get_setting(self, column: SettingColumn, guild_id: int) -> dict[str, Any] | None:
        """One guild's JSON settings blob; `column` is one of SETTING_COLUMNS, never input."""
        if column not in SETTING_COLUMNS:
            raise ValueError(f"not a settings column: {column!r}")
        row = await self._one(
            f"SELECT {column} FROM guild_settings WHERE guild_id = ?", (guild_id,)
        )
        if row is None or row[0] is None:
            return None
        return cast(dict[str, Any], json.loads(row[0]))

    async def _set_setting(
        self, column: SettingColumn, guild_id: int, value: Mapping[str, Any]
    ) -> None:
        if column not in SETTING_COLUMNS:
            raise ValueError(f"not a settings column: {column!r}")
        blob = json.dumps(dict(value), ensure_ascii=False, sort_keys=True)
        await self._write(
            f"INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (?, ?, ?) "
            f"ON CONFLICT (guild_id) DO UPDATE SET "
            f"{column} = excluded.{column}, updated_at = excluded.updated_at",
            (guild_id, blob, _now_text()),
        )
        await self._announce_settings_change(guild_id)

    # -- watched channels

    async def add_watched_channel(
        self, guild_id: int, channel_id: int, kind: WatchKind = "channel"
    ) -> bool:
        if kind not in WATCH_KINDS:
            raise ValueError(f"kind must be one of {WATCH_KINDS}, not {kind!r}")
        changed, _ = await self._write(
            "INSERT OR IGNORE INTO watched_channels (guild_id, channel_id, kind) VALUES (?, ?, ?)",
            (guild_id, channel_id, kind),
        )
        if not changed:
            await self._write(
                "UPDATE watched_channels SET kind = ? WHERE guild_id = ? AND channel_id = ?",
                (kind, guild_id, channel_id),
            )
        await self._announce_settings_change(guild_id)
        return changed > 0

    async def remove_watched_channel(self, guild_id: int, channel_id: int) -> bool:
        changed, _ = await self._write(
            "DELETE FROM watched_channels WHERE guild_id = ? AND channel_id = ?",
            (guild_id, channel_id),
        )
        if changed:
            await self._announce_settings_change(guild_id)
        return changed > 0

    async def list_watched_channels(self, guild_id: int) -> list[WatchedChannel]:
        rows = await self._all(
            "SELECT guild_id, channel_id, kind FROM watched_channels WHERE guild_id = ? "
            "ORDER BY kind, channel_id",
            (guild_id,),
        )
        return [WatchedChannel(int(r[0]), int(r[1]), cast(WatchKind, r[2])) for r in rows]

    # -- generator bots

    async def add_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        changed, _ = await self._write(
            "INSERT OR IGNORE INTO generator_bots (guild_id, bot_id) VALUES (?, ?)",
            (guild_id, bot_id),
        )
        if changed:
            await self._announce_settings_change(guild_id)
        return changed > 0

    async def remove_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        changed, _ = await self._write(
            "DELETE FROM generator_bots WHERE guild_id = ? AND bot_id = ?", (guild_id, bot_id)
        )
        if changed:
            await self._announce_settings_change(guild_id)
        return changed > 0

    async def list_generator_bots(self, guild_id: int) -> list[int]:
        rows = await self._all(
            "SELECT bot_id FROM generator_bots WHERE guild_id = ? ORDER BY bot_id", (guild_id,)
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
        params = (
            guild_id,
            channel_id,
            message_id,
            user_id,
            excerpt,
            json.dumps(list(categories)),
            Severity(severity).name.lower(),
            Verdict(verdict).value,
            json.dumps([dict(m) for m in matches], ensure_ascii=False),
            action,
            status,
            _time_text(created_at or datetime.now(UTC)),
            job_key,
            source,
        )
        async with self._transaction():
            changed, row_id = await self._execute(
                "INSERT OR IGNORE INTO incidents (guild_id, channel_id, message_id, user_id, "
                "prompt_excerpt, categories, severity, verdict, matches, action, status, "
                "created_at, job_key, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            if changed:
                assert row_id is not None
                return row_id, True
            row = await self._one(
                "SELECT id FROM incidents WHERE guild_id = ? AND (message_id = ? OR job_key = ?) "
                "ORDER BY id LIMIT 1",
                (guild_id, message_id, job_key),
            )
        assert row is not None  # ignored only because such a row exists
        return int(row[0]), False

    async def set_incident_status(
        self, guild_id: int, incident_id: int, status: IncidentStatus
    ) -> bool:
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}, not {status!r}")
        changed, _ = await self._write(
            "UPDATE incidents SET status = ? WHERE guild_id = ? AND id = ?",
            (status, guild_id, incident_id),
        )
        return changed > 0

    async def set_incident_modlog(
        self, guild_id: int, incident_id: int, channel_id: int, message_id: int
    ) -> None:
        await self._write(
            "UPDATE incidents SET modlog_channel_id = ?, modlog_message_id = ? "
            "WHERE guild_id = ? AND id = ?",
            (channel_id, message_id, guild_id, incident_id),
        )

    async def set_appeal_modlog(
        self, guild_id: int, appeal_id: int, channel_id: int, message_id: int
    ) -> None:
        await self._write(
            "UPDATE appeals SET modlog_channel_id = ?, modlog_message_id = ? "
            "WHERE guild_id = ? AND id = ?",
            (channel_id, message_id, guild_id, appeal_id),
        )

    async def get_incident(self, guild_id: int, incident_id: int) -> Incident | None:
        row = await self._one(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE guild_id = ? AND id = ?",
            (guild_id, incident_id),
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
        where: list[str] = ["guild_id = ?"]
        params: list[Any] = [guild_id]
        for clause, value in (
            ("user_id = ?", user_id),
            ("status = ?", status),
            ("created_at >= ?", None if since is None else _time_text(since)),
            ("id < ?", before_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        params.append(max(1, min(limit, MAX_PAGE)))
        rows = await self._all(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?",
            params,
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
        where: list[str] = ["guild_id = ?"]
        params: list[Any] = [guild_id]
        for clause, value in (
            ("user_id = ?", user_id),
            ("EXISTS (SELECT 1 FROM json_each(incidents.categories) WHERE value = ?)", category),
            ("status = ?", status),
            ("verdict = ?", None if verdict is None else Verdict(verdict).value),
            ("created_at >= ?", None if since is None else _time_text(since)),
            ("id < ?", before_id),
            ("id > ?", after_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        params.append(max(1, min(limit, MAX_PAGE)))
        order = "ASC" if oldest_first else "DESC"
        rows = await self._all(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} "
            f"ORDER BY id {order} LIMIT ?",
            params,
        )
        return [_incident(r) for r in rows]

    async def incidents_since(
        self, guild_id: int, since: datetime | None, *, limit: int = 50_000
    ) -> list[Incident]:
        params: list[Any] = [guild_id]
        clause = ""
        if since is not None:
            clause = " AND created_at >= ?"
            params.append(_time_text(since))
        params.append(max(1, limit))
        rows = await self._all(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE guild_id = ?{clause} "
            "ORDER BY created_at, id LIMIT ?",
            params,
        )
        return [_incident(r) for r in rows]

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
        await self._write(
            "INSERT INTO incident_actions (guild_id, incident_id, action, outcome, detail, at) "
            "SELECT guild_id, id, ?, ?, ?, ? FROM incidents WHERE guild_id = ? AND id = ?",
            (
                action,
                outcome,
                detail[:500],
                _time_text(at or datetime.now(UTC)),
                guild_id,
                incident_id,
            ),
        )

    async def list_action_outcomes(self, guild_id: int, incident_id: int) -> list[ActionRecord]:
        rows = await self._all(
            "SELECT incident_id, action, outcome, detail, at FROM incident_actions "
            "WHERE guild_id = ? AND incident_id = ? ORDER BY id",
            (guild_id, incident_id),
        )
        return [
            ActionRecord(
                int(r[0]), r[1], cast(ActionOutcome, r[2]), r[3], datetime.fromisoformat(r[4])
            )
            for r in rows
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
        values = ", ".join("(?, ?)" for _ in pairs)
        retry = ", ".join("?" for _ in RETRYABLE_OUTCOMES)
        rows = await self._all(
            f"WITH planned (kind, action) AS (VALUES {values}) "
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents "
            "WHERE guild_id = ? AND created_at >= ? AND status != 'dismissed' AND EXISTS ("
            "  SELECT 1 FROM planned p WHERE p.kind = incidents.action AND NOT EXISTS ("
            "    SELECT 1 FROM incident_actions a WHERE a.guild_id = incidents.guild_id "
            f"    AND a.incident_id = incidents.id AND a.action = p.action "
            f"    AND a.outcome NOT IN ({retry}))) "
            "ORDER BY id LIMIT ?",
            [
                *(v for pair in pairs for v in pair),
                guild_id,
                _time_text(since),
                *RETRYABLE_OUTCOMES,
                max(1, min(limit, MAX_PAGE)),
            ],
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
        await self._write(
            "INSERT INTO modlog_presses (guild_id, incident_id, moderator_id, action, at) "
            "SELECT guild_id, id, ?, ?, ? FROM incidents WHERE guild_id = ? AND id = ?",
            (moderator_id, action, _time_text(at or datetime.now(UTC)), guild_id, incident_id),
        )

    async def list_modlog_presses(self, guild_id: int, incident_id: int) -> list[ModlogPress]:
        rows = await self._all(
            "SELECT incident_id, moderator_id, action, at FROM modlog_presses "
            "WHERE guild_id = ? AND incident_id = ? ORDER BY id",
            (guild_id, incident_id),
        )
        return [ModlogPress(int(r[0]), int(r[1]), r[2], datetime.fromisoformat(r[3])) for r in rows]

    # -- strikes

    _ACTIVE_POINTS = (
        "SELECT COALESCE(SUM(points), 0) FROM strikes WHERE guild_id = ? AND user_id = ? "
        "AND revoked_at IS NULL AND created_at > ?"
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
        now = now or datetime.now(UTC)
        cutoff = (guild_id, user_id, _time_text(now - window))
        async with self._transaction():
            before = await self._one(self._ACTIVE_POINTS, cutoff)
            assert before is not None
            await self._execute(
                "INSERT OR IGNORE INTO strikes (guild_id, user_id, incident_id, points, "
                "created_at, points_before, points_after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    guild_id,
                    user_id,
                    incident_id,
                    points,
                    _time_text(now),
                    int(before[0]),
                    int(before[0]) + points,
                ),
            )
            after = await self._one(self._ACTIVE_POINTS, cutoff)
        assert after is not None
        return int(before[0]), int(after[0])

    async def revoke_strike_for_incident(
        self, guild_id: int, incident_id: int, *, now: datetime | None = None
    ) -> bool:
        changed, _ = await self._write(
            "UPDATE strikes SET revoked_at = ? WHERE guild_id = ? AND incident_id = ? "
            "AND revoked_at IS NULL",
            (_time_text(now or datetime.now(UTC)), guild_id, incident_id),
        )
        return changed > 0

    async def active_points(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> int:
        now = now or datetime.now(UTC)
        row = await self._one(self._ACTIVE_POINTS, (guild_id, user_id, _time_text(now - window)))
        return 0 if row is None else int(row[0])

    async def revoke_active_strikes(
        self, guild_id: int, user_id: int, *, window: timedelta, now: datetime | None = None
    ) -> list[StrikeRecord]:
        now = now or datetime.now(UTC)
        active = (
            "FROM strikes WHERE guild_id = ? AND user_id = ? AND revoked_at IS NULL "
            "AND created_at > ?"
        )
        key = (guild_id, user_id, _time_text(now - window))
        async with self._transaction():
            rows = await self._all(
                f"SELECT {_STRIKE_COLUMNS} {active} ORDER BY id DESC",
                key,
            )
            await self._execute(
                f"UPDATE strikes SET revoked_at = ? WHERE id IN (SELECT id {active})",
                (_time_text(now), *key),
            )
        return [_strike(r) for r in rows]

    async def list_strikes(self, guild_id: int, user_id: int) -> list[StrikeRecord]:
        rows = await self._all(
            f"SELECT {_STRIKE_COLUMNS} FROM strikes WHERE guild_id = ? AND user_id = ? "
            "ORDER BY id DESC",
            (guild_id, user_id),
        )
        return [_strike(r) for r in rows]

    # -- enforcement settings and catch-up

    async def get_enforcement_config(self, guild_id: int) -> dict[str, Any] | None:
        return await self._get_setting("enforcement", guild_id)

    async def set_enforcement_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._set_setting("enforcement", guild_id, config)

    async def get_catchup_cursor(self, guild_id: int, channel_id: int) -> int | None:
        row = await self._one(
            "SELECT last_message_id FROM catchup_cursors WHERE guild_id = ? AND channel_id = ?",
            (guild_id, channel_id),
        )
        return None if row is None else int(row[0])

    async def set_catchup_cursor(self, guild_id: int, channel_id: int, message_id: int) -> None:
        await self._write(
            "INSERT INTO catchup_cursors (guild_id, channel_id, last_message_id) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, channel_id) DO UPDATE SET "
            "last_message_id = MAX(last_message_id, excluded.last_message_id)",
            (guild_id, channel_id, message_id),
        )

    # -- privacy

    async def get_privacy_config(self, guild_id: int) -> dict[str, Any] | None:
        return await self._get_setting("privacy", guild_id)

    async def set_privacy_config(self, guild_id: int, config: Mapping[str, Any]) -> None:
        await self._set_setting("privacy", guild_id, config)

    async def get_reminders_enabled(self, user_id: int) -> bool | None:
        row = await self._one(
            "SELECT reminders_enabled FROM member_preferences WHERE user_id = ?", (user_id,)
        )
        return None if row is None else bool(row[0])

    async def set_reminders_enabled(
        self, user_id: int, enabled: bool, *, now: datetime | None = None
    ) -> None:
        await self._write(
            "INSERT INTO member_preferences (user_id, reminders_enabled, updated_at) "
            "VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
            "reminders_enabled = excluded.reminders_enabled, updated_at = excluded.updated_at",
            (user_id, int(enabled), _time_text(now or datetime.now(UTC))),
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
        now = now or datetime.now(UTC)
        # One statement: two processes seeing the same prompt claim it once.
        changed, _ = await self._write(
            "INSERT INTO reminders_sent (guild_id, user_id, kind, sent_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (guild_id, user_id, kind) DO UPDATE SET sent_at = excluded.sent_at "
            "WHERE reminders_sent.sent_at <= ?",
            (guild_id, user_id, kind, _time_text(now), _time_text(now - interval)),
        )
        return changed > 0

    async def release_reminder(
        self, guild_id: int, user_id: int, kind: str, *, sent_at: datetime
    ) -> None:
        await self._write(
            "DELETE FROM reminders_sent WHERE guild_id = ? AND user_id = ? AND kind = ? "
            "AND sent_at = ?",
            (guild_id, user_id, kind, _time_text(sent_at)),
        )

    async def get_reminder_choices(self, user_ids: Collection[int]) -> dict[int, bool]:
        choices: dict[int, bool] = {}
        for chunk in _chunks(user_ids):
            rows = await self._all(
                "SELECT user_id, reminders_enabled FROM member_preferences "
                f"WHERE user_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            choices.update((int(r[0]), bool(r[1])) for r in rows)
        return choices

    async def get_reminders_sent(
        self, guild_id: int, kind: str, user_ids: Collection[int]
    ) -> dict[int, datetime]:
        sent: dict[int, datetime] = {}
        for chunk in _chunks(user_ids):
            rows = await self._all(
                "SELECT user_id, sent_at FROM reminders_sent WHERE guild_id = ? AND kind = ? "
                f"AND user_id IN ({', '.join('?' * len(chunk))})",
                (guild_id, kind, *chunk),
            )
            sent.update((int(r[0]), datetime.fromisoformat(r[1])) for r in rows)
        return sent

    async def save_reminders(self, sent: Sequence[ReminderRecord]) -> None:
        if not sent:
            return
        async with self._transaction():
            await self._db.executemany(
                "INSERT INTO reminders_sent (guild_id, user_id, kind, sent_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, user_id, kind) DO UPDATE SET "
                "sent_at = excluded.sent_at WHERE reminders_sent.sent_at < excluded.sent_at",
                [(r.guild_id, r.user_id, r.kind, _time_text(r.sent_at)) for r in sent],
            )

    async def take_dm_budget(
        self, guild_id: int, *, limit: int, now: datetime | None = None
    ) -> bool:
        if limit <= 0:
            return False
        now = (now or datetime.now(UTC)).astimezone(UTC)
        window = _time_text(now.replace(second=0, microsecond=0))
        # A new minute starts the count again; within the minute it counts up to `limit`.
        # SET reads the old row, and the WHERE refuses the update once the limit is reached.
        changed, _ = await self._write(
            "INSERT INTO dm_budget (guild_id, window_start, count) VALUES (?, ?, 1) "
            "ON CONFLICT (guild_id) DO UPDATE SET "
            "count = CASE WHEN dm_budget.window_start = excluded.window_start "
            "THEN dm_budget.count + 1 ELSE 1 END, window_start = excluded.window_start "
            "WHERE dm_budget.window_start != excluded.window_start OR dm_budget.count < ?",
            (guild_id, window, limit),
        )
        return changed > 0

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
        changed, row_id = await self._write(
            "INSERT OR IGNORE INTO appeals (guild_id, incident_id, user_id, reason, status, "
            "created_at) SELECT guild_id, id, user_id, ?, 'open', ? FROM incidents "
            "WHERE guild_id = ? AND id = ? AND user_id = ?",
            (reason, _time_text(now or datetime.now(UTC)), guild_id, incident_id, user_id),
        )
        if not changed or row_id is None:
            return None
        return await self.get_appeal(guild_id, row_id)

    async def get_appeal(self, guild_id: int, appeal_id: int) -> Appeal | None:
        row = await self._one(
            f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE guild_id = ? AND id = ?",
            (guild_id, appeal_id),
        )
        return None if row is None else _appeal(row)

    async def list_appeals(self, guild_id: int, incident_id: int) -> list[Appeal]:
        rows = await self._all(
            f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE guild_id = ? AND incident_id = ? "
            "ORDER BY id",
            (guild_id, incident_id),
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
        when = _time_text(now or datetime.now(UTC))
        revoked = 0
        async with self._transaction():
            changed, _ = await self._execute(
                "UPDATE appeals SET status = ?, moderator_id = ?, decided_at = ? "
                "WHERE guild_id = ? AND id = ? AND status = 'open'",
                (status, moderator_id, when, guild_id, appeal_id),
            )
            if changed:
                incident = "(SELECT incident_id FROM appeals WHERE guild_id = ? AND id = ?)"
                if status == "accepted":
                    revoked, _ = await self._execute(
                        "UPDATE strikes SET revoked_at = ? WHERE guild_id = ? "
                        f"AND incident_id = {incident} AND revoked_at IS NULL",
                        (when, guild_id, guild_id, appeal_id),
                    )
                    await self._execute(
                        f"UPDATE incidents SET status = 'dismissed' WHERE guild_id = ? "
                        f"AND id = {incident}",
                        (guild_id, guild_id, appeal_id),
                    )
                else:
                    await self._execute(
                        f"UPDATE incidents SET status = 'upheld' WHERE guild_id = ? "
                        f"AND id = {incident} AND status = 'open'",
                        (guild_id, guild_id, appeal_id),
                    )
        if not changed:
            return None
        appeal = await self.get_appeal(guild_id, appeal_id)
        assert appeal is not None
        return AppealDecision(appeal, strike_revoked=revoked > 0)

    # -- a person's own data

    async def export_member_data(self, user_id: int) -> MemberData:
        preferences = await self._one(
            "SELECT user_id, reminders_enabled, updated_at FROM member_preferences "
            "WHERE user_id = ?",
            (user_id,),
        )
        incidents = await self._all(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE user_id = ? ORDER BY id", (user_id,)
        )
        actions = await self._all(
            "SELECT a.guild_id, a.incident_id, a.action, a.outcome, a.detail, a.at "
            "FROM incident_actions a JOIN incidents i "
            "ON i.id = a.incident_id AND i.guild_id = a.guild_id "
            "WHERE i.user_id = ? ORDER BY a.id",
            (user_id,),
        )
        strikes = await self._all(
            f"SELECT {_STRIKE_COLUMNS} FROM strikes WHERE user_id = ? ORDER BY id", (user_id,)
        )
        appeals = await self._all(
            f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE user_id = ? ORDER BY id", (user_id,)
        )
        reminders = await self._all(
            "SELECT guild_id, user_id, kind, sent_at FROM reminders_sent WHERE user_id = ? "
            "ORDER BY guild_id, kind",
            (user_id,),
        )
        return MemberData(
            user_id=user_id,
            preferences=None
            if preferences is None
            else MemberPreferences(
                int(preferences[0]), bool(preferences[1]), datetime.fromisoformat(preferences[2])
            ),
            incidents=tuple(_incident(r) for r in incidents),
            actions=tuple(
                (
                    int(r[0]),
                    ActionRecord(
                        int(r[1]),
                        r[2],
                        cast(ActionOutcome, r[3]),
                        r[4],
                        datetime.fromisoformat(r[5]),
                    ),
                )
                for r in actions
            ),
            strikes=tuple(_strike(r) for r in strikes),
            appeals=tuple(_appeal(r) for r in appeals),
            reminders=tuple(
                ReminderRecord(int(r[0]), int(r[1]), r[2], datetime.fromisoformat(r[3]))
                for r in reminders
            ),
        )

    async def erase_member_data(self, user_id: int) -> ErasureReport:
        async with self._transaction():
            preferences, _ = await self._execute(
                "DELETE FROM member_preferences WHERE user_id = ?", (user_id,)
            )
            reminders, _ = await self._execute(
                "DELETE FROM reminders_sent WHERE user_id = ?", (user_id,)
            )
            rows = list(
                await self._all(
                    "SELECT id, matches FROM incidents WHERE user_id = ? AND prompt_excerpt != ?",
                    (user_id, ERASED_TEXT),
                )
            )
            for row in rows:
                await self._execute(
                    "UPDATE incidents SET prompt_excerpt = ?, matches = ? WHERE id = ?",
                    (ERASED_TEXT, _matches_without_text(row[1]), row[0]),
                )
            appeals, _ = await self._execute(
                "UPDATE appeals SET reason = ? WHERE user_id = ? AND reason != ?",
                (ERASED_TEXT, user_id, ERASED_TEXT),
            )
        return ErasureReport(
            preferences=max(preferences, 0),
            reminders=max(reminders, 0),
            incidents_redacted=len(rows),
            appeals_redacted=max(appeals, 0),
        )

    # -- retention

    async def stored_guild_ids(self) -> list[int]:
        rows = await self._all(
            "SELECT guild_id FROM incidents UNION SELECT guild_id FROM reminders_sent "
            "ORDER BY guild_id"
        )
        return [int(r[0]) for r in rows]

    async def delete_reminders_before(self, guild_id: int, cutoff: datetime) -> int:
        deleted, _ = await self._write(
            "DELETE FROM reminders_sent WHERE guild_id = ? AND sent_at < ?",
            (guild_id, _time_text(cutoff)),
        )
        return max(deleted, 0)

    async def delete_incidents_before(self, guild_id: int, cutoff: datetime) -> int:
        old = "SELECT id FROM incidents WHERE guild_id = ? AND created_at < ?"
        params = (guild_id, _time_text(cutoff))
        async with self._transaction():
            # Explicit rather than left to foreign keys, so every backend deletes the same.
            for table in ("incident_actions", "modlog_presses", "appeals", "strikes"):
                await self._execute(
                    f"DELETE FROM {table} WHERE guild_id = ? AND incident_id IN ({old})",
                    (guild_id, *params),
                )
            deleted, _ = await self._execute(
                "DELETE FROM incidents WHERE guild_id = ? AND created_at < ?", params
            )
        return max(deleted, 0)

    # -- meta

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _create_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite does (its WAL files copy the mode)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "database file %s is readable by other users (mode %o); "
                "consider chmod 600 since it holds moderation records",
                path,
                mode,
            )
        return
    except OSError as error:
        raise StorageError(
            f"cannot create the database at {path}: {error.strerror}; "
            "set DATABASE_PATH to a writable location"
        ) from error
    os.close(fd)


async def _prepare(conn: aiosqlite.Connection, path: Path) -> int:
    """Set pragmas, refuse a newer schema, apply missing migrations; returns the old version."""
    try:
        await _pragma(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        found = int((await _pragma(conn, "PRAGMA user_version"))[0][0])
    except sqlite3.DatabaseError as error:
        raise StorageError(
            f"{path} is not a PromptWarden database ({error}); point DATABASE_PATH at "
            "a new file or at the bot's database"
        ) from error
    if found > LATEST_VERSION:
        raise StorageError(newer_schema_message(found, LATEST_VERSION))
    await _pragma(conn, "PRAGMA journal_mode = WAL")
    await _pragma(conn, "PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
    await _pragma(conn, "PRAGMA foreign_keys = ON")
    for version in range(found, LATEST_VERSION):
        script = (
            f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\n"
            f"PRAGMA user_version = {version + 1};\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except sqlite3.Error as error:
            if conn.in_transaction:
                await conn.rollback()
            raise StorageError(
                f"could not upgrade {path} from schema {version} to {version + 1}: {error}; "
                "the database was left unchanged"
            ) from error
        log.info("database %s migrated to schema %d", path, version + 1)
    return found


async def _pragma(conn: aiosqlite.Connection, sql: str) -> list[sqlite3.Row]:
    """Run a PRAGMA and finish its cursor: an open one would block the next COMMIT."""
    async with conn.execute(sql) as cursor:
        return list(await cursor.fetchall())


# Ids bound per statement: well under SQLite's limit on host parameters.
ID_CHUNK = 500


def _chunks(ids: Collection[int]) -> list[tuple[int, ...]]:
    unique = tuple(dict.fromkeys(ids))
    return [unique[i : i + ID_CHUNK] for i in range(0, len(unique), ID_CHUNK)]


def _now_text() -> str:
    return _time_text(datetime.now(UTC))


def _time_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _strike(row: sqlite3.Row) -> StrikeRecord:
    return StrikeRecord(
        id=int(row[0]),
        guild_id=int(row[1]),
        user_id=int(row[2]),
        incident_id=None if row[3] is None else int(row[3]),
        points=int(row[4]),
        created_at=datetime.fromisoformat(row[5]),
        revoked_at=None if row[6] is None else datetime.fromisoformat(row[6]),
        points_before=int(row[7]),
        points_after=int(row[8]),
    )


def _appeal(row: sqlite3.Row) -> Appeal:
    return Appeal(
        id=int(row[0]),
        guild_id=int(row[1]),
        incident_id=int(row[2]),
        user_id=int(row[3]),
        reason=row[4],
        status=cast(AppealStatus, row[5]),
        moderator_id=None if row[6] is None else int(row[6]),
        created_at=datetime.fromisoformat(row[7]),
        decided_at=None if row[8] is None else datetime.fromisoformat(row[8]),
        modlog_channel_id=None if row[9] is None else int(row[9]),
        modlog_message_id=None if row[10] is None else int(row[10]),
    )


def _matches_without_text(blob: str) -> str:
    """Stored matches minus the words quoted from the prompt; which rule fired stays."""
    matches = json.loads(blob)
    for match in matches:
        if isinstance(match, dict):
            match.pop("text", None)
            if match.get("source") == "model":
                match.pop("term", None)  # the learned tier's terms are the prompt's words
    return json.dumps(matches, ensure_ascii=False)


def _incident(row: sqlite3.Row) -> Incident:
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
        created_at=datetime.fromisoformat(row[12]),
        job_key=row[13],
        modlog_channel_id=None if row[14] is None else int(row[14]),
        modlog_message_id=None if row[15] is None else int(row[15]),
        source=row[16],
    )
