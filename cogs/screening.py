"""Watch the image-generation channels and act on what screening finds.

Listeners stay cheap: they decide whether a message is in scope and queue it per channel
(order kept per channel, memory bounded). A worker screens it, writes the incident first,
then acts, recording each action's outcome: delete, DM, strike and timeout, mod-log entry.
On start and on reconnect, what was posted while the bot was away is read from history,
and incidents a stop cut short (recorded, some actions never settled) are finished.

The catch-up cursor of a channel only ever covers a contiguous prefix of handled messages
(see promptwarden.cursors): a message still in flight, or history not yet read after a
lost session, holds it back, so a crash never skips a message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import discord
from discord.ext import commands

from cogs._incident_ui import IncidentButton
from discordbot import PromptWardenBot
from promptwarden.cursors import CursorTracker
from promptwarden.dedupe import SeenCache
from promptwarden.enforcement import (
    IncidentDraft,
    MessageFacts,
    build_incident,
    is_exempt,
    job_identity,
    responsible_user,
    should_screen,
)
from promptwarden.guild_states import GuildState
from promptwarden.policy import ActionPlan, plan_actions
from promptwarden.screening.decision import Decision
from promptwarden.screening.engine import ScreenerCache
from promptwarden.screening.extract import extract
from promptwarden.storage import Incident
from promptwarden.workqueue import KeyedWorkQueue

log = logging.getLogger("promptwarden.enforcement")

CURSOR_FLUSH_EVERY = 100


def channel_chain(channel: Any) -> tuple[int | None, ...]:
    """The channel, its parent (threads and forum posts) and the category above them."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        return (channel.id, channel.parent_id, getattr(parent, "category_id", None))
    return (channel.id, None, getattr(channel, "category_id", None))


def message_facts(message: discord.Message) -> MessageFacts | None:
    if message.guild is None:
        return None
    return MessageFacts(
        guild_id=message.guild.id,
        channel_id=message.channel.id,
        message_id=message.id,
        author_id=message.author.id,
        author_is_bot=message.author.bot,
        content=message.content,
        created_at=message.created_at,
        channel_chain=channel_chain(message.channel),
        webhook_id=message.webhook_id,
    )


class Screening(commands.Cog):
    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot
        self.states = bot.guild_states
        self.screeners = ScreenerCache()
        # (message, counts for the cursor): edits re-screen an old message, not a new one.
        self.queue: KeyedWorkQueue[tuple[discord.Message, bool]] = KeyedWorkQueue(
            self.handle, workers=4, capacity=1000
        )
        # (guild, message, job) already handled here: progress edits cost nothing.
        self.handled = SeenCache(max_items=50_000, ttl=6 * 3600)
        self.cursors: CursorTracker[tuple[int, int]] = CursorTracker()
        self._unflushed = 0
        self._catchup: asyncio.Task[int] | None = None
        self._catchup_again = False
        # Messages being handled in this process: resuming an incident cut short never
        # runs beside its own handling (the service tracks the incidents themselves).
        self._busy_messages: set[int] = set()

    async def cog_unload(self) -> None:
        await self.queue.close()
        await self.flush_cursors()

    # ------------------------------------------------------------ events

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        await self.consider(message, counts=True)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        # Raw, so edits of messages not in the cache (Midjourney progress) are seen too.
        if "content" not in payload.data:
            return  # an embed or link preview was added, not the text
        before = payload.cached_message
        if before is not None and before.content == payload.message.content:
            return
        await self.consider(payload.message)

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        # A new session (first start or a lost one): events may have been missed, so no
        # cursor moves until catch-up has read each channel's history.
        self.cursors.gap_opened()

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        self.cursors.gap_opened()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        self.start_catch_up()

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self.start_catch_up()

    async def consider(self, message: discord.Message, *, counts: bool = False) -> bool:
        """Queue the message when it is in scope; True when queued. `counts`: a new message
        (live or from history) that the catch-up cursor must not pass until handled; it is
        registered before the first await, so arrival order holds even under backpressure."""
        key = (message.guild.id, message.channel.id) if message.guild else None
        if counts and key is not None:
            self.cursors.begin(key, message.id)
        queued = False
        try:
            queued = await self._queue_if_in_scope(message, counts)
        except BaseException:
            if counts and key is not None:
                self.cursors.hold(key)
            raise
        finally:
            if counts and key is not None and not queued:
                self.cursors.finish(key, message.id, handled=False)
        return queued

    async def _queue_if_in_scope(self, message: discord.Message, counts: bool) -> bool:
        facts = message_facts(message)
        me = self.bot.user
        if facts is None or me is None:
            return False
        state = await self.states.get(facts.guild_id)
        if not should_screen(facts, state, me.id):
            return False
        await self.queue.put(message.channel.id, (message, counts))
        return True

    # ------------------------------------------------------------ one message

    async def handle(self, item: tuple[discord.Message, bool]) -> None:
        message, counts = item
        facts = message_facts(message)
        guild = message.guild
        if facts is None or guild is None:
            return
        key = (facts.guild_id, facts.channel_id)
        handled = False
        self._busy_messages.add(message.id)
        try:
            await self.screen_and_act(message, facts, guild)
            handled = True
        finally:
            self._busy_messages.discard(message.id)
            if counts:
                if not handled:
                    # Not screened, or its incident not known to be recorded: the cursor
                    # stays below it, so the next catch-up reads it again.
                    self.cursors.hold(key)
                self.cursors.finish(key, facts.message_id, handled=handled)
                self._unflushed += 1
            if self.queue.pending() == 0 or self._unflushed >= CURSOR_FLUSH_EVERY:
                await self.flush_cursors()

    async def screen_and_act(
        self, message: discord.Message, facts: MessageFacts, guild: discord.Guild
    ) -> None:
        state = await self.states.get(guild.id)
        prompt = extract(facts.content, author_is_bot=facts.author_is_bot)
        user_id = responsible_user(facts, state, prompt)
        if user_id is None:
            return
        keyer = self.bot.job_keyer
        identity = job_identity(keyer, guild.id, user_id, prompt.text, facts.created_at)
        if not self.handled.mark((guild.id, message.id, identity)):
            return  # a progress edit of a job screened here already
        # The privacy cog reminds people, on their first prompt, that this channel is public.
        self.bot.dispatch("promptwarden_prompt", message, user_id)
        screener = self.screeners.cached(guild.id, state.rules)
        if screener is None:
            # Compiling a guild's automaton takes a fraction of a second: off the loop.
            screener = await asyncio.to_thread(self.screeners.get, guild.id, state.rules)
        decision = screener.screen(
            facts.content, author_is_bot=facts.author_is_bot, extracted=prompt
        )
        config = state.config
        plan = plan_actions(
            decision, config.strike_policy, delete_personal_info=config.delete_personal_info
        )
        if not plan.record or await self.exempt(message, user_id, state):
            return
        draft = build_incident(facts, decision, plan, user_id=user_id, prompt=prompt, keyer=keyer)
        await self.record_and_act(message, draft, plan, decision, resume=True)

    async def record_and_act(
        self,
        message: Any,
        draft: IncidentDraft,
        plan: ActionPlan,
        decision: Decision,
        *,
        settled: Mapping[str, str] | None = None,
        resume: bool = False,
    ) -> tuple[Incident | None, bool]:
        """Write the incident, then hand it to the actions service: the one place incidents
        are recorded, whatever raised them (screening, an AutoMod hit, a member's report).

        `message` is the message or a stand-in for it (id, channel). `settled` names
        actions with nothing to do (e.g. deleting a message AutoMod blocked), recorded as
        skipped with the detail given, so a resume after a stop does not try them. An
        incident that existed already is acted on only with `resume` (the watcher seeing
        a message again). Returns the incident (None if it vanished) and whether it was new.
        """
        # The incident is written before any Discord call: whatever fails next, it stays.
        storage = self.bot.storage
        incident_id, created = await storage.record_incident(**draft.as_kwargs())
        incident = await storage.get_incident(draft.guild_id, incident_id)
        if incident is None:
            return None, False
        if created:
            for action, detail in (settled or {}).items():
                await storage.record_action_outcome(
                    draft.guild_id, incident.id, action, "skipped", detail
                )
        if created or resume:
            await self.bot.actions.handle_recorded(
                incident,
                created,
                plan,
                channel_id=message.channel.id,
                message_id=message.id,
                score=decision.score,
            )
        return incident, created

    async def exempt(self, message: discord.Message, user_id: int, state: GuildState) -> bool:
        config = state.config
        if not config.moderators_exempt and not config.exempt_role_ids:
            return False
        member = await self._member(message, user_id)
        if member is None:
            return False  # left the server, or unknown: not exempt
        channel = message.channel
        if isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            permissions = channel.permissions_for(member)
        else:
            permissions = member.guild_permissions
        return is_exempt((r.id for r in member.roles), permissions.manage_messages, config)

    async def _member(self, message: discord.Message, user_id: int) -> discord.Member | None:
        guild = message.guild
        assert guild is not None
        # A message rebuilt for an incident cut short knows no author or mentions.
        candidates = [getattr(message, "author", None), *getattr(message, "mentions", ())]
        for user in candidates:
            if isinstance(user, discord.Member) and user.id == user_id:
                return user
        member = guild.get_member(user_id)
        if member is not None:
            return member
        try:
            return await guild.fetch_member(user_id)
        except discord.HTTPException:
            return None

    # ------------------------------------------------------------ catch-up

    def start_catch_up(self) -> None:
        if self._catchup is None or self._catchup.done():
            self._catchup = asyncio.create_task(self.catch_up(), name="promptwarden-catch-up")
        else:
            self._catchup_again = True  # a newer session: read again once this run ends

    async def catch_up(self) -> int:
        """Finish incidents a stop cut short, then queue what was posted in watched channels
        after each channel's cursor up to the newest message (within the guild's window);
        returns how many messages were queued. Idempotent: a message already handled keeps
        its one incident."""
        queued = 0
        while True:
            self._catchup_again = False
            epoch = self.cursors.epoch
            complete = True
            for guild in list(self.bot.guilds):
                try:
                    await self.resume_unsettled(guild)
                except Exception:
                    log.exception("resuming the incidents of guild %d failed", guild.id)
                try:
                    queued += await self._catch_up_guild(guild, epoch)
                except Exception:
                    # Channels not read stay held until the next catch-up.
                    complete = False
                    log.exception("catch-up of guild %d failed", guild.id)
            if complete:
                self.cursors.catch_up_done(epoch)
            if not self._catchup_again:
                break
        await self.queue.join()
        await self.flush_cursors()
        if queued:
            log.info("catch-up: screened %d message(s) posted while away", queued)
        return queued

    async def _catch_up_guild(self, guild: discord.Guild, epoch: int) -> int:
        state = await self.states.get(guild.id)
        if not state.watched:
            return 0
        window_start = discord.utils.utcnow() - state.config.catchup_window
        floor = discord.utils.time_snowflake(window_start)
        queued = 0
        channels: list[discord.TextChannel | discord.Thread] = [
            *guild.text_channels,
            *guild.threads,
        ]
        for channel in channels:
            if not state.in_scope(channel_chain(channel)):
                continue
            key = (guild.id, channel.id)
            if not channel.permissions_for(guild.me).read_message_history:
                log.warning("catch-up: no Read Message History in #%s", channel.name)
                continue
            cursor = await self.bot.storage.get_catchup_cursor(guild.id, channel.id)
            after = discord.Object(max(cursor or 0, floor))
            try:
                async for message in channel.history(limit=None, after=after, oldest_first=True):
                    queued += await self.consider(message, counts=True)
            except discord.HTTPException as error:
                log.warning("catch-up: reading #%s failed: %s", channel.name, error)
                self.cursors.hold(key)  # the cursor stays: the next catch-up reads it again
            else:
                # Everything up to the newest message is queued (and counted in flight):
                # from here the cursor may move over what is handled.
                self.cursors.caught_up(key, epoch)
        return queued

    async def resume_unsettled(self, guild: discord.Guild) -> int:
        """Finish the incidents a stop cut short (see `Actions.resume_unsettled`), except
        those whose message is being handled right now."""
        busy = self._busy_messages
        return await self.bot.actions.resume_unsettled(
            guild.id, skip=lambda incident: incident.message_id in busy
        )

    async def flush_cursors(self) -> None:
        """Cursor writes are batched: losing some on a crash only re-reads messages that
        the unique keys then recognise, so batching loses nothing."""
        pending = self.cursors.take_advanced()
        self._unflushed = 0
        for (guild_id, channel_id), message_id in pending.items():
            try:
                await self.bot.storage.set_catchup_cursor(guild_id, channel_id, message_id)
            except Exception:
                log.exception("saving the catch-up cursor of channel %d failed", channel_id)


async def setup(bot: PromptWardenBot) -> None:
    bot.add_dynamic_items(IncidentButton)
    await bot.add_cog(Screening(bot))
