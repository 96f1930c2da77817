"""Screening on the hand-written sets in benchmarks/sets/, file by file and split by split.

    python -m benchmarks.sets_report                # rules and the shipped learned tier
    python -m benchmarks.sets_report --rules-only
    python -m benchmarks.sets_report --show 10      # the first misses and false alarms

Every `benchmarks/sets/*.tsv` has the header `split<TAB>label<TAB>text`: split `dev` (what
the word lists may be tuned on) or `heldout` (kept aside to check them), label `violation`
or `benign`. Reported per file and split: the share of violations flagged (review, warn or
block), of benign prompts flagged, and of benign prompts warned or blocked (what a member
would be told about).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass, field
from pathlib import Path

from promptwarden.screening.decision import Decision, Verdict
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules

SETS = Path(__file__).resolve().parent / "sets"
SPLITS = ("dev", "heldout")
LABELS = ("violation", "benign")


@dataclass
class Tally:
    violations: int = 0
    caught: int = 0
    benign: int = 0
    flagged: int = 0
    told: int = 0  # benign prompts warned or blocked
    misses: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)


def read_set(path: Path) -> list[tuple[str, str, str]]:
    """(split, label, text) rows; raises ValueError naming a bad line."""
    rows: list[tuple[str, str, str]] = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != ["split", "label", "text"]:
            raise ValueError(f"{path.name}: header must be split, label, text; got {header}")
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != 3 or row[0] not in SPLITS or row[1] not in LABELS:
                raise ValueError(f"{path.name}:{lineno}: expected dev|heldout, violation|benign")
            rows.append((row[0], row[1], row[2]))
    return rows


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}%" if d else "   n/a"


def tally(screener: Screener, rows: list[tuple[str, str, str]]) -> dict[str, Tally]:
    out = {split: Tally() for split in SPLITS}
    for split, label, text in rows:
        d: Decision = screener.screen(text)
        t = out[split]
        if label == "violation":
            t.violations += 1
            t.caught += d.flagged
            if not d.flagged:
                t.misses.append(text)
        else:
            t.benign += 1
            t.flagged += d.flagged
            t.told += d.verdict in (Verdict.WARN, Verdict.BLOCK)
            if d.flagged:
                why = ", ".join(f"{m.category}:{m.text}" for m in d.matches if m.severity)
                t.alarms.append(f"{d.verdict.value} [{why}] {text}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules-only", action="store_true", help="leave the learned tier out")
    parser.add_argument("--show", type=int, default=0, metavar="N", help="misses and alarms")
    parser.add_argument("--sets", type=Path, default=SETS)
    args = parser.parse_args()
    rules = GuildRules(learned=not args.rules_only)
    screener = Screener(rules, model=None if args.rules_only else True)
    tier = "rules" if screener.model is None else "rules + shipped learned tier"
    print(f"Hand-written sets ({tier}), {args.sets.name}/*.tsv\n")
    print(f"{'file':<18}{'split':<9}{'viol.':>6} {'flagged':>8}  {'benign':>6} {'flagged':>8}"
          f" {'warn/block':>10}")  # fmt: skip
    for path in sorted(args.sets.glob("*.tsv")):
        for split, t in tally(screener, read_set(path)).items():
            if not t.violations and not t.benign:
                continue
            caught, flagged, told = (
                pct(t.caught, t.violations),
                pct(t.flagged, t.benign),
                pct(t.told, t.benign),
            )
            print(f"{path.name:<18}{split:<9}{t.violations:>6} {caught:>8}"
                  f"  {t.benign:>6} {flagged:>8} {told:>10}")  # fmt: skip
            for text in t.misses[: args.show]:
                print(f"    missed: {text}")
            for text in t.alarms[: args.show]:
                print(f"    alarm:  {text}")


if __name__ == "__main__":
    main()
