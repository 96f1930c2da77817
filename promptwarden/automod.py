"""Mirror a guild's most severe terms into Discord AutoMod keyword rules, within its limits.

Discord's AutoMod blocks a member's message before anyone sees it, which deleting after the
fact cannot do; it never checks bots, so screening still covers the generator's echoed
prompts. AutoMod's lists are small, so only the critical and high terms go there, the most
severe first, and whatever does not fit is reported rather than silently dropped.

This module knows no discord.py: it turns guideline terms and a guild's rules into plain
rule payloads (`RulePlan`), says which of a guild's existing rules are PromptWarden's, and
turns AutoMod's hits into incidents like any other (source `automod`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from promptwarden.dedupe import JobKeyer
from promptwarden.enforcement import IncidentDraft, action_name
from promptwarden.policy import ActionPlan
from promptwarden.privacy import redact
from promptwarden.screening.decision import Decision, Match, Severity, Verdict
from promptwarden.screening.guidelines import Guidelines
from promptwarden.screening.matcher import ALLOW
from promptwarden.screening.rules import CUSTOM, GuildRules
from promptwarden.storage.models import EXCERPT_LIMIT

# Discord's limits for keyword rules (checked 2026).
MAX_KEYWORD_RULES = 6  # per guild, PromptWarden's and the guild's own together
MAX_KEYWORDS = 1000  # per rule
MAX_KEYWORD_LENGTH = 60
MAX_REGEXES = 10  # per rule
MAX_REGEX_LENGTH = 260
MAX_ALLOW = 100  # per rule
MAX_BLOCK_MESSAGE = 150
MAX_EXEMPT_ROLES = 20

# Discord's enum values, as the REST API spells them.
TRIGGER_KEYWORD = 1
EVENT_MESSAGE_SEND = 1
ACTION_BLOCK = 1
ACTION_ALERT = 2

# Every rule PromptWarden owns is named with this prefix (and its id is stored).
RULE_PREFIX = "PromptWarden"
BLOCK_MESSAGE = (
    "Blocked by this server's prompt guidelines before anyone saw it. "
    "Run /guidelines to see what is allowed here."
)
# Severities worth blocking before anyone sees them; lower ones are left to screening.
MIRRORED = (Severity.CRITICAL, Severity.HIGH)
# Actions a guild can set for a category that rule out blocking it outright.
NOT_BLOCKED_ACTIONS = frozenset({"off", "allow", "review", "remind"})
_ALLOWED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 '-.*&")

assert len(BLOCK_MESSAGE) <= MAX_BLOCK_MESSAGE


@dataclass(frozen=True, slots=True)
class MirroredTerm:
    """A term as AutoMod will hold it, with what it stands for in PromptWarden."""

    keyword: str
    category: str
    severity: Severity
    custom: bool  # the guild's own term, not a shipped one


@dataclass(frozen=True, slots=True)
class RulePlan:
    """One keyword rule as PromptWarden wants it."""

    name: str
    keywords: tuple[str, ...]
    allow_list: tuple[str, ...]
    regex_patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """The rules to hold, and what was left out and why (for the admin's report)."""

    rules: tuple[RulePlan, ...]
    terms: tuple[MirroredTerm, ...]  # mirrored, in rule order
    left_out: tuple[MirroredTerm, ...] = ()  # no room in the rules the guild has free
    allow_left_out: tuple[str, ...] = ()  # beyond 100 allow-list entries
    unexpressible: tuple[str, ...] = ()  # forms AutoMod cannot match as screening does
    slots: int = MAX_KEYWORD_RULES

    def fingerprint(self, extra: Mapping[str, Any] | None = None) -> str:
        """Stable hash of what a sync would send: an unchanged guild costs no REST call."""
        blob = json.dumps(
            {
                "rules": [[r.name, r.keywords, r.allow_list, r.regex_patterns] for r in self.rules],
                "extra": dict(extra or {}),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def term_for(self, keyword: str) -> MirroredTerm | None:
        """The mirrored term behind a keyword AutoMod reports as matched."""
        wanted = keyword.casefold()
        return next((t for t in self.terms if t.keyword == wanted), None)


def automod_keyword(term: str) -> str | None:
    """The term as an AutoMod keyword, or None when AutoMod cannot express it.

    AutoMod matches a bare keyword as whole words and `*` at either end as a wildcard, as
    screening does; it is case-insensitive, so keywords are lower-cased. Terms with other
    characters (screening reads them through normalization AutoMod does not do) are left out.
    """
    keyword = " ".join(term.casefold().split())
    core = keyword.strip("*")
    if not core or "*" in core or len(keyword) > MAX_KEYWORD_LENGTH:
        return None
    if not set(keyword) <= _ALLOWED_CHARS:
        return None
    return keyword


def mirrored_terms(
    guidelines: Guidelines, rules: GuildRules
) -> tuple[list[MirroredTerm], list[str]]:
    """The guild's critical and high terms, most severe first (the guild's own first at the
    same severity), each once; and the terms AutoMod cannot express.

    A category the guild turned off, allowed, or sent only to review is not blocked
    natively either; a category's severity override applies as it does in screening.
    """
    candidates: list[tuple[str, str, Severity, bool]] = [
        (t.term, t.category, t.severity, True) for t in rules.custom_terms
    ]
    candidates += [
        (t.term, t.category, t.severity, False)
        for t in guidelines.terms
        if t.category != ALLOW and t.severity > Severity.NONE
    ]
    allowed = {a.casefold() for a in rules.allow_terms}
    chosen: dict[str, MirroredTerm] = {}
    unexpressible: list[str] = []
    for term, category, severity, custom in candidates:
        if rules.actions.get(category) in NOT_BLOCKED_ACTIONS:
            continue
        severity = rules.severity.get(category, severity) if category != CUSTOM else severity
        if severity not in MIRRORED or term.casefold() in allowed:
            continue
        keyword = automod_keyword(term)
        if keyword is None:
            unexpressible.append(term)
            continue
        if keyword not in chosen:
            chosen[keyword] = MirroredTerm(keyword, category, severity, custom)
    ordered = sorted(chosen.values(), key=lambda t: (-t.severity, not t.custom))
    return ordered, unexpressible


def allow_list(guidelines: Guidelines, rules: GuildRules) -> list[str]:
    """The guild's allowed terms first, then the shipped benign phrases, each once."""
    entries: dict[str, None] = {}
    for term in (*rules.allow_terms, *(t.term for t in guidelines.by_category(ALLOW))):
        keyword = automod_keyword(term)
        if keyword is not None:
            entries.setdefault(keyword, None)
    return list(entries)


def plan_sync(guidelines: Guidelines, rules: GuildRules, *, slots: int) -> SyncPlan:
    """Pack the guild's terms into at most `slots` keyword rules (the guild's free ones)."""
    slots = max(0, min(slots, MAX_KEYWORD_RULES))
    terms, unexpressible = mirrored_terms(guidelines, rules)
    allow = allow_list(guidelines, rules)
    kept_allow = tuple(allow[:MAX_ALLOW])
    capacity = slots * MAX_KEYWORDS
    fitted, left_out = terms[:capacity], terms[capacity:]
    chunks = [fitted[i : i + MAX_KEYWORDS] for i in range(0, len(fitted), MAX_KEYWORDS)]
    plans = tuple(
        RulePlan(
            name=f"{RULE_PREFIX} guidelines {n}",
            keywords=tuple(t.keyword for t in chunk),
            allow_list=kept_allow,
        )
        for n, chunk in enumerate(chunks, 1)
    )
    return SyncPlan(
        rules=plans,
        terms=tuple(fitted),
        left_out=tuple(left_out),
        allow_left_out=tuple(allow[MAX_ALLOW:]),
        unexpressible=tuple(unexpressible),
        slots=slots,
    )


def is_own_rule(rule: Mapping[str, Any], *, bot_id: int, stored_ids: Iterable[int] = ()) -> bool:
    """PromptWarden's rule: one whose id it stored, or one it created under its prefix.

    Never a rule the guild's admins made, even one they named alike.
    """
    if int(rule["id"]) in set(stored_ids):
        return True
    return int(rule.get("creator_id") or 0) == bot_id and str(rule.get("name", "")).startswith(
        RULE_PREFIX
    )


def rule_payload(
    plan: RulePlan,
    *,
    alert_channel_id: int | None,
    exempt_role_ids: Sequence[int],
) -> dict[str, Any]:
    """The REST body of one rule: block with a message pointing to /guidelines, alert the
    mod-log when there is one, `exempt_role_ids` exempt (the first 20: Discord's most)."""
    actions: list[dict[str, Any]] = [
        {"type": ACTION_BLOCK, "metadata": {"custom_message": BLOCK_MESSAGE}}
    ]
    if alert_channel_id is not None:
        actions.append({"type": ACTION_ALERT, "metadata": {"channel_id": str(alert_channel_id)}})
    return {
        "name": plan.name,
        "event_type": EVENT_MESSAGE_SEND,
        "trigger_type": TRIGGER_KEYWORD,
        "trigger_metadata": {
            "keyword_filter": list(plan.keywords),
            "regex_patterns": list(plan.regex_patterns),
            "allow_list": list(plan.allow_list),
        },
        "actions": actions,
        "enabled": True,
        "exempt_roles": [str(r) for r in list(exempt_role_ids)[:MAX_EXEMPT_ROLES]],
        "exempt_channels": [],
    }


@dataclass(frozen=True, slots=True)
class SyncState:
    """What is stored per guild (as JSON in the meta table): the rules owned, and when."""

    enabled: bool = False
    rule_ids: tuple[int, ...] = ()
    synced_at: str | None = None  # ISO time of the last successful sync
    fingerprint: str | None = None
    mirrored: int = 0
    left_out: int = 0
    error: str | None = None  # why the last attempt failed, for /automod status

    def to_json(self) -> str:
        return json.dumps(
            {
                "enabled": self.enabled,
                "rule_ids": [str(i) for i in self.rule_ids],
                "synced_at": self.synced_at,
                "fingerprint": self.fingerprint,
                "mirrored": self.mirrored,
                "left_out": self.left_out,
                "error": self.error,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | None) -> SyncState:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(
                enabled=bool(data.get("enabled")),
                rule_ids=tuple(int(i) for i in data.get("rule_ids", [])),
                synced_at=data.get("synced_at"),
                fingerprint=data.get("fingerprint"),
                mirrored=int(data.get("mirrored", 0)),
                left_out=int(data.get("left_out", 0)),
                error=data.get("error"),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()  # unreadable: treated as never synced


def state_key(guild_id: int) -> str:
    """The meta key of a guild's AutoMod state."""
    return f"automod:{guild_id}"


# ---------------------------------------------------------------- AutoMod's hits


AUTOMOD_SOURCE = "automod"
# The excerpt of a hit whose text Discord did not share (no Message Content intent).
NO_CONTENT = "[text not shared by Discord; matched keyword only]"
# Repeated blocks of the same text by the same member within this many seconds are one
# incident: a member retrying a blocked message is not struck for every attempt.
BLOCKED_REPEAT_SECONDS = 60


@dataclass(frozen=True, slots=True)
class AutoModHit:
    """One AutoMod execution as Discord reported it, without discord.py types."""

    guild_id: int
    rule_id: int
    channel_id: int
    user_id: int
    message_id: int | None  # None: the message was blocked and never existed
    content: str  # empty without the Message Content intent
    keyword: str
    matched_content: str
    at: datetime

    @property
    def blocked(self) -> bool:
        return self.message_id is None


def hit_decision(hit: AutoModHit, term: MirroredTerm | None, rules: GuildRules) -> Decision:
    """What the hit means in PromptWarden's terms.

    A keyword of PromptWarden's own rules stands for its term (category, severity, and
    the guild's action for that category); a hit of a rule the guild made itself goes to
    the moderators for review and never strikes anyone.
    """
    text = hit.content or ""
    matched = hit.matched_content or hit.keyword.strip("*")
    start = text.casefold().find(matched.casefold()) if matched and text else -1
    span = (start, start + len(matched)) if start >= 0 else (0, 0)
    if term is None:
        category, severity, verdict = CUSTOM, Severity.MEDIUM, Verdict.REVIEW
    else:
        category, severity = term.category, term.severity
        action = rules.actions.get(category)
        verdict = Verdict.WARN if action == "warn" else Verdict.BLOCK
    match = Match(
        category=category,
        term=hit.keyword,
        start=span[0],
        end=span[1],
        text=text[span[0] : span[1]] if start >= 0 else matched,
        source=f"{AUTOMOD_SOURCE}:{hit.rule_id}",
        severity=severity,
    )
    return Decision(
        prompt=text, verdict=verdict, severity=severity, categories=(category,), matches=(match,)
    )


def hit_job_key(keyer: JobKeyer, hit: AutoModHit) -> str | None:
    """The identity of a blocked message (it has no id): the member, the rule, the text and
    the minute. Keyed with the installation's secret, like screening's job keys. A hit on
    a message that exists is identified by its id, as screening's incident for it is."""
    if not hit.blocked:
        return None
    window = int(hit.at.timestamp()) // BLOCKED_REPEAT_SECONDS
    digest = keyer.digest(f"{hit.rule_id}\n{hit.channel_id}\n{hit.keyword}\n{hit.content}")
    return f"{AUTOMOD_SOURCE}:{hit.user_id}:{digest}:{window}"


def hit_draft(
    hit: AutoModHit, decision: Decision, plan: ActionPlan, keyer: JobKeyer
) -> IncidentDraft:
    """The incident to record for a hit, with source `automod`."""
    if hit.content:
        excerpt, stored = redact(hit.content, decision.matches)
    else:
        excerpt, stored = NO_CONTENT, [m.to_dict() for m in decision.matches]
    if len(excerpt) > EXCERPT_LIMIT:
        excerpt = excerpt[: EXCERPT_LIMIT - 1] + "…"
    return IncidentDraft(
        guild_id=hit.guild_id,
        channel_id=hit.channel_id,
        message_id=hit.message_id,
        user_id=hit.user_id,
        prompt_excerpt=excerpt,
        categories=decision.categories,
        severity=decision.severity,
        verdict=decision.verdict,
        matches=tuple(stored),
        action=action_name(plan),
        created_at=hit.at,
        job_key=hit_job_key(keyer, hit),
        source=AUTOMOD_SOURCE,
    )
