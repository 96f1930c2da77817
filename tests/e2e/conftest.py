"""End-to-end fixtures: the emulator, a guild set up in the bot's database, the bot process,
and `backend` for the tests whose behaviour rests on storage (SQLite or PostgreSQL).

Every test here is marked `e2e` (select with `-m e2e`, skip with `-m "not e2e"`); they run
in the default suite. Counts scale with PROMPTWARDEN_E2E_SCALE (default 1).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.emulator import GOOD_TOKEN, BotProcess, Emulator
from tests.helpers import POSTGRES_URL, Backend, EmulatedServer, configure, needs_postgres

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def server(emulator: Emulator, tmp_path: Path) -> EmulatedServer:
    members = [emulator.add_member(f"member{i}") for i in range(8)]
    moderator = emulator.world.users[emulator.world.guild.owner_id]
    made = EmulatedServer(
        emulator=emulator,
        database=tmp_path / "promptwarden.db",
        watched=emulator.add_channel("imagine"),
        modlog=emulator.add_channel("mod-log"),
        other=emulator.add_channel("general"),
        members=members,
        moderator=moderator,
    )
    configure(made)
    return made


@pytest.fixture
def start_bot(server: EmulatedServer, tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
    """Start `python bot.py` against the emulator and wait until it is ready."""
    started: list[BotProcess] = []

    def start(*, wait_ready: bool = True, **env: str) -> BotProcess:
        process = BotProcess(
            {
                **server.emulator.env(),
                "DISCORD_TOKEN": GOOD_TOKEN,
                "DATABASE_PATH": str(server.database),
                **env,
            },
            tmp_path / "logs",
            name=f"bot{len(started)}",
        )
        started.append(process)
        if wait_ready:
            process.wait_for_log("ready as")
        return process

    yield start
    for process in started:
        process.stop()


def _postgres_admin(sql: str) -> None:
    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
def backend(request: pytest.FixtureRequest, server: EmulatedServer) -> Iterator[Backend]:
    """The bot's database, once the server's SQLite file and once a fresh PostgreSQL one
    configured the same way; start the bot with `start_bot(**backend.env)`."""
    if request.param == "sqlite":
        yield Backend(server, None)  # the server fixture configured its SQLite file
        return
    name = f"pw_e2e_{uuid.uuid4().hex[:12]}"
    _postgres_admin(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    url = f"{base}/{name}"
    try:
        configure(server, database=url)
        yield Backend(server, url)
    finally:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
