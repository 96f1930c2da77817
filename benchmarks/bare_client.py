"""The baseline for benchmarks/e2e.py: a bare discord.py client that only receives messages.

Same intents and same endpoints settings as PromptWarden, no cogs, no database. It notes
when each message arrived (time.monotonic(), which on Linux is one clock for every
process), and when it sees the content in BARE_DONE_CONTENT it writes those times as JSON
to BARE_RECEIPTS and posts one message, so the benchmark knows it has everything.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import discord

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from discordbot import required_intents, use_discord_endpoints  # noqa: E402
from promptwarden.config import load_settings  # noqa: E402


def main() -> None:
    settings = load_settings(root=ROOT)
    use_discord_endpoints(settings.discord_api_base, settings.discord_gateway_url)
    receipts: dict[int, float] = {}
    done = os.environ["BARE_DONE_CONTENT"]
    out = Path(os.environ["BARE_RECEIPTS"])
    client = discord.Client(
        intents=required_intents(), guild_ready_timeout=settings.guild_ready_timeout
    )

    @client.event
    async def on_message(message: discord.Message) -> None:
        receipts[message.id] = time.monotonic()
        if message.content == done:
            out.write_text(json.dumps(receipts))
            await message.channel.send("received everything")

    client.run(settings.discord_token, log_handler=None)


if __name__ == "__main__":
    main()
