"""The tables, once, for both databases: every query in `store` is built from these.

Migrations (`migrations/vN.py`) create and change the real tables; these objects describe
the latest schema so queries can be written once. Three column types hide what the two
databases store differently: timestamps (ISO 8601 text on SQLite, which sorts as text;
TIMESTAMPTZ on PostgreSQL), JSON (text vs JSONB) and prompt text (PostgreSQL refuses NUL).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.types import TypeEngine


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


def dump_json(value: Any) -> str:
    """JSON text both databases accept (JSONB refuses the escaped NUL)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True).replace("\\u0000", "")


def _id() -> Column[int]:
    return Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)


def _big(name: str, *, nullable: bool = False, key: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable, primary_key=key)


def _incident_id(*, nullable: bool = False) -> Column[int]:
    """A reference to an incident (copy.py orders tables by these)."""
    return Column("incident_id", BigInteger, ForeignKey("incidents.id"), nullable=nullable)


metadata = MetaData()

guild_settings = Table(
    "guild_settings",
    metadata,
    _big("guild_id", key=True),
    _big("modlog_channel_id", nullable=True),
    Column("screening_rules", Json),
    Column("enforcement", Json),
    Column("privacy", Json),
    Column("updated_at", UtcTime, nullable=False),
)
# The per-guild JSON settings columns; only these names reach SQL.
SETTING_COLUMNS = ("screening_rules", "enforcement", "privacy")

watched_channels = Table(
    "watched_channels",
    metadata,
    _big("guild_id", key=True),
    _big("channel_id", key=True),
    Column("kind", Text, nullable=False),
)

generator_bots = Table(
    "generator_bots", metadata, _big("guild_id", key=True), _big("bot_id", key=True)
)

incidents = Table(
    "incidents",
    metadata,
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
    Column("status", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("job_key", Text),
    _big("modlog_channel_id", nullable=True),
    _big("modlog_message_id", nullable=True),
    Column("source", Text, nullable=False, server_default="screening"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

strikes = Table(
    "strikes",
    metadata,
    _id(),
    _big("guild_id"),
    _big("user_id"),
    _incident_id(nullable=True),
    Column("points", Integer, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("revoked_at", UtcTime),
    Column("points_before", Integer, nullable=False, server_default="0"),
    Column("points_after", Integer, nullable=False, server_default="0"),
)

incident_actions = Table(
    "incident_actions",
    metadata,
    _id(),
    _big("guild_id"),
    _incident_id(),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcTime, nullable=False),
)

modlog_presses = Table(
    "modlog_presses",
    metadata,
    _id(),
    _big("guild_id"),
    _incident_id(),
    _big("moderator_id"),
    Column("action", Text, nullable=False),
    Column("at", UtcTime, nullable=False),
)

catchup_cursors = Table(
    "catchup_cursors",
    metadata,
    _big("guild_id", key=True),
    _big("channel_id", key=True),
    _big("last_message_id"),
)

member_preferences = Table(
    "member_preferences",
    metadata,
    _big("user_id", key=True),
    Column("reminders_enabled", Boolean(create_constraint=False), nullable=False),
    Column("updated_at", UtcTime, nullable=False),
)

reminders_sent = Table(
    "reminders_sent",
    metadata,
    _big("guild_id", key=True),
    _big("user_id", key=True),
    Column("kind", Text, primary_key=True),
    Column("sent_at", UtcTime, nullable=False),
)

appeals = Table(
    "appeals",
    metadata,
    _id(),
    _big("guild_id"),
    _incident_id(),
    _big("user_id"),
    Column("reason", CleanText, nullable=False),
    Column("status", Text, nullable=False),
    _big("moderator_id", nullable=True),
    Column("created_at", UtcTime, nullable=False),
    Column("decided_at", UtcTime),
    _big("modlog_channel_id", nullable=True),
    _big("modlog_message_id", nullable=True),
)

dm_budget = Table(
    "dm_budget",
    metadata,
    _big("guild_id", key=True),
    Column("window_start", UtcTime, nullable=False),
    Column("count", Integer, nullable=False),
)
