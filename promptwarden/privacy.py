"""Privacy rules without Discord: a guild's privacy settings, what reminders say, and what
a person's data export contains.

Kept pure so the limits (one reminder per kind per interval, N DMs a minute, retention)
mean the same in every backend and every process; storage only applies them atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from promptwarden.screening.decision import Match
from promptwarden.storage.models import Appeal, Incident, MemberData, StrikeRecord

DEFAULT_REMINDER_INTERVAL = timedelta(days=30)
DEFAULT_RETENTION = timedelta(days=180)
# Discord does not publish its DM spam thresholds; 10 a minute per guild stays far below
# the global rate limit and reads as a bot answering people, not broadcasting.
DEFAULT_DM_PER_MINUTE = 10
MAX_DM_PER_MINUTE = 60
MAX_INTERVAL_DAYS = 365
MAX_RETENTION_DAYS = 3650
REMINDER_TEXT_LIMIT = 1500  # leaves room in a 2,000-character DM for the fixed lines
URL_LIMIT = 300

PRIVATE_MODE = "private_mode"
PERSONAL_INFO_PREFIX = "personal_info:"

DEFAULT_REMINDER = (
    "Prompts and images posted in {guild}'s public channels are visible to everyone there, "
    "and the images may also appear in the generator's public gallery. To keep your work "
    "private, use stealth or private mode if your plan has it (Midjourney: `/stealth` or "
    "`--stealth`), or send your prompts to the generator bot in a direct message."
)


def personal_info_kind(kind: str) -> str:
    """The reminder kind of a personal-information warning, one per kind of data found."""
    return f"{PERSONAL_INFO_PREFIX}{kind}"


def _days(data: Mapping[str, Any], name: str, default: timedelta, maximum: int) -> timedelta:
    value = data.get(name, default.days)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of days")
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must be between 1 and {maximum} days")
    return timedelta(days=value)


def check_reminder_text(text: str) -> str:
    """The admin's reminder text, trimmed; ValueError says what is wrong with it."""
    text = text.strip()
    if not text:
        raise ValueError("the reminder text cannot be empty")
    if len(text) > REMINDER_TEXT_LIMIT:
        raise ValueError(
            f"the reminder text is {len(text)} characters; at most {REMINDER_TEXT_LIMIT}"
        )
    return text


def check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise ValueError("the guidelines link must be a web address starting with https://")
    if len(url) > URL_LIMIT:
        raise ValueError(f"the guidelines link is at most {URL_LIMIT} characters")
    return url


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """A guild's privacy settings, stored as JSON by storage."""

    reminders_enabled: bool = True
    reminder_text: str | None = None  # None: the default text
    guidelines_url: str | None = None
    reminder_interval: timedelta = DEFAULT_REMINDER_INTERVAL
    retention: timedelta = DEFAULT_RETENTION
    dm_per_minute: int = DEFAULT_DM_PER_MINUTE

    def to_dict(self) -> dict[str, Any]:
        return {
            "reminders_enabled": self.reminders_enabled,
            "reminder_text": self.reminder_text,
            "guidelines_url": self.guidelines_url,
            "reminder_interval_days": self.reminder_interval.days,
            "retention_days": self.retention.days,
            "dm_per_minute": self.dm_per_minute,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PrivacyConfig:
        """Validated settings; ValueError names the setting at fault."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("privacy settings must be a JSON object")
        unknown = set(data) - set(cls().to_dict())
        if unknown:
            raise ValueError(f"unknown privacy setting(s): {', '.join(sorted(unknown))}")
        enabled = data.get("reminders_enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError("reminders_enabled must be true or false")
        text = data.get("reminder_text")
        url = data.get("guidelines_url")
        per_minute = data.get("dm_per_minute", DEFAULT_DM_PER_MINUTE)
        if isinstance(per_minute, bool) or not isinstance(per_minute, int):
            raise ValueError("dm_per_minute must be a whole number")
        if not 1 <= per_minute <= MAX_DM_PER_MINUTE:
            raise ValueError(f"dm_per_minute must be between 1 and {MAX_DM_PER_MINUTE}")
        return cls(
            reminders_enabled=enabled,
            reminder_text=None if text is None else check_reminder_text(str(text)),
            guidelines_url=None if url is None else check_url(str(url)),
            reminder_interval=_days(
                data, "reminder_interval_days", DEFAULT_REMINDER_INTERVAL, MAX_INTERVAL_DAYS
            ),
            retention=_days(data, "retention_days", DEFAULT_RETENTION, MAX_RETENTION_DAYS),
            dm_per_minute=per_minute,
        )


def reminder_message(
    config: PrivacyConfig, guild_name: str, *, rules_channel_id: int | None
) -> str:
    """The private-mode reminder: the admin's text (or the default), where the guidelines
    are, and how to stop these reminders."""
    body = config.reminder_text or DEFAULT_REMINDER.format(guild=guild_name)
    if config.guidelines_url:
        where = f"<{config.guidelines_url}>"
    elif rules_channel_id is not None:
        where = f"<#{rules_channel_id}>"
    else:
        where = "`/guidelines` in the server"
    return (
        f"**A reminder from {guild_name}**\n{body}\n\n"
        f"Server guidelines: {where}\n"
        "-# Turn these reminders off with `/privacy reminders off`."
    )


def personal_info_message(
    kinds: list[str], guild_name: str, *, deleted: bool, guidelines_url: str | None
) -> str:
    """The warning for personal information in a prompt: names the kinds, never a value."""
    found = ", ".join(kinds) or "personal information"
    text = (
        f"Heads-up from {guild_name}: your prompt contained personal information ({found}). "
        "Prompts in this channel are public and may appear in public galleries; keep "
        "personal details out of them."
    )
    if deleted:
        text += " The message was removed to protect you."
    if guidelines_url:
        text += f"\nServer guidelines: <{guidelines_url}>"
    return text


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _incident(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "guild_id": str(incident.guild_id),
        "channel_id": str(incident.channel_id),
        "message_id": None if incident.message_id is None else str(incident.message_id),
        "created_at": _time(incident.created_at),
        "prompt_excerpt": incident.prompt_excerpt,
        "categories": list(incident.categories),
        "severity": incident.severity.name.lower(),
        "verdict": incident.verdict.value,
        "matches": list(incident.matches),
        "action": incident.action,
        "status": incident.status,
        "actions": [],
    }


def _strike(strike: StrikeRecord) -> dict[str, Any]:
    return {
        "guild_id": str(strike.guild_id),
        "incident_id": strike.incident_id,
        "points": strike.points,
        "created_at": _time(strike.created_at),
        "revoked_at": _time(strike.revoked_at),
    }


def _appeal(appeal: Appeal) -> dict[str, Any]:
    return {
        "id": appeal.id,
        "guild_id": str(appeal.guild_id),
        "incident_id": appeal.incident_id,
        "reason": appeal.reason,
        "status": appeal.status,
        "created_at": _time(appeal.created_at),
        "decided_at": _time(appeal.decided_at),
    }


def export_document(data: MemberData, *, generated_at: datetime) -> dict[str, Any]:
    """The JSON a person receives from `/privacy export`. Ids are strings (JavaScript
    readers lose precision on 64-bit numbers); moderators' ids are left out, since they
    are data about someone else."""
    incidents = {i.id: _incident(i) for i in data.incidents}
    for guild_id, action in data.actions:
        entry = incidents.get(action.incident_id)
        if entry is not None and entry["guild_id"] == str(guild_id):
            entry["actions"].append(
                {
                    "action": action.action,
                    "outcome": action.outcome,
                    "at": _time(action.at),
                }
            )
    preferences = data.preferences
    return {
        "format": "promptwarden-member-export/1",
        "user_id": str(data.user_id),
        "generated_at": _time(generated_at),
        "preferences": None
        if preferences is None
        else {
            "reminders_enabled": preferences.reminders_enabled,
            "updated_at": _time(preferences.updated_at),
        },
        "incidents": list(incidents.values()),
        "strikes": [_strike(s) for s in data.strikes],
        "appeals": [_appeal(a) for a in data.appeals],
        "reminders_sent": [
            {"guild_id": str(r.guild_id), "kind": r.kind, "sent_at": _time(r.sent_at)}
            for r in data.reminders
        ],
    }


# ---------------------------------------------------------------- personal information stored

# Screening's source for a personal-information match: "pii:email", "pii:phone"...
PII_SOURCE_PREFIX = "pii:"


def _pii_kind(match: Match) -> str | None:
    if match.source.startswith(PII_SOURCE_PREFIX):
        return match.source[len(PII_SOURCE_PREFIX) :] or "personal info"
    return None


def redact(content: str, matches: Sequence[Match]) -> tuple[str, list[dict[str, Any]]]:
    """The content with personal information replaced by `[email]`, `[phone]`...,
    and the matches as stored: PII values removed, spans moved to the redacted text."""
    pii = sorted(
        ((m.start, m.end, f"[{kind}]") for m in matches if (kind := _pii_kind(m))),
        key=lambda s: s[0],
    )
    merged: list[tuple[int, int, str]] = []
    for start, end, label in pii:
        if merged and start < merged[-1][1]:
            prev = merged[-1]
            merged[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            merged.append((start, end, label))
    parts: list[str] = []
    pos = 0
    for start, end, label in merged:
        parts += [content[pos:start], label]
        pos = end
    parts.append(content[pos:])

    def moved(index: int) -> int:
        delta = 0
        for start, end, label in merged:
            if index < start:
                break
            if index < end:
                return start + delta  # inside a redacted span: where its label begins
            delta += len(label) - (end - start)
        return index + delta

    stored: list[dict[str, Any]] = []
    for m in matches:
        data = m.to_dict()
        start = moved(m.start)
        end = moved(m.end - 1) + 1 if m.end > m.start else start
        if kind := _pii_kind(m):
            label = f"[{kind}]"
            data["text"] = data["term"] = label
            end = start + len(label)
        data["start"], data["end"] = start, end
        stored.append(data)
    return "".join(parts), stored


def pii_kinds(matches: Sequence[Mapping[str, Any]]) -> list[str]:
    kinds: list[str] = []
    for m in matches:
        source = str(m.get("source", ""))
        if source.startswith(PII_SOURCE_PREFIX):
            kind = source[len(PII_SOURCE_PREFIX) :]
            if kind not in kinds:
                kinds.append(kind)
    return kinds
