"""`/enforcement`: how the watcher treats members (exemptions, strikes, timeouts, personal
information, catch-up), for admins.

Each change is validated by the core (promptwarden.enforcement_edits), saved, then
announced with `promptwarden_settings_changed` so the very next message follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import MANAGE_GUILD, guild_permissions_check
from discordbot import PromptWardenBot
from promptwarden import enforcement_edits as edits
from promptwarden.enforcement import EnforcementConfig

Interaction = discord.Interaction[PromptWardenBot]
OnOff = Literal["on", "off"]
SHOW_IDS = 25


def _fit(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Enforcement(commands.Cog):
    group = app_commands.Group(
        name="enforcement",
        description="How PromptWarden treats members: exemptions, strikes, timeouts",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )
    exempt_role = app_commands.Group(
        name="exempt-role", description="Roles whose prompts are never acted on", parent=group
    )
    exempt_channel = app_commands.Group(
        name="exempt-channel",
        description="Channels (and their threads) never screened, even when watched",
        parent=group,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot

    async def config(self, guild_id: int) -> tuple[EnforcementConfig, str | None]:
        """The guild's settings, and why stored ones were unreadable (then the defaults
        apply, as in the watcher, and the next change saves valid ones)."""
        try:
            return EnforcementConfig.from_dict(
                await self.bot.storage.get_enforcement_config(guild_id)
            ), None
        except ValueError as error:
            return EnforcementConfig(), str(error)

    async def change(
        self,
        interaction: Interaction,
        edit: Callable[[EnforcementConfig], EnforcementConfig],
        done: str,
    ) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        current, _ = await self.config(guild_id)
        try:
            updated = edit(current)
        except ValueError as error:
            await interaction.response.send_message(
                f"Not saved: {error}. Nothing was changed.", ephemeral=True
            )
            return
        await self.bot.storage.set_enforcement_config(guild_id, updated.to_dict())
        await interaction.response.send_message(done, ephemeral=True)

    # ------------------------------------------------------------ show

    @group.command(name="show", description="The enforcement settings in effect here")
    @guild_permissions_check(manage_guild=True)
    async def show(self, interaction: Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        config, broken = await self.config(guild.id)
        lines = ["**Enforcement settings**"]
        if broken:
            lines.append(f"Stored settings are unreadable ({broken}); the defaults below apply.")
        lines += edits.settings_lines(config)
        roles = [
            role.mention if (role := guild.get_role(i)) else f"deleted role ({i})"
            for i in sorted(config.exempt_role_ids)
        ]
        channels = [
            channel.mention if (channel := guild.get_channel_or_thread(i)) else f"deleted ({i})"
            for i in sorted(config.exempt_channel_ids)
        ]
        lines.append("Exempt roles: " + (", ".join(roles[:SHOW_IDS]) or "none"))
        lines.append("Exempt channels: " + (", ".join(channels[:SHOW_IDS]) or "none"))
        await interaction.response.send_message(
            _fit("\n".join(lines)), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    # ------------------------------------------------------------ exemptions

    @exempt_role.command(name="add", description="Never act on prompts of members with a role")
    @guild_permissions_check(manage_guild=True)
    async def role_add(self, interaction: Interaction, role: discord.Role) -> None:
        await self.change(
            interaction,
            lambda c: edits.with_exempt_role(c, role.id, True),
            f"Members with {role.mention} are now exempt from screening actions.",
        )

    @exempt_role.command(name="remove", description="Screen members with a role again")
    @guild_permissions_check(manage_guild=True)
    async def role_remove(self, interaction: Interaction, role: discord.Role) -> None:
        await self.change(
            interaction,
            lambda c: edits.with_exempt_role(c, role.id, False),
            f"{role.mention} is not exempt (any more).",
        )

    @exempt_channel.command(name="add", description="Never screen a channel, even if watched")
    @guild_permissions_check(manage_guild=True)
    async def channel_add(
        self, interaction: Interaction, channel: discord.TextChannel | discord.ForumChannel
    ) -> None:
        await self.change(
            interaction,
            lambda c: edits.with_exempt_channel(c, channel.id, True),
            f"{channel.mention} and its threads are now exempt from screening.",
        )

    @exempt_channel.command(name="remove", description="Screen an exempt channel again")
    @guild_permissions_check(manage_guild=True)
    async def channel_remove(
        self, interaction: Interaction, channel: discord.TextChannel | discord.ForumChannel
    ) -> None:
        await self.change(
            interaction,
            lambda c: edits.with_exempt_channel(c, channel.id, False),
            f"{channel.mention} is not exempt (any more); it is screened when watched.",
        )

    # ------------------------------------------------------------ switches

    @group.command(
        name="moderators-exempt", description="Whether members with Manage Messages are exempt"
    )
    @guild_permissions_check(manage_guild=True)
    async def moderators_exempt(self, interaction: Interaction, setting: OnOff) -> None:
        on = setting == "on"
        await self.change(
            interaction,
            lambda c: replace(c, moderators_exempt=on),
            "Moderators (Manage Messages) are "
            + ("exempt from screening actions." if on else "now screened like everyone."),
        )

    @group.command(
        name="delete-personal-info",
        description="Also delete prompts with personal information (not just remind)",
    )
    @guild_permissions_check(manage_guild=True)
    async def delete_personal_info(self, interaction: Interaction, setting: OnOff) -> None:
        on = setting == "on"
        await self.change(
            interaction,
            lambda c: replace(c, delete_personal_info=on),
            "Prompts with personal information are "
            + ("deleted, and the member told why." if on else "kept; the member gets a reminder."),
        )

    @group.command(
        name="dm-failure-notice",
        description="A short notice in the channel when a warning DM cannot be sent",
    )
    @guild_permissions_check(manage_guild=True)
    async def dm_failure_notice(self, interaction: Interaction, setting: OnOff) -> None:
        on = setting == "on"
        await self.change(
            interaction,
            lambda c: replace(c, dm_failure_notice=on),
            "When a warning DM fails, "
            + (
                "a notice mentions the member in the channel for 30 s."
                if on
                else "nothing is said."
            ),
        )

    # ------------------------------------------------------------ strikes

    @group.command(name="strikes", description="Points a warning and a block add, and for how long")
    @app_commands.describe(
        points_warn="Points a warning adds (0 for none)",
        points_block="Points a removed prompt adds",
        window_days="Days each strike counts",
    )
    @guild_permissions_check(manage_guild=True)
    async def strikes(
        self, interaction: Interaction, points_warn: int, points_block: int, window_days: int
    ) -> None:
        await self.change(
            interaction,
            lambda c: edits.with_strikes(c, points_warn, points_block, window_days),
            f"Saved: a warning adds {points_warn} point(s), a block {points_block}; "
            f"strikes count for {window_days} days.",
        )

    @group.command(name="timeouts", description="Timeouts by active points, e.g. 3=1h,5=1d")
    @app_commands.describe(
        thresholds="POINTS=DURATION pairs (30m, 1h, 1d, at most 28d), or none for no timeouts"
    )
    @guild_permissions_check(manage_guild=True)
    async def timeouts(
        self, interaction: Interaction, thresholds: app_commands.Range[str, 1, 200]
    ) -> None:
        try:
            parsed = edits.parse_thresholds(thresholds)
        except ValueError:
            parsed = ()  # `change` reports the error
        shown = ", ".join(f"{p} points: {edits.duration_text(d)}" for p, d in parsed)
        await self.change(
            interaction,
            lambda c: edits.with_timeouts(c, thresholds),
            f"Saved timeouts: {shown}." if parsed else "Saved: strikes never time anyone out.",
        )

    @group.command(name="catch-up", description="How far back to screen after downtime")
    @app_commands.describe(hours="0 to 336 (14 days); 0 turns catch-up off")
    @guild_permissions_check(manage_guild=True)
    async def catch_up(self, interaction: Interaction, hours: int) -> None:
        await self.change(
            interaction,
            lambda c: edits.with_catchup_hours(c, hours),
            f"Saved: after downtime, prompts of the last {hours} hour(s) are screened."
            if hours
            else "Saved: prompts posted while the bot was away are not screened.",
        )


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(Enforcement(bot))
