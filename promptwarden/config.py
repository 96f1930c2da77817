"""Settings from the environment and `.env`, checked before anything touches Discord.

An admin's first contact with the bot is usually a mistake in `.env`, so every problem is
reported as one line that names the variable and says what to do, and no message ever
contains the token itself.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH = Path("data") / "promptwarden.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SQLITE_URL_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Discord's own ceiling is far lower in practice; this only catches typos like 40000.
MAX_SHARD_COUNT = 16384
API_VERSION_PATH = "/api/v10"  # the REST version discord.py 2.7 speaks
DEFAULT_GUILD_READY_TIMEOUT = 2.0  # discord.py's own default
MAX_GUILD_READY_TIMEOUT = 60.0

# Three dot-separated URL-safe base64 parts: user id, timestamp, HMAC.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SNOWFLAKE = re.compile(r"[0-9]{15,20}")
_WHERE_TOKEN = "Developer Portal > your application > Bot > Reset Token"


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line meant for the admin."""


# Held messages are incidents waiting to be recorded, about 10 KB each with their Message:
# 5,000 keeps a backlog of any size near 50 MB of them (the rest is read back later).
DEFAULT_INTAKE_MAX_MESSAGES = 5000
DEFAULT_INTAKE_CHANNEL_MESSAGES = 1250
MAX_INTAKE_MESSAGES = 1_000_000


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: str = field(repr=False)
    database_path: Path = PROJECT_ROOT / DEFAULT_DATABASE_PATH
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    # A postgresql:// URL when PostgreSQL is chosen; SQLite lives in database_path.
    database_url: str | None = field(default=None, repr=False)
    shard_count: int | None = None  # None: ask Discord for its recommended count
    shard_ids: tuple[int, ...] | None = None  # None: every shard of shard_count
    # None: Discord itself. Set for a REST rate-limit proxy, a gateway proxy or an emulator.
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    # How long to wait for more servers after the last one arrives before declaring ready.
    guild_ready_timeout: float = DEFAULT_GUILD_READY_TIMEOUT
    # None: discord.py's loggers follow LOG_LEVEL but never below INFO (see below).
    discord_log_level: str | None = None
    # Messages held in memory awaiting screening, in total and per channel; beyond them a
    # channel's messages are read back from its history later (memory stays flat).
    intake_max_messages: int = DEFAULT_INTAKE_MAX_MESSAGES
    intake_channel_messages: int = DEFAULT_INTAKE_CHANNEL_MESSAGES

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]

    @property
    def discord_log_level_number(self) -> int:
        """The level of discord.py's loggers. At DEBUG they write raw gateway payloads,
        members' prompts included, so LOG_LEVEL=DEBUG alone keeps them at INFO; only an
        explicit DISCORD_LOG_LEVEL=DEBUG lets those payloads into the log."""
        if self.discord_log_level is not None:
            return logging.getLevelNamesMapping()[self.discord_log_level]
        return max(self.log_level_number, logging.INFO)

    @property
    def shared_database_warning(self) -> str | None:
        """Why this process's shard share wants PostgreSQL, or None when all is well."""
        if self.shard_ids is None or self.database_url is not None:
            return None
        if self.shard_count is not None and len(self.shard_ids) == self.shard_count:
            return None
        return (
            "SHARD_IDS gives this process only part of the shards, but the database is SQLite: "
            "the other processes' settings changes will not reach this one. Use one PostgreSQL "
            "database (DATABASE_URL) for all processes."
        )

    @property
    def database(self) -> Path | str:
        """What `open_storage` takes: the PostgreSQL URL, else the SQLite file."""
        return self.database_url or self.database_path


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    root: Path = PROJECT_ROOT,
    env_file: Path | None = None,
) -> Settings:
    """Read settings; real environment variables win over `.env` entries.

    `root` anchors a relative DATABASE_PATH and is where `.env` is looked for (unless
    PROMPTWARDEN_ENV_FILE names another file), so the bot behaves the same whatever the
    current directory is.
    """
    values = _environment(environ, root, env_file)

    def get(name: str) -> str:
        return values.get(name, "").strip()

    token = _check_token(get("DISCORD_TOKEN"))
    database_path = _check_database_path(get("DATABASE_PATH"), root)
    database_url = None
    url = get("DATABASE_URL")
    if url:
        database_url, sqlite_file = check_database_url(url, root)
        if sqlite_file is not None:
            database_path = sqlite_file
    shard_count = _check_shard_count(get("SHARD_COUNT"))
    return Settings(
        discord_token=token,
        database_path=database_path,
        log_level=_check_log_level(get("LOG_LEVEL")),
        dev_guild_id=_check_dev_guild_id(get("DEV_GUILD_ID")),
        database_url=database_url,
        shard_count=shard_count,
        shard_ids=_check_shard_ids(get("SHARD_IDS"), shard_count),
        discord_api_base=_check_api_base(get("DISCORD_API_BASE")),
        discord_gateway_url=_check_gateway_url(get("DISCORD_GATEWAY_URL")),
        guild_ready_timeout=_check_guild_ready_timeout(get("DISCORD_GUILD_READY_TIMEOUT")),
        discord_log_level=(
            _check_log_level(raw, "DISCORD_LOG_LEVEL", unset="LOG_LEVEL, never below INFO")
            if (raw := get("DISCORD_LOG_LEVEL"))
            else None
        ),
        intake_max_messages=_check_intake_limit(
            get("INTAKE_MAX_MESSAGES"), "INTAKE_MAX_MESSAGES", DEFAULT_INTAKE_MAX_MESSAGES
        ),
        intake_channel_messages=_check_intake_limit(
            get("INTAKE_CHANNEL_MESSAGES"),
            "INTAKE_CHANNEL_MESSAGES",
            DEFAULT_INTAKE_CHANNEL_MESSAGES,
        ),
    )


def _check_intake_limit(raw: str, name: str, default: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INTAKE_MESSAGES:
        raise ConfigError(
            f"{name} must be a whole number of messages from 1 to {MAX_INTAKE_MESSAGES} "
            f"(got {raw!r}); leave it empty for {default}."
        )
    return int(raw)


def database_path_setting(
    environ: Mapping[str, str] | None = None, *, root: Path = PROJECT_ROOT
) -> Path:
    """DATABASE_PATH alone, for offline tools that never need the token."""
    values = _environment(environ, root, None)
    return _check_database_path(values.get("DATABASE_PATH", "").strip(), root)


def _environment(
    environ: Mapping[str, str] | None, root: Path, env_file: Path | None
) -> dict[str, str]:
    real = os.environ if environ is None else environ
    if env_file is None:
        env_file = Path(real.get("PROMPTWARDEN_ENV_FILE") or root / ".env")
    from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return {**from_file, **real}


def _check_token(token: str) -> str:
    if not token:
        raise ConfigError(
            "DISCORD_TOKEN is not set: copy .env.example to .env and put your bot's token "
            f"there ({_WHERE_TOKEN})."
        )
    if token.lower().startswith("bot "):
        raise ConfigError(
            "DISCORD_TOKEN starts with 'Bot ': remove that prefix and keep only the token itself."
        )
    if any(ch.isspace() for ch in token):
        raise ConfigError(
            "DISCORD_TOKEN contains spaces: paste the token exactly as the Developer Portal "
            "shows it, on one line."
        )
    if token.isdigit():
        raise ConfigError(
            "DISCORD_TOKEN looks like an application ID, not a token: copy the token from "
            f"{_WHERE_TOKEN}."
        )
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigError(
            "DISCORD_TOKEN does not look like a bot token (three parts separated by dots; a "
            f"client secret will not work): copy it from {_WHERE_TOKEN}."
        )
    return token


def _check_database_path(raw: str, root: Path, *, setting: str = "DATABASE_PATH") -> Path:
    path = Path(raw).expanduser() if raw else DEFAULT_DATABASE_PATH
    if not path.is_absolute():
        path = root / path
    if path.is_dir():
        raise ConfigError(
            f"{setting} points to a directory ({path}): give a file path such as "
            "data/promptwarden.db, or leave it empty for that default."
        )
    return path


def check_database_url(raw: str, root: Path) -> tuple[str | None, Path | None]:
    """(PostgreSQL URL, None) or (None, SQLite file). Errors never repeat the password."""
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if raw.startswith(SQLITE_URL_PREFIX):
        rest = raw[len(SQLITE_URL_PREFIX) :]
        if not rest:
            raise ConfigError(
                "DATABASE_URL sqlite:/// names no file: write sqlite:///data/promptwarden.db "
                "(relative to the project folder) or sqlite:////absolute/path.db."
            )
        return None, _check_database_path(rest, root, setting="DATABASE_URL")
    if scheme == "sqlite":
        raise ConfigError(
            "DATABASE_URL for SQLite needs three slashes: sqlite:///data/promptwarden.db "
            "(relative) or sqlite:////absolute/path.db."
        )
    if scheme not in POSTGRES_SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ConfigError(
            f"DATABASE_URL must start with postgresql:// or sqlite:/// (got {shown}): e.g. "
            "postgresql://promptwarden:PASSWORD@db.example:5432/promptwarden; leave it empty "
            "to use DATABASE_PATH."
        )
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as error:
        raise ConfigError(
            f"DATABASE_URL is not a valid URL ({_without_secret(str(error), raw)}): the form is "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE; percent-encode special characters "
            "in the password (@ as %40, / as %2F)."
        ) from None
    if not parts.hostname and "host=" not in parts.query:
        raise ConfigError(
            "DATABASE_URL names no PostgreSQL host: the form is "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        )
    if not parts.path.strip("/"):
        raise ConfigError(
            "DATABASE_URL names no database: add it after the host, as in "
            f"postgresql://USER:PASSWORD@{parts.hostname or 'HOST'}:{port or 5432}/promptwarden."
        )
    return raw, None


def _without_secret(text: str, url: str) -> str:
    password = url.split("://", 1)[-1].rsplit("@", 1)[0].partition(":")[2]
    return text.replace(password, "***") if password else text


def _check_shard_count(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SHARD_COUNT:
        raise ConfigError(
            f"SHARD_COUNT must be a whole number of shards from 1 to {MAX_SHARD_COUNT} "
            f"(got {raw!r}): the total over all processes, the same in each; leave it empty "
            "to let Discord recommend one (single process)."
        )
    return int(raw)


def _check_shard_ids(raw: str, count: int | None) -> tuple[int, ...] | None:
    """Parse `0-3`, `0,1,2` or a mix like `0-3,8`; every id once, each below SHARD_COUNT."""
    if not raw:
        return None
    if count is None:
        raise ConfigError(
            "SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the total number of shards over "
            "all processes (the same value in each), then SHARD_IDS to this process's share."
        )
    ids: list[int] = []
    for piece in raw.replace(" ", "").split(","):
        low, dash, high = piece.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ConfigError(
                f"SHARD_IDS must list shard numbers and ranges such as 0-3 or 0,1,2 or 0-3,8 "
                f"(got {raw!r})."
            )
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ConfigError(f"SHARD_IDS range {piece} runs backwards: write {last}-{first}.")
        ids.extend(range(first, last + 1))
    too_big = sorted({i for i in ids if i >= count})
    if too_big:
        raise ConfigError(
            f"SHARD_IDS {', '.join(map(str, too_big[:5]))} not below SHARD_COUNT={count}: "
            f"shard ids run from 0 to {count - 1}."
        )
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise ConfigError(
            f"SHARD_IDS lists shard {', '.join(map(str, repeated[:5]))} more than once: "
            "each shard must belong to exactly one process."
        )
    return tuple(ids)


def format_shard_ids(ids: list[int] | tuple[int, ...]) -> str:
    """`[0, 1, 2, 5]` as `0-2,5`, the way SHARD_IDS is written."""
    runs: list[list[int]] = []
    for shard in sorted(ids):
        if runs and runs[-1][1] == shard - 1:
            runs[-1][1] = shard
        else:
            runs.append([shard, shard])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def _check_log_level(raw: str, name: str = "LOG_LEVEL", *, unset: str = "INFO") -> str:
    if not raw:
        return "INFO"
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"{name} must be one of {', '.join(LOG_LEVELS)} (got {raw!r}); "
            f"leave it empty for {unset}."
        )
    return level


def _check_dev_guild_id(raw: str) -> int | None:
    if not raw:
        return None
    if not _SNOWFLAKE.fullmatch(raw) or int(raw) >= 2**64:
        raise ConfigError(
            f"DEV_GUILD_ID must be a server ID, a number like 123456789012345678 (got {raw!r}): "
            "in Discord enable Developer Mode, right-click your server, Copy Server ID; or leave "
            "it empty to sync commands globally."
        )
    return int(raw)


def _check_url(name: str, raw: str, schemes: tuple[str, ...], example: str) -> str:
    """Shared shape checks; the message always shows a working example."""
    hint = f"e.g. {example}, or leave it empty to connect to Discord itself"
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL: {hint}.") from None
    del port
    if parts.username or parts.password:  # checked first: never echo a password back
        raise ConfigError(f"{name} must not contain a user name or password: {hint}.")
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ConfigError(
            f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL with a host "
            f"(got {raw!r}): {hint}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not have a ?query or #fragment (got {raw!r}): {hint}.")
    return raw


def _check_api_base(raw: str) -> str | None:
    """Where REST calls go, e.g. a rate-limit proxy shared by several processes."""
    if not raw:
        return None
    example = f"http://localhost:8080{API_VERSION_PATH}"
    url = _check_url("DISCORD_API_BASE", raw, ("http", "https"), example).rstrip("/")
    if not urlsplit(url).path.endswith(API_VERSION_PATH):
        raise ConfigError(
            f"DISCORD_API_BASE must end with {API_VERSION_PATH}, the API version this bot "
            f"speaks (got {raw!r}): e.g. {example}."
        )
    return url


def _check_gateway_url(raw: str) -> str | None:
    if not raw:
        return None
    return _check_url("DISCORD_GATEWAY_URL", raw, ("ws", "wss"), "wss://gateway.example.net/")


def _check_guild_ready_timeout(raw: str) -> float:
    if not raw:
        return DEFAULT_GUILD_READY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_GUILD_READY_TIMEOUT:  # also rejects nan
        raise ConfigError(
            f"DISCORD_GUILD_READY_TIMEOUT must be a number of seconds from 0 to "
            f"{MAX_GUILD_READY_TIMEOUT:g} (got {raw!r}); leave it empty for "
            f"{DEFAULT_GUILD_READY_TIMEOUT:g}."
        )
    return value


def application_id_from_token(token: str) -> int | None:
    """The bot's user id, which Discord encodes (unsigned) in the token's first part.

    Used only to print a ready-to-use invite URL before the bot has ever connected; the id
    is public, the rest of the token is not.
    """
    import base64
    import binascii

    first = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(decoded) if _SNOWFLAKE.fullmatch(decoded) else None
