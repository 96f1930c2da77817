"""The Discord-free enforcement rules: scope, responsibility, exemption, redaction, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promptwarden.dedupe import JobKeyer
from promptwarden.enforcement import (
    EnforcementConfig,
    MessageFacts,
    build_incident,
    is_exempt,
    job_identity,
    matched_words,
    responsible_user,
    should_screen,
)
from promptwarden.guild_states import GuildState, GuildStates
from promptwarden.policy import StrikePolicy, plan_actions
from promptwarden.privacy import redact
from promptwarden.screening.engine import Screener
from promptwarden.screening.extract import MIDJOURNEY_BOT_ID, extract
from promptwarden.storage import WatchedChannel, open_storage

GUILD, CHANNEL, CATEGORY, THREAD, BOT_ID = 1, 10, 20, 30, 99
MEMBER = 123456789012345678
WHEN = datetime(2026, 3, 1, 12, tzinfo=UTC)


def state(**fields: object) -> GuildState:
    values: dict[str, object] = {
        "guild_id": GUILD,
        "watched": (
            WatchedChannel(GUILD, CHANNEL, "channel"),
            WatchedChannel(GUILD, CATEGORY, "category"),
        ),
    }
    values.update(fields)
    return GuildState(**values)  # type: ignore[arg-type]


def facts(content: str, **fields: object) -> MessageFacts:
    values: dict[str, object] = {
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "message_id": 500,
        "author_id": MEMBER,
        "author_is_bot": False,
        "content": content,
        "created_at": WHEN,
        "channel_chain": (CHANNEL, None, None),
    }
    values.update(fields)
    return MessageFacts(**values)  # type: ignore[arg-type]


def test_scope_covers_watched_channels_their_threads_and_whole_categories() -> None:
    s = state()
    assert s.in_scope((CHANNEL, None, None))
    assert s.in_scope((THREAD, CHANNEL, None))  # thread of a watched channel
    assert s.in_scope((40, None, CATEGORY))  # channel inside a watched category
    assert s.in_scope((THREAD, 40, CATEGORY))  # forum post inside a watched category
    assert not s.in_scope((41, None, None))
    exempt = state(config=EnforcementConfig(exempt_channel_ids=frozenset({40})))
    assert not exempt.in_scope((THREAD, 40, CATEGORY))


def test_who_is_screened_and_who_answers_for_it() -> None:
    s = state(generator_bots=frozenset({MIDJOURNEY_BOT_ID, BOT_ID}))
    job = f"**a nude knight** - <@{MEMBER}> (fast)"
    assert should_screen(facts("a cat"), s, own_id=7)
    assert not should_screen(facts("a cat", author_id=7), s, own_id=7)  # ourselves
    assert not should_screen(facts("a cat", webhook_id=5, author_is_bot=True), s, own_id=7)
    assert not should_screen(facts(job, author_id=55, author_is_bot=True), s, own_id=7)
    assert not should_screen(facts("a cat", channel_chain=(41, None, None)), s, own_id=7)
    from_generator = facts(job, author_id=BOT_ID, author_is_bot=True)
    assert should_screen(from_generator, s, own_id=7)
    prompt = extract(job, author_is_bot=True)
    assert responsible_user(from_generator, s, prompt) == MEMBER
    info = facts("Your settings", author_id=BOT_ID, author_is_bot=True)
    assert responsible_user(info, s, extract(info.content, author_is_bot=True)) is None


def test_moderators_and_exempt_roles() -> None:
    default = EnforcementConfig()
    assert is_exempt([], True, default)
    assert not is_exempt([], True, EnforcementConfig(moderators_exempt=False))
    assert is_exempt([3], False, EnforcementConfig(exempt_role_ids=frozenset({3})))
    assert not is_exempt([4], False, default)


def test_a_job_keeps_its_key_through_progress_and_result_but_not_across_days() -> None:
    progress = extract(
        f"**A Nude  knight --ar 2:3** - <@{MEMBER}> (62%) (relaxed)", author_is_bot=True
    )
    result = extract(f"**a nude knight --ar 2:3** - <@{MEMBER}> (fast)", author_is_bot=True)
    keyer = JobKeyer.generate()
    first = job_identity(keyer, GUILD, MEMBER, progress.text, WHEN)
    assert first == job_identity(keyer, GUILD, MEMBER, result.text, WHEN + timedelta(minutes=2))
    assert first != job_identity(keyer, GUILD, MEMBER + 1, result.text, WHEN)
    assert first != job_identity(keyer, GUILD, MEMBER, result.text, WHEN + timedelta(days=1))


def test_personal_information_never_reaches_the_stored_incident() -> None:
    content = "portrait of bob@example.com, nude, call 555-123-4567 now"
    decision = Screener(model=False).screen(content)
    text, stored = redact(content, decision.matches)
    assert text == "portrait of [email], nude, call [phone] now"
    assert "bob@example.com" not in str(stored) and "555-123-4567" not in str(stored)
    nude = next(m for m in stored if m["category"] == "sexual")
    assert text[nude["start"] : nude["end"]] == "nude"
    email = next(m for m in stored if m["source"] == "pii:email")
    assert text[email["start"] : email["end"]] == "[email]"
    assert matched_words(stored) == ["nude"]

    plan = plan_actions(decision, StrikePolicy())
    prompt = extract(content)
    draft = build_incident(
        facts(content), decision, plan, user_id=MEMBER, prompt=prompt, keyer=JobKeyer.generate()
    )
    assert draft.prompt_excerpt == text
    assert draft.action == "block" and draft.categories == ("sexual", "personal_info")


def test_learned_words_are_listed_heaviest_first() -> None:
    stored = [
        {"text": "beach", "weight": 0.1, "source": "model"},
        {"text": "wet", "weight": 0.9, "source": "model"},
        {"text": "[email]", "source": "pii:email"},
    ]
    assert matched_words(stored) == ["wet", "beach"]


def test_settings_round_trip_and_bad_settings_say_what_is_wrong() -> None:
    config = EnforcementConfig(
        exempt_role_ids=frozenset({5}),
        moderators_exempt=False,
        strike_policy=StrikePolicy(window=timedelta(days=7)),
        catchup_window=timedelta(hours=6),
        delete_personal_info=True,
    )
    assert EnforcementConfig.from_dict(config.to_dict()) == config
    assert EnforcementConfig.from_dict(None) == EnforcementConfig()
    with pytest.raises(ValueError, match="unknown enforcement setting"):
        EnforcementConfig.from_dict({"modrators_exempt": True})
    with pytest.raises(ValueError, match="moderators_exempt must be true or false"):
        EnforcementConfig.from_dict({"moderators_exempt": "yes"})
    with pytest.raises(ValueError, match="exempt_role_ids"):
        EnforcementConfig.from_dict({"exempt_role_ids": ["admins"]})
    with pytest.raises(ValueError, match="catchup_hours"):
        EnforcementConfig.from_dict({"catchup_hours": 10_000})


async def test_guild_state_is_cached_until_a_change_and_bad_settings_fall_back(
    tmp_path: Path,
) -> None:
    async with await open_storage(tmp_path / "pw.db") as storage:
        cache = GuildStates(storage)
        await cache.subscribe()
        await storage.add_watched_channel(GUILD, CHANNEL)
        await storage.add_generator_bot(GUILD, BOT_ID)
        await storage.set_enforcement_config(GUILD, {"moderators_exempt": "maybe"})
        await storage.set_privacy_config(GUILD, {"dm_per_minute": 3})
        first = await cache.get(GUILD)
        assert first.watched_ids == {CHANNEL}
        assert first.is_generator(BOT_ID) and first.is_generator(MIDJOURNEY_BOT_ID)
        assert first.config == EnforcementConfig()  # invalid settings: defaults, logged
        assert first.privacy.dm_per_minute == 3
        assert await cache.get(GUILD) is first  # kept: no second read
        assert cache.loads == 1
        await storage.add_watched_channel(GUILD, 77)  # announced by storage: dropped
        assert (await cache.get(GUILD)).watched_ids == {CHANNEL, 77}
        await storage.remove_watched_channel(GUILD, 77)
        assert (await cache.get(GUILD)).watched_ids == {CHANNEL}
        assert cache.loads == 3


async def test_concurrent_callers_share_one_load_and_the_cache_is_bounded(
    tmp_path: Path,
) -> None:
    import asyncio

    async with await open_storage(tmp_path / "pw.db") as storage:
        cache = GuildStates(storage, max_guilds=2)
        states = await asyncio.gather(*(cache.get(GUILD) for _ in range(20)))
        assert cache.loads == 1 and all(s is states[0] for s in states)
        await cache.get(GUILD + 1)
        await cache.get(GUILD + 2)  # the least recently used guild goes
        assert cache.cached(GUILD) is None and cache.cached(GUILD + 2) is not None


async def test_a_change_announced_during_a_load_is_not_lost(tmp_path: Path) -> None:
    import asyncio

    async with await open_storage(tmp_path / "pw.db") as storage:
        cache = GuildStates(storage)
        await cache.subscribe()
        loading = asyncio.ensure_future(cache.get(GUILD))
        await asyncio.sleep(0)  # the load has started
        await storage.add_watched_channel(GUILD, CHANNEL)  # announced meanwhile
        await loading
        assert (await cache.get(GUILD)).watched_ids == {CHANNEL}


async def test_a_caller_after_a_change_never_gets_a_load_begun_before_it(
    tmp_path: Path,
) -> None:
    import asyncio

    async with await open_storage(tmp_path / "pw.db") as storage:
        cache = GuildStates(storage)
        await cache.subscribe()
        early = asyncio.ensure_future(cache.get(GUILD))
        await asyncio.sleep(0)  # a load has started, before the change below
        await storage.add_watched_channel(GUILD, CHANNEL)
        # A message arriving now is judged with settings read after the change: by a
        # load of its own, not the one begun before (which may have read the old ones).
        assert (await cache.get(GUILD)).watched_ids == {CHANNEL}
        assert cache.loads == 2
        await early
        assert (await cache.get(GUILD)).watched_ids == {CHANNEL}
        assert cache.loads == 2
