"""A loopback Discord (REST under /api/v10 and the gateway) for end-to-end tests.

`Emulator` serves the real `python bot.py` (started with `BotProcess`, pointed here by the
DISCORD_API_BASE and DISCORD_GATEWAY_URL settings), records every REST call, pushes
messages over the gateway, drops connections and injects REST faults per route.
"""

from .process import ROOT, BotProcess, clean_env
from .rest import Call, Fault
from .server import APP_ID, BAD_TOKEN, GOOD_TOKEN, Emulator, Post
from .world import MIDJOURNEY_BOT_ID, NIJI_BOT_ID, Channel, Guild, User

__all__ = [
    "APP_ID",
    "BAD_TOKEN",
    "GOOD_TOKEN",
    "MIDJOURNEY_BOT_ID",
    "NIJI_BOT_ID",
    "ROOT",
    "BotProcess",
    "Call",
    "Channel",
    "Emulator",
    "Fault",
    "Guild",
    "Post",
    "User",
    "clean_env",
]
