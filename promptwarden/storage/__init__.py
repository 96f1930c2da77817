"""Persistence: the only package that speaks SQL.

Callers hold a `Storage` and call `open_storage`; which database sits behind it is decided
here, from the target alone: a `postgresql://` URL means PostgreSQL (several processes,
several machines), anything else is a SQLite file (one machine, zero setup).
"""

from __future__ import annotations

from pathlib import Path

from promptwarden.storage.backends import (
    StorageError,
    is_postgres_url,
    open_backend,
    redact_url,
)
from promptwarden.storage.migrations import LATEST_VERSION
from promptwarden.storage.models import (
    APPEAL_REASON_LIMIT,
    DM_SLOT,
    ERASED_TEXT,
    EXCERPT_LIMIT,
    INCIDENT_STATUSES,
    RETRYABLE_OUTCOMES,
    ActionOutcome,
    ActionRecord,
    Appeal,
    AppealDecision,
    ErasureReport,
    GuildSettings,
    Incident,
    IncidentRequest,
    IncidentStatus,
    MemberData,
    OutcomeRow,
    RecordedIncident,
    ReminderRecord,
    StrikeRecord,
    WatchedChannel,
    WatchKind,
)
from promptwarden.storage.store import Storage

__all__ = [
    "APPEAL_REASON_LIMIT",
    "DM_SLOT",
    "ERASED_TEXT",
    "EXCERPT_LIMIT",
    "INCIDENT_STATUSES",
    "LATEST_VERSION",
    "RETRYABLE_OUTCOMES",
    "ActionOutcome",
    "ActionRecord",
    "Appeal",
    "AppealDecision",
    "ErasureReport",
    "GuildSettings",
    "Incident",
    "IncidentRequest",
    "IncidentStatus",
    "MemberData",
    "OutcomeRow",
    "RecordedIncident",
    "ReminderRecord",
    "Storage",
    "StorageError",
    "StrikeRecord",
    "WatchKind",
    "WatchedChannel",
    "is_postgres_url",
    "open_storage",
    "redact_url",
]


async def open_storage(target: Path | str, *, max_connections: int = 10) -> Storage:
    """Open and migrate the database; raises StorageError with a one-line explanation.

    `target` is a SQLite path, a `sqlite:///path` URL or a `postgresql://` URL;
    `max_connections` sizes PostgreSQL's pool (SQLite uses one connection).
    """
    options = (
        {"max_size": max_connections} if isinstance(target, str) and is_postgres_url(target) else {}
    )
    backend, found = await open_backend(target, **options)
    return Storage(backend, found)
