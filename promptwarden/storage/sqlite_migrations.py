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
    # 2: enforcement. One incident per message and per generation job (unique keys, so a
    # restart or a second process never doubles one), strikes, each action's outcome,
    # mod-log button presses, per-guild enforcement settings, catch-up cursors.
    """
    ALTER TABLE incidents ADD COLUMN job_key TEXT;
    CREATE UNIQUE INDEX incidents_guild_message ON incidents (guild_id, message_id);
    CREATE UNIQUE INDEX incidents_guild_job ON incidents (guild_id, job_key);

    ALTER TABLE guild_settings ADD COLUMN enforcement TEXT;  -- JSON object

    CREATE TABLE strikes (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id    INTEGER NOT NULL,
        user_id     INTEGER NOT NULL,
        incident_id INTEGER REFERENCES incidents (id) ON DELETE SET NULL,
        points      INTEGER NOT NULL CHECK (points > 0),
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
    CREATE INDEX strikes_guild_user ON strikes (guild_id, user_id, created_at);
    CREATE UNIQUE INDEX strikes_guild_incident ON strikes (guild_id, incident_id);

    CREATE TABLE incident_actions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id    INTEGER NOT NULL,
        incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        action      TEXT NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN
                    ('done', 'forbidden', 'not_found', 'rate_limited', 'failed', 'skipped')),
        detail      TEXT NOT NULL DEFAULT '',
        at          TEXT NOT NULL
    );
    CREATE INDEX incident_actions_incident ON incident_actions (guild_id, incident_id);

    CREATE TABLE modlog_presses (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id     INTEGER NOT NULL,
        incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        moderator_id INTEGER NOT NULL,
        action       TEXT NOT NULL,
        at           TEXT NOT NULL
    );
    CREATE INDEX modlog_presses_incident ON modlog_presses (guild_id, incident_id);

    CREATE TABLE catchup_cursors (
        guild_id        INTEGER NOT NULL,
        channel_id      INTEGER NOT NULL,
        last_message_id INTEGER NOT NULL,
        PRIMARY KEY (guild_id, channel_id)
    );
    """,
    # 3: privacy. Per-guild privacy settings (JSON), each member's own preferences (one
    # row per person, for every guild), the last reminder of each kind per person and
    # guild, appeals (at most one open per incident), and the per-guild DM budget.
    # Export and erasure look rows up by user across guilds, hence the user indexes.
    """
    ALTER TABLE guild_settings ADD COLUMN privacy TEXT;  -- JSON object

    CREATE TABLE member_preferences (
        user_id           INTEGER PRIMARY KEY,
        reminders_enabled INTEGER NOT NULL CHECK (reminders_enabled IN (0, 1)),
        updated_at        TEXT NOT NULL
    );

    CREATE TABLE reminders_sent (
        guild_id INTEGER NOT NULL,
        user_id  INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        sent_at  TEXT NOT NULL,
        PRIMARY KEY (guild_id, user_id, kind)
    );
    CREATE INDEX reminders_sent_user ON reminders_sent (user_id);

    CREATE TABLE appeals (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id     INTEGER NOT NULL,
        incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        user_id      INTEGER NOT NULL,
        reason       TEXT NOT NULL CHECK (length(reason) <= 1000),
        status       TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'accepted', 'rejected')),
        moderator_id INTEGER,
        created_at   TEXT NOT NULL,
        decided_at   TEXT
    );
    CREATE UNIQUE INDEX appeals_one_open ON appeals (guild_id, incident_id) WHERE status = 'open';
    CREATE INDEX appeals_incident ON appeals (guild_id, incident_id);
    CREATE INDEX appeals_user ON appeals (user_id);

    CREATE TABLE dm_budget (
        guild_id     INTEGER PRIMARY KEY,
        window_start TEXT NOT NULL,
        count        INTEGER NOT NULL
    );

    CREATE INDEX incidents_user ON incidents (user_id);
    CREATE INDEX strikes_user ON strikes (user_id);
    """,
    # 4: structured state. Where each incident's and appeal's mod-log message is, a
    # strike's active points before and after it, and what raised an incident. The
    # values older versions wrote as free text into action details are moved over once,
    # here: "message <id>", "appeal #N: message <id>", "+P: B -> A".
    """
    ALTER TABLE incidents ADD COLUMN modlog_channel_id INTEGER;
    ALTER TABLE incidents ADD COLUMN modlog_message_id INTEGER;
    ALTER TABLE incidents ADD COLUMN source TEXT NOT NULL DEFAULT 'screening'
        CHECK (source IN ('screening', 'automod', 'report'));
    ALTER TABLE appeals ADD COLUMN modlog_channel_id INTEGER;
    ALTER TABLE appeals ADD COLUMN modlog_message_id INTEGER;
    ALTER TABLE strikes ADD COLUMN points_before INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE strikes ADD COLUMN points_after INTEGER NOT NULL DEFAULT 0;

    UPDATE incidents SET modlog_message_id = (
        SELECT CAST(substr(a.detail, 9) AS INTEGER) FROM incident_actions a
        WHERE a.guild_id = incidents.guild_id AND a.incident_id = incidents.id
          AND a.action = 'modlog' AND a.outcome = 'done' AND a.detail GLOB 'message [0-9]*'
        ORDER BY a.id DESC LIMIT 1);
    UPDATE incidents SET modlog_channel_id = (
        SELECT g.modlog_channel_id FROM guild_settings g WHERE g.guild_id = incidents.guild_id)
    WHERE modlog_message_id IS NOT NULL;

    UPDATE appeals SET modlog_message_id = (
        SELECT CAST(substr(a.detail, length('appeal #' || appeals.id || ': message ') + 1)
                    AS INTEGER)
        FROM incident_actions a
        WHERE a.guild_id = appeals.guild_id AND a.incident_id = appeals.incident_id
          AND a.action = 'appeal_modlog' AND a.outcome = 'done'
          AND a.detail GLOB 'appeal #' || appeals.id || ': message [0-9]*'
        ORDER BY a.id DESC LIMIT 1);
    UPDATE appeals SET modlog_channel_id = (
        SELECT g.modlog_channel_id FROM guild_settings g WHERE g.guild_id = appeals.guild_id)
    WHERE modlog_message_id IS NOT NULL;

    CREATE TEMP TABLE strike_steps AS
        SELECT a.guild_id, a.incident_id, a.detail,
               instr(a.detail, ': ') AS colon, instr(a.detail, ' -> ') AS arrow
        FROM incident_actions a
        WHERE a.action = 'strike' AND a.outcome = 'done'
          AND a.detail GLOB '+[0-9]*: [0-9]* -> [0-9]*'
          AND a.id = (SELECT max(b.id) FROM incident_actions b WHERE b.guild_id = a.guild_id
                      AND b.incident_id = a.incident_id AND b.action = 'strike'
                      AND b.outcome = 'done');
    UPDATE strikes SET
        points_before = (SELECT CAST(substr(s.detail, s.colon + 2, s.arrow - s.colon - 2)
                                     AS INTEGER)
                         FROM strike_steps s WHERE s.guild_id = strikes.guild_id
                         AND s.incident_id = strikes.incident_id),
        points_after = (SELECT CAST(substr(s.detail, s.arrow + 4) AS INTEGER)
                        FROM strike_steps s WHERE s.guild_id = strikes.guild_id
                        AND s.incident_id = strikes.incident_id)
    WHERE EXISTS (SELECT 1 FROM strike_steps s WHERE s.guild_id = strikes.guild_id
                  AND s.incident_id = strikes.incident_id);
    DROP TABLE strike_steps;
    """,
)

LATEST_VERSION = len(MIGRATIONS)
