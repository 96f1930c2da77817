""" "Report prompt": any member can send a prompt in a watched channel to the review queue.

Screening misses what no list names; members see it first. A report is never a verdict:
it goes to the moderators' review queue (no strike, no warning), with who reported it and
why (an optional short form), and the reporter is answered privately. Many reports of one
message make one incident, the same one screening recorded if it flagged the message;
each member may report once a minute.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs._facts import channel_chain, message_facts
from discordbot import PromptWardenBot
from promptwarden.enforcement import build_incident, responsible_user
from promptwarden.policy import plan_actions
from promptwarden.screening.decision import Decision, Verdict
from promptwarden.screening.extract import extract
from promptwarden.storage.models import REPORT_KIND

if TYPE_CHECKING:
    # Only for types: importing it at run time would run the module beside the loader's copy.
    from cogs.screening import Screening

log = logging.getLogger("promptwarden.reports")
Interaction = discord.Interaction[PromptWardenBot]

REPORT_SOURCE = "report"
REPORT_INTERVAL = timedelta(minutes=1)
REASON_LIMIT = 200
THANKS = "Thanks: the moderators will look at this prompt. Only they see who reported it."
ALREADY = "You already reported this prompt; the moderators have it."
TOO_SOON = "You reported a prompt moments ago; you can report again in a minute."
NOT_WATCHED = "Reports are for prompts in the image channels PromptWarden watches here."
NOT_A_PROMPT = "That message cannot be reported."


class ReportForm(discord.ui.Modal, title="Report prompt"):
    reason: discord.ui.TextInput[ReportForm] = discord.ui.TextInput(
        label="Why? (optional)",
        custom_id="reason",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=REASON_LIMIT,
        placeholder="e.g. nudity, gore, a real person",
    )

    def __init__(self, reports: Reports, message: discord.Message) -> None:
        super().__init__(custom_id=f"pw:report:{message.id}", timeout=600)
        self.reports = reports
        self.message = message

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        text = await self.reports.file(interaction.user.id, self.message, self.reason.value)
        await interaction.response.send_message(text, ephemeral=True)


class Reports(commands.Cog):
    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(
            name="Report prompt", callback=self.report_prompt, type=discord.AppCommandType.message
        )
        self.menu.guild_only = True
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    def _screening(self) -> Screening | None:
        return cast("Screening | None", self.bot.get_cog("Screening"))

    async def report_prompt(self, interaction: Interaction, message: discord.Message) -> None:
        """Open the short form, unless the message is not a prompt one could report."""
        screening = self._screening()
        me = self.bot.user
        if message.guild is None or screening is None or me is None:
            await interaction.response.send_message(NOT_A_PROMPT, ephemeral=True)
            return
        if message.author.id in (me.id, interaction.user.id):
            await interaction.response.send_message(NOT_A_PROMPT, ephemeral=True)
            return
        state = await screening.states.get(message.guild.id)
        if not state.in_scope(channel_chain(message.channel)):
            await interaction.response.send_message(NOT_WATCHED, ephemeral=True)
            return
        await interaction.response.send_modal(ReportForm(self, message))

    async def file(self, reporter_id: int, message: discord.Message, reason: str) -> str:
        """Record the report (rate-limited per member) and say what the reporter is told."""
        guild = message.guild
        screening = self._screening()
        assert guild is not None
        if screening is None:
            return NOT_A_PROMPT
        storage = self.bot.storage
        if not await storage.claim_reminder(
            guild.id, reporter_id, REPORT_KIND, interval=REPORT_INTERVAL
        ):
            return TOO_SOON
        state = await screening.states.get(guild.id)
        facts = message_facts(message)
        assert facts is not None  # a guild message
        prompt = extract(facts.content, author_is_bot=facts.author_is_bot)
        user_id = responsible_user(facts, state, prompt) or facts.author_id
        # What screening makes of it, for the moderators; the verdict is theirs to give.
        screener = await asyncio.to_thread(screening.screeners.get, guild.id, state.rules)
        found = screener.screen(facts.content, author_is_bot=facts.author_is_bot, extracted=prompt)
        decision = Decision(
            prompt=found.prompt,
            verdict=Verdict.REVIEW,
            severity=found.severity,
            categories=found.categories,
            matches=found.matches,
        )
        plan = plan_actions(decision, state.config.strike_policy)
        draft = build_incident(
            facts, decision, plan, user_id=user_id, prompt=prompt, keyer=self.bot.job_keyer
        )
        draft = dataclasses.replace(draft, source=REPORT_SOURCE)
        incident, created = await screening.record_and_act(message, draft, plan, decision)
        if incident is None:
            return THANKS
        if not created:
            presses = await storage.list_modlog_presses(guild.id, incident.id)
            if any(p.action == REPORT_KIND and p.moderator_id == reporter_id for p in presses):
                return ALREADY
        # Who reported stays with the moderators' records (not in the reported member's
        # export); the reason is kept with the incident's actions.
        await storage.record_modlog_press(guild.id, incident.id, reporter_id, REPORT_KIND)
        await storage.record_action_outcome(
            guild.id, incident.id, REPORT_KIND, "done", " ".join(reason.split())[:REASON_LIMIT]
        )
        log.info(
            "guild %d: prompt reported (incident %d, %s)",
            guild.id,
            incident.id,
            "new" if created else "existing",
        )
        return THANKS


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(Reports(bot))
