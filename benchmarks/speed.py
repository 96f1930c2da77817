"""Speed of the full screen against better_profanity.contains_profanity, in the same run.

Run from the project root: `python -m benchmarks.speed [--sample N]`. Reports the median time
per prompt over real prompts from ../shared/eval (PROMPTWARDEN_EVAL_DIR overrides), the ratio
(target >= 600x), and the time to screen 4,000 characters of adversarial text mixing zalgo,
homoglyphs and zero-width characters (target < 1 ms).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from better_profanity import profanity

from benchmarks.eval_report import read_lines
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules


def per_call(fn: Callable[[str], object], texts: list[str], repeat: int = 1) -> list[float]:
    """Seconds per call for each text (best of `repeat`, to shed scheduler noise)."""
    out = []
    clock = time.perf_counter
    for text in texts:
        best = float("inf")
        for _ in range(repeat):
            t0 = clock()
            fn(text)
            best = min(best, clock() - t0)
        out.append(best)
    return out


def adversarial(length: int, seed: int = 1) -> str:
    """Zalgo, Cyrillic/Greek lookalikes and zero-width characters over real-looking words."""
    rng = random.Random(seed)
    homo = {"a": "а", "e": "е", "o": "ο", "p": "р", "c": "с", "x": "х", "i": "і", "k": "κ"}  # noqa: RUF001
    words = [
        "a",
        "naked",
        "warrior",
        "in",
        "the",
        "burning",
        "city",
        "covered",
        "with",
        "shiny",
        "armour",
        "at",
        "night",
    ]
    out: list[str] = []
    size = 0
    while size < length:
        for ch in rng.choice(words):
            piece = homo.get(ch, ch) if rng.random() < 0.5 else ch
            piece += "".join(chr(rng.randrange(0x300, 0x36F)) for _ in range(rng.randrange(0, 3)))
            if rng.random() < 0.3:
                piece += rng.choice("\u200b\u200c\u200d\u2060\ufeff")
            out.append(piece)
            size += len(piece)
        out.append(" ")
        size += 1
    return "".join(out)[:length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=int, default=400, help="prompts per corpus")
    args = parser.parse_args()

    rng = random.Random(3)
    prompts: list[str] = []
    for name in ("midjourney_prompts.txt", "diffusiondb_prompts.txt"):
        lines = read_lines(name)
        prompts += rng.sample(lines, min(args.sample, len(lines)))

    screener = Screener(GuildRules())
    profanity.load_censor_words()
    for p in prompts[:20]:  # warm caches on both sides
        screener.screen(p)
        profanity.contains_profanity(p)

    ours = statistics.median(per_call(screener.screen, prompts, repeat=3))
    theirs = statistics.median(per_call(profanity.contains_profanity, prompts))
    tier = "rules+model" if screener.model is not None else "rules only (no model file)"
    print(f"{len(prompts)} real prompts, median per prompt ({tier}):")
    print(f"  PromptWarden screen()             {ours * 1e6:10.1f} us")
    print(f"  better_profanity.contains_profanity {theirs * 1e6:8.1f} us")
    print(f"  ratio                              {theirs / ours:8.0f}x   (target >= 600x)")

    texts = [adversarial(4000, seed) for seed in range(20)]
    times = per_call(screener.screen, texts, repeat=5)
    print("4,000 characters of zalgo + homoglyph + zero-width text:")
    print(f"  median {statistics.median(times) * 1e3:.3f} ms, worst {max(times) * 1e3:.3f} ms"
          "   (target < 1 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
