"""`python bot.py migrate-db`: SQLite into PostgreSQL without loss, verified, repeatable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import Storage, open_storage
from tests.helpers import GUILD_A, GUILD_B, assert_one_line_error, bot, needs_postgres

T0 = datetime(2026, 2, 1, 9, 30, 15, 123456, tzinfo=UTC)
WINDOW = timedelta(days=3650)


async def fill(storage: Storage) -> None:
    """A bit of everything a guild accumulates, including text SQLite keeps as-is."""
    await storage.set_modlog_channel(GUILD_A, 5)
    await storage.set_screening_rules(GUILD_A, {"custom_terms": [["héllo*", "hate", 2]]})
    await storage.add_watched_channel(GUILD_A, 6, "category")
    await storage.add_watched_channel(GUILD_B, 7)
    await storage.add_generator_bot(GUILD_A, 936929561302675456)
    await storage.set_meta("command_sync:1:global", "abc")
    for n in range(30):
        incident_id, _ = await storage.record_incident(
            guild_id=GUILD_A if n % 3 else GUILD_B,
            channel_id=6,
            message_id=1000 + n,
            user_id=40 + n % 4,
            prompt_excerpt=f"prompt {n} «naïve» --no clothes",
            categories=["sexual", "evasion"],
            severity=Severity.HIGH,
            verdict=Verdict.BLOCK,
            matches=[{"term": "no clothes", "n": n}],
            action="block",
            status="upheld" if n % 5 == 0 else "open",
            created_at=T0 + timedelta(minutes=n),
            job_key=f"job-{n}",
        )
        if n % 3 == 1:
            await storage.add_strike(
                GUILD_A, 40 + n % 4, 2, incident_id=incident_id, window=WINDOW, now=T0
            )
            await storage.record_action_outcome(
                GUILD_A, incident_id, "delete", "forbidden", "Missing Permissions", at=T0
            )
            await storage.record_modlog_press(GUILD_A, incident_id, 9, "uphold", at=T0)
    await storage.revoke_strike_for_incident(GUILD_A, 1, now=T0)
    await storage.set_enforcement_config(GUILD_A, {"dm_per_minute": 5, "window_days": 30})
    await storage.set_catchup_cursors({(GUILD_A, 6): 1029})
    for _ in range(10):  # the guild's whole DM budget for that minute
        await storage.take_dm_budget(GUILD_A, limit=10, now=T0)
    await storage.claim_reminder(GUILD_A, 41, "privacy", interval=WINDOW, now=T0)
    await storage.set_reminders_enabled(41, False, now=T0)
    await storage.set_privacy_config(GUILD_A, {"reminders": "private-mode"})
    appeal = await storage.create_appeal(GUILD_A, 2, 41, "it was a «joke»", now=T0)
    assert appeal is not None


async def snapshot(storage: Storage) -> dict[str, object]:
    """Everything a user of the bot could see, read through the Storage interface."""
    seen: dict[str, object] = {}
    for guild in (GUILD_A, GUILD_B):
        seen[f"{guild}:modlog"] = await storage.get_modlog_channel(guild)
        seen[f"{guild}:rules"] = await storage.get_screening_rules(guild)
        seen[f"{guild}:watched"] = await storage.list_watched_channels(guild)
        seen[f"{guild}:bots"] = await storage.list_generator_bots(guild)
        seen[f"{guild}:incidents"] = await storage.find_incidents(guild, limit=500)
        seen[f"{guild}:privacy"] = await storage.get_privacy_config(guild)
        seen[f"{guild}:appeals"] = await storage.list_appeals(guild, 2)
        seen[f"{guild}:enforcement"] = await storage.get_enforcement_config(guild)
        seen[f"{guild}:cursor"] = await storage.get_catchup_cursor(guild, 6)
        for member in range(40, 44):
            seen[f"{guild}:{member}:strikes"] = await storage.list_strikes(guild, member)
        for incident in await storage.find_incidents(guild, limit=500):
            seen[f"{guild}:{incident.id}:actions"] = await storage.list_action_outcomes(
                guild, incident.id
            )
            seen[f"{guild}:{incident.id}:presses"] = await storage.list_modlog_presses(
                guild, incident.id
            )
    seen["meta"] = await storage.get_meta("command_sync:1:global")
    for member in range(40, 44):  # preferences and reminders, in every guild
        seen[f"{member}:data"] = await storage.export_member_data(member)
    return seen


async def table_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        names = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        return {n: int(await conn.fetchval(f'SELECT count(*) FROM "{n}"')) for n in names}
    finally:
        await conn.close()


def migrate(source: Path, url: str) -> tuple[int, str, str]:
    result = bot("migrate-db", "--to", url, "--from", str(source))
    return result.returncode, result.stdout, result.stderr


@needs_postgres
async def test_copy_keeps_everything_and_a_second_run_changes_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "pw.db"
    async with await open_storage(source) as sqlite_side:
        await fill(sqlite_side)
        expected = await snapshot(sqlite_side)

    status, out, err = await asyncio.to_thread(migrate, source, postgres_url)
    assert status == 0, err
    assert "incidents                30 rows: 30 new, 0 updated, 0 unchanged; verified 30/30" in out
    assert "OK: 70 rows in 13 tables verified" in out
    assert ":***@" in out and "password" not in out.lower()

    async with await open_storage(postgres_url) as pg_side:
        assert await snapshot(pg_side) == expected

    counts = await table_counts(postgres_url)
    status, out, err = await asyncio.to_thread(migrate, source, postgres_url)
    assert status == 0, err
    assert "0 written, 70 already there" in out
    assert "incidents                30 rows: 0 new, 0 updated, 30 unchanged" in out
    assert await table_counts(postgres_url) == counts

    async with await open_storage(postgres_url) as pg_side:
        # Ids were copied as they were; the next incident must not collide with them.
        new_id, _ = await pg_side.record_incident(
            guild_id=GUILD_A,
            channel_id=6,
            message_id=99,
            user_id=1,
            prompt_excerpt="after the move",
            categories=[],
            severity=Severity.LOW,
            verdict=Verdict.REVIEW,
            matches=[],
            action="review",
        )
        assert new_id == 31
        # The DM budget moved too: spent before the move, still spent after it.
        assert not await pg_side.take_dm_budget(GUILD_A, limit=10, now=T0)


@needs_postgres
async def test_a_live_row_under_the_same_key_is_never_overwritten_silently(
    postgres_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "pw.db"
    async with await open_storage(source) as sqlite_side:
        await fill(sqlite_side)
    async with await open_storage(postgres_url) as pg_side:
        # A bot already running on PostgreSQL wrote its own incident 1 and a setting.
        await pg_side.set_modlog_channel(GUILD_A, 777)
        await pg_side.record_incident(
            guild_id=GUILD_A,
            channel_id=1,
            message_id=5,
            user_id=2,
            prompt_excerpt="already here",
            categories=[],
            severity=Severity.LOW,
            verdict=Verdict.WARN,
            matches=[],
            action="warn",
        )
    before = await table_counts(postgres_url)

    status, _, err = await asyncio.to_thread(migrate, source, postgres_url)

    assert status == 2
    assert "already in PostgreSQL under the same key hold other data" in err
    assert "--overwrite" in err and "Traceback" not in err
    assert await table_counts(postgres_url) == before  # one transaction: nothing copied
    async with await open_storage(postgres_url) as pg_side:
        assert await pg_side.get_modlog_channel(GUILD_A) == 777

    result = bot("migrate-db", "--to", postgres_url, "--from", str(source), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert "incidents                30 rows: 29 new, 1 updated, 0 unchanged" in result.stdout
    async with await open_storage(postgres_url) as pg_side:
        assert await pg_side.get_modlog_channel(GUILD_A) == 5


def test_to_must_be_postgres(tmp_path: Path) -> None:
    result = bot("migrate-db", "--to", f"sqlite:///{tmp_path}/x.db", "--from", "pw.db")
    assert_one_line_error(result, "--to must be a postgresql:// URL")


@needs_postgres
def test_missing_source_is_named(tmp_path: Path) -> None:
    from tests.helpers import POSTGRES_URL

    result = bot("migrate-db", "--to", POSTGRES_URL, "--from", str(tmp_path / "nope.db"))
    assert_one_line_error(result, f"no SQLite database at {tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


def test_help_lists_migrate_db() -> None:
    text = " ".join(bot("--help").stdout.split())
    assert "migrate-db copy the SQLite database into PostgreSQL" in text


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
