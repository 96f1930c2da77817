"""The core of `/enforcement` and the new `/guideline-rules` edits: every edit either
yields settings the watcher loads, or a message saying what to type instead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from promptwarden import enforcement_edits as edits
from promptwarden import rule_edits
from promptwarden.enforcement import EnforcementConfig
from promptwarden.screening.decision import Severity, Verdict
from promptwarden.screening.rules import GuildRules


def roundtrip(config: EnforcementConfig) -> EnforcementConfig:
    """What the watcher will load after the command saves."""
    return EnforcementConfig.from_dict(config.to_dict())


def test_thresholds_read_as_admins_write_them() -> None:
    assert edits.parse_thresholds("3=1h,5=1d") == ((3, timedelta(hours=1)), (5, timedelta(days=1)))
    assert edits.parse_thresholds(" 5 = 1d12h ; 2=30m ") == (
        (2, timedelta(minutes=30)),
        (5, timedelta(days=1, hours=12)),
    )
    assert edits.parse_thresholds("none") == ()
    config = edits.with_timeouts(EnforcementConfig(), "2=30m,4=2d")
    assert edits.thresholds_text(roundtrip(config).strike_policy) == "2=30m,4=2d"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3:1h", "not POINTS=DURATION"),
        ("3=1 hour", "not a duration"),
        ("3=", "not a duration"),
        ("x=1h", "not POINTS=DURATION"),
        ("3=1h,3=2h", "each number of points may appear once"),
        ("0=1h", "positive"),
        ("3=29d", "at most 28 days"),
        ("3=0m", "longer than 0"),
    ],
)
def test_bad_thresholds_are_refused_with_what_to_write(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        edits.with_timeouts(EnforcementConfig(), text)


def test_strikes_and_catch_up_are_bounded() -> None:
    config = roundtrip(edits.with_strikes(EnforcementConfig(), 0, 3, 7))
    policy = config.strike_policy
    assert (policy.points[Verdict.WARN], policy.points[Verdict.BLOCK]) == (0, 3)
    assert policy.window == timedelta(days=7)
    with pytest.raises(ValueError, match="warn points must be between 0 and 100"):
        edits.with_strikes(EnforcementConfig(), -1, 2, 30)
    with pytest.raises(ValueError, match="window must be 1 to 365 days"):
        edits.with_strikes(EnforcementConfig(), 1, 2, 0)
    assert roundtrip(edits.with_catchup_hours(config, 48)).catchup_window == timedelta(hours=48)
    with pytest.raises(ValueError, match="0 to 336 hours"):
        edits.with_catchup_hours(config, 337)


def test_exemptions_add_and_remove() -> None:
    config = edits.with_exempt_role(EnforcementConfig(), 11, True)
    config = edits.with_exempt_channel(config, 22, True)
    assert roundtrip(config).exempt_role_ids == {11}
    assert roundtrip(config).exempt_channel_ids == {22}
    config = edits.with_exempt_role(config, 11, False)
    assert config.exempt_role_ids == frozenset() and config.exempt_channel_ids == {22}


def test_settings_lines_show_the_defaults_in_words() -> None:
    lines = "\n".join(edits.settings_lines(EnforcementConfig()))
    assert "Moderators (Manage Messages) exempt: on" in lines
    assert "warning 1, block 2" in lines and "counting for 30 days" in lines
    assert "Timeouts: 3=1h,5=1d" in lines
    assert "Catch-up after downtime: 24 hours" in lines


def test_severity_overrides_and_the_learned_tier() -> None:
    rules = rule_edits.set_severity(GuildRules(), "violence", "High")
    assert rules.severity == {"violence": Severity.HIGH}
    assert rule_edits.set_severity(rules, "violence", "default").severity == {}
    with pytest.raises(ValueError, match="unknown severity 'severe'"):
        rule_edits.set_severity(rules, "violence", "severe")
    with pytest.raises(ValueError, match="unknown category 'gore'"):
        rule_edits.set_severity(rules, "gore", "high")
    assert rule_edits.set_learned(rules, False).learned is False
