"""Privacy: private-mode reminders, members' data rights, appeals, retention.

Everything posted in a public generation channel is public and may reach a public
gallery; people forget. So a person's first prompt in a watched public channel (and one
every interval after) earns a short DM on how to keep prompts private. Members control
their reminders and their data (`/privacy`), admins the guild's settings (`/reminders`,
`/retention`), and a daily job forgets incidents older than the guild's retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands, tasks

from cogs._appeals import AppealButton, AppealDecisionButton
from cogs._checks import MANAGE_GUILD, guild_permissions_check
from cogs._facts import Arrival
from cogs._replies import acknowledged
from discordbot import PromptWardenBot
from promptwarden.privacy import (
    MAX_DM_PER_MINUTE,
    MAX_INTERVAL_DAYS,
    MAX_RETENTION_DAYS,
    PRIVATE_MODE,
    REMINDER_TEXT_LIMIT,
    PrivacyConfig,
    check_reminder_text,
    check_url,
    export_document,
    reminder_message,
)
from promptwarden.reminders import Claim, ReminderTable
from promptwarden.storage.models import EXPORT_KIND

log = logging.getLogger("promptwarden.privacy")

CONFIRM_SECONDS = 120
BUDGET_SPENT = "I am sending many messages right now; please try again in a minute."
EXPORT_FAILED = "I could not send you the DM just now (Discord refused it); please try again later."
# Each export spends one of the guild's DMs a minute, which warnings need: one a day per
# member and guild, noted with the reminders (so a restart keeps it, retention clears it).
EXPORT_INTERVAL = timedelta(days=1)
# A DM to closed DMs spends a unit too: the next try waits this long, not a whole day.
EXPORT_RETRY_AFTER_CLOSED_DMS = timedelta(minutes=10)
# On stop, reminders being sent get this long to finish (and be noted) before the save.
STOP_WAIT_SECONDS = 5.0
# Reminders sent are saved in batches this often (a crash forgets at most this much).
REMINDER_SAVE_SECONDS = 5.0
# When the guild's DM budget held a reminder back, reminders there wait this long: asking
# the budget (a query) on every prompt of every member not reminded yet costs a busy
# server a round trip per prompt, for DMs it cannot send anyway.
BUDGET_BACKOFF = timedelta(seconds=10)


def is_public(channel: Any) -> bool:
    """Whether everyone in the guild can read the channel (for a thread: its parent, and
    the thread is not private). Prompts in private channels get no reminder."""
    guild = getattr(channel, "guild", None)
    if guild is None:
        return False
    if isinstance(channel, discord.Thread):
        if channel.is_private() or channel.parent is None:
            return False
        channel = channel.parent
    if not isinstance(channel, discord.abc.GuildChannel):
        return False
    return channel.permissions_for(guild.default_role).view_channel


class ConfirmDelete(discord.ui.View):
    """The confirmation under `/privacy delete`; only the person who asked can press it."""

    def __init__(self, cog: Privacy, owner_id: int) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self.cog = cog
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "This button belongs to someone else's request.", ephemeral=True
            )
            return False
        return True

    @discord.ui.button(label="Delete my data", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[ConfirmDelete]
    ) -> None:
        self.stop()
        # Erasing touches every server's records: it can outlast Discord's 3 seconds.
        async with acknowledged(interaction):
            # Memory first: no reminder noted before the erasure is saved after it.
            await self.cog.table.forget_member(self.owner_id)
            erased = await self.cog.bot.actions.erase_member(self.owner_id)
            report = erased.report
            await interaction.edit_original_response(
                content=(
                    "Done. Your preferences and reminder history are deleted, and the prompt "
                    f"text of your {report.incidents_redacted} incident(s) and the reasons of "
                    f"your {report.appeals_redacted} appeal(s) are erased, here and in the "
                    "moderators' log messages. The record of what moderators did stays, as "
                    "moderation needs it."
                    + (
                        f" {erased.entries_failed} log message(s) could not be edited yet."
                        if erased.entries_failed
                        else ""
                    )
                ),
                view=None,
            )

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[ConfirmDelete]
    ) -> None:
        self.stop()
        await interaction.response.edit_message(content="Cancelled; nothing deleted.", view=None)


class Privacy(commands.Cog):
    privacy = app_commands.Group(
        name="privacy", description="Your privacy reminders and your data", guild_only=True
    )
    reminders = app_commands.Group(
        name="reminders",
        description="Private-mode reminders in this server",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot
        # Private-mode reminders decided in memory: an allowed prompt costs no query.
        self.table = ReminderTable(bot.storage, PRIVATE_MODE)
        self._reminding: set[asyncio.Task[object]] = set()
        # guild -> until when reminders there wait (the DM budget held one back).
        self._budget_spent: dict[int, datetime] = {}
        # (guild, member) with a reminder task deciding: their next prompts need none.
        self._deciding: set[tuple[int, int]] = set()

    async def cog_load(self) -> None:
        self.retention_job.start()
        self.bot.prompt_hooks.append(self.prompt_seen)

    async def cog_unload(self) -> None:
        """The bot unloads cogs before it closes the database: let reminders being sent
        finish, then save the table; no prompt reads or writes anything after this."""
        with contextlib.suppress(ValueError):
            self.bot.prompt_hooks.remove(self.prompt_seen)
        self.retention_job.cancel()
        self.save_reminders.cancel()
        self.table.stop()
        if self._reminding:
            await asyncio.wait(tuple(self._reminding), timeout=STOP_WAIT_SECONDS)
        await self.table.close()

    # ------------------------------------------------------------ reminders

    def prompt_seen(self, arrival: Arrival, user_id: int) -> None:
        """Called in place by the watcher for each new prompt it screens. Nearly always
        the table knows at once that no reminder is due: then nothing else happens, no
        task, no await, no discord.Message; otherwise a task decides and sends."""
        if self.table.closed or arrival.facts is None:
            return  # stopping: the database may be closed already
        guild_id = arrival.facts.guild_id
        state = self.bot.guild_states.cached(guild_id)
        if state is not None:
            config = state.privacy
            if not config.reminders_enabled:
                return
            now = discord.utils.utcnow()
            if self._waiting_for_budget(guild_id, now):
                return
            if self.table.not_due(guild_id, user_id, interval=config.reminder_interval, now=now):
                return
        member = (guild_id, user_id)
        if member in self._deciding:
            return  # their earlier prompt's task is deciding already: one is enough
        self._deciding.add(member)
        task = asyncio.create_task(self.handle_prompt(arrival, user_id), name="privacy-reminder")
        self._reminding.add(task)
        task.add_done_callback(self._reminding.discard)
        task.add_done_callback(lambda _: self._deciding.discard(member))

    async def handle_prompt(self, arrival: Arrival, user_id: int) -> None:
        """Remind the prompt's author if due (see `remind`); never raises."""
        if self.table.closed:
            return  # stopping: the database may be closed already
        task = asyncio.current_task()
        if task is not None:
            self._reminding.add(task)
        try:
            await self.remind(arrival, user_id)
        except Exception:
            if self.table.closed:
                return  # the stop cut it short; the next start reminds them instead
            channel_id = arrival.facts.channel_id if arrival.facts else None
            log.exception("privacy reminder for a prompt in channel %s failed", channel_id)
        finally:
            if task is not None:
                self._reminding.discard(task)

    async def remind(self, arrival: Arrival, user_id: int) -> str:
        """Send the private-mode reminder if due; returns why not, or "sent". With the
        guild's settings cached and the member seen before, nothing here reads or writes
        the database unless a reminder is due; the message is never built."""
        guild = self.bot.get_guild(arrival.facts.guild_id) if arrival.facts else None
        if guild is None:
            return "no guild"
        config = (await self.bot.guild_states.get(guild.id)).privacy
        if not config.reminders_enabled:
            return "off in this guild"
        if not is_public(arrival.channel):
            return "private channel"
        now = discord.utils.utcnow()
        if self._waiting_for_budget(guild.id, now):
            return "DM budget spent"
        claim = await self.table.claim(
            guild.id, user_id, interval=config.reminder_interval, now=now
        )
        if claim is None:
            return "not due"  # reminded within the interval, or opted out
        rules = guild.rules_channel
        text = reminder_message(config, guild.name, rules_channel_id=rules.id if rules else None)
        try:
            sent = await self.bot.actions.send_reminder(guild.id, user_id, text)
        except BaseException:
            self.table.release(claim)
            raise
        if sent.outcome == "forbidden":
            self._confirm(claim)  # kept: no retry on every prompt
            return "DMs closed"
        if not sent.done:
            # Not sent: released, so a later prompt tries again.
            log.info("privacy reminder to %d skipped: %s", user_id, sent.detail)
            self.table.release(claim)
            if sent.held_back:
                self._budget_spent[guild.id] = discord.utils.utcnow() + BUDGET_BACKOFF
            return "skipped"
        self._confirm(claim)
        return "sent"

    def _waiting_for_budget(self, guild_id: int, now: datetime) -> bool:
        until = self._budget_spent.get(guild_id)
        if until is None:
            return False
        if now < until:
            return True
        del self._budget_spent[guild_id]
        return False

    def _confirm(self, claim: Claim) -> None:
        self.table.confirm(claim)
        if not self.table.closed and not self.save_reminders.is_running():
            self.save_reminders.start()

    @tasks.loop(seconds=REMINDER_SAVE_SECONDS)
    async def save_reminders(self) -> None:
        """Runs only while reminders wait to be saved: started by the first one, it saves
        a period later and stops once nothing is left (an idle bot keeps no timer)."""
        if self.save_reminders.current_loop == 0:
            return
        try:
            await self.table.flush()
        except Exception:
            log.exception("saving %d reminder(s) failed; tried again shortly", self.table.unsaved)
        if not self.table.unsaved:
            self.save_reminders.stop()

    # ------------------------------------------------------------ /privacy (members)

    @privacy.command(name="reminders", description="Turn your private-mode reminders on or off")
    @app_commands.describe(setting="on or off; applies in every server")
    async def my_reminders(
        self, interaction: discord.Interaction[PromptWardenBot], setting: Literal["on", "off"]
    ) -> None:
        enabled = setting == "on"
        await self.bot.storage.set_reminders_enabled(
            interaction.user.id, enabled, now=discord.utils.utcnow()
        )
        self.table.set_choice(interaction.user.id, enabled)  # the very next prompt obeys
        text = (
            "Private-mode reminders are **on** for you again."
            if enabled
            else "Private-mode reminders are **off** for you, in every server I share with you. "
            "Warnings about personal information in a prompt still come."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @privacy.command(name="export", description="Get everything stored about you, by DM")
    async def export(self, interaction: discord.Interaction[PromptWardenBot]) -> None:
        guild = interaction.guild
        assert guild is not None  # guild_only
        user = interaction.user
        storage = self.bot.storage
        # Reading everything and DMing a file (open the DM, upload) can take seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await storage.export_member_data(user.id)
        now = discord.utils.utcnow()
        if not await storage.claim_reminder(
            guild.id, user.id, EXPORT_KIND, interval=EXPORT_INTERVAL, now=now
        ):
            last = max(
                (
                    r.sent_at
                    for r in data.reminders
                    if (r.guild_id, r.kind) == (guild.id, EXPORT_KIND)
                ),
                default=now,
            )
            await interaction.followup.send(
                "You can get your data once a day in this server; your next export is "
                f"possible {discord.utils.format_dt(last + EXPORT_INTERVAL, 'R')}.",
                ephemeral=True,
            )
            return
        document = export_document(data, generated_at=now)
        blob = json.dumps(document, ensure_ascii=False, indent=2).encode()
        sent = await self.bot.actions.send_export(
            guild.id,
            user.id,
            "Everything PromptWarden stores about you, in every server.",
            ((f"promptwarden-data-{user.id}.json", blob),),
        )
        if sent.outcome == "forbidden":
            # The claim now says "tried a day ago, less ten minutes": retry soon, not at once.
            retry_at = now + EXPORT_RETRY_AFTER_CLOSED_DMS
            await storage.release_reminder(guild.id, user.id, EXPORT_KIND, sent_at=now)
            await storage.claim_reminder(
                guild.id,
                user.id,
                EXPORT_KIND,
                interval=EXPORT_INTERVAL,
                now=retry_at - EXPORT_INTERVAL,
            )
            await interaction.followup.send(
                "I could not send you a DM: your direct messages are closed. In this server's "
                "Privacy Settings, allow direct messages, then run the command again "
                f"{discord.utils.format_dt(retry_at, 'R')}.",
                ephemeral=True,
            )
            return
        if not sent.done:
            # Not sent: the member may ask again at once.
            await storage.release_reminder(guild.id, user.id, EXPORT_KIND, sent_at=now)
            await interaction.followup.send(
                BUDGET_SPENT if sent.held_back else EXPORT_FAILED, ephemeral=True
            )
            return
        await interaction.followup.send(
            f"I sent you a DM with your data: {len(data.incidents)} incident(s), "
            f"{len(data.strikes)} strike(s), {len(data.appeals)} appeal(s).",
            ephemeral=True,
        )

    @privacy.command(
        name="delete",
        description="Delete your preferences and reminders, and erase your prompts' text",
    )
    async def delete(self, interaction: discord.Interaction[PromptWardenBot]) -> None:
        await interaction.response.send_message(
            "This deletes your privacy preferences and reminder history and erases the "
            "prompt text stored with your incidents and your appeals' reasons, in every "
            "server. The record of moderation actions (warnings, strikes) stays. Continue?",
            view=ConfirmDelete(self, interaction.user.id),
            ephemeral=True,
        )

    # ------------------------------------------------------------ /reminders (admins)

    async def _update(self, guild_id: int, **changes: Any) -> PrivacyConfig:
        config = replace((await self.bot.guild_states.get(guild_id)).privacy, **changes)
        await self.bot.storage.set_privacy_config(guild_id, config.to_dict())
        return config

    @reminders.command(name="on", description="Send private-mode reminders in this server")
    @guild_permissions_check(manage_guild=True)
    async def reminders_on(self, interaction: discord.Interaction[PromptWardenBot]) -> None:
        assert interaction.guild is not None
        config = await self._update(interaction.guild.id, reminders_enabled=True)
        days = config.reminder_interval.days
        await interaction.response.send_message(
            f"Private-mode reminders are on: each member gets one on their first prompt in a "
            f"watched public channel, then at most one every {days} days.",
            ephemeral=True,
        )

    @reminders.command(name="off", description="Stop private-mode reminders in this server")
    @guild_permissions_check(manage_guild=True)
    async def reminders_off(self, interaction: discord.Interaction[PromptWardenBot]) -> None:
        assert interaction.guild is not None
        await self._update(interaction.guild.id, reminders_enabled=False)
        await interaction.response.send_message(
            "Private-mode reminders are off in this server. Warnings about personal "
            "information in prompts still go out.",
            ephemeral=True,
        )

    @reminders.command(name="text", description="Set the reminder's text and guidelines link")
    @app_commands.describe(
        text="What the reminder says (the guidelines link and opt-out line are added)",
        link="Web address of the server's guidelines (optional)",
    )
    @guild_permissions_check(manage_guild=True)
    async def reminders_text(
        self,
        interaction: discord.Interaction[PromptWardenBot],
        text: app_commands.Range[str, 1, REMINDER_TEXT_LIMIT],
        link: str | None = None,
    ) -> None:
        guild = interaction.guild
        assert guild is not None
        try:
            changes: dict[str, Any] = {"reminder_text": check_reminder_text(text)}
            if link is not None:
                changes["guidelines_url"] = check_url(link)
        except ValueError as error:
            await interaction.response.send_message(f"Not saved: {error}.", ephemeral=True)
            return
        config = await self._update(guild.id, **changes)
        rules = guild.rules_channel
        preview = reminder_message(config, guild.name, rules_channel_id=rules.id if rules else None)
        await interaction.response.send_message(
            f"Saved. Members will read:\n>>> {preview}", ephemeral=True
        )

    @reminders.command(name="interval", description="Days between two reminders to a member")
    @guild_permissions_check(manage_guild=True)
    async def reminders_interval(
        self,
        interaction: discord.Interaction[PromptWardenBot],
        days: app_commands.Range[int, 1, MAX_INTERVAL_DAYS],
    ) -> None:
        assert interaction.guild is not None
        await self._update(interaction.guild.id, reminder_interval=timedelta(days=days))
        await interaction.response.send_message(
            f"A member now gets at most one reminder of each kind every {days} days.",
            ephemeral=True,
        )

    @reminders.command(name="dm-limit", description="Most DMs the bot sends here per minute")
    @guild_permissions_check(manage_guild=True)
    async def reminders_dm_limit(
        self,
        interaction: discord.Interaction[PromptWardenBot],
        per_minute: app_commands.Range[int, 1, MAX_DM_PER_MINUTE],
    ) -> None:
        assert interaction.guild is not None
        await self._update(interaction.guild.id, dm_per_minute=per_minute)
        await interaction.response.send_message(
            f"I now send at most {per_minute} DMs a minute for this server (warnings, "
            "reminders, appeal answers); beyond that a DM is skipped and recorded.",
            ephemeral=True,
        )

    @reminders.command(name="show", description="Show this server's privacy settings")
    @guild_permissions_check(manage_guild=True)
    async def reminders_show(self, interaction: discord.Interaction[PromptWardenBot]) -> None:
        guild = interaction.guild
        assert guild is not None
        config = (await self.bot.guild_states.get(guild.id)).privacy
        rules = guild.rules_channel
        preview = reminder_message(config, guild.name, rules_channel_id=rules.id if rules else None)
        await interaction.response.send_message(
            f"Private-mode reminders: **{'on' if config.reminders_enabled else 'off'}**, at "
            f"most one of each kind per member every {config.reminder_interval.days} days.\n"
            f"DMs: at most {config.dm_per_minute} a minute. "
            f"Incidents kept: {config.retention.days} days.\n"
            f"Members read:\n>>> {preview}",
            ephemeral=True,
        )

    @app_commands.command(name="retention", description="Days incidents are kept in this server")
    @app_commands.describe(days="Incidents older than this are deleted by a daily job")
    @app_commands.guild_only()
    @guild_permissions_check(manage_guild=True)
    async def retention(
        self,
        interaction: discord.Interaction[PromptWardenBot],
        days: app_commands.Range[int, 1, MAX_RETENTION_DAYS],
    ) -> None:
        assert interaction.guild is not None
        await self._update(interaction.guild.id, retention=timedelta(days=days))
        await interaction.response.send_message(
            f"Incidents are now kept for {days} days; older ones (with their strikes, "
            "appeals and action records) are deleted by the daily clean-up.",
            ephemeral=True,
        )

    # ------------------------------------------------------------ retention job

    @tasks.loop(hours=24)
    async def retention_job(self) -> None:
        # Nothing may escape: tasks.loop stops for good on an exception it does not know
        # (a database error, say), and the incidents would then be kept forever.
        try:
            await self.apply_retention()
        except Exception:
            log.exception("the retention job failed; it runs again in 24 hours")

    async def apply_retention(self, now: datetime | None = None) -> dict[int, int]:
        """Delete each guild's incidents older than its retention, and reminder history
        older than its interval (useless by then); returns {guild: incidents deleted}.
        A guild that fails is logged and skipped; the others are still cleaned."""
        now = now or discord.utils.utcnow()
        storage = self.bot.storage
        deleted: dict[int, int] = {}
        for guild_id in await storage.stored_guild_ids():
            try:
                config = (await self.bot.guild_states.get(guild_id)).privacy
                count = await storage.delete_incidents_before(guild_id, now - config.retention)
                await storage.delete_reminders_before(guild_id, now - config.reminder_interval)
            except Exception:
                log.exception("retention: guild %d failed; it is tried again tomorrow", guild_id)
                continue
            if count:
                deleted[guild_id] = count
                log.info("retention: deleted %d incident(s) of guild %d", count, guild_id)
        return deleted


async def setup(bot: PromptWardenBot) -> None:
    bot.add_dynamic_items(AppealButton, AppealDecisionButton)
    await bot.add_cog(Privacy(bot))
