"""The result of screening one prompt.

These types are the contract between the screening engine and everything that acts on it
(cogs, storage, the offline screener), so they are plain, frozen and JSON-friendly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum, StrEnum
from typing import Any


class Verdict(StrEnum):
    """What should happen, mildest first; `harshest()` relies on this order."""

    ALLOW = "allow"
    REMIND = "remind"  # personal information: a private reminder, not a violation
    REVIEW = "review"  # learned tier only: moderators look, the member is not told
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _VERDICT_ORDER.index(self)

    @staticmethod
    def harshest(verdicts: list[Verdict]) -> Verdict:
        return max(verdicts, key=lambda v: v.rank, default=Verdict.ALLOW)


_VERDICT_ORDER = list(Verdict)


class Severity(IntEnum):
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | int) -> Severity:
        if isinstance(value, int):
            return cls(value)
        return cls[value.strip().upper()]


@dataclass(frozen=True, slots=True)
class Match:
    """One reason for a decision: which rule, which words, where in the original text."""

    category: str
    term: str  # the guideline term or pattern that fired
    start: int  # span in the original message content
    end: int
    text: str  # the original characters at [start:end]
    source: str  # e.g. "rule:sexual", "custom", "profanity", "pii:email", "model"
    severity: Severity
    weight: float | None = None  # learned tier: the word's contribution

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "term": self.term,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "source": self.source,
            "severity": self.severity.name.lower(),
            **({"weight": round(self.weight, 4)} if self.weight is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    prompt: str
    verdict: Verdict
    severity: Severity
    categories: tuple[str, ...]
    matches: tuple[Match, ...] = ()
    score: float | None = None  # learned tier probability, when it ran
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.verdict in (Verdict.REVIEW, Verdict.WARN, Verdict.BLOCK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "verdict": self.verdict.value,
            "severity": self.severity.name.lower(),
            "categories": list(self.categories),
            "matches": [m.to_dict() for m in self.matches],
            **({"score": round(self.score, 4)} if self.score is not None else {}),
            **self.extra,
        }


# Frozen dataclasses set each field through `object.__setattr__`, looked up anew per field:
# a third of a Decision's cost per message. The slots' own setters, bound once, do the same.
_NEW = object.__new__
(_PROMPT, _VERDICT, _SEVERITY, _CATEGORIES, _MATCHES, _SCORE, _EXTRA) = (
    getattr(Decision, f.name).__set__ for f in fields(Decision)
)  # a field added to Decision fails here, at import, until it is added below too


def new_decision(
    prompt: str,
    verdict: Verdict,
    severity: Severity,
    categories: tuple[str, ...],
    matches: tuple[Match, ...],
    score: float | None,
    extra: dict[str, Any],
) -> Decision:
    """`Decision(...)` with every field given, for the screener's per-message path."""
    decision: Decision = _NEW(Decision)
    _PROMPT(decision, prompt)
    _VERDICT(decision, verdict)
    _SEVERITY(decision, severity)
    _CATEGORIES(decision, categories)
    _MATCHES(decision, matches)
    _SCORE(decision, score)
    _EXTRA(decision, extra)
    return decision
