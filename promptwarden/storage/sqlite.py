"""The SQLite backend: one aiosqlite connection, WAL, versioned migrations.

All SQL in the project lives here and in `sqlite_migrations`. Statements are
parameterised; the connection runs in autocommit mode and migrations bring their own
transaction, so a failed upgrade leaves the database exactly as it was.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage.base import Storage, StorageError
from promptwarden.storage.models import (
    EXCERPT_LIMIT,
    INCIDENT_STATUSES,
    WATCH_KINDS,
    Incident,
    IncidentStatus,
    WatchedChannel,
    WatchKind,
)
from promptwarden.storage.sqlite_migrations import LATEST_VERSION, MIGRATIONS

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
MAX_PAGE = 500

_INCIDENT_COLUMNS = (
    "id, guild_id, channel_id, message_id, user_id, prompt_excerpt, categories, severity, "
    "verdict, matches, action, status, created_at"
)

# Token bucket: ?1 guild, ?2 bucket size (= DMs per minute), ?3 now in Unix seconds. A row
# comes back only when a token was spent.
_DM_TOKEN_SQL = """
INSERT INTO dm_budget AS b (guild_id, tokens, updated_at) VALUES (?1, ?2 - 1, ?3)
ON CONFLICT (guild_id) DO UPDATE SET
    tokens = min(?2, b.tokens + max(0, ?3 - b.updated_at) * ?2 / 60.0) - 1,
    updated_at = max(b.updated_at, ?3)
WHERE min(?2, b.tokens + max(0, ?3 - b.updated_at) * ?2 / 60.0) >= 1
RETURNING tokens
"""


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
        async with self._db.execute(sql, params) as cursor:
            return cursor.rowcount, cursor.lastrowid

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
        row = await self._one(
            "SELECT screening_rules FROM guild_settings WHERE guild_id = ?", (guild_id,)
        )
        if row is None or row[0] is None:
            return None
        return cast(dict[str, Any], json.loads(row[0]))

    async def set_screening_rules(self, guild_id: int, rules: Mapping[str, Any]) -> None:
        blob = json.dumps(dict(rules), ensure_ascii=False)
        await self._write(
            "INSERT INTO guild_settings (guild_id, screening_rules, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET "
            "screening_rules = excluded.screening_rules, updated_at = excluded.updated_at",
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
        if changed:
            return True
        await self._write(
            "UPDATE watched_channels SET kind = ? WHERE guild_id = ? AND channel_id = ?",
            (kind, guild_id, channel_id),
        )
        return False

    async def remove_watched_channel(self, guild_id: int, channel_id: int) -> bool:
        changed, _ = await self._write(
            "DELETE FROM watched_channels WHERE guild_id = ? AND channel_id = ?",
            (guild_id, channel_id),
        )
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
        return changed > 0

    async def remove_generator_bot(self, guild_id: int, bot_id: int) -> bool:
        changed, _ = await self._write(
            "DELETE FROM generator_bots WHERE guild_id = ? AND bot_id = ?", (guild_id, bot_id)
        )
        return changed > 0

    async def list_generator_bots(self, guild_id: int) -> list[int]:
        rows = await self._all(
            "SELECT bot_id FROM generator_bots WHERE guild_id = ? ORDER BY bot_id", (guild_id,)
        )
        return [int(r[0]) for r in rows]

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
    ) -> int:
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}, not {status!r}")
        excerpt = prompt_excerpt
        if len(excerpt) > EXCERPT_LIMIT:
            excerpt = excerpt[: EXCERPT_LIMIT - 1] + "…"
        _, row_id = await self._write(
            "INSERT INTO incidents (guild_id, channel_id, message_id, user_id, prompt_excerpt, "
            "categories, severity, verdict, matches, action, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )
        assert row_id is not None
        return row_id

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

    # -- shared state

    async def take_dm_token(
        self, guild_id: int, per_minute: int, *, now: datetime | None = None
    ) -> bool:
        if per_minute <= 0:
            return False
        moment = time.time() if now is None else now.timestamp()
        # One statement, so the refill-check-spend cannot interleave with another writer.
        row = await self._one(_DM_TOKEN_SQL, (guild_id, float(per_minute), moment))
        return row is not None

    async def mark_reminder_sent(
        self, guild_id: int, user_id: int, kind: str, *, now: datetime | None = None
    ) -> bool:
        changed, _ = await self._write(
            "INSERT INTO reminders_sent (guild_id, user_id, kind, sent_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (guild_id, user_id, kind, _time_text(now or datetime.now(UTC))),
        )
        return changed > 0

    async def reminder_sent_at(self, guild_id: int, user_id: int, kind: str) -> datetime | None:
        row = await self._one(
            "SELECT sent_at FROM reminders_sent WHERE guild_id = ? AND user_id = ? AND kind = ?",
            (guild_id, user_id, kind),
        )
        return None if row is None else datetime.fromisoformat(row[0])

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


def _now_text() -> str:
    return _time_text(datetime.now(UTC))


def _time_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


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
    )
