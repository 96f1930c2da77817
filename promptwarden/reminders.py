"""Who is due a private-mode reminder, decided in memory.

Every prompt in a watched public channel asks "does this person get a reminder now?".
Nearly always the answer is no (they got one within the interval, or opted out), and the
answer must not cost a database round trip per prompt. `ReminderTable` keeps, per guild,
when each member last got a reminder, and each person's own choice (`/privacy reminders`),
seeded from storage the first time a member is seen (members first seen together are read
in one batch) and written behind: a sent reminder is noted in memory at once and saved
with others in one transaction by `flush`, which the owner calls every few seconds, at
once when a batch fills, and on close.

Across a crash only the unsaved batch is lost, and each member in it gets at most one
extra reminder. A person's opt-out and their erasure apply to their very next prompt:
both update the table as they are recorded. Memory is bounded: at most `max_members`
members per guild and `max_entries` members over all guilds, least recently seen dropped
first (a dropped member is read again the next time they prompt).

Kept free of discord.py: the privacy cog calls it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from promptwarden.storage import ReminderRecord, Storage

log = logging.getLogger("promptwarden.privacy")

DEFAULT_MAX_MEMBERS = 50_000  # per guild
DEFAULT_MAX_ENTRIES = 200_000  # over all guilds, and people's choices
# Reminders noted but not yet saved that start a save at once rather than on the timer.
FLUSH_BATCH = 500
# A choice read longer ago than this is read again before a reminder is sent: another
# process (a cluster's other shards) may have recorded an opt-out since.
CHOICE_FRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Claim:
    """A reminder reserved for one member: `confirm` once sent, `release` if not."""

    guild_id: int
    user_id: int
    at: datetime
    previous: datetime | None


@dataclass(eq=False)
class _Seed:
    """Members of one guild read from storage together."""

    guild_id: int
    users: set[int] = field(default_factory=set)
    # Erased while being read: what storage returned for them may be from before.
    skip: set[int] = field(default_factory=set)
    done: asyncio.Future[None] | None = None


class ReminderTable:
    """Reminder decisions for one kind of reminder, per guild and member, in memory."""

    def __init__(
        self,
        storage: Storage,
        kind: str,
        *,
        max_members: int = DEFAULT_MAX_MEMBERS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._storage = storage
        self.kind = kind
        self._max_members = max(1, max_members)
        self._max_entries = max(1, max_entries)
        # Looked up at each call by default, so a test clock patched in later applies.
        self._monotonic = monotonic or (lambda: time.monotonic())
        # guild -> member -> when they last got one (None: never, as far as storage knows).
        self._guilds: OrderedDict[int, OrderedDict[int, datetime | None]] = OrderedDict()
        self._size = 0
        # person -> (their choice or None, when it was read).
        self._choices: OrderedDict[int, tuple[bool | None, float]] = OrderedDict()
        # Sent and not yet saved: (guild, member) -> when.
        self._unsaved: dict[tuple[int, int], datetime] = {}
        self._open: dict[int, _Seed] = {}  # per guild: the read members are joining
        self._reading: dict[_Seed, asyncio.Task[None]] = {}
        self._save_lock = asyncio.Lock()
        self._saving: asyncio.Task[None] | None = None  # a save started by a full batch
        self._closed = False
        self.reads = 0  # seeding round trips, for tests and status

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def unsaved(self) -> int:
        return len(self._unsaved)

    def __len__(self) -> int:
        return self._size

    # ------------------------------------------------------------ deciding

    async def claim(
        self, guild_id: int, user_id: int, *, interval: timedelta, now: datetime
    ) -> Claim | None:
        """Reserve a reminder for the member unless they got one within `interval` or
        opted out. While reserved, their next prompts find it taken; `confirm` keeps it
        (and saves it with the next batch), `release` hands it back. None once closed:
        nothing is read or written after the stop began."""
        while not self._closed:
            members = self._guilds.get(guild_id)
            if members is None or user_id not in members:
                await self._seed(guild_id, user_id)
                continue
            members.move_to_end(user_id)
            self._guilds.move_to_end(guild_id)
            last = members[user_id]
            if last is not None and last > now - interval:
                return None
            choice = self._choices.get(user_id)
            if choice is not None and choice[0] is False:
                return None
            if choice is None or self._monotonic() - choice[1] > CHOICE_FRESH_SECONDS:
                # About to cost a DM: read the choice afresh, since another process (a
                # cluster's other shards) may have recorded an opt-out; then decide again.
                await self._read_choices([user_id])
                self._choices.setdefault(user_id, (None, self._monotonic()))
                continue
            members[user_id] = now
            return Claim(guild_id, user_id, now, last)
        return None

    def not_due(self, guild_id: int, user_id: int, *, interval: timedelta, now: datetime) -> bool:
        """True when the table already knows that `claim` would say no (reminded within
        `interval`, or opted out): the caller needs no task and no await for the prompt.
        False means "ask `claim`", which may read storage."""
        members = self._guilds.get(guild_id)
        last = ... if members is None else members.get(user_id, ...)
        if last is ...:
            return False
        assert members is not None
        members.move_to_end(user_id)
        self._guilds.move_to_end(guild_id)
        if last is not None and last > now - interval:
            return True
        choice = self._choices.get(user_id)
        return choice is not None and choice[0] is False

    def confirm(self, claim: Claim) -> None:
        """The reminder went out (or cannot: DMs closed): note it for the next save."""
        key = (claim.guild_id, claim.user_id)
        noted = self._unsaved.get(key)
        if noted is None or noted < claim.at:
            self._unsaved[key] = claim.at
        idle = self._saving is None or self._saving.done()
        if len(self._unsaved) >= FLUSH_BATCH and idle and not self._closed:
            self._saving = asyncio.get_running_loop().create_task(
                self._save_now(), name="reminders-save"
            )

    def release(self, claim: Claim) -> None:
        """The reminder was not sent: the member's next prompt may try again."""
        members = self._guilds.get(claim.guild_id)
        if members is not None and members.get(claim.user_id) == claim.at:
            members[claim.user_id] = claim.previous

    # ------------------------------------------------------------ the person's rights

    def set_choice(self, user_id: int, enabled: bool) -> None:
        """`/privacy reminders on|off`: applies to the next prompt, in every guild."""
        self._choices[user_id] = (enabled, self._monotonic())
        self._choices.move_to_end(user_id)
        self._trim_choices()

    async def forget_member(self, user_id: int) -> None:
        """Erasure: drop the person from every guild, with their unsaved reminders (after
        a save in progress has finished, so none lands after the erasure)."""
        async with self._save_lock:
            self._choices.pop(user_id, None)
            for key in [k for k in self._unsaved if k[1] == user_id]:
                del self._unsaved[key]
            for guild_id, members in list(self._guilds.items()):
                if members.pop(user_id, ...) is not ...:
                    self._size -= 1
                    if not members:
                        del self._guilds[guild_id]
            for seed in (*self._open.values(), *self._reading.keys()):
                if user_id in seed.users:
                    seed.skip.add(user_id)

    # ------------------------------------------------------------ seeding

    async def _seed(self, guild_id: int, user_id: int) -> None:
        """Read the member from storage, with every other member of the guild asked for
        in the same turn of the event loop (one round trip for a burst of newcomers).
        The caller looks again afterwards: a member erased meanwhile is read again."""
        loop = asyncio.get_running_loop()
        seed = self._open.get(guild_id)
        if seed is None:
            seed = self._open[guild_id] = _Seed(guild_id, done=loop.create_future())
            loop.call_soon(self._start_read, seed)
        seed.users.add(user_id)
        assert seed.done is not None
        # Shielded: one waiting prompt being cancelled must not fail the others' read.
        await asyncio.shield(seed.done)

    def _start_read(self, seed: _Seed) -> None:
        if self._open.get(seed.guild_id) is seed:
            del self._open[seed.guild_id]
        task = asyncio.get_running_loop().create_task(
            self._read(seed), name=f"reminders-seed-{seed.guild_id}"
        )
        self._reading[seed] = task
        task.add_done_callback(lambda _: self._reading.pop(seed, None))

    async def _read(self, seed: _Seed) -> None:
        done = seed.done
        assert done is not None
        try:
            users = sorted(seed.users)
            self.reads += 1
            sent = await self._storage.get_reminders_sent(seed.guild_id, self.kind, users)
            unknown = [u for u in users if u not in self._choices]
            if unknown:
                await self._read_choices(unknown)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as error:
            done.set_exception(error)
            done.exception()  # retrieved: the callers (if any are left) raise it
            return
        for user_id in users:
            if user_id in seed.skip:
                continue
            last = sent.get(user_id)
            for known in (
                self._unsaved.get((seed.guild_id, user_id)),
                self._last(seed.guild_id, user_id),
            ):
                if known is not None and (last is None or known > last):
                    last = known
            self._put(seed.guild_id, user_id, last)
        done.set_result(None)

    def _last(self, guild_id: int, user_id: int) -> datetime | None:
        members = self._guilds.get(guild_id)
        return None if members is None else members.get(user_id)

    async def _read_choices(self, user_ids: list[int]) -> None:
        self.reads += 1
        choices = await self._storage.get_reminder_choices(user_ids)
        now = self._monotonic()
        for user_id in user_ids:
            self._choices[user_id] = (choices.get(user_id), now)
            self._choices.move_to_end(user_id)
        self._trim_choices()

    def _put(self, guild_id: int, user_id: int, last: datetime | None) -> None:
        members = self._guilds.get(guild_id)
        if members is None:
            members = self._guilds[guild_id] = OrderedDict()
        elif user_id in members:
            members[user_id] = last
            members.move_to_end(user_id)
            self._guilds.move_to_end(guild_id)
            return
        self._guilds.move_to_end(guild_id)
        members[user_id] = last
        self._size += 1
        if len(members) > self._max_members:
            members.popitem(last=False)
            self._size -= 1
        while self._size > self._max_entries:
            oldest_guild, oldest = next(iter(self._guilds.items()))
            oldest.popitem(last=False)
            self._size -= 1
            if not oldest:
                del self._guilds[oldest_guild]

    def _trim_choices(self) -> None:
        while len(self._choices) > self._max_entries:
            self._choices.popitem(last=False)

    # ------------------------------------------------------------ writing behind

    async def _save_now(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("saving %d reminder(s) failed; tried again later", self.unsaved)

    async def flush(self) -> int:
        """Save the reminders noted since the last save, in one transaction; returns how
        many. On failure they stay noted for the next try."""
        async with self._save_lock:
            if not self._unsaved:
                return 0
            batch, self._unsaved = self._unsaved, {}
            try:
                await self._storage.save_reminders(
                    [ReminderRecord(g, u, self.kind, at) for (g, u), at in batch.items()]
                )
            except BaseException:
                for key, at in batch.items():
                    newer = self._unsaved.get(key)
                    if newer is None or newer < at:
                        self._unsaved[key] = at
                raise
            return len(batch)

    def stop(self) -> None:
        """Decide no more reminders (claims answer None, nothing is read); reminders
        being sent may still be confirmed, and `close` saves them."""
        self._closed = True

    async def close(self) -> None:
        """Stop, and save what is unsaved: call before storage closes."""
        self.stop()
        for task in list(self._reading.values()):
            task.cancel()
        saving = self._saving
        if saving is not None and saving is not asyncio.current_task():
            await asyncio.gather(saving, return_exceptions=True)
        try:
            await self.flush()
        except Exception:
            log.exception("saving %d reminder(s) on stop failed", self.unsaved)
