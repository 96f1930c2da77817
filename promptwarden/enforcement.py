"""Enforcement without Discord: who answers for a message, whether it is in scope, what is
stored about it, and each guild's enforcement settings.

The cog only translates between discord.py objects and these plain values, so every rule
here is tested without a gateway and behaves the same on every backend and process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from promptwarden.dedupe import JobKeyer, job_key
from promptwarden.policy import ActionPlan, StrikePolicy, plan_actions
from promptwarden.privacy import PII_SOURCE_PREFIX, redact
from promptwarden.screening.decision import Decision, Severity, Verdict
from promptwarden.screening.extract import ExtractedPrompt
from promptwarden.storage import EXCERPT_LIMIT, Incident

if TYPE_CHECKING:
    from promptwarden.guild_states import GuildState

log = logging.getLogger(__name__)

DEFAULT_CATCHUP_WINDOW = timedelta(hours=24)
MAX_CATCHUP_WINDOW = timedelta(days=14)

# What each category means, in the words of the guidelines, for warnings and the mod-log.
GUIDELINES: Mapping[str, str] = {
    "sexual": "No adult content or nudity: content must stay PG-13.",
    "minors": "No sexualisation of minors, ever.",
    "violence": "No gore: no detached body parts, blood-soaked violence or severed limbs.",
    "self_harm": "No depictions or promotion of self-harm or suicide.",
    "hate": "No hate: no slurs, racist or homophobic content, or hate symbols.",
    "drugs": "No content glorifying hard drugs.",
    "profanity": "Keep prompts free of crude or aimed profanity.",
    "real_person": (
        "No imagery of real people that harasses, defames or deceives "
        "(e.g. fake arrests of politicians)."
    ),
    "personal_info": "Keep personal information out of public prompts.",
    "custom": "This server's own list of banned words.",
    "model": "Prompts likely to produce content outside the guidelines.",
}


def guideline_for(category: str) -> str:
    return GUIDELINES.get(category, f"The server's rules on {category.replace('_', ' ')}.")


# ---------------------------------------------------------------- per-guild settings


def _ids(value: object, name: str) -> frozenset[int]:
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f"{name} must be a list of ids")
    out = set()
    for item in value:
        try:
            out.add(int(item))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {item!r} is not an id") from None
    return frozenset(out)


def _flag(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


@dataclass(frozen=True, slots=True)
class EnforcementConfig:
    """A guild's enforcement settings, stored as JSON by storage."""

    exempt_role_ids: frozenset[int] = frozenset()
    exempt_channel_ids: frozenset[int] = frozenset()
    moderators_exempt: bool = True  # members with Manage Messages in the channel
    strike_policy: StrikePolicy = field(default_factory=StrikePolicy)
    catchup_window: timedelta = DEFAULT_CATCHUP_WINDOW
    dm_failure_notice: bool = True  # say so in the channel when a warning DM fails
    delete_personal_info: bool = False  # delete prompts with personal information too

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.catchup_window <= MAX_CATCHUP_WINDOW:
            raise ValueError("catchup_hours must be between 0 and 336 (14 days)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "exempt_role_ids": sorted(self.exempt_role_ids),
            "exempt_channel_ids": sorted(self.exempt_channel_ids),
            "moderators_exempt": self.moderators_exempt,
            "strike_policy": self.strike_policy.to_dict(),
            "catchup_hours": self.catchup_window.total_seconds() / 3600,
            "dm_failure_notice": self.dm_failure_notice,
            "delete_personal_info": self.delete_personal_info,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnforcementConfig:
        """Validated settings; ValueError names the setting at fault."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("enforcement settings must be a JSON object")
        known = set(cls().to_dict())
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown enforcement setting(s): {', '.join(sorted(unknown))}; expected "
                f"{', '.join(sorted(known))}"
            )
        try:
            hours = float(data.get("catchup_hours", DEFAULT_CATCHUP_WINDOW.total_seconds() / 3600))
        except (TypeError, ValueError):
            raise ValueError("catchup_hours must be a number of hours") from None
        policy = data.get("strike_policy")
        if policy is not None and not isinstance(policy, Mapping):
            raise ValueError("strike_policy must be an object")
        return cls(
            exempt_role_ids=_ids(data.get("exempt_role_ids", []), "exempt_role_ids"),
            exempt_channel_ids=_ids(data.get("exempt_channel_ids", []), "exempt_channel_ids"),
            moderators_exempt=_flag(data, "moderators_exempt", True),
            strike_policy=StrikePolicy.from_dict(policy or {}),
            catchup_window=timedelta(hours=hours),
            dm_failure_notice=_flag(data, "dm_failure_notice", True),
            delete_personal_info=_flag(data, "delete_personal_info", False),
        )


# ---------------------------------------------------------------- one message


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the watcher knows about a message, without Discord types."""

    guild_id: int
    channel_id: int
    message_id: int
    author_id: int
    author_is_bot: bool
    content: str
    created_at: datetime
    channel_chain: tuple[int | None, ...] = ()  # channel, parent, category
    webhook_id: int | None = None


def should_screen(facts: MessageFacts, state: GuildState, own_id: int) -> bool:
    """In a watched channel, from a person or a generator bot; never our own messages,
    webhooks or other bots (AutoMod skips bots entirely; we read only generator bots)."""
    if facts.author_id == own_id or facts.webhook_id is not None or not facts.content:
        return False
    if facts.author_is_bot and not state.is_generator(facts.author_id):
        return False
    return state.in_scope(facts.channel_chain or (facts.channel_id,))


def responsible_user(facts: MessageFacts, state: GuildState, prompt: ExtractedPrompt) -> int | None:
    """The author, or for a generator bot's job message the requester it mentions (None
    when a bot message names nobody: an info or error message, nothing to act on)."""
    if facts.author_is_bot:
        return prompt.requester_id if state.is_generator(facts.author_id) else None
    return facts.author_id


def is_exempt(role_ids: Iterable[int], is_moderator: bool, config: EnforcementConfig) -> bool:
    if is_moderator and config.moderators_exempt:
        return True
    return bool(set(role_ids) & config.exempt_role_ids)


def job_identity(
    keyer: JobKeyer, guild_id: int, requester_id: int, prompt_text: str, when: datetime
) -> str:
    """The stored job key: one requester's prompt on one (UTC) day.

    A job's waiting, progress and result messages, and the same prompt re-rolled that
    day, share it, so they make one incident; the same prompt tomorrow counts again.
    Keyed with the installation's secret: the stored key does not confirm a guess."""
    _, requester, digest = job_key(keyer, guild_id, requester_id, prompt_text)
    return f"{requester}:{digest}:{when.date().isoformat()}"


# ---------------------------------------------------------------- what is stored


def matched_words(matches: Sequence[Mapping[str, Any]], limit: int = 10) -> list[str]:
    """The words that fired, heaviest first for the learned tier, never PII values."""
    ordered = sorted(
        (m for m in matches if not str(m.get("source", "")).startswith(PII_SOURCE_PREFIX)),
        key=lambda m: -abs(float(m.get("weight") or 0.0)),
    )
    words: list[str] = []
    for m in ordered:
        word = str(m.get("text") or m.get("term") or "").strip()
        if word and word.casefold() not in (w.casefold() for w in words):
            words.append(word)
        if len(words) >= limit:
            break
    return words


def action_name(plan: ActionPlan) -> str:
    """The stored action: the verdict, plus `+delete` when a remind also deletes."""
    name = plan.verdict.value
    if plan.verdict is Verdict.REMIND and plan.delete:
        name += "+delete"
    return name


@dataclass(frozen=True, slots=True)
class IncidentDraft:
    """An incident as it will be written, before any Discord call is made."""

    guild_id: int
    channel_id: int
    message_id: int | None  # None: a message AutoMod blocked, which never existed
    user_id: int
    prompt_excerpt: str
    categories: tuple[str, ...]
    severity: Severity
    verdict: Verdict
    matches: tuple[dict[str, Any], ...]
    action: str
    created_at: datetime
    job_key: str | None
    source: str = "screening"  # what raised it: screening, automod or report

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "user_id": self.user_id,
            "prompt_excerpt": self.prompt_excerpt,
            "categories": list(self.categories),
            "severity": self.severity,
            "verdict": self.verdict,
            "matches": list(self.matches),
            "action": self.action,
            "created_at": self.created_at,
            "job_key": self.job_key,
            "source": self.source,
        }


def build_incident(
    facts: MessageFacts,
    decision: Decision,
    plan: ActionPlan,
    *,
    user_id: int,
    prompt: ExtractedPrompt,
    keyer: JobKeyer,
) -> IncidentDraft:
    excerpt, stored = redact(facts.content, decision.matches)
    if len(excerpt) > EXCERPT_LIMIT:
        excerpt = excerpt[: EXCERPT_LIMIT - 1] + "…"
    categories = decision.categories or tuple(dict.fromkeys(m.category for m in decision.matches))
    return IncidentDraft(
        guild_id=facts.guild_id,
        channel_id=facts.channel_id,
        message_id=facts.message_id,
        user_id=user_id,
        prompt_excerpt=excerpt,
        categories=categories,
        severity=decision.severity,
        verdict=decision.verdict,
        matches=tuple(stored),
        action=action_name(plan),
        created_at=facts.created_at,
        job_key=job_identity(keyer, facts.guild_id, user_id, prompt.text, facts.created_at),
    )


# ---------------------------------------------------------------- resuming after a stop


def planned_action_names(plan: ActionPlan) -> tuple[str, ...]:
    """The actions a plan records an outcome for (timeouts follow from the strike)."""
    names = (
        ("delete", plan.delete),
        ("strike", plan.strike_points > 0),
        ("dm_warning", plan.warn_member),
        ("dm_privacy", plan.privacy_notice),
        ("modlog", plan.modlog),
    )
    return tuple(name for name, planned in names if planned)


def incident_plan(incident: Incident, config: EnforcementConfig) -> ActionPlan:
    """The plan of a stored incident, rebuilt from its verdict and severity under the
    guild's current settings; a reminder deletes only when it was recorded as deleting."""
    decision = Decision(
        prompt=incident.prompt_excerpt,
        verdict=incident.verdict,
        severity=incident.severity,
        categories=incident.categories,
    )
    return plan_actions(
        decision,
        config.strike_policy,
        delete_personal_info=incident.action.endswith("+delete"),
    )


def planned_by_kind(config: EnforcementConfig) -> dict[str, tuple[str, ...]]:
    """Stored action name -> the actions planned for it: what `list_unsettled_incidents`
    checks for a final outcome."""
    out: dict[str, tuple[str, ...]] = {}
    for verdict in (Verdict.BLOCK, Verdict.WARN, Verdict.REVIEW, Verdict.REMIND):
        for delete in (False, True) if verdict is Verdict.REMIND else (False,):
            decision = Decision(prompt="", verdict=verdict, severity=Severity.HIGH, categories=())
            plan = plan_actions(decision, config.strike_policy, delete_personal_info=delete)
            names = planned_action_names(plan)
            if names:
                out[action_name(plan)] = names
    return out
