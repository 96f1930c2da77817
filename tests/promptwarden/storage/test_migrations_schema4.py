"""Upgrading a schema-3 database moves the state older versions kept in free text (the
mod-log message in an action's detail, a strike's totals as "+2: 1 -> 3") into columns,
on both backends, and new rows fill those columns themselves."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import OutcomeRow, Storage, open_storage
from tests.helpers import needs_postgres
from tests.promptwarden.storage.old_schemas import script

GUILD = 10
MODLOG = 20
WHEN = "2026-01-01T00:00:00.000000+00:00"

# Rows as schema 3 wrote them: the state lives only in the action details.
OLD_ROWS = (
    f"INSERT INTO guild_settings (guild_id, modlog_channel_id, updated_at) "
    f"VALUES ({GUILD}, {MODLOG}, '{WHEN}')",
    "INSERT INTO incidents (id, guild_id, channel_id, message_id, user_id, prompt_excerpt, "
    "categories, severity, verdict, matches, action, status, created_at) VALUES "
    f"(1, {GUILD}, 30, 40, 50, 'a prompt', '[\"sexual\"]', 'high', 'block', '[]', 'block', "
    f"'open', '{WHEN}')",
    "INSERT INTO incidents (id, guild_id, channel_id, message_id, user_id, prompt_excerpt, "
    "categories, severity, verdict, matches, action, status, created_at) VALUES "
    f"(2, {GUILD}, 30, 41, 50, 'another', '[\"sexual\"]', 'high', 'review', '[]', 'review', "
    f"'open', '{WHEN}')",
    "INSERT INTO incident_actions (guild_id, incident_id, action, outcome, detail, at) VALUES "
    f"({GUILD}, 1, 'modlog', 'done', 'message 555', '{WHEN}'), "
    f"({GUILD}, 1, 'strike', 'done', '+2: 1 -> 3', '{WHEN}'), "
    f"({GUILD}, 1, 'appeal_modlog', 'done', 'appeal #7: message 777', '{WHEN}'), "
    f"({GUILD}, 2, 'modlog', 'failed', 'HTTP 500', '{WHEN}')",
    "INSERT INTO strikes (id, guild_id, user_id, incident_id, points, created_at) VALUES "
    f"(1, {GUILD}, 50, 1, 2, '{WHEN}')",
    "INSERT INTO appeals (id, guild_id, incident_id, user_id, reason, status, created_at) "
    f"VALUES (7, {GUILD}, 1, 50, 'it was art', 'open', '{WHEN}')",
)


async def check_moved(storage_target: Path | str) -> None:
    async with await open_storage(storage_target) as storage:
        first = await storage.get_incident(GUILD, 1)
        second = await storage.get_incident(GUILD, 2)
        assert first is not None and second is not None
        assert (first.modlog_channel_id, first.modlog_message_id) == (MODLOG, 555)
        assert (second.modlog_channel_id, second.modlog_message_id) == (None, None)
        assert first.source == "screening"
        (strike,) = await storage.list_strikes(GUILD, 50)
        assert (strike.points_before, strike.points_after) == (1, 3)
        appeal = await storage.get_appeal(GUILD, 7)
        assert appeal is not None
        assert (appeal.modlog_channel_id, appeal.modlog_message_id) == (MODLOG, 777)


async def test_sqlite_schema_3_upgrades_moving_free_text_state(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as conn:
        for version in (1, 2, 3):
            conn.executescript(script(version, "sqlite"))
        for row in OLD_ROWS:
            conn.execute(row)
        conn.execute("PRAGMA user_version = 3")
    await check_moved(path)


@needs_postgres
async def test_postgres_schema_3_upgrades_moving_free_text_state(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_version (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE "
            "CHECK (singleton), version INTEGER NOT NULL); "
            "INSERT INTO schema_version VALUES (TRUE, 0)"
        )
        for version in (1, 2, 3):
            await conn.execute(script(version, "postgresql"))
        for row in OLD_ROWS:
            await conn.execute(row)
        await conn.execute("SELECT setval(pg_get_serial_sequence('incidents', 'id'), 10)")
        await conn.execute("UPDATE schema_version SET version = 3")
    finally:
        await conn.close()
    await check_moved(postgres_url)


async def test_new_rows_carry_modlog_and_strike_steps(storage: Storage) -> None:
    now = datetime.now(UTC)
    incident_id, _ = await storage.record_incident(
        guild_id=GUILD,
        channel_id=30,
        message_id=40,
        user_id=50,
        prompt_excerpt="x",
        categories=["sexual"],
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=[],
        action="block",
        source="automod",
    )
    posted = OutcomeRow(GUILD, incident_id, "modlog", "done", "", now, modlog=(MODLOG, 999))
    await storage.add_outcomes([posted])
    incident = await storage.get_incident(GUILD, incident_id)
    assert incident is not None
    assert (incident.modlog_channel_id, incident.modlog_message_id) == (MODLOG, 999)
    assert incident.source == "automod"
    window = timedelta(days=30)
    await storage.add_strike(GUILD, 50, 1, incident_id=None, window=window, now=now)
    assert await storage.add_strike(
        GUILD, 50, 2, incident_id=incident_id, window=window, now=now
    ) == (1, 3)
    strikes = await storage.list_strikes(GUILD, 50)
    assert [(s.points_before, s.points_after) for s in strikes] == [(1, 3), (0, 1)]
    appeal = await storage.create_appeal(GUILD, incident_id, 50, "why", now=now)
    assert appeal is not None
    await storage.set_appeal_modlog(GUILD, appeal.id, MODLOG, 1234)
    stored = await storage.get_appeal(GUILD, appeal.id)
    assert stored is not None
    assert (stored.modlog_channel_id, stored.modlog_message_id) == (MODLOG, 1234)
