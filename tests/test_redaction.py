"""The token never reaches a log line, whichever logger or exception carries it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot
from promptwarden.config import Settings
from promptwarden.redaction import REDACTED

TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.redaction-test-token_0123456789abc"


@pytest.fixture
def bot_log(tmp_path: Path) -> Iterator[io.StringIO]:
    """What the bot's own log handler writes, after bot.py's real logging setup."""
    root = logging.getLogger()
    handlers, filters, level = list(root.handlers), list(root.filters), root.level
    bot.configure_logging(Settings(discord_token=TOKEN, database_path=tmp_path / "pw.db"))
    [handler] = [h for h in root.handlers if h not in handlers]
    assert isinstance(handler, logging.StreamHandler)
    output = io.StringIO()
    handler.setStream(output)
    yield output
    root.removeHandler(handler)
    root.filters[:] = filters
    root.setLevel(level)


def test_token_is_redacted_from_messages_arguments_and_tracebacks(
    bot_log: io.StringIO,
) -> None:
    logging.getLogger("discord.http").warning("header Authorization: Bot %s", TOKEN)
    logging.getLogger().error(f"token in the message itself: {TOKEN}")
    try:
        raise RuntimeError(f"failed with {TOKEN}")
    except RuntimeError:
        logging.getLogger("promptwarden.bot").exception("an error")

    err = bot_log.getvalue()
    assert TOKEN not in err
    assert f"Authorization: Bot {REDACTED}" in err
    assert f"token in the message itself: {REDACTED}" in err
    assert f"RuntimeError: failed with {REDACTED}" in err


def test_settings_repr_hides_the_token(tmp_path: Path) -> None:
    settings = Settings(discord_token=TOKEN, database_path=tmp_path / "pw.db")
    assert TOKEN not in repr(settings)
