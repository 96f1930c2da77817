"""Upholding or dismissing an incident, the same way from every place a moderator can:
the mod-log buttons, the review queue and `/incidents resolve`.

A dismissal is a false positive: its strike goes, and so does a timeout it alone earned.
An open appeal of the incident is decided along with it (dismissed = accepted, upheld =
rejected) and the member hears the outcome, so no appeal is left waiting on a settled case.
"""

from __future__ import annotations

from dataclasses import dataclass

from cogs._appeals import close_open_appeal
from cogs._suggestions import suggest_allow_listing
from cogs._timeouts import lift_unearned_timeout
from discordbot import PromptWardenBot
from promptwarden.storage import Incident, IncidentStatus


@dataclass(frozen=True, slots=True)
class Settled:
    strike_revoked: bool
    notes: tuple[str, ...]  # what else followed: the appeal decided, the timeout lifted


async def settle(
    bot: PromptWardenBot,
    guild_id: int,
    incident: Incident,
    status: IncidentStatus,
    moderator_id: int,
) -> Settled:
    storage = bot.storage
    dismissed = status == "dismissed"
    notes: list[str] = []
    revoked = False
    closed = await close_open_appeal(bot, guild_id, incident.id, dismissed, moderator_id)
    if closed is not None:
        decision, concluded = closed
        revoked = decision.strike_revoked
        verb = "accepted" if dismissed else "rejected"
        notes.append(f"appeal #{decision.appeal.id} {verb}, {concluded.told}")
        if concluded.lifted:
            notes.append(concluded.lifted)
    await storage.set_incident_status(guild_id, incident.id, status)
    if dismissed:
        await suggest_allow_listing(bot, guild_id, incident)
        revoked = await storage.revoke_strike_for_incident(guild_id, incident.id) or revoked
        # Accepting the appeal has lifted the timeout already, if it was unearned.
        if closed is None:
            lifted = await lift_unearned_timeout(bot, guild_id, incident, moderator_id)
            if lifted:
                notes.append(lifted)
    return Settled(revoked, tuple(notes))
