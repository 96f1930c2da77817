"""The Discord side of `promptwarden.actions`: the port that carries out its steps.

Each method makes one Discord call (or a fetch and an edit) and returns its outcome;
rendering lives here too, so what a member or moderator sees is built in one place: a
warning always with its Appeal button, an incident entry with its buttons, an appeal
entry with Accept and Reject.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord

from cogs._appeals import appeal_embed, appeal_view, decided_embed, decision_view
from cogs._incident_ui import (
    incident_jump_url,
    incident_view,
    modlog_embed,
    warning_embed,
    with_outcome,
)
from cogs._outcomes import outcome_of
from promptwarden.actions import DirectMessage, ModlogEdit, ModlogEntry, Outcome
from promptwarden.storage import ERASED_TEXT

if TYPE_CHECKING:
    from discordbot import PromptWardenBot

NOTICE_SECONDS = 30
# Fields that quote the member (their prompt, the words matched in it).
QUOTING_FIELDS = frozenset({"Matched words", "Prompt", "Your prompt"})


async def _call(call: Awaitable[Any]) -> Outcome:
    try:
        await call
    except Exception as error:  # every failure is an outcome to record, not a crash
        outcome, detail = outcome_of(error)
        return Outcome(outcome, detail)
    return Outcome("done")


def erased_embed(embed: discord.Embed) -> discord.Embed:
    """A mod-log entry after its member's erasure: their words gone, the decision kept."""
    updated = embed.copy()
    updated.description = ERASED_TEXT
    for index, embed_field in enumerate(updated.fields):
        if embed_field.name in QUOTING_FIELDS:
            updated.set_field_at(
                index, name=embed_field.name, value=ERASED_TEXT, inline=embed_field.inline
            )
    return updated


class BotPort:
    """`DiscordPort` over a running bot."""

    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot

    def guild_name(self, guild_id: int) -> str:
        guild = self.bot.get_guild(guild_id)
        return guild.name if guild else "the server"

    def _messageable(self, guild_id: int, channel_id: int) -> Any:
        guild = self.bot.get_guild(guild_id)
        channel = guild.get_channel_or_thread(channel_id) if guild else None
        return channel or self.bot.get_partial_messageable(channel_id, guild_id=guild_id)

    async def _dm_channel(self, user_id: int) -> discord.DMChannel:
        """The member's DM channel, opened by id as `User.create_dm` opens it, and kept in
        discord.py's own cache of DM channels: no user fetch, one REST call fewer per DM
        (the user is rarely cached, as allowed prompts build no discord.Message)."""
        state = self.bot._connection
        channel = state._get_private_channel_by_user(user_id)
        if channel is None:
            channel = state.add_dm_channel(await self.bot.http.start_private_message(user_id))
        return channel

    async def delete_message(self, guild_id: int, channel_id: int, message_id: int) -> Outcome:
        where = self._messageable(guild_id, channel_id)
        return await _call(where.get_partial_message(message_id).delete())

    async def send_dm(self, user_id: int, dm: DirectMessage) -> Outcome:
        try:
            channel = await self._dm_channel(user_id)
            kwargs: dict[str, Any] = {}
            if dm.kind == "warning":
                assert dm.incident is not None and dm.config is not None
                kwargs["embed"] = warning_embed(
                    dm.incident, self.guild_name(dm.guild_id), points=dm.points, config=dm.config
                )
                kwargs["view"] = appeal_view(dm.incident)
            else:
                kwargs["content"] = dm.text
            if dm.files:
                kwargs["files"] = [
                    discord.File(io.BytesIO(content), filename=name) for name, content in dm.files
                ]
            await channel.send(**kwargs)
        except Exception as error:
            outcome, detail = outcome_of(error)
            return Outcome(outcome, detail)
        return Outcome("done")

    async def timeout(
        self, guild_id: int, user_id: int, duration: timedelta | None, reason: str
    ) -> Outcome:
        # By id: no member object (and no fetch) is needed to time someone out.
        until = None if duration is None else (discord.utils.utcnow() + duration).isoformat()
        return await _call(
            self.bot.http.edit_member(
                guild_id, user_id, reason=reason, communication_disabled_until=until
            )
        )

    async def member_timeout(self, guild_id: int, user_id: int) -> tuple[Outcome, datetime | None]:
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return Outcome("not_found", "the server is not available"), None
        try:
            member = await guild.fetch_member(user_id)
        except Exception as error:
            outcome, detail = outcome_of(error)
            return Outcome(outcome, detail), None
        return Outcome("done"), member.timed_out_until

    async def post_modlog(self, guild_id: int, channel_id: int, entry: ModlogEntry) -> Outcome:
        guild = self.bot.get_guild(guild_id)
        channel = guild.get_channel_or_thread(channel_id) if guild else None
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return Outcome("not_found", "the mod-log channel is gone")
        if entry.appeal is not None:
            embed = appeal_embed(entry.incident, entry.appeal)
            view = decision_view(entry.appeal.id)
        else:
            embed = modlog_embed(
                entry.incident,
                jump_url=incident_jump_url(entry.incident),
                points=entry.points,
                score=entry.score,
            )
            view = incident_view(entry.incident.id)
        try:
            posted = await channel.send(embed=embed, view=view)
        except Exception as error:
            outcome, detail = outcome_of(error)
            return Outcome(outcome, detail)
        return Outcome("done", message_id=posted.id)

    async def edit_modlog(
        self, guild_id: int, channel_id: int, message_id: int, edit: ModlogEdit
    ) -> Outcome:
        try:
            channel = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
            message = await channel.fetch_message(message_id)
            if not message.embeds:
                return Outcome("skipped", "the entry has no embed")
            embed = message.embeds[0]
            if edit.erase:
                await message.edit(embed=erased_embed(embed))
            elif edit.appeal is not None:
                await message.edit(embed=decided_embed(embed, edit.line, edit.appeal), view=None)
            else:
                await message.edit(embed=with_outcome(embed, edit.line, edit.status))
        except Exception as error:
            outcome, detail = outcome_of(error)
            return Outcome(outcome, detail)
        return Outcome("done")

    async def post_note(self, guild_id: int, channel_id: int, text: str) -> Outcome:
        where = self._messageable(guild_id, channel_id)
        return await _call(where.send(text, allowed_mentions=discord.AllowedMentions.none()))

    async def channel_notice(
        self, guild_id: int, channel_id: int, user_id: int, text: str
    ) -> Outcome:
        where = self._messageable(guild_id, channel_id)
        return await _call(
            where.send(
                text,
                delete_after=NOTICE_SECONDS,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(user_id)]
                ),
            )
        )
