"""The learned tier at run time: a linear model over word 1-2-grams, scored without scikit-learn.

Word lists miss prompts whose words are each harmless but whose images are not; a linear model
trained on ../shared/eval (see `scripts/train_model.py`) sees some of them. Its weights ship as
plain JSON so no pickle is ever loaded, and scoring is a few dict lookups per word. Its hits
only ever justify a `review`: a statistical guess must not warn or block a member.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FORMAT = "promptwarden-linear-model"
FORMAT_VERSION = 1
TOKENIZER = "promptwarden.screening.tokens.prompt_words"
MAX_CONTRIBUTIONS = 5

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "model.json"


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

    def decision(self, words: Sequence[str]) -> tuple[float, list[Contribution]]:
        """The raw linear score (log-odds) and every feature that raised it."""
        weights = self.weights
        found: dict[str, Contribution] = {}
        total = self.bias
        for feature, first, last in ngram_features(words, self.max_n):
            weight = weights.get(feature)
            if weight is None:
                continue
            seen = found.get(feature)
            if seen is None:
                found[feature] = Contribution(feature, weight, first, last)
                total += weight
            elif not self.binary:
                found[feature] = Contribution(feature, seen.weight + weight, seen.first, seen.last)
                total += weight
        raised = [c for c in found.values() if c.weight > 0]
        raised.sort(key=lambda c: (-c.weight, c.first, c.last))
        return total, raised

    def score(self, words: Sequence[str]) -> tuple[float, list[Contribution]]:
        """Probability that the prompt is inappropriate, with its heaviest positive features."""
        total, raised = self.decision(words)
        return sigmoid(total), raised[:MAX_CONTRIBUTIONS]

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
