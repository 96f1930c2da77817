"""What truly differs between SQLite and PostgreSQL, and nothing else.

Each backend owns its engine and answers a handful of questions for `store`: how a write
transaction starts (SQLite takes the file's write lock at once, BEGIN IMMEDIATE), how one
member's strikes are serialised (PostgreSQL: an advisory lock), how a JSON array is
searched, how settings news travels between processes (PostgreSQL LISTEN/NOTIFY), and where
the schema version is kept.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import sqlite3
import stat
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import asyncpg
from sqlalchemy import ColumnElement, Dialect, Table, bindparam, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from promptwarden.storage import schema
from promptwarden.storage.migrations import LATEST_VERSION, step

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# SQLAlchemy logs every statement at INFO, a root logger's default level: never wanted (it
# floods the log, and statements are about members' prompts) unless set on purpose.
if logging.getLogger("sqlalchemy").level == logging.NOTSET:
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)

SETTINGS_CHANNEL = "promptwarden_settings"
BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT = 10.0
LISTEN_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)
MIGRATION_LOCK = 0x50574D49  # "PWMI": every process migrating one database takes it
STRIKE_LOCK_SEED = 0x5057534B  # "PWSK": seeds the hash of (guild, member) a strike locks
SQLITE_FULL = 13


class StorageError(Exception):
    """The database cannot be used as it is; the message says what to do, in one line."""


class Backend(ABC):
    """One database; `store.Storage` asks it only what the two databases do differently."""

    engine: AsyncEngine
    shown: str  # the database as messages name it (no password)
    setting: str  # the setting that points at it, for messages
    version_sql: str  # reads the schema version
    set_version_sql: str  # writes it, the version formatted in
    on_remote_change: Callable[[int | None], Coroutine[Any, Any, None]]
    closed = False

    def _engine(self) -> AsyncEngine:
        if self.closed:
            raise StorageError("the database is closed")
        return self.engine

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """INSERT with this database's ON CONFLICT clauses (the same API on both)."""

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed when the block ends without an error."""
        with _plain_value_errors():
            async with self._engine().begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with _plain_value_errors():
            async with self._engine().connect() as conn:
                yield conn

    async def transaction(
        self, body: Callable[[Any], Coroutine[Any, Any, _T]], *, write: bool = True
    ) -> _T:
        """`body(conn)`, in a transaction when `write` (else a plain read): the form for a
        block of statements that awaits nothing else, which SQLite runs in one go."""
        async with self.write() if write else self.read() as conn:
            return await body(conn)

    async def lock_member(self, conn: AsyncConnection, guild_id: int, user_id: int) -> None:
        """Serialise one member's strikes until commit (SQLite: the write lock does)."""
        del conn, guild_id, user_id

    @abstractmethod
    def has_category(self, category: str) -> ColumnElement[bool]: ...

    async def notify(self, conn: AsyncConnection, guild_id: int) -> None:
        """Tell other processes, at commit, that the guild's settings changed."""
        del conn, guild_id

    async def listen(self) -> None:
        """Start hearing other processes' settings changes (nothing to hear on SQLite)."""
        return

    async def read_version(self, conn: Any) -> int:
        return int((await conn.exec_driver_sql(self.version_sql)).scalar_one())

    async def _lock_versions(self, conn: AsyncConnection) -> None:
        """Make the version readable and take the migration lock (SQLite: BEGIN IMMEDIATE)."""
        del conn

    @abstractmethod
    def _cannot_open(self, error: BaseException) -> str:
        """Why the database could not be opened, and what to do, in one line."""

    async def migrate(self) -> int:
        """Refuse a newer schema, then create the tables (a new database) or apply the
        missing steps, in one transaction under the migration lock: processes starting
        together take turns, and a failure leaves the database as it was. Returns the
        version found."""
        try:
            async with self.engine.begin() as conn:
                await self._lock_versions(conn)
                found = await self.read_version(conn)
                if found > LATEST_VERSION:
                    raise StorageError(
                        f"this database was written by a newer PromptWarden (schema {found}); "
                        f"this version knows up to {LATEST_VERSION}; upgrade PromptWarden or "
                        f"point {self.setting} elsewhere"
                    )
                if found == 0:  # a new database: the latest tables at once
                    try:
                        await conn.run_sync(schema.metadata.create_all, checkfirst=False)
                    except DBAPIError as error:
                        raise StorageError(
                            f"could not create the tables of schema {LATEST_VERSION} in "
                            f"{self.shown}: {_root(error)}; the database was left unchanged"
                        ) from error
                else:  # an older database: the steps it is missing
                    await self._upgrade(conn, found)
                if found < LATEST_VERSION:
                    await conn.exec_driver_sql(self.set_version_sql.format(LATEST_VERSION))
        except (DBAPIError, OSError, TimeoutError) as error:
            raise StorageError(self._cannot_open(error)) from error
        return found

    async def _upgrade(self, conn: AsyncConnection, found: int) -> None:
        for version in range(found + 1, LATEST_VERSION + 1):
            try:
                await conn.run_sync(step(version))
            except DBAPIError as error:
                raise StorageError(
                    f"could not upgrade {self.shown} from schema {version - 1} to "
                    f"{version}: {_root(error)}; the database was left unchanged"
                ) from error
            log.info("database %s migrated to schema %d", self.shown, version)

    async def close(self) -> None:
        self.closed = True
        await self.engine.dispose()


@contextlib.contextmanager
def _plain_value_errors() -> Iterator[None]:
    """A value a column refuses (a naive timestamp) is the caller's ValueError, unwrapped."""
    try:
        yield
    except StatementError as error:
        if isinstance(error.orig, ValueError):
            raise error.orig from None
        raise


class SQLiteBackend(Backend):
    """Migrations go through SQLAlchemy's engine; every query after them runs on one raw
    aiosqlite connection (`SQLiteConnection`): one thread round trip per statement, where
    SQLAlchemy's adapter needs four, and on a busy machine each round trip is a wake-up."""

    setting = "DATABASE_PATH"
    version_sql = "PRAGMA user_version"
    set_version_sql = "PRAGMA user_version = {}"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shown = str(path)
        self.engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            pool_size=1,
            max_overflow=0,
            hide_parameters=True,  # errors are logged; parameters hold prompts
        )
        # Callers take turns on the one connection, as SQLite serves one writer at a time.
        self._turn = asyncio.Lock()
        self._conn: SQLiteConnection | None = None
        sync = self.engine.sync_engine
        event.listen(sync, "connect", _sqlite_connect)
        event.listen(sync, "begin", _sqlite_begin)

    def insert(self, table: Table) -> sqlite.Insert:
        return sqlite.insert(table)

    def _connection(self) -> SQLiteConnection:
        if self.closed or self._conn is None:
            raise StorageError("the database is closed")
        return self._conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        async with self._turn:
            conn = self._connection()
            await conn.run("BEGIN IMMEDIATE")
            try:
                yield conn
                await conn.run("COMMIT")
            except BaseException:
                if conn.raw.in_transaction:  # SQLite rolls back a full disk itself
                    await conn.run("ROLLBACK")
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        async with self._turn:
            yield self._connection()

    async def transaction(
        self, body: Callable[[Any], Coroutine[Any, Any, _T]], *, write: bool = True
    ) -> _T:
        async with self._turn:
            return await self._connection().transaction(body, write)

    def has_category(self, category: str) -> ColumnElement[bool]:
        return text(
            "EXISTS (SELECT 1 FROM json_each(incidents.categories) WHERE value = :category)"
        ).bindparams(category=category)  # type: ignore[return-value]

    def _cannot_open(self, error: BaseException) -> str:
        return (
            f"cannot open {self.path} ({_root(error)}): it is not a PromptWarden database, or "
            "another process holds its lock; point DATABASE_PATH at the bot's database"
        )

    async def migrate(self) -> int:
        _create_private_file(self.path)
        found = await super().migrate()
        await self.engine.dispose()  # its connection is not needed after migrating
        raw = await aiosqlite.connect(self.path, isolation_level=None)
        await raw.executescript(_PRAGMAS)
        self._conn = SQLiteConnection(raw, self.engine.dialect)
        return found

    async def close(self) -> None:
        self.closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.raw.close()
        await self.engine.dispose()


class _Plan(NamedTuple):
    """A statement compiled once: its SQL, which parameters go where, how rows come back."""

    compiled: Any  # SQLAlchemy's SQLCompiler, whose parameter helpers are not typed public
    sql: str
    names: Sequence[str]
    binds: Mapping[str, Callable[[Any], Any]]
    row: Callable[..., Any] | None  # None: the statement returns no rows
    results: tuple[Callable[[Any], Any] | None, ...]
    expanding: bool  # IN lists: the SQL depends on how many values each holds


class Result:
    """The part of SQLAlchemy's Result that `store` uses, over rows already fetched."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def all(self) -> list[Any]:
        return self.rows

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        (row,) = self.rows
        return row[0]


class SQLiteConnection:
    """Runs SQLAlchemy statements on a raw aiosqlite connection, each compiled once per
    shape (SQLAlchemy's own cache key), with the columns' own conversions both ways.

    Everything runs in aiosqlite's thread: compiling, binding, the statement, reading its
    rows and closing its cursor. A sqlite3 cursor left to be collected in the event loop's
    thread resets its statement there, and SQLite's cache may have handed that statement
    to the worker for the next identical one (SQLITE_MISUSE, seen under load)."""

    def __init__(self, raw: aiosqlite.Connection, dialect: Dialect) -> None:
        self.raw = raw
        self._dialect = dialect
        self._plans: dict[Any, _Plan] = {}
        self._here = _InThread(self)

    async def execute(
        self, statement: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Result:
        """Run `statement`; a list of parameter sets runs it once per set (executemany)."""
        return await self._in_thread(self.execute_here, statement, params)

    async def run(self, sql: str) -> None:
        """A plain SQL statement that returns no rows (BEGIN, COMMIT, ROLLBACK)."""
        await self._in_thread(_plain_sql, self.raw._conn, sql)

    async def exec_driver_sql(self, sql: str) -> Result:
        rows = list(await self.raw.execute_fetchall(sql))
        return Result(rows, len(rows))

    async def transaction(self, body: Callable[[Any], Coroutine[Any, Any, _T]], write: bool) -> _T:
        """`body(conn)` run whole in aiosqlite's thread, in one transaction when `write`:
        one hand-over between threads however many statements it runs, where each would
        cost one (on a busy event loop, each waits its turn there)."""
        return await self._in_thread(self._transaction_here, body, write)

    def _in_thread(self, fn: Callable[..., _T], *args: Any) -> Coroutine[Any, Any, _T]:
        return self.raw._execute(fn, *args)  # type: ignore[no-untyped-call]

    def _transaction_here(self, body: Callable[[Any], Coroutine[Any, Any, _T]], write: bool) -> _T:
        conn = self.raw._conn
        if write:
            _plain_sql(conn, "BEGIN IMMEDIATE")
        try:
            steps = body(self._here)
            try:
                steps.send(None)
            except StopIteration as done:
                result: _T = done.value
            else:
                steps.close()
                raise RuntimeError("a database transaction awaited something besides SQL")
            if write:
                _plain_sql(conn, "COMMIT")
        except BaseException:
            if write and conn.in_transaction:  # SQLite rolls back a full disk itself
                _plain_sql(conn, "ROLLBACK")
            raise
        return result

    def execute_here(
        self, statement: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
    ) -> Result:
        """`execute`, in aiosqlite's thread."""
        many, first = (params, params[0]) if isinstance(params, Sequence) else (None, params)
        key = statement._generate_cache_key()
        columns = tuple(sorted(first)) if first else ()
        plan = self._plans.get((key.key, columns)) if key is not None else None
        if plan is None:
            plan = self._plan(statement, key, columns)
            if key is not None:
                self._plans[(key.key, columns)] = plan
        extracted = key.bindparams if key else None
        conn = self.raw._conn
        try:
            if many is not None:
                rows = [self._args(plan, p, extracted) for p in many]
                cursor = conn.executemany(plan.sql, rows)
            else:
                if plan.expanding:  # IN (...) of a list: the SQL depends on its length
                    values = plan.compiled.construct_params(
                        first, escape_names=False, extracted_parameters=extracted
                    )
                    expanded = plan.compiled._process_parameters_for_postcompile(values)
                    sql = expanded.statement
                    binds = {**plan.binds, **expanded.processors}
                    args = _in_order(expanded.parameters, expanded.positiontup, binds)
                else:
                    sql, args = plan.sql, self._args(plan, first, extracted)
                cursor = conn.execute(sql, args)
            try:
                if many is not None or plan.row is None:
                    return Result([], cursor.rowcount)
                found = cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorcode", None) == SQLITE_FULL:
                log.error("the database disk is full (%s); this write was not saved", error)
            raise
        convert = plan.results
        made = [
            plan.row(*[v if f is None else f(v) for f, v in zip(convert, r, strict=True)])
            for r in found
        ]
        return Result(made, len(made))

    @staticmethod
    def _args(plan: _Plan, params: Mapping[str, Any] | None, extracted: Any) -> list[Any]:
        """One parameter set in the plan's order, each value converted by its column."""
        values = plan.compiled.construct_params(
            params, escape_names=False, extracted_parameters=extracted
        )
        return _in_order(values, plan.names, plan.binds)

    def _plan(self, statement: Any, key: Any, columns: tuple[str, ...]) -> _Plan:
        dialect = self._dialect
        compiled: Any = dialect.statement_compiler(
            dialect, statement, cache_key=key, column_keys=list(columns)
        )
        entries = compiled._result_columns
        names = [e[0] for e in entries]
        row = collections.namedtuple("Row", names, rename=True) if entries else None
        results = tuple(e[3]._cached_result_processor(self._dialect, None) for e in entries)
        return _Plan(
            compiled,
            compiled.string,
            compiled.positiontup or (),
            compiled._bind_processors,
            row,
            results,
            bool(compiled.literal_execute_params or compiled.post_compile_params),
        )


class _InThread:
    """The connection a transaction's body sees in aiosqlite's thread: its statements run
    at once, so the body's awaits never suspend."""

    __slots__ = ("_conn",)

    def __init__(self, conn: SQLiteConnection) -> None:
        self._conn = conn

    async def execute(
        self, statement: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Result:
        return self._conn.execute_here(statement, params)


def _in_order(
    values: Mapping[str, Any], names: Sequence[str], binds: Mapping[str, Callable[[Any], Any]]
) -> list[Any]:
    """Parameter values in the statement's positional order, each converted by its column."""
    return [binds[n](values[n]) if n in binds else values[n] for n in names]


def _plain_sql(conn: sqlite3.Connection, sql: str) -> None:
    conn.execute(sql).close()


# Per connection: SQLite forgets these when a connection closes (but keeps WAL mode, set
# here once the schema is known to be ours).
_PRAGMAS = f"""
    PRAGMA journal_mode = WAL;
    PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
    PRAGMA synchronous = NORMAL;
    PRAGMA foreign_keys = ON;
"""


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    del record
    # SQLAlchemy issues BEGIN itself (see _sqlite_begin); the driver must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Migrating takes SQLite's write lock at once, so a second process starting on the
    same file waits (busy_timeout) instead of interleaving."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


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


class PostgresBackend(Backend):
    setting = "DATABASE_URL"
    version_sql = "SELECT version FROM schema_version"
    set_version_sql = "UPDATE schema_version SET version = {}"

    def __init__(self, url: str, *, max_size: int = 10) -> None:
        self.url = url
        self.shown = redact_url(url)
        self.engine = create_async_engine(
            "postgresql+asyncpg://" + url.split("://", 1)[1],
            pool_size=max_size,
            max_overflow=0,
            connect_args={"timeout": CONNECT_TIMEOUT},
            json_serializer=schema.dump_json,
            json_deserializer=json.loads,
            hide_parameters=True,
        )
        # Marks this object's own notifications, so it ignores their echo.
        self._token = uuid.uuid4().hex
        self._listen_conn: asyncpg.Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._listen_lock = asyncio.Lock()
        self._closing = False
        self._pending: set[asyncio.Task[None]] = set()

    def insert(self, table: Table) -> postgresql.Insert:
        return postgresql.insert(table)

    async def lock_member(self, conn: AsyncConnection, guild_id: int, user_id: int) -> None:
        await conn.execute(
            _STRIKE_LOCK, {"key": f"strike:{guild_id}:{user_id}", "seed": STRIKE_LOCK_SEED}
        )

    def has_category(self, category: str) -> ColumnElement[bool]:
        # JSONB: the array holds that string.
        return schema.incidents.c.categories.op("?")(bindparam("category", category))

    async def notify(self, conn: AsyncConnection, guild_id: int) -> None:
        await conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": SETTINGS_CHANNEL, "payload": f"{guild_id}:{self._token}"},
        )

    async def _lock_versions(self, conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        await conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton), "
            "version INTEGER NOT NULL)"
        )
        await conn.exec_driver_sql(
            "INSERT INTO schema_version (singleton, version) VALUES (TRUE, 0) "
            "ON CONFLICT DO NOTHING"
        )

    def _cannot_open(self, error: BaseException) -> str:
        root = _root(error)
        detail = str(root).strip() or type(root).__name__
        if isinstance(root, asyncpg.InvalidCatalogNameError):
            hint = "create the database first (createdb) or fix its name in DATABASE_URL"
        elif isinstance(
            root, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
        ):
            hint = "check the user name and password in DATABASE_URL"
        elif isinstance(root, asyncpg.PostgresError):  # connected, then a statement failed
            return (
                f"could not prepare the database at {self.shown}: {detail}; it was left unchanged"
            )
        elif isinstance(root, OSError | TimeoutError):
            hint = "is the server running and reachable from this machine?"
        else:
            hint = "check DATABASE_URL"
        return f"cannot connect to PostgreSQL at {self.shown}: {detail}; {hint}"

    # -- settings news from other processes

    async def listen(self) -> None:
        async with self._listen_lock:
            if self._listen_conn is not None or self._listen_task is not None:
                return
            try:
                await self._listen()  # the first subscription fails loudly
            except (asyncpg.PostgresError, OSError, TimeoutError) as error:
                raise StorageError(
                    f"cannot listen for settings changes on {self.shown}: {error}; other "
                    "processes' changes would not reach this one"
                ) from error

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        conn.add_termination_listener(self._on_listen_lost)
        await conn.add_listener(SETTINGS_CHANNEL, self._on_notification)
        self._listen_conn = conn

    def _on_notification(self, conn: object, pid: int, channel: str, payload: object) -> None:
        del conn, pid, channel
        guild, _, token = str(payload).partition(":")
        if token == self._token:
            return  # this object's own change, already announced at commit
        try:
            guild_id: int | None = int(guild)
        except ValueError:
            guild_id = None
        self._spawn(self.on_remote_change(guild_id))

    def _on_listen_lost(self, conn: object) -> None:
        del conn
        self._listen_conn = None
        if not self._closing and self._listen_task is None:
            log.warning("lost the settings-change channel; reconnecting")
            self._listen_task = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        """Listen again; changes may have been missed meanwhile, so everyone forgets all."""
        attempt = 0
        try:
            while not self._closing:
                try:
                    async with self._listen_lock:
                        await self._listen()
                except (asyncpg.PostgresError, OSError, TimeoutError) as error:
                    delay = LISTEN_RETRY_SECONDS[min(attempt, len(LISTEN_RETRY_SECONDS) - 1)]
                    attempt += 1
                    log.warning("settings-change channel: %s; retrying in %.0f s", error, delay)
                    await asyncio.sleep(delay)
                    continue
                await self.on_remote_change(None)
                return
        finally:
            self._listen_task = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        self._closing = True
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._pending):
            pending.cancel()
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None:
            conn.remove_termination_listener(self._on_listen_lost)
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await conn.close(timeout=5)
        self.closed = True
        await self.engine.dispose()


_STRIKE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, :seed))")


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def _root(error: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrappers."""
    seen: BaseException = error
    while True:
        inner = getattr(seen, "orig", None) or seen.__cause__
        if inner is None or inner is seen:
            return seen
        seen = inner


async def open_backend(target: Path | str, **options: Any) -> tuple[Backend, int]:
    """The backend for `target`, migrated; returns it with the version found."""
    backend: Backend
    if isinstance(target, str) and is_postgres_url(target):
        backend = PostgresBackend(target, **options)
    else:
        backend = SQLiteBackend(sqlite_path(target))
    try:
        found = await backend.migrate()
    except BaseException:
        await backend.close()
        raise
    return backend, found


SQLITE_PREFIX = "sqlite:///"


def sqlite_path(target: Path | str) -> Path:
    """`sqlite:///data/pw.db` is relative, `sqlite:////var/pw.db` absolute (as in SQLAlchemy)."""
    if isinstance(target, str) and target.startswith(SQLITE_PREFIX):
        return Path(target[len(SQLITE_PREFIX) :])
    return Path(target)
