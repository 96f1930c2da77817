"""End-to-end fixtures: the emulator, a guild set up in the bot's database, the bot process.

Every test here is marked `e2e` (select with `-m e2e`, skip with `-m "not e2e"`); they run
in the default suite. Counts scale with PROMPTWARDEN_E2E_SCALE (default 1).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from promptwarden.storage import open_storage
from tests.emulator import GOOD_TOKEN, BotProcess, Channel, Emulator, User

HERE = Path(__file__).resolve().parent
# The most DMs a guild may send a minute (the default is 10): warnings beyond it are
# dropped by design, and CI-sized bursts stay within it.
DM_BUDGET = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def scaled(count: int) -> int:
    """CI counts by default; PROMPTWARDEN_E2E_SCALE=20 runs 20 times as many."""
    return max(1, round(count * float(os.environ.get("PROMPTWARDEN_E2E_SCALE", "1"))))


@dataclass
class Server:
    """The emulated guild as the bot's database describes it."""

    emulator: Emulator
    database: Path
    watched: Channel
    modlog: Channel
    other: Channel  # not watched
    members: list[User]
    moderator: User
    rules: dict[str, Any] = field(default_factory=lambda: {"learned": False})

    @property
    def guild_id(self) -> int:
        return self.emulator.world.guild.id


def configure(server: Server, *, generator_bots: tuple[int, ...] = ()) -> None:
    """Write the guild's settings through the project's own storage before the bot starts."""

    async def write() -> None:
        storage = await open_storage(server.database)
        async with storage:
            await storage.add_watched_channel(server.guild_id, server.watched.id)
            await storage.set_modlog_channel(server.guild_id, server.modlog.id)
            await storage.set_screening_rules(server.guild_id, server.rules)
            await storage.set_privacy_config(server.guild_id, {"dm_per_minute": DM_BUDGET})
            for bot_id in generator_bots:
                await storage.add_generator_bot(server.guild_id, bot_id)

    asyncio.run(write())


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def server(emulator: Emulator, tmp_path: Path) -> Server:
    members = [emulator.add_member(f"member{i}") for i in range(8)]
    moderator = emulator.world.users[emulator.world.guild.owner_id]
    made = Server(
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
def start_bot(server: Server, tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
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
