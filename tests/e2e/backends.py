"""The bot process on SQLite or on a fresh PostgreSQL database, read back either way.

For end-to-end tests whose behaviour rests on storage: the `backend` fixture (import it
into a test module) gives the settings to start the bot with and a read-only query.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import pytest

from promptwarden.storage import open_storage
from tests.conftest import POSTGRES_URL, needs_postgres
from tests.e2e.conftest import DM_BUDGET, Server
from tests.e2e.records import read_db


@dataclass
class Backend:
    server: Server
    url: str | None  # None: the server's SQLite file

    @property
    def env(self) -> dict[str, str]:
        """Settings for `start_bot`: PostgreSQL wins over the SQLite file when set."""
        return {"DATABASE_URL": self.url} if self.url else {}

    def query(self, sql: str) -> list[tuple[object, ...]]:
        if self.url is None:
            return read_db(self.server.database, sql)
        url = self.url

        async def fetch() -> list[tuple[object, ...]]:
            import asyncpg

            conn = await asyncpg.connect(url)
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        return asyncio.run(fetch())

    def execute(self, sql: str) -> None:
        """Change a row under the running bot, as an admin's SQL shell would."""
        if self.url is None:
            with closing(sqlite3.connect(self.server.database, timeout=10)) as conn, conn:
                conn.execute(sql)
            return
        url = self.url

        async def run() -> None:
            import asyncpg

            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())


def _configure_postgres(server: Server, url: str) -> None:
    """What `configure` writes for SQLite, written to the PostgreSQL database."""

    async def write() -> None:
        storage = await open_storage(url)
        async with storage:
            await storage.add_watched_channel(server.guild_id, server.watched.id)
            await storage.set_modlog_channel(server.guild_id, server.modlog.id)
            await storage.set_screening_rules(server.guild_id, server.rules)
            await storage.set_privacy_config(server.guild_id, {"dm_per_minute": DM_BUDGET})

    asyncio.run(write())


def _admin(sql: str) -> None:
    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
def backend(request: pytest.FixtureRequest, server: Server) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend(server, None)  # the server fixture configured its SQLite file
        return
    name = f"pw_e2e_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    url = f"{base}/{name}"
    try:
        _configure_postgres(server, url)
        yield Backend(server, url)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
