"""Storage: SQLite file specifics first, then behaviour both backends share.

Tests taking `database` run once on a SQLite file and once on a fresh PostgreSQL database.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import (
    EXCERPT_LIMIT,
    LATEST_VERSION,
    OutcomeRow,
    Storage,
    StorageError,
    open_storage,
)
from tests.helpers import GUILD_A, GUILD_B


async def add_incident(storage: Storage, guild_id: int, **fields: object) -> int:
    values: dict[str, object] = {
        "guild_id": guild_id,
        "channel_id": 10,
        "message_id": 20,
        "user_id": 30,
        "prompt_excerpt": "a knight, --no armor",
        "categories": ["sexual"],
        "severity": Severity.MEDIUM,
        "verdict": Verdict.WARN,
        "matches": [{"category": "sexual", "term": "no armor"}],
        "action": "warn",
    }
    values.update(fields)
    incident_id, _ = await storage.record_incident(**values)
    return incident_id


async def test_fresh_database_is_created_at_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "pw.db"
    async with await open_storage(path) as storage:
        assert storage.version_at_open == 0
        assert await storage.schema_version() == LATEST_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"guild_settings", "watched_channels", "generator_bots", "incidents", "meta"} <= tables


async def test_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    async with await open_storage(path) as storage:
        await storage.set_meta("k", "v")  # writes the WAL file too
        for file in tmp_path.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name


async def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    async with await open_storage(path) as storage:
        await storage.set_modlog_channel(GUILD_A, 42)
    async with await open_storage(path) as storage:
        assert storage.version_at_open == LATEST_VERSION
        assert await storage.get_modlog_channel(GUILD_A) == 42


def write_version_zero_database_with_user_data(path: Path) -> None:
    """What an older PromptWarden left: schema 0 and rows that are not ours to lose."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE operator_notes (note TEXT)")
        conn.execute("INSERT INTO operator_notes VALUES ('keep me')")


async def test_older_database_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    write_version_zero_database_with_user_data(path)

    async with await open_storage(path) as storage:
        assert storage.version_at_open == 0
        assert await storage.schema_version() == LATEST_VERSION
        await storage.set_modlog_channel(GUILD_A, 7)

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT note FROM operator_notes").fetchall() == [("keep me",)]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION


async def test_failed_upgrade_leaves_the_database_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        # A table in the way of creating the schema makes it fail half-way through.
        conn.execute("CREATE TABLE incidents (unrelated TEXT)")

    with pytest.raises(StorageError, match=r"create the tables of schema \d.*left unchanged"):
        await open_storage(path)

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"incidents"}  # guild_settings etc. rolled back


async def test_an_upgrade_failing_at_a_later_step_leaves_the_database_at_its_old_schema(
    tmp_path: Path,
) -> None:
    from tests.promptwarden.storage.old_schemas import script

    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(script(1, "sqlite"))
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO meta VALUES ('kept', 'yes')")
        # A table in the way of step 3; step 2 alone would succeed.
        conn.execute("CREATE TABLE appeals (unrelated TEXT)")

    with pytest.raises(StorageError, match=r"from schema 2 to 3.*left unchanged"):
        await open_storage(path)

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("SELECT value FROM meta").fetchall() == [("yes",)]
    assert "strikes" not in tables  # step 2 was rolled back with step 3


async def test_newer_database_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")

    with pytest.raises(StorageError) as refused:
        await open_storage(path)

    assert str(refused.value) == (
        f"this database was written by a newer PromptWarden (schema {LATEST_VERSION + 5}); "
        f"this version knows up to {LATEST_VERSION}; upgrade PromptWarden or point "
        "DATABASE_PATH elsewhere"
    )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION + 5


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100)
    with pytest.raises(StorageError, match="is not a PromptWarden database"):
        await open_storage(path)
    assert path.read_text().startswith("not a database")


async def test_guild_settings_round_trip(database: str) -> None:
    async with await open_storage(database) as storage:
        assert await storage.get_modlog_channel(GUILD_A) is None
        assert await storage.get_screening_rules(GUILD_A) is None
        rules = {"actions": {"sexual": "block"}, "custom_terms": [["héllo*", "hate", 2]]}
        await storage.set_screening_rules(GUILD_A, rules)
        await storage.set_modlog_channel(GUILD_A, 99)
        assert await storage.get_screening_rules(GUILD_A) == rules
        assert await storage.get_modlog_channel(GUILD_A) == 99  # rules kept the channel
        await storage.set_modlog_channel(GUILD_A, None)
        assert await storage.get_modlog_channel(GUILD_A) is None
        assert await storage.get_screening_rules(GUILD_A) == rules


async def test_watched_channels_and_generator_bots(database: str) -> None:
    async with await open_storage(database) as storage:
        assert await storage.add_watched_channel(GUILD_A, 5)
        assert not await storage.add_watched_channel(GUILD_A, 5, "category")
        assert await storage.add_watched_channel(GUILD_A, 6)
        watched = await storage.list_watched_channels(GUILD_A)
        assert [(w.channel_id, w.kind) for w in watched] == [(5, "category"), (6, "channel")]
        assert await storage.remove_watched_channel(GUILD_A, 6)
        assert not await storage.remove_watched_channel(GUILD_A, 6)
        with pytest.raises(ValueError, match="kind"):
            await storage.add_watched_channel(GUILD_A, 7, "forum")  # type: ignore[arg-type]

        assert await storage.add_generator_bot(GUILD_A, 936929561302675456)
        assert not await storage.add_generator_bot(GUILD_A, 936929561302675456)
        assert await storage.list_generator_bots(GUILD_A) == [936929561302675456]
        assert await storage.remove_generator_bot(GUILD_A, 936929561302675456)
        assert await storage.list_generator_bots(GUILD_A) == []


async def test_every_setting_of_a_guild_is_read_together_and_only_its_own(database: str) -> None:
    async with await open_storage(database) as storage:
        empty = await storage.get_guild_settings(GUILD_A)
        assert (empty.screening_rules, empty.enforcement, empty.privacy) == (None, None, None)
        assert (empty.modlog_channel_id, empty.watched, empty.generator_bots) == (None, (), ())
        await storage.set_screening_rules(GUILD_A, {"learned": False})
        await storage.set_enforcement_config(GUILD_A, {"moderators_exempt": False})
        await storage.set_privacy_config(GUILD_A, {"dm_per_minute": 3})
        await storage.set_modlog_channel(GUILD_A, 99)
        await storage.add_watched_channel(GUILD_A, 6)
        await storage.add_watched_channel(GUILD_A, 5, "category")
        await storage.add_generator_bot(GUILD_A, 42)
        await storage.set_privacy_config(GUILD_B, {"dm_per_minute": 9})
        await storage.add_watched_channel(GUILD_B, 7)
        await storage.add_generator_bot(GUILD_B, 43)

        saved = await storage.get_guild_settings(GUILD_A)
        assert saved.screening_rules == {"learned": False}
        assert saved.enforcement == {"moderators_exempt": False}
        assert saved.privacy == {"dm_per_minute": 3}
        assert saved.modlog_channel_id == 99
        assert [(w.channel_id, w.kind) for w in saved.watched] == [(5, "category"), (6, "channel")]
        assert saved.watched == tuple(await storage.list_watched_channels(GUILD_A))
        assert saved.generator_bots == (42,)


async def test_incidents_round_trip_and_filter(database: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with await open_storage(database) as storage:
        first = await add_incident(storage, GUILD_A, created_at=start)
        second = await add_incident(
            storage,
            GUILD_A,
            message_id=21,
            user_id=31,
            created_at=start + timedelta(days=1),
            status="upheld",
        )
        long_one = await add_incident(
            storage,
            GUILD_A,
            message_id=22,
            prompt_excerpt="x" * 5000,
            created_at=start + timedelta(days=2),
        )

        incident = await storage.get_incident(GUILD_A, first)
        assert incident is not None
        assert incident.prompt_excerpt == "a knight, --no armor"
        assert incident.categories == ("sexual",)
        assert incident.severity is Severity.MEDIUM and incident.verdict is Verdict.WARN
        assert incident.matches == ({"category": "sexual", "term": "no armor"},)
        assert incident.status == "open" and incident.created_at == start

        stored_long = await storage.get_incident(GUILD_A, long_one)
        assert stored_long is not None and len(stored_long.prompt_excerpt) == EXCERPT_LIMIT

        ids = [i.id for i in await storage.find_incidents(GUILD_A)]
        assert ids == [long_one, second, first]  # newest first
        assert [i.id for i in await storage.find_incidents(GUILD_A, user_id=31)] == [second]
        assert [i.id for i in await storage.find_incidents(GUILD_A, status="upheld")] == [second]
        since = await storage.find_incidents(GUILD_A, since=start + timedelta(hours=1))
        assert [i.id for i in since] == [long_one, second]
        page = await storage.find_incidents(GUILD_A, before_id=long_one, limit=1)
        assert [i.id for i in page] == [second]


async def test_one_guild_cannot_read_another_guilds_rows(database: str) -> None:
    async with await open_storage(database) as storage:
        incident_b = await add_incident(storage, GUILD_B)
        await storage.set_modlog_channel(GUILD_B, 1)
        await storage.set_screening_rules(GUILD_B, {"secret": True})
        await storage.add_watched_channel(GUILD_B, 2)
        await storage.add_generator_bot(GUILD_B, 3)

        assert await storage.get_incident(GUILD_A, incident_b) is None
        assert await storage.find_incidents(GUILD_A) == []
        assert await storage.get_modlog_channel(GUILD_A) is None
        assert await storage.get_screening_rules(GUILD_A) is None
        assert await storage.list_watched_channels(GUILD_A) == []
        assert await storage.list_generator_bots(GUILD_A) == []
        assert not await storage.remove_watched_channel(GUILD_A, 2)
        assert not await storage.remove_generator_bot(GUILD_A, 3)
        # B's rows are untouched by A's attempts.
        assert [w.channel_id for w in await storage.list_watched_channels(GUILD_B)] == [2]
        assert await storage.get_incident(GUILD_B, incident_b) is not None


async def test_meta_and_closed_storage(database: str) -> None:
    storage = await open_storage(database)
    assert await storage.get_meta("command_sync") is None
    await storage.set_meta("command_sync", "abc")
    await storage.set_meta("command_sync", "def")
    assert await storage.get_meta("command_sync") == "def"
    await storage.close()
    await storage.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        await storage.get_meta("command_sync")


async def test_naive_timestamps_are_rejected(database: str) -> None:
    async with await open_storage(database) as storage:
        with pytest.raises(ValueError, match="timezone-aware"):
            await add_incident(storage, GUILD_A, created_at=datetime(2026, 1, 1))


async def test_a_full_disk_keeps_its_own_error_and_the_next_write_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite rolls a transaction back itself on SQLITE_FULL; the error a caller sees must be
    the full disk, not a failed ROLLBACK, and the store must keep working once space is back."""
    async with await open_storage(tmp_path / "pw.db") as storage:
        conn = storage.backend._connection()  # the store's own (single) connection
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        await conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")  # a "full disk"
        with pytest.raises(Exception) as failed:
            for n in range(200):
                await add_incident(storage, GUILD_A, message_id=n, prompt_excerpt="x" * 900)
        assert "database or disk is full" in str(failed.value)
        assert "no transaction is active" not in str(failed.value)
        assert "x" * 50 not in str(failed.value)  # the prompt stays out of the error
        full = [r for r in caplog.records if "disk is full" in r.getMessage()]
        assert len(full) == 1 and full[0].levelname == "ERROR"
        stored = len(await storage.find_incidents(GUILD_A, limit=500))  # reads still work

        await conn.exec_driver_sql("PRAGMA max_page_count = 1000000")  # space is back
        await add_incident(storage, GUILD_A, message_id=9999, prompt_excerpt="after")
        assert len(await storage.find_incidents(GUILD_A, limit=500)) == stored + 1


async def test_schema_4_state_is_written_and_read_as_columns(database: str) -> None:
    async with await open_storage(database) as storage:
        incident_id = await add_incident(storage, GUILD_A, source="automod")
        now = datetime.now(UTC)
        posted = OutcomeRow(GUILD_A, incident_id, "modlog", "done", "", now, modlog=(60, 600))
        elsewhere = dataclasses.replace(posted, guild_id=GUILD_B, modlog=(61, 601))
        await storage.add_outcomes([posted, elsewhere])  # the second is not that guild's
        incident = await storage.get_incident(GUILD_A, incident_id)
        assert incident is not None and incident.source == "automod"
        assert (incident.modlog_channel_id, incident.modlog_message_id) == (60, 600)
        window = timedelta(days=30)
        assert await storage.add_strike(GUILD_A, 30, 2, incident_id=None, window=window) == (0, 2)
        assert await storage.add_strike(GUILD_A, 30, 3, incident_id=incident_id, window=window) == (
            2,
            5,
        )
        totals = [
            (s.points_before, s.points_after) for s in await storage.list_strikes(GUILD_A, 30)
        ]
        assert totals == [(2, 5), (0, 2)]
        appeal = await storage.create_appeal(GUILD_A, incident_id, 30, "please")
        assert appeal is not None and appeal.modlog_message_id is None
        await storage.set_appeal_modlog(GUILD_A, appeal.id, 60, 700)
        stored = await storage.get_appeal(GUILD_A, appeal.id)
        assert stored is not None
        assert (stored.modlog_channel_id, stored.modlog_message_id) == (60, 700)
        with pytest.raises(ValueError, match="source"):
            await add_incident(storage, GUILD_A, message_id=99, source="rumour")


async def test_incidents_keep_what_raised_them_and_one_message_stays_one_incident(
    database: str,
) -> None:
    async with await open_storage(database) as storage:
        screened = await add_incident(storage, GUILD_A)
        blocked = await add_incident(
            storage, GUILD_A, message_id=None, source="automod", job_key="automod:1"
        )
        again, created = await storage.record_incident(
            guild_id=GUILD_A,
            channel_id=10,
            message_id=20,
            user_id=30,
            prompt_excerpt="",
            categories=["custom"],
            severity=Severity.HIGH,
            verdict=Verdict.REVIEW,
            matches=[],
            action="review",
            source="report",
        )
        assert (again, created) == (screened, False)
        first = await storage.get_incident(GUILD_A, screened)
        second = await storage.get_incident(GUILD_A, blocked)
        assert first is not None and first.source == "screening"
        assert second is not None and second.source == "automod"
        with pytest.raises(ValueError, match="source must be one of"):
            await add_incident(storage, GUILD_A, message_id=99, source="rumour")


async def test_upgrading_from_schema_3_marks_old_incidents_as_screened(tmp_path: Path) -> None:
    from tests.promptwarden.storage.old_schemas import script

    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        for version in (1, 2, 3):
            conn.executescript(script(version, "sqlite"))
        conn.execute("PRAGMA user_version = 3")
        conn.execute(
            "INSERT INTO incidents (guild_id, channel_id, message_id, user_id, prompt_excerpt, "
            "categories, severity, verdict, matches, action, status, created_at) VALUES "
            "(1, 2, 3, 4, 'old', '[]', 'high', 'block', '[]', 'block', 'open', "
            "'2026-01-01T00:00:00+00:00')"
        )
    async with await open_storage(path) as storage:
        assert storage.version_at_open == 3
        (old,) = await storage.find_incidents(1)
        assert old.source == "screening" and old.prompt_excerpt == "old"
