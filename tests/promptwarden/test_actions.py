"""The actions service without Discord: a real store on both backends and a port that
records what it is asked to do (a stand-in for Discord, not for project code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from promptwarden.actions import Actions, DirectMessage, ModlogEdit, ModlogEntry, Outcome
from promptwarden.guild_states import GuildStates
from promptwarden.policy import ActionPlan, StrikePolicy, plan_actions
from promptwarden.screening.decision import Decision, Severity, Verdict
from promptwarden.storage import ERASED_TEXT, ActionOutcome, Incident, Storage

GUILD, CHANNEL, MODLOG, MEMBER, MODERATOR = 1, 10, 20, 30, 40


@dataclass
class RecordingPort:
    """Discord as the service sees it: every call noted, every answer chosen by the test."""

    calls: list[tuple[str, object]] = field(default_factory=list)
    dms: list[tuple[int, DirectMessage]] = field(default_factory=list)
    timed_out_until: datetime | None = None
    failing: dict[str, ActionOutcome] = field(default_factory=dict)  # call -> its answer
    next_message_id: int = 1000

    def _answer(self, name: str) -> Outcome:
        failure = self.failing.get(name)
        return Outcome("done") if failure is None else Outcome(failure, f"HTTP error ({failure})")

    def guild_name(self, guild_id: int) -> str:
        return "Prompt Art"

    async def delete_message(self, guild_id: int, channel_id: int, message_id: int) -> Outcome:
        self.calls.append(("delete", (channel_id, message_id)))
        return self._answer("delete")

    async def send_dm(self, user_id: int, dm: DirectMessage) -> Outcome:
        self.calls.append(("dm", (user_id, dm.kind)))
        outcome = self._answer("dm")
        if outcome.done:
            self.dms.append((user_id, dm))
        return outcome

    async def timeout(
        self, guild_id: int, user_id: int, duration: timedelta | None, reason: str
    ) -> Outcome:
        self.calls.append(("timeout", duration))
        return self._answer("timeout")

    async def member_timeout(self, guild_id: int, user_id: int) -> tuple[Outcome, datetime | None]:
        return Outcome("done"), self.timed_out_until

    async def post_modlog(self, guild_id: int, channel_id: int, entry: ModlogEntry) -> Outcome:
        self.next_message_id += 1
        self.calls.append(("post", (channel_id, entry.appeal is not None)))
        return Outcome("done", message_id=self.next_message_id)

    async def edit_modlog(
        self, guild_id: int, channel_id: int, message_id: int, edit: ModlogEdit
    ) -> Outcome:
        self.calls.append(("edit", (channel_id, message_id, edit)))
        return Outcome("done")

    async def channel_notice(
        self, guild_id: int, channel_id: int, user_id: int, text: str
    ) -> Outcome:
        self.calls.append(("notice", (channel_id, text)))
        return Outcome("done")

    async def post_note(self, guild_id: int, channel_id: int, text: str) -> Outcome:
        self.calls.append(("note", (channel_id, text)))
        return Outcome("done")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def setup(storage: Storage) -> tuple[Actions, RecordingPort, Clock]:
    await storage.set_modlog_channel(GUILD, MODLOG)
    port, clock = RecordingPort(), Clock()
    states = GuildStates(storage)
    await states.subscribe()
    return Actions(storage, port, states, clock=clock, retry_seconds=None), port, clock


async def incident(
    storage: Storage, clock: Clock, verdict: Verdict = Verdict.BLOCK, *, message_id: int = 500
) -> Incident:
    incident_id, _ = await storage.record_incident(
        guild_id=GUILD,
        channel_id=CHANNEL,
        message_id=message_id,
        user_id=MEMBER,
        prompt_excerpt="a naked figure",
        categories=["sexual"],
        severity=Severity.HIGH,
        verdict=verdict,
        matches=[{"source": "rule:sexual", "term": "naked", "text": "naked", "start": 2, "end": 7}],
        action=verdict.value,
        created_at=clock.now,
        job_key=f"job-{message_id}",
    )
    found = await storage.get_incident(GUILD, incident_id)
    assert found is not None
    return found


def plan(actions: Actions, verdict: Verdict = Verdict.BLOCK) -> ActionPlan:
    """What the watcher plans for the verdict under the default strike policy."""
    decision = Decision(prompt="p", verdict=verdict, severity=Severity.HIGH, categories=("sexual",))
    return plan_actions(decision, StrikePolicy())


async def outcomes(storage: Storage, incident_id: int) -> dict[str, str]:
    return {r.action: r.outcome for r in await storage.list_action_outcomes(GUILD, incident_id)}


async def test_a_block_deletes_strikes_warns_with_appeal_and_posts_where_it_is_found(
    storage: Storage,
) -> None:
    actions, port, clock = await setup(storage)
    found = await incident(storage, clock)
    await actions.states.get(GUILD)

    await actions.handle_recorded(found, True, plan(actions), channel_id=CHANNEL, message_id=500)

    assert port.names() == ["delete", "dm", "post"]
    await actions.flush()  # the watcher's outcomes are written behind
    [(user, dm)] = port.dms
    assert user == MEMBER and dm.kind == "warning" and dm.incident is not None
    assert dm.points == 2
    assert await outcomes(storage, found.id) == {
        "delete": "done",
        "strike": "done",
        "dm_warning": "done",
        "modlog": "done",
    }
    stored = await storage.get_incident(GUILD, found.id)
    assert stored is not None and (stored.modlog_channel_id, stored.modlog_message_id) == (
        MODLOG,
        1001,
    )
    [strike] = await storage.list_strikes(GUILD, MEMBER)
    assert (strike.points_before, strike.points_after) == (0, 2)

    # A moderator's later decision edits exactly that message, found from its columns.
    await actions.resolve(GUILD, found.id, "upheld", MODERATOR)
    name, (channel, message, edit) = port.calls[-1]  # type: ignore[misc]
    assert (name, channel, message, edit.status) == ("edit", MODLOG, 1001, "upheld")


async def test_a_message_seen_again_while_its_acting_waits_is_acted_on_once(
    storage: Storage,
) -> None:
    # The watcher may hold an incident's acting back (behind the member's earlier one);
    # a catch-up reading the message meanwhile finds the incident and must leave it be.
    actions, port, clock = await setup(storage)
    found = await incident(storage, clock)
    await actions.states.get(GUILD)
    waiting = actions.handle_recorded(
        found, True, plan(actions), channel_id=CHANNEL, message_id=500
    )

    await actions.handle_recorded(found, False, plan(actions), channel_id=CHANNEL, message_id=500)
    assert port.names() == []

    await waiting
    assert port.names() == ["delete", "dm", "post"]
    await actions.flush()
    await actions.handle_recorded(found, False, plan(actions), channel_id=CHANNEL, message_id=500)
    assert port.names() == ["delete", "dm", "post"]  # settled: a later sighting does nothing


async def test_an_acting_cancelled_before_its_turn_gives_its_claim_back(
    storage: Storage,
) -> None:
    # Closed unstarted (the bot stopped while it waited), the acting must not leave the
    # incident claimed: the next sighting finishes it.
    actions, port, clock = await setup(storage)
    found = await incident(storage, clock)
    await actions.states.get(GUILD)
    actions.handle_recorded(found, True, plan(actions), channel_id=CHANNEL, message_id=500).close()
    assert port.names() == []

    await actions.handle_recorded(found, False, plan(actions), channel_id=CHANNEL, message_id=500)
    assert port.names() == ["delete", "dm", "post"]


async def test_a_held_back_warning_is_queued_and_sent_when_the_budget_allows(
    storage: Storage,
) -> None:
    actions, port, clock = await setup(storage)
    await storage.set_privacy_config(GUILD, {"dm_per_minute": 2})
    await actions.states.get(GUILD)
    found = [await incident(storage, clock, message_id=500 + n) for n in range(3)]
    for item in found:
        await actions.handle_recorded(
            item, True, plan(actions), channel_id=CHANNEL, message_id=item.message_id or 0
        )

    assert len(port.dms) == 2
    await actions.flush()
    assert (await outcomes(storage, found[2].id))["dm_warning"] == "rate_limited"  # retryable
    assert actions.pending_dms() == 1
    assert await actions.send_pending() == 0  # the same minute: still held back

    clock.now += timedelta(minutes=1)
    assert await actions.send_pending() == 1

    assert [dm.incident.id for _, dm in port.dms if dm.incident] == [i.id for i in found]
    assert (await outcomes(storage, found[2].id))["dm_warning"] == "done"
    assert actions.pending_dms() == 0


async def test_reminders_use_only_their_share_of_the_budget(storage: Storage) -> None:
    actions, _port, clock = await setup(storage)
    await storage.set_privacy_config(GUILD, {"dm_per_minute": 4})
    sent = [await actions.send_reminder(GUILD, MEMBER + n, "a reminder") for n in range(5)]
    assert [s.outcome for s in sent] == ["done", "done", "skipped", "skipped", "skipped"]
    export = await actions.send_export(GUILD, MEMBER, "data", (("a.json", b"{}"),))
    assert export.held_back
    found = await incident(storage, clock)
    await actions.handle_recorded(found, True, plan(actions), channel_id=CHANNEL, message_id=500)
    await actions.flush()
    assert (await outcomes(storage, found.id))["dm_warning"] == "done"


async def test_a_resume_applies_the_timeout_a_stop_lost_once(storage: Storage) -> None:
    actions, port, clock = await setup(storage)
    await actions.states.get(GUILD)
    first = await incident(storage, clock, message_id=500)
    await actions.handle_recorded(first, True, plan(actions), channel_id=CHANNEL, message_id=500)
    second = await incident(storage, clock, message_id=501)
    port.failing["timeout"] = "failed"  # a 5xx on the timeout the second strike earns
    await actions.handle_recorded(second, True, plan(actions), channel_id=CHANNEL, message_id=501)
    await actions.flush()
    assert (await outcomes(storage, second.id))["timeout"] == "failed"
    port.failing.clear()
    port.calls.clear()

    await actions.handle_recorded(second, False, plan(actions), channel_id=CHANNEL, message_id=501)

    assert port.names() == ["timeout"]  # no second warning, strike or entry
    strikes = await storage.list_strikes(GUILD, MEMBER)
    assert [(s.points_before, s.points_after) for s in strikes] == [(2, 4), (0, 2)]
    port.timed_out_until = clock.now + timedelta(hours=1)
    port.calls.clear()
    await actions.handle_recorded(second, False, plan(actions), channel_id=CHANNEL, message_id=501)
    assert port.names() == []  # settled


async def test_a_dismissed_incident_s_job_deletes_nothing_more(storage: Storage) -> None:
    actions, port, clock = await setup(storage)
    await actions.states.get(GUILD)
    found = await incident(storage, clock)
    await actions.handle_recorded(found, True, plan(actions), channel_id=CHANNEL, message_id=500)
    await actions.settle(found, "dismissed", MODERATOR)
    dismissed = await storage.get_incident(GUILD, found.id)
    assert dismissed is not None
    port.calls.clear()

    await actions.handle_recorded(
        dismissed, False, plan(actions), channel_id=CHANNEL, message_id=777
    )

    assert port.calls == []


async def test_erasure_edits_every_recorded_entry_of_the_member(storage: Storage) -> None:
    actions, port, clock = await setup(storage)
    await actions.states.get(GUILD)
    found = await incident(storage, clock)
    await actions.handle_recorded(found, True, plan(actions), channel_id=CHANNEL, message_id=500)
    made = await storage.create_appeal(GUILD, found.id, MEMBER, "my uncle's farm", now=clock.now)
    assert made is not None
    assert await actions.post_appeal(found, made)
    port.calls.clear()

    erased = await actions.erase_member(MEMBER)

    assert erased.entries_edited == 2 and erased.entries_failed == 0
    edits = [args for name, args in port.calls if name == "edit"]
    assert [(c, m, e.erase) for c, m, e in edits] == [(MODLOG, 1001, True), (MODLOG, 1002, True)]  # type: ignore[misc]
    stored = await storage.get_incident(GUILD, found.id)
    assert stored is not None and stored.prompt_excerpt == ERASED_TEXT


def incident_fields(clock: Clock, message_id: int) -> dict[str, object]:
    """What the watcher records for a blocked prompt (`Actions.record`'s fields)."""
    return {
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "message_id": message_id,
        "user_id": MEMBER,
        "prompt_excerpt": "a naked figure",
        "categories": ["sexual"],
        "severity": Severity.HIGH,
        "verdict": Verdict.BLOCK,
        "matches": [],
        "action": "block",
        "created_at": clock.now,
        "job_key": f"job-{message_id}",
    }


async def slots_left(storage: Storage, clock: Clock, limit: int) -> int:
    """How many more DMs the guild's budget allows this minute (taking them all)."""
    left = 0
    while await storage.take_dm_budget(GUILD, limit=limit, now=clock.now):
        left += 1
    return left


async def test_a_warning_resumed_after_a_stop_uses_the_slot_taken_with_its_incident(
    storage: Storage,
) -> None:
    actions, _port, clock = await setup(storage)
    await storage.set_privacy_config(GUILD, {"dm_per_minute": 3})
    await actions.states.get(GUILD)
    recorded = await actions.record(incident_fields(clock, 500), plan(actions))
    assert recorded.created and recorded.dm_allowed  # one slot taken, in that transaction
    # The process stops here, before any Discord call; the next one resumes the incident.
    resumed, port, _ = await setup(storage)
    resumed.clock = clock

    assert await resumed.resume_unsettled(GUILD) == 1

    assert [dm.kind for _, dm in port.dms] == ["warning"]
    assert await slots_left(storage, clock, 3) == 2  # one slot in all, not two
    await resumed.flush()
    assert (await outcomes(storage, recorded.incident.id))["dm_warning"] == "done"
    assert len(await storage.list_strikes(GUILD, MEMBER)) == 1


async def test_a_warning_the_budget_held_back_at_recording_stays_queued_on_resume(
    storage: Storage,
) -> None:
    actions, _port, clock = await setup(storage)
    await storage.set_privacy_config(GUILD, {"dm_per_minute": 1})
    await actions.states.get(GUILD)
    first = await actions.record(incident_fields(clock, 500), plan(actions))
    second = await actions.record(incident_fields(clock, 501), plan(actions))
    assert first.dm_allowed and second.dm_allowed is False  # the budget was spent
    clock.now += timedelta(minutes=1)  # a new minute by the time the next process runs
    resumed, port, _ = await setup(storage)
    resumed.clock = clock

    assert await resumed.resume_unsettled(GUILD) == 2

    # The first warning had its slot; the second waits its turn in the queue and takes a
    # slot of its own only when the queue is served, never one on resume besides.
    assert [dm.incident.id for _, dm in port.dms if dm.incident] == [first.incident.id]
    assert resumed.pending_dms() == 1
    await resumed.flush()
    assert (await outcomes(storage, second.incident.id))["dm_warning"] == "rate_limited"
    assert await resumed.send_pending() == 1  # the new minute's slot
    assert [dm.incident.id for _, dm in port.dms if dm.incident] == [
        first.incident.id,
        second.incident.id,
    ]
