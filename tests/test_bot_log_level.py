"""LOG_LEVEL=DEBUG must not put members' prompts in the log through discord.py, which
writes every raw gateway payload at DEBUG; DISCORD_LOG_LEVEL asks for that explicitly."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot
from promptwarden.config import ConfigError, load_settings
from tests.helpers import FAKE_TOKEN

PROMPT = "a portrait of my neighbour, photorealistic"
# What discord.gateway logs for each event it receives, shaped as it writes it.
PAYLOAD = json.dumps({"t": "MESSAGE_CREATE", "d": {"content": PROMPT}})


@contextlib.contextmanager
def bot_log(tmp_path: Path, **environ: str) -> Iterator[io.StringIO]:
    """What the bot's log handler writes after bot.py's real setup for these settings."""
    root, discord_logger = logging.getLogger(), logging.getLogger("discord")
    saved = list(root.handlers), list(root.filters), root.level, discord_logger.level
    # pytest's own capture handlers live all session: give them back their filters.
    handler_filters = {h: list(h.filters) for h in saved[0]}
    settings = load_settings({"DISCORD_TOKEN": FAKE_TOKEN, **environ}, root=tmp_path)
    bot.configure_logging(settings)
    [handler] = [h for h in root.handlers if h not in saved[0]]
    assert isinstance(handler, logging.StreamHandler)
    output = io.StringIO()
    handler.setStream(output)
    try:
        yield output
    finally:
        root.removeHandler(handler)
        root.filters[:] = saved[1]
        root.setLevel(saved[2])
        discord_logger.setLevel(saved[3])
        for other, kept in handler_filters.items():
            other.filters[:] = kept


def log_a_gateway_event() -> None:
    logging.getLogger("discord.gateway").debug("For Shard ID 0: WebSocket Event: %s", PAYLOAD)
    logging.getLogger("discord.gateway").info("Shard ID 0 has connected to Gateway")
    logging.getLogger("promptwarden.screening").debug("screened message 123 in 0.2 ms")


def test_debug_logging_keeps_gateway_payloads_and_their_prompts_out(tmp_path: Path) -> None:
    with bot_log(tmp_path, LOG_LEVEL="DEBUG") as output:
        log_a_gateway_event()
    text = output.getvalue()
    assert PROMPT not in text
    assert "Shard ID 0 has connected to Gateway" in text  # discord.py's INFO lines stay
    assert "screened message 123" in text  # the bot's own DEBUG lines are there


def test_discord_log_level_debug_is_the_explicit_way_to_see_payloads(tmp_path: Path) -> None:
    with bot_log(tmp_path, LOG_LEVEL="INFO", DISCORD_LOG_LEVEL="debug") as output:
        log_a_gateway_event()
    text = output.getvalue()
    assert PROMPT in text
    assert "screened message 123" not in text  # LOG_LEVEL still rules the bot's own


def test_a_quieter_log_level_quiets_discord_py_too(tmp_path: Path) -> None:
    with bot_log(tmp_path, LOG_LEVEL="WARNING") as output:
        log_a_gateway_event()
        logging.getLogger("discord.client").warning("Shard ID 0 heartbeat blocked")
    text = output.getvalue()
    assert "has connected" not in text
    assert "heartbeat blocked" in text


def test_a_bad_discord_log_level_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DISCORD_LOG_LEVEL must be one of DEBUG, INFO"):
        load_settings({"DISCORD_TOKEN": FAKE_TOKEN, "DISCORD_LOG_LEVEL": "chatty"}, root=tmp_path)
