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
from collections.abc import Coroutine, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import discord
from discord.ext import commands

from cogs._facts import Arrival, channel_chain
from cogs._incident_ui import IncidentButton
from discordbot import PromptWardenBot
from promptwarden.actions import Acting
from promptwarden.config import DEFAULT_INTAKE_CHANNEL_MESSAGES, DEFAULT_INTAKE_MAX_MESSAGES
from promptwarden.cursors import CursorTracker
from promptwarden.dedupe import SeenCache
from promptwarden.enforcement import (
    IncidentDraft,
    MessageFacts,
    build_incident,
    is_exempt,
    responsible_user,
    should_screen,
)
from promptwarden.guild_states import GuildState
from promptwarden.intake import HANDLED, ChannelUnreadable, Intake, Key, Read
from promptwarden.policy import ActionPlan, plan_actions
from promptwarden.screening.decision import Decision
from promptwarden.screening.engine import Screener, ScreenerCache
from promptwarden.screening.extract import ExtractedPrompt, extract
from promptwarden.storage import Incident, RecordedIncident

log = logging.getLogger("promptwarden.enforcement")

CURSOR_FLUSH_EVERY = 100  # handled messages per cursor save
# Recorded incidents being acted on apart from their channel's queue; beyond this the
# channel waits (memory stays bounded, and Discord's rate limits apply anyway).
ACTING_MAX = 64
# A channel's queued messages handled together: their incidents are recorded in one
# transaction, so a backlog drains as fast as it builds.
BATCH = 32
RESUME_FIRST, RESUME_MAX = 1.0, 30.0  # after acting failed: finish the guild's incidents


@dataclass(frozen=True, slots=True)
class Screened:
    """What screening found in a prompt that needs an incident (or the exemption check
    first): the part of handling that needs no await."""

    prompt: ExtractedPrompt
    user_id: int
    seen: Hashable  # its key in `Screening.handled`
    decision: Decision
    plan: ActionPlan


@dataclass(slots=True)
class Work:
    """A message for intake (its facts read once, in its arrival) and, when it was screened
    on arrival already, what is left to do."""

    arrival: Arrival
    screened: Screened | None = None

    @property
    def message(self) -> discord.Message:
        return self.arrival.message


class Screening(commands.Cog):
    def __init__(self, bot: PromptWardenBot) -> None:
        self.bot = bot
        self.states = bot.guild_states
        self.screeners = ScreenerCache()
        settings = getattr(bot, "settings", None)
        # Bounded: beyond these a channel's messages are read back from history later.
        self.intake: Intake[Work] = Intake(
            self.handle,
            self._history_page,
            self.tracker,
            max_messages=getattr(settings, "intake_max_messages", DEFAULT_INTAKE_MAX_MESSAGES),
            per_channel=getattr(
                settings, "intake_channel_messages", DEFAULT_INTAKE_CHANNEL_MESSAGES
            ),
            workers=4,
            batch=BATCH,
            after_items=self._after_items,
        )
        # (guild, message, job) already handled here: progress edits cost nothing.
        self.handled = SeenCache(max_items=50_000, ttl=6 * 3600)
        # One cursor tracker per shard: a shard's new session freezes only its guilds.
        self._trackers: dict[int, CursorTracker[Key]] = {}
        self._unflushed = 0
        self._catchup: asyncio.Task[None] | None = None
        # Shards whose catch-up was asked for and not started yet (None: every shard).
        self._catchup_wanted: set[int | None] = set()
        # Messages being handled in this process: resuming an incident cut short never
        # runs beside its own handling (the service tracks the incidents themselves).
        self._busy_messages: set[int] = set()
        self._screener_locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acting_room = asyncio.Semaphore(ACTING_MAX)
        # (guild, member) -> the last of their incidents being acted on: one member's
        # incidents are acted on in order (strikes add up, DMs arrive in turn).
        self._acting: dict[tuple[int, int], asyncio.Task[None]] = {}
        # guild -> the task that finishes its unsettled incidents again, after a failure
        self._resuming: dict[int, asyncio.Task[None]] = {}

    async def cog_load(self) -> None:
        self.bot.message_hooks.append(self.message_arrived)

    async def cog_unload(self) -> None:
        """A clean stop: take no more messages, let those being handled finish (queued
        ones stay below the saved cursor and are read again on the next start), save the
        cursors; the bot closes the database after this."""
        if self.message_arrived in self.bot.message_hooks:
            self.bot.message_hooks.remove(self.message_arrived)
        if self._catchup is not None:
            self._catchup.cancel()
            await asyncio.gather(self._catchup, return_exceptions=True)
        await self.intake.close()
        for task in list(self._resuming.values()):
            task.cancel()  # left to the next start's catch-up
            await asyncio.gather(task, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush_cursors()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def shard_of(self, guild_id: int) -> int:
        return (guild_id >> 22) % (self.bot.shard_count or 1)

    def tracker(self, guild_id: int) -> CursorTracker[Key]:
        return self._shard_tracker(self.shard_of(guild_id))

    # ------------------------------------------------------------ events

    def message_arrived(self, arrival: Arrival) -> None:
        """Every new message, called in place by the bot's gateway parser (no task per
        message, no discord.Message unless needed): see `consider_now`; a guild whose
        settings are not loaded yet takes the slower way."""
        if not self.consider_now(arrival, counts=True):
            self._spawn(self.consider(arrival, counts=True), "promptwarden-consider")

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self._warm(guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._warm(guild.id)

    async def _warm(self, guild_id: int) -> None:
        """Load a guild's settings and compile its screener as it becomes available, so
        its first prompts take the quick way."""
        try:
            state = await self.states.get(guild_id)
            if state.watched and self.screeners.cached(guild_id, state.rules) is None:
                await self._build_screener(guild_id, state)
        except Exception:
            if not self.intake.closed:
                log.exception("loading the settings of guild %d failed", guild_id)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        # Raw, so edits of messages not in the cache (Midjourney progress) are seen too.
        if "content" not in payload.data:
            return  # an embed or link preview was added, not the text
        before = payload.cached_message
        if before is not None and before.content == payload.message.content:
            return
        arrival = Arrival.of(payload.message)
        if not self.consider_now(arrival):
            await self.consider(arrival)

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

    def consider_now(self, arrival: Arrival, *, counts: bool = False) -> bool:
        """`consider` without an await, for the common case: the guild's settings are
        cached. True when the message was dealt with: out of scope, held by intake, or
        screened right here, an allowed prompt then finished at once (its cursor mark in
        memory, no query, no queue). Screening needs no order; what does (recording and
        acting) is queued behind the channel's earlier messages, and the cursor only
        passes a contiguous run of finished ones. False: the caller must `consider` it."""
        intake = self.intake
        facts = arrival.facts
        if facts is None or intake.closed:
            return True
        guild_id = facts.guild_id
        state = self.states.cached(guild_id)
        if state is None:
            return False
        key = (guild_id, facts.channel_id)
        message_id = facts.message_id
        if counts and intake.behind(key):
            intake.offer(key, message_id, Work(arrival))  # let go, read back later
            return True
        me = self.bot.user
        if me is None or not should_screen(facts, state, me.id):
            return True
        if counts:
            intake.begin(key, message_id)
        work = Work(arrival)
        screener = self.screeners.cached(guild_id, state.rules)
        if screener is not None and intake.accepting(key):
            try:
                work.screened = self.screen_arrived(
                    arrival, facts, state, screener, queued=not intake.idle(key)
                )
            except BaseException:
                if counts:
                    self.tracker(key[0]).hold(key)
                    intake.skip(key, message_id)
                raise
            if work.screened is None:
                if counts:
                    intake.handled_now(key, message_id)
                    self._note_handled()
                return True
        arrival.hold()
        intake.offer(key, message_id, work, counts=counts)
        return True

    async def consider(self, arrival: Arrival, *, counts: bool = False) -> bool:
        """Hold the message for screening when it is in scope; True when held. `counts`: a
        new message that the catch-up cursor must not pass until handled; it is registered
        before the first await, so arrival order holds. Never waits for room: a message
        that does not fit is read back from channel history later (see promptwarden.intake)."""
        intake = self.intake
        facts = arrival.facts
        if facts is None or intake.closed:
            return False
        key = (facts.guild_id, facts.channel_id)
        message_id = facts.message_id
        if counts:
            if intake.behind(key):
                return intake.offer(key, message_id, Work(arrival))  # let go, read back later
            intake.begin(key, message_id)
        try:
            in_scope = await self._in_scope(facts)
        except BaseException:
            if counts:
                self.tracker(key[0]).hold(key)
                intake.skip(key, message_id)
            if intake.closed:
                return False  # stopping: the database may be closed already
            raise
        if not in_scope:
            if counts:
                intake.skip(key, message_id)
            return False
        arrival.hold()
        return intake.offer(key, message_id, Work(arrival), counts=counts)

    async def _in_scope(self, facts: MessageFacts | None) -> bool:
        me = self.bot.user
        if facts is None or me is None:
            return False
        state = await self.states.get(facts.guild_id)
        return should_screen(facts, state, me.id)

    # ------------------------------------------------------------ one message

    async def handle(self, works: list[Work]) -> int:
        """Screen consecutive messages of one channel, record their incidents in one
        transaction, then act on each; returns how many are handled (all, or none on an
        error: intake then lets the channel go and reads it again after a backoff)."""
        facts = works[0].arrival.facts
        if facts is None:
            return len(works)
        guild_id = facts.guild_id
        state = await self.states.get(guild_id)
        screener = self.screeners.cached(guild_id, state.rules)
        if screener is None and any(w.screened is None for w in works):
            screener = await self._build_screener(guild_id, state)
        found: list[tuple[Arrival, Screened]] = []
        marked: list[Hashable] = []
        try:
            for work in works:
                arrival, facts = work.arrival, work.arrival.facts
                if facts is None:
                    continue
                screened = work.screened
                if screened is None:
                    assert screener is not None
                    screened = self.screen(arrival, facts, state, screener)
                    if screened is None:
                        continue
                else:
                    # Screened on arrival (its seen-mark may wait till now: see
                    # `consider_now`). A failure lets the channel be read back: not seen
                    # then, so screened again (an incident recorded already is found).
                    self.handled.mark(screened.seen)
                marked.append(screened.seen)
                found.append((arrival, screened))
            if found:
                await self.act(found, state)
        except BaseException:
            for seen in marked:
                self.handled.forget(seen)
            raise
        return len(works)

    async def _after_items(self, count: int) -> None:
        self._note_handled(count)

    def _note_handled(self, count: int = 1) -> None:
        """Messages left intake. Cursor saves are batched, one per CURSOR_FLUSH_EVERY
        messages (and at the end of a catch-up and at the stop), so an allowed prompt
        costs no query. No timer: a crash before a save only reads those messages again,
        which their unique keys recognise."""
        self._unflushed += count
        if self._unflushed >= CURSOR_FLUSH_EVERY and not self.intake.closed:
            self._unflushed = 0
            self._spawn(self.flush_cursors(), "promptwarden-cursor-save")

    def screen(
        self, arrival: Arrival, facts: MessageFacts, state: GuildState, screener: Screener
    ) -> Screened | None:
        """The part of handling without an await; None when nothing is to be recorded
        (not a prompt, a progress edit of a job screened already, or allowed)."""
        prompt = extract(facts.content, author_is_bot=facts.author_is_bot)
        user_id = responsible_user(facts, state, prompt)
        if user_id is None:
            return None
        # One message's prompt, as its job key would tell it (same requester, same text; the
        # day is the message's own): a plain hash, the keyed job hash only for incidents.
        seen = (facts.guild_id, facts.message_id, user_id, hash(prompt.text))
        if not self.handled.mark(seen):
            return None  # a progress edit of a job screened here already
        # The privacy cog reminds people, on their first prompt, that this channel is public.
        self.bot.prompt_seen(arrival, user_id)
        decision = screener.screen(
            facts.content, author_is_bot=facts.author_is_bot, extracted=prompt
        )
        config = state.config
        plan = plan_actions(
            decision, config.strike_policy, delete_personal_info=config.delete_personal_info
        )
        if not plan.record:
            return None
        return Screened(prompt, user_id, seen, decision, plan)

    def screen_arrived(
        self,
        arrival: Arrival,
        facts: MessageFacts,
        state: GuildState,
        screener: Screener,
        *,
        queued: bool,
    ) -> Screened | None:
        """`screen` for a message as it comes in, live or read back from history. One
        that will wait `queued` behind the channel's earlier messages may be let go with
        them (a failure reads the channel back and screens it again): it is not marked as
        seen until it is handled (`handle` marks it), or the read-back would drop it."""
        screened = self.screen(arrival, facts, state, screener)
        if screened is not None and queued:
            self.handled.forget(screened.seen)
        return screened

    async def act(self, found: list[tuple[Arrival, Screened]], state: GuildState) -> None:
        """Record the incidents screening asked for (members exempt left out) in one
        transaction, then act on each.

        Acting (delete, DM, strike, mod-log entry: several Discord calls and writes) goes
        on apart from the channel's queue once the incident is recorded, so the channel's
        next messages are screened meanwhile; the message stays busy until it is done. A
        stop waits for it; what a crash cuts short is an incident recorded and not
        settled, which the next catch-up finishes."""
        busy = self._busy_messages
        ids = [arrival.message.id for arrival, _ in found]
        busy.update(ids)
        apart: set[int] = set()
        try:
            todo: list[tuple[discord.Message, Screened, IncidentDraft]] = []
            for arrival, screened in found:
                message, facts = arrival.message, arrival.facts
                if facts is None or await self.exempt(message, screened.user_id, state):
                    continue
                draft = build_incident(
                    facts,
                    screened.decision,
                    screened.plan,
                    user_id=screened.user_id,
                    prompt=screened.prompt,
                    keyer=self.bot.job_keyer,
                )
                todo.append((message, screened, draft))
            if not todo:
                return
            # Written before any Discord call, with strikes and DM slots: whatever fails
            # next, they stay.
            recorded = await self.bot.actions.record_many(
                [(draft.as_kwargs(), screened.plan, None) for _, screened, draft in todo]
            )
            for (message, screened, _), one in zip(todo, recorded, strict=True):
                if await self._act_on(message, screened, one):
                    apart.add(message.id)
        finally:
            busy.difference_update(i for i in ids if i not in apart)

    async def _act_on(
        self, message: discord.Message, screened: Screened, recorded: RecordedIncident
    ) -> bool:
        """Act on a recorded incident; True when it goes on apart (see `act`)."""
        incident, created = recorded.incident, recorded.created
        closed = self.intake.closed
        if not closed:
            await self._acting_room.acquire()
        acting = self.bot.actions.handle_recorded(
            incident,
            created,
            screened.plan,
            channel_id=message.channel.id,
            message_id=message.id,
            score=screened.decision.score,
            recorded=recorded,
        )
        if closed:
            await acting
            return False
        member = (incident.guild_id, incident.user_id)
        task = asyncio.get_running_loop().create_task(
            self._act_apart(self._acting.get(member), member, message.id, acting),
            name="promptwarden-act",
        )
        self._acting[member] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _act_apart(
        self,
        after: asyncio.Task[None] | None,
        member: tuple[int, int],
        message_id: int,
        acting: Acting,
    ) -> None:
        try:
            if after is not None:
                await asyncio.gather(after, return_exceptions=True)
            await acting
        except Exception:
            # E.g. the database locked past its timeout while an outcome was written:
            # the guild's unsettled incidents are finished again soon, not at the next
            # reconnect.
            log.exception("acting on the incident of message %d failed", message_id)
            guild_id = member[0]
            if not self.intake.closed and guild_id not in self._resuming:
                self._resuming[guild_id] = asyncio.get_running_loop().create_task(
                    self._resume_later(guild_id), name="promptwarden-resume"
                )
        finally:
            acting.close()  # cancelled while waiting its turn: gives its claim back
            self._acting_room.release()
            self._busy_messages.discard(message_id)
            if self._acting.get(member) is asyncio.current_task():
                del self._acting[member]

    async def _resume_later(self, guild_id: int) -> None:
        delay = RESUME_FIRST
        try:
            while not self.intake.closed:
                await asyncio.sleep(delay)
                guild = self.bot.get_guild(guild_id)
                if guild is None or self.intake.closed:
                    return
                try:
                    await self.resume_unsettled(guild)
                    return
                except Exception as error:
                    delay = min(delay * 2, RESUME_MAX)
                    log.warning("guild %d: finishing incidents failed (%s)", guild_id, error)
        finally:
            self._resuming.pop(guild_id, None)

    async def record_and_act(
        self,
        message: Any,
        draft: IncidentDraft,
        plan: ActionPlan,
        decision: Decision,
        *,
        settled: Mapping[str, str] | None = None,
        resume: bool = False,
        unrecorded: Hashable | None = None,
    ) -> tuple[Incident | None, bool]:
        """Write the incident, then hand it to the actions service: the one place incidents
        are recorded, whatever raised them (screening, an AutoMod hit, a member's report).

        `message` is the message or a stand-in for it (id, channel). `settled` names
        actions with nothing to do (e.g. deleting a message AutoMod blocked), recorded as
        skipped with the detail given, so a resume after a stop does not try them. An
        incident that existed already is acted on only with `resume` (the watcher seeing
        a message again). `unrecorded`: the `handled` key to forget when recording fails,
        so the message is screened again when intake reads it back. Returns the incident
        (None if it vanished) and whether it was new.
        """
        recorded = await self.record(draft, plan, settled=settled, unrecorded=unrecorded)
        incident, created = recorded.incident, recorded.created
        if created or resume:
            await self.bot.actions.handle_recorded(
                incident,
                created,
                plan,
                channel_id=message.channel.id,
                message_id=message.id,
                score=decision.score,
                recorded=recorded,
            )
        return incident, created

    async def record(
        self,
        draft: IncidentDraft,
        plan: ActionPlan,
        *,
        settled: Mapping[str, str] | None = None,
        unrecorded: Hashable | None = None,
    ) -> RecordedIncident:
        """The recording half of `record_and_act`."""
        # The incident is written before any Discord call, with its strike and the settled
        # actions in the same transaction: whatever fails next, it stays.
        try:
            return await self.bot.actions.record(draft.as_kwargs(), plan, settled=settled)
        except BaseException:
            if unrecorded is not None:
                self.handled.forget(unrecorded)
            raise

    async def _build_screener(self, guild_id: int, state: GuildState) -> Screener:
        """Compiling a guild's automaton takes a fraction of a second: off the loop, and
        once: the workers that need it meanwhile wait for that one build."""
        lock = self._screener_locks.setdefault(guild_id, asyncio.Lock())
        async with lock:
            screener = self.screeners.cached(guild_id, state.rules)
            if screener is None:
                screener = await asyncio.to_thread(self.screeners.get, guild_id, state.rules)
            return screener

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
    ) -> list[tuple[int, Work | Read | None]]:
        """A page of the channel's history after `after`, oldest first, with the messages
        out of scope as None (intake's reader). With the guild's screener compiled, each
        message is screened here, as a live one is: an allowed prompt is HANDLED at once
        and only what needs an incident is held, so a backlog read back costs no more
        memory or work than one that fitted."""
        guild = self.bot.get_guild(guild_id)
        channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
        if guild is None or not isinstance(channel, discord.TextChannel | discord.Thread):
            raise ChannelUnreadable("the channel is gone")
        page: list[tuple[int, Work | Read | None]] = []
        try:
            # Payloads, newest first as Discord answers: a discord.Message is built only
            # for what goes on (as for the gateway's messages), not for each allowed prompt.
            data = await self.bot.http.logs_from(channel.id, min(limit, 100), after=after)
        except (discord.NotFound, discord.Forbidden) as error:
            raise ChannelUnreadable(str(error)) from error
        connection = self.bot._connection
        state = await self.states.get(guild_id)
        screener = self.screeners.cached(guild_id, state.rules)
        me = self.bot.user
        for raw in reversed(data):
            arrival = Arrival.from_payload(connection, cast("dict[str, Any]", raw), channel, guild)
            facts = arrival.facts
            if facts is None or me is None or not should_screen(facts, state, me.id):
                page.append((int(raw["id"]), None))
                continue
            work = Work(arrival)
            if screener is not None:
                # Held behind the channel's earlier messages, being read back.
                work.screened = self.screen_arrived(arrival, facts, state, screener, queued=True)
                if work.screened is None:
                    page.append((facts.message_id, HANDLED))
                    continue
                arrival.hold()
            page.append((facts.message_id, work))
        return page

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
        pending: dict[Key, int] = {}
        for tracker in self._trackers.values():
            pending.update(tracker.take_advanced())
        self._unflushed = 0
        if not pending:
            return
        try:
            await self.bot.storage.set_catchup_cursors(pending)
        except Exception:
            log.exception("saving the catch-up cursors of %d channel(s) failed", len(pending))


async def setup(bot: PromptWardenBot) -> None:
    bot.add_dynamic_items(IncidentButton)
    await bot.add_cog(Screening(bot))
