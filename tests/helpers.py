"""Scenario builders shared by the tests: one place for what many test files set up.

Fixtures stay in conftest.py; what is here is plain code the tests (and the benchmarks
that reuse hostile text) import: the test databases, `python bot.py` as an admin runs it,
text that breaks naive parsers, the SimCord servers the cog tests play in, stored
incidents for the storage tests, and for the end-to-end tests the emulated guild, what the
bot wrote to its database, and bursts of traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sqlite3
import subprocess
import sys
import unicodedata
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from cogs.screening import Screening
from discordbot import PromptWardenBot
from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import Incident, Storage, open_storage
from tests.emulator import MIDJOURNEY_BOT_ID, ROOT, Channel, Emulator, User, clean_env
from tests.emulator.traffic import DELETE_MESSAGE, ActionLog, Planned, burst

# ---------------------------------------------------------------- databases and tokens

# Shaped like a real token so settings validation would accept it; SimCord never checks it.
FAKE_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.fake-token-for-tests-only_0123456789"

POSTGRES_URL_VARIABLE = "PROMPTWARDEN_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_URL_VARIABLE, "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason=f"{POSTGRES_URL_VARIABLE} is not set (scripts/ci_postgres.sh starts a server)",
)
# A SimCord test module runs on both databases with `pytestmark = BOTH_BOT_BACKENDS`.
BOTH_BOT_BACKENDS = pytest.mark.parametrize(
    "bot_backend", ["sqlite", pytest.param("postgres", marks=needs_postgres)], indirect=True
)


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A URL to a brand-new, empty database on the test server, dropped afterwards."""
    import asyncpg

    name = f"pw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# ---------------------------------------------------------------- `python bot.py`

VALID_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.cli-test-token_0123456789abcdefghij"


def bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python bot.py ARGS` run to completion, with only the environment given."""
    return subprocess.run(
        [sys.executable, "bot.py", *args],
        cwd=ROOT,
        env={**clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_bot(emulator: Emulator, env: dict[str, str]) -> subprocess.Popen[str]:
    """The unmodified bot.py, pointed at the emulator by its own settings."""
    return subprocess.Popen(
        [sys.executable, "bot.py"],
        cwd=ROOT,
        env={**clean_env(), **emulator.env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], *fragments: str, secret: str = ""
) -> None:
    """What an admin's mistake must give: exit 2, one `error:` line, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    if secret:
        assert secret not in result.stdout + result.stderr


# ---------------------------------------------------------------- hostile text
# Text that breaks naive parsers, shared by the fuzz tests, the end-to-end bad-input test
# and the fuzz benchmark.

DISCORD_LIMIT = 4000  # characters in one message (with Nitro)
# Every Unicode general category except Cs: Discord content is UTF-8, so no lone surrogates.
GENERAL_CATEGORIES = (
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
    "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn",
)  # fmt: skip
ZALGO = "z\u0301\u0316\u0337\u0489\u035c\u0361"
FULLWIDTH_NUDE = "\uff4e\uff55\uff44\uff45"


@cache
def every_category() -> str:
    """The first character of each general category, in GENERAL_CATEGORIES order."""
    found: dict[str, str] = {}
    for cp in range(0x30000):
        if 0xD800 <= cp < 0xE000:
            continue
        category = unicodedata.category(chr(cp))
        found.setdefault(category, chr(cp))
    return "".join(found[c] for c in GENERAL_CATEGORIES)


# ---------------------------------------------------------------- prompts members post

NUDE = "a nude woman on a beach --ar 2:3"
GORE = "a gruesome battlefield painting"
CAT = "a cat in a hat --ar 3:2"
DOG = "a dog on a skateboard"
DAY = 24 * 3600  # seconds, as SimCord's clock advances


# ---------------------------------------------------------------- reading what Discord shows


def field(embed: discord.Embed, name: str) -> str:
    return next(str(f.value) for f in embed.fields if f.name == name)


def button_ids(message: discord.Message) -> list[str]:
    """The custom ids of a message's buttons, row by row ("None" for a link button)."""
    rows: list[Any] = list(message.components)
    return [str(c.custom_id) for row in rows for c in row.children]


def text(result: Any) -> str:
    """The reply a slash command or click got."""
    assert result.response is not None
    return str(result.response.content)


def close_dms(env: simcord.Env, member: simcord.MemberActor) -> None:
    """From now on a DM to `member` answers 403 50007, as Discord does for closed DMs."""
    env.inject_error(
        "POST",
        f"/channels/{member.user.dm_channel.id}/messages",
        status=403,
        code=50007,
        message="Cannot send messages to this user",
    )


def screening(bot: discord.Client) -> Any:
    """The loaded cog (load_extension runs its own copy of the module: no isinstance)."""
    assert isinstance(bot, PromptWardenBot)
    cog = bot.get_cog("Screening")
    assert cog is not None and type(cog).__name__ == Screening.__name__
    return cog


# ---------------------------------------------------------------- the watcher's world


@dataclass
class World:
    """A watched server with a generator bot, a member and a moderator who may time out."""

    env: simcord.Env
    bot: PromptWardenBot
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    modlog: simcord.ChannelHandle
    member: simcord.MemberActor
    moderator: simcord.MemberActor
    generator: simcord.MemberActor

    def messages(self, channel: simcord.ChannelHandle | None = None) -> list[str]:
        return [m.content for m in (channel or self.channel).history()]

    def dms(self, who: simcord.MemberActor | None = None) -> list[discord.Message]:
        return (who or self.member).user.dm_channel.history()

    async def incidents(self) -> list[Incident]:
        return list(reversed(await self.bot.storage.find_incidents(self.guild.id)))

    async def outcomes(self, incident: Incident) -> dict[str, str]:
        records = await self.bot.storage.list_action_outcomes(self.guild.id, incident.id)
        return {r.action: r.outcome for r in records}

    async def points(self) -> int:
        return await self.bot.storage.active_points(
            self.guild.id, self.member.id, window=timedelta(days=30), now=self.env.now()
        )

    def timed_out_until(self, who: simcord.MemberActor) -> str | None:
        value: str | None = self.env.backend.guilds[self.guild.id].members[who.id].timed_out_until
        return value

    def modlog_entries(self) -> list[discord.Message]:
        return [m for m in self.modlog.history() if m.embeds]

    async def job(self, content: str) -> discord.Message:
        """The generator bot posts a job message for the member."""
        return await self.generator.send(self.channel, content)


async def world(env: simcord.Env) -> World:
    bot = env.bot
    assert isinstance(bot, PromptWardenBot)
    guild = env.create_guild("Prompt Art")
    channel = guild.create_text_channel("imagine")
    modlog = guild.create_text_channel("mod-log")
    mods = guild.create_role(
        "Mods", permissions=discord.Permissions(manage_messages=True, moderate_members=True)
    )
    member = guild.add_member(env.create_user("bob"))
    moderator = guild.add_member(env.create_user("mo"), roles=[mods])
    generator = guild.add_member(env.create_user("Midjourney Bot", bot=True))
    await bot.storage.add_watched_channel(guild.id, channel.id)
    await bot.storage.set_modlog_channel(guild.id, modlog.id)
    await bot.storage.add_generator_bot(guild.id, generator.id)
    # These tests count enforcement DMs; private-mode reminders are tested with PrivacyWorld.
    await bot.storage.set_privacy_config(guild.id, {"reminders_enabled": False})
    screening(bot).states.invalidate(guild.id)
    return World(env, bot, guild, channel, modlog, member, moderator, generator)


# ---------------------------------------------------------------- the privacy world


@dataclass
class PrivacyWorld:
    """A watched server with reminders on, a member, a moderator and an admin."""

    env: simcord.Env
    bot: PromptWardenBot
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    modlog: simcord.ChannelHandle
    member: simcord.MemberActor
    moderator: simcord.MemberActor
    admin: simcord.MemberActor

    def dms(self, who: simcord.MemberActor | None = None) -> list[discord.Message]:
        return (who or self.member).user.dm_channel.history()

    def reminders(self, who: simcord.MemberActor | None = None) -> list[discord.Message]:
        return [m for m in self.dms(who) if m.content.startswith("**A reminder from")]

    async def incidents(self, guild: simcord.GuildHandle | None = None) -> list[Incident]:
        found = await self.bot.storage.find_incidents((guild or self.guild).id)
        return list(reversed(found))

    async def outcomes(self, incident: Incident) -> dict[str, tuple[str, str]]:
        records = await self.bot.storage.list_action_outcomes(self.guild.id, incident.id)
        return {r.action: (r.outcome, r.detail) for r in records}

    def modlog_entries(self) -> list[discord.Message]:
        return [m for m in self.modlog.history() if m.embeds]

    async def settings_changed(self) -> None:
        self.bot.dispatch("promptwarden_settings_changed", self.guild.id)
        await self.env.settle()


async def privacy_world(env: simcord.Env, name: str = "Prompt Art") -> PrivacyWorld:
    bot = env.bot
    assert isinstance(bot, PromptWardenBot)
    guild = env.create_guild(name)
    channel = guild.create_text_channel("imagine")
    modlog = guild.create_text_channel("mod-log")
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    admins = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    member = guild.add_member(env.create_user("bob"))
    moderator = guild.add_member(env.create_user("mo"), roles=[mods])
    admin = guild.add_member(env.create_user("ada"), roles=[admins])
    await bot.storage.add_watched_channel(guild.id, channel.id)
    await bot.storage.set_modlog_channel(guild.id, modlog.id)
    w = PrivacyWorld(env, bot, guild, channel, modlog, member, moderator, admin)
    await w.settings_changed()
    return w


async def warned(w: PrivacyWorld) -> tuple[Incident, discord.Message]:
    """The member posts a violent prompt and gets the warning DM (reminders off)."""
    await w.admin.slash(w.channel, "reminders off")
    await w.member.send(w.channel, GORE)
    [incident] = await w.incidents()
    [dm] = w.dms()
    return incident, dm


async def appeal(w: PrivacyWorld, dm: discord.Message, incident: Incident, reason: str) -> Any:
    """The member presses Appeal under the warning and sends the form."""
    shown = await w.member.user.click(dm, custom_id=f"pw:appeal:open:{w.guild.id}:{incident.id}")
    assert shown.modal is not None
    return await w.member.user.submit_modal(shown, {"reason": reason})


async def old_incident(w: PrivacyWorld, *, days_ago: int, message_id: int) -> int:
    """A blocked prompt of the member, stored as if it happened `days_ago` days ago."""
    incident_id, _ = await w.bot.storage.record_incident(
        guild_id=w.guild.id,
        channel_id=w.channel.id,
        message_id=message_id,
        user_id=w.member.id,
        prompt_excerpt="a nude knight",
        categories=["sexual"],
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=[],
        action="block",
        created_at=w.env.now() - timedelta(days=days_ago),
    )
    return incident_id


# ---------------------------------------------------------------- a server for the commands


class Server:
    """A server with an admin, a moderator and a member, watched only once `watch` runs."""

    def __init__(self, env: simcord.Env, name: str = "Prompt Art") -> None:
        self.env = env
        bot = env.bot
        assert isinstance(bot, PromptWardenBot)
        self.bot = bot
        self.guild = env.create_guild(name)
        self.channel = self.guild.create_text_channel("imagine")
        self.modlog = self.guild.create_text_channel("mod-log")
        admins = self.guild.create_role(
            "Admins", permissions=discord.Permissions(manage_guild=True, manage_messages=True)
        )
        mods = self.guild.create_role(
            "Mods", permissions=discord.Permissions(manage_messages=True, moderate_members=True)
        )
        self.admin = self.guild.add_member(env.create_user(f"ada-{name}"), roles=[admins])
        self.moderator = self.guild.add_member(env.create_user(f"mo-{name}"), roles=[mods])
        self.member = self.guild.add_member(env.create_user(f"bob-{name}"))

    @property
    def storage(self) -> Any:
        return self.bot.storage

    async def watch(self) -> None:
        await self.storage.add_watched_channel(self.guild.id, self.channel.id)
        await self.storage.set_modlog_channel(self.guild.id, self.modlog.id)
        # These tests count enforcement DMs; private-mode reminders are tested with PrivacyWorld.
        await self.storage.set_privacy_config(self.guild.id, {"reminders_enabled": False})
        self.bot.dispatch("promptwarden_settings_changed", self.guild.id)
        await self.env.settle()

    async def incident(self, n: int, *, verdict: Verdict = Verdict.WARN, **extra: Any) -> int:
        fields: dict[str, Any] = {
            "guild_id": self.guild.id,
            "channel_id": self.channel.id,
            "message_id": 10_000 + n,
            "user_id": self.member.id,
            "prompt_excerpt": f"prompt number {n} gruesome",
            "categories": ["violence"],
            "severity": Severity.MEDIUM,
            "verdict": verdict,
            "matches": [
                {
                    "category": "violence",
                    "term": "gruesome",
                    "start": 16,
                    "end": 24,
                    "text": "gruesome",
                    "source": "rule:violence",
                    "severity": "medium",
                }
            ],
            "action": verdict.value,
            "created_at": self.env.now(),
        }
        fields.update(extra)
        incident_id, _ = await self.storage.record_incident(**fields)
        return int(incident_id)

    async def slash(self, who: simcord.MemberActor, name: str, **options: Any) -> Any:
        return await who.slash(self.channel, name, **options)


# ---------------------------------------------------------------- stored incidents

GUILD_A, GUILD_B = 111111111111111111, 222222222222222222
NOW = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = timedelta(days=30)


async def record(storage: Storage, guild_id: int = GUILD_A, **fields: object) -> tuple[int, bool]:
    """`record_incident` of a blocked job; `fields` override any column."""
    values: dict[str, object] = {
        "guild_id": guild_id,
        "channel_id": 10,
        "message_id": 20,
        "user_id": 30,
        "prompt_excerpt": "a nude knight",
        "categories": ["sexual"],
        "severity": Severity.HIGH,
        "verdict": Verdict.BLOCK,
        "matches": [{"category": "sexual", "term": "nude"}],
        "action": "block",
        "job_key": "30:abc:2026-03-01",
    }
    values.update(fields)
    return await storage.record_incident(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- end to end: the emulator
# The emulated guild, its settings written before the bot starts, and what the bot wrote,
# read the way a moderator's tools would: straight from its database.

# The most DMs a guild may send a minute (the default is 10): warnings beyond it are
# dropped by design, and CI-sized bursts stay within it.
DM_BUDGET = 60


def scaled(count: int) -> int:
    """CI counts by default; PROMPTWARDEN_E2E_SCALE=20 runs 20 times as many."""
    return max(1, round(count * float(os.environ.get("PROMPTWARDEN_E2E_SCALE", "1"))))


@dataclass
class EmulatedServer:
    """The emulated guild as the bot's database describes it."""

    emulator: Emulator
    database: Path
    watched: Channel
    modlog: Channel
    other: Channel  # not watched
    members: list[User]
    moderator: User
    rules: dict[str, Any] = dataclasses.field(default_factory=lambda: {"learned": False})

    @property
    def guild_id(self) -> int:
        return self.emulator.world.guild.id


def configure(
    server: EmulatedServer, *, generator_bots: tuple[int, ...] = (), database: str | None = None
) -> None:
    """Write the guild's settings through the project's own storage before the bot starts,
    into the server's SQLite file or the `database` URL given."""

    async def write() -> None:
        storage = await open_storage(database or server.database)
        async with storage:
            await storage.add_watched_channel(server.guild_id, server.watched.id)
            await storage.set_modlog_channel(server.guild_id, server.modlog.id)
            await storage.set_screening_rules(server.guild_id, server.rules)
            await storage.set_privacy_config(server.guild_id, {"dm_per_minute": DM_BUDGET})
            for bot_id in generator_bots:
                await storage.add_generator_bot(server.guild_id, bot_id)

    asyncio.run(write())


def read_db(database: Path, query: str) -> list[tuple[object, ...]]:
    """Read-only, so a test never changes what the running bot sees."""
    # closing(): sqlite3's own context manager commits but leaves the connection open.
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as conn:
        return conn.execute(query).fetchall()


def incidents_by_message(database: Path) -> Counter[int]:
    return Counter(int(str(m)) for (m,) in read_db(database, "SELECT message_id FROM incidents"))


def outcomes(database: Path) -> dict[int, dict[str, str]]:
    """message id -> action -> its latest outcome."""
    rows = read_db(
        database,
        "SELECT i.message_id, a.action, a.outcome FROM incident_actions a "
        "JOIN incidents i ON i.id = a.incident_id ORDER BY a.id",
    )
    found: dict[int, dict[str, str]] = {}
    for message_id, action, outcome in rows:
        found.setdefault(int(str(message_id)), {})[str(action)] = str(outcome)
    return found


@dataclass
class Backend:
    """The bot process on the server's SQLite file or a fresh PostgreSQL database (the
    `backend` fixture), read back and changed either way."""

    server: EmulatedServer
    url: str | None  # None: the server's SQLite file

    @property
    def env(self) -> dict[str, str]:
        """Settings for `start_bot`: PostgreSQL wins over the SQLite file when set."""
        return {"DATABASE_URL": self.url} if self.url else {}

    def query(self, sql: str) -> list[tuple[object, ...]]:
        if self.url is None:
            return read_db(self.server.database, sql)
        url = self.url

        async def fetch() -> list[tuple[object, ...]]:
            import asyncpg

            conn = await asyncpg.connect(url)
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        return asyncio.run(fetch())

    def execute(self, sql: str) -> None:
        """Change a row under the running bot, as an admin's SQL shell would."""
        if self.url is None:
            with closing(sqlite3.connect(self.server.database, timeout=10)) as conn, conn:
                conn.execute(sql)
            return
        url = self.url

        async def run() -> None:
            import asyncpg

            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())


# Bursts: pushed as fast as the emulator's socket takes them, then checked message by message.


def make_burst(
    server: EmulatedServer, count: int, *, first_tag: int = 0, violating_share: float = 0.02
) -> list[Planned]:
    """`count` messages in the watched channel; the last one always violates, so that its
    actions mean every message before it was handled (a channel is handled in order)."""
    emu = server.emulator
    planned = burst(
        [server.watched],
        server.members,
        emu.user(MIDJOURNEY_BOT_ID),
        count - 1,
        violating_share=violating_share,
        first_tag=first_tag,
    )
    closing = burst(
        [server.watched],
        server.members,
        emu.user(MIDJOURNEY_BOT_ID),
        1,
        violating_share=1.0,
        first_tag=first_tag + count - 1,
    )
    return planned + closing


def push(emu: Emulator, planned: list[Planned]) -> list[int]:
    return emu.post_many(p.post for p in planned)


def violations(planned: list[Planned], ids: list[int]) -> list[tuple[Planned, int]]:
    return [(p, i) for p, i in zip(planned, ids, strict=True) if p.violating]


def wait_until_settled(
    server: EmulatedServer, expected: list[tuple[Planned, int]], *, timeout: float = 90
) -> None:
    """Until every violating message has its incident and a recorded delete and DM outcome."""
    wanted = {i for _, i in expected}

    def settled() -> bool:
        found = outcomes(server.database)
        return all({"delete", "dm_warning"} <= found.get(i, {}).keys() for i in wanted)

    server.emulator.wait_until(
        settled, timeout=timeout, what=f"incidents and actions for {len(wanted)} violations"
    )


def assert_exactly_once(
    server: EmulatedServer,
    planned: list[Planned],
    ids: list[int],
    *,
    dm_at_least_once: bool = False,
) -> None:
    expected = violations(planned, ids)
    incidents = incidents_by_message(server.database)
    assert {i for _, i in expected} == set(incidents), "incidents for exactly the violations"
    assert all(n == 1 for n in incidents.values()), incidents.most_common(3)
    actions = ActionLog(server.emulator).update()
    found = outcomes(server.database)
    for p, message_id in expected:
        deletes = [c for c in actions.deletes.get(message_id, []) if c.ok]
        dms = [c for c in actions.dm_posts(p.tag) if c.ok]
        assert len(deletes) == 1, (p.tag, deletes)
        assert found[message_id]["delete"] == "done"
        if found[message_id]["dm_warning"] == "rate_limited":
            # The guild's DM budget (DM_BUDGET a minute) is spent: queued, sent within a
            # minute or two (recorded as retryable, never as a final "skipped").
            assert not dms and dm_total(actions) >= DM_BUDGET, p.tag
            continue
        assert found[message_id]["dm_warning"] == "done"
        if dm_at_least_once:
            assert dms, p.tag
        else:
            assert len(dms) == 1, (p.tag, dms)
        dm_channel = server.emulator.world.dm_channels[p.responsible.id]
        assert all(c.param("channel_id") == dm_channel.id for c in dms)
    # nothing else was deleted: benign prompts stay
    deleted = {c.param("message_id") for c in server.emulator.calls(DELETE_MESSAGE) if c.ok}
    assert deleted <= {i for _, i in expected} | bot_messages(server.emulator)


def dm_total(actions: ActionLog) -> int:
    dm_ids = {c.id for c in actions.emulator.world.dm_channels.values()}
    return sum(
        c.ok and c.param("channel_id") in dm_ids
        for c in actions.emulator.calls("POST /channels/{channel_id}/messages")
    )


def bot_messages(emu: Emulator) -> set[int]:
    """The bot's own messages (e.g. a DMs-closed notice that deletes itself)."""
    return {
        int(m["id"])
        for channel in emu.world.channels.values()
        for m in channel.messages.values()
        if int(m["author"]["id"]) == emu.world.app_id
    }
