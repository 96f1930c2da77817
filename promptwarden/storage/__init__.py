"""Persistence: the only package that speaks SQL.

Callers hold a `Storage` and call `open_storage`; which backend sits behind it is decided
here, from the target alone: a `postgresql://` URL means PostgreSQL (several processes,
several machines), anything else is a SQLite file (one machine, zero setup).
"""

from __future__ import annotations

from pathlib import Path

from promptwarden.storage.base import SETTINGS_CHANNEL, SettingsListener, Storage, StorageError
from promptwarden.storage.models import (
    ACTION_OUTCOMES,
    APPEAL_REASON_LIMIT,
    APPEAL_STATUSES,
    ERASED_TEXT,
    EXCERPT_LIMIT,
    INCIDENT_SOURCES,
    INCIDENT_STATUSES,
    RETRYABLE_OUTCOMES,
    ActionOutcome,
    ActionRecord,
    Appeal,
    AppealDecision,
    AppealStatus,
    ErasureReport,
    Incident,
    IncidentSource,
    IncidentStatus,
    MemberData,
    MemberPreferences,
    ModlogPress,
    ReminderRecord,
    StrikeRecord,
    WatchedChannel,
    WatchKind,
)
from promptwarden.storage.postgres import PostgresStorage, is_postgres_url, redact_url
from promptwarden.storage.sqlite import SQLiteStorage
from promptwarden.storage.sqlite_migrations import LATEST_VERSION

__all__ = [
    "ACTION_OUTCOMES",
    "APPEAL_REASON_LIMIT",
    "APPEAL_STATUSES",
    "ERASED_TEXT",
    "EXCERPT_LIMIT",
    "INCIDENT_SOURCES",
    "INCIDENT_STATUSES",
    "LATEST_VERSION",
    "RETRYABLE_OUTCOMES",
    "SETTINGS_CHANNEL",
    "ActionOutcome",
    "ActionRecord",
    "Appeal",
    "AppealDecision",
    "AppealStatus",
    "ErasureReport",
    "Incident",
    "IncidentSource",
    "IncidentStatus",
    "MemberData",
    "MemberPreferences",
    "ModlogPress",
    "PostgresStorage",
    "ReminderRecord",
    "SQLiteStorage",
    "SettingsListener",
    "Storage",
    "StorageError",
    "StrikeRecord",
    "WatchKind",
    "WatchedChannel",
    "is_postgres_url",
    "open_storage",
    "redact_url",
    "sqlite_path",
]


SQLITE_PREFIX = "sqlite:///"


async def open_storage(target: Path | str) -> Storage:
    """Open and migrate the database; raises StorageError with a one-line explanation.

    `target` is a SQLite path, a `sqlite:///path` URL or a `postgresql://` URL.
    """
    if isinstance(target, str) and is_postgres_url(target):
        return await PostgresStorage.open(target)
    return await SQLiteStorage.open(sqlite_path(target))


def sqlite_path(target: Path | str) -> Path:
    """`sqlite:///data/pw.db` is relative, `sqlite:////var/pw.db` absolute (as in SQLAlchemy)."""
    if isinstance(target, str) and target.startswith(SQLITE_PREFIX):
        return Path(target[len(SQLITE_PREFIX) :])
    return Path(target)
