"""Terms moderators keep dismissing: candidates for a guild's allow-list.

When moderators dismiss incidents as false positives and the same guideline term fired in
several of them, the guild probably uses that word in a harmless sense ("bikini" on a
swimwear server). This module only counts; it never changes rules, and it needs no Discord:
the caller passes the matches of the guild's dismissed incidents (`Match.to_dict()` forms, as
incidents store them) and shows the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .decision import Severity
from .rules import GuildRules

DEFAULT_AT_LEAST = 3
# Never suggested: the learned tier's features and personal information are not terms an
# allow-list holds, a minor's context is never harmless, and `--no` readings are not words.
_NEVER_SOURCES = ("model", "pii:", "rule:minors", "rule:negative", "rule:real_person", "custom")
_NEVER_CATEGORIES = frozenset({"minors", "personal_info"})


@dataclass(frozen=True, slots=True)
class AllowSuggestion:
    term: str  # as an allow term would be written
    category: str
    dismissed: int  # dismissed incidents it fired in


def _key(term: str) -> str:
    return " ".join(term.strip("*").split()).casefold()


def allow_suggestions(
    dismissed: Iterable[Sequence[Mapping[str, Any]]],
    rules: GuildRules,
    *,
    at_least: int = DEFAULT_AT_LEAST,
) -> list[AllowSuggestion]:
    """Terms that fired in at least `at_least` dismissed incidents and are not allowed yet.

    `dismissed` holds one sequence of matches per dismissed incident; a term counts once per
    incident however often it fired there. Critical matches are never suggested. Most
    dismissed first, then alphabetically.
    """
    counts: dict[str, int] = {}
    category: dict[str, str] = {}
    for matches in dismissed:
        seen: set[str] = set()
        for m in matches:
            term = m.get("term")
            source = str(m.get("source", ""))
            if not isinstance(term, str) or source.startswith(_NEVER_SOURCES):
                continue
            if m.get("category") in _NEVER_CATEGORIES:
                continue
            try:
                if Severity.parse(m.get("severity", "none")) >= Severity.CRITICAL:
                    continue
            except (KeyError, ValueError):
                continue
            key = _key(term)
            if not key or key in seen:
                continue
            seen.add(key)
            counts[key] = counts.get(key, 0) + 1
            category.setdefault(key, str(m.get("category", "")))
    allowed = {_key(t) for t in rules.allow_terms}
    found = [
        AllowSuggestion(key, category[key], n)
        for key, n in counts.items()
        if n >= at_least and key not in allowed
    ]
    return sorted(found, key=lambda s: (-s.dismissed, s.term))
