"""Shared fixtures: the real bot, built on a temporary database, for SimCord; storage on
both backends.

`simcord_env` starts whatever `simcord_bot` returns against a simulated Discord; `make_bot`
builds more bots on the same database, e.g. for `simcord_env.restart_bot(make_bot())`.
`storage` yields a migrated Storage per backend: SQLite on a tmp file, and PostgreSQL on a
fresh database when PROMPTWARDEN_TEST_POSTGRES_URL names a server (CI always sets it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import simcord

from discordbot import PromptWardenBot
from promptwarden.config import Settings
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules
from promptwarden.storage import Storage, open_storage
from tests.helpers import (
    FAKE_TOKEN,
    POSTGRES_URL,
    POSTGRES_URL_VARIABLE,
    fresh_postgres_database,
    needs_postgres,
)


@pytest.fixture
def bot_backend(request: pytest.FixtureRequest) -> str:
    """The bot's database in SimCord tests; a module runs on both with
    `pytestmark = BOTH_BOT_BACKENDS`."""
    return str(getattr(request, "param", "sqlite"))


@pytest_asyncio.fixture
async def bot_settings(bot_backend: str, tmp_path: Path) -> AsyncIterator[Settings]:
    settings = Settings(discord_token=FAKE_TOKEN, database_path=tmp_path / "promptwarden.db")
    if bot_backend == "sqlite":
        yield settings
        return
    async with fresh_postgres_database() as url:
        yield replace(settings, database_url=url)


@pytest.fixture
async def make_bot(bot_settings: Settings) -> AsyncIterator[Callable[..., PromptWardenBot]]:
    """Build bots on the test database; keyword arguments override settings fields."""
    built: list[PromptWardenBot] = []

    def factory(**overrides: Any) -> PromptWardenBot:
        built.append(PromptWardenBot(replace(bot_settings, **overrides)))
        return built[-1]

    yield factory
    # SimCord detaches bots without closing them; close their databases here.
    for bot in built:
        if bot._storage is not None:
            await bot._storage.close()


@pytest.fixture
def simcord_bot(make_bot: Callable[..., PromptWardenBot]) -> PromptWardenBot:
    return make_bot()


@pytest_asyncio.fixture
async def simcord_env(
    simcord_bot: PromptWardenBot, request: pytest.FixtureRequest
) -> AsyncIterator[simcord.Env]:
    """SimCord's own fixture, with one shard unless the bot or the test asks for more.

    PromptWardenBot is an AutoShardedBot; without SHARD_COUNT the real one asks Discord for
    a count, which a simulated Discord cannot recommend, so tests default to a single shard.
    """
    marker = request.node.get_closest_marker("simcord")
    options = dict(marker.kwargs) if marker else {}
    if simcord_bot.shard_count is None:
        options.setdefault("shard_count", 1)
    env = simcord.Env(simcord_bot, **options)
    await env.start()
    try:
        yield env
    finally:
        await env.shutdown()
        if env.check_errors:
            env._raise_errors_since(env._errors_acknowledged)


# -- storage on both backends


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    if not POSTGRES_URL:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set (scripts/ci_postgres.sh starts a server)")
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """Where a test's database lives, as `open_storage` takes it (path or URL)."""
    if backend == "sqlite":
        yield str(tmp_path / "promptwarden.db")
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest_asyncio.fixture
async def storage(database: str) -> AsyncIterator[Storage]:
    async with await open_storage(database) as opened:
        yield opened


@pytest.fixture(scope="session")
def screener() -> Screener:
    """One rules-only screener for the screening tests: building the automaton takes time."""
    return Screener(GuildRules(learned=False))
