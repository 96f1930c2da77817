"""Schema 1: guild settings, watched channels, generator bots, incidents, bot-wide meta."""

SCRIPT = """
    CREATE TABLE guild_settings (
        guild_id          {big} PRIMARY KEY,
        modlog_channel_id {big},
        screening_rules   {json},
        updated_at        {time} NOT NULL
    );

    CREATE TABLE watched_channels (
        guild_id   {big} NOT NULL,
        channel_id {big} NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('channel', 'category')),
        PRIMARY KEY (guild_id, channel_id)
    );

    CREATE TABLE generator_bots (
        guild_id {big} NOT NULL,
        bot_id   {big} NOT NULL,
        PRIMARY KEY (guild_id, bot_id)
    );

    CREATE TABLE incidents (
        id             {id},
        guild_id       {big} NOT NULL,
        channel_id     {big} NOT NULL,
        message_id     {big},
        user_id        {big} NOT NULL,
        prompt_excerpt TEXT NOT NULL,
        categories     {json} NOT NULL,
        severity       TEXT NOT NULL,
        verdict        TEXT NOT NULL,
        matches        {json} NOT NULL,
        action         TEXT NOT NULL,
        status         TEXT NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'upheld', 'dismissed')),
        created_at     {time} NOT NULL
    );
    CREATE INDEX incidents_guild_created ON incidents (guild_id, created_at);
    CREATE INDEX incidents_guild_user ON incidents (guild_id, user_id);

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
"""
