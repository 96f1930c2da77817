"""Watch the image-generation channels and act on what screening finds.

Listeners stay cheap: they decide whether a message is in scope and hand it to intake
(promptwarden.intake: order kept per channel, turns shared across guilds and channels,
memory bounded; what does not fit is read back from history later). A worker screens it,
writes the incident first, then acts, recording each action's outcome: delete, DM, strike
and timeout, mod-log entry. When a shard starts or resumes a session, what its guilds
posted while it was away is read from history, and incidents a stop cut short (recorded,
some actions never settled) are finished.

The catch-up cursor of a channel only ever covers a contiguous prefix of handled messages
(see promptwarden.cursors): a message still in flight, or history not yet read after a
lost session, holds it back, so a crash never skips a message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord.ext import commands

from cogs._dm import privacy_config, send_dm
from cogs._incident_ui import (
    IncidentButton,
    attempt,
    delete_incident_message,
    incident_view,
    modlog_embed,
    privacy_text,
    warning_embed,
    warning_view,
)
from cogs._timeouts import already_timed_out, strike_step
from discordbot import PromptWardenBot
from promptwarden.cursors import CursorTracker
from promptwarden.dedupe import SeenCache
from promptwarden.enforcement import (
    GuildState,
    GuildStateCache,
    MessageFacts,
    build_incident,
    incident_plan,
    is_exempt,
    job_identity,
    pii_kinds,
    planned_by_kind,
    responsible_user,
    should_screen,
)
from promptwarden.intake import ChannelUnreadable, Intake, Key
from promptwarden.policy import ActionPlan, plan_actions, strike_detail
from promptwarden.privacy import personal_info_kind
from promptwarden.screening.decision import Decision
from promptwarden.screening.engine import Screener, ScreenerCache
from promptwarden.screening.extract import extract
from promptwarden.storage import RETRYABLE_OUTCOMES, ActionOutcome, Incident

log = logging.getLogger("promptwarden.enforcement")

NOTICE_SECONDS = 30
RETRYABLE = frozenset(RETRYABLE_OUTCOMES)
CURSOR_FLUSH_EVERY = 100
DM_CLOSED_NOTICE = (
    "{mention}, I could not send you a private message about your prompt because your "
    "DMs are closed. Please read this server's guidelines before your next prompt."
)


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
        self.states = GuildStateCache(bot.storage)
        self.screeners = ScreenerCache()
        settings = getattr(bot, "settings", None)
        # Bounded: beyond these a channel's messages are read back from history later.
        self.intake: Intake[discord.Message] = Intake(
            self.handle,
            self._history_page,
            self.tracker,
            max_messages=getattr(settings, "intake_max_messages", 10_000),
            per_channel=getattr(settings, "intake_channel_messages", 2500),
            workers=4,
            after_item=self._after_item,
        )
        # (guild, message, job) already handled here: progress edits cost nothing.
        self.handled = SeenCache(max_items=50_000, ttl=6 * 3600)
        # One cursor tracker per shard: a shard's new session freezes only its guilds.
        self._trackers: dict[int, CursorTracker[Key]] = {}
        self._unflushed = 0
        self._catchup: asyncio.Task[None] | None = None
        # Shards whose catch-up was asked for and not started yet (None: every shard).
        self._catchup_wanted: set[int | None] = set()
        # Messages being handled and incidents being acted on in this process: resuming
        # an incident cut short never runs beside its own handling.
        self._busy_messages: set[int] = set()
        self._busy_incidents: set[int] = set()
        self._screener_locks: dict[int, asyncio.Lock] = {}

    async def cog_unload(self) -> None:
        """A clean stop: take no more messages, let those being handled finish (queued
        ones stay below the saved cursor and are read again on the next start), save the
        cursors; the bot closes the database after this."""
        if self._catchup is not None:
            self._catchup.cancel()
            await asyncio.gather(self._catchup, return_exceptions=True)
        await self.intake.close()
        await self.flush_cursors()

    def shard_of(self, guild_id: int) -> int:
        return (guild_id >> 22) % (self.bot.shard_count or 1)

    def tracker(self, guild_id: int) -> CursorTracker[Key]:
        shard = self.shard_of(guild_id)
        tracker = self._trackers.get(shard)
        if tracker is None:
            tracker = self._trackers[shard] = CursorTracker()
        return tracker

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
    async def on_promptwarden_settings_changed(self, guild_id: int) -> None:
        """Commands that change a guild's settings dispatch this to apply them at once:
        `bot.dispatch("promptwarden_settings_changed", guild_id)`."""
        self.states.invalidate(guild_id)

    @commands.Cog.listener()
    async def on_shard_connect(self, shard_id: int) -> None:
        # A new session of this shard (first start or a lost one): events may have been
        # missed, so none of its cursors moves until catch-up has read its channels.
        self._shard_tracker(shard_id).gap_opened()

    @commands.Cog.listener()
    async def on_shard_disconnect(self, shard_id: int) -> None:
        self._shard_tracker(shard_id).gap_opened()

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        # A shard's READY does not fire `ready` unless every shard re-identified.
        self.start_catch_up(shard_id)

    @commands.Cog.listener()
    async def on_shard_resumed(self, shard_id: int) -> None:
        self.start_catch_up(shard_id)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        self.start_catch_up()

    def _shard_tracker(self, shard_id: int) -> CursorTracker[Key]:
        tracker = self._trackers.get(shard_id)
        if tracker is None:
            tracker = self._trackers[shard_id] = CursorTracker()
        return tracker

    async def consider(self, message: discord.Message, *, counts: bool = False) -> bool:
        """Hold the message for screening when it is in scope; True when held. `counts`: a
        new message that the catch-up cursor must not pass until handled; it is registered
        before the first await, so arrival order holds. Never waits for room: a message
        that does not fit is read back from channel history later (see promptwarden.intake)."""
        intake = self.intake
        if message.guild is None or intake.closed:
            return False
        key = (message.guild.id, message.channel.id)
        if counts:
            if intake.behind(key):
                return intake.offer(key, message.id, message)  # let go, read back later
            intake.begin(key, message.id)
        try:
            in_scope = await self._in_scope(message)
        except BaseException:
            if counts:
                self.tracker(key[0]).hold(key)
                intake.skip(key, message.id)
            if intake.closed:
                return False  # stopping: the database may be closed already
            raise
        if not in_scope:
            if counts:
                intake.skip(key, message.id)
            return False
        return intake.offer(key, message.id, message, counts=counts)

    async def _in_scope(self, message: discord.Message) -> bool:
        facts = message_facts(message)
        me = self.bot.user
        if facts is None or me is None:
            return False
        state = await self.states.get(facts.guild_id)
        return should_screen(facts, state, me.id)

    # ------------------------------------------------------------ one message

    async def handle(self, message: discord.Message) -> bool:
        """Screen and act; True once screened and its incident (if any) recorded. On an
        error intake lets the channel go and reads it again after a backoff."""
        facts = message_facts(message)
        guild = message.guild
        if facts is None or guild is None:
            return True
        self._busy_messages.add(message.id)
        try:
            await self.screen_and_act(message, facts, guild)
        finally:
            self._busy_messages.discard(message.id)
        return True

    async def _after_item(self) -> None:
        self._unflushed += 1
        if not len(self.intake.queue) or self._unflushed >= CURSOR_FLUSH_EVERY:
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
            screener = await self._build_screener(guild.id, state)
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
        # The incident is written before any Discord call: whatever fails next, it stays.
        storage = self.bot.storage
        try:
            incident_id, created = await storage.record_incident(**draft.as_kwargs())
            incident = await storage.get_incident(guild.id, incident_id)
        except BaseException:
            # Not recorded: when the message is read again it must be screened again.
            self.handled.forget((guild.id, message.id, identity))
            raise
        if incident is None:
            return
        if created:
            self._busy_incidents.add(incident.id)
            try:
                await self.act(message, incident, plan, decision, state)
            finally:
                self._busy_incidents.discard(incident.id)
        elif incident.message_id != message.id:
            # Another message of the same job (its result, a re-roll): remove it too,
            # without a second warning or strike.
            if plan.delete:
                await delete_incident_message(
                    self.bot, guild, incident, message_id=message.id, channel_id=message.channel.id
                )
        elif incident.id not in self._busy_incidents:
            # Seen again after a restart, or edited: finish what was not settled yet
            # (failed and rate-limited actions are tried again; the rest are final).
            self._busy_incidents.add(incident.id)
            try:
                done, step = await self._settled_actions(guild.id, incident.id)
                await self.act(message, incident, plan, decision, state, done=done, step=step)
            finally:
                self._busy_incidents.discard(incident.id)

    async def _build_screener(self, guild_id: int, state: GuildState) -> Screener:
        """Compiling a guild's automaton takes a fraction of a second: off the loop, and
        once: the workers that need it meanwhile wait for that one build."""
        lock = self._screener_locks.setdefault(guild_id, asyncio.Lock())
        async with lock:
            screener = self.screeners.cached(guild_id, state.rules)
            if screener is None:
                screener = await asyncio.to_thread(self.screeners.get, guild_id, state.rules)
            return screener

    async def _settled_actions(
        self, guild_id: int, incident_id: int
    ) -> tuple[set[str], tuple[int, int] | None]:
        """Actions with a final outcome, and the strike step already taken (if any)."""
        records = await self.bot.storage.list_action_outcomes(guild_id, incident_id)
        done = {o.action for o in records if o.outcome not in RETRYABLE}
        return done, strike_step(records)

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

    async def _user(self, message: discord.Message, user_id: int) -> discord.User | discord.Member:
        for user in (getattr(message, "author", None), *getattr(message, "mentions", ())):
            if isinstance(user, discord.User | discord.Member) and user.id == user_id:
                return user
        return self.bot.get_user(user_id) or await self.bot.fetch_user(user_id)

    async def act(
        self,
        message: discord.Message,
        incident: Incident,
        plan: ActionPlan,
        decision: Decision,
        state: GuildState,
        *,
        done: set[str] | frozenset[str] = frozenset(),
        step: tuple[int, int] | None = None,
    ) -> None:
        """Each action on its own: a failure is recorded and the next one still runs.

        On a resume (`done` and the stored strike's `step` known), a timeout the strike
        earned but Discord never confirmed (a crash, a 5xx) is applied then, once."""
        guild = message.guild
        assert guild is not None
        storage = self.bot.storage
        config = state.config
        policy = config.strike_policy
        now = discord.utils.utcnow()
        user_id = incident.user_id
        points: int | None = None
        timeout = None

        if plan.delete and "delete" not in done:
            await delete_incident_message(
                self.bot, guild, incident, message_id=message.id, channel_id=message.channel.id
            )

        if plan.strike_points and "strike" not in done:
            try:
                before, points = await storage.add_strike(
                    guild.id,
                    user_id,
                    plan.strike_points,
                    incident_id=incident.id,
                    window=policy.window,
                    now=now,
                )
            except Exception:
                log.exception("incident %d: adding the strike failed", incident.id)
                await storage.record_action_outcome(guild.id, incident.id, "strike", "failed")
            else:
                if before == points:
                    # Stored before a crash that lost its record: the step it made.
                    before = points - await self._stored_strike_points(guild.id, incident)
                detail = strike_detail(plan.strike_points, before, points)
                await storage.record_action_outcome(guild.id, incident.id, "strike", "done", detail)
                timeout = policy.timeout_for(before, points)
        elif plan.warn_member or plan.modlog:
            points = await storage.active_points(guild.id, user_id, window=policy.window, now=now)
        # Not when a moderator has since dismissed the incident or pardoned its strike.
        resumed = bool(
            timeout is None
            and step is not None
            and plan.strike_points
            and "timeout" not in done
            and incident.status != "dismissed"
            and await self._stored_strike_points(guild.id, incident)
        )
        if resumed and step is not None:
            timeout = policy.timeout_for(*step)
            resumed = timeout is not None

        if plan.warn_member and "dm_warning" not in done:
            embed = warning_embed(incident, guild.name, points=points, config=config)
            view = warning_view(incident)

            async def send_warning() -> None:
                user = await self._user(message, user_id)
                if view is None:
                    await send_dm(storage, guild.id, user, embed=embed)
                else:
                    await send_dm(storage, guild.id, user, embed=embed, view=view)

            outcome = await attempt(storage, guild.id, incident.id, "dm_warning", send_warning)
            if outcome == "forbidden":
                await self.dm_closed_notice(message, incident, state)

        if timeout is not None:
            reason = f"PromptWarden: {points} strike points (incident #{incident.id})"

            async def time_out() -> str:
                # On a resume, fresh from Discord: the cached member may predate the first try.
                member = None if resumed else await self._member(message, user_id)
                if member is None:
                    member = await guild.fetch_member(user_id)  # raises NotFound: recorded
                if resumed and await already_timed_out(storage, incident, member, timeout):
                    return f"{timeout} (already applied before a restart)"
                await member.timeout(timeout, reason=reason)
                return str(timeout)

            await attempt(storage, guild.id, incident.id, "timeout", time_out)

        if plan.privacy_notice and "dm_privacy" not in done:
            outcome = await self.send_privacy_reminder(message, incident, plan)
            if outcome == "forbidden":
                await self.dm_closed_notice(message, incident, state)

        if plan.modlog and "modlog" not in done:
            await self.post_modlog(message, incident, state, points, decision.score)

    async def _stored_strike_points(self, guild_id: int, incident: Incident) -> int:
        strikes = await self.bot.storage.list_strikes(guild_id, incident.user_id)
        return next(
            (s.points for s in strikes if s.incident_id == incident.id and s.revoked_at is None),
            0,
        )

    async def dm_closed_notice(
        self, message: discord.Message, incident: Incident, state: GuildState
    ) -> None:
        guild = message.guild
        if not state.config.dm_failure_notice or guild is None:
            return
        channel = message.channel

        async def notice() -> None:
            await channel.send(
                DM_CLOSED_NOTICE.format(mention=f"<@{incident.user_id}>"),
                delete_after=NOTICE_SECONDS,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(incident.user_id)]
                ),
            )

        await attempt(self.bot.storage, guild.id, incident.id, "channel_notice", notice)

    async def send_privacy_reminder(
        self, message: discord.Message, incident: Incident, plan: ActionPlan
    ) -> ActionOutcome:
        """The privacy DM for personal information: at most one per kind of data per
        person per interval, unless the message was deleted (they must learn why)."""
        guild = message.guild
        assert guild is not None
        storage = self.bot.storage
        config = await privacy_config(storage, guild.id)
        kinds = pii_kinds(incident.matches)
        now = discord.utils.utcnow()
        claimed = [
            kind
            for kind in kinds
            if await storage.claim_reminder(
                guild.id,
                incident.user_id,
                personal_info_kind(kind),
                interval=config.reminder_interval,
                now=now,
            )
        ]
        if kinds and not claimed and not plan.delete:
            days = config.reminder_interval.days
            await storage.record_action_outcome(
                guild.id,
                incident.id,
                "dm_privacy",
                "skipped",
                f"warned about {', '.join(kinds)} within the last {days} days",
            )
            return "skipped"
        text = privacy_text(
            kinds, guild.name, deleted=plan.delete, guidelines_url=config.guidelines_url
        )

        async def send() -> None:
            user = await self._user(message, incident.user_id)
            await send_dm(storage, guild.id, user, config=config, content=text)

        outcome = await attempt(storage, guild.id, incident.id, "dm_privacy", send)
        if outcome in ("skipped", "failed", "rate_limited"):
            for kind in claimed:  # never sent: the next prompt may warn again
                await storage.release_reminder(
                    guild.id, incident.user_id, personal_info_kind(kind), sent_at=now
                )
        return outcome

    async def post_modlog(
        self,
        message: discord.Message,
        incident: Incident,
        state: GuildState,
        points: int | None,
        score: float | None,
    ) -> None:
        guild = message.guild
        assert guild is not None
        storage = self.bot.storage
        if state.modlog_channel_id is None:
            await storage.record_action_outcome(
                guild.id, incident.id, "modlog", "skipped", "no mod-log channel set"
            )
            return
        channel = guild.get_channel(state.modlog_channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            await storage.record_action_outcome(
                guild.id, incident.id, "modlog", "not_found", "the mod-log channel is gone"
            )
            return
        embed = modlog_embed(incident, jump_url=message.jump_url, points=points, score=score)

        async def post() -> str:
            entry = await channel.send(embed=embed, view=incident_view(incident.id))
            return f"message {entry.id}"  # where later features find the entry

        await attempt(storage, guild.id, incident.id, "modlog", post)

    # ------------------------------------------------------------ catch-up

    def start_catch_up(self, shard_id: int | None = None) -> None:
        """Catch up `shard_id`'s guilds (None: every shard). A request that arrives while
        a catch-up runs is kept and served when it ends, never dropped."""
        self._catchup_wanted.add(shard_id)
        if self._catchup is None or self._catchup.done():
            self._catchup = asyncio.create_task(self._catch_up_loop(), name="promptwarden-catch-up")

    async def _catch_up_loop(self) -> None:
        while self._catchup_wanted and not self.intake.closed:
            wanted, self._catchup_wanted = self._catchup_wanted, set()
            shards = None if None in wanted else {s for s in wanted if s is not None}
            try:
                await self.catch_up(shards)
            except Exception:
                log.exception("catch-up failed")

    async def catch_up(self, shards: set[int] | None = None) -> int:
        """Finish incidents a stop cut short, then read what was posted in watched channels
        after each channel's cursor up to the newest message (within the guild's window),
        for the guilds of `shards` (None: all); returns how many channels were read.
        Idempotent: a message already handled keeps its one incident."""
        guilds = [g for g in self.bot.guilds if shards is None or self.shard_of(g.id) in shards]
        epochs = {s: t.epoch for s, t in self._trackers.items()}
        complete: dict[int, bool] = {}
        reading = 0
        for guild in guilds:
            shard = self.shard_of(guild.id)
            tracker = self.tracker(guild.id)
            epoch = epochs.setdefault(shard, tracker.epoch)
            self.states.invalidate(guild.id)
            try:
                await self.resume_unsettled(guild)
            except Exception:
                log.exception("resuming the incidents of guild %d failed", guild.id)
            try:
                reading += await self._catch_up_guild(guild, epoch)
            except Exception:
                # Channels not read stay held until the next catch-up.
                complete[shard] = False
                log.exception("catch-up of guild %d failed", guild.id)
            else:
                complete.setdefault(shard, True)
        await self.intake.join()
        for shard, ok in complete.items():
            if ok:
                self._shard_tracker(shard).catch_up_done(epochs[shard])
        if shards is not None:
            for shard in shards - complete.keys():  # a shard without guilds here
                self._shard_tracker(shard).catch_up_done(epochs.get(shard, 0))
        await self.flush_cursors()
        return reading

    async def _catch_up_guild(self, guild: discord.Guild, epoch: int) -> int:
        state = await self.states.get(guild.id)
        if not state.watched:
            return 0
        window_start = discord.utils.utcnow() - state.config.catchup_window
        floor = discord.utils.time_snowflake(window_start)
        reading = 0
        channels: list[discord.TextChannel | discord.Thread] = [
            *guild.text_channels,
            *guild.threads,
        ]
        for channel in channels:
            if not state.in_scope(channel_chain(channel)):
                continue
            if not channel.permissions_for(guild.me).read_message_history:
                log.warning("catch-up: no Read Message History in #%s", channel.name)
                continue
            cursor = await self.bot.storage.get_catchup_cursor(guild.id, channel.id)
            # Intake reads it page by page as room allows; once read through, the
            # channel's cursor may move again.
            self.intake.read((guild.id, channel.id), max(cursor or 0, floor), epoch=epoch)
            reading += 1
        return reading

    async def _history_page(
        self, guild_id: int, channel_id: int, after: int, limit: int
    ) -> list[tuple[int, discord.Message | None]]:
        """A page of the channel's history after `after`, oldest first, with the messages
        out of scope as None (intake's reader)."""
        guild = self.bot.get_guild(guild_id)
        channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
        if guild is None or not isinstance(channel, discord.TextChannel | discord.Thread):
            raise ChannelUnreadable("the channel is gone")
        page: list[tuple[int, discord.Message | None]] = []
        try:
            async for message in channel.history(
                limit=limit, after=discord.Object(after), oldest_first=True
            ):
                page.append((message.id, message if await self._in_scope(message) else None))
        except (discord.NotFound, discord.Forbidden) as error:
            raise ChannelUnreadable(str(error)) from error
        return page

    async def resume_unsettled(self, guild: discord.Guild) -> int:
        """Run the actions a stop left unsettled (none recorded, or failed / rate limited)
        for incidents within the catch-up window; returns how many incidents were resumed.
        The message may be gone: the delete is then recorded as not found, and the warning,
        strike and mod-log entry still happen. A warning DM whose outcome a kill kept from
        being written is sent again (at least once); the incident itself stays one."""
        state = await self.states.get(guild.id)
        config = state.config
        since = discord.utils.utcnow() - config.catchup_window
        storage = self.bot.storage
        resumed = 0
        for incident in await storage.list_unsettled_incidents(
            guild.id, since=since, planned=planned_by_kind(config)
        ):
            if incident.id in self._busy_incidents or incident.message_id in self._busy_messages:
                continue  # being handled right now by its own message
            self._busy_incidents.add(incident.id)
            try:
                done, step = await self._settled_actions(guild.id, incident.id)
                plan = incident_plan(incident, config)
                decision = Decision(
                    prompt=incident.prompt_excerpt,
                    verdict=incident.verdict,
                    severity=incident.severity,
                    categories=incident.categories,
                )
                message = self._stand_in(guild, incident)
                await self.act(message, incident, plan, decision, state, done=done, step=step)
                resumed += 1
            except Exception:
                log.exception("incident %d: resuming its actions failed", incident.id)
            finally:
                self._busy_incidents.discard(incident.id)
        if resumed:
            log.info("guild %d: finished %d incident(s) cut short", guild.id, resumed)
        return resumed

    def _stand_in(self, guild: discord.Guild, incident: Incident) -> Any:
        """The incident's message as far as acting needs it (id, channel, jump link): it
        may be gone from Discord and from the cache."""
        channel = guild.get_channel_or_thread(incident.channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            where = self.bot.get_partial_messageable(incident.channel_id, guild_id=guild.id)
            return where.get_partial_message(incident.message_id or 0)
        return channel.get_partial_message(incident.message_id or 0)

    async def flush_cursors(self) -> None:
        """Cursor writes are batched: losing some on a crash only re-reads messages that
        the unique keys then recognise, so batching loses nothing."""
        pending: dict[Key, int] = {}
        for tracker in self._trackers.values():
            pending.update(tracker.take_advanced())
        self._unflushed = 0
        for (guild_id, channel_id), message_id in pending.items():
            try:
                await self.bot.storage.set_catchup_cursor(guild_id, channel_id, message_id)
            except Exception:
                log.exception("saving the catch-up cursor of channel %d failed", channel_id)


async def setup(bot: PromptWardenBot) -> None:
    bot.add_dynamic_items(IncidentButton)
    await bot.add_cog(Screening(bot))
