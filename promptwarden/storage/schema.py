"""The tables, once, for both databases: every query in `store` is built from these.

A new database is made from these objects (`metadata.create_all`); migrations
(`migrations/vN.py`) bring an older one to the same tables, which a test checks. Three
column types hide what the two databases store differently: timestamps (ISO 8601 text on
SQLite, which sorts as text; TIMESTAMPTZ on PostgreSQL), JSON (text vs JSONB) and prompt
text (PostgreSQL refuses NUL).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Dialect,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.types import TypeEngine

from promptwarden.storage import models as m


class UtcTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out; naive ones are refused."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        if dialect.name == "postgresql":
            return value
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class Json(TypeDecorator[Any]):
    """A JSON document: text on SQLite, JSONB on PostgreSQL (NUL escapes dropped)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value  # JSONB encodes with the engine's json_serializer
        return dump_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class CleanText(TypeDecorator[str]):
    """Text as written by members: PostgreSQL text cannot hold NUL, so it is dropped there."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and dialect.name == "postgresql":
            return value.replace("\x00", "")
        return value


class Flag(TypeDecorator[bool]):
    """A boolean: SQLite has none, so there it is an INTEGER held to 0 and 1."""

    impl = Boolean(create_constraint=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(Boolean())

    def process_result_value(self, value: Any, dialect: Dialect) -> bool | None:
        return None if value is None else bool(value)


def dump_json(value: Any) -> str:
    """JSON text both databases accept (JSONB refuses the escaped NUL)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True).replace("\\u0000", "")


# SQLite's 64-bit integer is INTEGER (so INTEGER PRIMARY KEY is the row id itself).
BIG = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", BIG, Identity(), primary_key=True)


def _big(name: str, *, nullable: bool = False, key: bool = False) -> Column[int]:
    """A Discord id (or count): given, never generated, so no key of these autoincrements."""
    return Column(name, BIG, nullable=nullable, primary_key=key, autoincrement=False)


def _incident_id(*, nullable: bool = False, ondelete: str = "CASCADE") -> Column[int]:
    """A reference to an incident (copy.py orders tables by these)."""
    return Column(
        "incident_id", BIG, ForeignKey("incidents.id", ondelete=ondelete), nullable=nullable
    )


def _one_of(column: str, values: Collection[str]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})")


def _table(name: str, *items: Any) -> Table:
    """A table; on SQLite, ids are never reused (AUTOINCREMENT), as on PostgreSQL."""
    autoincrement = any(isinstance(c, Column) and c.name == "id" for c in items)
    return Table(name, metadata, *items, sqlite_autoincrement=autoincrement)


metadata = MetaData()

guild_settings = _table(
    "guild_settings",
    _big("guild_id", key=True),
    _big("modlog_channel_id", nullable=True),
    Column("screening_rules", Json),
    Column("updated_at", UtcTime, nullable=False),
    Column("enforcement", Json),
    Column("privacy", Json),
)
# The per-guild JSON settings columns; only these names reach SQL.
SETTING_COLUMNS = ("screening_rules", "enforcement", "privacy")

watched_channels = _table(
    "watched_channels",
    _big("guild_id", key=True),
    _big("channel_id", key=True),
    Column("kind", Text, nullable=False),
    _one_of("kind", m.WATCH_KINDS),
)

generator_bots = _table("generator_bots", _big("guild_id", key=True), _big("bot_id", key=True))

incidents = _table(
    "incidents",
    _id(),
    _big("guild_id"),
    _big("channel_id"),
    _big("message_id", nullable=True),
    _big("user_id"),
    Column("prompt_excerpt", CleanText, nullable=False),
    Column("categories", Json, nullable=False),
    Column("severity", Text, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("matches", Json, nullable=False),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("created_at", UtcTime, nullable=False),
    Column("job_key", Text),
    _big("modlog_channel_id", nullable=True),
    _big("modlog_message_id", nullable=True),
    Column("source", Text, nullable=False, server_default="screening"),
    _one_of("status", m.INCIDENT_STATUSES),
    Index("incidents_guild_created", "guild_id", "created_at"),
    Index("incidents_guild_user", "guild_id", "user_id"),
    # One incident per message and per generation job, whichever process sees it.
    Index("incidents_guild_message", "guild_id", "message_id", unique=True),
    Index("incidents_guild_job", "guild_id", "job_key", unique=True),
    Index("incidents_user", "user_id"),
)

meta = _table("meta", Column("key", Text, primary_key=True), Column("value", Text, nullable=False))

strikes = _table(
    "strikes",
    _id(),
    _big("guild_id"),
    _big("user_id"),
    _incident_id(nullable=True, ondelete="SET NULL"),
    Column("points", Integer, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("revoked_at", UtcTime),
    Column("points_before", Integer, nullable=False, server_default="0"),
    Column("points_after", Integer, nullable=False, server_default="0"),
    CheckConstraint("points > 0"),
    Index("strikes_guild_user", "guild_id", "user_id", "created_at"),
    Index("strikes_guild_incident", "guild_id", "incident_id", unique=True),
    Index("strikes_user", "user_id"),
)

incident_actions = _table(
    "incident_actions",
    _id(),
    _big("guild_id"),
    _incident_id(),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("at", UtcTime, nullable=False),
    _one_of("outcome", m.ACTION_OUTCOMES),
    Index("incident_actions_incident", "guild_id", "incident_id"),
)

modlog_presses = _table(
    "modlog_presses",
    _id(),
    _big("guild_id"),
    _incident_id(),
    _big("moderator_id"),
    Column("action", Text, nullable=False),
    Column("at", UtcTime, nullable=False),
    Index("modlog_presses_incident", "guild_id", "incident_id"),
)

catchup_cursors = _table(
    "catchup_cursors",
    _big("guild_id", key=True),
    _big("channel_id", key=True),
    _big("last_message_id"),
)

member_preferences = _table(
    "member_preferences",
    _big("user_id", key=True),
    Column("reminders_enabled", Flag, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
)

reminders_sent = _table(
    "reminders_sent",
    _big("guild_id", key=True),
    _big("user_id", key=True),
    Column("kind", Text, primary_key=True),
    Column("sent_at", UtcTime, nullable=False),
    Index("reminders_sent_user", "user_id"),
)

appeals = _table(
    "appeals",
    _id(),
    _big("guild_id"),
    _incident_id(),
    _big("user_id"),
    Column("reason", CleanText, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    _big("moderator_id", nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Column("decided_at", UtcTime),
    _big("modlog_channel_id", nullable=True),
    _big("modlog_message_id", nullable=True),
    CheckConstraint(f"length(reason) <= {m.APPEAL_REASON_LIMIT}"),
    _one_of("status", m.APPEAL_STATUSES),
    # At most one open appeal per incident.
    Index(
        "appeals_one_open",
        "guild_id",
        "incident_id",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
    Index("appeals_incident", "guild_id", "incident_id"),
    Index("appeals_user", "user_id"),
)

dm_budget = _table(
    "dm_budget",
    _big("guild_id", key=True),
    Column("window_start", UtcTime, nullable=False),
    Column("count", Integer, nullable=False),
)
