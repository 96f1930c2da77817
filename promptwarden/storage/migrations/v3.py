"""Schema 3: privacy. Per-guild privacy settings, each member's own preferences (one row per
person, for every guild), the last reminder of each kind per person and guild, appeals (at
most one open per incident), and the per-guild DM budget. Export and erasure look rows up
by user across guilds, hence the user indexes."""

SCRIPT = """
    ALTER TABLE guild_settings ADD COLUMN privacy {json};

    CREATE TABLE member_preferences (
        user_id           {big} PRIMARY KEY,
        reminders_enabled {bool},
        updated_at        {time} NOT NULL
    );

    CREATE TABLE reminders_sent (
        guild_id {big} NOT NULL,
        user_id  {big} NOT NULL,
        kind     TEXT NOT NULL,
        sent_at  {time} NOT NULL,
        PRIMARY KEY (guild_id, user_id, kind)
    );
    CREATE INDEX reminders_sent_user ON reminders_sent (user_id);

    CREATE TABLE appeals (
        id           {id},
        guild_id     {big} NOT NULL,
        incident_id  {big} NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        user_id      {big} NOT NULL,
        reason       TEXT NOT NULL CHECK (length(reason) <= 1000),
        status       TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'accepted', 'rejected')),
        moderator_id {big},
        created_at   {time} NOT NULL,
        decided_at   {time}
    );
    CREATE UNIQUE INDEX appeals_one_open ON appeals (guild_id, incident_id) WHERE status = 'open';
    CREATE INDEX appeals_incident ON appeals (guild_id, incident_id);
    CREATE INDEX appeals_user ON appeals (user_id);

    CREATE TABLE dm_budget (
        guild_id     {big} PRIMARY KEY,
        window_start {time} NOT NULL,
        count        INTEGER NOT NULL
    );

    CREATE INDEX incidents_user ON incidents (user_id);
    CREATE INDEX strikes_user ON strikes (user_id);
"""
