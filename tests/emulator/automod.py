"""AutoMod as Discord serves it: rule endpoints with Discord's limits, and executions.

Rules need Manage Server on the bot's role (403, code 50013, otherwise). A body beyond a
limit answers 400 with code 50035 and the field at fault, as Discord's form errors do;
a seventh keyword rule is refused the same way. Changes to rules are announced to sessions
with the configuration intent; an execution (one event per action of the rule, as Discord
sends them) only to sessions with the execution intent, and its `content` and
`matched_content` are empty unless the session also has Message Content.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .gateway import (
    AUTO_MODERATION_CONFIGURATION_INTENT,
    AUTO_MODERATION_EXECUTION_INTENT,
    MESSAGE_CONTENT_INTENT,
)
from .rest import Rest, route
from .world import MANAGE_GUILD, Channel, Guild, User, World

RULES = "/guilds/{guild_id}/auto-moderation/rules"
RULE = RULES + "/{rule_id}"
KEYWORD_TRIGGER = 1
MAX_KEYWORD_RULES = 6
LIMITS = {  # field of trigger_metadata -> (most entries, longest entry)
    "keyword_filter": (1000, 60),
    "regex_patterns": (10, 260),
    "allow_list": (100, 60),
}
MAX_CUSTOM_MESSAGE = 150
MAX_EXEMPT_ROLES = 20
MAX_EXEMPT_CHANNELS = 50
MISSING_PERMISSIONS = {"message": "Missing Permissions", "code": 50013}
UNKNOWN_RULE = {"message": "Unknown Auto Moderation Rule", "code": 10066}


def _form_error(path: str, code: str, message: str) -> tuple[int, Any]:
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return 400, {"message": "Invalid Form Body", "code": 50035, "errors": errors}


def _invalid(rule: dict[str, Any]) -> tuple[int, Any] | None:
    """Discord's form error for the first limit the rule breaks, or None."""
    metadata = rule.get("trigger_metadata") or {}
    for name, (most, longest) in LIMITS.items():
        entries = metadata.get(name) or []
        if len(entries) > most:
            return _form_error(
                f"trigger_metadata.{name}", "BASE_TYPE_MAX_LENGTH", f"Must be {most} or fewer."
            )
        for i, entry in enumerate(entries):
            if not 1 <= len(entry) <= longest:
                return _form_error(
                    f"trigger_metadata.{name}.{i}",
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {longest} in length.",
                )
    for i, action in enumerate(rule.get("actions") or []):
        message = (action.get("metadata") or {}).get("custom_message") or ""
        if len(message) > MAX_CUSTOM_MESSAGE:
            return _form_error(
                f"actions.{i}.metadata.custom_message",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_CUSTOM_MESSAGE} or fewer in length.",
            )
    exempt = (("exempt_roles", MAX_EXEMPT_ROLES), ("exempt_channels", MAX_EXEMPT_CHANNELS))
    for name, most in exempt:
        if len(rule.get(name) or []) > most:
            return _form_error(name, "BASE_TYPE_MAX_LENGTH", f"Must be {most} or fewer.")
    return None


def _may_manage(guild: Guild | None) -> bool:
    return guild is not None and bool(guild.bot_permissions & MANAGE_GUILD)


async def _announce(rest: Rest, event: str, rule: dict[str, Any]) -> None:
    if rest.gateway is not None:
        await rest.gateway.dispatch(event, rule, intent=AUTO_MODERATION_CONFIGURATION_INTENT)


@route("GET", RULES)
async def _list_rules(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None or not _may_manage(guild):
        return 403, MISSING_PERMISSIONS
    return 200, list(guild.automod_rules.values())


@route("GET", RULE)
async def _get_rule(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None or not _may_manage(guild):
        return 403, MISSING_PERMISSIONS
    rule = guild.automod_rules.get(int(params["rule_id"]))
    return (200, rule) if rule is not None else (404, UNKNOWN_RULE)


@route("POST", RULES)
async def _create_rule(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None or not _may_manage(guild):
        return 403, MISSING_PERMISSIONS
    body = body or {}
    world = rest.world
    rule = build_rule(world, body, creator_id=world.bot.id, guild=guild)
    if rule["trigger_type"] == KEYWORD_TRIGGER and (
        sum(r["trigger_type"] == KEYWORD_TRIGGER for r in guild.automod_rules.values())
        >= MAX_KEYWORD_RULES
    ):
        return _form_error(
            "trigger_type",
            "AUTO_MODERATION_MAX_RULES_OF_TYPE_EXCEEDED",
            f"Maximum number of rules of this trigger type reached ({MAX_KEYWORD_RULES}).",
        )
    invalid = _invalid(rule)
    if invalid is not None:
        return invalid
    guild.automod_rules[int(rule["id"])] = rule
    await _announce(rest, "AUTO_MODERATION_RULE_CREATE", rule)
    return 200, rule


@route("PATCH", RULE)
async def _modify_rule(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None or not _may_manage(guild):
        return 403, MISSING_PERMISSIONS
    rules = guild.automod_rules
    rule = rules.get(int(params["rule_id"]))
    if rule is None:
        return 404, UNKNOWN_RULE
    changes = {k: v for k, v in (body or {}).items() if k in EDITABLE}
    changed = {**rule, **changes}
    invalid = _invalid(changed)
    if invalid is not None:
        return invalid
    rules[int(rule["id"])] = changed
    await _announce(rest, "AUTO_MODERATION_RULE_UPDATE", changed)
    return 200, changed


@route("DELETE", RULE)
async def _delete_rule(
    rest: Rest, request: web.Request, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    guild = rest.guild(params["guild_id"])
    if guild is None or not _may_manage(guild):
        return 403, MISSING_PERMISSIONS
    rule = guild.automod_rules.pop(int(params["rule_id"]), None)
    if rule is None:
        return 404, UNKNOWN_RULE
    await _announce(rest, "AUTO_MODERATION_RULE_DELETE", rule)
    return 204, None


# trigger_type cannot change after creation, as on Discord.
EDITABLE = (
    "name",
    "event_type",
    "trigger_metadata",
    "actions",
    "enabled",
    "exempt_roles",
    "exempt_channels",
)


def build_rule(
    world: World, body: dict[str, Any], *, creator_id: int, guild: Guild | None = None
) -> dict[str, Any]:
    """A rule of `guild` (the first unless told) in the shape Discord answers with, from a
    create body."""
    metadata = body.get("trigger_metadata") or {}
    return {
        "id": str(world.ids.next()),
        "guild_id": str((guild or world.guild).id),
        "name": body.get("name", ""),
        "creator_id": str(creator_id),
        "event_type": int(body.get("event_type", 1)),
        "trigger_type": int(body.get("trigger_type", KEYWORD_TRIGGER)),
        "trigger_metadata": {
            "keyword_filter": list(metadata.get("keyword_filter") or []),
            "regex_patterns": list(metadata.get("regex_patterns") or []),
            "presets": list(metadata.get("presets") or []),
            "allow_list": list(metadata.get("allow_list") or []),
            "mention_total_limit": metadata.get("mention_total_limit"),
            "mention_raid_protection_enabled": bool(
                metadata.get("mention_raid_protection_enabled", False)
            ),
        },
        "actions": list(body.get("actions") or []),
        "enabled": bool(body.get("enabled", False)),
        "exempt_roles": [str(r) for r in body.get("exempt_roles") or []],
        "exempt_channels": [str(c) for c in body.get("exempt_channels") or []],
    }


def execution_events(
    world: World,
    rule: dict[str, Any],
    *,
    channel: Channel,
    member: User,
    content: str,
    keyword: str,
    message_id: int | None,
) -> list[dict[str, Any]]:
    """AUTO_MODERATION_ACTION_EXECUTION payloads, one per action of the rule.

    A blocked message has no `message_id`; an alert names the system message it posted.
    """
    events = []
    for action in rule.get("actions") or []:
        data: dict[str, Any] = {
            "guild_id": rule["guild_id"],
            "action": action,
            "rule_id": rule["id"],
            "rule_trigger_type": rule["trigger_type"],
            "user_id": str(member.id),
            "channel_id": str(channel.id),
            "content": content,
            "matched_keyword": keyword,
            "matched_content": keyword.strip("*"),
        }
        if message_id is not None:
            data["message_id"] = str(message_id)
        if int(action.get("type", 0)) == 2:
            data["alert_system_message_id"] = str(world.ids.next())
        events.append(data)
    return events


async def dispatch_execution(rest: Rest, events: list[dict[str, Any]]) -> None:
    """Send each execution to sessions with the execution intent; content only with
    Message Content too."""
    gateway = rest.gateway
    if gateway is None:
        return
    for data in events:
        for session in list(gateway.sessions.values()):
            wanted = AUTO_MODERATION_EXECUTION_INTENT
            if not session.resumable or session.intents & wanted != wanted:
                continue
            if not session.intents & MESSAGE_CONTENT_INTENT:
                data = {**data, "content": "", "matched_content": ""}
            await gateway._send_event(session, "AUTO_MODERATION_ACTION_EXECUTION", data)
