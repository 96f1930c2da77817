"""Allow-list suggestions from dismissed incidents, fed with real screening decisions."""

from __future__ import annotations

from typing import Any

from promptwarden.allow_suggestions import Suggestion, suggestions
from promptwarden.screening.engine import Screener
from promptwarden.screening.rules import GuildRules

SCREENER = Screener(GuildRules(learned=False), model=None)


def matches(prompt: str) -> list[dict[str, Any]]:
    return [m.to_dict() for m in SCREENER.screen(prompt).matches]


def test_a_term_dismissed_three_times_is_suggested_once_per_incident() -> None:
    dismissed = [
        matches("sexy sexy swimwear catalogue"),  # twice in one incident: counts once
        matches("a sexy summer dress"),
        matches("sexy sunglasses, product photo"),
        matches("a nude statue"),
    ]
    assert suggestions(dismissed, ()) == [Suggestion("sexy", 3)]
    assert suggestions(dismissed, (), threshold=4) == []
    assert [s.term for s in suggestions(dismissed, (), threshold=1)] == [
        "sexy",
        "nude",
    ]


def test_allowed_terms_minors_and_critical_matches_are_never_suggested() -> None:
    dismissed = [matches("sexy 12 year old")] * 3 + [matches("a nude child")] * 3
    suggested = suggestions(dismissed, GuildRules.from_dict({"allow_terms": ["Sexy"]}).allow_terms)
    assert suggested == [Suggestion("nude", 3)]


def test_learned_tier_and_personal_information_are_not_terms() -> None:
    dismissed = [
        [{"term": "beach", "source": "model", "category": "model", "severity": "medium"}],
        matches("mail me at someone@example.com"),
    ] * 3
    assert suggestions(dismissed, ()) == []
