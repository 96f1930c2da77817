"""What a guild at the custom-term limit costs in memory (the target: at most 20 MB).

    python -m benchmarks.matcher_memory            # 1,000 terms of up to 60 characters
    python -m benchmarks.matcher_memory --edits 3

A guild's screener is built through `ScreenerCache` as the bot builds it, with 1,000 custom
terms (multi-word phrases near the 60-character limit, the most keys a term can make), then
its terms are replaced `--edits` times, as an admin editing them would. Reported: the growth
of traced Python allocations (tracemalloc, which sees the automaton's C allocations made
through Python's allocator too) and of the process's resident set, against the process with
the shipped guidelines already loaded: the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import tracemalloc

from promptwarden.screening.engine import Screener, ScreenerCache
from promptwarden.screening.rules import MAX_CUSTOM_TERMS, MAX_TERM_LENGTH, CustomTerm, GuildRules

TARGET_MB = 20.0
_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ra", "to", "vi", "de", "po", "qu", "zan", "bel", "x"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randrange(2, 5)))


def _phrase(rng: random.Random) -> str:
    words: list[str] = []
    while len(" ".join(words)) < MAX_TERM_LENGTH - 10:
        words.append(_word(rng))
    return " ".join(words)[:MAX_TERM_LENGTH].strip()


def limit_rules(seed: int) -> GuildRules:
    """A guild at the term limit: half long phrases, half single words."""
    rng = random.Random(seed)
    terms = [
        CustomTerm(_phrase(rng) if k % 2 else _word(rng) + _word(rng))
        for k in range(MAX_CUSTOM_TERMS)
    ]
    return GuildRules(custom_terms=tuple(terms))


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=3, help="replacements of every term")
    parser.add_argument(
        "--rss-only", action="store_true", help="no tracemalloc (its own records inflate RSS)"
    )
    args = parser.parse_args()
    rules = [limit_rules(edit) for edit in range(args.edits + 1)]
    Screener(GuildRules(), model=None).screen("warm the shipped automaton")
    gc.collect()
    if not args.rss_only:
        tracemalloc.start()

    def traced() -> float:
        return tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else 0.0

    base_traced, base_rss = traced(), rss_mb()
    cache = ScreenerCache(model=None)
    grown = 0.0
    for edit, guild_rules in enumerate(rules):
        cache.get(1, guild_rules).screen("a castle at dawn")
        gc.collect()
        grown = traced() - base_traced if not args.rss_only else rss_mb() - base_rss
        label = (
            f"one guild, {MAX_CUSTOM_TERMS:,} custom terms" if not edit else f"after edit {edit}"
        )
        print(
            f"{label}: traced +{traced() - base_traced:.1f} MB, RSS +{rss_mb() - base_rss:.1f} MB"
        )
    what = "RSS" if args.rss_only else "traced"
    verdict = "within" if grown <= TARGET_MB else "OVER"
    print(
        f"{verdict} the {TARGET_MB:g} MB target ({what} growth after the last edit: {grown:.1f} MB)"
    )


if __name__ == "__main__":
    main()
