"""Train the learned screening tier and write its weights as plain JSON (data/model.json).

    python scripts/train_model.py [--eval-dir DIR] [--out data/model.json]

Trains on the evaluation prompts in ../shared/eval (or PROMPTWARDEN_EVAL_DIR, or --eval-dir),
the hand-written rows in data/training/*.tsv and the `dev` rows of benchmarks/sets/*.tsv (but
not of UNTRAINED_SETS); the `heldout` rows of those sets are never read here
(benchmarks/model_report.py judges on them).
scikit-learn is needed here only; the bot scores with `promptwarden.screening.model.LinearModel`,
which reads the file this script writes. Training is deterministic (fixed seeds and order).

Features: word 1-2-grams, and letter 5-grams of the words run together, which a split
("pu $$ ssy") or glued ("nakedsunited") word shares with the plain one.

Concepts. data/training/concepts.tsv groups words by guideline category ("buxom",
"voluptuous" and "thighs" are `sexual`). Training adds one column per category counting the
distinct words of that category in the prompt, so a word seen in a handful of training
prompts borrows the weight its category earned from all of them. The column is a sum of
word indicators, so its weight folds exactly into each word's own weight on export: the
runtime keeps scoring plain words and never reads the file.

Hand-written rows. The evaluation data alone taught the model that people in a prompt mean
trouble (I2P prompts are full of them, Midjourney prompts are mostly landscapes), so plain
captions with people, art vocabulary and look-alikes are added as negatives with weight
HAND_NEGATIVE_WEIGHT, and nudity synonyms and red-team forms as positives. They are in the
training part of every fold; out-of-fold figures are on the evaluation data only.

Labels. I2P labels describe the images a prompt produced, not the prompt, so every I2P prompt
is a positive weighted by its inappropriate_percentage / 100 (at least WEIGHT_FLOOR: every I2P
prompt was collected as a risky one): the clear cases dominate, and the many borderline ones
still teach the vocabulary. A hard cut at 50% threw away half the positives and measured no
better out of fold. Midjourney and DiffusionDB prompts are negatives, knowing that some of
them are positives in truth. The I2P weights are multiplied by I2P_WEIGHT, chosen out of
fold: with the concept columns, weight 1 lost a point of I2P recall that weight 2 gave back.

Honesty. Figures come from stratified 5-fold out-of-fold scores, grouped so that prompts with the
same words never straddle a fold (the held-out half was split by a hash of the prompt, so
duplicates share a side). The threshold is set on those out-of-fold scores so that about 0.9%
of Midjourney prompts reach it: the product allows 2% flagged in total, rules included. A second
estimate repeats the whole procedure on 80% of the data (split by a hash of the prompt, as the
held-out half was) and reports on the other 20%. The fold split alone moves I2P >= 50 by about
three points (`python -m benchmarks.eval_report --fold-seeds 5`): judge a change on the same
folds and on several seeds.

Measured out of fold without gain (I2P >= 50 / nudity >= 50 at 1.0% of Midjourney flagged,
rules included; this script's features and rows unless said; today 41.7 / 55.6% on seed 0):
- a one-hidden-layer MLP (16 units) on the same features: 36.6 / 44.4%; blended with the
  linear model: 38.5-40.3%.
- a second stage on a grey band below the cut (1-3 log-odds wide: 3-25% of Midjourney
  prompts): logistic regression over the first score, word-class indicators (the guideline
  categories and the concept lists), their pairs, rule-tier soft hits and prompt length,
  trained on the first stage's out-of-fold scores: 38.5-39.8%.
- letter 3-5-grams of whole words (char_wb) alone 31.8%, blended or only in a grey band
  39.2-41.2%.
- per-category thresholds (a prompt's category from its listed words) chosen to spend the
  budget where it buys most: 46.8% when chosen on the very scores they are judged on, but
  picked on four fifths and judged on the rest 41.6% with 1.2% of Midjourney flagged.
- concept lists for shocking, distress, illegal and harassment words: 40.6 / 51.4%.
- hand-written rows weighted 0.5, 1 or 2 instead of 4: 41.2-42.2%; nudity share as a
  second positive weight: within a prompt of today.
- DiffusionDB negatives weighted 0.3: 43.6% but 4.6% of DiffusionDB flagged (3.3%); left
  out: 55.0 / 72.2% with 29.7% of DiffusionDB flagged. I2P prompts are Stable Diffusion
  prompts, and so are DiffusionDB's: without them the model learns the style, not the
  content.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from promptwarden.screening.model import (  # noqa: E402
    LinearModel,
    char_features,
    model_text,
    ngram_features,
)
from promptwarden.screening.tokens import prompt_words  # noqa: E402

MAX_N = 2
CHAR_NGRAMS = (5,)
HAND_NEGATIVE_WEIGHT = 4.0
HAND_POSITIVE_WEIGHT = 1.0
TRAINING_DIR = ROOT / "data" / "training"
SETS_DIR = ROOT / "benchmarks" / "sets"
# Sets that judge the word lists only. kinds.tsv (shocking, hate, self-harm and illegal-activity
# scenes, and their look-alikes) cost the learned tier 1.5 points of I2P >= 50 out of fold when
# its dev rows were trained on: its benign look-alikes ("a horror movie poster", "a sad clown")
# pulled down words that I2P's positives share.
UNTRAINED_SETS = frozenset({"kinds.tsv"})
MIN_DF = 2  # a feature must occur in two training prompts: drops typos and one-off names
C = 1.0
FOLDS = 5
SEED = 0
TARGET_MJ_SHARE = 0.009  # of Midjourney prompts at or above the threshold, out of fold
WEIGHT_DIGITS = 9
WEIGHT_FLOOR = 0.05
# I2P rows count this many times their share: with the concept columns, positives weighted
# up to balance the twice as many evaluation negatives measured best out of fold (see labels)
I2P_WEIGHT = 2.0
PRUNE = 0.01  # weights smaller than this are dropped: a third of the file, no figure moves

CONCEPTS_FILE = TRAINING_DIR / "concepts.tsv"

MJ_FILE = "midjourney_prompts.txt"
DDB_FILE = "diffusiondb_prompts.txt"
I2P_FILE = "i2p.csv"
I2P_COLUMNS = ("prompt", "inappropriate_percentage", "nudity_percentage")


KNOWN_MIN_DF = 3  # a word in this many evaluation prompts is known: no letters read from it
KNOWN: frozenset[str] = frozenset()


def known_words(texts: Sequence[str]) -> frozenset[str]:
    """Words of KNOWN_MIN_DF or more evaluation prompts (labels unused): ordinary words.

    Only the evaluation prompts count, never the hand-written rows, whose split and glued
    forms would otherwise become "known" and stop being read letter by letter.
    """
    df: dict[str, int] = {}
    for t in texts:
        for word in set(prompt_words(model_text(t))):
            df[word] = df.get(word, 0) + 1
    return frozenset(w for w, n in df.items() if n >= KNOWN_MIN_DF)


def features(line: str) -> list[str]:
    words = prompt_words(model_text(line))
    return [f for f, _, _ in ngram_features(words, MAX_N)] + [
        f for f, _, _ in char_features(words, CHAR_NGRAMS, KNOWN)
    ]


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a hand-written TSV file (header first; `label` is violation or benign)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    for n, row in enumerate(rows, start=2):
        if row.get("label") not in ("violation", "benign") or not row.get("text"):
            sys.exit(f"error: {path} line {n}: need a label (violation/benign) and a text")
    return rows


def read_concepts(path: Path = CONCEPTS_FILE) -> dict[str, str]:
    """word -> guideline category from a `term<TAB>category` file (single tokenized words)."""
    concepts: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    for n, row in enumerate(rows, start=2):
        term, category = row.get("term") or "", row.get("category") or ""
        if prompt_words(term) != [term] or not category or term in concepts:
            sys.exit(f"error: {path} line {n}: need one distinct lower-case word and a category")
        concepts[term] = category
    return concepts


CONCEPTS: dict[str, str] = read_concepts() if CONCEPTS_FILE.exists() else {}


def concept_counts(docs: Sequence[list[str]], concepts: dict[str, str]) -> tuple[list[str], Any]:
    """The category names and a (documents x categories) matrix: how many distinct words of
    each category a document's features hold (a word as a feature is itself)."""
    names = sorted(set(concepts.values()))
    at = {c: k for k, c in enumerate(names)}
    rows, cols = [], []
    for i, doc in enumerate(docs):
        for word in sorted(set(doc).intersection(concepts)):  # a fixed order: same file
            rows.append(i)
            cols.append(at[concepts[word]])
    shape = (len(docs), len(names))
    return names, csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def hand_rows() -> tuple[list[str], list[float], list[float]]:
    """Texts, labels and weights of data/training and the sets' dev rows (never heldout)."""
    texts: list[str] = []
    y: list[float] = []
    w: list[float] = []
    own = [p for p in sorted(TRAINING_DIR.glob("*.tsv")) if p != CONCEPTS_FILE]
    files = own + sorted(p for p in SETS_DIR.glob("*.tsv") if p.name not in UNTRAINED_SETS)
    for path in files:
        for row in read_tsv(path):
            if row.get("split", "dev") != "dev":
                continue
            positive = row["label"] == "violation"
            texts.append(row["text"])
            y.append(1.0 if positive else 0.0)
            w.append(HAND_POSITIVE_WEIGHT if positive else HAND_NEGATIVE_WEIGHT)
    return texts, y, w


@dataclass
class Corpus:
    texts: list[str]
    source: NDArray[np.int_]  # 0 = I2P, 1 = Midjourney, 2 = DiffusionDB
    inappropriate: NDArray[np.float64]  # I2P percentages; 0 for the other sources
    nudity: NDArray[np.float64]
    hashes: dict[str, str]


def eval_dir(arg: str | None) -> Path:
    chosen = arg or os.environ.get("PROMPTWARDEN_EVAL_DIR") or str(ROOT.parent / "shared" / "eval")
    path = Path(chosen)
    missing = [f for f in (MJ_FILE, DDB_FILE, I2P_FILE) if not (path / f).is_file()]
    if missing:
        sys.exit(
            f"error: evaluation data not found in {path} (missing {', '.join(missing)}); "
            "pass --eval-dir DIR or set PROMPTWARDEN_EVAL_DIR"
        )
    return path


def load(path: Path) -> Corpus:
    hashes = {
        f: hashlib.sha256((path / f).read_bytes()).hexdigest()
        for f in (I2P_FILE, MJ_FILE, DDB_FILE)
    }
    with (path / I2P_FILE).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        absent = [c for c in I2P_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            sys.exit(f"error: {path / I2P_FILE} lacks column(s) {', '.join(absent)}")
        rows = list(reader)
    texts, source, inappropriate, nudity = [], [], [], []
    for line_no, row in enumerate(rows, start=2):
        try:
            ip, nu = float(row["inappropriate_percentage"]), float(row["nudity_percentage"])
        except ValueError:
            sys.exit(f"error: {path / I2P_FILE} line {line_no}: percentages must be numbers")
        texts.append(row["prompt"])
        source.append(0)
        inappropriate.append(ip)
        nudity.append(nu)
    for code, name in ((1, MJ_FILE), (2, DDB_FILE)):
        for line in (path / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(line)
                source.append(code)
                inappropriate.append(0.0)
                nudity.append(0.0)
    global KNOWN
    KNOWN = known_words(texts)  # `features` reads letters only from words outside it
    return Corpus(texts, np.array(source), np.array(inappropriate), np.array(nudity), hashes)


def _identity(doc: list[str]) -> list[str]:
    return doc


def train(
    docs: Sequence[list[str]],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    *,
    min_df: int = MIN_DF,
    binary: bool = True,
    concepts: dict[str, str] | None = None,
) -> tuple[CountVectorizer, LogisticRegression]:
    """The scikit-learn model; docs are feature lists from `features` (the runtime's n-grams).

    With `concepts`, the matrix gains the category columns of `concept_counts` after the
    vocabulary's; `export` must then be given the same concepts.
    """
    vectorizer = CountVectorizer(analyzer=_identity, min_df=min_df, binary=binary)
    x = vectorizer.fit_transform(docs)
    if concepts:
        if not binary:
            raise ValueError("concept columns count distinct words: binary features only")
        x = hstack([x, concept_counts(docs, concepts)[1]], format="csr")
    clf = LogisticRegression(C=C, max_iter=5000, random_state=SEED).fit(x, y, sample_weight=w)
    return vectorizer, clf


def export(
    vectorizer: CountVectorizer,
    clf: LogisticRegression,
    *,
    prune: float = 0.0,
    concepts: dict[str, str] | None = None,
) -> LinearModel:
    """The runtime form of a trained model (its threshold is set by the caller), without
    weights smaller than `prune` in size. A concept category's weight is added to each of
    its words' weights (words too rare for a column of their own get it alone), which gives
    the same score as the category column did."""
    names = list(vectorizer.get_feature_names_out())
    coef = clf.coef_[0]
    raw = {str(f): float(v) for f, v in zip(names, coef[: len(names)], strict=True)}
    if concepts:
        categories = sorted(set(concepts.values()))
        by_name = dict(zip(categories, coef[len(names) :], strict=True))
        for word, category in concepts.items():
            raw[word] = raw.get(word, 0.0) + float(by_name[category])
    weights = {f: v for f, v in raw.items() if v != 0.0 and abs(v) >= prune}
    return LinearModel(
        weights,
        float(clf.intercept_[0]),
        0.5,
        max_n=MAX_N,
        binary=bool(vectorizer.binary),
        char_ngrams=CHAR_NGRAMS,
        known=KNOWN,
    )


def fit(docs: Sequence[list[str]], y: NDArray[np.float64], w: NDArray[np.float64]) -> LinearModel:
    return export(*train(docs, y, w, concepts=CONCEPTS), prune=PRUNE, concepts=CONCEPTS)


def labels(corpus: Corpus) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    y = (corpus.source == 0).astype(np.float64)
    share = np.maximum(corpus.inappropriate / 100.0, WEIGHT_FLOOR)
    w = np.where(corpus.source == 0, I2P_WEIGHT * share, 1.0)
    return y, w


def decisions(model: LinearModel, docs: Sequence[list[str]]) -> NDArray[np.float64]:
    """Log-odds from feature lists, the same sum the runtime computes from words."""
    get = model.weights.get
    return np.array([model.bias + sum(get(f, 0.0) for f in set(d)) for d in docs])


HAND: tuple[list[list[str]], list[float], list[float]] | None = None


def hand_docs() -> tuple[list[list[str]], list[float], list[float]]:
    """`hand_rows` as feature lists, read once."""
    global HAND
    if HAND is None:
        texts, y, w = hand_rows()
        HAND = ([features(t) for t in texts], y, w)
    return HAND


def fit_with_hand(
    docs: Sequence[list[str]], y: NDArray[np.float64], w: NDArray[np.float64]
) -> LinearModel:
    """`fit` on these evaluation rows plus every hand-written training row."""
    hd, hy, hw = hand_docs()
    return fit([*docs, *hd], np.concatenate([y, hy]), np.concatenate([w, hw]))


def out_of_fold(
    corpus: Corpus, docs: list[list[str]], index: NDArray[np.int_], *, seed: int = SEED
) -> NDArray[np.float64]:
    """Log-odds for each prompt in `index` from a model that never saw it (or its duplicates).

    `seed` shuffles the folds: the figures move by about three points of I2P >= 50 from one
    split to another, so a change smaller than that is measured on several seeds.
    """
    y, w = labels(corpus)
    groups = np.unique(["\x00".join(docs[i]) for i in index], return_inverse=True)[1]
    strata = corpus.source[index] * 2 + (corpus.inappropriate[index] >= 50)
    scores = np.zeros(len(index))
    splitter = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for train, test in splitter.split(index, strata, groups):
        keep = train[w[index[train]] > 0]
        model = fit_with_hand([docs[i] for i in index[keep]], y[index[keep]], w[index[keep]])
        scores[test] = decisions(model, [docs[i] for i in index[test]])
    return scores


def threshold_for(mj_scores: NDArray[np.float64]) -> float:
    """Log-odds cut leaving TARGET_MJ_SHARE of Midjourney scores at or above it (midpoint)."""
    ranked = np.sort(mj_scores)[::-1]
    k = int(TARGET_MJ_SHARE * len(ranked))
    return float((ranked[k - 1] + ranked[k]) / 2)


def figures(
    corpus: Corpus, index: NDArray[np.int_], scores: NDArray[np.float64], cut: float
) -> dict[str, Any]:
    src, ip, nu = corpus.source[index], corpus.inappropriate[index], corpus.nudity[index]
    hit = scores >= cut

    def share(mask: NDArray[np.bool_]) -> dict[str, Any]:
        return {
            "n": int(mask.sum()),
            "flagged": int(hit[mask].sum()),
            "share": round(float(hit[mask].mean()), 4),
        }

    i2p = src == 0
    return {
        "midjourney": share(src == 1),
        "diffusiondb": share(src == 2),
        "i2p_inappropriate_ge_50": share(i2p & (ip >= 50)),
        "i2p_nudity_ge_50": share(i2p & (nu >= 50)),
        "i2p_all": share(i2p),
    }


def held_out_estimate(corpus: Corpus, docs: list[list[str]]) -> dict[str, Any]:
    """The whole procedure on 80% (by prompt hash, like the real held-out split), judged on 20%."""
    bucket = np.array(
        [int(hashlib.sha256(t.encode("utf-8")).hexdigest(), 16) % 5 for t in corpus.texts]
    )
    train, test = np.flatnonzero(bucket != 0), np.flatnonzero(bucket == 0)
    cut = threshold_for(out_of_fold(corpus, docs, train)[corpus.source[train] == 1])
    y, w = labels(corpus)
    keep = train[w[train] > 0]
    model = fit_with_hand([docs[i] for i in keep], y[keep], w[keep])
    return figures(corpus, test, decisions(model, [docs[i] for i in test]), cut)


def report(title: str, figs: dict[str, Any]) -> None:
    print(title)
    for name, f in figs.items():
        print(f"  {name:<26} {100 * f['share']:5.1f}%  ({f['flagged']}/{f['n']})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--eval-dir", help="evaluation data (default ../shared/eval or PROMPTWARDEN_EVAL_DIR)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "model.json")
    args = parser.parse_args(argv)

    corpus = load(eval_dir(args.eval_dir))
    docs = [features(t) for t in corpus.texts]
    everything = np.arange(len(docs))

    oof = out_of_fold(corpus, docs, everything)
    cut = threshold_for(oof[corpus.source == 1])
    oof_figs = figures(corpus, everything, oof, cut)
    held = held_out_estimate(corpus, docs)

    y, w = labels(corpus)
    keep = everything[w > 0]
    model = fit_with_hand([docs[i] for i in keep], y[keep], w[keep])
    model.threshold = round(float(1.0 / (1.0 + np.exp(-cut))), 6)
    model.metadata = {
        "data": {
            "files_sha256": corpus.hashes,
            "counts": {
                "i2p": int((corpus.source == 0).sum()),
                "i2p_used": int(((corpus.source == 0) & (w > 0)).sum()),
                "midjourney": int((corpus.source == 1).sum()),
                "diffusiondb": int((corpus.source == 2).sum()),
            },
        },
        "labels": f"I2P prompts positive, weight {I2P_WEIGHT} x inappropriate_percentage/100 "
        f"(at least {I2P_WEIGHT * WEIGHT_FLOOR}); "
        "Midjourney and DiffusionDB prompts negative, weight 1; hand-written rows "
        f"(data/training, dev rows of benchmarks/sets) negative weight {HAND_NEGATIVE_WEIGHT}, "
        f"positive weight {HAND_POSITIVE_WEIGHT}",
        "hand_rows": len(hand_docs()[0]),
        "text_preprocessing": "Midjourney parameters (from the first --name or \u2014name), URLs "
        "and ::weights removed before prompt_words",
        "model": {
            "kind": "logistic_regression",
            "C": C,
            "min_df": MIN_DF,
            "prune_below": PRUNE,
            "binary": True,
            "word_ngrams": [1, MAX_N],
            "char_ngrams": list(CHAR_NGRAMS),
            "char_ngrams_read": "only in runs of unknown or short words; known = in "
            f">= {KNOWN_MIN_DF} evaluation prompts",
            "features": len(model.weights),
            "seed": SEED,
        },
        "threshold_rule": f"{TARGET_MJ_SHARE:.1%} of Midjourney prompts at or above it, "
        f"on {FOLDS}-fold out-of-fold scores",
        "out_of_fold": oof_figs,
        "hash_split_80_20": held,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.dump(args.out, digits=WEIGHT_DIGITS)

    print(f"learned tier: {len(model.weights)} features, threshold p >= {model.threshold}")
    report(f"out of fold ({FOLDS}-fold, grouped by prompt words):", oof_figs)
    report("hash split (train 80%, threshold by inner out-of-fold, judged on 20%):", held)
    shown = (
        args.out.resolve().relative_to(ROOT)
        if args.out.resolve().is_relative_to(ROOT)
        else args.out
    )
    print(f"wrote {shown} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
