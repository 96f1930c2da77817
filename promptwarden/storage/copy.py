"""Copy a SQLite database into PostgreSQL: the move from one machine to a cluster.

Both sides are first brought to the same schema version by the one migration history, so
the tables and columns match by name. Every
table is staged with COPY into a temporary table and upserted by primary key, all in one
transaction: a failure leaves PostgreSQL as it was, and a second run finds every row
unchanged. Values are converted by the PostgreSQL column's type, so tables added by later
migrations need no code here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from promptwarden.storage import open_storage
from promptwarden.storage.backends import StorageError, redact_url

BATCH = 5000
_Conn = asyncpg.Connection | PoolConnectionProxy


@dataclass(frozen=True, slots=True)
class TableCopy:
    table: str
    source_rows: int
    inserted: int
    updated: int
    verified: int  # source rows found in PostgreSQL, by primary key, after the copy
    target_rows: int  # all rows of the table in PostgreSQL afterwards

    @property
    def unchanged(self) -> int:
        return self.source_rows - self.inserted - self.updated

    @property
    def ok(self) -> bool:
        return self.verified == self.source_rows


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    type: str  # PostgreSQL's data_type, e.g. 'bigint', 'jsonb', 'timestamp with time zone'
    identity: bool


async def copy_sqlite_to_postgres(
    source: Path,
    url: str,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[TableCopy]:
    """Copy every table; raises StorageError (nothing written) if any row cannot be placed.

    A PostgreSQL row with the same key but other content is never silently replaced (it
    may be a live bot's): the copy stops, unless `overwrite` says SQLite is the truth.
    """
    if not source.is_file():
        raise StorageError(
            f"no SQLite database at {source}: give the bot's database with --from "
            "(DATABASE_PATH, by default data/promptwarden.db)"
        )
    sqlite_side = await open_storage(source)
    try:
        source_version = sqlite_side.version_at_open
        version = await sqlite_side.schema_version()
    finally:
        await sqlite_side.close()
    if source_version < version:
        progress(f"upgraded {source} from schema {source_version} to {version} first")
    target = await open_storage(url)
    try:
        target_version = await target.schema_version()
        if target_version != version:  # both open at their latest: same code, same number
            raise StorageError(
                f"schema mismatch: SQLite is at {version}, PostgreSQL at {target_version}"
            )
        progress(
            f"copying {source} (SQLite, schema {version}) into {redact_url(url)} in one transaction"
        )
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reader:
            # COPY is asyncpg's own: a plain connection beside the store's pool.
            conn = await asyncpg.connect(url)
            try:
                async with conn.transaction():
                    return await _copy_all(reader, conn, overwrite, progress)
            except asyncpg.PostgresError as error:
                raise StorageError(
                    f"copy into {redact_url(url)} failed and was rolled back, nothing "
                    f"changed there: {error}"
                ) from error
            finally:
                await conn.close()
    finally:
        await target.close()


async def _copy_all(
    reader: sqlite3.Connection,
    conn: _Conn,
    overwrite: bool,
    progress: Callable[[str], None],
) -> list[TableCopy]:
    source_tables = [
        r[0]
        for r in reader.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    order = await _dependency_order(conn, source_tables)
    results = []
    for table in order:
        result = await _copy_table(reader, conn, table, overwrite)
        progress(
            f"  {table:<18} {result.source_rows:>8} rows: {result.inserted} new, "
            f"{result.updated} updated, {result.unchanged} unchanged; "
            f"verified {result.verified}/{result.source_rows}"
        )
        if not result.ok:
            raise StorageError(
                f"table {table}: only {result.verified} of {result.source_rows} rows found in "
                "PostgreSQL after copying; rolled back"
            )
        results.append(result)
    return results


async def _dependency_order(conn: _Conn, tables: Sequence[str]) -> list[str]:
    """Referenced tables first, so foreign keys hold at every insert."""
    known = {
        r[0]
        for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE'"
        )
    }
    missing = sorted(set(tables) - known)
    if missing:
        raise StorageError(
            f"PostgreSQL has no table {', '.join(missing)}: the SQLite file holds tables this "
            "PromptWarden does not know; nothing was copied"
        )
    edges = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent "
        "FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"
    )
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for edge in edges:
        if (
            edge["child"] in parents
            and edge["parent"] in parents
            and edge["child"] != edge["parent"]
        ):
            parents[edge["child"]].add(edge["parent"])
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, deps in parents.items() if not deps - set(ordered))
        if not ready:
            raise StorageError(f"circular foreign keys among {', '.join(sorted(parents))}")
        for table in ready:
            ordered.append(table)
            del parents[table]
    return ordered


async def _copy_table(
    reader: sqlite3.Connection, conn: _Conn, table: str, overwrite: bool
) -> TableCopy:
    columns = [
        _Column(r["column_name"], r["data_type"], r["is_identity"] == "YES")
        for r in await conn.fetch(
            "SELECT column_name, data_type, is_identity FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            table,
        )
    ]
    names = [c.name for c in columns]
    source_names = [r[1] for r in reader.execute(f'PRAGMA table_info("{table}")')]
    if sorted(source_names) != sorted(names):
        raise StorageError(
            f"table {table} has columns {', '.join(source_names)} in SQLite but "
            f"{', '.join(names)} in PostgreSQL; nothing was copied"
        )
    keys = await _primary_key(conn, table)
    stage = f"pw_stage_{table}"
    await conn.execute(
        f'CREATE TEMP TABLE "{stage}" (LIKE "{table}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    quoted = ", ".join(f'"{n}"' for n in names)
    cursor = reader.execute(f'SELECT {quoted} FROM "{table}"')
    converters = [_converter(c) for c in columns]
    source_rows = 0
    while batch := cursor.fetchmany(BATCH):
        records = [
            tuple(convert(value) for convert, value in zip(converters, row, strict=True))
            for row in batch
        ]
        await conn.copy_records_to_table(stage, records=records, columns=names)
        source_rows += len(records)

    key_list = ", ".join(f'"{k}"' for k in keys)
    others = [n for n in names if n not in keys]
    on_conflict = "DO NOTHING"
    if others:
        mine = ", ".join(f't."{n}"' for n in others)
        theirs = ", ".join(f's."{n}"' for n in others)
        join = " AND ".join(f's."{k}" = t."{k}"' for k in keys)
        key_row = ", ".join(f's."{k}"' for k in keys)
        differing = await conn.fetchrow(
            f"SELECT count(*) AS n, min(({key_row})::text) AS first "
            f'FROM "{stage}" s JOIN "{table}" t ON {join} '
            f"WHERE ({mine}) IS DISTINCT FROM ({theirs})"
        )
        if differing is not None and differing["n"] and not overwrite:
            raise StorageError(
                f"table {table}: {differing['n']} row(s) already in PostgreSQL under the same "
                f"key hold other data (first: {', '.join(keys)} = {differing['first']}); "
                "nothing was copied. If PostgreSQL holds an older copy of this same database, "
                "run again with --overwrite; otherwise copy into an empty database"
            )
        assignments = ", ".join(f'"{n}" = excluded."{n}"' for n in others)
        incoming = ", ".join(f'excluded."{n}"' for n in others)
        distinct = f"({mine}) IS DISTINCT FROM ({incoming})"
        on_conflict = f"DO UPDATE SET {assignments} WHERE {distinct}"
    identity = [c.name for c in columns if c.identity]
    overriding = "OVERRIDING SYSTEM VALUE " if identity else ""
    # xmax = 0 marks a freshly inserted row; an updated one carries this transaction's id.
    changes = await conn.fetch(
        f'INSERT INTO "{table}" AS t ({quoted}) {overriding}SELECT {quoted} FROM "{stage}" '
        f"ON CONFLICT ({key_list}) {on_conflict} RETURNING (t.xmax = 0) AS inserted"
    )
    inserted = sum(1 for r in changes if r["inserted"])
    for name in identity:
        # Rows copied with their ids: move the sequence past them, or the next insert clashes.
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{name}'), "
            f'GREATEST((SELECT MAX("{name}") FROM "{table}"), 1))'
        )
    join = " AND ".join(f's."{k}" = t."{k}"' for k in keys)
    verified = await conn.fetchval(
        f'SELECT count(*) FROM "{stage}" s WHERE EXISTS (SELECT 1 FROM "{table}" t WHERE {join})'
    )
    target_rows = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
    return TableCopy(
        table=table,
        source_rows=source_rows,
        inserted=inserted,
        updated=len(changes) - inserted,
        verified=int(verified),
        target_rows=int(target_rows),
    )


async def _primary_key(conn: _Conn, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum",
        f'"{table}"',
    )
    if not rows:
        raise StorageError(f"table {table} has no primary key in PostgreSQL; cannot upsert it")
    return [r[0] for r in rows]


def _converter(column: _Column) -> Callable[[Any], Any]:
    """SQLite's stored form to what asyncpg's binary COPY expects for the PostgreSQL type."""
    kind = column.type
    if kind.startswith("timestamp"):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if kind in ("jsonb", "json"):
        # Re-encode: JSONB refuses the escaped NUL that SQLite's TEXT kept.
        return lambda v: None if v is None else _json_text(v)
    if kind == "text":
        return lambda v: None if v is None else str(v).replace("\x00", "")
    if kind in ("bigint", "integer", "smallint"):
        return lambda v: None if v is None else int(v)
    if kind in ("double precision", "real", "numeric"):
        return lambda v: None if v is None else float(v)
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    return lambda v: v


def _json_text(value: str) -> str:
    return json.dumps(json.loads(value), ensure_ascii=False).replace("\\u0000", "")


def total_rows(results: Iterable[TableCopy]) -> int:
    return sum(r.source_rows for r in results)
