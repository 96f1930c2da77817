"""The Discord-free privacy rules: settings validation, reminder texts, the export format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from promptwarden.privacy import (
    DEFAULT_DM_PER_MINUTE,
    PrivacyConfig,
    export_document,
    personal_info_message,
    reminder_message,
)
from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import ActionRecord, Appeal, Incident, MemberData

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_defaults_are_the_issue_s_numbers() -> None:
    config = PrivacyConfig.from_dict(None)
    assert config.reminders_enabled
    assert config.reminder_interval == timedelta(days=30)
    assert config.retention == timedelta(days=180)
    assert config.dm_per_minute == DEFAULT_DM_PER_MINUTE
    assert PrivacyConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"retention_days": 0}, "retention_days must be between 1 and 3650"),
        ({"reminder_interval_days": "soon"}, "reminder_interval_days must be a number"),
        ({"dm_per_minute": 0}, "dm_per_minute must be between 1 and 60"),
        ({"dm_per_minute": True}, "dm_per_minute must be a whole number"),
        ({"reminders_enabled": "yes"}, "reminders_enabled must be true or false"),
        ({"reminder_text": "   "}, "cannot be empty"),
        ({"reminder_text": "x" * 1501}, "at most 1500"),
        ({"guidelines_url": "ftp://example.org"}, "starting with https://"),
        ({"retention": 5}, "unknown privacy setting(s): retention"),
    ],
)
def test_bad_settings_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PrivacyConfig.from_dict(data)


def test_the_reminder_points_to_the_guidelines_and_the_opt_out() -> None:
    default = reminder_message(PrivacyConfig(), "Prompt Art", rules_channel_id=None)
    assert "Prompt Art's public channels are visible to everyone" in default
    assert "`/guidelines`" in default and "/privacy reminders off" in default
    with_rules = reminder_message(PrivacyConfig(), "Prompt Art", rules_channel_id=42)
    assert "Server guidelines: <#42>" in with_rules
    custom = PrivacyConfig(reminder_text="Be careful.", guidelines_url="https://x.org/rules")
    text = reminder_message(custom, "Prompt Art", rules_channel_id=42)
    assert "Be careful." in text and "<https://x.org/rules>" in text and "<#42>" not in text
    longest = PrivacyConfig(reminder_text="x" * 1500, guidelines_url="https://x.org/" + "y" * 280)
    assert len(reminder_message(longest, "n" * 100, rules_channel_id=None)) <= 2000


def test_the_personal_information_warning_names_kinds_only() -> None:
    text = personal_info_message(
        ["email", "phone"], "Prompt Art", deleted=True, guidelines_url=None
    )
    assert "(email, phone)" in text and "was removed" in text


def test_the_export_is_json_with_string_ids_and_no_moderator_ids() -> None:
    incident = Incident(
        id=7,
        guild_id=111111111111111111,
        channel_id=2,
        message_id=3,
        user_id=30,
        prompt_excerpt="a nude knight",
        categories=("sexual",),
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=({"term": "nude"},),
        action="block",
        status="dismissed",
        created_at=NOW,
    )
    appeal = Appeal(7, incident.guild_id, 7, 30, "a statue", "accepted", 999, NOW, NOW)
    data = MemberData(
        user_id=30,
        preferences=None,
        incidents=(incident,),
        actions=(
            (incident.guild_id, ActionRecord(7, "delete", "done", "message 3", NOW)),
            (222, ActionRecord(7, "delete", "done", "", NOW)),  # another guild's incident 7
        ),
        strikes=(),
        appeals=(appeal,),
        reminders=(),
    )
    document = export_document(data, generated_at=NOW)
    text = json.dumps(document)
    assert document["user_id"] == "30"
    [entry] = document["incidents"]
    assert entry["guild_id"] == "111111111111111111"
    assert entry["actions"] == [{"action": "delete", "outcome": "done", "at": NOW.isoformat()}]
    assert document["appeals"][0]["status"] == "accepted"
    assert "999" not in text
