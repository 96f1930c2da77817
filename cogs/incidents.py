"""Moderator commands: `/incidents queue|list|show|resolve|export` and `/strikes show|pardon`.

Every query takes the interaction's guild id: an incident id from another server is simply
"not found". Buttons carry their state in the custom id (like the mod-log's), so they keep
working after a restart and need no memory.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs._checks import guild_permissions_check, refuse, refuse_without_manage_messages
from cogs._incident_ui import incident_jump_url as jump_url
from cogs._incident_ui import modlog_embed, strikes_line
from cogs._replies import acknowledged
from discordbot import PromptWardenBot
from promptwarden import rule_edits
from promptwarden.incident_export import incidents_csv
from promptwarden.periods import parse_since
from promptwarden.screening.decision import Verdict
from promptwarden.storage import DM_SLOT, INCIDENT_STATUSES, Incident, IncidentStatus

Interaction = discord.Interaction[PromptWardenBot]
MANAGE_MESSAGES = discord.Permissions(manage_messages=True)
PAGE_SIZE = 10
QUEUE_SIZE = 4  # one embed and one row of buttons each (Discord allows 5 rows)
LIST_CATEGORIES = (*rule_edits.RULE_CATEGORIES, "model")
EXCERPT_IN_LIST = 70
# Lists name members and quote prompts: never notify anyone from them.
NO_PINGS = discord.AllowedMentions.none()


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _fit(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- the review queue


class QueueButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pw:queue:(?P<action>uphold|dismiss|warn):(?P<id>\d+)",
):
    LABELS: ClassVar[dict[str, str]] = {"uphold": "Uphold", "dismiss": "Dismiss", "warn": "Warn"}
    STYLES: ClassVar[dict[str, discord.ButtonStyle]] = {
        "uphold": discord.ButtonStyle.success,
        "dismiss": discord.ButtonStyle.secondary,
        "warn": discord.ButtonStyle.danger,
    }

    def __init__(self, action: str, incident_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"{self.LABELS[action]} #{incident_id}",
                style=self.STYLES[action],
                custom_id=f"pw:queue:{action}:{incident_id}",
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
    ) -> QueueButton:
        return cls(match["action"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        bot = interaction.client
        guild = interaction.guild
        assert isinstance(bot, PromptWardenBot)
        if guild is None or await refuse(interaction, self.action, incident_id=self.incident_id):
            return
        incident = await bot.storage.get_incident(guild.id, self.incident_id)
        if incident is None:
            await interaction.response.send_message(
                f"No incident #{self.incident_id} in this server.", ephemeral=True
            )
            return
        # Warning or settling DMs the member and edits the mod-log: acknowledge first.
        async with acknowledged(interaction):
            line = await self.decide(bot, guild, incident, interaction.user.id)
            content, embeds, view = await queue_page(bot, guild.id)
            await interaction.edit_original_response(
                content=f"{line}\n{content}", embeds=embeds, view=view, allowed_mentions=NO_PINGS
            )

    async def decide(
        self, bot: PromptWardenBot, guild: discord.Guild, incident: Incident, moderator_id: int
    ) -> str:
        if incident.status != "open":
            return f"Incident #{incident.id} was already {incident.status}."
        if self.action == "warn":
            summary = await bot.actions.warn(incident, moderator_id)
            return f"Incident #{incident.id}: {summary}."
        status: IncidentStatus = "upheld" if self.action == "uphold" else "dismissed"
        result = await bot.actions.resolve(guild.id, incident.id, status, moderator_id)
        revoked = "; strike removed" if result and result.strike_revoked else ""
        return f"Incident #{incident.id} {status}{revoked}."


async def queue_page(
    bot: PromptWardenBot, guild_id: int
) -> tuple[str, list[discord.Embed], discord.ui.View]:
    waiting = await bot.storage.find_incidents(
        guild_id, status="open", verdict=Verdict.REVIEW, oldest_first=True, limit=QUEUE_SIZE + 1
    )
    view = discord.ui.View(timeout=None)
    shown = waiting[:QUEUE_SIZE]
    for incident in shown:
        for action in ("uphold", "dismiss", "warn"):
            view.add_item(QueueButton(action, incident.id))
    embeds = [modlog_embed(i, jump_url=jump_url(i), points=None) for i in shown]
    if not shown:
        content = "The review queue is empty."
    else:
        more = " (more after these)" if len(waiting) > QUEUE_SIZE else ""
        content = f"**Awaiting review**, oldest first{more}:"
    return content, embeds, view


# ---------------------------------------------------------------- the paged list


@dataclass(frozen=True, slots=True)
class ListQuery:
    invoker: int
    user_id: int | None = None
    category: str | None = None
    status: IncidentStatus | None = None
    since: datetime | None = None

    def encode(self, direction: str, cursor: int) -> str:
        since = _b36(int(self.since.timestamp())) if self.since else ""
        return (
            f"pw:il:{direction}:{_b36(self.invoker)}:{_b36(cursor)}:"
            f"{_b36(self.user_id) if self.user_id else ''}:{self.category or ''}:"
            f"{self.status or ''}:{since}"
        )


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=(
        r"pw:il:(?P<dir>[np]):(?P<inv>[0-9a-z]+):(?P<cur>[0-9a-z]+):(?P<user>[0-9a-z]*):"
        r"(?P<cat>[a-z_]*):(?P<status>[a-z]*):(?P<since>[0-9a-z]*)"
    ),
):
    def __init__(self, query: ListQuery, direction: str, cursor: int, *, disabled: bool) -> None:
        super().__init__(
            discord.ui.Button(
                label="Previous" if direction == "p" else "Next",
                style=discord.ButtonStyle.secondary,
                custom_id=query.encode(direction, cursor),
                disabled=disabled,
            )
        )
        self.query = query
        self.direction = direction
        self.cursor = cursor

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PageButton:
        status = match["status"]
        query = ListQuery(
            invoker=int(match["inv"], 36),
            user_id=int(match["user"], 36) if match["user"] else None,
            category=match["cat"] or None,
            status=cast(IncidentStatus, status) if status in INCIDENT_STATUSES else None,
            since=(
                datetime.fromtimestamp(int(match["since"], 36), tz=UTC) if match["since"] else None
            ),
        )
        return cls(query, match["dir"], int(match["cur"], 36), disabled=False)

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        bot = interaction.client
        assert isinstance(bot, PromptWardenBot)
        if interaction.user.id != self.query.invoker:
            await interaction.response.send_message(
                "Only the moderator who ran this list can page it; run `/incidents list`.",
                ephemeral=True,
            )
            return
        if interaction.guild_id is None or await refuse_without_manage_messages(
            interaction, "act on incidents"
        ):
            return
        content, view = await list_page(
            bot,
            interaction.guild_id,
            self.query,
            before=self.cursor if self.direction == "n" else None,
            after=self.cursor if self.direction == "p" else None,
        )
        await interaction.response.edit_message(
            content=content, view=view, allowed_mentions=NO_PINGS
        )


def list_line(i: Incident) -> str:
    excerpt = discord.utils.escape_markdown(i.prompt_excerpt.replace("\n", " "))
    if len(excerpt) > EXCERPT_IN_LIST:
        excerpt = excerpt[: EXCERPT_IN_LIST - 1] + "…"
    return (
        f"`#{i.id}` {discord.utils.format_dt(i.created_at, 'd')} <@{i.user_id}> "
        f"**{i.action}** {', '.join(i.categories) or '—'} · {i.status} · {excerpt}"
    )


async def list_page(
    bot: PromptWardenBot,
    guild_id: int,
    query: ListQuery,
    *,
    before: int | None = None,
    after: int | None = None,
) -> tuple[str, discord.ui.View]:
    """One page, newest first. `before` pages to older incidents, `after` to newer ones."""
    filters: dict[str, Any] = {
        "user_id": query.user_id,
        "category": query.category,
        "status": query.status,
        "since": query.since,
    }
    rows = await bot.storage.find_incidents(
        guild_id,
        **filters,
        before_id=before,
        after_id=after,
        oldest_first=after is not None,
        limit=PAGE_SIZE + 1,
    )
    extra = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if after is not None:
        rows.reverse()
    view = discord.ui.View(timeout=None)
    if not rows:
        return "No incidents match.", view
    newest, oldest = rows[0].id, rows[-1].id
    if after is not None:  # came back from older ones
        has_newer, has_older = extra, True
    else:
        has_newer, has_older = before is not None, extra
    view.add_item(PageButton(query, "p", newest, disabled=not has_newer))
    view.add_item(PageButton(query, "n", oldest, disabled=not has_older))
    header = f"**Incidents #{newest} to #{oldest}** (newest first)"
    return _fit("\n".join([header, *map(list_line, rows)])), view


# ---------------------------------------------------------------- the cog


async def _category_choices(_: Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=c, value=c) for c in LIST_CATEGORIES if current in c][:25]


class Incidents(commands.Cog):
    incidents = app_commands.Group(
        name="incidents",
        description="Review what PromptWarden found",
        guild_only=True,
        default_permissions=MANAGE_MESSAGES,
    )
    strikes = app_commands.Group(
        name="strikes",
        description="Members' strike points",
        guild_only=True,
        default_permissions=MANAGE_MESSAGES,
    )

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot

    @incidents.command(name="queue", description="Incidents awaiting review, oldest first")
    @guild_permissions_check(manage_messages=True)
    async def queue(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        content, embeds, view = await queue_page(self.bot, interaction.guild_id)
        await interaction.response.send_message(
            content, embeds=embeds, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )

    @incidents.command(name="list", description="Incidents, newest first, with paging")
    @app_commands.describe(
        user="Only this member's",
        category="Only this category",
        status="open, upheld or dismissed",
        since="A date (2026-11-01) or a span back from now (7d, 12h, 2w)",
    )
    @app_commands.autocomplete(category=_category_choices)
    @guild_permissions_check(manage_messages=True)
    async def list_incidents(
        self,
        interaction: Interaction,
        user: discord.User | None = None,
        category: str | None = None,
        status: Literal["open", "upheld", "dismissed"] | None = None,
        since: str | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        if category is not None and category not in LIST_CATEGORIES:
            await interaction.response.send_message(
                f"Unknown category {category!r}; expected one of {', '.join(LIST_CATEGORIES)}.",
                ephemeral=True,
            )
            return
        try:
            start = parse_since(since, discord.utils.utcnow()) if since else None
        except ValueError as error:
            await interaction.response.send_message(f"{error}.", ephemeral=True)
            return
        query = ListQuery(interaction.user.id, user.id if user else None, category, status, start)
        content, view = await list_page(self.bot, interaction.guild_id, query)
        await interaction.response.send_message(
            content, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )

    @incidents.command(name="show", description="One incident in full")
    @guild_permissions_check(manage_messages=True)
    async def show(self, interaction: Interaction, incident_id: int) -> None:
        assert interaction.guild_id is not None
        storage = self.bot.storage
        incident = await storage.get_incident(interaction.guild_id, incident_id)
        if incident is None:
            await interaction.response.send_message(
                f"No incident #{incident_id} in this server.", ephemeral=True
            )
            return
        embed = modlog_embed(incident, jump_url=jump_url(incident), points=None)
        outcomes = await storage.list_action_outcomes(incident.guild_id, incident.id)
        presses = await storage.list_modlog_presses(incident.guild_id, incident.id)
        # The warning's DM-budget slot is bookkeeping for a resume, not an action taken.
        hidden = ("note", "report", DM_SLOT)
        done = [f"{o.action}: {o.outcome}" for o in outcomes if o.action not in hidden]
        if done:
            embed.add_field(name="Actions", value=_fit("\n".join(done), 1024), inline=False)
        reports = [
            f"<@{p.moderator_id}> {discord.utils.format_dt(p.at, 'R')}"
            for p in presses
            if p.action == "report"
        ]
        reports += [f"why: {o.detail}" for o in outcomes if o.action == "report" and o.detail]
        if reports:
            embed.add_field(
                name=f"Reported by members ({sum(p.action == 'report' for p in presses)})",
                value=_fit("\n".join(reports), 1024),
                inline=False,
            )
        who = [
            f"{p.action} by <@{p.moderator_id}> {discord.utils.format_dt(p.at, 'R')}"
            for p in presses
            if p.action != "report"
        ]
        who += [f"note: {o.detail}" for o in outcomes if o.action == "note"]
        if who:
            embed.add_field(name="Moderators", value=_fit("\n".join(who), 1024), inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @incidents.command(name="resolve", description="Uphold or dismiss an incident")
    @app_commands.describe(
        outcome="dismissed: a false positive, its strike is removed", note="Why (optional)"
    )
    @guild_permissions_check(manage_messages=True)
    async def resolve(
        self,
        interaction: Interaction,
        incident_id: int,
        outcome: Literal["dismissed", "upheld"],
        note: app_commands.Range[str, 1, 400] | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        if await refuse(
            interaction, "dismiss" if outcome == "dismissed" else "uphold", incident_id=incident_id
        ):
            return
        # Settling may lift a timeout, tell an appellant and edit the mod-log: slow calls.
        if not interaction.response.is_done():  # the permission check may have deferred
            await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.bot.actions.resolve(
            interaction.guild_id, incident_id, outcome, interaction.user.id, note or ""
        )
        if result is None:
            text = f"No incident #{incident_id} in this server."
        else:
            notes = (("its strike was removed",) if result.strike_revoked else ()) + result.notes
            text = f"Incident #{incident_id} marked {outcome}" + "".join(f"; {n}" for n in notes)
            text += "."
        await interaction.followup.send(text, ephemeral=True)

    @incidents.command(name="export", description="Incidents as a CSV file (redacted excerpts)")
    @app_commands.describe(since="A date (2026-11-01) or a span back from now (30d)")
    @guild_permissions_check(manage_messages=True)
    async def export(self, interaction: Interaction, since: str | None = None) -> None:
        assert interaction.guild_id is not None
        now = discord.utils.utcnow()
        try:
            start = parse_since(since, now) if since else None
        except ValueError as error:
            await interaction.response.send_message(f"{error}.", ephemeral=True)
            return
        # A long history takes a while to read and upload.
        await interaction.response.defer(ephemeral=True, thinking=True)
        incidents = await self.bot.storage.incidents_since(interaction.guild_id, start)
        data = incidents_csv(incidents)
        limit = interaction.guild.filesize_limit if interaction.guild else 10 * 1024 * 1024
        if len(data) > limit:
            await interaction.followup.send(
                f"The export would be {len(data) // 1024} KiB, more than Discord accepts here "
                f"({limit // 1024} KiB); ask for less with `since` (e.g. `7d`).",
                ephemeral=True,
            )
            return
        name = f"incidents-{interaction.guild_id}-{now:%Y%m%d}.csv"
        await interaction.followup.send(
            f"{len(incidents)} incident(s)"
            + (f" since {start:%Y-%m-%d %H:%M} UTC" if start else ""),
            file=discord.File(io.BytesIO(data), filename=name),
            ephemeral=True,
        )

    # ------------------------------------------------------------ strikes

    @strikes.command(name="show", description="A member's strikes and next threshold")
    @guild_permissions_check(manage_messages=True)
    async def strikes_show(self, interaction: Interaction, user: discord.User) -> None:
        assert interaction.guild_id is not None
        config = (await self.bot.guild_states.get(interaction.guild_id)).config
        window = config.strike_policy.window
        now = discord.utils.utcnow()
        storage = self.bot.storage
        points = await storage.active_points(interaction.guild_id, user.id, window=window, now=now)
        records = await storage.list_strikes(interaction.guild_id, user.id)
        lines = [f"**Strikes of {user.mention}**", strikes_line(points, config)]
        for s in records[:20]:
            if s.revoked_at is not None:
                state = "revoked"
            elif s.created_at <= now - window:
                state = "expired"
            else:
                state = f"active until {discord.utils.format_dt(s.created_at + window, 'd')}"
            about = f" (incident #{s.incident_id})" if s.incident_id is not None else ""
            when = discord.utils.format_dt(s.created_at, "d")
            lines.append(f"- {s.points} point(s) {when}{about}: {state}")
        if not records:
            lines.append("No strikes recorded.")
        await interaction.response.send_message(_fit("\n".join(lines)), ephemeral=True)

    @strikes.command(name="pardon", description="Revoke all of a member's active strikes")
    @guild_permissions_check(manage_messages=True)
    async def strikes_pardon(self, interaction: Interaction, user: discord.User) -> None:
        assert interaction.guild_id is not None
        if await refuse(interaction, "pardon", target=user):
            return
        # Lifting the timeout the strikes earned fetches the member and edits them.
        if not interaction.response.is_done():  # the permission check may have deferred
            await interaction.response.defer(ephemeral=True, thinking=True)
        pardoned = await self.bot.actions.pardon(interaction.guild_id, user.id, interaction.user.id)
        revoked = pardoned.revoked
        if not revoked:
            text = f"{user.mention} has no active strikes."
        else:
            points = sum(s.points for s in revoked)
            text = (
                f"Pardoned {user.mention}: {len(revoked)} strike(s), {points} point(s) revoked "
                "(recorded)" + "".join(f"; {line}" for line in pardoned.lifted) + "."
            )
        await interaction.followup.send(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: PromptWardenBot) -> None:
    bot.add_dynamic_items(QueueButton, PageButton)
    await bot.add_cog(Incidents(bot))
