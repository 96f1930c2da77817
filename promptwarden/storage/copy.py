"""Copy a SQLite database into PostgreSQL: the move from one machine to a cluster.

Both sides are first brought to the same schema version by the one migration history, so
both hold the tables of `schema.metadata`. Every table is staged with COPY into a temporary
table and upserted by primary key, all in one transaction: a failure leaves PostgreSQL as
it was, and a second run finds every row unchanged. Tables, keys, their order and each
value's conversion come from `schema`, so tables added by later migrations need no code
here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import Integer, Table

from promptwarden.storage import open_storage, schema
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

    @property
    def unchanged(self) -> int:
        return self.source_rows - self.inserted - self.updated

    @property
    def ok(self) -> bool:
        return self.verified == self.source_rows


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
    found = {
        r[0]
        for r in reader.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    unknown = sorted(found - set(schema.metadata.tables))
    if unknown:
        raise StorageError(
            f"PostgreSQL has no table {', '.join(unknown)}: the SQLite file holds tables this "
            "PromptWarden does not know; nothing was copied"
        )
    results = []
    # Referenced tables first, so foreign keys hold at every insert.
    for table in schema.metadata.sorted_tables:
        if table.name not in found:
            continue
        result = await _copy_table(reader, conn, table, overwrite)
        progress(
            f"  {table.name:<18} {result.source_rows:>8} rows: {result.inserted} new, "
            f"{result.updated} updated, {result.unchanged} unchanged; "
            f"verified {result.verified}/{result.source_rows}"
        )
        if not result.ok:
            raise StorageError(
                f"table {table.name}: only {result.verified} of {result.source_rows} rows found "
                "in PostgreSQL after copying; rolled back"
            )
        results.append(result)
    return results


async def _copy_table(
    reader: sqlite3.Connection, conn: _Conn, table: Table, overwrite: bool
) -> TableCopy:
    name = table.name
    names = [c.name for c in table.columns]
    source_names = [r[1] for r in reader.execute(f'PRAGMA table_info("{name}")')]
    if sorted(source_names) != sorted(names):
        raise StorageError(
            f"table {name} has columns {', '.join(source_names)} in SQLite but "
            f"{', '.join(names)} in PostgreSQL; nothing was copied"
        )
    keys = [c.name for c in table.primary_key]
    stage = f"pw_stage_{name}"
    await conn.execute(
        f'CREATE TEMP TABLE "{stage}" (LIKE "{name}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    quoted = ", ".join(f'"{n}"' for n in names)
    cursor = reader.execute(f'SELECT {quoted} FROM "{name}"')
    converters = [_converter(c.type) for c in table.columns]
    source_rows = 0
    while batch := cursor.fetchmany(BATCH):
        records = [
            tuple(None if v is None else f(v) for f, v in zip(converters, row, strict=True))
            for row in batch
        ]
        await conn.copy_records_to_table(stage, records=records, columns=names)
        source_rows += len(records)

    key_list = ", ".join(f'"{k}"' for k in keys)
    join = " AND ".join(f's."{k}" = t."{k}"' for k in keys)
    others = [n for n in names if n not in keys]
    on_conflict = "DO NOTHING"
    if others:
        mine = ", ".join(f't."{n}"' for n in others)
        theirs = ", ".join(f's."{n}"' for n in others)
        key_row = ", ".join(f's."{k}"' for k in keys)
        differing = await conn.fetchrow(
            f"SELECT count(*) AS n, min(({key_row})::text) AS first "
            f'FROM "{stage}" s JOIN "{name}" t ON {join} '
            f"WHERE ({mine}) IS DISTINCT FROM ({theirs})"
        )
        if differing is not None and differing["n"] and not overwrite:
            raise StorageError(
                f"table {name}: {differing['n']} row(s) already in PostgreSQL under the same "
                f"key hold other data (first: {', '.join(keys)} = {differing['first']}); "
                "nothing was copied. If PostgreSQL holds an older copy of this same database, "
                "run again with --overwrite; otherwise copy into an empty database"
            )
        assignments = ", ".join(f'"{n}" = excluded."{n}"' for n in others)
        incoming = ", ".join(f'excluded."{n}"' for n in others)
        on_conflict = f"DO UPDATE SET {assignments} WHERE ({mine}) IS DISTINCT FROM ({incoming})"
    identity = "id" in keys  # the generated ids of schema._id()
    overriding = "OVERRIDING SYSTEM VALUE " if identity else ""
    # xmax = 0 marks a freshly inserted row; an updated one carries this transaction's id.
    changes = await conn.fetch(
        f'INSERT INTO "{name}" AS t ({quoted}) {overriding}SELECT {quoted} FROM "{stage}" '
        f"ON CONFLICT ({key_list}) {on_conflict} RETURNING (t.xmax = 0) AS inserted"
    )
    inserted = sum(1 for r in changes if r["inserted"])
    if identity:
        # Rows copied with their ids: move the sequence past them, or the next insert clashes.
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
            f'GREATEST((SELECT MAX(id) FROM "{name}"), 1))'
        )
    verified = await conn.fetchval(
        f'SELECT count(*) FROM "{stage}" s WHERE EXISTS (SELECT 1 FROM "{name}" t WHERE {join})'
    )
    return TableCopy(
        table=name,
        source_rows=source_rows,
        inserted=inserted,
        updated=len(changes) - inserted,
        verified=int(verified),
    )


def _converter(kind: Any) -> Callable[[Any], Any]:
    """SQLite's stored form to what asyncpg's binary COPY expects for the column's type."""
    if isinstance(kind, schema.UtcTime):
        return datetime.fromisoformat
    if isinstance(kind, schema.Json):
        return _json_text  # re-encoded: JSONB refuses the escaped NUL SQLite's TEXT kept
    if isinstance(kind, schema.Flag):
        return bool
    if isinstance(kind, Integer):
        return int
    return lambda v: str(v).replace("\x00", "")


def _json_text(value: str) -> str:
    return json.dumps(json.loads(value), ensure_ascii=False).replace("\\u0000", "")


def total_rows(results: Iterable[TableCopy]) -> int:
    return sum(r.source_rows for r in results)
