"""Settings from the environment and `.env`, checked before anything touches Discord.

An admin's first contact with the bot is usually a mistake in `.env`, so every problem is
reported as one line that names the variable and says what to do, and no message ever
contains the token itself.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH = Path("data") / "promptwarden.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
API_VERSION_PATH = "/api/v10"  # the REST version discord.py 2.7 speaks
DEFAULT_GUILD_READY_TIMEOUT = 2.0  # discord.py's own default
MAX_GUILD_READY_TIMEOUT = 60.0

# Three dot-separated URL-safe base64 parts: user id, timestamp, HMAC.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SNOWFLAKE = re.compile(r"[0-9]{15,20}")
_WHERE_TOKEN = "Developer Portal > your application > Bot > Reset Token"


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line meant for the admin."""


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: str = field(repr=False)
    database_path: Path = PROJECT_ROOT / DEFAULT_DATABASE_PATH
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    # None: Discord itself. Set for a REST rate-limit proxy, a gateway proxy or an emulator.
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    # How long to wait for more servers after the last one arrives before declaring ready.
    guild_ready_timeout: float = DEFAULT_GUILD_READY_TIMEOUT

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


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

    return Settings(
        discord_token=_check_token(get("DISCORD_TOKEN")),
        database_path=_check_database_path(get("DATABASE_PATH"), root),
        log_level=_check_log_level(get("LOG_LEVEL")),
        dev_guild_id=_check_dev_guild_id(get("DEV_GUILD_ID")),
        discord_api_base=_check_api_base(get("DISCORD_API_BASE")),
        discord_gateway_url=_check_gateway_url(get("DISCORD_GATEWAY_URL")),
        guild_ready_timeout=_check_guild_ready_timeout(get("DISCORD_GUILD_READY_TIMEOUT")),
    )


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


def _check_database_path(raw: str, root: Path) -> Path:
    path = Path(raw).expanduser() if raw else DEFAULT_DATABASE_PATH
    if not path.is_absolute():
        path = root / path
    if path.is_dir():
        raise ConfigError(
            f"DATABASE_PATH points to a directory ({path}): give a file path such as "
            "data/promptwarden.db, or leave it empty for that default."
        )
    return path


def _check_log_level(raw: str) -> str:
    if not raw:
        return "INFO"
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (got {raw!r}); "
            "leave it empty for INFO."
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
