"""`/automod` over real sockets: PromptWarden's own AutoMod rules, within Discord's limits,
kept in step with the guild's terms, removed without touching anyone else's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cogs.automod import SHOW_LEFT_OUT
from promptwarden.automod import BLOCK_MESSAGE, MAX_KEYWORD_LENGTH, MAX_KEYWORDS, mirrored_terms
from promptwarden.screening.guidelines import default_guidelines
from promptwarden.screening.rules import GuildRules
from promptwarden.storage import open_storage
from tests.emulator import BotProcess, Emulator
from tests.emulator.world import BOT_PERMISSIONS, MANAGE_GUILD
from tests.helpers import Backend, incidents_by_message, outcomes, read_db
from tests.helpers import EmulatedServer as Server

CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
FOLLOWUP = "POST /webhooks/{app_id}/{token}"
RULE_ROUTES = ("POST", "PATCH", "DELETE")


def reply(emu: Emulator, interaction_id: int) -> str:
    """What the member who ran a command was shown (a direct answer or the follow-up)."""
    token = f"interaction-token-{interaction_id}"

    def answered() -> bool:
        return any(c.params.get("token") == token for c in emu.calls(FOLLOWUP)) or any(
            c.param("interaction_id") == interaction_id and int((c.body or {}).get("type", 0)) == 4
            for c in emu.calls(CALLBACK)
        )

    emu.wait_until(answered, what=f"the answer to interaction {interaction_id}")
    for call in emu.calls(FOLLOWUP):
        if call.params.get("token") == token:
            return str(call.body.get("content") or "")
    callback = next(c for c in emu.calls(CALLBACK) if c.param("interaction_id") == interaction_id)
    return str(callback.body["data"].get("content") or "")


def grant_manage_server(emu: Emulator) -> None:
    emu.set_bot_permissions(BOT_PERMISSIONS | MANAGE_GUILD)


def own_rules(emu: Emulator) -> list[dict[str, Any]]:
    bot_id = emu.world.bot.id
    return [r for r in emu.automod_rules() if int(r["creator_id"]) == bot_id]


def rule_writes(emu: Emulator) -> list[str]:
    return [
        c.route
        for c in emu.calls()
        if "auto-moderation" in c.route and c.method in RULE_ROUTES and c.ok
    ]


def set_rules(server: Server, rules: dict[str, Any]) -> None:
    async def write() -> None:
        storage = await open_storage(server.database)
        async with storage:
            await storage.set_screening_rules(server.guild_id, rules)

    asyncio.run(write())


def test_sync_fills_only_the_free_rules_most_severe_first_and_reports_the_rest(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    grant_manage_server(emu)
    # The guild's own rules take 5 of Discord's 6 keyword rules: one is left for PromptWarden.
    theirs = [emu.add_automod_rule(f"house rule {i}", [f"spamword{i}"]) for i in range(5)]
    custom = [{"term": f"customword{i:04d}", "severity": "high"} for i in range(999)]
    stored = {
        "learned": False,
        "custom_terms": [{"term": "forbiddenphrase", "severity": "critical"}, *custom],
        "allow_terms": ["gore magazine"],
    }
    set_rules(server, stored)
    # Every critical and high term AutoMod can express, shipped and custom: what is left out.
    expressible, _ = mirrored_terms(default_guidelines(), GuildRules.from_dict(stored))
    left_out = len(expressible) - MAX_KEYWORDS
    start_bot()

    answer = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "sync"))

    rules = own_rules(emu)
    assert len(rules) == 1
    rule = rules[0]
    keywords = rule["trigger_metadata"]["keyword_filter"]
    assert len(keywords) == MAX_KEYWORDS
    assert all(len(k) <= MAX_KEYWORD_LENGTH for k in keywords)
    # Critical first (the guild's own before shipped ones), then high.
    assert keywords[0] == "forbiddenphrase"
    assert keywords.index("nigger") < keywords.index("customword0000")
    assert "gore" not in keywords  # a shipped high term: no room left for it
    assert "gore magazine" in rule["trigger_metadata"]["allow_list"]
    assert len(rule["trigger_metadata"]["allow_list"]) <= 100
    block, alert = rule["actions"]
    assert block["metadata"]["custom_message"] == BLOCK_MESSAGE
    assert "/guidelines" in BLOCK_MESSAGE and len(BLOCK_MESSAGE) <= 150
    assert int(alert["metadata"]["channel_id"]) == server.modlog.id
    assert rule["enabled"] is True
    # The guild's rules are exactly as they were.
    assert [r for r in emu.automod_rules() if r not in rules] == theirs
    assert f"Did not fit ({left_out}, screening still catches them)" in answer
    assert f" and {left_out - SHOW_LEFT_OUT} more\n" in answer + "\n"

    status = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "status"))
    assert "On: 1 rule(s), 1000 term(s)" in status
    assert "did not fit" in status
    assert "PromptWarden guidelines 1: 1000 keyword(s), enabled" in status


def test_term_edits_resync_the_rules_and_off_removes_only_its_own(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    grant_manage_server(emu)
    theirs = emu.add_automod_rule("no invites", ["discord.gg*"])
    start_bot()
    reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "sync"))
    (rule,) = own_rules(emu)
    assert "zorblax" not in rule["trigger_metadata"]["keyword_filter"]

    added = emu.invoke(
        server.modlog,
        server.moderator,
        "guideline-rules",
        "add-term",
        options={"term": "zorblax", "severity": "critical"},
    )
    reply(emu, added)
    emu.wait_until(
        lambda: "zorblax" in own_rules(emu)[0]["trigger_metadata"]["keyword_filter"],
        what="the AutoMod rule to pick up the new term",
    )
    (edited,) = own_rules(emu)
    assert edited["id"] == rule["id"]  # edited in place, not replaced
    assert edited["trigger_metadata"]["keyword_filter"][0] == "zorblax"

    # A change that leaves the rules as they are sends nothing (the rules are read again).
    writes = len(rule_writes(emu))
    reads = len(emu.calls("GET /guilds/{guild_id}/auto-moderation/rules"))
    allowed = emu.invoke(
        server.modlog,
        server.moderator,
        "guideline-rules",
        "set-action",
        options={"category": "drugs", "action": "warn"},  # drugs are medium: not mirrored
    )
    reply(emu, allowed)
    status = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "status"))
    assert "On: 1 rule(s)" in status
    # The resync after the edit, then the status command: both read, neither wrote.
    assert len(emu.calls("GET /guilds/{guild_id}/auto-moderation/rules")) >= reads + 2
    assert len(rule_writes(emu)) == writes

    answer = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "off"))
    assert "Removed 1 PromptWarden AutoMod rule(s)" in answer
    assert emu.automod_rules() == [theirs]
    deletes = [c for c in emu.calls() if c.method == "DELETE" and "auto-moderation" in c.route]
    assert [c.param("rule_id") for c in deletes] == [int(rule["id"])]

    # Off stays off: a term edit no longer creates rules.
    reply(
        emu,
        emu.invoke(
            server.modlog,
            server.moderator,
            "guideline-rules",
            "add-term",
            options={"term": "quuxword", "severity": "critical"},
        ),
    )
    status = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "status"))
    assert status.startswith("**PromptWarden AutoMod rules**\nOff.")
    assert emu.automod_rules() == [theirs]


def test_without_manage_server_sync_says_so_and_setup_and_status_report_it(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    start_bot()

    answer = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "sync"))
    assert "Manage Server" in answer
    assert emu.automod_rules() == []
    refused = [c for c in emu.calls() if "auto-moderation" in c.route]
    assert refused and all(c.status == 403 for c in refused)

    setup = reply(emu, emu.invoke(server.modlog, server.moderator, "setup"))
    assert "Optional: **Manage Server** is not granted" in setup
    assert "Permissions: everything I need is granted." in setup
    status = reply(emu, emu.invoke(server.modlog, server.moderator, "promptwarden", "status"))
    assert "Optional permissions not granted:\n- Manage Server" in status

    grant_manage_server(emu)
    # Gateway events arrive in order: the role change is known before the next command.
    assert "Manage Server" not in reply(emu, emu.invoke(server.modlog, server.moderator, "setup"))
    answer = reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "sync"))
    assert "1 PromptWarden rule(s)" in answer
    assert len(own_rules(emu)) == 1


INCIDENTS = (
    "SELECT id, source, message_id, user_id, channel_id, prompt_excerpt, categories, verdict "
    "FROM incidents ORDER BY id"
)


def incidents(server: Server) -> list[tuple[object, ...]]:
    return read_db(server.database, INCIDENTS)


def test_an_automod_block_is_one_incident_with_a_strike_warning_and_mod_log_entry(
    server: Server, backend: Backend, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    member = server.members[0]
    grant_manage_server(emu)
    start_bot(**backend.env)
    reply(emu, emu.invoke(server.modlog, server.moderator, "automod", "sync"))
    (rule,) = own_rules(emu)
    sent = len(emu.calls("POST /channels/{channel_id}/messages"))

    # Discord sends one execution per action of the rule: the block and the alert.
    assert emu.automod_hit(int(rule["id"]), server.watched, member, "a NUDE figure", "nude") is None
    emu.wait_until(
        lambda: (
            backend.query(
                "SELECT outcome FROM incident_actions WHERE action = 'modlog' AND outcome = 'done'"
            )
            != []
        ),
        what="the mod-log entry of the AutoMod hit",
    )
    (incident,) = backend.query(INCIDENTS)
    incident_id, source, message_id, user_id, channel_id, excerpt, categories, verdict = incident
    assert (source, message_id, user_id, channel_id) == (
        "automod",
        None,
        member.id,
        server.watched.id,
    )
    assert excerpt == "a NUDE figure" and categories == '["sexual"]' and verdict == "block"
    actions = dict(
        backend.query(
            f"SELECT action, outcome FROM incident_actions WHERE incident_id = {incident_id}"
        )
    )
    assert actions["delete"] == "skipped"  # nothing to delete: it was never posted
    assert actions["strike"] == "done" and actions["dm_warning"] == "done"
    strikes = backend.query("SELECT user_id, points FROM strikes")
    assert [s[0] for s in strikes] == [member.id]
    assert not emu.calls("DELETE /channels/{channel_id}/messages/{message_id}")
    posts = emu.calls("POST /channels/{channel_id}/messages")[sent:]
    entries = [c for c in posts if c.param("channel_id") == server.modlog.id]
    assert len(entries) == 1
    embed = entries[0].body["embeds"][0]
    assert embed["title"].startswith(f"Incident #{incident_id} · Prompt blocked")
    assert {"name": "Raised by", "value": "Discord AutoMod (rule in Fired)", "inline": True} in (
        embed["fields"]
    )

    # The member tries the same text again at once: still one incident, one strike.
    emu.automod_hit(int(rule["id"]), server.watched, member, "a NUDE figure", "nude")
    other = server.members[1]
    emu.automod_hit(int(rule["id"]), server.watched, other, "nude", "nude")
    emu.wait_until(lambda: len(backend.query(INCIDENTS)) == 2, what="the second member's incident")
    assert [row[3] for row in backend.query(INCIDENTS)] == [member.id, other.id]
    # The strike may commit just after its incident: wait for it, then count.
    strikes_of = "SELECT user_id FROM strikes ORDER BY id"
    emu.wait_until(lambda: len(backend.query(strikes_of)) >= 2, what="the second member's strike")
    assert backend.query(strikes_of) == [(member.id,), (other.id,)]


def test_a_hit_on_a_posted_message_is_the_same_incident_as_screenings(
    server: Server, start_bot: Callable[..., BotProcess]
) -> None:
    emu = server.emulator
    member = server.members[2]
    grant_manage_server(emu)
    # The guild's own rule only alerts: the message is posted, and screening sees it too.
    theirs = emu.add_automod_rule(
        "gore alert",
        ["gore"],
        actions=[{"type": 2, "metadata": {"channel_id": str(server.modlog.id)}}],
    )
    start_bot()
    content = "severed head dripping blood, gore"
    message_id = emu.automod_hit(
        int(theirs["id"]), server.watched, member, content, "gore", blocked=False
    )
    assert message_id is not None
    emu.wait_until(
        lambda: outcomes(server.database).get(message_id, {}).get("modlog") == "done",
        what="the incident's mod-log entry",
    )
    assert incidents_by_message(server.database) == {message_id: 1}
    (row,) = incidents(server)
    assert row[2] == message_id and row[3] == member.id
    entries = [
        c
        for c in emu.calls("POST /channels/{channel_id}/messages")
        if c.param("channel_id") == server.modlog.id and c.body.get("embeds")
    ]
    assert len(entries) == 1
    # Outside the watched channels only AutoMod sees it: the guild's own rule goes to the
    # moderators for review, and nobody is struck for it.
    elsewhere = emu.automod_hit(
        int(theirs["id"]), server.other, member, "gore everywhere", "gore", blocked=False
    )
    emu.wait_until(
        lambda: outcomes(server.database).get(elsewhere or 0, {}).get("modlog") == "done",
        what="the review entry of the guild's own rule",
    )
    last = incidents(server)[-1]
    assert last[1:5] == ("automod", elsewhere, member.id, server.other.id)
    assert last[7] == "review"
    assert read_db(server.database, f"SELECT id FROM strikes WHERE incident_id = {last[0]}") == []
