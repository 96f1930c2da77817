"""Shared fixtures: one rules-only screener, since building the automaton takes a few ms."""

from __future__ import annotations

import pytest

from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules


@pytest.fixture(scope="session")
def screener() -> Screener:
    return Screener(GuildRules(learned=False))
