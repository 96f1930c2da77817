"""A tiny Discord on 127.0.0.1 for testing `python bot.py` as a real process.

SimCord runs the bot in-process; what happens around it in `bot.py` (a rejected token, a
refused privileged intent, SIGTERM) needs real sockets. This serves just enough REST and
gateway for discord.py 2.7 to log in, sync commands and reach READY. The bot process is
pointed here through discord.py's own `Route.BASE` and `DEFAULT_GATEWAY` (see `run_bot`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "1052345678901234567"
# The first part is APP_ID in base64, as Discord builds tokens.
GOOD_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.loopback-good-token_0123456789abcdef"
BAD_TOKEN = "MTA1MjM0NTY3ODkwMTIzNDU2Nw.GaBcDe.loopback-revoked-token_0123456789abc"

BOOT = (
    "import runpy, sys, discord.http, discord.gateway, yarl;"
    "discord.http.Route.BASE = sys.argv[1];"
    "discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2]);"
    "sys.argv = ['bot.py', *sys.argv[3:]];"
    "runpy.run_path('bot.py', run_name='__main__')"
)


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly application/json: discord.py treats anything else (e.g. with a charset) as text.
    return web.Response(status=status, body=json.dumps(data), content_type="application/json")


class LoopbackDiscord:
    def __init__(self, *, refuse_privileged_intents: bool = False) -> None:
        self.refuse_privileged_intents = refuse_privileged_intents
        self.command_puts: list[Any] = []
        self.gateway_bot_requests = 0
        self.identify_shards: list[Any] = []
        self.identified = threading.Event()
        self.ready_sent = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def wait_for_identifies(self, count: int, timeout: float) -> bool:
        """Wait until `count` shards identified and got READY (each shard connects alone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.identify_shards) >= count and self.ready_sent.is_set():
                return True
            time.sleep(0.05)
        return False

    # -- lifecycle

    def __enter__(self) -> LoopbackDiscord:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_put("/api/v10/applications/{app}/commands", self._put_commands)
        app.router.add_get("/api/v10/gateway/bot", self._gateway_bot)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    # -- REST

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {GOOD_TOKEN}"

    def _user(self) -> dict[str, Any]:
        return {
            "id": APP_ID,
            "username": "PromptWarden",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
        }

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        return _json(self._user())

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": APP_ID,
                "name": "PromptWarden",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": {**self._user(), "id": "1", "bot": False},
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _put_commands(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.command_puts.append(payload)
        return _json(
            [
                {**c, "id": str(900 + i), "application_id": APP_ID, "version": "1"}
                for i, c in enumerate(payload)
            ]
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        """What an AutoShardedBot without SHARD_COUNT asks first: how many shards, where."""
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        self.gateway_bot_requests += 1
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return _json(
            {
                "url": f"ws://127.0.0.1:{self.port}/gateway",
                "shards": 1,
                "session_start_limit": limit,
            }
        )

    # -- gateway (plain-text JSON frames: discord.py only inflates binary ones)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45000}}))
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["op"] == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif frame["op"] == 2:
                self.identify_shards.append(frame["d"].get("shard"))
                self.identified.set()
                if self.refuse_privileged_intents:
                    await ws.close(code=4014, message=b"Disallowed intent(s).")
                    break
                ready = self._ready(request)
                # An AutoShardedBot reads its shard back from READY.
                ready["d"]["shard"] = frame["d"].get("shard") or [0, 1]
                await ws.send_str(json.dumps(ready))
                self.ready_sent.set()
        return ws

    def _ready(self, request: web.Request) -> dict[str, Any]:
        return {
            "op": 0,
            "s": 1,
            "t": "READY",
            "d": {
                "v": 10,
                "user": self._user(),
                "guilds": [],
                "session_id": "loopback-session",
                "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                "application": {"id": APP_ID, "flags": 0},
            },
        }

    # -- the bot process

    def start_bot(self, env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                BOOT,
                f"http://127.0.0.1:{self.port}/api/v10",
                f"ws://127.0.0.1:{self.port}/gateway",
                *args,
            ],
            cwd=ROOT,
            env={**clean_env(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def clean_env() -> dict[str, str]:
    """No inherited DISCORD_* or DATABASE_* and no .env: only what a test passes counts."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PROMPTWARDEN_ENV_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",
    }
