"""`/stats [days]`: what the bot found over a period, with a chart of incidents per day."""

from __future__ import annotations

import io
from datetime import timedelta

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import guild_permissions_check
from discordbot import PromptWardenBot
from promptwarden.chart import incidents_per_day_png
from promptwarden.stats import incident_stats

Interaction = discord.Interaction[PromptWardenBot]
RECENT_DAYS = 14  # days with incidents listed in text; the chart shows them all


def _pairs(pairs: list[tuple[str, int]], limit: int = 10) -> str:
    return ", ".join(f"{name} {count}" for name, count in pairs[:limit]) or "—"


class Stats(commands.Cog):
    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats", description="Incidents over the last days, with a chart")
    @app_commands.guild_only()
    @app_commands.describe(days="How many days back (1 to 365; default 30)")
    @guild_permissions_check(manage_messages=True)
    async def stats(
        self, interaction: Interaction, days: app_commands.Range[int, 1, 365] = 30
    ) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        now = discord.utils.utcnow()
        first_day = (now - timedelta(days=days - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        incidents = await self.bot.storage.incidents_since(interaction.guild_id, first_day)
        figures = incident_stats(incidents, days=days, now=now)
        lines = [f"**Incidents in the last {days} day(s): {figures.total}**"]
        if figures.total:
            lines += [
                f"By category: {_pairs(figures.by_category)}",
                f"By action: {_pairs(figures.by_action)}",
                "Top matched terms: "
                + (", ".join(f"`{t}` {n}" for t, n in figures.top_terms) or "—"),
                f"Dismissed as false positives: {figures.dismissed} of {figures.total} "
                f"({figures.dismissed_share:.0%}); resolved: {figures.resolved}",
            ]
            busiest = max(figures.by_day, key=lambda d: d[1])
            lines.append(f"Busiest day: {busiest[0]:%Y-%m-%d} ({busiest[1]})")
            recent = [(d, n) for d, n in figures.by_day if n][-RECENT_DAYS:]
            lines.append("By day (latest): " + ", ".join(f"{d:%m-%d} {n}" for d, n in recent))
        chart = incidents_per_day_png(
            figures.by_day, title=f"Incidents per day, last {days} day(s)"
        )
        await interaction.followup.send(
            "\n".join(lines)[:2000],
            file=discord.File(io.BytesIO(chart), filename="incidents-per-day.png"),
            ephemeral=True,
        )


async def setup(bot: PromptWardenBot) -> None:
    await bot.add_cog(Stats(bot))
