"""Appeals: the Appeal button under a warning DM, its form, the mod-log entry with Accept
and Reject, and the answer to the member.

Midjourney's own moderator lets people appeal a refused prompt; here a member contests a
warning the same way. The buttons keep the guild, incident or appeal in their custom id,
so they work after a restart (registered with `bot.add_dynamic_items`).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from cogs._checks import refuse
from cogs._replies import acknowledged
from promptwarden.storage import APPEAL_REASON_LIMIT, Appeal, Incident, Storage

if TYPE_CHECKING:
    from discordbot import PromptWardenBot

log = logging.getLogger("promptwarden.appeals")

FIELD_LIMIT = 1024
APPEAL_COLOUR = discord.Colour.teal()
DECISION_FIELD = "Decision"


def _bot(interaction: discord.Interaction[discord.Client]) -> PromptWardenBot:
    from discordbot import PromptWardenBot

    bot = interaction.client
    assert isinstance(bot, PromptWardenBot)
    return bot


async def appeal_refusal(storage: Storage, incident: Incident) -> str | None:
    """Why this incident cannot be appealed now, or None when it can. One appeal per
    incident: an open one is waiting, a decided one is final."""
    for appeal in reversed(await storage.list_appeals(incident.guild_id, incident.id)):
        if appeal.status == "open":
            return (
                f"You already appealed incident #{incident.id}; the moderators have not "
                "answered yet. You will hear from me when they do."
            )
        return f"Your appeal of incident #{incident.id} was already {appeal.status}."
    if incident.status == "dismissed":
        return f"Incident #{incident.id} was already dismissed; there is nothing to appeal."
    return None


# ---------------------------------------------------------------- member side


class AppealButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pw:appeal:open:(?P<guild>\d+):(?P<incident>\d+)",
):
    """Under a warning DM. DMs carry no guild, so the guild is in the custom id too."""

    def __init__(self, guild_id: int, incident_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Appeal",
                style=discord.ButtonStyle.secondary,
                custom_id=f"pw:appeal:open:{guild_id}:{incident_id}",
            )
        )
        self.guild_id = guild_id
        self.incident_id = incident_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> AppealButton:
        return cls(int(match["guild"]), int(match["incident"]))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        storage = _bot(interaction).storage
        incident = await storage.get_incident(self.guild_id, self.incident_id)
        if incident is None:
            await interaction.response.send_message(
                f"Incident #{self.incident_id} no longer exists, so it cannot be appealed."
            )
            return
        if incident.user_id != interaction.user.id:
            await interaction.response.send_message(
                "Only the member this warning was sent to can appeal it."
            )
            return
        refusal = await appeal_refusal(storage, incident)
        if refusal is not None:
            await interaction.response.send_message(refusal)
            return
        await interaction.response.send_modal(AppealForm(self.guild_id, self.incident_id))


def appeal_view(incident: Incident) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AppealButton(incident.guild_id, incident.id))
    return view


class AppealForm(discord.ui.Modal):
    reason: discord.ui.TextInput[AppealForm] = discord.ui.TextInput(
        label="Why should the moderators reconsider?",
        style=discord.TextStyle.paragraph,
        custom_id="reason",
        min_length=1,
        max_length=APPEAL_REASON_LIMIT,
        placeholder="What did the prompt mean? Which word was misread?",
    )

    def __init__(self, guild_id: int, incident_id: int) -> None:
        super().__init__(title=f"Appeal incident #{incident_id}", timeout=None)
        self.guild_id = guild_id
        self.incident_id = incident_id

    async def on_submit(self, interaction: discord.Interaction[discord.Client]) -> None:
        bot = _bot(interaction)
        storage = bot.storage
        reason = self.reason.value.strip()
        incident = await storage.get_incident(self.guild_id, self.incident_id)
        if not reason or len(reason) > APPEAL_REASON_LIMIT:
            await interaction.response.send_message(
                f"An appeal needs a reason of 1 to {APPEAL_REASON_LIMIT} characters; "
                "press Appeal again to write it."
            )
            return
        refusal = (
            "This incident no longer exists."
            if incident is None or incident.user_id != interaction.user.id
            else await appeal_refusal(storage, incident)
        )
        appeal = None
        if refusal is None:
            appeal = await storage.create_appeal(
                self.guild_id,
                self.incident_id,
                interaction.user.id,
                reason,
                now=discord.utils.utcnow(),
            )
        if appeal is None or incident is None:
            # The unique open appeal per incident: a second form submitted meanwhile.
            await interaction.response.send_message(
                refusal or f"You already appealed incident #{self.incident_id}."
            )
            return
        guild = bot.get_guild(self.guild_id)
        guild_name = guild.name if guild else "the server"
        # The appeal is stored; posting it to the mod-log is a Discord call that may be slow.
        async with acknowledged(interaction, thinking=True):
            if await bot.actions.post_appeal(incident, appeal):
                text = (
                    f"Your appeal of incident #{incident.id} was sent to the moderators of "
                    f"{guild_name}. You will get their answer here."
                )
            else:
                text = (
                    f"Your appeal of incident #{incident.id} is recorded, but I could not show "
                    f"it to the moderators of {guild_name} (their mod-log channel is not set up "
                    "or not reachable); you may also contact them directly."
                )
            await interaction.followup.send(text)


def appeal_embed(incident: Incident, appeal: Appeal) -> discord.Embed:
    embed = discord.Embed(
        title=f"Appeal #{appeal.id} · incident #{incident.id}",
        colour=APPEAL_COLOUR,
        description=discord.utils.escape_markdown(appeal.reason)[:4000],
        timestamp=appeal.created_at,
    )
    embed.add_field(name="Member", value=f"<@{appeal.user_id}> ({appeal.user_id})")
    embed.add_field(name="Verdict", value=f"{incident.verdict.value} · {incident.action}")
    embed.add_field(name="Categories", value=", ".join(incident.categories) or "—")
    embed.add_field(
        name="Prompt",
        value=discord.utils.escape_markdown(incident.prompt_excerpt)[:FIELD_LIMIT] or "—",
        inline=False,
    )
    embed.set_footer(text="Status: open · Accept removes the strike and dismisses the incident")
    return embed


# ---------------------------------------------------------------- moderator side

_DECISIONS = {"accept": "accepted", "reject": "rejected"}


class AppealDecisionButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pw:appeal:(?P<action>accept|reject):(?P<id>\d+)",
):
    def __init__(self, action: str, appeal_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=action.title(),
                style=discord.ButtonStyle.success
                if action == "accept"
                else discord.ButtonStyle.danger,
                custom_id=f"pw:appeal:{action}:{appeal_id}",
            )
        )
        self.action = action
        self.appeal_id = appeal_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> AppealDecisionButton:
        return cls(match["action"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        await decide(_bot(interaction), interaction, self.action, self.appeal_id)


def decision_view(appeal_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in _DECISIONS:
        view.add_item(AppealDecisionButton(action, appeal_id))
    return view


async def decide(
    bot: PromptWardenBot,
    interaction: discord.Interaction[discord.Client],
    action: str,
    appeal_id: int,
) -> None:
    guild = interaction.guild
    if guild is None:
        return
    if await refuse(interaction, f"appeal_{action}", appeal_id=appeal_id):
        return
    storage = bot.storage
    moderator = interaction.user
    existing = await storage.get_appeal(guild.id, appeal_id)
    if existing is None or existing.status != "open":
        await interaction.response.send_message(
            _not_open(appeal_id, existing.status if existing else None), ephemeral=True
        )
        return
    # Deciding lifts a timeout and tells the member: Discord calls, so acknowledge first.
    async with acknowledged(interaction):
        decided = await bot.actions.decide_appeal(
            guild.id, appeal_id, action == "accept", moderator.id
        )
        if decided is None:  # decided by another moderator a moment ago
            existing = await storage.get_appeal(guild.id, appeal_id)
            await interaction.followup.send(
                _not_open(appeal_id, existing.status if existing else None), ephemeral=True
            )
            return
        decision, concluded = decided
        message = interaction.message
        if message is not None and message.embeds:
            embed = decided_embed(message.embeds[0], concluded.line, decision.appeal)
            await interaction.edit_original_response(embed=embed, view=None)
        else:
            await interaction.followup.send(concluded.line, ephemeral=True)


def _not_open(appeal_id: int, status: str | None) -> str:
    if status is None:
        return f"Appeal #{appeal_id} no longer exists (its incident may have expired)."
    return f"Appeal #{appeal_id} was already {status}."


def decided_embed(embed: discord.Embed, line: str, appeal: Appeal) -> discord.Embed:
    """The appeal's mod-log entry once decided (its buttons go with it)."""
    updated = embed.copy()
    updated.add_field(name=DECISION_FIELD, value=line[:FIELD_LIMIT], inline=False)
    updated.set_footer(text=f"Status: {appeal.status}")
    return updated
