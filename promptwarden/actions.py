"""One path from a decision to what the bot does about it.

A decision comes from the watcher's screening, a moderator (a mod-log button, the review
queue, a slash command) or an appeal. `Actions` turns it into steps (delete, warning DM,
strike, timeout, lift, mod-log entry or edit, privacy notice), records each step's
outcome on the incident, and carries the steps out through a `DiscordPort` that the
cogs implement. Because every trigger comes through here, every DM goes through the
budget, every warning carries the Appeal button, and strikes and timeouts follow one set
of rules, whoever decided.

No discord.py here: the service is tested against a real database with a port that
records what it was asked to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from promptwarden.allow_suggestions import RECENT_DISMISSALS, Suggestion, note, reached, suggestions
from promptwarden.enforcement import EnforcementConfig, incident_plan, planned_by_kind
from promptwarden.guild_states import GuildState, GuildStates
from promptwarden.policy import ActionPlan, strike_detail, timeout_to_lift
from promptwarden.privacy import personal_info_kind, personal_info_message, pii_kinds
from promptwarden.screening.decision import Verdict
from promptwarden.storage import (
    DM_SLOT,
    RETRYABLE_OUTCOMES,
    ActionOutcome,
    ActionRecord,
    Appeal,
    AppealDecision,
    ErasureReport,
    Incident,
    IncidentRequest,
    IncidentStatus,
    OutcomeRow,
    RecordedIncident,
    Storage,
    StrikeRecord,
)

log = logging.getLogger("promptwarden.enforcement")

DMKind = Literal["warning", "privacy", "appeal_outcome", "reminder", "export"]
# DMs that answer for an incident may use the whole budget; reminders and exports share
# only part of it, so a flood of them never leaves a warning without a slot.
PRIORITY_DMS: frozenset[str] = frozenset({"warning", "privacy", "appeal_outcome"})
REMINDER_SHARE = 0.5
# How long a held-back DM waits before it is tried again (the budget is per minute).
PENDING_RETRY_SECONDS = 15.0
RETRYABLE = frozenset(RETRYABLE_OUTCOMES)
MANUAL_TIMEOUT = timedelta(hours=1)
# Discord's clock and ours may differ a little; a timeout ending this close counts as ours.
CLOCK_SLACK = timedelta(minutes=1)
NOTE_LIMIT = 400
HELD_BACK = "held back by the DM budget; queued and sent once the budget allows"
# Outcomes written in one transaction at most; more wait for the next.
WRITE_BATCH = 500
# Set while the watcher acts on an incident: its steps' outcomes are written behind.
_BEHIND: ContextVar[bool] = ContextVar("promptwarden_outcomes_behind", default=False)
DM_CLOSED_NOTICE = (
    "{mention}, I could not send you a private message about your prompt because your "
    "DMs are closed. Please read this server's guidelines before your next prompt."
)


# ---------------------------------------------------------------- what the port is asked


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one Discord call went, as recorded on the incident."""

    outcome: ActionOutcome
    detail: str = ""
    message_id: int | None = None  # what a post created
    held_back: bool = False  # not sent: the DM budget said wait

    @property
    def done(self) -> bool:
        return self.outcome == "done"


@dataclass(frozen=True, slots=True)
class DirectMessage:
    """A DM as the service means it; the port renders it (embeds, buttons, files).

    A `warning` is rendered from its incident with the Appeal button, always."""

    kind: DMKind
    guild_id: int
    text: str = ""
    incident: Incident | None = None
    points: int | None = None
    config: EnforcementConfig | None = None
    files: tuple[tuple[str, bytes], ...] = ()  # (file name, content)


@dataclass(frozen=True, slots=True)
class ModlogEntry:
    """A new mod-log message: an incident's (with its buttons), or with `appeal` the
    appeal's (with Accept and Reject)."""

    incident: Incident
    points: int | None = None
    score: float | None = None
    appeal: Appeal | None = None


@dataclass(frozen=True, slots=True)
class ModlogEdit:
    """A change to a posted mod-log message."""

    line: str = ""  # what was decided, appended to the entry
    status: IncidentStatus | None = None
    appeal: Appeal | None = None  # an appeal decided: shown, and its buttons removed
    erase: bool = False  # the member asked for erasure: their words go from the entry


class DiscordPort(Protocol):
    """What the service needs from Discord. Implementations never raise for a failed
    call: they return the outcome (forbidden, not found, rate limited, failed)."""

    async def delete_message(self, guild_id: int, channel_id: int, message_id: int) -> Outcome: ...

    async def send_dm(self, user_id: int, dm: DirectMessage) -> Outcome: ...

    async def timeout(
        self, guild_id: int, user_id: int, duration: timedelta | None, reason: str
    ) -> Outcome:
        """Time the member out for `duration`, or lift a timeout with None."""
        ...

    async def member_timeout(self, guild_id: int, user_id: int) -> tuple[Outcome, datetime | None]:
        """Until when the member is timed out, fresh from Discord (None: not timed out)."""
        ...

    async def post_modlog(self, guild_id: int, channel_id: int, entry: ModlogEntry) -> Outcome: ...

    async def edit_modlog(
        self, guild_id: int, channel_id: int, message_id: int, edit: ModlogEdit
    ) -> Outcome: ...

    async def channel_notice(
        self, guild_id: int, channel_id: int, user_id: int, text: str
    ) -> Outcome: ...

    async def post_note(self, guild_id: int, channel_id: int, text: str) -> Outcome:
        """A plain line for moderators in `channel_id` (the mod-log), mentioning nobody."""
        ...

    def guild_name(self, guild_id: int) -> str:
        """The guild's name for DMs ("the server" when unknown)."""
        ...


# ---------------------------------------------------------------- what the service answers


@dataclass(frozen=True, slots=True)
class Settled:
    strike_revoked: bool
    notes: tuple[str, ...]  # what else followed: the appeal decided, the timeout lifted


@dataclass(frozen=True, slots=True)
class Resolution:
    incident: Incident
    strike_revoked: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pardon:
    revoked: list[StrikeRecord]
    lifted: tuple[str, ...]  # what became of a timeout those strikes earned


@dataclass(frozen=True, slots=True)
class Concluded:
    line: str  # for the appeal's mod-log entry
    lifted: str | None  # what became of a timeout the incident earned, if anything
    told: str  # whether the member got the answer


@dataclass(frozen=True, slots=True)
class Erased:
    report: ErasureReport
    entries_edited: int  # mod-log and appeal messages that no longer quote the member
    entries_failed: int


@dataclass(slots=True)
class _Pending:
    guild_id: int
    incident_id: int
    action: str
    user_id: int
    dm: DirectMessage


def outcome_words(outcome: ActionOutcome) -> str:
    return {
        "done": "done",
        "forbidden": "refused by Discord (missing permission or role too low)",
        "not_found": "already gone",
        "rate_limited": "rate limited, try again",
        "failed": "failed",
        "skipped": "skipped",
    }[outcome]


class OutcomeWrites:
    """The watcher's outcomes, written behind: a step's outcome is queued when Discord
    answers, and a background write commits everything queued, many incidents' steps in
    one transaction. There is no timer: the write starts as soon as the loop gets to it,
    and while one is in flight the next outcomes gather for the one after (at most
    WRITE_BATCH a transaction), so under load batches grow by themselves and when quiet
    an outcome waits for nothing.

    What a crash costs: the outcomes queued or in flight (milliseconds' worth). The
    incident itself was committed before any Discord call, so the next start's resume
    redoes those steps: a delete finds the message gone (recorded as not found), a
    timeout is checked on Discord first, and a warning DM or mod-log entry may go out a
    second time: at most one duplicate per step, only for the steps of that instant."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._queued: list[OutcomeRow] = []
        self._writing: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()  # one write at a time, so rows commit in order
        self.closed = False
        self.transactions = 0  # for status and benchmarks

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, row: OutcomeRow) -> None:
        self._queued.append(row)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.get_running_loop().create_task(
                self._drain(), name="promptwarden-outcome-writes"
            )

    async def _drain(self) -> None:
        while self._queued and not self.closed:
            async with self._turn:
                await self._write(WRITE_BATCH)

    async def _write(self, limit: int) -> None:
        """Write up to `limit` queued rows (taken in batches); never raises."""
        while self._queued and limit > 0:
            batch = self._queued[: min(limit, WRITE_BATCH)]
            del self._queued[: len(batch)]
            limit -= len(batch)
            try:
                await self._storage.add_outcomes(batch)
                self.transactions += 1
            except Exception:
                if self._storage.backend.closed:  # a stop that did not wait for `close`
                    log.warning("%d action outcome(s) not recorded: database closed", len(batch))
                    continue
                log.exception(
                    "%d action outcome(s) not recorded; a restart's resume redoes those steps",
                    len(batch),
                )

    async def flush(self) -> None:
        """Return once every outcome queued before the call is committed: before a read
        that must see them, and at a stop."""
        async with self._turn:
            await self._write(len(self._queued))

    async def close(self) -> None:
        """The last write before the database closes; nothing is queued after it."""
        await self.flush()
        self.closed = True
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)


def warning_slot(records: Collection[ActionRecord]) -> bool | None:
    """The DM-budget slot recorded with an incident for its warning (`DM_SLOT`) while no
    warning was tried yet: True taken, False the budget was spent then. None when none was
    recorded or an attempt (sent, failed, held back) used the answer: a new try asks the
    budget again, as any retry of a held-back warning does."""
    slot: bool | None = None
    for record in records:
        if record.action == "dm_warning":
            return None
        if record.action == DM_SLOT:
            slot = record.outcome == "done"
    return slot


class Acting:
    """The acting on one recorded incident, made now and awaited when its turn comes.

    Its incident is claimed (busy) from the making, so a second sighting meanwhile does
    nothing; closed before it started (the wait was cancelled), it gives the claim back."""

    __slots__ = ("_body", "_release")

    def __init__(self, body: Coroutine[Any, Any, None], release: Callable[[], None] | None) -> None:
        self._body = body
        self._release = release

    def __await__(self) -> Generator[Any, None, None]:
        return self._body.__await__()

    def close(self) -> None:
        if self._release is not None and (
            inspect.getcoroutinestate(self._body) == inspect.CORO_CREATED
        ):
            self._release()
        self._body.close()


class Actions:
    def __init__(
        self,
        storage: Storage,
        port: DiscordPort,
        states: GuildStates,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_seconds: float | None = PENDING_RETRY_SECONDS,
    ) -> None:
        self.storage = storage
        self.port = port
        self.states = states
        self.clock = clock
        # Warning-class DMs the budget held back, sent by `send_pending`: by a task that
        # runs only while some are queued, every `retry_seconds` (None: callers drive it).
        self._pending: dict[tuple[int, int, str], _Pending] = {}
        self._retry_seconds = retry_seconds
        self._drain: asyncio.Task[None] | None = None
        # Incidents being acted on in this process: a resume never runs beside its own
        # handling.
        self.busy: set[int] = set()
        self.writes = OutcomeWrites(storage)

    # ------------------------------------------------------------ recording

    async def _record(
        self,
        guild_id: int,
        incident_id: int,
        action: str,
        outcome: ActionOutcome,
        detail: str,
        *,
        modlog: tuple[int, int] | None = None,
    ) -> None:
        """Record without raising: a database hiccup must not stop the next action. The
        watcher's steps are written behind (`OutcomeWrites`); anything else at once, after
        what is queued, so an incident's history stays in order."""
        # Stamped with the wall clock, as every outcome is.
        row = OutcomeRow(guild_id, incident_id, action, outcome, detail, datetime.now(UTC), modlog)
        if self.writes.closed:
            log.info("incident %d: %s=%s not recorded: stopping", incident_id, action, outcome)
            return
        if _BEHIND.get():
            self.writes.add(row)
            return
        try:
            await self.writes.flush()
            await self.storage.add_outcomes([row])
        except Exception:
            log.exception("incident %d: could not record %s=%s", incident_id, action, outcome)

    async def flush(self) -> None:
        """Commit the outcomes written behind so far (see `OutcomeWrites.flush`)."""
        await self.writes.flush()

    async def _run(
        self,
        guild_id: int,
        incident_id: int,
        action: str,
        call: Callable[[], Awaitable[Outcome]],
        *,
        detail: str = "",
        modlog_channel: int | None = None,
    ) -> Outcome:
        """Run one step and record its outcome; never raises, so one failing step cannot
        skip the next one. With `modlog_channel`, a posted entry's ids go with it."""
        try:
            result = await call()
        except Exception as error:
            log.exception("incident %d: %s failed", incident_id, action)
            result = Outcome("failed", f"{type(error).__name__}: {error}"[:300])
        if result.outcome != "done":
            log.info("incident %d: %s %s: %s", incident_id, action, result.outcome, result.detail)
        posted = None
        if modlog_channel is not None and result.done and result.message_id is not None:
            posted = (modlog_channel, result.message_id)
        await self._record(
            guild_id, incident_id, action, result.outcome, result.detail or detail, modlog=posted
        )
        return result

    # ------------------------------------------------------------ direct messages

    async def deliver_dm(
        self, user_id: int, dm: DirectMessage, *, budget: bool | None = None
    ) -> Outcome:
        """Send one DM within the guild's budget (N a minute). Reminders and exports may
        use only their share of it; held back, the outcome says so (`held_back`).
        `budget`: the slot was asked for already (with the incident) and this is the
        answer."""
        state = await self.states.get(dm.guild_id)
        limit = state.privacy.dm_per_minute
        if dm.kind not in PRIORITY_DMS:
            limit = max(1, int(limit * REMINDER_SHARE))
        if budget is None:
            budget = await self.storage.take_dm_budget(dm.guild_id, limit=limit, now=self.clock())
        if not budget:
            return Outcome(
                "rate_limited" if dm.kind in PRIORITY_DMS else "skipped",
                HELD_BACK if dm.kind in PRIORITY_DMS else f"DM budget of {limit} a minute reached",
                held_back=True,
            )
        return await self.port.send_dm(user_id, dm)

    async def _dm_step(
        self,
        guild_id: int,
        incident_id: int,
        action: str,
        user_id: int,
        dm: DirectMessage,
        *,
        budget: bool | None = None,
    ) -> Outcome:
        """A DM about an incident: recorded; when the budget holds it back it is queued
        (recorded as rate limited, which is retryable, never as final)."""
        outcome = await self._run(
            guild_id, incident_id, action, lambda: self.deliver_dm(user_id, dm, budget=budget)
        )
        if outcome.held_back:
            self._pending[(guild_id, incident_id, action)] = _Pending(
                guild_id, incident_id, action, user_id, dm
            )
            self._start_drain()
        return outcome

    def _start_drain(self) -> None:
        if self._retry_seconds is None or (self._drain is not None and not self._drain.done()):
            return
        self._drain = asyncio.create_task(self._drain_pending(), name="promptwarden-dm-queue")

    async def _drain_pending(self) -> None:
        assert self._retry_seconds is not None
        while self._pending:
            await asyncio.sleep(self._retry_seconds)
            try:
                await self.send_pending()
            except Exception:
                log.exception("sending queued DMs failed; tried again shortly")

    async def close(self) -> None:
        """Stop retrying queued DMs (they are recorded as retryable: a restart's resume
        sends them)."""
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain

    async def finish(self) -> None:
        """Last, before the database closes: commit the outcomes written behind. A step
        finishing after this is not recorded (logged, not an error); resume redoes it."""
        await self.writes.close()

    def pending_dms(self) -> int:
        return len(self._pending)

    async def send_pending(self) -> int:
        """Try the queued DMs again, oldest first; returns how many were sent. Those the
        budget still holds back stay queued; any other outcome settles them."""
        sent = 0
        spent: set[int] = set()  # guilds whose budget is used up for this minute
        for key, item in list(self._pending.items()):
            if item.guild_id in spent:
                continue
            outcome = await self.deliver_dm(item.user_id, item.dm)
            if outcome.held_back:
                spent.add(item.guild_id)  # the rest of that guild's queue waits too
                continue
            del self._pending[key]
            await self._record(
                item.guild_id, item.incident_id, item.action, outcome.outcome, outcome.detail
            )
            sent += outcome.done
        return sent

    async def send_reminder(self, guild_id: int, user_id: int, text: str) -> Outcome:
        return await self.deliver_dm(user_id, DirectMessage("reminder", guild_id, text=text))

    async def send_export(
        self, guild_id: int, user_id: int, text: str, files: tuple[tuple[str, bytes], ...]
    ) -> Outcome:
        return await self.deliver_dm(
            user_id, DirectMessage("export", guild_id, text=text, files=files)
        )

    # ------------------------------------------------------------ strikes

    async def _strike_of(self, incident: Incident, *, active: bool = True) -> StrikeRecord | None:
        strikes = await self.storage.list_strikes(incident.guild_id, incident.user_id)
        return next(
            (
                s
                for s in strikes
                if s.incident_id == incident.id and (s.revoked_at is None or not active)
            ),
            None,
        )

    async def _add_strike(
        self, incident: Incident, points: int, config: EnforcementConfig
    ) -> tuple[int, int, bool] | None:
        """Add the incident's strike and record it; (before, after, was it stored
        already). None when storing failed (recorded)."""
        policy = config.strike_policy
        try:
            before, after = await self.storage.add_strike(
                incident.guild_id,
                incident.user_id,
                points,
                incident_id=incident.id,
                window=policy.window,
                now=self.clock(),
            )
        except Exception:
            log.exception("incident %d: adding the strike failed", incident.id)
            await self._record(incident.guild_id, incident.id, "strike", "failed", "")
            return None
        repeat = before == after
        if repeat:
            # Stored before a stop that lost its record: the step it made is on the row.
            stored = await self._strike_of(incident)
            if stored is not None:
                before, after = stored.points_before, stored.points_after
        await self._record(
            incident.guild_id, incident.id, "strike", "done", strike_detail(points, before, after)
        )
        return before, after, repeat

    async def _time_out(
        self,
        incident: Incident,
        duration: timedelta,
        reason: str,
        *,
        check_first: bool,
    ) -> Outcome:
        """The strike's timeout; with `check_first` (a resume) not again when Discord shows
        it applied already (the first call got through before the process stopped)."""
        guild_id, user_id = incident.guild_id, incident.user_id
        if check_first:
            got, until = await self.port.member_timeout(guild_id, user_id)
            if not got.done:
                return got
            stored = await self._strike_of(incident, active=False)
            if (
                until is not None
                and stored is not None
                and until >= stored.created_at + duration - CLOCK_SLACK
            ):
                return Outcome("done", f"{duration} (already applied before a restart)")
        result = await self.port.timeout(guild_id, user_id, duration, reason)
        return replace(result, detail=result.detail or str(duration)) if result.done else result

    # ------------------------------------------------------------ the watcher

    def handle_recorded(
        self,
        incident: Incident,
        created: bool,
        plan: ActionPlan,
        *,
        channel_id: int,
        message_id: int,
        score: float | None = None,
        recorded: RecordedIncident | None = None,
    ) -> Acting:
        """The watcher recorded (or found) the incident of a message: the acting on it,
        to await now or later (or close, unstarted, to give the claim back).

        New: every step of the plan (but the strike `recorded` already holds). Another
        message of the same job (its result, a re-roll): deleted too, without a second
        warning or strike, unless a moderator dismissed the incident as a false positive
        (then the repost stays up). The same message seen again (an edit, a restart):
        what was not settled yet is finished. Outcomes are written behind.

        The incident counts as busy from this call, not from when the acting starts: the
        watcher may hold it back a while (behind the member's earlier incident), and a
        second sighting of the message meanwhile (a catch-up read) must not act on it too,
        which would delete, warn and post to the mod-log twice."""
        if not created and (incident.message_id != message_id or incident.id in self.busy):
            return Acting(self._delete_repost(incident, plan, channel_id, message_id), None)
        self.busy.add(incident.id)
        body = self._guarded(
            incident,
            plan,
            channel_id,
            message_id,
            score,
            resuming=not created,
            known=recorded if created else None,
        )
        return Acting(body, lambda: self.busy.discard(incident.id))

    async def _delete_repost(
        self, incident: Incident, plan: ActionPlan, channel_id: int, message_id: int
    ) -> None:
        if incident.message_id == message_id:
            return  # being acted on already
        if plan.delete and incident.status != "dismissed":
            behind = _BEHIND.set(True)
            try:
                await self.delete_message(incident, channel_id=channel_id, message_id=message_id)
            finally:
                _BEHIND.reset(behind)

    async def record(
        self,
        fields: Mapping[str, Any],
        plan: ActionPlan,
        *,
        settled: Mapping[str, str] | None = None,
    ) -> RecordedIncident:
        """Record the incident `fields` describe (`Storage.record_incident`'s arguments)
        with what is decided already, in one transaction before any Discord call: the
        plan's strike and its outcome, the `settled` actions (skipped, with their detail),
        the member's active points for the warning and the mod-log entry, and the
        warning's slot in the DM budget. Pass the answer to `handle_recorded` as
        `recorded`."""
        (recorded,) = await self.record_many([(fields, plan, settled)])
        return recorded

    async def record_many(
        self, incidents: Sequence[tuple[Mapping[str, Any], ActionPlan, Mapping[str, str] | None]]
    ) -> list[RecordedIncident]:
        """`record` for several incidents (fields, plan, settled) in one transaction, in
        order: a channel's backlog under load commits once, not once per incident."""
        requests = []
        for fields, plan, settled in incidents:
            state = await self.states.get(int(fields["guild_id"]))
            window = state.config.strike_policy.window
            requests.append(
                IncidentRequest(
                    fields,
                    strike_points=plan.strike_points,
                    window=window
                    if plan.strike_points or plan.warn_member or plan.modlog
                    else None,
                    settled=settled,
                    # The warning's slot in the DM budget, as `deliver_dm` would take it.
                    dm_limit=state.privacy.dm_per_minute if plan.warn_member else None,
                )
            )
        return await self.storage.record_incidents_with(
            requests, now=self.clock(), strike_detail=strike_detail
        )

    async def _guarded(
        self,
        incident: Incident,
        plan: ActionPlan,
        channel_id: int,
        message_id: int | None,
        score: float | None,
        *,
        resuming: bool,
        known: RecordedIncident | None = None,
    ) -> None:
        self.busy.add(incident.id)  # also claimed by `handle_recorded`, before any wait
        behind = _BEHIND.set(True)
        try:
            done: frozenset[str] = frozenset()
            slot: bool | None = None
            if resuming:
                await self.writes.flush()
                records = await self.storage.list_action_outcomes(incident.guild_id, incident.id)
                done = frozenset(r.action for r in records if r.outcome not in RETRYABLE)
                slot = warning_slot(records)
            await self.enforce(
                incident,
                plan,
                channel_id=channel_id,
                message_id=message_id,
                score=score,
                done=done,
                resuming=resuming,
                known=known,
                dm_slot=slot,
            )
        finally:
            _BEHIND.reset(behind)
            self.busy.discard(incident.id)

    async def enforce(
        self,
        incident: Incident,
        plan: ActionPlan,
        *,
        channel_id: int,
        message_id: int | None,
        score: float | None = None,
        done: Collection[str] = frozenset(),
        resuming: bool = False,
        known: RecordedIncident | None = None,
        dm_slot: bool | None = None,
    ) -> None:
        """Each step on its own: a failure is recorded and the next one still runs.

        `known`: recorded with the incident already (its strike, the member's points, its
        warning's DM slot). `dm_slot`: on a resume, the slot recorded with the incident
        and not used by a DM attempt yet (see `warning_slot`).
        On a resume (`done` known), a timeout the strike earned but Discord never
        confirmed (a stop, a 5xx) is applied then, once."""
        guild_id = incident.guild_id
        state = await self.states.get(guild_id)
        config = state.config
        policy = config.strike_policy
        points: int | None = None
        timeout: timedelta | None = None
        check_first = False

        if plan.delete and "delete" not in done:
            await self.delete_message(incident, channel_id=channel_id, message_id=message_id)

        if known is not None and known.created:
            points = known.points
            if known.strike is not None:
                timeout = policy.timeout_for(*known.strike)
        elif plan.strike_points and "strike" not in done:
            added = await self._add_strike(incident, plan.strike_points, config)
            if added is not None:
                before, after, check_first = added
                points = await self.storage.active_points(
                    guild_id, incident.user_id, window=policy.window, now=self.clock()
                )
                timeout = policy.timeout_for(before, after)
        elif plan.warn_member or plan.modlog:
            points = await self.storage.active_points(
                guild_id, incident.user_id, window=policy.window, now=self.clock()
            )
        # Not when a moderator has since dismissed the incident or pardoned its strike.
        if (
            timeout is None
            and resuming
            and plan.strike_points
            and "timeout" not in done
            and incident.status != "dismissed"
        ):
            stored = await self._strike_of(incident)
            if stored is not None:
                timeout = policy.timeout_for(stored.points_before, stored.points_after)
                check_first = True

        if plan.warn_member and "dm_warning" not in done:
            dm = DirectMessage("warning", guild_id, incident=incident, points=points, config=config)
            budget = known.dm_allowed if known is not None and known.created else dm_slot
            outcome = await self._dm_step(
                guild_id, incident.id, "dm_warning", incident.user_id, dm, budget=budget
            )
            if outcome.outcome == "forbidden":
                await self._dm_closed_notice(incident, channel_id, state)

        if timeout is not None:
            reason = f"PromptWarden: {points} strike points (incident #{incident.id})"
            duration = timeout
            await self._run(
                guild_id,
                incident.id,
                "timeout",
                lambda: self._time_out(incident, duration, reason, check_first=check_first),
            )

        if plan.privacy_notice and "dm_privacy" not in done:
            notice = await self.privacy_notice(incident, plan, state)
            if notice == "forbidden":
                await self._dm_closed_notice(incident, channel_id, state)

        if plan.modlog and "modlog" not in done:
            await self.post_incident(incident, state, points, score)

    async def delete_message(
        self,
        incident: Incident,
        *,
        action: str = "delete",
        channel_id: int | None = None,
        message_id: int | None = None,
    ) -> ActionOutcome:
        """Delete the incident's message, or another message of the same job."""
        target = message_id or incident.message_id
        if target is None:
            await self._record(incident.guild_id, incident.id, action, "skipped", "no message id")
            return "skipped"
        where = channel_id or incident.channel_id
        outcome = await self._run(
            incident.guild_id,
            incident.id,
            action,
            lambda: self.port.delete_message(incident.guild_id, where, target),
            detail=f"{where}/{target}",
        )
        return outcome.outcome

    async def _dm_closed_notice(
        self, incident: Incident, channel_id: int, state: GuildState
    ) -> None:
        if not state.config.dm_failure_notice:
            return
        text = DM_CLOSED_NOTICE.format(mention=f"<@{incident.user_id}>")
        await self._run(
            incident.guild_id,
            incident.id,
            "channel_notice",
            lambda: self.port.channel_notice(incident.guild_id, channel_id, incident.user_id, text),
        )

    async def privacy_notice(
        self, incident: Incident, plan: ActionPlan, state: GuildState
    ) -> ActionOutcome:
        """The privacy DM for personal information: at most one per kind of data per
        person per interval, unless the message was deleted (they must learn why)."""
        storage = self.storage
        guild_id, user_id = incident.guild_id, incident.user_id
        config = state.privacy
        kinds = pii_kinds(incident.matches)
        now = self.clock()
        claimed = [
            kind
            for kind in kinds
            if await storage.claim_reminder(
                guild_id,
                user_id,
                personal_info_kind(kind),
                interval=config.reminder_interval,
                now=now,
            )
        ]
        if kinds and not claimed and not plan.delete:
            days = config.reminder_interval.days
            await self._record(
                guild_id,
                incident.id,
                "dm_privacy",
                "skipped",
                f"warned about {', '.join(kinds)} within the last {days} days",
            )
            return "skipped"
        text = personal_info_message(
            kinds,
            self.port.guild_name(guild_id),
            deleted=plan.delete,
            guidelines_url=config.guidelines_url,
        )
        dm = DirectMessage("privacy", guild_id, text=text, incident=incident)
        outcome = await self._dm_step(guild_id, incident.id, "dm_privacy", user_id, dm)
        if outcome.outcome in ("skipped", "failed", "rate_limited") and not outcome.held_back:
            for kind in claimed:  # never sent: the next prompt may warn again
                await storage.release_reminder(
                    guild_id, user_id, personal_info_kind(kind), sent_at=now
                )
        return outcome.outcome

    async def post_incident(
        self, incident: Incident, state: GuildState, points: int | None, score: float | None
    ) -> None:
        """The incident's mod-log entry; where it went is stored on the incident."""
        channel_id = state.modlog_channel_id
        if channel_id is None:
            await self._record(
                incident.guild_id, incident.id, "modlog", "skipped", "no mod-log channel set"
            )
            return
        entry = ModlogEntry(incident, points=points, score=score)
        await self._run(
            incident.guild_id,
            incident.id,
            "modlog",
            lambda: self.port.post_modlog(incident.guild_id, channel_id, entry),
            modlog_channel=channel_id,
        )

    async def resume_unsettled(
        self, guild_id: int, *, skip: Callable[[Incident], bool] = lambda _: False
    ) -> int:
        """Run the steps a stop left unsettled (none recorded, or failed / rate limited)
        for incidents within the catch-up window; returns how many were resumed. The
        message may be gone: the delete is then recorded as not found, and the warning,
        strike and mod-log entry still happen."""
        state = await self.states.get(guild_id)
        config = state.config
        since = self.clock() - config.catchup_window
        resumed = 0
        await self.writes.flush()  # what is settled must show as settled
        for incident in await self.storage.list_unsettled_incidents(
            guild_id, since=since, planned=planned_by_kind(config)
        ):
            if incident.id in self.busy or skip(incident):
                continue  # being handled right now by its own message
            try:
                await self._guarded(
                    incident,
                    incident_plan(incident, config),
                    incident.channel_id,
                    incident.message_id,
                    None,
                    resuming=True,
                )
                resumed += 1
            except Exception:
                log.exception("incident %d: resuming its actions failed", incident.id)
        if resumed:
            log.info("guild %d: finished %d incident(s) cut short", guild_id, resumed)
        return resumed

    # ------------------------------------------------------------ moderators

    async def annotate_modlog(
        self, incident: Incident, line: str, status: IncidentStatus | None
    ) -> bool:
        """Add a decision to the incident's mod-log entry, so the mod-log never shows an
        open incident that was settled elsewhere. Best effort: False when there is no
        entry or it cannot be edited."""
        await self.writes.flush()  # the entry's ids may be queued still
        fresh = await self.storage.get_incident(incident.guild_id, incident.id) or incident
        return await self._edit_entry("incident", fresh, ModlogEdit(line=line, status=status))

    async def _edit_entry(self, what: str, row: Incident | Appeal, edit: ModlogEdit) -> bool:
        """Edit the mod-log message stored for an incident or an appeal, if there is one."""
        if row.modlog_channel_id is None or row.modlog_message_id is None:
            return False
        result = await self.port.edit_modlog(
            row.guild_id, row.modlog_channel_id, row.modlog_message_id, edit
        )
        if not result.done:
            log.info("%s %d: mod-log entry not updated: %s", what, row.id, result.detail)
        return result.done

    async def press(
        self, incident: Incident, action: str, moderator_id: int, moderator_name: str
    ) -> tuple[str, IncidentStatus | None]:
        """A mod-log button: returns the line for the entry and the new status."""
        guild_id = incident.guild_id
        mention = f"<@{moderator_id}>"
        await self.storage.record_modlog_press(guild_id, incident.id, moderator_id, action)
        if action in ("dismiss", "uphold"):
            status: IncidentStatus = "dismissed" if action == "dismiss" else "upheld"
            settled = await self.settle(incident, status, moderator_id)
            line = (
                f"Dismissed as a false positive by {mention}"
                if status == "dismissed"
                else f"Upheld by {mention}"
            )
            notes = (("strike removed",) if settled.strike_revoked else ()) + settled.notes
            return line + "".join(f"; {note}" for note in notes), status
        if action == "timeout":
            reason = f"PromptWarden incident #{incident.id} by {moderator_name}"
            outcome = await self._run(
                guild_id,
                incident.id,
                "manual_timeout",
                lambda: self.port.timeout(guild_id, incident.user_id, MANUAL_TIMEOUT, reason),
                detail=str(moderator_id),
            )
            return f"Time out 1 h by {mention}: {outcome_words(outcome.outcome)}", None
        deleted = await self.delete_message(incident, action="manual_delete")
        return f"Delete message by {mention}: {outcome_words(deleted)}", None

    async def settle(
        self, incident: Incident, status: IncidentStatus, moderator_id: int
    ) -> Settled:
        """Uphold or dismiss, the same way from every place a moderator can. A dismissal
        is a false positive: its strike goes, and so does a timeout it alone earned. An
        open appeal is decided along with it and the member hears the outcome."""
        guild_id = incident.guild_id
        dismissed = status == "dismissed"
        notes: list[str] = []
        revoked = False
        closed = await self.close_open_appeal(guild_id, incident.id, dismissed, moderator_id)
        if closed is not None:
            decision, concluded = closed
            revoked = decision.strike_revoked
            verb = "accepted" if dismissed else "rejected"
            notes.append(f"appeal #{decision.appeal.id} {verb}, {concluded.told}")
            if concluded.lifted:
                notes.append(concluded.lifted)
        await self.storage.set_incident_status(guild_id, incident.id, status)
        if dismissed:
            revoked = (
                await self.storage.revoke_strike_for_incident(guild_id, incident.id) or revoked
            )
            if closed is None:  # accepting the appeal has lifted the timeout already
                lifted = await self.lift_unearned_timeout(incident, moderator_id)
                if lifted:
                    notes.append(lifted)
                await self.suggest_allow_listing(incident)
        return Settled(revoked, tuple(notes))

    async def allow_suggestions(self, guild_id: int) -> list[Suggestion]:
        """Terms moderators keep dismissing as false positives, most dismissed first."""
        state = await self.states.get(guild_id)
        dismissed = await self.storage.find_incidents(
            guild_id, status="dismissed", limit=RECENT_DISMISSALS
        )
        return suggestions((i.matches for i in dismissed), state.rules.allow_terms)

    async def suggest_allow_listing(self, incident: Incident) -> None:
        """After `incident` was dismissed: a mod-log note for each term it brought to the
        threshold, or kept above it. Best effort: the dismissal stands whatever happens."""
        try:
            found = reached(await self.allow_suggestions(incident.guild_id), incident.matches)
            state = await self.states.get(incident.guild_id)
            if found and state.modlog_channel_id is not None:
                text = "\n".join(note(s) for s in found)
                await self.port.post_note(incident.guild_id, state.modlog_channel_id, text)
        except Exception:  # a suggestion must never turn a done dismissal into an error
            log.exception("incident %d: allow-list suggestion not posted", incident.id)

    async def resolve(
        self,
        guild_id: int,
        incident_id: int,
        status: IncidentStatus,
        moderator_id: int,
        note: str = "",
    ) -> Resolution | None:
        """`/incidents resolve` and the review queue: None when the guild has no such
        incident."""
        storage = self.storage
        incident = await storage.get_incident(guild_id, incident_id)
        if incident is None:
            return None
        await storage.record_modlog_press(
            guild_id, incident_id, moderator_id, "dismiss" if status == "dismissed" else "uphold"
        )
        settled = await self.settle(incident, status, moderator_id)
        if note:
            await self._record(
                guild_id, incident_id, "note", "done", f"<@{moderator_id}>: {note[:NOTE_LIMIT]}"
            )
        notes = (("strike removed",) if settled.strike_revoked else ()) + settled.notes
        line = ("Dismissed as a false positive" if status == "dismissed" else "Upheld") + (
            f" by <@{moderator_id}>" + "".join(f"; {n}" for n in notes)
        )
        await self.annotate_modlog(incident, line, status)
        updated = await storage.get_incident(guild_id, incident_id)
        return Resolution(updated or incident, settled.strike_revoked, settled.notes)

    async def warn(self, incident: Incident, moderator_id: int) -> str:
        """A moderator upholds a `review` incident as a warning: the watcher's `warn`
        steps (DM with the Appeal button, within the budget; strike; a timeout when a
        threshold is crossed). Returns a summary line."""
        guild_id = incident.guild_id
        state = await self.states.get(guild_id)
        config = state.config
        policy = config.strike_policy
        await self.storage.record_modlog_press(guild_id, incident.id, moderator_id, "warn")
        await self.storage.set_incident_status(guild_id, incident.id, "upheld")
        warned = replace(incident, verdict=Verdict.WARN, status="upheld")
        points_to_add = policy.points.get(Verdict.WARN, 0)
        timeout = None
        if points_to_add:
            added = await self._add_strike(warned, points_to_add, config)
            if added is not None:
                timeout = policy.timeout_for(added[0], added[1])
        points = await self.storage.active_points(
            guild_id, incident.user_id, window=policy.window, now=self.clock()
        )
        dm = DirectMessage("warning", guild_id, incident=warned, points=points, config=config)
        sent = await self._dm_step(guild_id, incident.id, "dm_warning", incident.user_id, dm)
        line = (
            f"warned (DM: {'queued' if sent.held_back else sent.outcome}), {points} active point(s)"
        )
        await self.annotate_modlog(incident, f"Warned by <@{moderator_id}>", "upheld")
        if timeout is not None:
            reason = f"PromptWarden: {points} strike points (incident #{incident.id})"
            duration = timeout
            outcome = await self._run(
                guild_id,
                incident.id,
                "timeout",
                lambda: self._time_out(warned, duration, reason, check_first=False),
            )
            line += f", timed out ({outcome.outcome})"
        return line

    async def pardon(self, guild_id: int, user_id: int, moderator_id: int) -> Pardon:
        """Revoke every active strike of the member, recording the pardon on each
        incident; a timeout the strikes earned goes with them."""
        state = await self.states.get(guild_id)
        revoked = await self.storage.revoke_active_strikes(
            guild_id, user_id, window=state.config.strike_policy.window, now=self.clock()
        )
        lifted: list[str] = []
        for strike in revoked:
            if strike.incident_id is None:
                continue
            await self.storage.record_modlog_press(
                guild_id, strike.incident_id, moderator_id, "pardon"
            )
            incident = await self.storage.get_incident(guild_id, strike.incident_id)
            if incident is not None and not lifted:
                line = await self.lift_unearned_timeout(incident, moderator_id)
                if line:
                    lifted.append(line)
        return Pardon(revoked, tuple(lifted))

    async def lift_unearned_timeout(self, incident: Incident, moderator_id: int) -> str | None:
        """After a dismissal or pardon: end the timeout this incident's strike caused when
        the member's remaining points no longer earn it. Returns a line for the mod-log,
        or None when there was nothing to lift."""
        guild_id = incident.guild_id
        await self.writes.flush()
        records = await self.storage.list_action_outcomes(guild_id, incident.id)
        timeouts = [r for r in records if r.action in ("timeout", "timeout_lifted")]
        if not timeouts or timeouts[-1].action != "timeout" or timeouts[-1].outcome != "done":
            return None
        strike = await self._strike_of(incident, active=False)
        if strike is None:
            return None
        policy = (await self.states.get(guild_id)).config.strike_policy
        now = self.clock()
        points = await self.storage.active_points(
            guild_id, incident.user_id, window=policy.window, now=now
        )
        got, until = await self.port.member_timeout(guild_id, incident.user_id)
        if not got.done:
            log.info("incident %d: timeout not checked: %s", incident.id, got.detail)
            return None
        step = (strike.points_before, strike.points_after)
        if not timeout_to_lift(policy, *step, points, timed_out_until=until, now=now):
            return None
        reason = (
            f"PromptWarden: incident #{incident.id} dismissed by moderator {moderator_id}; "
            f"{points} strike point(s) left"
        )
        outcome = await self._run(
            guild_id,
            incident.id,
            "timeout_lifted",
            lambda: self.port.timeout(guild_id, incident.user_id, None, reason),
            detail=f"{points} point(s) left",
        )
        if outcome.done:
            return "timeout lifted"
        return f"timeout not lifted ({outcome.outcome.replace('_', ' ')})"

    # ------------------------------------------------------------ appeals

    async def post_appeal(self, incident: Incident, appeal: Appeal) -> bool:
        """The appeal's mod-log entry; where it went is stored on the appeal. True when
        posted."""
        guild_id = incident.guild_id
        channel_id = (await self.states.get(guild_id)).modlog_channel_id
        if channel_id is None:
            await self._record(
                guild_id,
                incident.id,
                "appeal_modlog",
                "skipped",
                f"appeal #{appeal.id}: no mod-log channel",
            )
            return False
        entry = ModlogEntry(incident, appeal=appeal)

        async def post() -> Outcome:
            result = await self.port.post_modlog(guild_id, channel_id, entry)
            if result.done and result.message_id is not None:
                await self.storage.set_appeal_modlog(
                    guild_id, appeal.id, channel_id, result.message_id
                )
            return replace(result, detail=result.detail or f"appeal #{appeal.id}")

        return (await self._run(guild_id, incident.id, "appeal_modlog", post)).done

    async def decide_appeal(
        self, guild_id: int, appeal_id: int, accept: bool, moderator_id: int
    ) -> tuple[AppealDecision, Concluded] | None:
        """Accept or Reject: None when the appeal is not open (decided once, however many
        moderators press)."""
        decision = await self.storage.decide_appeal(
            guild_id,
            appeal_id,
            "accepted" if accept else "rejected",
            moderator_id,
            now=self.clock(),
        )
        if decision is None:
            return None
        action = "appeal_accept" if accept else "appeal_reject"
        return decision, await self.conclude(guild_id, decision, moderator_id, action=action)

    async def conclude(
        self, guild_id: int, decision: AppealDecision, moderator_id: int, *, action: str
    ) -> Concluded:
        """What follows a decided appeal, however it was decided: the press recorded, a
        timeout the incident no longer earns lifted, the member told by DM."""
        storage = self.storage
        appeal = decision.appeal
        incident_id = appeal.incident_id
        guild_name = self.port.guild_name(guild_id)
        lifted: str | None = None
        if appeal.status == "accepted":
            revoked = decision.strike_revoked
            line = f"Accepted by <@{moderator_id}>: incident dismissed" + (
                ", strike removed" if revoked else ""
            )
            answer = (
                f"Your appeal of incident #{incident_id} in {guild_name} was accepted: the "
                "warning was withdrawn" + (" and its strike removed." if revoked else ".")
            )
            incident = await storage.get_incident(guild_id, incident_id)
            if incident is not None:
                lifted = await self.lift_unearned_timeout(incident, moderator_id)
                await self.suggest_allow_listing(incident)
            if lifted:
                line += f", {lifted}"
                if lifted == "timeout lifted":
                    answer += " Your timeout was lifted."
        else:
            line = f"Rejected by <@{moderator_id}>: the decision stands"
            answer = (
                f"Your appeal of incident #{incident_id} in {guild_name} was rejected by the "
                "moderators; the decision stands."
            )
        await storage.record_modlog_press(guild_id, incident_id, moderator_id, action)
        dm = DirectMessage("appeal_outcome", guild_id, text=answer)
        outcome = await self._dm_step(
            guild_id, incident_id, "dm_appeal_outcome", appeal.user_id, dm
        )
        if outcome.done:
            told = "member told by DM"
        elif outcome.held_back:
            told = "the member will be told by DM shortly (queued)"
        else:
            told = f"the member could not be told by DM ({outcome.outcome.replace('_', ' ')})"
        return Concluded(f"{line}; {told}", lifted, told)

    async def close_open_appeal(
        self, guild_id: int, incident_id: int, accept: bool, moderator_id: int
    ) -> tuple[AppealDecision, Concluded] | None:
        """A moderator settled the incident itself while its appeal was open: decide the
        appeal the same way, tell the member and mark the appeal's mod-log entry."""
        appeals = await self.storage.list_appeals(guild_id, incident_id)
        open_ones = [a for a in appeals if a.status == "open"]
        if not open_ones:
            return None
        decided = await self.decide_appeal(guild_id, open_ones[-1].id, accept, moderator_id)
        if decided is None:
            return None  # decided by someone else meanwhile
        decision, concluded = decided
        await self.mark_appeal_entry(decision.appeal, concluded.line)
        return decided

    async def mark_appeal_entry(self, appeal: Appeal, line: str) -> bool:
        """Best effort: show the decision on the appeal's mod-log entry, buttons gone."""
        stored = await self.storage.get_appeal(appeal.guild_id, appeal.id) or appeal
        return await self._edit_entry("appeal", stored, ModlogEdit(line=line, appeal=stored))

    # ------------------------------------------------------------ erasure

    async def erase_member(self, user_id: int) -> Erased:
        """`/privacy delete`: erase the member's words in storage, then edit the mod-log
        and appeal messages recorded for their incidents so Discord stops showing them."""
        await self.writes.flush()  # mod-log entries posted a moment ago are edited too
        data = await self.storage.export_member_data(user_id)
        report = await self.storage.erase_member_data(user_id)
        targets = [
            (i.guild_id, i.modlog_channel_id, i.modlog_message_id)
            for i in data.incidents
            if i.modlog_channel_id is not None and i.modlog_message_id is not None
        ] + [
            (a.guild_id, a.modlog_channel_id, a.modlog_message_id)
            for a in data.appeals
            if a.modlog_channel_id is not None and a.modlog_message_id is not None
        ]
        edited = failed = 0
        for guild_id, channel_id, message_id in targets:
            assert channel_id is not None and message_id is not None
            result = await self.port.edit_modlog(
                guild_id, channel_id, message_id, ModlogEdit(erase=True)
            )
            if result.done or result.outcome == "not_found":
                edited += result.done
            else:
                failed += 1
                log.warning(
                    "erasure: mod-log message %d in channel %d not edited: %s",
                    message_id,
                    channel_id,
                    result.detail,
                )
        return Erased(report, edited, failed)
