"""`screen`: screen prompts offline, one result per input line, in order.

Admins use it to try a guild's settings on a backlog of prompts before turning them on, so
it reads a file or stdin, never needs Discord, and prints either JSON lines for tools or a
highlighted text report for people.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from promptwarden.config import ConfigError, database_path_setting
from promptwarden.storage import StorageError

from .decision import Decision, Verdict
from .engine import Screener
from .rules import GuildRules

_COLOURS = {
    Verdict.ALLOW: "32",  # green
    Verdict.REMIND: "36",  # cyan
    Verdict.REVIEW: "33",  # yellow
    Verdict.WARN: "35",  # magenta
    Verdict.BLOCK: "31",  # red
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", default="-", metavar="FILE|-", help="prompts, one per line (- = stdin)"
    )
    parser.add_argument("--format", choices=("jsonl", "text"), default="jsonl")
    parser.add_argument(
        "--guild", type=int, metavar="GUILD_ID", help="apply this guild's stored screening rules"
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="the bot's database, for --guild (default: DATABASE_PATH from the environment "
        "or .env, else data/promptwarden.db)",
    )


async def _stored_rules_async(db_path: Path, guild_id: int) -> dict[str, Any] | None:
    from promptwarden.storage import open_storage

    async with await open_storage(db_path) as storage:
        return await storage.get_screening_rules(guild_id)


def load_guild_rules(db_path: Path, guild_id: int) -> dict[str, Any] | None:
    """The guild's stored screening settings, or None when it has none.

    The one place the CLI touches storage. A missing database is an error rather than a
    new empty one: the admin most likely pointed at the wrong file.
    """
    if not db_path.is_file():
        raise ValueError(
            f"no database at {db_path}: pass --db or set DATABASE_PATH to the bot's database"
        )
    return asyncio.run(_stored_rules_async(db_path, guild_id))


def _lines(path: str) -> Iterator[str]:
    if path == "-":
        for line in sys.stdin:
            yield line.rstrip("\r\n")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                yield line.rstrip("\r\n")


def highlight(decision: Decision, *, colour: bool) -> str:
    """The prompt with matched words marked: ANSI on a terminal, [brackets] otherwise."""
    text = decision.prompt
    spans = sorted({(m.start, m.end) for m in decision.matches if m.end > m.start})
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    out = []
    pos = 0
    for start, end in merged:
        out.append(text[pos:start])
        word = text[start:end]
        out.append(f"\x1b[1;4m{word}\x1b[0m" if colour else f"[{word}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def format_text(decision: Decision, *, colour: bool) -> str:
    verdict = decision.verdict.value.upper()
    if colour:
        verdict = f"\x1b[1;{_COLOURS[decision.verdict]}m{verdict}\x1b[0m"
    head = verdict
    if decision.categories:
        head += f" ({', '.join(decision.categories)}; {decision.severity.name.lower()})"
    return f"{head}: {highlight(decision, colour=colour)}"


def main(args: argparse.Namespace) -> int:
    rules = GuildRules()
    if args.guild is not None:
        try:
            db_path = args.db if args.db is not None else database_path_setting()
            stored = load_guild_rules(db_path, args.guild)
            rules = GuildRules.from_dict(stored)
        except (ValueError, OSError, ConfigError, StorageError) as exc:
            print(f"screen: cannot use the rules of guild {args.guild}: {exc}", file=sys.stderr)
            return 2
    screener = Screener(rules)
    colour = args.format == "text" and sys.stdout.isatty()
    try:
        for line in _lines(args.file):
            decision = screener.screen(line)
            if args.format == "jsonl":
                print(json.dumps(decision.to_dict(), ensure_ascii=False))
            else:
                print(format_text(decision, colour=colour))
    except FileNotFoundError:
        print(f"screen: no such file: {args.file}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="screen", description=__doc__)
    configure_parser(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
