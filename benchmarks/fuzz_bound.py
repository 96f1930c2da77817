"""How long screening takes on hostile 4,000-character messages (the target: under 5 ms).

    python benchmarks/fuzz_bound.py            # 200 inputs per family
    python benchmarks/fuzz_bound.py --per-family 50

Families: random Unicode from every category, zalgo, direction overrides, NUL runs,
{a,b} expansions, negative weights, `--no` chains, repeated guideline terms, homoglyphs,
runs of whitespace after digits and words (the shape that makes a regex backtrack), and real
prompts from ../shared/eval glued to 4,000 characters (when that folder is there).
Each input is screened as the bot screens it by default (rules and learned tier) both as a
generator bot's message and as a member's, by the rules tier alone, and, as the baseline in
the same run, by better-profanity's `contains_profanity`. The target holds when the default
screener's p99 is under 5 ms in every family, for either author.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from better_profanity import profanity  # noqa: E402

from promptwarden.screening.engine import Screener  # noqa: E402
from promptwarden.screening.rules import GuildRules  # noqa: E402
from tests.helpers import DISCORD_LIMIT, FULLWIDTH_NUDE, ZALGO, every_category  # noqa: E402

TARGET_MS = 5.0


def _fill(rng: random.Random, pieces: list[str]) -> str:
    out: list[str] = []
    size = 0
    while size < DISCORD_LIMIT:
        piece = rng.choice(pieces)
        out.append(piece)
        size += len(piece)
    return "".join(out)[:DISCORD_LIMIT]


def families(rng: random.Random) -> dict[str, Callable[[], str]]:
    categories = every_category()
    words = ["nude", "blood", "gore", "child", "naked", "porn", "castle", "sunset", "--no"]
    eval_dir = Path(os.environ.get("PROMPTWARDEN_EVAL_DIR", ROOT.parent / "shared" / "eval"))
    real_file = eval_dir / "midjourney_prompts.txt"
    real = real_file.read_text(errors="replace").splitlines() if real_file.exists() else []
    made: dict[str, Callable[[], str]] = {
        "unicode": lambda: "".join(rng.choice(categories) for _ in range(DISCORD_LIMIT)),
        "zalgo": lambda: _fill(rng, [ZALGO, "nude", " ", ZALGO * 3]),
        "rtl": lambda: _fill(rng, ["\u202enude\u202c ", "\u2067blood\u2069 ", "sunset "]),
        "nul": lambda: _fill(rng, ["\x00", "n\x00u\x00d\x00e ", "castle "]),
        "braces": lambda: _fill(rng, ["{a,b,c,d} ", "{nude,castle} ", "{{x,y},z} "]),
        "weights": lambda: _fill(rng, ["a::-", "nude::-0.5 ", "castle::2 ", "::"]),
        "no-chains": lambda: _fill(rng, ["--no ", "clothes ", "--no shirt ", "\u2014no "]),
        "terms": lambda: _fill(rng, [w + " " for w in words]),
        "homoglyphs": lambda: _fill(rng, [FULLWIDTH_NUDE + " ", "n.u.d.e ", "nuuuude ", "ñüdé "]),
        "whitespace": lambda: _fill(
            rng,
            [
                "bikini 1" + " " * rng.randrange(50, 4000),
                "12" + rng.choice([" ", "\t", "\n", "\u3000"]) * rng.randrange(10, 2000),
                "nude - " + " -" * rng.randrange(10, 500),
                " " * rng.randrange(100, 4000) + "year old",
            ],
        ),
        "mj-job": lambda: "**" + _fill(rng, [w + ", " for w in words])[:3950] + "** - <@1> (fast)",
    }
    if real:
        made["real-prompts"] = lambda: _fill(rng, [p + " " for p in real])
    return made


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def quantile(values: list[float], x: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(x * (len(ordered) - 1)))]


def stats(values: list[float]) -> str:
    return (
        f"p50 {quantile(values, 0.5):6.2f}  p99 {quantile(values, 0.99):6.2f}  "
        f"max {max(values):6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-family", type=int, default=200)
    parser.add_argument(
        "--baseline-per-family",
        type=int,
        default=3,
        help="inputs per family also given to better-profanity (it takes seconds each)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    screener = Screener(GuildRules())  # the bot's default: rules and learned tier
    rules_only = Screener(GuildRules(learned=False), model=None)
    for s in (screener, rules_only):
        s.screen("warm up the automaton and the caches")
    profanity.load_censor_words()
    all_screen: list[float] = []
    all_member: list[float] = []
    all_rules: list[float] = []
    all_base: list[float] = []
    worst: tuple[float, str] = (0.0, "")
    print(
        f"{'family':<13} {'PromptWarden (rules + learned tier)':<38} {'as member':<12} "
        f"{'rules only':<12} better-profanity (baseline)"
    )
    for name, make in families(rng).items():
        inputs = [make() for _ in range(args.per_family)]
        screen = [timed(lambda t=t: screener.screen(t, author_is_bot=True)) for t in inputs]
        member = [timed(lambda t=t: screener.screen(t)) for t in inputs]
        rules = [timed(lambda t=t: rules_only.screen(t, author_is_bot=True)) for t in inputs]
        sample = inputs[: args.baseline_per_family]
        base = [timed(lambda t=t: profanity.contains_profanity(t)) for t in sample]
        all_screen += screen
        all_member += member
        all_rules += rules
        all_base += base
        worst = max(worst, (quantile(screen, 0.99), name), (quantile(member, 0.99), name))
        print(
            f"{name:<13} {stats(screen):<38} p99 {quantile(member, 0.99):6.2f}  "
            f"p50 {quantile(rules, 0.5):6.2f}  p50 {quantile(base, 0.5):8.2f} ms"
        )
    print(
        f"{'all':<13} {stats(all_screen):<38} p99 {quantile(all_member, 0.99):6.2f}  "
        f"p50 {quantile(all_rules, 0.5):6.2f}  p50 {quantile(all_base, 0.5):8.2f} ms"
    )
    ratio = quantile(all_base, 0.5) / quantile(all_screen, 0.5)
    print(f"median ratio: better-profanity takes {ratio:,.0f}x as long")
    verdict = "within" if worst[0] < TARGET_MS else "OVER"
    limit = f"{DISCORD_LIMIT:,} characters"
    print(
        f"worst family p99 {worst[0]:.2f} ms ({worst[1]}): "
        f"{verdict} the {TARGET_MS:g} ms target for {limit}"
    )


if __name__ == "__main__":
    main()
