"""Packing a guild's terms into AutoMod keyword rules, within Discord's limits."""

from __future__ import annotations

from promptwarden.automod import (
    MAX_ALLOW,
    MAX_KEYWORDS,
    SyncState,
    automod_keyword,
    is_own_rule,
    plan_sync,
    rule_payload,
)
from promptwarden.screening.decision import Severity
from promptwarden.screening.guidelines import default_guidelines
from promptwarden.screening.rules import GuildRules


def rules(**data: object) -> GuildRules:
    return GuildRules.from_dict({"learned": False, **data})


def test_only_critical_and_high_terms_are_mirrored_each_once() -> None:
    plan = plan_sync(default_guidelines(), rules(), slots=6)
    assert len(plan.rules) == 1
    severities = [t.severity for t in plan.terms]
    assert set(severities) == {Severity.CRITICAL, Severity.HIGH}
    assert severities == sorted(severities, reverse=True)
    keywords = plan.rules[0].keywords
    assert len(keywords) == len(set(keywords))
    assert "gore" in keywords and "cocaine" not in keywords  # high yes, medium no
    assert "child" not in keywords  # context only: never blocks alone


def test_terms_beyond_the_free_rules_are_reported_not_dropped_silently() -> None:
    custom = [{"term": f"word{i:04d}", "severity": "high"} for i in range(1000)]
    plan = plan_sync(default_guidelines(), rules(custom_terms=custom), slots=1)
    assert len(plan.rules) == 1 and len(plan.rules[0].keywords) == MAX_KEYWORDS
    assert len(plan.terms) + len(plan.left_out) == 1000 + len(
        plan_sync(default_guidelines(), rules(), slots=6).terms
    )
    assert all(t.severity == Severity.HIGH for t in plan.left_out)
    both = plan_sync(default_guidelines(), rules(custom_terms=custom), slots=2)
    assert [len(r.keywords) for r in both.rules] == [MAX_KEYWORDS, len(both.terms) - 1000]
    assert both.left_out == ()
    assert plan_sync(default_guidelines(), rules(), slots=0).rules == ()


def test_guild_choices_apply_as_in_screening() -> None:
    plan = plan_sync(
        default_guidelines(),
        rules(
            actions={"violence": "off", "hate": "review"},
            severity={"drugs": "high"},
            allow_terms=["nude"],
        ),
        slots=6,
    )
    keywords = set(plan.rules[0].keywords)
    assert "gore" not in keywords and "swastika" not in keywords
    assert "cocaine" in keywords  # raised to high by the guild
    assert "nude" not in keywords
    assert plan.rules[0].allow_list[0] == "nude"


def test_allow_list_is_capped_at_100_with_the_guilds_own_first() -> None:
    allowed = [f"fine phrase {i}" for i in range(150)]
    plan = plan_sync(default_guidelines(), rules(allow_terms=allowed), slots=6)
    allow = plan.rules[0].allow_list
    assert len(allow) == MAX_ALLOW
    assert allow[:3] == ("fine phrase 0", "fine phrase 1", "fine phrase 2")
    assert "pussy willow" in plan.allow_left_out


def test_keywords_are_whole_words_or_end_wildcards_only() -> None:
    assert automod_keyword("  Ku  Klux Klan ") == "ku klux klan"
    assert automod_keyword("gor*") == "gor*"
    assert automod_keyword("*gore*") == "*gore*"
    assert automod_keyword("g*re") is None
    assert automod_keyword("x" * 61) is None
    assert automod_keyword("naïve") is None  # screening folds accents; AutoMod would not


def test_own_rules_are_those_stored_or_created_under_the_prefix() -> None:
    bot = 42
    assert is_own_rule(
        {"id": "1", "creator_id": "42", "name": "PromptWarden guidelines 1"}, bot_id=bot
    )
    assert not is_own_rule({"id": "2", "creator_id": "7", "name": "PromptWarden copy"}, bot_id=bot)
    assert not is_own_rule({"id": "3", "creator_id": "42", "name": "renamed"}, bot_id=bot)
    assert is_own_rule(
        {"id": "3", "creator_id": "42", "name": "renamed"}, bot_id=bot, stored_ids=[3]
    )


def test_rule_payload_alerts_the_modlog_and_exempts_at_most_20_roles() -> None:
    plan = plan_sync(default_guidelines(), rules(), slots=6)
    body = rule_payload(plan.rules[0], alert_channel_id=99, exempt_role_ids=range(1, 30))
    assert [a["type"] for a in body["actions"]] == [1, 2]
    assert body["actions"][1]["metadata"]["channel_id"] == "99"
    assert len(body["exempt_roles"]) == 20
    silent = rule_payload(plan.rules[0], alert_channel_id=None, exempt_role_ids=[])
    assert [a["type"] for a in silent["actions"]] == [1]


def test_sync_state_round_trips_and_survives_garbage() -> None:
    state = SyncState(enabled=True, rule_ids=(1, 2), synced_at="2026-01-01T00:00:00+00:00")
    assert SyncState.from_json(state.to_json()) == state
    assert SyncState.from_json("not json") == SyncState()
    assert SyncState.from_json(None) == SyncState()
