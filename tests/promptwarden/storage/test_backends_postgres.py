"""PostgreSQL specifics: migrations shared by processes, the same schema as SQLite,
notifications across connections, races between two storages, connection errors.

Every test here gets a brand-new database on the server named by
PROMPTWARDEN_TEST_POSTGRES_URL, and two Storage objects stand for two bot processes:
each has its own pool of connections.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from promptwarden.storage import (
    LATEST_VERSION,
    Storage,
    StorageError,
    open_storage,
)
from tests.helpers import POSTGRES_URL, needs_postgres

pytestmark = needs_postgres

GUILD = 111111111111111111
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def pg_columns(url: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'schema_version' "
            "ORDER BY table_name, ordinal_position"
        )
    finally:
        await conn.close()
    tables: dict[str, list[str]] = {}
    for row in rows:
        tables.setdefault(row["table_name"], []).append(row["column_name"])
    return tables


def sqlite_columns(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {n: [c[1] for c in conn.execute(f"PRAGMA table_info({n})")] for n in names}


async def test_one_history_makes_the_same_tables_and_columns_on_both(
    postgres_url: str, tmp_path: Path
) -> None:
    async with await open_storage(tmp_path / "pw.db"):
        pass
    async with await open_storage(postgres_url) as storage:
        assert storage.version_at_open == 0
        assert await storage.schema_version() == LATEST_VERSION
    assert await pg_columns(postgres_url) == sqlite_columns(tmp_path / "pw.db")


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    first, second = await asyncio.gather(open_storage(postgres_url), open_storage(postgres_url))
    try:
        assert sorted([first.version_at_open, second.version_at_open]) == [0, LATEST_VERSION]
        await first.set_meta("k", "from first")
        assert await second.get_meta("k") == "from first"
    finally:
        await first.close()
        await second.close()


async def test_newer_schema_is_refused_with_both_versions(postgres_url: str) -> None:
    async with await open_storage(postgres_url):
        pass
    conn = await asyncpg.connect(postgres_url)
    await conn.execute("UPDATE schema_version SET version = $1", LATEST_VERSION + 5)
    await conn.close()

    with pytest.raises(StorageError) as refused:
        await open_storage(postgres_url)

    assert str(refused.value) == (
        f"this database was written by a newer PromptWarden (schema {LATEST_VERSION + 5}); "
        f"this version knows up to {LATEST_VERSION}; upgrade PromptWarden or point "
        "DATABASE_URL elsewhere"
    )


async def test_failed_migration_leaves_the_database_unchanged(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    await conn.execute("CREATE TABLE incidents (unrelated TEXT)")
    await conn.close()

    with pytest.raises(StorageError, match="left unchanged"):
        await open_storage(postgres_url)

    assert set(await pg_columns(postgres_url)) == {"incidents"}


async def test_a_setting_changed_by_one_process_reaches_another(postgres_url: str) -> None:
    """Two pools, two LISTEN/NOTIFY ends: the way two machines see each other's changes."""
    writer = await open_storage(postgres_url)
    reader = await open_storage(postgres_url)
    heard: asyncio.Queue[int | None] = asyncio.Queue()
    try:
        await reader.subscribe_settings_changes(heard.put_nowait)
        await writer.set_screening_rules(GUILD, {"actions": {"gore": "block"}})
        assert await asyncio.wait_for(heard.get(), 10) == GUILD
        await writer.set_modlog_channel(GUILD + 1, 5)
        assert await asyncio.wait_for(heard.get(), 10) == GUILD + 1
        assert await reader.get_screening_rules(GUILD) == {"actions": {"gore": "block"}}
    finally:
        await writer.close()
        await reader.close()


async def test_watch_and_generator_bot_changes_reach_another_process(postgres_url: str) -> None:
    """`/watch add` on one shard's process must reach every other's cache."""
    writer = await open_storage(postgres_url)
    reader = await open_storage(postgres_url)
    heard: asyncio.Queue[int | None] = asyncio.Queue()
    try:
        await reader.subscribe_settings_changes(heard.put_nowait)
        await writer.add_watched_channel(GUILD, 10)
        assert await asyncio.wait_for(heard.get(), 10) == GUILD
        await writer.add_generator_bot(GUILD + 1, 99)
        assert await asyncio.wait_for(heard.get(), 10) == GUILD + 1
        await writer.remove_watched_channel(GUILD, 10)
        assert await asyncio.wait_for(heard.get(), 10) == GUILD
        await writer.remove_generator_bot(GUILD + 1, 99)
        assert await asyncio.wait_for(heard.get(), 10) == GUILD + 1
    finally:
        await writer.close()
        await reader.close()


async def test_own_change_is_heard_once_at_commit_not_again_as_an_echo(postgres_url: str) -> None:
    storage = await open_storage(postgres_url)
    heard: list[int | None] = []
    try:
        await storage.subscribe_settings_changes(heard.append)
        await storage.add_watched_channel(GUILD, 10)
        assert heard == [GUILD]  # announced by the time the write returns
        await storage.set_meta("k", "v")  # a later round trip: any echo has arrived by now
        await asyncio.sleep(0.5)
        assert heard == [GUILD]
    finally:
        await storage.close()


async def test_a_lost_notification_channel_reconnects_and_drops_every_cache(
    postgres_url: str,
) -> None:
    storage = await open_storage(postgres_url)
    heard: asyncio.Queue[int | None] = asyncio.Queue()
    try:
        await storage.subscribe_settings_changes(heard.put_nowait)
        admin = await asyncpg.connect(postgres_url)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        # Changes may have been missed while it was gone: everyone is told to forget all.
        assert await asyncio.wait_for(heard.get(), 20) is None
        await admin.close()
        await storage.set_modlog_channel(GUILD, 1)
        assert await asyncio.wait_for(heard.get(), 10) == GUILD
    finally:
        await storage.close()


async def test_two_processes_share_one_dm_budget(postgres_url: str) -> None:
    one = await open_storage(postgres_url)
    two = await open_storage(postgres_url)
    try:
        results = await asyncio.gather(
            *(s.take_dm_budget(GUILD, limit=5, now=T0) for _ in range(10) for s in (one, two))
        )
    finally:
        await one.close()
        await two.close()
    assert results.count(True) == 5


async def test_two_processes_racing_for_one_reminder_send_it_once(postgres_url: str) -> None:
    one = await open_storage(postgres_url)
    two = await open_storage(postgres_url)
    try:
        results = await asyncio.gather(
            *(
                s.claim_reminder(GUILD, 7, "privacy", interval=timedelta(days=30), now=T0)
                for _ in range(5)
                for s in (one, two)
            )
        )
    finally:
        await one.close()
        await two.close()
    assert results.count(True) == 1


async def test_text_postgres_cannot_hold_is_dropped_not_the_incident(postgres_url: str) -> None:
    from promptwarden.screening.decision import Severity, Verdict

    async with await open_storage(postgres_url) as storage:
        incident_id, _ = await storage.record_incident(
            guild_id=GUILD,
            channel_id=1,
            message_id=2,
            user_id=3,
            prompt_excerpt="nul\x00byte",
            categories=["sexual"],
            severity=Severity.LOW,
            verdict=Verdict.WARN,
            matches=[{"term": "a\x00b"}],
            action="warn",
        )
        incident = await storage.get_incident(GUILD, incident_id)
    assert incident is not None
    assert incident.prompt_excerpt == "nulbyte" and incident.matches == ({"term": "ab"},)


def with_netloc(url: str, **parts: str) -> str:
    split = urlsplit(url)
    user = parts.get("user", split.username or "")
    password = parts.get("password", split.password or "")
    host = parts.get("host", f"{split.hostname}:{split.port}")
    path = parts.get("path", split.path)
    return split._replace(netloc=f"{user}:{password}@{host}", path=path).geturl()


async def test_wrong_password_is_one_line_without_the_password() -> None:
    url = with_netloc(POSTGRES_URL, password="not-the-password-xyz")
    with pytest.raises(StorageError) as refused:
        await open_storage(url)
    message = str(refused.value)
    assert "not-the-password-xyz" not in message and ":***@" in message
    assert "check the user name and password in DATABASE_URL" in message
    assert "\n" not in message


async def test_missing_database_says_to_create_it() -> None:
    with pytest.raises(StorageError, match="create the database first"):
        await open_storage(with_netloc(POSTGRES_URL, path="/no_such_database_here"))


async def test_unreachable_server_asks_whether_it_runs() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    url = with_netloc(POSTGRES_URL, host=f"127.0.0.1:{free_port}")
    with pytest.raises(StorageError, match="is the server running") as refused:
        await open_storage(url)
    assert urlsplit(POSTGRES_URL).password not in str(refused.value)


async def test_two_processes_striking_one_member_cross_each_threshold_once(
    postgres_url: str,
) -> None:
    from datetime import timedelta

    from promptwarden.policy import StrikePolicy

    policy = StrikePolicy()  # timeouts at 3 points (1 h) and 5 points (1 day)
    one = await open_storage(postgres_url, max_connections=10)
    two = await open_storage(postgres_url, max_connections=10)
    try:
        pairs = await asyncio.gather(
            *(
                storage.add_strike(GUILD, 30, 1, incident_id=None, window=timedelta(days=30))
                for _ in range(12)
                for storage in (one, two)
            )
        )
        total = await one.active_points(GUILD, 30, window=timedelta(days=30))
    finally:
        await one.close()
        await two.close()
    assert total == 24
    assert sorted(pairs) == [(n, n + 1) for n in range(24)]  # each saw every earlier strike
    earned = sorted(t for b, a in pairs if (t := policy.timeout_for(b, a)) is not None)
    assert earned == [timedelta(hours=1), timedelta(days=1)]  # one timeout per threshold


async def test_a_job_seen_by_two_processes_is_recorded_once(postgres_url: str) -> None:
    """Progress edits and the result of one Midjourney job reach both processes at once."""
    from promptwarden.screening.decision import Severity, Verdict

    one = await open_storage(postgres_url)
    two = await open_storage(postgres_url)

    async def see(storage: Storage, message_id: int) -> tuple[int, bool]:
        return await storage.record_incident(
            guild_id=GUILD,
            channel_id=1,
            message_id=message_id,
            user_id=3,
            prompt_excerpt="a naked man",
            categories=["sexual"],
            severity=Severity.HIGH,
            verdict=Verdict.BLOCK,
            matches=[],
            action="block",
            job_key="job-1",
        )

    try:
        results = await asyncio.gather(
            *(see(storage, 100 + n) for n in range(6) for storage in (one, two))
        )
        incidents = await one.find_incidents(GUILD)
    finally:
        await one.close()
        await two.close()
    assert [new for _, new in results].count(True) == 1
    assert len({incident_id for incident_id, _ in results}) == 1
    assert len(incidents) == 1
