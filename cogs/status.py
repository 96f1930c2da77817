"""`/promptwarden status`: what the bot knows about this server and what it cannot do.

The first thing an admin runs after inviting the bot, so it answers the questions that
make a setup fail silently: is the database there, where do reports go, which channels
are watched, and which permissions are missing (server-wide and per channel).
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import MANAGE_GUILD, guild_permissions_check
from cogs._permission_report import channel_gaps, missing_optional, missing_permissions
from discordbot import PromptWardenBot

# Keeps the reply within Discord's 2,000 characters however many channels are watched.
LIST_LIMIT = 20


__all__ = ["LIST_LIMIT", "Status", "missing_permissions", "setup"]


class Status(commands.Cog):
    promptwarden = app_commands.Group(
        name="promptwarden",
        description="PromptWarden administration",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot

    @promptwarden.command(name="status", description="Show PromptWarden's setup in this server")
    @guild_permissions_check(manage_guild=True)
    async def status(self, interaction: discord.Interaction[PromptWardenBot]) -> None:
        guild = interaction.guild
        assert guild is not None  # guild_only
        await interaction.response.send_message(await self.report(guild), ephemeral=True)

    async def report(self, guild: discord.Guild) -> str:
        storage = self.bot.storage
        me = guild.me
        lines = [
            "**PromptWarden status**",
            f"Database schema: version {await storage.schema_version()}",
        ]
        channels_to_check: list[discord.abc.GuildChannel] = []

        modlog_id = await storage.get_modlog_channel(guild.id)
        modlog = guild.get_channel(modlog_id) if modlog_id else None
        if modlog_id is None:
            lines.append("Mod-log channel: not set")
        elif modlog is None:
            lines.append(f"Mod-log channel: deleted channel ({modlog_id})")
        else:
            lines.append(f"Mod-log channel: {modlog.mention}")
            channels_to_check.append(modlog)

        watched = await storage.list_watched_channels(guild.id)
        if not watched:
            lines.append("Watched channels: none")
        else:
            lines.append("Watched channels:")
            for entry in watched[:LIST_LIMIT]:
                channel = guild.get_channel(entry.channel_id)
                if channel is None:
                    lines.append(f"- deleted {entry.kind} ({entry.channel_id})")
                    continue
                label = channel.mention if entry.kind == "channel" else f"category {channel.name}"
                lines.append(f"- {label}")
                channels_to_check.append(channel)
            if len(watched) > LIST_LIMIT:
                lines.append(f"- and {len(watched) - LIST_LIMIT} more")

        missing, per_channel = channel_gaps(me, channels_to_check)
        if missing:
            lines.append("Missing server permissions:")
            lines.extend(f"- {p.label}: needed to {p.reason}" for p in missing)
        else:
            lines.append("Server permissions: all granted")
        for target, in_channel in per_channel:
            names = ", ".join(p.label for p in in_channel)
            lines.append(f"Missing in {target.mention}: {names}")
        optional = missing_optional(me.guild_permissions)
        if optional:
            lines.append("Optional permissions not granted:")
            lines.extend(f"- {p.label}: needed to {p.reason}" for p in optional)
        return "\n".join(lines)


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(Status(bot))
