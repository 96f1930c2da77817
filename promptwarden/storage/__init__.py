"""Persistence: the only package that speaks SQL.

Callers hold a `Storage` and call `open_storage`; which backend sits behind it is decided
here (SQLite today; the interface is written so PostgreSQL can implement it too).
"""

from __future__ import annotations

from pathlib import Path

from promptwarden.storage.base import Storage, StorageError
from promptwarden.storage.models import (
    ACTION_OUTCOMES,
    APPEAL_REASON_LIMIT,
    APPEAL_STATUSES,
    ERASED_TEXT,
    EXCERPT_LIMIT,
    INCIDENT_STATUSES,
    RETRYABLE_OUTCOMES,
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
from promptwarden.storage.sqlite import SQLiteStorage
from promptwarden.storage.sqlite_migrations import LATEST_VERSION

__all__ = [
    "ACTION_OUTCOMES",
    "APPEAL_REASON_LIMIT",
    "APPEAL_STATUSES",
    "ERASED_TEXT",
    "EXCERPT_LIMIT",
    "INCIDENT_STATUSES",
    "LATEST_VERSION",
    "RETRYABLE_OUTCOMES",
    "ActionOutcome",
    "ActionRecord",
    "Appeal",
    "AppealDecision",
    "AppealStatus",
    "ErasureReport",
    "Incident",
    "IncidentStatus",
    "MemberData",
    "MemberPreferences",
    "ModlogPress",
    "ReminderRecord",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "StrikeRecord",
    "WatchKind",
    "WatchedChannel",
    "open_storage",
]


async def open_storage(path: Path | str) -> Storage:
    """Open and migrate the database; raises StorageError with a one-line explanation."""
    return await SQLiteStorage.open(path)
