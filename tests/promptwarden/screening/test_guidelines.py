"""Guideline data files: the shipped ones load, and broken ones say where they are broken."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from promptwarden.screening.decision import Severity
from promptwarden.screening.guidelines import (
    CATEGORIES,
    GuidelineError,
    load,
    parse_tsv,
    profanity_words,
)
from tests.emulator import ROOT


def test_shipped_files_cover_every_category() -> None:
    g = load()
    categories = {t.category for t in g.terms}
    assert set(CATEGORIES) - {"personal_info"} <= categories  # PII is found by patterns
    assert all(t.term.strip() for t in g.terms)


def test_profanity_comes_from_better_profanity_with_our_severities() -> None:
    g = load()
    words = profanity_words()
    assert len(words) > 800
    by_term = {t.term: t for t in g.terms}
    # art words are allow-listed, merely crude words are low
    assert by_term["pollock"].category == "allow"
    assert by_term["damn"].severity is Severity.LOW
    assert by_term["fuck"].severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("word\tsexual\thigh\n", "x.tsv:1: expected a tab-separated header"),
        ("term\tcategory\tseverity\tnote\ncat\tpets\thigh\n", "x.tsv:2: unknown category 'pets'"),
        ("term\tcategory\tseverity\nfox\tviolence\tbad\n", "x.tsv:2: unknown severity 'bad'"),
        ("term\tcategory\tseverity\nfox violence high\n", "x.tsv:2: expected 3 or 4"),
        ("term\tcategory\tseverity\n*\tviolence\thigh\n", "x.tsv:2: empty term"),
        ("# only a comment\n", "x.tsv: no header line"),
    ],
)
def test_bad_files(text: str, message: str) -> None:
    with pytest.raises(GuidelineError) as err:
        parse_tsv(text, "x.tsv")
    assert message in str(err.value)


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(GuidelineError, match="no guideline files"):
        load(tmp_path)


# A fresh interpreter: the shipped guidelines are not loaded yet when the guilds ask.
MANY_GUILDS_AT_ONCE = """
import threading
from promptwarden.screening.engine import ScreenerCache
from promptwarden.screening.rules import GuildRules

cache, guilds = ScreenerCache(model=False), 8
start, built = threading.Barrier(guilds), {}

def first_message(guild_id):
    start.wait()
    built[guild_id] = cache.get(guild_id, GuildRules.from_dict({"learned": False}))

threads = [threading.Thread(target=first_message, args=(g,)) for g in range(guilds)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len({id(s.guidelines) for s in built.values()}), len({id(s.matcher) for s in built.values()}))
"""


def test_guilds_whose_first_prompts_come_together_share_one_automaton() -> None:
    """After a restart every guild's first prompt builds its screener at once, each in a
    worker thread: they must share the one shipped guideline set and its automaton, not
    build a copy each (the time and memory of one automaton per guild)."""
    run = subprocess.run(
        [sys.executable, "-c", MANY_GUILDS_AT_ONCE],
        cwd=ROOT,  # this checkout's code, first on the path
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run.stdout.split() == ["1", "1"], run.stdout
