"""Shared fixtures: the real bot, built on a temporary database, for SimCord.

`simcord_env` (from the simcord pytest plugin) starts whatever `simcord_bot` returns
against a simulated Discord; `make_bot` builds more bots on the same database, e.g. for
`simcord_env.restart_bot(make_bot())`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from discordbot import PromptWardenBot
from promptwarden.config import Settings
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules

# Shaped like a real token so settings validation would accept it; SimCord never checks it.
FAKE_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.fake-token-for-tests-only_0123456789"


@pytest.fixture
def bot_settings(tmp_path: Path) -> Settings:
    return Settings(discord_token=FAKE_TOKEN, database_path=tmp_path / "promptwarden.db")


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


@pytest.fixture(scope="session")
def screener() -> Screener:
    """One rules-only screener for the screening tests: building the automaton takes time."""
    return Screener(GuildRules(learned=False))
