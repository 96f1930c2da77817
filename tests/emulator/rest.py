"""The REST half: the routes the bot calls, every call recorded, faults injected per route.

Routes are written as templates (`DELETE /channels/{channel_id}/messages/{message_id}`), and
tests name them the same way to inject a fault or to read what the bot did. An unknown
route answers 404 and is recorded too, so a test sees a call the emulator does not serve.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .world import Channel, Guild, World

if TYPE_CHECKING:
    from .gateway import Gateway

API = "/api/v10"
GOOD_STATUS = range(200, 300)

# Discord's own error bodies, so discord.py raises the same exceptions it would in production.
ERROR_BODIES: dict[int, dict[str, Any]] = {
    401: {"message": "401: Unauthorized", "code": 0},
    403: {"message": "Missing Permissions", "code": 50013},
    404: {"message": "Unknown Message", "code": 10008},
    500: {"message": "500: Internal Server Error", "code": 0},
}


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Exactly `application/json`: with a charset, discord.py reads the body as a string.

    No body (204) means no content type either: discord.py parses any JSON-typed body.
    """
    if data is None:
        return web.Response(status=status, headers=headers)
    body = json.dumps(data).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


@dataclass(frozen=True, slots=True)
class Call:
    """One REST request as the bot made it, and what the emulator answered."""

    method: str
    route: str  # the template, e.g. "POST /channels/{channel_id}/messages"
    params: dict[str, str]
    body: Any
    status: int
    at: float  # time.monotonic() when answered: comparable across processes on Linux

    @property
    def ok(self) -> bool:
        return self.status in GOOD_STATUS

    def param(self, name: str) -> int:
        return int(self.params[name])


@dataclass
class Fault:
    """Answer the next `times` calls of `route` (those with `params`, if any) with `status`."""

    route: str
    status: int
    times: int = 1
    retry_after: float = 0.05
    params: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, route: str, params: dict[str, str]) -> bool:
        if self.hits >= self.times or route != self.route:
            return False
        return all(params.get(k) == v for k, v in self.params.items())

    def response(self) -> web.Response:
        self.hits += 1
        if self.status == 429:
            # discord.py needs retry_after in the body, and a Via header, or it takes the
            # 429 for a Cloudflare ban and gives up.
            body = {"message": "You are being rate limited.", "retry_after": self.retry_after}
            headers = {"Via": "1.1 google", "X-RateLimit-Scope": "user"}
            return json_response({**body, "global": False}, 429, headers)
        return json_response(
            ERROR_BODIES.get(self.status, {"message": "error", "code": 0}), self.status
        )


Handler = Callable[["Rest", web.Request, dict[str, str], Any], Awaitable[tuple[int, Any]]]
_ROUTES: list[tuple[str, str, re.Pattern[str], Handler]] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    pattern = re.compile(
        "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
    )

    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, template, pattern, handler))
        return handler

    return register


# Every bucket announces this many calls a second. discord.py sends one call at a time per
# bucket until a response tells it the bucket's limit, as Discord's always does; without the
# headers every delete in a channel, and every mod-log entry, would wait for the one before.
# Announced, not enforced: the emulator stands for a Discord that is not the bottleneck
# (429s come from `Fault`s).
BUCKET_LIMIT = 1000


class Rest:
    def __init__(self, world: World, token: str) -> None:
        self.world = world
        self.token = token
        self.gateway: Gateway | None = None
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.interaction_channels: dict[int, Channel] = {}  # where each interaction happened
        self.command_ids: dict[str, int] = {}  # name -> the id given when the bot synced
        self.changed = threading.Condition()  # notified after every recorded call
        self._buckets: dict[str, tuple[int, int]] = {}  # bucket -> (second, calls in it)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", API + "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = await _read_body(request)
        name, params, handler = _resolve(request.method, path)
        # Interaction replies are authorised by the interaction's token, not the bot's.
        token_free = name.startswith(("POST /interactions/", "PATCH /webhooks/", "POST /webhooks/"))
        if not token_free and request.headers.get("Authorization") != f"Bot {self.token}":
            response = json_response(ERROR_BODIES[401], 401)
        elif (fault := self._fault(name, params)) is not None:
            response = fault.response()
        else:
            status, data = await handler(self, request, params, body)
            if status in GOOD_STATUS or isinstance(data, dict):
                response = json_response(data, status)
            else:
                response = json_response(ERROR_BODIES.get(status, {"code": 0}), status)
            response.headers.update(self._rate_headers(name, params))
        self._record(Call(request.method, name, params, body, response.status, time.monotonic()))
        return response

    def _rate_headers(self, name: str, params: dict[str, str]) -> dict[str, str]:
        """Discord's rate-limit headers for a bucket (route and major parameter) with
        BUCKET_LIMIT calls a second."""
        major = params.get("channel_id") or params.get("guild_id") or params.get("webhook_id")
        bucket = f"{name}:{major}"
        now = time.time()
        second = int(now)
        start, used = self._buckets.get(bucket, (second, 0))
        used = used + 1 if start == second else 1
        self._buckets[bucket] = (second, used)
        return {
            "X-RateLimit-Limit": str(BUCKET_LIMIT),
            "X-RateLimit-Remaining": str(max(0, BUCKET_LIMIT - used)),
            "X-RateLimit-Reset": f"{second + 1:.3f}",
            "X-RateLimit-Reset-After": f"{second + 1 - now:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(name.encode()).hexdigest()[:16],
        }

    def _fault(self, name: str, params: dict[str, str]) -> Fault | None:
        with self.changed:
            for fault in self.faults:
                if fault.matches(name, params):
                    return fault
        return None

    def _record(self, call: Call) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def channel(self, channel_id: str) -> Channel | None:
        return self.world.channels.get(int(channel_id))

    def guild(self, guild_id: str) -> Guild | None:
        """The guild, if the bot is in it (Discord answers as if no other guild exists)."""
        guild = self.world.guilds.get(int(guild_id))
        return guild if guild is not None and guild.joined else None

    async def create_message(self, channel: Channel, data: dict[str, Any]) -> dict[str, Any]:
        """Store and announce a message, as Discord does for the bot's own messages too."""
        self.world.store(data)
        if self.gateway is not None:
            await self.gateway.dispatch("MESSAGE_CREATE", data)
        return data


def _resolve(method: str, path: str) -> tuple[str, dict[str, str], Handler]:
    for route_method, template, pattern, handler in _ROUTES:
        m = pattern.match(path)
        if m and route_method == method:
            return f"{method} {template}", m.groupdict(), handler
    return f"{method} {path}", {}, _unknown_route


async def _read_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    if request.content_type == "multipart/form-data":
        form = await request.post()
        raw = form.get("payload_json")
        files = [k for k in form if k != "payload_json"]
        data = json.loads(str(raw)) if raw is not None else {}
        return {**data, "_files": files}
    text = await request.text()
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return text


async def _unknown_route(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    return 404, {"message": "404: Not Found (not served by the emulator)", "code": 0}


# ---- users, application, commands


@route("GET", "/users/@me")
async def _me(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    return 200, rest.world.bot.payload()


@route("GET", "/oauth2/applications/@me")
async def _application(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    owner = rest.world.users[rest.world.guild.owner_id]
    return 200, {
        "id": str(rest.world.app_id),
        "name": rest.world.bot.name,
        "description": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": owner.payload(),
        "verify_key": "0" * 64,
        "flags": 0,
    }


@route("GET", "/users/{user_id}")
async def _user(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    user = rest.world.users.get(int(params["user_id"]))
    if user is None:
        return 404, {"message": "Unknown User", "code": 10013}
    return 200, user.payload()


async def _put_commands(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    answer = []
    for command in body or []:
        command_id = rest.command_ids.setdefault(command["name"], rest.world.ids.next())
        # Context-menu commands have no description; Discord answers with an empty one.
        answer.append(
            {
                "description": "",
                **command,
                "id": str(command_id),
                "application_id": params["app_id"],
                "version": "1",
            }
        )
    return 200, answer


route("PUT", "/applications/{app_id}/commands")(_put_commands)
route("PUT", "/applications/{app_id}/guilds/{guild_id}/commands")(_put_commands)


# ---- channels and messages


@route("GET", "/channels/{channel_id}")
async def _get_channel(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = rest.channel(params["channel_id"])
    if channel is None:
        return 404, {"message": "Unknown Channel", "code": 10003}
    return 200, channel.payload()


@route("GET", "/channels/{channel_id}/messages")
async def _history(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = rest.channel(params["channel_id"])
    if channel is None:
        return 404, {"message": "Unknown Channel", "code": 10003}
    q = request.query
    limit = max(1, min(100, int(q.get("limit", "50"))))
    before = int(q["before"]) if "before" in q else None
    after = int(q["after"]) if "after" in q else None
    return 200, rest.world.history(channel, limit=limit, before=before, after=after)


@route("GET", "/channels/{channel_id}/messages/{message_id}")
async def _get_message(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = rest.channel(params["channel_id"])
    message = channel.messages.get(int(params["message_id"])) if channel else None
    if message is None:
        return 404, ERROR_BODIES[404]
    return 200, message


@route("POST", "/channels/{channel_id}/messages")
async def _send(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = rest.channel(params["channel_id"])
    if channel is None:
        return 404, {"message": "Unknown Channel", "code": 10003}
    if channel.recipient is not None and channel.recipient.dms_closed:
        return 403, {"message": "Cannot send messages to this user", "code": 50007}
    body = body or {}
    attachments = [
        {"id": str(rest.world.ids.next()), "filename": name, "size": 1, "url": "", "proxy_url": ""}
        for name in body.get("_files", [])
    ]
    reference = (body.get("message_reference") or {}).get("message_id")
    data = rest.world.message_payload(
        channel,
        rest.world.bot,
        body.get("content") or "",
        embeds=body.get("embeds"),
        attachments=attachments,
        components=body.get("components"),
        reference=int(reference) if reference else None,
    )
    return 200, await rest.create_message(channel, data)


@route("PATCH", "/channels/{channel_id}/messages/{message_id}")
async def _edit(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = rest.channel(params["channel_id"])
    message = channel.messages.get(int(params["message_id"])) if channel else None
    if message is None:
        return 404, ERROR_BODIES[404]
    message.update(
        {k: v for k, v in (body or {}).items() if k in ("content", "embeds", "components")}
    )
    return 200, message


@route("DELETE", "/channels/{channel_id}/messages/{message_id}")
async def _delete(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = rest.channel(params["channel_id"])
    message_id = int(params["message_id"])
    if channel is None or channel.messages.pop(message_id, None) is None:
        return 404, ERROR_BODIES[404]
    if rest.gateway is not None:
        event = {"id": str(message_id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            event["guild_id"] = str(channel.guild_id)
        await rest.gateway.dispatch("MESSAGE_DELETE", event)
    return 204, None


@route("POST", "/users/@me/channels")
async def _open_dm(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    user = rest.world.users.get(int((body or {}).get("recipient_id", 0)))
    if user is None:
        return 400, {"message": "Invalid Recipient(s)", "code": 50033}
    return 200, rest.world.dm_channel(user).payload()


# ---- guilds and members


UNKNOWN_GUILD = {"message": "Unknown Guild", "code": 10004}
UNKNOWN_MEMBER = {"message": "Unknown Member", "code": 10007}


@route("GET", "/guilds/{guild_id}")
async def _guild(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None:
        return 404, UNKNOWN_GUILD
    data = guild.create_payload(rest.world.app_id)
    return 200, {k: v for k, v in data.items() if k not in ("channels", "members", "threads")}


@route("GET", "/guilds/{guild_id}/channels")
async def _guild_channels(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None:
        return 404, UNKNOWN_GUILD
    return 200, [c.payload(i) for i, c in enumerate(guild.channels.values())]


@route("GET", "/guilds/{guild_id}/members/{user_id}")
async def _get_member(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    member = guild.members.get(int(params["user_id"])) if guild else None
    if member is None:
        return 404, UNKNOWN_MEMBER
    return 200, member.payload()


@route("PATCH", "/guilds/{guild_id}/members/{user_id}")
async def _edit_member(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    """Timeouts: the member changes here; no GUILD_MEMBER_UPDATE without the members intent."""
    guild = rest.guild(params["guild_id"])
    member = guild.members.get(int(params["user_id"])) if guild else None
    if member is None:
        return 404, UNKNOWN_MEMBER
    if "communication_disabled_until" in (body or {}):
        member.timed_out_until = body["communication_disabled_until"]
    return 200, member.payload()


# ---- interactions (button presses on mod-log entries)


@route("POST", "/interactions/{interaction_id}/{token}/callback")
async def _interaction_callback(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    """discord.py 2.7 asks for the callback response (`with_response`) and parses it."""
    interaction_id = int(params["interaction_id"])
    channel = rest.interaction_channels.get(interaction_id) or next(
        iter(rest.world.guild.channels.values())
    )
    body = body or {}
    kind = int(body.get("type", 4))
    data = body.get("data") or {}
    answer: dict[str, Any] = {
        "interaction": {
            "id": str(interaction_id),
            "type": 2,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
        },
        "resource": {"type": kind},
    }
    if kind in (4, 7):
        message = rest.world.message_payload(
            channel, rest.world.bot, data.get("content") or "", embeds=data.get("embeds")
        )
        answer["interaction"]["response_message_id"] = message["id"]
        answer["resource"]["message"] = message
    return 200, answer


@route("PATCH", "/webhooks/{app_id}/{token}/messages/@original")
async def _edit_original(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = next(iter(rest.world.guild.channels.values()))
    return 200, rest.world.message_payload(
        channel, rest.world.bot, (body or {}).get("content") or ""
    )


@route("POST", "/webhooks/{app_id}/{token}")
async def _followup(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    channel = next(iter(rest.world.guild.channels.values()))
    return 200, rest.world.message_payload(
        channel, rest.world.bot, (body or {}).get("content") or ""
    )
