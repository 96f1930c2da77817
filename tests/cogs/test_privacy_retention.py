"""The daily retention job survives a database failure: the day it fails is logged, and
the next day it deletes what is due. Faults are real: a table of the bot's SQLite file
is renamed away under it, then put back."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import simcord

from tests.helpers import DAY, old_incident
from tests.helpers import privacy_world as world


@contextlib.contextmanager
def table_missing(database: Path, table: str) -> Iterator[None]:
    """The table is gone, as after a damaged or half-restored database, until the end."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        db.commit()
    try:
        yield
    finally:
        with contextlib.closing(sqlite3.connect(database)) as db:
            db.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
            db.commit()


@pytest.mark.parametrize(
    "table",
    [
        "reminders_sent",  # which guilds have data: read before any guild is looked at
        "guild_settings",  # each guild's retention setting
    ],
)
async def test_a_failed_day_is_logged_and_the_next_day_deletes_what_is_due(
    simcord_env: simcord.Env, caplog: pytest.LogCaptureFixture, table: str
) -> None:
    w = await world(simcord_env)
    expired = await old_incident(w, days_ago=200, message_id=1)
    kept = await old_incident(w, days_ago=10, message_id=2)
    database = w.bot.settings.database_path

    with table_missing(database, table), caplog.at_level(logging.ERROR, "promptwarden"):
        await simcord_env.advance_time(DAY)
        assert {i.id for i in await w.incidents()} == {expired, kept}  # nothing deleted
    failures = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "retention" in r.getMessage()
    ]
    assert failures, "the failure is logged"

    await simcord_env.advance_time(DAY)
    assert [i.id for i in await w.incidents()] == [kept]
    # And it keeps going, day after day.
    later = await old_incident(w, days_ago=180, message_id=3)
    await simcord_env.advance_time(DAY)
    assert later not in {i.id for i in await w.incidents()}


async def test_one_guild_that_fails_does_not_keep_the_others_data(
    simcord_env: simcord.Env, caplog: pytest.LogCaptureFixture
) -> None:
    first = await world(simcord_env, "Prompt Art")
    second = await world(simcord_env, "Other Art")
    in_first = await old_incident(first, days_ago=200, message_id=1)
    await old_incident(second, days_ago=200, message_id=2)
    database = first.bot.settings.database_path
    # A fault in the first guild's rows only: the database refuses to delete them.
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON incidents "
            f"WHEN old.guild_id = {first.guild.id} BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        db.commit()

    with caplog.at_level(logging.ERROR, "promptwarden"):
        await simcord_env.advance_time(DAY)
    assert [i.id for i in await first.incidents()] == [in_first]
    assert await second.incidents() == []
    assert any(f"guild {first.guild.id} failed" in r.getMessage() for r in caplog.records)
