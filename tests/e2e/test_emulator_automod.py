"""The emulator's AutoMod refuses what Discord refuses, so a sync that passes it is within
Discord's limits: too many keywords or characters, a seventh keyword rule, no Manage Server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.emulator import GOOD_TOKEN, Emulator
from tests.emulator.world import BOT_PERMISSIONS, MANAGE_GUILD


def call(emu: Emulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        emu.api_base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bot {GOOD_TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def keyword_rule(keywords: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": "test",
        "event_type": 1,
        "trigger_type": 1,
        "trigger_metadata": {"keyword_filter": keywords},
        "actions": [{"type": 1, "metadata": {"custom_message": "no"}}],
        **extra,
    }


def test_rules_need_manage_server(emulator: Emulator) -> None:
    rules = f"/guilds/{emulator.world.guild.id}/auto-moderation/rules"
    status, body = call(emulator, "GET", rules)
    assert (status, body["code"]) == (403, 50013)
    assert call(emulator, "POST", rules, keyword_rule(["x"]))[0] == 403
    assert emulator.automod_rules() == []


def test_limits_and_errors_are_discords(emulator: Emulator) -> None:
    emulator.set_bot_permissions(BOT_PERMISSIONS | MANAGE_GUILD)
    rules = f"/guilds/{emulator.world.guild.id}/auto-moderation/rules"

    def refused(body: dict[str, Any]) -> dict[str, Any]:
        status, answer = call(emulator, "POST", rules, body)
        assert (status, answer["code"]) == (400, 50035), answer
        return dict(answer["errors"])

    errors = refused(keyword_rule([f"w{i}" for i in range(1001)]))
    assert "keyword_filter" in errors["trigger_metadata"]
    errors = refused(keyword_rule(["x" * 61]))
    assert errors["trigger_metadata"]["keyword_filter"]["0"]["_errors"][0]["code"] == (
        "BASE_TYPE_BAD_LENGTH"
    )
    refused(keyword_rule(["x"], trigger_metadata={"regex_patterns": ["a"] * 11}))
    refused(keyword_rule(["x"], trigger_metadata={"regex_patterns": ["a" * 261]}))
    refused(keyword_rule(["x"], trigger_metadata={"allow_list": ["a"] * 101}))
    refused(keyword_rule(["x"], actions=[{"type": 1, "metadata": {"custom_message": "m" * 151}}]))
    refused(keyword_rule(["x"], exempt_roles=[str(i) for i in range(21)]))

    made = [call(emulator, "POST", rules, keyword_rule([f"k{i}"]))[1] for i in range(6)]
    assert [r["creator_id"] for r in made] == [str(emulator.world.bot.id)] * 6
    errors = refused(keyword_rule(["seventh"]))
    assert "trigger_type" in errors
    assert len(emulator.automod_rules()) == 6

    first = made[0]["id"]
    status, edited = call(emulator, "PATCH", f"{rules}/{first}", {"trigger_type": 3, "name": "n"})
    assert status == 200 and edited["name"] == "n" and edited["trigger_type"] == 1
    status, _ = call(emulator, "PATCH", f"{rules}/{first}", keyword_rule(["y" * 61]))
    assert status == 400
    assert call(emulator, "DELETE", f"{rules}/{first}") == (204, None)
    status, gone = call(emulator, "PATCH", f"{rules}/{first}", {"name": "again"})
    assert (status, gone["code"]) == (404, 10066)
