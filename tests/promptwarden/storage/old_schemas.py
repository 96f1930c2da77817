"""Databases as older PromptWardens made them, for the tests of upgrading in place.

Schema 1's tables are made by no migration (a new database gets the latest tables at
once), so its DDL lives here, as schema 1 ran it; steps 2 and 3 are the shipped ones.
"""

from __future__ import annotations

import importlib

from promptwarden.storage.migrations import TYPES

# Schema 1: guild settings, watched channels, generator bots, incidents, bot-wide meta.
SCHEMA_1 = """
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


def script(version: int, dialect: str) -> str:
    """The DDL of step 1, 2 or 3 as `dialect` ("sqlite", "postgresql") ran it."""
    source: str = (
        SCHEMA_1
        if version == 1
        else importlib.import_module(f"promptwarden.storage.migrations.v{version}").SCRIPT
    )
    return source.format(**TYPES[dialect])
