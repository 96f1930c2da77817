"""Packing a guild's terms into AutoMod keyword rules, within Discord's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from promptwarden.automod import (
    MAX_ALLOW,
    MAX_KEYWORDS,
    NO_CONTENT,
    AutoModHit,
    SyncState,
    automod_keyword,
    hit_decision,
    hit_draft,
    hit_job_key,
    is_own_rule,
    plan_sync,
    rule_payload,
)
from promptwarden.dedupe import JobKeyer
from promptwarden.policy import StrikePolicy, plan_actions
from promptwarden.screening.decision import Severity, Verdict
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


def hit(**fields: object) -> AutoModHit:
    values: dict[str, object] = {
        "guild_id": 1,
        "rule_id": 2,
        "channel_id": 3,
        "user_id": 4,
        "message_id": None,
        "content": "a NUDE figure",
        "keyword": "nude",
        "matched_content": "NUDE",
        "at": datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC),
    }
    values.update(fields)
    return AutoModHit(**values)  # type: ignore[arg-type]


def test_a_hit_of_an_own_rule_stands_for_its_term() -> None:
    term = plan_sync(default_guidelines(), rules(), slots=6).term_for("NUDE")
    assert term is not None and term.category == "sexual"
    decision = hit_decision(hit(), term, rules())
    assert decision.verdict is Verdict.BLOCK and decision.categories == ("sexual",)
    (match,) = decision.matches
    assert (match.start, match.end, match.text, match.source) == (2, 6, "NUDE", "automod:2")
    warned = hit_decision(hit(), term, rules(actions={"sexual": "warn"}))
    assert warned.verdict is Verdict.WARN


def test_a_hit_of_the_guilds_own_rule_goes_to_review() -> None:
    decision = hit_decision(hit(keyword="spam*"), None, rules())
    assert decision.verdict is Verdict.REVIEW and decision.categories == ("custom",)
    plan = plan_actions(decision, StrikePolicy())
    assert plan.modlog and not plan.strike_points and not plan.warn_member


def test_without_message_content_only_the_keyword_is_kept() -> None:
    bare = hit(content="", matched_content="")
    decision = hit_decision(bare, None, rules())
    keyer = JobKeyer.generate()
    draft = hit_draft(bare, decision, plan_actions(decision, StrikePolicy()), keyer)
    assert draft.prompt_excerpt == NO_CONTENT
    assert draft.matches[0]["text"] == "nude" and draft.source == "automod"
    assert draft.message_id is None and draft.job_key is not None


def test_a_blocked_text_retried_within_the_minute_is_the_same_job() -> None:
    keyer = JobKeyer.generate()
    first = hit_job_key(keyer, hit())
    assert first == hit_job_key(keyer, hit(at=datetime(2026, 1, 1, 12, 0, 50, tzinfo=UTC)))
    assert first != hit_job_key(keyer, hit(content="a nude statue"))
    assert first != hit_job_key(keyer, hit(user_id=5))
    assert first is not None and "nude" not in first  # keyed, not the text itself
    assert hit_job_key(keyer, hit(message_id=9)) is None  # its message id identifies it
