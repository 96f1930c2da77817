"""What members and moderators see of an incident: the warning DM, the mod-log entry and
its buttons.

A helper module (not an extension): the port (cogs/_port.py) and the incident commands
build the same embeds and the same persistent buttons from here; what a button does is
decided by the actions service.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord

from cogs._checks import refuse
from cogs._replies import acknowledged
from promptwarden.enforcement import (
    EnforcementConfig,
    guideline_for,
    matched_words,
)
from promptwarden.privacy import pii_kinds
from promptwarden.storage import Incident, IncidentStatus

if TYPE_CHECKING:
    from discordbot import PromptWardenBot

log = logging.getLogger("promptwarden.enforcement")
VERDICT_COLOURS = {
    "block": discord.Colour.red(),
    "warn": discord.Colour.orange(),
    "review": discord.Colour.gold(),
    "remind": discord.Colour.blurple(),
}
FIELD_LIMIT = 1024
DESCRIPTION_LIMIT = 4000
ACTIONS_FIELD = "Moderator actions"


def _words(incident: Incident) -> str:
    words = matched_words(incident.matches)
    return ", ".join(f"`{w}`" for w in words)[:FIELD_LIMIT] or "—"


def _guidelines(categories: Sequence[str]) -> str:
    return "\n".join(f"• {guideline_for(c)}" for c in categories)[:FIELD_LIMIT] or "—"


def strikes_line(points: int, config: EnforcementConfig) -> str:
    policy = config.strike_policy
    days = policy.window.days
    line = f"{points} active strike point(s) in the last {days} days."
    upcoming = [(p, d) for p, d in policy.thresholds if p > points]
    if upcoming:
        at, duration = upcoming[0]
        line += f" At {at} you are timed out for {_duration(duration)}."
    return line


def _duration(duration: timedelta) -> str:
    hours = duration.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    if hours >= 1 and hours == int(hours):
        return f"{int(hours)} hour{'s' if hours != 1 else ''}"
    return f"{int(duration.total_seconds() // 60)} minutes"


def warning_embed(
    incident: Incident, guild_name: str, *, points: int | None, config: EnforcementConfig
) -> discord.Embed:
    """The DM for warn and block: which guideline, which words, the (redacted) prompt."""
    removed = incident.verdict.value == "block"
    title = (
        f"Your prompt in {guild_name} was removed"
        if removed
        else f"Your prompt in {guild_name} goes against the guidelines"
    )
    embed = discord.Embed(
        title=title[:256],
        colour=VERDICT_COLOURS.get(incident.verdict.value),
        description=(
            "Prompts and images in this server must follow its community guidelines "
            "(PG-13). Please change the prompt before trying again."
        ),
    )
    embed.add_field(name="Guideline", value=_guidelines(incident.categories), inline=False)
    embed.add_field(name="Matched words", value=_words(incident), inline=False)
    excerpt = incident.prompt_excerpt
    embed.add_field(
        name="Your prompt",
        value=discord.utils.escape_markdown(excerpt)[: FIELD_LIMIT - 3] or "—",
        inline=False,
    )
    if points is not None:
        embed.add_field(name="Strikes", value=strikes_line(points, config), inline=False)
    embed.set_footer(text=f"Incident #{incident.id} · moderators can review this decision")
    return embed


def incident_jump_url(incident: Incident) -> str | None:
    """A link to the incident's message (it may be gone; the link then shows nothing)."""
    if incident.message_id is None:
        return None
    return (
        f"https://discord.com/channels/{incident.guild_id}/{incident.channel_id}/"
        f"{incident.message_id}"
    )


def bold_excerpt(incident: Incident) -> str:
    """The redacted excerpt with matched words in bold, Markdown in the prompt escaped."""
    text = incident.prompt_excerpt
    spans = sorted(
        {
            (int(m["start"]), int(m["end"]))
            for m in incident.matches
            if isinstance(m.get("start"), int)
            and isinstance(m.get("end"), int)
            and 0 <= m["start"] < m["end"] <= len(text)
        }
    )
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        if start < pos:
            continue
        parts.append(discord.utils.escape_markdown(text[pos:start]))
        parts.append(f"**{discord.utils.escape_markdown(text[start:end])}**")
        pos = end
    parts.append(discord.utils.escape_markdown(text[pos:]))
    out = "".join(parts)
    return out if len(out) <= DESCRIPTION_LIMIT else out[: DESCRIPTION_LIMIT - 1] + "…"


def _fired(matches: Sequence[Mapping[str, Any]], score: float | None) -> str:
    sources: list[str] = []
    for m in matches:
        source = str(m.get("source", "?"))
        if source == "model" and score is not None:
            source = f"model (score {score:.2f})"
        if source not in sources:
            sources.append(source)
    return ", ".join(sources)[:FIELD_LIMIT] or "—"


def modlog_embed(
    incident: Incident,
    *,
    jump_url: str | None,
    points: int | None,
    score: float | None = None,
) -> discord.Embed:
    verdict = incident.verdict.value
    headline = {
        "block": "Prompt blocked",
        "warn": "Member warned",
        "review": "Needs review",
        "remind": "Personal information",
    }.get(verdict, verdict)
    embed = discord.Embed(
        title=f"Incident #{incident.id} · {headline}",
        colour=VERDICT_COLOURS.get(verdict),
        description=bold_excerpt(incident) or "—",
        timestamp=incident.created_at,
    )
    embed.add_field(name="Member", value=f"<@{incident.user_id}> ({incident.user_id})")
    where = f"<#{incident.channel_id}>"
    if jump_url:
        where += f" · [message]({jump_url})"
    embed.add_field(name="Channel", value=where)
    embed.add_field(name="Verdict", value=f"{verdict} · {incident.action}")
    embed.add_field(name="Categories", value=", ".join(incident.categories) or "—")
    embed.add_field(name="Severity", value=incident.severity.name.lower())
    embed.add_field(name="Strikes", value="—" if points is None else f"{points} active point(s)")
    embed.add_field(name="Matched words", value=_words(incident), inline=False)
    embed.add_field(name="Fired", value=_fired(incident.matches, score), inline=False)
    if kinds := pii_kinds(incident.matches):
        embed.add_field(name="Personal information (redacted)", value=", ".join(kinds))
    if incident.source != "screening":
        embed.add_field(name="Raised by", value=RAISED_BY.get(incident.source, incident.source))
    embed.set_footer(text=f"Status: {incident.status}")
    return embed


# How the mod-log names what raised an incident other than screening.
RAISED_BY = {
    "automod": "Discord AutoMod (rule in Fired)",
    "report": "Member reports",
}


def with_outcome(embed: discord.Embed, line: str, status: IncidentStatus | None) -> discord.Embed:
    """The mod-log embed after a button press: the outcome and who acted, appended."""
    updated = embed.copy()
    index = next((i for i, f in enumerate(updated.fields) if f.name == ACTIONS_FIELD), None)
    if index is None:
        updated.add_field(name=ACTIONS_FIELD, value=line[:FIELD_LIMIT], inline=False)
    else:
        previous = updated.fields[index].value or ""
        value = f"{previous}\n{line}"[-FIELD_LIMIT:]
        updated.set_field_at(index, name=ACTIONS_FIELD, value=value, inline=False)
    if status is not None:
        updated.set_footer(text=f"Status: {status}")
    return updated


# ---------------------------------------------------------------- persistent buttons

BUTTONS: tuple[tuple[str, str, discord.ButtonStyle], ...] = (
    ("dismiss", "Dismiss", discord.ButtonStyle.secondary),
    ("uphold", "Uphold", discord.ButtonStyle.success),
    ("timeout", "Time out 1 h", discord.ButtonStyle.danger),
    ("delete", "Delete message", discord.ButtonStyle.danger),
)
_LABELS = {action: label for action, label, _ in BUTTONS}
_STYLES = {action: style for action, _, style in BUTTONS}


class IncidentButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pw:incident:(?P<action>dismiss|uphold|timeout|delete):(?P<id>\d+)",
):
    """A mod-log button. The incident and action live in the custom id, so a button pressed
    after a restart still finds its incident (registered with `bot.add_dynamic_items`)."""

    def __init__(self, action: str, incident_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=_LABELS[action],
                style=_STYLES[action],
                custom_id=f"pw:incident:{action}:{incident_id}",
            )
        )
        self.action = action
        self.incident_id = incident_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> IncidentButton:
        return cls(match["action"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        from discordbot import PromptWardenBot

        bot = interaction.client
        assert isinstance(bot, PromptWardenBot)
        await handle_press(bot, interaction, self.action, self.incident_id)


def incident_view(incident_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action, _, _ in BUTTONS:
        view.add_item(IncidentButton(action, incident_id))
    return view


async def handle_press(
    bot: PromptWardenBot,
    interaction: discord.Interaction[discord.Client],
    action: str,
    incident_id: int,
) -> None:
    """Refusals are answered at once; the action itself may need several Discord calls,
    so the click is acknowledged first and the mod-log entry edited when it is done."""
    guild = interaction.guild
    if guild is None:
        return
    if await refuse(interaction, action, incident_id=incident_id):
        return
    storage = bot.storage
    incident = await storage.get_incident(guild.id, incident_id)
    if incident is None:
        await interaction.response.send_message(
            f"Incident #{incident_id} no longer exists (it may have been deleted by retention).",
            ephemeral=True,
        )
        return
    async with acknowledged(interaction):
        user = interaction.user
        line, status = await bot.actions.press(incident, action, user.id, str(user))
        message = interaction.message
        if message is not None and message.embeds:
            embed = with_outcome(message.embeds[0], line, status)
            await interaction.edit_original_response(embed=embed)
        else:
            await interaction.followup.send(line, ephemeral=True)
