"""Per-guild screening settings as plain data.

Guilds store these as JSON, so `from_dict` is the gate: everything is validated with messages
a server admin can act on, and AutoMod's own limits apply (a term is at most 60 characters,
at most 1,000 terms, wildcards only as `cat*`, `*cat`, `*cat*`, never a regex).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from .decision import Severity
from .guidelines import CATEGORIES, LANGUAGES

CUSTOM = "custom"
ACTIONS = ("block", "warn", "review", "remind", "allow", "off")
MAX_TERM_LENGTH = 60
MAX_CUSTOM_TERMS = 1000
MAX_ALLOW_TERMS = 1000
_REGEX_CHARS = set("\\^$[](){}+?|")
_RULE_CATEGORIES = (*CATEGORIES, CUSTOM)
_SETTINGS = ("custom_terms", "allow_terms", "severity", "actions", "learned", "languages")


@dataclass(frozen=True, slots=True)
class CustomTerm:
    term: str
    category: str = CUSTOM
    severity: Severity = Severity.HIGH


@dataclass(frozen=True, slots=True)
class GuildRules:
    custom_terms: tuple[CustomTerm, ...] = ()
    allow_terms: tuple[str, ...] = ()
    severity: dict[str, Severity] = field(default_factory=dict)  # category -> severity
    actions: dict[str, str] = field(default_factory=dict)  # category -> action
    learned: bool = True
    # languages whose guideline files apply; None: every shipped language (the default)
    languages: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GuildRules:
        """Validated rules; raises ValueError saying exactly what is wrong."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("screening rules must be a JSON object")
        unknown = set(data) - {*_SETTINGS}
        if unknown:
            raise ValueError(
                f"unknown screening setting(s): {', '.join(sorted(unknown))}; expected "
                f"{', '.join(_SETTINGS)}"
            )
        raw_terms = data.get("custom_terms", [])
        if not isinstance(raw_terms, list):
            raise ValueError("custom_terms must be a list")
        if len(raw_terms) > MAX_CUSTOM_TERMS:
            raise ValueError(
                f"too many custom terms: {len(raw_terms)} (at most {MAX_CUSTOM_TERMS})"
            )
        terms: list[CustomTerm] = []
        for item in raw_terms:
            if isinstance(item, str):
                item = {"term": item}
            if not isinstance(item, dict) or "term" not in item:
                raise ValueError(f"custom term {item!r} must be a string or {{'term': ...}}")
            category = item.get("category", CUSTOM)
            _check_category(category, "custom term category")
            severity = _parse_severity(item.get("severity", "high"), f"term {item['term']!r}")
            terms.append(CustomTerm(check_term(item["term"]), category, severity))
        raw_allow = data.get("allow_terms", [])
        if not isinstance(raw_allow, list):
            raise ValueError("allow_terms must be a list")
        if len(raw_allow) > MAX_ALLOW_TERMS:
            raise ValueError(f"too many allow terms: {len(raw_allow)} (at most {MAX_ALLOW_TERMS})")
        allow = tuple(check_term(t) for t in raw_allow)
        severities: dict[str, Severity] = {}
        for category, value in _mapping(data, "severity").items():
            _check_category(category, "severity")
            severities[category] = _parse_severity(value, f"category {category!r}")
        actions: dict[str, str] = {}
        for category, value in _mapping(data, "actions").items():
            _check_category(category, "actions")
            if value not in ACTIONS:
                raise ValueError(
                    f"unknown action {value!r} for {category!r}; expected one of "
                    f"{', '.join(ACTIONS)}"
                )
            actions[category] = value
        learned = data.get("learned", True)
        if not isinstance(learned, bool):
            raise ValueError("learned must be true or false")
        languages: tuple[str, ...] | None = None
        if data.get("languages") is not None:
            raw_langs = data["languages"]
            if not isinstance(raw_langs, list) or not all(isinstance(x, str) for x in raw_langs):
                raise ValueError("languages must be a list of language codes")
            bad_langs = sorted(set(raw_langs) - set(LANGUAGES))
            if bad_langs:
                raise ValueError(
                    f"unknown language(s) {', '.join(bad_langs)}; expected some of "
                    f"{', '.join(LANGUAGES)}"
                )
            languages = tuple(x for x in LANGUAGES if x in raw_langs)  # one order: one hash
        return cls(tuple(terms), allow, severities, actions, learned, languages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "custom_terms": [
                {"term": t.term, "category": t.category, "severity": t.severity.name.lower()}
                for t in self.custom_terms
            ],
            "allow_terms": list(self.allow_terms),
            "severity": {k: v.name.lower() for k, v in sorted(self.severity.items())},
            "actions": dict(sorted(self.actions.items())),
            "learned": self.learned,
            **({"languages": list(self.languages)} if self.languages is not None else {}),
        }

    @property
    def enabled_languages(self) -> tuple[str, ...]:
        """The shipped languages screened here (every one unless the guild switched some off)."""
        return LANGUAGES if self.languages is None else self.languages

    def with_language(self, code: str, enabled: bool) -> GuildRules:
        """These rules with one shipped language switched on or off; ValueError if unknown."""
        if code not in LANGUAGES:
            raise ValueError(f"unknown language {code!r}; expected one of {', '.join(LANGUAGES)}")
        now = set(self.enabled_languages)
        now = now | {code} if enabled else now - {code}
        kept = tuple(x for x in LANGUAGES if x in now)
        return replace(self, languages=None if kept == LANGUAGES else kept)

    def fingerprint(self) -> str:
        """Stable hash of the settings: compiled matchers are cached under it."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def check_term(term: object) -> str:
    """A custom or allow term as AutoMod would take it, or a ValueError saying why not."""
    if not isinstance(term, str):
        raise ValueError(f"term {term!r} must be text")
    cleaned = " ".join(term.split())
    if not cleaned.strip("*").strip():
        raise ValueError(f"term {term!r} is empty")
    if len(cleaned) > MAX_TERM_LENGTH:
        raise ValueError(
            f"term {cleaned[:20]!r}... is {len(cleaned)} characters (at most {MAX_TERM_LENGTH})"
        )
    if "*" in cleaned.strip("*"):
        raise ValueError(
            f"term {cleaned!r}: '*' is a wildcard only at the start or end (cat*, *cat, *cat*)"
        )
    bad = _REGEX_CHARS & set(cleaned)
    if bad:
        raise ValueError(
            f"term {cleaned!r} contains {''.join(sorted(bad))!r}: terms are plain words with "
            "optional * wildcards, not regular expressions"
        )
    return cleaned


def _check_category(category: object, where: str) -> None:
    if category not in _RULE_CATEGORIES:
        raise ValueError(
            f"unknown category {category!r} in {where}; expected one of "
            f"{', '.join(_RULE_CATEGORIES)}"
        )


def _parse_severity(value: object, where: str) -> Severity:
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return Severity.parse(value)
        except (KeyError, ValueError):
            pass
    raise ValueError(
        f"unknown severity {value!r} for {where}; expected none, low, medium, high or critical"
    )


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object mapping categories to values")
    return value
