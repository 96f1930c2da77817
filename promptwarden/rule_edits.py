"""Edits of a guild's screening rules, one slash command each.

Every edit rebuilds the rules through `GuildRules.from_dict`, so a command can never save
what the screener would refuse, and admins read the same validation messages everywhere.
"""

from __future__ import annotations

from typing import Any

from promptwarden.enforcement import guideline_for
from promptwarden.screening.guidelines import CATEGORIES
from promptwarden.screening.rules import (
    ACTIONS,
    CUSTOM,
    MAX_CUSTOM_TERMS,
    GuildRules,
    check_term,
)

RULE_CATEGORIES: tuple[str, ...] = (*CATEGORIES, CUSTOM)
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")


def _rebuild(data: dict[str, Any]) -> GuildRules:
    return GuildRules.from_dict(data)


def _check_category(category: str) -> None:
    if category not in RULE_CATEGORIES:
        raise ValueError(
            f"unknown category {category!r}; expected one of {', '.join(RULE_CATEGORIES)}"
        )


def set_action(rules: GuildRules, category: str, action: str) -> GuildRules:
    _check_category(category)
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    data = rules.to_dict()
    data["actions"][category] = action
    return _rebuild(data)


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def add_term(rules: GuildRules, term: str, category: str, severity: str) -> GuildRules:
    """Add (or re-file) a custom term; raises ValueError saying what is wrong."""
    cleaned = check_term(term)
    _check_category(category)
    if severity.strip().lower() not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
    data = rules.to_dict()
    terms = [t for t in data["custom_terms"] if not _same(t["term"], cleaned)]
    if len(terms) >= MAX_CUSTOM_TERMS:
        raise ValueError(
            f"this server already has {len(terms)} custom terms (at most {MAX_CUSTOM_TERMS}); "
            "remove some first"
        )
    terms.append({"term": cleaned, "category": category, "severity": severity.strip().lower()})
    data["custom_terms"] = terms
    data["allow_terms"] = [t for t in data["allow_terms"] if not _same(t, cleaned)]
    return _rebuild(data)


def allow_term(rules: GuildRules, term: str) -> GuildRules:
    """Never flag `term` (e.g. an art word such as `nude color palette`)."""
    cleaned = check_term(term)
    data = rules.to_dict()
    if not any(_same(t, cleaned) for t in data["allow_terms"]):
        data["allow_terms"].append(cleaned)
    data["custom_terms"] = [t for t in data["custom_terms"] if not _same(t["term"], cleaned)]
    return _rebuild(data)


def remove_term(rules: GuildRules, term: str) -> tuple[GuildRules, bool]:
    """Drop a custom or allow term; False when the guild had no such term."""
    cleaned = " ".join(term.split())
    data = rules.to_dict()
    custom = [t for t in data["custom_terms"] if not _same(t["term"], cleaned)]
    allow = [t for t in data["allow_terms"] if not _same(t, cleaned)]
    found = len(custom) != len(data["custom_terms"]) or len(allow) != len(data["allow_terms"])
    data["custom_terms"], data["allow_terms"] = custom, allow
    return _rebuild(data), found


def enforced_guidelines(rules: GuildRules) -> list[tuple[str, str]]:
    """(category, plain words) for each category this guild enforces, for members.

    A category switched `off` or to `allow` is left out; the server's own word list
    shows only when it has terms; personal information is a privacy reminder, said apart.
    """
    out: list[tuple[str, str]] = []
    for category in RULE_CATEGORIES:
        if rules.actions.get(category) in ("off", "allow"):
            continue
        if category == CUSTOM and not any(t.category == CUSTOM for t in rules.custom_terms):
            continue
        out.append((category, guideline_for(category)))
    return out


DEFAULT_SEVERITY = "default"


def set_severity(rules: GuildRules, category: str, severity: str) -> GuildRules:
    """Rate every match of `category` at `severity` (which picks its default action);
    `default` goes back to each term's own severity."""
    _check_category(category)
    value = severity.strip().lower()
    if value not in (*SEVERITIES, DEFAULT_SEVERITY):
        raise ValueError(
            f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)} "
            f"or {DEFAULT_SEVERITY}"
        )
    data = rules.to_dict()
    if value == DEFAULT_SEVERITY:
        data["severity"].pop(category, None)
    else:
        data["severity"][category] = value
    return _rebuild(data)


def set_learned(rules: GuildRules, enabled: bool) -> GuildRules:
    data = rules.to_dict()
    data["learned"] = enabled
    return _rebuild(data)
