"""`/guidelines` and `/guideline-rules` through the real bot and SimCord.

Each test plays what a person does in the Discord client and checks what they would see,
and what the database then holds.
"""

from __future__ import annotations

from typing import Any

import pytest
import simcord

from tests.helpers import GORE, Server, text

# ---------------------------------------------------------------- /guidelines


async def test_members_read_the_guidelines_privately(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.storage.set_screening_rules(s.guild.id, {"actions": {"profanity": "off"}})

    result = await s.slash(s.member, "guidelines")

    assert result.ephemeral
    body = text(result)
    assert "Community guidelines of Prompt Art" in body
    assert "No adult content or nudity" in body and "No gore" in body
    assert "profanity" not in body.lower()  # switched off in this server
    assert "personal information" in body


# ---------------------------------------------------------------- /guideline-rules


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"term": "x" * 61}, "61 characters (at most 60)"),
        ({"term": "ca*t"}, "'*' is a wildcard only at the start or end"),
        ({"term": "(cat|dog)+"}, "not regular expressions"),
        ({"term": "wombat", "category": "weapons"}, "unknown category 'weapons'"),
        ({"term": "wombat", "severity": "extreme"}, "unknown severity 'extreme'"),
    ],
)
async def test_add_term_refuses_bad_input_and_changes_nothing(
    simcord_env: simcord.Env, options: dict[str, Any], message: str
) -> None:
    s = Server(simcord_env)
    result = await s.slash(s.admin, "guideline-rules add-term", **options)
    assert result.ephemeral
    assert message in text(result) and "Nothing was changed" in text(result)
    assert await s.storage.get_screening_rules(s.guild.id) is None


async def test_at_most_1000_custom_terms(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    terms = [{"term": f"word{n}"} for n in range(1000)]
    await s.storage.set_screening_rules(s.guild.id, {"custom_terms": terms})
    result = await s.slash(s.admin, "guideline-rules add-term", term="one more")
    assert "already has 1000 custom terms (at most 1000)" in text(result)
    saved = await s.storage.get_screening_rules(s.guild.id)
    assert len(saved["custom_terms"]) == 1000


async def test_a_new_term_applies_to_the_next_prompt(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    prompt = "a wombat wearing a crown"
    await s.member.send(s.channel, prompt)  # allowed before the rule
    tested = text(await s.slash(s.admin, "guideline-rules test", prompt=prompt))
    assert "Verdict: allow" in tested and "No matches" in tested

    added = await s.slash(
        s.admin, "guideline-rules add-term", term="wombat*", category="custom", severity="high"
    )
    assert "Added `wombat*` (custom, high)" in text(added)
    tested = text(await s.slash(s.admin, "guideline-rules test", prompt=prompt))
    assert "Verdict: block" in tested
    assert "- `wombat` → custom (high, custom)" in tested

    await s.member.send(s.channel, prompt + " again")
    assert [m.content for m in s.channel.history()] == [prompt]
    [incident] = await s.storage.find_incidents(s.guild.id)
    assert incident.categories == ("custom",)

    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert "Custom terms (1): `wombat*` (custom, high)" in shown
    assert "Removed `wombat*`" in text(
        await s.slash(s.admin, "guideline-rules remove-term", term="wombat*")
    )
    missing = await s.slash(s.admin, "guideline-rules remove-term", term="wombat*")
    assert "is not a custom or allowed term here" in text(missing)


async def test_set_action_and_allow(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    bad = await s.slash(s.admin, "guideline-rules set-action", category="violence", action="ban")
    assert "unknown action 'ban'" in text(bad)
    bad = await s.slash(s.admin, "guideline-rules set-action", category="gore", action="warn")
    assert "unknown category 'gore'" in text(bad)

    ok = await s.slash(s.admin, "guideline-rules set-action", category="violence", action="review")
    assert "**violence** now → **review**" in text(ok)
    assert "Verdict: review" in text(await s.slash(s.admin, "guideline-rules test", prompt=GORE))

    assert "Allowed `gruesome`" in text(
        await s.slash(s.admin, "guideline-rules allow", term="gruesome")
    )
    assert "Verdict: allow" in text(await s.slash(s.admin, "guideline-rules test", prompt=GORE))
    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert "Actions: violence: review" in shown and "Allowed terms (1): `gruesome`" in shown


async def test_rule_test_never_shows_personal_information(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    tested = text(
        await s.slash(s.admin, "guideline-rules test", prompt="mail me at bob@example.com")
    )
    assert "Verdict: remind" in tested and "[email]" in tested
    assert "bob@example.com" not in tested


async def test_category_and_action_options_suggest_valid_values(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    offered = await s.admin.autocomplete(s.channel, "guideline-rules set-action", "category", "vio")
    assert [c["value"] for c in offered] == ["violence"]
    offered = await s.admin.autocomplete(
        s.channel, "guideline-rules set-action", "action", "re", category="violence"
    )
    assert [c["value"] for c in offered] == ["review", "remind"]
