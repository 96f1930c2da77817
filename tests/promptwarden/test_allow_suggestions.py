"""Suggesting an allow-list entry for a term moderators keep dismissing: the counting on
plain data, and the mod-log note and `/guideline-rules show` line through the real bot."""

from __future__ import annotations

from typing import Any

import simcord

from promptwarden.allow_suggestions import Suggestion, count_dismissed, reached, suggestions
from tests.helpers import BOTH_BOT_BACKENDS, Server, text


def m(term: str, source: str = "rule:violence", **extra: Any) -> dict[str, Any]:
    return {"term": term, "text": term.upper(), "source": source, **extra}


def test_a_term_counts_once_per_incident_whatever_its_case() -> None:
    dismissed = [[m("gruesome"), m("Gruesome")], [m("gruesome")]]
    assert count_dismissed(dismissed) == {"gruesome": 2}


def test_only_allowable_guideline_terms_are_suggested() -> None:
    one = [
        m("gore"),
        m("gore", source="profanity"),
        m("kissing", source="model", weight=0.4),
        m("email", source="pii:email"),
        m("my own word", source="custom"),
        m(r"\bage\s*\d+", source="rule:minors"),  # a pattern: nothing to allow
    ]
    assert count_dismissed([one]) == {"gore": 1}


def test_suggested_at_the_threshold_unless_already_allowed() -> None:
    dismissed = [[m("gore"), m("hell")]] * 3 + [[m("hell")]]
    assert suggestions(dismissed[:2], ()) == []
    assert suggestions(dismissed, ()) == [Suggestion("hell", 4), Suggestion("gore", 3)]
    assert suggestions(dismissed, ("GORE",)) == [Suggestion("hell", 4)]
    assert suggestions(dismissed, (), threshold=4) == [Suggestion("hell", 4)]


def test_the_note_names_only_what_the_dismissed_incident_matched() -> None:
    found = [Suggestion("hell", 4), Suggestion("gore", 3)]
    assert reached(found, [m("gore")]) == [Suggestion("gore", 3)]
    assert reached(found, [m("kissing", source="model")]) == []


# ---------------------------------------------------------------- through the bot


PROMPTS = (
    "a gruesome battlefield painting",
    "a gruesome ogre feast",
    "gruesome pumpkin carving for halloween",
)


def notes(s: Server) -> list[str]:
    return [m.content for m in s.modlog.history() if "allow term:" in m.content]


@BOTH_BOT_BACKENDS
async def test_three_dismissals_of_one_term_suggest_allow_listing_it(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    await s.watch()
    for prompt in PROMPTS:
        await s.member.send(s.channel, prompt)
    incidents = sorted(await s.storage.find_incidents(s.guild.id), key=lambda i: i.id)
    assert len(incidents) == 3
    [term] = {str(x["term"]) for i in incidents for x in i.matches}

    for incident in incidents[:2]:
        await s.slash(
            s.moderator, "incidents resolve", incident_id=incident.id, outcome="dismissed"
        )
    assert notes(s) == []
    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert "Suggested for the allow list" not in shown

    await s.slash(
        s.moderator, "incidents resolve", incident_id=incidents[2].id, outcome="dismissed"
    )

    [note] = notes(s)
    assert f"dismissed `{term}` as a false positive 3 times" in note
    assert f"`/guideline-rules allow term:{term}`" in note
    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert (
        f"Suggested for the allow list (dismissed as false positives): `{term}` (3 dismissals)"
        in shown
    )

    await s.slash(s.admin, "guideline-rules allow", term=term)
    assert "Suggested for the allow list" not in text(
        await s.slash(s.admin, "guideline-rules show")
    )


async def test_upheld_incidents_suggest_nothing(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    for prompt in PROMPTS:
        await s.member.send(s.channel, prompt)
    for incident in await s.storage.find_incidents(s.guild.id):
        await s.slash(s.moderator, "incidents resolve", incident_id=incident.id, outcome="upheld")
    assert notes(s) == []
    assert "Suggested for the allow list" not in text(
        await s.slash(s.admin, "guideline-rules show")
    )
