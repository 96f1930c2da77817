#!/usr/bin/env python3
"""PromptWarden's command line: `python bot.py [run|check|...]`.

Subcommands live in one table so other modules can add theirs (each brings
`configure_parser(parser)` and `main(args) -> int`). Anything an admin can get wrong
ends with one line on stderr and exit status 2, never a traceback or the token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from promptwarden.config import (
    ConfigError,
    Settings,
    application_id_from_token,
    format_shard_ids,
    load_settings,
)
from promptwarden.permissions import invite_url
from promptwarden.redaction import install_secret_redaction
from promptwarden.storage import LATEST_VERSION, StorageError, open_storage, redact_url

ROOT = Path(__file__).resolve().parent
EXIT_USAGE = 2  # the admin must change something (settings, token, portal)
EXIT_FAILURE = 1  # something outside the admin's settings failed

log = logging.getLogger("promptwarden")

# Young-generation collections after this many new container objects (CPython's default
# is 700). A burst allocates a few dozen objects per message (its Message, Member, task),
# nearly all freed by reference counting: collecting every 700 allocations spent about half
# the bot's CPU in the collector at 10,000 messages, for garbage it could not find.
GC_YOUNG_THRESHOLD = 50_000


@dataclass(frozen=True, slots=True)
class Subcommand:
    help: str
    configure_parser: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]

    @classmethod
    def from_module(cls, module_name: str, help: str) -> Subcommand:
        """A subcommand implemented by a module exposing configure_parser() and main()."""
        module = importlib.import_module(module_name)
        return cls(help, module.configure_parser, module.main)


def _no_options(parser: argparse.ArgumentParser) -> None:
    del parser


def run_command(args: argparse.Namespace) -> int:
    """Start the bot and keep it running until SIGINT/SIGTERM."""
    del args
    settings = load_settings(root=ROOT)
    configure_logging(settings)
    return asyncio.run(_serve(settings))


def configure_logging(settings: Settings) -> None:
    import discord.utils

    discord.utils.setup_logging(level=settings.log_level_number, root=True)
    # discord.py logs raw gateway payloads (prompts) at DEBUG: not unless asked for.
    logging.getLogger("discord").setLevel(settings.discord_log_level_number)
    # The SQLite driver logs every statement with its parameters (prompts) at DEBUG.
    logging.getLogger("aiosqlite").setLevel(max(settings.log_level_number, logging.INFO))
    install_secret_redaction(settings.discord_token, *database_secrets(settings))


def database_secrets(settings: Settings) -> list[str]:
    """The password in DATABASE_URL, kept out of logs like the token."""
    if settings.database_url is None:
        return []
    from urllib.parse import unquote, urlsplit

    password = urlsplit(settings.database_url).password
    return [p for p in {password, unquote(password or "")} if p]


async def _serve(settings: Settings) -> int:
    import aiohttp
    import discord

    from discordbot import PromptWardenBot

    if settings.shared_database_warning:
        log.warning(settings.shared_database_warning)
    # Opened before connecting, so a database problem is reported without touching Discord.
    storage = await open_storage(settings.database)
    await asyncio.to_thread(warm_up_screening)
    tune_garbage_collector()
    bot = PromptWardenBot(settings, storage=storage)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def request_stop(sig: signal.Signals) -> None:
        log.info("received %s; closing the connection and the database", sig.name)
        stopping.append(loop.create_task(bot.close()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers; Ctrl+C still raises KeyboardInterrupt there.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, request_stop, sig)
    try:
        async with bot:
            await bot.start(settings.discord_token)
    except discord.PrivilegedIntentsRequired:
        return _fail(
            "Discord refused the Message Content intent: in the Developer Portal open your "
            "application > Bot, turn on Message Content Intent under Privileged Gateway "
            "Intents, save, then start the bot again."
        )
    except discord.LoginFailure:
        return _fail(
            "Discord rejected DISCORD_TOKEN (reset or mistyped): copy a new one from the "
            "Developer Portal > your application > Bot > Reset Token into .env."
        )
    except (aiohttp.ClientError, OSError) as error:
        return _fail(
            f"cannot reach Discord ({type(error).__name__}: {error}); check this machine's "
            "network connection, then start the bot again.",
            status=EXIT_FAILURE,
        )
    except discord.HTTPException as error:
        return _fail(
            f"Discord answered {error.status} while logging in; try again in a few minutes.",
            status=EXIT_FAILURE,
        )
    except discord.GatewayNotFound:
        return _fail(
            "Discord did not say how many shards to use (GET /gateway/bot failed); try again "
            "in a few minutes, or set SHARD_COUNT yourself.",
            status=EXIT_FAILURE,
        )
    finally:
        # The stop finishes first (it writes what is queued), then the database closes.
        if stopping:
            await asyncio.gather(*stopping, return_exceptions=True)
        await storage.close()
    log.info("stopped cleanly")
    return 0


def warm_up_screening() -> None:
    """Compile the shipped guidelines (and load the model) before connecting: a guild's
    screener then costs only its own terms, so the first prompts after a start are not
    held up behind a build of a fraction of a second."""
    from promptwarden.screening.engine import Screener
    from promptwarden.screening.rules import GuildRules

    Screener(GuildRules())


def tune_garbage_collector() -> None:
    """Everything loaded so far (modules, the compiled guidelines)
    lives as long as the process: frozen, the collector never scans it again. Young
    collections run less often (see GC_YOUNG_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def check_command(args: argparse.Namespace) -> int:
    """Validate settings and open/migrate the database, without contacting Discord."""
    del args
    settings = load_settings(root=ROOT)
    print("Configuration")
    print("  DISCORD_TOKEN  set and shaped like a bot token (not verified: no connection made)")
    if settings.database_url is None:
        print(f"  DATABASE_PATH  {settings.database_path} (SQLite)")
    else:
        print(f"  DATABASE_URL   {redact_url(settings.database_url)} (PostgreSQL)")
    if settings.shard_count is None:
        print("  SHARD_COUNT    not set: Discord recommends the count; this process runs all")
    else:
        ids = settings.shard_ids or tuple(range(settings.shard_count))
        print(f"  SHARD_COUNT    {settings.shard_count}; SHARD_IDS {format_shard_ids(ids)} here")
    if settings.shared_database_warning:
        print(f"  warning: {settings.shared_database_warning}")
    print(f"  LOG_LEVEL      {settings.log_level}")
    discord_level = logging.getLevelName(settings.discord_log_level_number)
    print(f"  DISCORD_LOG_LEVEL  {discord_level} (discord.py's own loggers)")
    if settings.dev_guild_id is None:
        print("  DEV_GUILD_ID   not set: slash commands sync globally")
    else:
        print(f"  DEV_GUILD_ID   {settings.dev_guild_id}: slash commands sync to this server only")
    if settings.discord_api_base is not None:
        print(f"  DISCORD_API_BASE     {settings.discord_api_base} (instead of Discord's)")
    if settings.discord_gateway_url is not None:
        print(f"  DISCORD_GATEWAY_URL  {settings.discord_gateway_url} (instead of Discord's)")
    version = asyncio.run(_check_database(settings))
    print("Database")
    if version == 0:
        state = "created"
    elif version < LATEST_VERSION:
        state = f"upgraded from schema {version}"
    else:
        state = "up to date"
    if settings.database_url is None:
        print(f"  schema {LATEST_VERSION} ({state}), WAL journal, foreign keys on")
    else:
        print(f"  schema {LATEST_VERSION} ({state}), PostgreSQL, shared by every process")
    application_id = application_id_from_token(settings.discord_token)
    if application_id is not None:
        print(f"Invite URL\n  {invite_url(application_id)}")
        print(
            "Invite URL with the optional Manage Server (for /automod)\n"
            f"  {invite_url(application_id, optional=True)}"
        )
    print("OK: start the bot with `python bot.py`.")
    return 0


async def _check_database(settings: Settings) -> int:
    storage = await open_storage(settings.database)
    async with storage:
        return storage.version_at_open


SUBCOMMANDS: dict[str, Subcommand] = {
    "run": Subcommand("start the bot (the default)", _no_options, run_command),
    "check": Subcommand(
        "validate the configuration and the database without connecting to Discord",
        _no_options,
        check_command,
    ),
    # ---- Subcommands from other modules: add one line each, here. ----
    "screen": Subcommand.from_module(
        "promptwarden.screening.cli", "screen prompts offline against the guidelines"
    ),
    "migrate-db": Subcommand.from_module(
        "promptwarden.migrate_db",
        "copy the SQLite database into PostgreSQL (safe to repeat; verifies row counts)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot.py",
        usage="%(prog)s [-h] [COMMAND] [options]",
        description="PromptWarden: screens image-generation prompts on Discord. "
        "Without a subcommand, runs the bot.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="subcommands")
    for name, command in SUBCOMMANDS.items():
        command.configure_parser(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def _fail(message: str, *, status: int = EXIT_USAGE) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return SUBCOMMANDS[args.command or "run"].main(args)
    except (ConfigError, StorageError) as error:
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
