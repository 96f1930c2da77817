"""Server admin commands: `/setup`, `/watch add|remove|list`, `/generator-bots add|remove|list`.

Every change is saved, then announced with `promptwarden_settings_changed` so the watcher
applies it to the very next message.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import MANAGE_GUILD, guild_permissions_check
from cogs._permission_report import fix_lines, optional_lines
from discordbot import PromptWardenBot
from promptwarden.screening.extract import GENERATOR_BOT_IDS
from promptwarden.storage import WatchKind

Interaction = discord.Interaction[PromptWardenBot]
Watchable = discord.TextChannel | discord.ForumChannel | discord.CategoryChannel
LIST_LIMIT = 25
BUILT_IN_BOTS = {936929561302675456: "Midjourney Bot", 1022952195194359889: "niji・journey Bot"}


def _kind(target: Watchable) -> WatchKind:
    return "category" if isinstance(target, discord.CategoryChannel) else "channel"


def _label(target: discord.abc.GuildChannel) -> str:
    if isinstance(target, discord.CategoryChannel):
        return f"category **{discord.utils.escape_markdown(target.name)}**"
    return target.mention


def _parse_id(text: str) -> int | None:
    text = text.strip().removeprefix("<@").removeprefix("!").removesuffix(">")
    if text.isdigit() and 15 <= len(text) <= 20:
        return int(text)
    return None


class Admin(commands.Cog):
    watch = app_commands.Group(
        name="watch",
        description="Choose the channels PromptWarden screens",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )
    generator_bots = app_commands.Group(
        name="generator-bots",
        description="Image-generator bots whose posted prompts are screened",
        guild_only=True,
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot

    # ------------------------------------------------------------ /setup

    @app_commands.command(
        name="setup", description="Set the mod-log and a watched channel; check my permissions"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        modlog="Where incident reports go",
        watch_channel="An image-generation channel (or forum) to screen",
        watch_category="A category: all its channels, threads and forum posts are screened",
    )
    @guild_permissions_check(manage_guild=True)
    async def setup_command(
        self,
        interaction: Interaction,
        modlog: discord.TextChannel | None = None,
        watch_channel: discord.TextChannel | discord.ForumChannel | None = None,
        watch_category: discord.CategoryChannel | None = None,
    ) -> None:
        guild = interaction.guild
        assert guild is not None
        storage = self.bot.storage
        lines = ["**PromptWarden setup**"]
        if modlog is not None:
            await storage.set_modlog_channel(guild.id, modlog.id)
            lines.append(f"Mod-log channel set to {modlog.mention}.")
        for target in (watch_channel, watch_category):
            if target is not None:
                added = await storage.add_watched_channel(guild.id, target.id, _kind(target))
                lines.append(f"{'Now watching' if added else 'Already watching'} {_label(target)}.")

        checked: list[discord.abc.GuildChannel] = []
        modlog_id = await storage.get_modlog_channel(guild.id)
        current = guild.get_channel(modlog_id) if modlog_id else None
        if current is None:
            lines.append("Mod-log channel: **not set**. Run `/setup modlog:#channel`.")
        else:
            lines.append(f"Mod-log channel: {current.mention}")
            checked.append(current)
        watched = await storage.list_watched_channels(guild.id)
        names: list[str] = []
        for entry in watched:
            channel = guild.get_channel(entry.channel_id)
            if channel is not None:
                names.append(_label(channel))
                checked.append(channel)
                if isinstance(channel, discord.CategoryChannel):
                    checked.extend(channel.channels)
        if names:
            shown = ", ".join(names[:LIST_LIMIT])
            more = f" and {len(names) - LIST_LIMIT} more" if len(names) > LIST_LIMIT else ""
            lines.append(f"Watched: {shown}{more}")
        else:
            lines.append("Watched: **nothing yet**. Run `/setup watch_channel:#channel`.")

        gaps = fix_lines(guild.me, list(dict.fromkeys(checked)))
        if gaps:
            lines.append("Missing permissions:")
            lines += gaps
        else:
            lines.append("Permissions: everything I need is granted.")
        lines += optional_lines(guild.me)
        await interaction.response.send_message(_fit("\n".join(lines)), ephemeral=True)

    # ------------------------------------------------------------ /watch

    @watch.command(name="add", description="Screen a channel, forum or whole category")
    @app_commands.describe(target="A text channel, forum or category")
    @guild_permissions_check(manage_guild=True)
    async def watch_add(self, interaction: Interaction, target: Watchable) -> None:
        assert interaction.guild_id is not None
        added = await self.bot.storage.add_watched_channel(
            interaction.guild_id, target.id, _kind(target)
        )
        text = f"Now watching {_label(target)}." if added else f"Already watching {_label(target)}."
        await interaction.response.send_message(text, ephemeral=True)

    @watch.command(name="remove", description="Stop screening a channel or category")
    @guild_permissions_check(manage_guild=True)
    async def watch_remove(self, interaction: Interaction, target: Watchable) -> None:
        assert interaction.guild_id is not None
        removed = await self.bot.storage.remove_watched_channel(interaction.guild_id, target.id)
        text = (
            f"Stopped watching {_label(target)}."
            if removed
            else f"{_label(target)} was not watched."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @watch.command(name="list", description="The channels and categories being screened")
    @guild_permissions_check(manage_guild=True)
    async def watch_list(self, interaction: Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        watched = await self.bot.storage.list_watched_channels(guild.id)
        if not watched:
            text = "Nothing is watched yet. Add a channel with `/watch add`."
        else:
            lines = ["**Watched**"]
            for entry in watched:
                channel = guild.get_channel(entry.channel_id)
                lines.append(
                    f"- {_label(channel)}"
                    if channel
                    else f"- deleted {entry.kind} ({entry.channel_id}): `/watch remove` it"
                )
            text = _fit("\n".join(lines))
        await interaction.response.send_message(text, ephemeral=True)

    # ------------------------------------------------------------ /generator-bots

    @generator_bots.command(name="add", description="Screen the prompts another bot posts")
    @app_commands.describe(bot_id="The generator bot's user id (or a mention)")
    @guild_permissions_check(manage_guild=True)
    async def bots_add(self, interaction: Interaction, bot_id: str) -> None:
        assert interaction.guild_id is not None
        parsed = _parse_id(bot_id)
        if parsed is None:
            await interaction.response.send_message(
                f"`{discord.utils.escape_markdown(bot_id[:40])}` is not a user id: copy it with "
                "Developer Mode on (right-click the bot > Copy User ID).",
                ephemeral=True,
            )
            return
        if parsed in GENERATOR_BOT_IDS:
            text = f"{BUILT_IN_BOTS.get(parsed, parsed)} is always screened; nothing to add."
        else:
            added = await self.bot.storage.add_generator_bot(interaction.guild_id, parsed)
            text = (
                f"Prompts posted by <@{parsed}> in watched channels are now screened."
                if added
                else f"<@{parsed}> was already a generator bot."
            )
        await interaction.response.send_message(text, ephemeral=True)

    @generator_bots.command(name="remove", description="Stop screening a bot's posts")
    @app_commands.describe(bot_id="The bot's user id")
    @guild_permissions_check(manage_guild=True)
    async def bots_remove(self, interaction: Interaction, bot_id: str) -> None:
        assert interaction.guild_id is not None
        parsed = _parse_id(bot_id)
        if parsed is None:
            text = f"`{discord.utils.escape_markdown(bot_id[:40])}` is not a user id."
        elif parsed in GENERATOR_BOT_IDS:
            text = f"{BUILT_IN_BOTS.get(parsed, parsed)} is built in and cannot be removed."
        else:
            removed = await self.bot.storage.remove_generator_bot(interaction.guild_id, parsed)
            text = f"Removed <@{parsed}>." if removed else f"<@{parsed}> was not in the list."
        await interaction.response.send_message(text, ephemeral=True)

    @generator_bots.command(name="list", description="The bots whose prompts are screened")
    @guild_permissions_check(manage_guild=True)
    async def bots_list(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        extra = await self.bot.storage.list_generator_bots(interaction.guild_id)
        lines = ["**Generator bots**"]
        lines += [f"- {name} ({bot_id}), built in" for bot_id, name in BUILT_IN_BOTS.items()]
        lines += [f"- <@{bot_id}> ({bot_id})" for bot_id in extra]
        await interaction.response.send_message(_fit("\n".join(lines)), ephemeral=True)


def _fit(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(Admin(bot))
