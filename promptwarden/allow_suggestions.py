"""Terms moderators keep dismissing as false positives, to suggest for a guild's allow list.

Every dismissal is a moderator saying "this prompt was fine". When the same guideline
term fired in several dismissed incidents of a guild, the term is likely harmless there
(an art word, a name, a local joke) and allow-listing it saves moderators the next
review. Counted from the stored incidents only, so it needs no state of its own and
follows retention: incidents deleted by retention or erasure stop counting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptwarden.screening.decision import Severity
from promptwarden.screening.rules import check_term

SUGGEST_AFTER = 3  # dismissals of the same term in one guild
# How many of a guild's most recent dismissed incidents are counted.
RECENT_DISMISSALS = 500
# Guideline terms only: the learned tier's words are not terms one can allow, a guild's
# own custom terms are better removed than allowed, and personal information is never named.
_SOURCES = ("rule:", "profanity")
# Never suggested: a minor's context is never harmless, and `--no` readings and named real
# people are not words one allows; nor is anything critical.
_NEVER_SOURCES = ("rule:minors", "rule:negative", "rule:real_person")
_NEVER_CATEGORIES = frozenset({"minors", "personal_info"})


def _suggestible(match: Mapping[str, Any]) -> bool:
    source = str(match.get("source", ""))
    if not source.startswith(_SOURCES) or source.startswith(_NEVER_SOURCES):
        return False
    if match.get("category") in _NEVER_CATEGORIES:
        return False
    try:
        return Severity.parse(str(match.get("severity", "none"))) < Severity.CRITICAL
    except (KeyError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class Suggestion:
    term: str
    dismissals: int


def suggestible_terms(matches: Sequence[Mapping[str, Any]]) -> set[str]:
    """The allow-listable guideline terms one incident matched, casefolded, once each."""
    terms: set[str] = set()
    for match in matches:
        if not _suggestible(match):
            continue
        try:
            terms.add(check_term(str(match.get("term") or "")).casefold())
        except ValueError:  # a pattern, not a plain word: nothing to allow
            continue
    return terms


def count_dismissed(dismissed: Iterable[Sequence[Mapping[str, Any]]]) -> Counter[str]:
    """For each term, in how many of the given dismissed incidents (their matches) it fired."""
    counts: Counter[str] = Counter()
    for matches in dismissed:
        counts.update(suggestible_terms(matches))
    return counts


def suggestions(
    dismissed: Iterable[Sequence[Mapping[str, Any]]],
    allowed: Iterable[str],
    *,
    threshold: int = SUGGEST_AFTER,
) -> list[Suggestion]:
    """Terms dismissed at least `threshold` times and not allowed yet, most often first."""
    already = {term.casefold() for term in allowed}
    counts = count_dismissed(dismissed)
    found = [
        Suggestion(term, n) for term, n in counts.items() if n >= threshold and term not in already
    ]
    return sorted(found, key=lambda s: (-s.dismissals, s.term))


def reached(
    suggested: Sequence[Suggestion], just_dismissed: Sequence[Mapping[str, Any]]
) -> list[Suggestion]:
    """The suggestions the incident just dismissed contributed to: the ones to announce."""
    terms = suggestible_terms(just_dismissed)
    return [s for s in suggested if s.term in terms]


def note(suggestion: Suggestion) -> str:
    """The mod-log line that proposes allow-listing a term."""
    term = suggestion.term.replace("`", "\u02cb")  # a backtick would end the code span
    return (
        f"Moderators have dismissed `{term}` as a false positive {suggestion.dismissals} "
        f"times in this server. If it is harmless here, `/guideline-rules allow term:{term}` "
        "stops it being flagged."
    )
