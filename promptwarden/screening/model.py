"""The learned tier at run time: a linear model over word n-grams and letter n-grams, scored
without scikit-learn.

Word lists miss prompts whose words are each harmless but whose images are not; a linear model
trained on the evaluation prompts and the hand-written rows in data/training (see
`scripts/train_model.py`) sees some of them. Besides word 1-2-grams it reads letter n-grams of
the prompt with every space and symbol taken out ("pu $$ ssy", "nakedsunited" and "naked"
share them), so splitting or gluing a word does not hide it. Its weights ship as plain JSON so
no pickle is ever loaded, and scoring is a few set intersections per prompt. Its hits only ever
justify a `review`: a statistical guess must not warn or block a member.
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
from operator import itemgetter
from pathlib import Path
from typing import Any

import ahocorasick

from promptwarden.screening.decision import Match, Severity
from promptwarden.screening.tokens import prompt_tokens, prompt_words

FORMAT = "promptwarden-linear-model"
FORMAT_VERSION = 2
CHAR_PREFIX = "#"  # letter n-gram features: never part of a word token
TOKENIZER = "promptwarden.screening.tokens.prompt_words"
MAX_CONTRIBUTIONS = 5
MAX_NAMED_WORDS = 8
FRAGMENT = 4  # letters: a piece of a split word ("pu", "ssy"), not a word of its own
# Words an explanation never names: they carry grammar, not content, and a moderator learns
# nothing from "the" or "on" (their weight, if any, stays in the score).
_STOP_TEXT = """a an the and or but nor of in on at to by for from with into onto upon over
    under up down as is are was were be been being am do does did has have had
    i me my mine we us our you your he him his she her hers it its they them their this that
    these those there here who whom whose which what when where why how so than then
    too very just also all any some each every both few more most other such own same s t
    can will would should could may might must shall about above below between through during
    before after again once while if because until against among per via"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
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
# The same, led by the dash so the regex engine skips ahead in C; `_first_parameter` checks
# the whitespace (or the start) before it. One pattern per dash: an alternation leads with
# no literal, and the engine tries it at every position.
_PARAMETER_HYPHENS = re.compile(r"--[a-z]", re.IGNORECASE)
_PARAMETER_DASH = re.compile(r"\u2014[a-z]", re.IGNORECASE)


def _first_parameter(text: str) -> int | None:
    """`_PARAMETERS.search(text).start()`, or None where it finds nothing.

    The two dashes' matches never overlap, so the first place either finds is the first
    place the pattern of both finds.
    """
    found = _first_after_space(_PARAMETER_HYPHENS, text) if "--" in text else None
    if "\u2014" in text:
        dash = _first_after_space(_PARAMETER_DASH, text)
        if dash is not None and (found is None or dash < found):
            found = dash
    return found


def _first_after_space(pattern: re.Pattern[str], text: str) -> int | None:
    for m in pattern.finditer(text):
        at = m.start()
        if at == 0:
            return 0
        if text[at - 1].isspace():
            return at - 1
    return None


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


def may_blank(text: str) -> bool:
    """False when `model_blanks(text)` is surely empty: no parameter dash, link or weight."""
    return "--" in text or "\u2014" in text or "http" in text or "::" in text


def parameters_start(text: str) -> int | None:
    """Where `model_text` blanks `text` from to its end (the first parameter), or None.

    For text without a link or a weight ("http", "::") that is all it blanks, and the
    screener blanks a prompt with parameters without building the blanked text twice.
    """
    return _first_parameter(text) if "--" in text or "\u2014" in text else None


def _blanked(text: str) -> tuple[str, list[tuple[int, int]]]:
    spans: list[tuple[int, int]] = []

    def blank(m: re.Match[str]) -> str:
        spans.append(m.span())
        return " " * len(m.group())

    found = parameters_start(text)
    if found is not None:
        spans.append((found, len(text)))
        text = text[:found] + " " * (len(text) - found)
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

    Training uses this same function (with `char_features`) as the vectorizer's analyzer, so
    the features the runtime looks up are exactly those scikit-learn counted.
    """
    count = len(words)
    for i in range(count):
        yield words[i], i, i
        for n in range(2, max_n + 1):
            if i + n > count:
                break
            yield " ".join(words[i : i + n]), i, i + n - 1


SHORT = 3  # letters: a word this short may be a piece of a split one ("na ked", "pu $$ ssy")


def letter_runs(words: Sequence[str], known: frozenset[str]) -> Iterator[tuple[int, int]]:
    """Where letter n-grams are read: maximal runs of words that are unknown or SHORT,
    holding at least one unknown word, as (first, last) word indices.

    A glued word ("nakedsunited") or a split one ("pu", "ssy") is unknown to the prompts the
    model learned from, while ordinary words are known and already features of their own;
    reading letters only there keeps the cost of an ordinary prompt at one set check.
    """
    start = -1
    unknown = False
    for k, w in enumerate(words):
        if w not in known:
            if start < 0:
                start = k
            unknown = True
        elif len(w) <= SHORT:
            if start < 0:
                start = k
        else:
            if unknown:
                yield start, k - 1
            start, unknown = -1, False
    if unknown:
        yield start, len(words) - 1


def char_features(
    words: Sequence[str], sizes: Sequence[int], known: frozenset[str] = frozenset()
) -> Iterator[tuple[str, int, int]]:
    """Letter n-grams of each `letter_runs` run with its words run together, as CHAR_PREFIX +
    gram, with the indices of the first and last word each one touches."""
    if not sizes:
        return
    for lo, hi in letter_runs(words, known):
        text = "".join(words[lo : hi + 1])
        # the word index of each letter of the run
        owner = [k for k in range(lo, hi + 1) for _ in words[k]]
        for n in sizes:
            for i in range(len(text) - n + 1):
                yield CHAR_PREFIX + text[i : i + n], owner[i], owner[i + n - 1]


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for very negative or positive scores."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LinearModel:
    """Logistic regression over binary or counted word n-grams of `prompt_words` output, plus
    binary letter n-grams of the same words run together (`char_features`)."""

    def __init__(
        self,
        weights: dict[str, float],
        bias: float,
        threshold: float,
        *,
        max_n: int = 2,
        binary: bool = True,
        char_ngrams: Sequence[int] = (),
        known: frozenset[str] = frozenset(),
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.weights = weights
        self._features = frozenset(f for f in weights if not f.startswith(CHAR_PREFIX))
        # letter grams without the prefix, so the per-message path slices and looks up only
        self._char_weights = {
            f[len(CHAR_PREFIX) :]: w for f, w in weights.items() if f.startswith(CHAR_PREFIX)
        }
        self._chars = frozenset(self._char_weights)
        self._char_automaton = _gram_automaton(self._chars, char_ngrams)
        self.bias = bias
        self.threshold = threshold
        self._cut = math.log(threshold / (1.0 - threshold))  # the threshold as log-odds
        self.max_n = max_n
        self.binary = binary
        self.char_ngrams = tuple(char_ngrams)
        self.known = known
        self.metadata: dict[str, Any] = metadata or {}
        self._lexicon = _lexicon(weights, known) if binary and max_n == 2 else None

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
        chars = data.get("char_ngrams")
        if (
            not isinstance(chars, list)
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in chars)
            or not all(2 <= n <= 8 for n in chars)
            or len(set(chars)) != len(chars)
        ):
            raise ModelFileError(
                f"'char_ngrams' must be a list of distinct sizes 2..8, found {chars!r}"
            )
        known = data.get("known_words", [])
        if not isinstance(known, list) or not all(isinstance(w, str) and w for w in known):
            raise ModelFileError("'known_words' must be a list of words")
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
            if feature.startswith(CHAR_PREFIX):
                gram = feature[len(CHAR_PREFIX) :]
                if len(gram) not in chars or not gram.strip() or " " in gram:
                    raise ModelFileError(
                        f"letter feature {feature!r} must be {CHAR_PREFIX!r} and a letter "
                        f"n-gram (no spaces) of a size in char_ngrams {chars!r}"
                    )
            else:
                n_words = len(feature.split(" "))
                if not feature or feature != feature.strip() or "  " in feature:
                    raise ModelFileError(
                        f"feature {feature!r} must be words joined by single spaces"
                    )
                if n_words > ngram[1]:
                    raise ModelFileError(f"feature {feature!r} is longer than ngram_range allows")
            weights[feature] = _finite(weight, f"weight of {feature!r}")
        metadata = data.get("training", {})
        if not isinstance(metadata, dict):
            raise ModelFileError("'training' must be an object")
        return cls(
            weights,
            bias,
            threshold,
            max_n=ngram[1],
            binary=binary,
            char_ngrams=chars,
            known=frozenset(known),
            metadata=metadata,
        )

    def _grams(self, words: Sequence[str]) -> list[Sequence[str]]:
        """All 1-grams, then all 2-grams, ... in word order (the features of `ngram_features`)."""
        grams: list[Sequence[str]] = [words]
        for n in range(2, self.max_n + 1):
            if n == 2:
                grams.append([a + " " + b for a, b in pairwise(words)])
            else:
                grams.append([" ".join(words[i : i + n]) for i in range(len(words) - n + 1)])
        return grams

    def _letter_grams(self, words: Sequence[str]) -> set[str]:
        """The letter n-grams (`char_features`) that carry a weight."""
        if self.known.issuperset(words):
            return set()  # most prompts: every word known, no letters to read
        chars = self._chars
        present: set[str] = set()
        for lo, hi in letter_runs(words, self.known):
            text = "".join(words[lo : hi + 1])
            for n in self.char_ngrams:
                # every n-letter slice, cut in C rather than by a Python-level loop
                k = len(text) - n + 1
                if k > 0:
                    cuts = map(slice, range(k), range(n, n + k))
                    present |= chars.intersection(map(text.__getitem__, cuts))
        return present

    def _log_odds(self, words: Sequence[str]) -> float:
        """The linear score alone: what `probability` and the explanation's checks need."""
        weights = self.weights
        grams = self._grams(words)
        if self.binary:
            present = self._features.intersection([g for per_n in grams for g in per_n])
            parts = list(map(weights.__getitem__, present))
        else:
            times = Counter(g for per_n in grams for g in per_n)
            parts = [weights[f] * times[f] for f in self._features.intersection(times)]
        if self.char_ngrams and self.binary:
            parts += map(self._char_weights.__getitem__, self._letter_grams(words))
        elif self.char_ngrams:
            letters = Counter(f for f, _, _ in char_features(words, self.char_ngrams, self.known))
            parts += [weights[f] * letters[f] for f in letters if f in weights]
        # fsum: the total does not depend on set order, so a score never varies between runs
        return self.bias + math.fsum(parts)

    def decision(self, words: Sequence[str]) -> tuple[float, list[Contribution]]:
        """The raw linear score (log-odds) and every feature that raised it, heaviest first.

        Each feature is placed at its first occurrence; letter features name the words
        their letters came from.
        """
        weights = self.weights
        total = self._log_odds(words)
        counted: Counter[str] = Counter()
        placed: dict[str, tuple[int, int]] = {}
        for f, a, b in ngram_features(words, self.max_n):
            if f in self._features:
                counted[f] += 1
                placed.setdefault(f, (a, b))
        for f, a, b in char_features(words, self.char_ngrams, self.known):
            if f in weights:
                counted[f] += 1
                placed.setdefault(f, (a, b))
        ranked = []
        for f, (a, b) in placed.items():
            w = weights[f] * (1 if self.binary else counted[f])
            if w > 0:
                ranked.append((-w, a, b, f))
        ranked.sort()
        return total, [Contribution(f, -w, a, b) for w, a, b, f in ranked]

    def probability(self, words: Sequence[str]) -> float:
        """`score(words)[0]` without explaining it: the per-message fast path.

        One lookup per word in the lexicon gives its 1-gram weight, its known-word class and
        the 2-grams it starts, so no 2-gram string is built and the large feature tables are
        not probed once per gram. The same features sum to the same total: `math.fsum` is
        exact, so neither their order nor the path that found them changes a bit of it.
        """
        lexicon = self._lexicon
        if lexicon is None:
            return sigmoid(self._log_odds(words))
        present: dict[str | tuple[str, str], float] = {}  # binary: each feature once
        classes: list[str] = []
        add_class = classes.append  # bound once: this loop runs for every word of every prompt
        look = lexicon.get
        follow: dict[str, float] | None = None
        prev = ""
        for w in words:
            entry = look(w)
            if entry is None:
                add_class(_UNKNOWN)
                follow = None
                continue
            if follow is not None and (pair := follow.get(w)) is not None:
                present[prev, w] = pair
            weight, follow, kind = entry
            if weight is not None:
                present[w] = weight
            add_class(kind)
            prev = w
        # A lexicon word may itself be of the unknown class, so the classes decide.
        if not self.char_ngrams or _UNKNOWN not in (kinds := "".join(classes)):
            return sigmoid(self.bias + math.fsum(present.values()))
        parts = list(present.values())
        parts += map(self._char_weights.__getitem__, self._grams_in(words, kinds))
        return sigmoid(self.bias + math.fsum(parts))

    def _grams_in(self, words: Sequence[str], kinds: str) -> set[str]:
        """`_letter_grams` from the words' classes (`_lexicon`): the runs of `letter_runs`
        are the runs of unknown or short words that hold an unknown one.

        The runs are read in one automaton pass over their texts joined by spaces (no
        letter gram holds one): only the weighted grams present come back to Python, where
        slicing every gram out and hashing it to ask the table cost a microsecond a prompt.
        """
        automaton = self._char_automaton
        if automaton is None:
            return set()
        text = " ".join(["".join(words[m.start() : m.end()]) for m in _LETTER_RUN.finditer(kinds)])
        return set(map(_SECOND, automaton.iter(text)))

    def _placed(self, words: Sequence[str]) -> list[tuple[str, int, int]]:
        """Every occurrence of a weighted feature, with its first and last word."""
        weights = self.weights
        placed = [f for f in ngram_features(words, self.max_n) if f[0] in weights]
        placed += [f for f in char_features(words, self.char_ngrams, self.known) if f[0] in weights]
        return placed

    def attributions(
        self, words: Sequence[str], placed: list[tuple[str, int, int]] | None = None
    ) -> list[float]:
        """How much of the linear score each word carries.

        A feature's weight is shared equally among the words of all its occurrences (a letter
        gram across "two" and "men" is half each), so taking all those words out removes it.
        """
        shares = [0.0] * len(words)
        covered: dict[str, set[int]] = {}
        for f, a, b in self._placed(words) if placed is None else placed:
            covered.setdefault(f, set()).update(range(a, b + 1))
        for f, where in covered.items():
            share = self.weights[f] / len(where)
            for k in where:
                shares[k] += share
        return shares

    def score(self, words: Sequence[str]) -> tuple[float, list[Contribution]]:
        """Probability that the prompt is inappropriate, and the words that make it so.

        The named words are content words (never STOP_WORDS), each word counted once with
        all its occurrences, adjacent ones joined into a phrase, heaviest first. They are
        picked greedily by their share of the score until taking them out of the prompt
        brings it under the threshold (at most MAX_NAMED_WORDS words in MAX_CONTRIBUTIONS
        phrases), so an explanation is what made the verdict, not merely what leaned that
        way. Below the threshold the heaviest content words are named.
        """
        total = self._log_odds(words)
        placed = self._placed(words)
        shares = self.attributions(words, placed)
        weight: dict[str, float] = {}
        first: dict[str, int] = {}
        for k, w in enumerate(words):
            if w not in STOP_WORDS:
                weight[w] = weight.get(w, 0.0) + shares[k]
                first.setdefault(w, k)
        order = sorted(
            (w for w, v in weight.items() if v > 0), key=lambda w: (-weight[w], first[w])
        )
        chosen: list[str] = []
        estimate = total  # the score less the shares of the chosen words: checks are costly
        for w in order:
            if len(chosen) >= MAX_NAMED_WORDS:
                break
            trial = [*chosen, w]
            if len(_runs(sorted(first[x] for x in trial))) > MAX_CONTRIBUTIONS:
                continue
            chosen = trial
            estimate -= weight[w]
            if total < self._cut:
                if len(chosen) >= MAX_CONTRIBUTIONS:
                    break
                continue
            if estimate >= self._cut:
                continue  # not enough named yet, even before checking
            gone = set(chosen)
            if self._log_odds([x for x in words if x not in gone]) < self._cut:
                break
        at = self._with_fragments(words, sorted(first[w] for w in chosen), placed)
        phrases = [
            Contribution(
                " ".join(words[a : b + 1]),
                math.fsum(weight.get(w, 0.0) for w in dict.fromkeys(words[a : b + 1])),
                a,
                b,
            )
            for a, b in _runs(at)[:MAX_CONTRIBUTIONS]
        ]
        phrases.sort(key=lambda c: (-c.weight, c.first))
        return sigmoid(total), phrases

    def _with_fragments(
        self, words: Sequence[str], chosen: list[int], placed: list[tuple[str, int, int]]
    ) -> list[int]:
        """`chosen` plus the short pieces of the same split word ("na ked", "pu $$ ssy").

        A neighbour joins when a letter gram that raises the score runs across into it and
        it is a fragment (at most FRAGMENT letters, not a function word), so a moderator
        sees the whole disguised word rather than half of it.
        """
        if not self.char_ngrams or not chosen:
            return chosen
        crossing: set[int] = set()  # k: a raising gram spans words k and k + 1
        for f, a, b in placed:
            if a != b and f.startswith(CHAR_PREFIX) and self.weights[f] > 0:
                crossing.update(range(a, b))
        picked = set(chosen)

        def fragment(k: int) -> bool:
            return len(words[k]) <= FRAGMENT and words[k] not in STOP_WORDS

        for k in chosen:
            j = k
            while j - 1 >= 0 and j - 1 in crossing and fragment(j - 1) and fragment(j):
                j -= 1
                picked.add(j)
            j = k
            while j + 1 < len(words) and j in crossing and fragment(j + 1) and fragment(j):
                j += 1
                picked.add(j)
        return sorted(picked)

    def explain(self, text: str) -> tuple[float, list[Match]]:
        """Score a prompt's text and name the words that made it, as matches with spans in
        `text`. The caller turns a probability at or above `threshold` into a `review`, never
        more."""
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
            "char_ngrams": list(self.char_ngrams),
            "known_words": sorted(self.known),
            "binary": self.binary,
            "bias": rounded(self.bias),
            "threshold": self.threshold,
            "weights": {f: rounded(w) for f, w in sorted(self.weights.items())},
            "training": self.metadata,
        }

    def dump(self, path: Path, *, digits: int | None = None) -> None:
        text = json.dumps(self.to_dict(digits=digits), sort_keys=True, ensure_ascii=False, indent=0)
        path.write_text(text + "\n", encoding="utf-8")


# A word's class for `letter_runs`: unknown, known and SHORT, or known and longer.
_UNKNOWN, _SHORT_KNOWN, _LONG_KNOWN = "u", "s", "k"
# A maximal run of unknown or short words holding an unknown one; the lookbehind starts a
# try only where a run starts, so a long run costs its length once, not once per word.
_LETTER_RUN = re.compile(
    f"(?<![{_UNKNOWN}{_SHORT_KNOWN}])[{_UNKNOWN}{_SHORT_KNOWN}]*{_UNKNOWN}[{_UNKNOWN}{_SHORT_KNOWN}]*"
)
_SECOND = itemgetter(1)


def _gram_automaton(grams: frozenset[str], sizes: Sequence[int]) -> Any:
    """An Aho-Corasick automaton of the letter grams `_grams_in` can find (of a size in
    `sizes`, without a space), each its own value; None without any."""
    automaton = ahocorasick.Automaton()
    for gram in grams:
        if len(gram) in sizes and " " not in gram:
            automaton.add_word(gram, gram)
    if not len(automaton):
        return None
    automaton.make_automaton()
    return automaton


# word -> (its 1-gram weight or None, {next word: weight of the 2-gram}, its class)
_Lexicon = dict[str, tuple[float | None, dict[str, float] | None, str]]


def _lexicon(weights: dict[str, float], known: frozenset[str]) -> _Lexicon:
    """Everything the 1-2-gram fast path asks about a word, behind one key.

    Holds every word that is known, weighted or in a weighted 2-gram; any other word is
    unknown and starts no 2-gram, so `lexicon.get(word)` answering None says all of that.
    """
    unigrams: dict[str, float] = {}
    follows: dict[str, dict[str, float]] = {}
    seconds: set[str] = set()
    for feature, weight in weights.items():
        if feature.startswith(CHAR_PREFIX):
            continue
        first, _, second = feature.partition(" ")
        if second:
            follows.setdefault(first, {})[second] = weight
            seconds.add(second)
        else:
            unigrams[feature] = weight
    lexicon: _Lexicon = {}
    for w in known | unigrams.keys() | follows.keys() | seconds:
        kind = _UNKNOWN if w not in known else _SHORT_KNOWN if len(w) <= SHORT else _LONG_KNOWN
        lexicon[w] = (unigrams.get(w), follows.get(w), kind)
    return lexicon


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted word indices as runs of neighbours: [2, 3, 7] -> [(2, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for k in indices:
        if runs and runs[-1][1] == k - 1:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    return runs


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
