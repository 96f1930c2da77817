"""`python bot.py migrate-db --to postgresql://...`: move a one-machine bot onto PostgreSQL.

Needs no Discord token: it only reads the SQLite file (DATABASE_PATH unless --from says
otherwise) and writes PostgreSQL. Safe to run again: rows already there are left as they
are, so a second run reports every row unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from dotenv import dotenv_values

from promptwarden.config import PROJECT_ROOT, ConfigError, check_database_url
from promptwarden.storage import redact_url
from promptwarden.storage.copy import copy_sqlite_to_postgres, total_rows


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        required=True,
        metavar="POSTGRESQL_URL",
        help="the PostgreSQL database to fill, e.g. postgresql://USER:PASSWORD@HOST:5432/DB "
        "(created tables are migrated to this version's schema first)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SQLITE_PATH",
        help="the SQLite file to copy (default: DATABASE_PATH, else data/promptwarden.db)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace PostgreSQL rows that share a key with a SQLite row but differ (only "
        "when PostgreSQL holds an older copy of this same database)",
    )


def main(args: argparse.Namespace) -> int:
    url, sqlite_file = check_database_url(args.to, PROJECT_ROOT)
    if url is None or sqlite_file is not None:
        raise ConfigError(
            "--to must be a postgresql:// URL: migrate-db copies the SQLite database into "
            "PostgreSQL."
        )
    source = _source_path(args.source)
    results = asyncio.run(
        copy_sqlite_to_postgres(source, url, overwrite=args.overwrite, progress=print)
    )
    changed = sum(r.inserted + r.updated for r in results)
    print(
        f"OK: {total_rows(results)} rows in {len(results)} tables verified in "
        f"{redact_url(url)} ({changed} written, "
        f"{total_rows(results) - changed} already there). Set DATABASE_URL to it in each "
        "bot process's settings to use it."
    )
    return 0


def _source_path(given: str | None) -> Path:
    """--from, else DATABASE_PATH from the environment or .env, relative to the project."""
    raw = given
    if raw is None:
        env_file = Path(os.environ.get("PROMPTWARDEN_ENV_FILE") or PROJECT_ROOT / ".env")
        values = {**dotenv_values(env_file), **os.environ}
        raw = (values.get("DATABASE_PATH") or "").strip() or "data/promptwarden.db"
    if raw.startswith("sqlite:///"):
        raw = raw[len("sqlite:///") :]
    path = Path(raw).expanduser()
    return path if path.is_absolute() or given is not None else PROJECT_ROOT / path
