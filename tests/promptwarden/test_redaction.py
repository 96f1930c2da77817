"""The token never reaches a log line, whichever logger or exception carries it."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot
from promptwarden.config import Settings
from promptwarden.redaction import REDACTED, SecretRedactingFilter

TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.redaction-test-token_0123456789abc"


@pytest.fixture
def bot_log(tmp_path: Path) -> Iterator[io.StringIO]:
    """What the bot's own log handler writes, after bot.py's real logging setup."""
    root = logging.getLogger()
    handlers, filters, level = list(root.handlers), list(root.filters), root.level
    # pytest's own capture handlers live all session: give them back their filters.
    handler_filters = {h: list(h.filters) for h in handlers}
    discord_level = logging.getLogger("discord").level
    bot.configure_logging(Settings(discord_token=TOKEN, database_path=tmp_path / "pw.db"))
    [handler] = [h for h in root.handlers if h not in handlers]
    assert isinstance(handler, logging.StreamHandler)
    output = io.StringIO()
    handler.setStream(output)
    yield output
    root.removeHandler(handler)
    root.filters[:] = filters
    for other, kept in handler_filters.items():
        other.filters[:] = kept
    root.setLevel(level)
    logging.getLogger("discord").setLevel(discord_level)


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


def test_a_record_whose_arguments_do_not_fit_its_format_is_logged_not_raised(
    bot_log: io.StringIO,
) -> None:
    log = logging.getLogger("promptwarden.test")
    log.warning("two values %s and %s", TOKEN)  # one argument short
    log.warning("a number %d", f"not a number {TOKEN}")
    log.warning("no placeholder", TOKEN)
    log.warning("%(missing)s", {"token": TOKEN})

    err = bot_log.getvalue()
    mismatch = "[log arguments do not match the format"
    assert TOKEN not in err
    assert f"two values %s and %s {mismatch} (TypeError): {REDACTED}]" in err
    assert f"a number %d {mismatch} (TypeError): not a number {REDACTED}]" in err
    assert f"no placeholder {mismatch} (TypeError): {REDACTED}]" in err
    assert f"%(missing)s {mismatch} (KeyError): token={REDACTED}]" in err
    assert "Logging error" not in err


class Unprintable:
    def __str__(self) -> str:
        raise ValueError(TOKEN)

    def __repr__(self) -> str:
        raise ValueError(TOKEN)


class CarriesToken:
    def __str__(self) -> str:
        return f"object holding {TOKEN}"


_pieces = st.sampled_from(["%s", "%d", "%r", "%(k)s", "%", "%%", TOKEN, "text ", " "])
_arguments = st.one_of(
    st.just(TOKEN),
    st.text(max_size=8).map(lambda s: s + TOKEN),
    st.integers(),
    st.just(Unprintable()),
    st.just(CarriesToken()),
    st.just(None),
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(_pieces, max_size=6),
    args=st.one_of(
        st.lists(_arguments, max_size=4).map(tuple),
        st.dictionaries(st.sampled_from(["k", "j"]), _arguments, max_size=2),
    ),
    with_traceback=st.booleans(),
)
def test_the_filter_never_raises_and_never_lets_the_token_through(
    pieces: list[str], args: tuple[object, ...] | dict[str, object], with_traceback: bool
) -> None:
    exc_info = None
    if with_traceback:
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord(
        "discord.http", logging.WARNING, __file__, 1, "".join(pieces), None, exc_info
    )
    record.args = args or None  # as logging does: an empty mapping means no arguments

    assert SecretRedactingFilter(TOKEN).filter(record) is True
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert TOKEN not in line
