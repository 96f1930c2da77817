"""The gateway half: HELLO, IDENTIFY -> READY + a GUILD_CREATE per guild, heartbeats, RESUME.

Frames go out as text (discord.py inflates only binary frames, so the `compress` it asks
for can be ignored). A session keeps every event it dispatched, so a RESUME replays what
the bot missed, as Discord does; a drop with `resumable=False` throws the session away, and
the bot must IDENTIFY again and find what it missed through channel history.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .world import World

BACKLOG = 100_000
MESSAGE_CONTENT_INTENT = 1 << 15
AUTO_MODERATION_CONFIGURATION_INTENT = 1 << 20
AUTO_MODERATION_EXECUTION_INTENT = 1 << 21
HELLO, IDENTIFY, RESUME, HEARTBEAT, HEARTBEAT_ACK, INVALID_SESSION = 10, 2, 6, 1, 11, 9


@dataclass
class Session:
    id: str
    intents: int
    seq: int = 0
    resumable: bool = True
    ws: web.WebSocketResponse | None = None
    # (seq, frame) for RESUME; bounded, as Discord's own buffer is, so a long burst
    # costs the emulator flat memory.
    backlog: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=BACKLOG))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Gateway:
    def __init__(
        self,
        world: World,
        token: str,
        *,
        heartbeat_interval_ms: int = 41250,
        refuse_privileged_intents: bool = False,
    ) -> None:
        self.world = world
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.refuse_privileged_intents = refuse_privileged_intents
        self.url = ""  # set once the server listens; sent as resume_gateway_url
        self.sessions: dict[str, Session] = {}
        self._session_ids = itertools.count(1)
        # Observed from the test thread.
        self.identified = threading.Event()
        self.ready_sent = threading.Event()
        self.identify_shards: list[Any] = []  # the [id, count] each IDENTIFY asked for
        self.resumed = threading.Event()
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self._connect)
        app.router.add_get("/gateway/", self._connect)

    # -- dispatch

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int = 0) -> None:
        """Send to every live session (with `intent`, only those that asked for it); a
        session between connections keeps it for RESUME. Nothing of a guild the bot is not
        in is sent."""
        guild = self.world.guilds.get(int(data.get("guild_id") or 0))
        if guild is not None and not guild.joined:
            return
        for session in list(self.sessions.values()):
            if session.resumable and session.intents & intent == intent:
                await self._send_event(session, event, data)

    async def _send_event(self, session: Session, event: str, data: dict[str, Any]) -> None:
        async with session.lock:
            session.seq += 1
            frame = json.dumps({"op": 0, "s": session.seq, "t": event, "d": data})
            session.backlog.append((session.seq, frame))
            ws = session.ws
            if ws is not None and not ws.closed:
                try:
                    await ws.send_str(frame)
                except ConnectionError:
                    session.ws = None

    async def drop(self, *, code: int = 4000, resumable: bool = True) -> None:
        """Close every live connection; the bot resumes (or, if not resumable, re-identifies)."""
        for session in list(self.sessions.values()):
            if not resumable:
                session.resumable = False
                session.backlog.clear()
            ws, session.ws = session.ws, None
            if ws is not None and not ws.closed:
                await ws.close(code=code, message=b"emulator dropped the connection")

    # -- connection

    async def _connect(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(
            json.dumps({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        )
        session: Session | None = None
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            op, d = frame.get("op"), frame.get("d")
            if op == HEARTBEAT:
                self.heartbeats += 1
                await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
            elif op == IDENTIFY:
                session = await self._identify(ws, d)
                if session is None:
                    break
            elif op == RESUME:
                session = await self._resume(ws, d)
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> Session | None:
        self.identifies += 1
        self.identify_shards.append(d.get("shard"))
        self.identified.set()
        if d.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(d.get("intents", 0))
        if self.refuse_privileged_intents and intents & MESSAGE_CONTENT_INTENT:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        # One bot, one session: a new IDENTIFY replaces any earlier session.
        for old in self.sessions.values():
            old.resumable = False
        self.sessions.clear()
        session = Session(f"emulator-session-{next(self._session_ids)}", intents)
        self.sessions[session.id] = session
        session.ws = ws
        world = self.world
        joined = [g for g in world.guilds.values() if g.joined]
        await self._send_event(
            session,
            "READY",
            {
                "v": 10,
                "user": world.bot.payload(),
                "guilds": [{"id": str(g.id), "unavailable": True} for g in joined],
                "session_id": session.id,
                "resume_gateway_url": self.url,
                "application": {"id": str(world.app_id), "flags": 0},
                # An AutoShardedBot reads its shard back from READY.
                "shard": d.get("shard") or [0, 1],
            },
        )
        self.ready_sent.set()
        for guild in joined:
            await self._send_event(session, "GUILD_CREATE", guild.create_payload(world.app_id))
        return session

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> Session | None:
        self.resumes += 1
        session = self.sessions.get(str(d.get("session_id")))
        if d.get("token") != self.token or session is None or not session.resumable:
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        seq = int(d.get("seq") or 0)
        async with session.lock:
            for event_seq, frame in session.backlog:
                if event_seq > seq:
                    await ws.send_str(frame)
            session.ws = ws
        await self._send_event(session, "RESUMED", {})
        self.resumed.set()
        return session

    async def close(self) -> None:
        for session in self.sessions.values():
            if session.ws is not None:
                with contextlib.suppress(ConnectionError):
                    await session.ws.close()
