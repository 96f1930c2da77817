"""The hand-written sets in benchmarks/sets/ parse, and the report's reader refuses bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.sets_report import SETS, read_set, tally
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules


def test_every_set_parses_with_both_splits() -> None:
    files = sorted(SETS.glob("*.tsv"))
    assert {p.name for p in files} >= {
        "languages.tsv",
        "evasion.tsv",
        "synonyms.tsv",
        "context.tsv",
    }
    for path in files:
        rows = read_set(path)
        assert {split for split, _, _ in rows} == {"dev", "heldout"}, path.name


def test_languages_have_eight_violations_and_eight_benign_each() -> None:
    rows = read_set(SETS / "languages.tsv")
    assert sum(label == "violation" for _, label, _ in rows) >= 64
    assert sum(label == "benign" for _, label, _ in rows) >= 64


def test_a_bad_row_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.tsv"
    bad.write_text("split\tlabel\ttext\ntest\tviolation\tnude\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.tsv:2"):
        read_set(bad)
    bad.write_text("label\ttext\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_set(bad)


def test_the_tally_counts_what_a_member_would_be_told(tmp_path: Path) -> None:
    rows = [("dev", "violation", "a nude statue"), ("dev", "benign", "a naked woman")]
    t = tally(Screener(GuildRules(learned=False), model=None), rows)["dev"]
    assert (t.violations, t.caught, t.benign, t.flagged, t.told) == (1, 1, 1, 1, 1)
