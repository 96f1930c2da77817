"""Stored job keys do not give a prompt away: they are keyed with a secret of the
installation, kept in its database, so guessing a short prompt and hashing it confirms
nothing, and a restart (or another process on the same database) keys the same."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import simcord

from discordbot import PromptWardenBot
from promptwarden.dedupe import JOB_KEY_SECRET_META, JobKeyer, installation_job_keyer
from promptwarden.enforcement import job_identity
from promptwarden.storage import open_storage
from tests.helpers import BOTH_BOT_BACKENDS, NUDE, world

GUILD, MEMBER = 10, 42
WHEN = datetime(2026, 3, 1, 12, tzinfo=UTC)
SHORT_PROMPT = "nude bob"


async def stored_identity(database: str, prompt: str = SHORT_PROMPT) -> str:
    async with await open_storage(database) as storage:
        keyer = await installation_job_keyer(storage)
    return job_identity(keyer, GUILD, MEMBER, prompt, WHEN)


async def test_one_installation_keys_the_same_across_restarts(database: str) -> None:
    first = await stored_identity(database)
    assert await stored_identity(database) == first
    assert await stored_identity(database, "Nude   BOB") == first  # spacing and case aside
    assert await stored_identity(database, "nude alice") != first


async def test_two_installations_key_the_same_prompt_differently(tmp_path: Path) -> None:
    one = await stored_identity(str(tmp_path / "one.db"))
    other = await stored_identity(str(tmp_path / "other.db"))
    assert one != other


async def test_a_guessed_prompt_hashed_without_the_secret_matches_nothing(database: str) -> None:
    requester, digest, day = (await stored_identity(database)).split(":")
    assert (requester, day) == (str(MEMBER), "2026-03-01")
    # What anyone reading the database could compute for a guess, were the key unkeyed.
    guesses = {
        hashlib.blake2b(SHORT_PROMPT.encode(), digest_size=12).hexdigest(),
        hashlib.sha256(SHORT_PROMPT.encode()).hexdigest(),
    }
    assert not any(digest in guess or guess in digest for guess in guesses)


async def test_a_damaged_secret_is_replaced_once_and_then_kept(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with await open_storage(database) as storage:
        await storage.set_meta(JOB_KEY_SECRET_META, "not hex at all")
        with caplog.at_level(logging.WARNING, "promptwarden"):
            replaced = await installation_job_keyer(storage)
        assert "job key secret is damaged" in caplog.text
        again = await installation_job_keyer(storage)
        assert again.digest(SHORT_PROMPT) == replaced.digest(SHORT_PROMPT)


def test_the_keyer_never_shows_its_secret() -> None:
    keyer = JobKeyer(b"s" * 32)
    assert keyer.stored() not in repr(keyer) and "sss" not in repr(keyer)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JobKeyer(b"short")


@BOTH_BOT_BACKENDS
async def test_a_job_seen_before_and_after_a_restart_is_one_incident(
    simcord_env: simcord.Env,
    make_bot: Callable[..., PromptWardenBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    w = await world(simcord_env)
    await w.job(f"**{NUDE}** - <@{w.member.id}> (Waiting to start)")
    [incident] = await w.incidents()
    assert len(w.dms()) == 1

    await simcord_env.restart_bot(make_bot())
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    w.bot = bot
    await w.job(f"**{NUDE}** - <@{w.member.id}> (fast)")  # the job's result, after the restart

    assert [i.id for i in await w.incidents()] == [incident.id]  # one incident, no second one
    assert w.messages() == []  # the result is removed too
    assert len(w.dms()) == 1  # and the member is not warned twice
    secret = await bot.storage.get_meta(JOB_KEY_SECRET_META)
    assert secret is not None and secret not in caplog.text
