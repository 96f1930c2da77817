# ruff: noqa: RUF001  (evasion tests are made of lookalike characters on purpose)
"""Per-guild rules: validation, custom wildcard terms, overrides, and the screener cache."""

from __future__ import annotations

from typing import Any

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.screening.engine import Screener, ScreenerCache
from promptwarden.screening.rules import GuildRules


def screen(rules: dict[str, Any], prompt: str) -> Any:
    return Screener(GuildRules.from_dict(rules), model=None).screen(prompt)


@pytest.mark.parametrize(
    ("term", "prompt", "caught"),
    [
        ("cat", "a cat sleeping", True),
        ("cat", "a catapult", False),  # bare word: whole word only
        ("cat", "two cats", True),  # word forms
        ("cat*", "a catapult", True),
        ("cat*", "a bobcat", False),
        ("*cat", "a bobcat", True),
        ("*cat", "a catapult", False),
        ("*cat*", "a bobcatapult", True),
        ("red panda", "a red panda eating", True),
        ("red panda", "a red-panda eating", True),
        ("mr bean", "Mr. Bean on a bench", False),  # no punctuation in between
    ],
)
def test_custom_terms_with_wildcards(term: str, prompt: str, caught: bool) -> None:
    d = screen({"custom_terms": [term]}, prompt)
    assert (d.verdict is Verdict.BLOCK) is caught, d.to_dict()
    if caught:
        assert d.categories == ("custom",)
        assert d.matches[0].source == "custom"


def test_custom_terms_resist_evasion_too() -> None:
    d = screen({"custom_terms": ["banana"]}, "a b4n4n4 and a ｂａｎａｎａ")
    assert d.verdict is Verdict.BLOCK
    assert [m.text for m in d.matches] == ["b4n4n4", "ｂａｎａｎａ"]


def test_custom_term_with_category_and_severity() -> None:
    d = screen({"custom_terms": [{"term": "clown", "category": "violence", "severity": "medium"}]},
               "a clown")  # fmt: skip
    assert d.verdict is Verdict.WARN
    assert d.categories == ("violence",)


def test_extra_allow_terms() -> None:
    assert screen({}, "the gruesome twosome").verdict is Verdict.WARN
    allowed = screen({"allow_terms": ["gruesome twosome"]}, "the gruesome twosome")
    assert allowed.verdict is Verdict.ALLOW


def test_category_off_and_action_overrides() -> None:
    prompt = "a gory battle scene"
    assert screen({}, prompt).verdict is Verdict.BLOCK
    off = screen({"actions": {"violence": "off"}}, prompt)
    assert off.verdict is Verdict.ALLOW and off.matches == ()
    assert screen({"actions": {"violence": "review"}}, prompt).verdict is Verdict.REVIEW
    assert screen({"actions": {"violence": "warn"}}, prompt).verdict is Verdict.WARN
    pii = screen({"actions": {"personal_info": "block"}}, "mail a@example.com")
    assert pii.verdict is Verdict.BLOCK


def test_severity_override_changes_the_default_action() -> None:
    low = screen({"severity": {"violence": "low"}}, "a gory battle scene")
    assert low.verdict is Verdict.ALLOW
    assert low.matches[0].severity is Severity.LOW
    high = screen({"severity": {"drugs": "high"}}, "man snorting cocaine")
    assert high.verdict is Verdict.BLOCK


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"custom_terms": ["x" * 61]}, "at most 60"),
        ({"custom_terms": ["a" + str(i) for i in range(1001)]}, "too many custom terms"),
        ({"custom_terms": ["c(a|b)t"]}, "not regular expressions"),
        ({"custom_terms": ["ca*t"]}, "wildcard only at the start or end"),
        ({"custom_terms": ["   "]}, "is empty"),
        ({"custom_terms": [{"term": "x", "category": "spam"}]}, "unknown category 'spam'"),
        ({"severity": {"gossip": "high"}}, "unknown category 'gossip'"),
        ({"severity": {"sexual": "extreme"}}, "unknown severity 'extreme'"),
        ({"actions": {"sexual": "ban"}}, "unknown action 'ban'"),
        ({"learned": "yes"}, "learned must be true or false"),
        ({"colour": "red"}, "unknown screening setting(s): colour"),
        ({"custom_terms": "cat"}, "custom_terms must be a list"),
    ],
)
def test_validation_messages(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        GuildRules.from_dict(data)
    assert message in str(err.value)


def test_round_trip() -> None:
    data = {
        "custom_terms": [{"term": "cat*", "category": "custom", "severity": "high"}],
        "allow_terms": ["gore-tex"],
        "severity": {"drugs": "high"},
        "actions": {"profanity": "off"},
        "learned": False,
    }
    rules = GuildRules.from_dict(data)
    assert rules.to_dict() == data
    assert GuildRules.from_dict(rules.to_dict()) == rules
    assert GuildRules.from_dict(None) == GuildRules()


def test_cache_reuses_and_rebuilds_on_change() -> None:
    cache = ScreenerCache(model=None)
    first = GuildRules.from_dict({"custom_terms": ["banana"]})
    a = cache.get(1, first)
    assert cache.get(1, GuildRules.from_dict({"custom_terms": ["banana"]})) is a
    assert a.screen("a banana").verdict is Verdict.BLOCK
    changed = GuildRules.from_dict({"custom_terms": ["apple"]})
    b = cache.get(1, changed)
    assert b is not a
    assert b.screen("a banana").verdict is Verdict.ALLOW
    assert b.screen("an apple").verdict is Verdict.BLOCK
    assert cache.get(2, first) is not b  # guilds do not share entries


def test_cached_never_builds_and_sees_equal_rules() -> None:
    cache = ScreenerCache(model=None)
    rules = GuildRules.from_dict({"custom_terms": ["banana"]})
    assert cache.cached(1, rules) is None  # nothing built yet: the caller decides where to build
    built = cache.get(1, rules)
    assert cache.cached(1, rules) is built
    # equal settings reloaded from storage are a new object, but the same screener
    assert cache.cached(1, GuildRules.from_dict({"custom_terms": ["banana"]})) is built
    assert cache.cached(1, GuildRules.from_dict({"custom_terms": ["kiwi"]})) is None
    cache.forget(1)
    assert cache.cached(1, rules) is None


# ---- matching memory: one shared automaton, small guild ones, bounded caches -----------------
def _limit_rules(seed: int) -> GuildRules:
    words = [f"zq{seed}x{k}" for k in range(1000)]
    return GuildRules.from_dict({"custom_terms": words})


def test_guilds_share_the_guidelines_automaton_and_own_only_their_terms() -> None:
    cache = ScreenerCache(model=None)
    a = cache.get(1, GuildRules.from_dict({"custom_terms": ["banana"]}))
    b = cache.get(2, GuildRules.from_dict({"custom_terms": ["red panda with a tiny hat"]}))
    assert a.matcher is b.matcher  # the shipped guidelines, compiled once
    assert a.own is not None and b.own is not None
    assert a.own.size < 60 and b.own.size < 60  # its own words and their forms, nothing more
    assert a.screen("a naked banana").categories == ("sexual", "custom")
    assert b.screen("a red panda with a tiny hat").verdict is Verdict.BLOCK


def test_a_long_phrase_does_not_double_its_letters_into_hundreds_of_keys() -> None:
    s = Screener(GuildRules.from_dict({"custom_terms": ["purple elephant umbrella"]}), model=None)
    assert s.own is not None and s.own.size <= 12
    assert s.screen("a purpleelephantumbrella").verdict is Verdict.BLOCK  # joined still reads


def test_a_guild_allow_phrase_covers_a_shipped_hit_and_the_reverse() -> None:
    allowed = screen({"allow_terms": ["nude lipstick"]}, "nude lipstick on a shelf")
    assert not allowed.flagged
    willow = screen({"custom_terms": ["pussy*"]}, "pussy willow in a vase")
    assert not willow.flagged  # the shipped "pussy willow" covers the guild's term too


def test_replacing_terms_keeps_no_old_automaton() -> None:
    import gc
    import weakref

    cache = ScreenerCache(model=None)
    first = cache.get(7, _limit_rules(0))
    assert first.own is not None
    gone = weakref.ref(first.own)
    del first
    cache.get(7, _limit_rules(1))
    gc.collect()
    assert gone() is None


def test_concurrent_misses_share_one_build() -> None:
    import threading

    cache = ScreenerCache(model=None)
    rules = _limit_rules(2)
    start = threading.Barrier(6)
    got: list[Screener] = []

    def build() -> None:
        start.wait()
        got.append(cache.get(9, rules))

    threads = [threading.Thread(target=build) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and all(s is got[0] for s in got)


def test_the_screener_cache_is_bounded() -> None:
    cache = ScreenerCache(model=None, max_guilds=2)
    rules = [GuildRules.from_dict({"custom_terms": [f"word{k}"]}) for k in range(3)]
    for guild, r in enumerate(rules):
        cache.get(guild, r)
    cache.get(1, rules[1])  # guild 1 used again: guild 0 is the least recently used
    cache.get(3, rules[0])
    assert cache.cached(0, rules[0]) is None
    assert cache.cached(1, rules[1]) is not None
    assert cache.cached(3, rules[0]) is not None
