"""How the learned tier does on ../shared/eval, next to better-profanity, and how fast it scores.

    python benchmarks/model_report.py [--eval-dir DIR] [--model data/model.json] [--sets-only]

Out-of-fold figures are recomputed with the training script's procedure (needs scikit-learn),
because the shipped model has seen every prompt here and would flatter itself; its in-sample
figures are printed too, labelled as such. Timings compare against better-profanity in the same
run, so the machine's speed cancels out.

The hand-written sets in benchmarks/sets (captions with people: benign; red-team prompts:
violations) are scored with the shipped model alone and with the whole screener (rules and
model), split by `dev` (trained on) and `heldout` (never trained on: the figures that count).
Explanations are checked for faithfulness there and on the evaluation data: the share of
reviews whose named words, taken out of the prompt, bring the score under the threshold.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from better_profanity import profanity

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from promptwarden.screening.decision import Verdict  # noqa: E402
from promptwarden.screening.engine import Screener  # noqa: E402
from promptwarden.screening.model import DEFAULT_PATH, LinearModel, model_text  # noqa: E402
from promptwarden.screening.rules import GuildRules  # noqa: E402
from promptwarden.screening.tokens import prompt_words  # noqa: E402
from scripts.train_model import (  # noqa: E402
    eval_dir,
    features,
    figures,
    load,
    out_of_fold,
    read_tsv,
    report,
    threshold_for,
)

SETS = ROOT / "benchmarks" / "sets"


def without_named(model: LinearModel, text: str) -> float | None:
    """The probability once the words a review names are taken out; None if not flagged."""
    words = prompt_words(model_text(text))
    probability, named = model.score(words)
    if not model.flags(probability) or not named:
        return None  # nothing to name: the engine does not review it
    gone = {k for c in named for k in range(c.first, c.last + 1)}
    return model.probability([w for k, w in enumerate(words) if k not in gone])


def faithfulness(model: LinearModel, texts: Sequence[str]) -> tuple[int, int]:
    """(reviews whose named words carry the verdict, reviews) over `texts`."""
    after = [without_named(model, t) for t in texts]
    scored = [p for p in after if p is not None]
    return sum(not model.flags(p) for p in scored), len(scored)


def sets_report(model: LinearModel) -> None:
    """Share flagged per set and split, by the model alone and by the whole screener."""
    screener = Screener(GuildRules(), model=model)
    print("hand-written sets (flagged = review, warn or block):")
    print(f"  {'set':<14} {'split':<8} {'label':<10} {'n':>4} {'model':>7} {'screener':>9}")
    for path in sorted(SETS.glob("*.tsv")):
        rows = read_tsv(path)
        for split in ("dev", "heldout"):
            for label in ("violation", "benign"):
                texts = [r["text"] for r in rows if r["split"] == split and r["label"] == label]
                if not texts:
                    continue
                by_model = sum(
                    model.flags(model.probability(prompt_words(model_text(t)))) for t in texts
                )
                by_all = sum(screener.screen(t).verdict is not Verdict.ALLOW for t in texts)
                print(
                    f"  {path.stem:<14} {split:<8} {label:<10} {len(texts):>4} "
                    f"{100 * by_model / len(texts):6.1f}% {100 * by_all / len(texts):8.1f}%"
                )
        held, n = faithfulness(model, [r["text"] for r in rows])
        if n:
            print(f"  {path.stem}: named words carry {held}/{n} model reviews")


def per_call_us(fn: Callable[[str], object], texts: Sequence[str], repeat: int = 3) -> float:
    """Best of `repeat` passes over `texts`, in microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / len(texts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", help="evaluation data (default ../shared/eval)")
    parser.add_argument("--model", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--sets-only", action="store_true", help="only the hand-written sets (no scikit-learn)"
    )
    args = parser.parse_args(argv)

    model = LinearModel.load(args.model)
    sets_report(model)
    if args.sets_only:
        return
    corpus = load(eval_dir(args.eval_dir))
    docs = [features(t) for t in corpus.texts]
    everything = np.arange(len(docs))
    src = corpus.source

    oof = out_of_fold(corpus, docs, everything)
    cut = threshold_for(oof[src == 1])
    report("learned tier, out of fold (recomputed):", figures(corpus, everything, oof, cut))
    held, n = faithfulness(model, corpus.texts)
    print(f"explanations: named words carry {held}/{n} model reviews on the evaluation data")

    def model_hits(t: str) -> bool:
        return model.flags(model.score(prompt_words(model_text(t)))[0])

    shipped = np.array([model_hits(t) for t in corpus.texts], dtype=np.float64)
    report(
        f"shipped model at p >= {model.threshold}, IN-SAMPLE (optimistic):",
        figures(corpus, everything, shipped, 0.5),
    )

    profane = np.array([profanity.contains_profanity(t) for t in corpus.texts], dtype=np.float64)
    report("better-profanity contains_profanity:", figures(corpus, everything, profane, 0.5))
    either = np.maximum(profane, (oof >= cut).astype(np.float64))
    report(
        "learned tier (out of fold) OR better-profanity:", figures(corpus, everything, either, 0.5)
    )

    mj = [t for t, s in zip(corpus.texts, src, strict=True) if s == 1]
    long_prompt = (" ".join(mj))[:4000]
    model_us = per_call_us(lambda t: model.probability(prompt_words(t)), mj)
    mj_words = {t: prompt_words(t) for t in mj}
    score_us = per_call_us(lambda t: model.probability(mj_words[t]), mj)
    explain_us = per_call_us(lambda t: model.score(mj_words[t]), mj)
    bp_us = per_call_us(profanity.contains_profanity, mj[:300], repeat=1)
    long_us = per_call_us(lambda t: model.probability(prompt_words(t)), [long_prompt] * 200)
    long_words = prompt_words(long_prompt)
    long_score_only = per_call_us(lambda _: model.probability(long_words), [long_prompt] * 200)
    print("speed (tokenize + score, per prompt; tokenizing is the shared prompt_words):")
    print(f"  learned tier on Midjourney prompts  {model_us:8.1f} us")
    print(f"    of which scoring (no tokenizing)  {score_us:8.1f} us")
    print(f"  explaining (reviews only)           {explain_us:8.1f} us")
    print(
        f"  better-profanity contains_profanity {bp_us:8.1f} us  ({bp_us / model_us:.0f}x slower)"
    )
    print(f"  learned tier, 4,000 characters      {long_us:8.1f} us")
    print(f"    of which scoring (lookups)        {long_score_only:8.1f} us")


if __name__ == "__main__":
    main()
