"""Rows as the rest of the code sees them: frozen, typed, backend-independent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from promptwarden.screening.decision import Severity, Verdict

WatchKind = Literal["channel", "category"]
IncidentStatus = Literal["open", "upheld", "dismissed"]
# What happened when the bot tried one action: the HTTP failure kinds are told apart because
# moderators fix them differently (grant a permission, nothing to do, wait).
ActionOutcome = Literal["done", "forbidden", "not_found", "rate_limited", "failed", "skipped"]
ACTION_OUTCOMES: tuple[str, ...] = get_args(ActionOutcome)
# Outcomes worth another try later; every other outcome settles its action for good.
RETRYABLE_OUTCOMES: tuple[ActionOutcome, ...] = ("failed", "rate_limited")
WATCH_KINDS: tuple[str, ...] = get_args(WatchKind)
INCIDENT_STATUSES: tuple[str, ...] = get_args(IncidentStatus)
# What raised an incident: the watcher's screening, Discord's AutoMod, a member's report.
IncidentSource = Literal["screening", "automod", "report"]
INCIDENT_SOURCES: tuple[str, ...] = get_args(IncidentSource)
AppealStatus = Literal["open", "accepted", "rejected"]
APPEAL_STATUSES: tuple[str, ...] = get_args(AppealStatus)

# An appeal's reason, as the form allows it.
APPEAL_REASON_LIMIT = 1000
# What an erased prompt or appeal reason reads afterwards.
ERASED_TEXT = "[erased at the member's request]"
# Reminder kinds that are rate limits a member spends (exports, reports), not reminders:
# erasure keeps their times (no words in them), or erasing would reset the limit.
EXPORT_KIND = "export"
REPORT_KIND = "report"  # also the press naming a reporter and the action holding the reason
RATE_LIMIT_KINDS: tuple[str, ...] = (EXPORT_KIND, REPORT_KIND)
# The outcome row recorded with a new incident whose member is to be warned: "done" when
# its warning took a slot of the DM budget, "skipped" when the budget was spent. A resume
# after a stop honours it, so a warning never takes a second slot. Bookkeeping, not an
# action: lists of what was done to an incident leave it out.
DM_SLOT = "dm_slot"

# Stored prompts are excerpts: enough for a moderator to judge, never a full archive.
EXCERPT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class WatchedChannel:
    guild_id: int
    channel_id: int
    kind: WatchKind  # a category watches every channel, thread and forum post inside it


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """Every setting of a guild as saved (None: never set), read together."""

    screening_rules: dict[str, Any] | None
    enforcement: dict[str, Any] | None
    privacy: dict[str, Any] | None
    modlog_channel_id: int | None
    watched: tuple[WatchedChannel, ...]
    generator_bots: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    guild_id: int
    channel_id: int
    message_id: int | None
    user_id: int
    prompt_excerpt: str
    categories: tuple[str, ...]
    severity: Severity
    verdict: Verdict
    matches: tuple[dict[str, Any], ...]  # `Match.to_dict()` forms
    action: str
    status: IncidentStatus
    created_at: datetime  # aware, UTC
    job_key: str | None = None  # identity of the generation job, see promptwarden.dedupe
    # Where the incident's mod-log entry is, once posted: later edits find it here.
    modlog_channel_id: int | None = None
    modlog_message_id: int | None = None
    source: str = "screening"  # one of INCIDENT_SOURCES


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One attempt at one action of an incident (delete, DM, timeout...)."""

    incident_id: int
    action: str
    outcome: ActionOutcome
    detail: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ModlogPress:
    incident_id: int
    moderator_id: int
    action: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StrikeRecord:
    id: int
    guild_id: int
    user_id: int
    incident_id: int | None
    points: int
    created_at: datetime
    revoked_at: datetime | None
    # The member's active points just before and after this strike, stored with it: the
    # threshold it crossed (and the timeout that earned) is read from here.
    points_before: int = 0
    points_after: int = 0


@dataclass(frozen=True, slots=True)
class Appeal:
    id: int
    guild_id: int
    incident_id: int
    user_id: int
    reason: str
    status: AppealStatus
    moderator_id: int | None
    created_at: datetime
    decided_at: datetime | None
    # The appeal's own mod-log entry (with Accept and Reject), once posted.
    modlog_channel_id: int | None = None
    modlog_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class AppealDecision:
    appeal: Appeal
    strike_revoked: bool  # accepting removed an active strike of the incident


@dataclass(frozen=True, slots=True)
class ReminderRecord:
    """When a person last got a reminder of one kind in one guild."""

    guild_id: int
    user_id: int
    kind: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class MemberPreferences:
    """A person's own choices; they hold for every guild the bot shares with them."""

    user_id: int
    reminders_enabled: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MemberData:
    """Everything stored about one person, in every guild (for `/privacy export`)."""

    user_id: int
    preferences: MemberPreferences | None
    incidents: tuple[Incident, ...]
    actions: tuple[tuple[int, ActionRecord], ...]  # (guild id, action of their incident)
    strikes: tuple[StrikeRecord, ...]
    appeals: tuple[Appeal, ...]
    reminders: tuple[ReminderRecord, ...]


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What `/privacy delete` removed or redacted."""

    preferences: int
    reminders: int
    incidents_redacted: int
    appeals_redacted: int


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One step's outcome, written behind with others in one transaction
    (`Storage.add_outcomes`). `modlog` is where the step's mod-log entry went, stored on
    the incident with it."""

    guild_id: int
    incident_id: int
    action: str
    outcome: ActionOutcome
    detail: str
    at: datetime
    modlog: tuple[int, int] | None = None  # (channel id, message id)


@dataclass(frozen=True, slots=True)
class IncidentRequest:
    """One incident for `Storage.record_incidents_with`, with what is decided already."""

    fields: Mapping[str, Any]  # `record_incident`'s arguments
    strike_points: int = 0
    window: timedelta | None = None  # the strike policy's: counts the member's active points
    settled: Mapping[str, str] | None = None  # actions skipped from the start, with detail
    dm_limit: int | None = None  # takes a slot of the guild's DM budget for its warning


@dataclass(frozen=True, slots=True)
class RecordedIncident:
    """What `Storage.record_incident_with` wrote, or found already written."""

    incident: Incident
    created: bool
    strike: tuple[int, int] | None  # the member's active points (before, after) its strike
    points: int | None  # the member's active points once recorded (when asked for)
    dm_allowed: bool | None = None  # its warning's slot in the DM budget (when asked for)
