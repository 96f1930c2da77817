"""Schema 2: enforcement. One incident per message and per generation job (unique keys, so a
restart or a second process never doubles one), strikes, each action's outcome, mod-log
button presses, per-guild enforcement settings, catch-up cursors."""

SCRIPT = """
    ALTER TABLE incidents ADD COLUMN job_key TEXT;
    CREATE UNIQUE INDEX incidents_guild_message ON incidents (guild_id, message_id);
    CREATE UNIQUE INDEX incidents_guild_job ON incidents (guild_id, job_key);

    ALTER TABLE guild_settings ADD COLUMN enforcement {json};

    CREATE TABLE strikes (
        id          {id},
        guild_id    {big} NOT NULL,
        user_id     {big} NOT NULL,
        incident_id {big} REFERENCES incidents (id) ON DELETE SET NULL,
        points      INTEGER NOT NULL CHECK (points > 0),
        created_at  {time} NOT NULL,
        revoked_at  {time}
    );
    CREATE INDEX strikes_guild_user ON strikes (guild_id, user_id, created_at);
    CREATE UNIQUE INDEX strikes_guild_incident ON strikes (guild_id, incident_id);

    CREATE TABLE incident_actions (
        id          {id},
        guild_id    {big} NOT NULL,
        incident_id {big} NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        action      TEXT NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN
                    ('done', 'forbidden', 'not_found', 'rate_limited', 'failed', 'skipped')),
        detail      TEXT NOT NULL DEFAULT '',
        at          {time} NOT NULL
    );
    CREATE INDEX incident_actions_incident ON incident_actions (guild_id, incident_id);

    CREATE TABLE modlog_presses (
        id           {id},
        guild_id     {big} NOT NULL,
        incident_id  {big} NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        moderator_id {big} NOT NULL,
        action       TEXT NOT NULL,
        at           {time} NOT NULL
    );
    CREATE INDEX modlog_presses_incident ON modlog_presses (guild_id, incident_id);

    CREATE TABLE catchup_cursors (
        guild_id        {big} NOT NULL,
        channel_id      {big} NOT NULL,
        last_message_id {big} NOT NULL,
        PRIMARY KEY (guild_id, channel_id)
    );
"""
