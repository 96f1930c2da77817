"""The learned tier at run time: a linear model over word 1-2-grams, scored without scikit-learn.

Word lists miss prompts whose words are each harmless but whose images are not; a linear model
trained on ../shared/eval (see `scripts/train_model.py`) sees some of them. Its weights ship as
plain JSON so no pickle is ever loaded, and scoring is one set intersection per prompt. Its hits
only ever justify a `review`: a statistical guess must not warn or block a member.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from promptwarden.screening.decision import Match, Severity
from promptwarden.screening.tokens import prompt_tokens, prompt_words

FORMAT = "promptwarden-linear-model"
FORMAT_VERSION = 1
TOKENIZER = "promptwarden.screening.tokens.prompt_words"
MAX_CONTRIBUTIONS = 5
# Tokenized into the file at training time and again at load: weights learned over other words
# than the runtime produces would score silently wrong, so a mismatch refuses to load.
TOKENIZER_PROBE = (
    "\uff26\uff55\uff4c\uff4c Caf\u00e9 \u0441\u0430t n.a.k.e.d naaaked ||spoiler|| **bold** "
    "l33t 4ss z\u200bero Pollock's ROCK-n-roll 1 9 8 4 --ar 16:9"
)

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "model.json"


# Midjourney parameters come last and are not words of the prompt; left in, `--ar 16:9` would
# teach the model that Midjourney syntax means "benign", since no I2P prompt carries any.
_PARAMETERS = re.compile(r"(?:^|\s)(?:--|\u2014)[a-z]", re.IGNORECASE)
_URL = re.compile(r"<?https?://\S+?>?(?=\s|$)")
_PROMPT_WEIGHT = re.compile(r"::\s*-?\d*\.?\d*")


def model_text(text: str) -> str:
    """The words a person wrote, as the model was trained on them, at the same offsets.

    Image links, `::` weights and everything from the first parameter (`--ar`, `\u2014no`...) are
    blanked with spaces, so spans found in the result are spans of `text`.
    """
    return _blanked(text)[0]


def model_blanks(text: str) -> list[tuple[int, int]]:
    """The spans `model_text` blanks, sorted (they may overlap).

    The screener blanks them in text it has normalized already, rather than normalizing
    the blanked text a second time.
    """
    return sorted(_blanked(text)[1])


def _blanked(text: str) -> tuple[str, list[tuple[int, int]]]:
    spans: list[tuple[int, int]] = []

    def blank(m: re.Match[str]) -> str:
        spans.append(m.span())
        return " " * len(m.group())

    found = _PARAMETERS.search(text) if "--" in text or "\u2014" in text else None
    if found:
        spans.append((found.start(), len(text)))
        text = text[: found.start()] + " " * (len(text) - found.start())
    # substring checks first: most prompts hold neither, and the regexes are the cost
    if "http" in text:
        text = _URL.sub(blank, text)
    if "::" in text:
        text = _PROMPT_WEIGHT.sub(blank, text)
    return text, spans


class ModelFileError(ValueError):
    """The weights file is missing a piece or holds something a model cannot be made of."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """How much one feature pushed the score up, and which words (token indices) it came from.

    `first`/`last` index the words passed to `LinearModel.score`, so the caller can map them
    back to spans of the original text through `prompt_tokens`.
    """

    feature: str
    weight: float
    first: int
    last: int


def ngram_features(words: Sequence[str], max_n: int) -> Iterator[tuple[str, int, int]]:
    """Every 1..max_n-gram with the indices of its first and last word.

    Training uses this same function as the vectorizer's analyzer, so the features the runtime
    looks up are exactly those scikit-learn counted.
    """
    count = len(words)
    for i in range(count):
        yield words[i], i, i
        for n in range(2, max_n + 1):
            if i + n > count:
                break
            yield " ".join(words[i : i + n]), i, i + n - 1


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for very negative or positive scores."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LinearModel:
    """Logistic regression over binary or counted n-gram features of `prompt_words` output."""

    def __init__(
        self,
        weights: dict[str, float],
        bias: float,
        threshold: float,
        *,
        max_n: int = 2,
        binary: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.weights = weights
        self._features = frozenset(weights)  # set operations iterate the smaller side
        self.bias = bias
        self.threshold = threshold
        self.max_n = max_n
        self.binary = binary
        self.metadata: dict[str, Any] = metadata or {}

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ModelFileError(f"model file {path} is not UTF-8 JSON (a pickle?): {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"model file {path} is not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ModelFileError as exc:
            raise ModelFileError(f"model file {path}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: object) -> LinearModel:
        if not isinstance(data, dict):
            raise ModelFileError("expected a JSON object at the top level")
        if data.get("format") != FORMAT:
            raise ModelFileError(f"'format' must be {FORMAT!r}, found {data.get('format')!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"unsupported format_version {data.get('format_version')!r} "
                f"(this PromptWarden reads {FORMAT_VERSION}); retrain with scripts/train_model.py"
            )
        if data.get("tokenizer") != TOKENIZER:
            raise ModelFileError(
                f"'tokenizer' must be {TOKENIZER!r}, found {data.get('tokenizer')!r}"
            )
        ngram = data.get("ngram_range")
        if (
            not isinstance(ngram, list)
            or len(ngram) != 2
            or ngram[0] != 1
            or not isinstance(ngram[1], int)
            or isinstance(ngram[1], bool)
            or not 1 <= ngram[1] <= 5
        ):
            raise ModelFileError(f"'ngram_range' must be [1, n] with 1 <= n <= 5, found {ngram!r}")
        binary = data.get("binary")
        if not isinstance(binary, bool):
            raise ModelFileError(f"'binary' must be true or false, found {binary!r}")
        probe = data.get("tokenizer_probe")
        if probe != probe_words():
            raise ModelFileError(
                "it was trained on another tokenization than promptwarden.screening.tokens "
                f"gives now (tokenizer_probe {probe!r} != {probe_words()!r}); "
                "retrain with scripts/train_model.py"
            )
        bias = _finite(data.get("bias"), "bias")
        threshold = _finite(data.get("threshold"), "threshold")
        if not 0.0 < threshold < 1.0:
            raise ModelFileError(f"'threshold' is a probability in (0, 1), found {threshold!r}")
        raw_weights = data.get("weights")
        if not isinstance(raw_weights, dict) or not raw_weights:
            raise ModelFileError("'weights' must be a non-empty object of feature: weight")
        weights: dict[str, float] = {}
        for feature, weight in raw_weights.items():
            n_words = len(feature.split(" "))
            if not feature or feature != feature.strip() or "  " in feature:
                raise ModelFileError(f"feature {feature!r} must be words joined by single spaces")
            if n_words > ngram[1]:
                raise ModelFileError(f"feature {feature!r} is longer than ngram_range allows")
            weights[feature] = _finite(weight, f"weight of {feature!r}")
        metadata = data.get("training", {})
        if not isinstance(metadata, dict):
            raise ModelFileError("'training' must be an object")
        return cls(weights, bias, threshold, max_n=ngram[1], binary=binary, metadata=metadata)

    def _grams(self, words: Sequence[str]) -> list[Sequence[str]]:
        """All 1-grams, then all 2-grams, ... in word order (the features of `ngram_features`)."""
        grams: list[Sequence[str]] = [words]
        for n in range(2, self.max_n + 1):
            if n == 2:
                grams.append([a + " " + b for a, b in pairwise(words)])
            else:
                grams.append([" ".join(words[i : i + n]) for i in range(len(words) - n + 1)])
        return grams

    def _scored(self, words: Sequence[str], limit: int | None) -> tuple[float, list[Contribution]]:
        """Log-odds and the heaviest `limit` raising features (all of them when None).

        Set and Counter operations run in C: this is called on every watched message. fsum
        makes the total independent of set order, so a score never varies between runs.
        """
        weights = self.weights
        grams = self._grams(words)
        every = [g for per_n in grams for g in per_n]
        if self.binary:
            times: Counter[str] | None = None
            present = self._features.intersection(every)
            total = self.bias + math.fsum(map(weights.__getitem__, present))
        else:
            times = Counter(every)
            present = self._features.intersection(times)
            total = self.bias + math.fsum(weights[f] * times[f] for f in present)
        if limit == 0:
            return total, []
        ranked = sorted(
            (-weights[f] * (1 if times is None else times[f]), f) for f in present if weights[f] > 0
        )
        if limit is not None and len(ranked) > limit:
            # keep ties with the last kept weight: position decides among them below
            cut = ranked[limit - 1][0]
            ranked = [r for r in ranked if r[0] <= cut]
        placed = []
        for neg_weight, f in ranked:
            size = f.count(" ") + 1
            first = grams[size - 1].index(f)
            placed.append((neg_weight, first, first + size - 1, f))
        placed.sort()
        if limit is not None:
            placed = placed[:limit]
        return total, [Contribution(f, -w, first, last) for w, first, last, f in placed]

    def decision(self, words: Sequence[str]) -> tuple[float, list[Contribution]]:
        """The raw linear score (log-odds) and every feature that raised it, heaviest first."""
        return self._scored(words, None)

    def probability(self, words: Sequence[str]) -> float:
        """`score(words)[0]` without ranking the features: the per-message fast path."""
        if self.binary and self.max_n == 2:
            features = self._features
            present = features.intersection(words) | features.intersection(
                [a + " " + b for a, b in pairwise(words)]
            )
            return sigmoid(self.bias + math.fsum(map(self.weights.__getitem__, present)))
        return sigmoid(self._scored(words, 0)[0])

    def score(self, words: Sequence[str]) -> tuple[float, list[Contribution]]:
        """Probability that the prompt is inappropriate, with its heaviest positive features."""
        total, raised = self._scored(words, MAX_CONTRIBUTIONS)
        return sigmoid(total), raised

    def explain(self, text: str) -> tuple[float, list[Match]]:
        """Score a prompt's text and name the heaviest words as matches with spans in `text`.

        The caller turns a probability at or above `threshold` into a `review`, never more.
        """
        tokens = prompt_tokens(model_text(text))
        probability, raised = self.score([t.text for t in tokens])
        matches = [
            Match(
                category="learned",
                term=c.feature,
                start=tokens[c.first].start,
                end=tokens[c.last].end,
                text=text[tokens[c.first].start : tokens[c.last].end],
                source="model",
                severity=Severity.LOW,
                weight=c.weight,
            )
            for c in raised
        ]
        return probability, matches

    def flags(self, probability: float) -> bool:
        return probability >= self.threshold

    def to_dict(self, *, digits: int | None = None) -> dict[str, Any]:
        """The JSON form; `digits` rounds weights so a retrain gives a small, stable diff."""

        def rounded(x: float) -> float:
            return x if digits is None else round(x, digits)

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tokenizer": TOKENIZER,
            "tokenizer_probe": probe_words(),
            "ngram_range": [1, self.max_n],
            "binary": self.binary,
            "bias": rounded(self.bias),
            "threshold": self.threshold,
            "weights": {f: rounded(w) for f, w in sorted(self.weights.items())},
            "training": self.metadata,
        }

    def dump(self, path: Path, *, digits: int | None = None) -> None:
        text = json.dumps(self.to_dict(digits=digits), sort_keys=True, ensure_ascii=False, indent=0)
        path.write_text(text + "\n", encoding="utf-8")


def probe_words() -> list[str]:
    """What the current tokenization makes of TOKENIZER_PROBE."""
    return prompt_words(model_text(TOKENIZER_PROBE))


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelFileError(f"'{name}' must be a finite number, found {value!r}")
    return float(value)


@cache
def default_model() -> LinearModel | None:
    """The shipped model, loaded once; None when the weights file is absent (tier off)."""
    if not DEFAULT_PATH.exists():
        return None
    return LinearModel.load(DEFAULT_PATH)
