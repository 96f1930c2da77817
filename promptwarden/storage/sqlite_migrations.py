"""SQLite schema history. Step N (1-based) takes a database from version N-1 to N.

Append only: never edit a step that has shipped, since databases in the field already ran
it. `PRAGMA user_version` records how many steps a database has applied.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: guild settings, watched channels, generator bots, incidents, bot-wide meta.
    """
    CREATE TABLE guild_settings (
        guild_id          INTEGER PRIMARY KEY,
        modlog_channel_id INTEGER,
        screening_rules   TEXT,      -- JSON object, validated by the screening engine
        updated_at        TEXT NOT NULL
    );

    CREATE TABLE watched_channels (
        guild_id   INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('channel', 'category')),
        PRIMARY KEY (guild_id, channel_id)
    );

    CREATE TABLE generator_bots (
        guild_id INTEGER NOT NULL,
        bot_id   INTEGER NOT NULL,
        PRIMARY KEY (guild_id, bot_id)
    );

    CREATE TABLE incidents (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id       INTEGER NOT NULL,
        channel_id     INTEGER NOT NULL,
        message_id     INTEGER,
        user_id        INTEGER NOT NULL,
        prompt_excerpt TEXT NOT NULL,
        categories     TEXT NOT NULL,  -- JSON array of category names
        severity       TEXT NOT NULL,
        verdict        TEXT NOT NULL,
        matches        TEXT NOT NULL,  -- JSON array of Match.to_dict()
        action         TEXT NOT NULL,
        status         TEXT NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'upheld', 'dismissed')),
        created_at     TEXT NOT NULL   -- ISO 8601 UTC with microseconds: sorts as text
    );
    CREATE INDEX incidents_guild_created ON incidents (guild_id, created_at);
    CREATE INDEX incidents_guild_user ON incidents (guild_id, user_id);

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: state that several bot processes share: per-guild DM budgets, reminders sent.
    """
    CREATE TABLE dm_budget (
        guild_id   INTEGER PRIMARY KEY,
        tokens     REAL NOT NULL,   -- DMs still allowed now (a token bucket)
        updated_at REAL NOT NULL    -- Unix time of the last refill
    );

    CREATE TABLE reminders_sent (
        guild_id INTEGER NOT NULL,
        user_id  INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        sent_at  TEXT NOT NULL,
        PRIMARY KEY (guild_id, user_id, kind)
    );
    """,
)

LATEST_VERSION = len(MIGRATIONS)
