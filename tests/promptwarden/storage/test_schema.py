"""A new database is made from `schema` at once; one made by schema 1, 2 or 3 is upgraded
step by step. Both must end as the same tables, column for column, with the same keys,
indexes, defaults and checks, on each database: otherwise a bot's behaviour would depend
on how old its database is."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from promptwarden.storage import LATEST_VERSION, open_storage
from tests.helpers import fresh_postgres_database, needs_postgres
from tests.promptwarden.storage.old_schemas import script

OLD_VERSIONS = (1, 2, 3)


def describe(conn: Connection) -> dict[str, Any]:
    """Every table as the database itself reports it (SQLAlchemy's reflection)."""
    found = inspect(conn)
    sqlite = conn.dialect.name == "sqlite"
    tables: dict[str, Any] = {}
    for name in sorted(set(found.get_table_names()) - {"schema_version"}):
        key = found.get_pk_constraint(name)["constrained_columns"]
        tables[name] = {
            "columns": [
                (
                    c["name"],
                    str(c["type"]),
                    # Schema 1-3 left SQLite keys nullable (a quirk SQLite keeps for old
                    # files); a key is never written NULL, and an integer key cannot be.
                    c["nullable"] and not (sqlite and c["name"] in key),
                    c["default"],
                    bool(c.get("identity")),
                )
                for c in found.get_columns(name)
            ],
            "key": key,
            "references": references(conn, name)
            if sqlite
            else sorted(
                (f["constrained_columns"], f["referred_table"], f["options"].get("ondelete"))
                for f in found.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (
                    i["name"],
                    i["column_names"],
                    i["unique"],
                    {k: str(v) for k, v in i.get("dialect_options", {}).items()},
                )
                for i in found.get_indexes(name)
            ),
            "checks": sorted(
                " ".join(c["sqltext"].split()) for c in found.get_check_constraints(name)
            ),
        }
    return tables


def references(conn: Connection, table: str) -> list[Any]:
    """SQLite's own account of a table's foreign keys (reflection misses ON DELETE when
    the DDL has a space before the column list)."""
    rows = conn.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').all()
    return sorted(([r[3]], r[2], r[6] if r[6] != "NO ACTION" else None) for r in rows)


async def reflect(url: str) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(describe)
    finally:
        await engine.dispose()


def sqlite_ids_never_reused(path: Path) -> list[str]:
    """Tables whose ids SQLite never hands out twice (AUTOINCREMENT), as PostgreSQL's."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        return sorted(name for name, sql in rows if "AUTOINCREMENT" in sql)


@pytest.mark.parametrize("version", OLD_VERSIONS)
async def test_sqlite_upgraded_from_an_old_schema_equals_a_new_database(
    tmp_path: Path, version: int
) -> None:
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        for step in range(1, version + 1):
            conn.executescript(script(step, "sqlite"))
        conn.execute(f"PRAGMA user_version = {version}")
    for path in (new, old):
        async with await open_storage(path) as storage:
            assert await storage.schema_version() == LATEST_VERSION
    made, upgraded = (
        await reflect(f"sqlite+aiosqlite:///{new}"),
        await reflect(f"sqlite+aiosqlite:///{old}"),
    )
    assert made == upgraded
    assert sqlite_ids_never_reused(new) == sqlite_ids_never_reused(old) != []


@asynccontextmanager
async def old_postgres_database(version: int) -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "CREATE TABLE schema_version (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE "
                "CHECK (singleton), version INTEGER NOT NULL)"
            )
            for step in range(1, version + 1):
                await conn.execute(script(step, "postgresql"))
            await conn.execute("INSERT INTO schema_version VALUES (TRUE, $1)", version)
        finally:
            await conn.close()
        yield url


@needs_postgres
@pytest.mark.parametrize("version", OLD_VERSIONS)
async def test_postgres_upgraded_from_an_old_schema_equals_a_new_database(version: int) -> None:
    async with fresh_postgres_database() as new, old_postgres_database(version) as old:
        for url in (new, old):
            async with await open_storage(url) as storage:
                assert await storage.schema_version() == LATEST_VERSION
        as_async = "postgresql+asyncpg://"
        made = await reflect(as_async + new.split("://", 1)[1])
        upgraded = await reflect(as_async + old.split("://", 1)[1])
    assert made == upgraded
