"""What the violation path costs the database, in one run: violating messages recorded and
acted on through the actions service on a real SQLite file, against a Discord stand-in
that answers at once, so the bot's own work is all there is to measure.

    python benchmarks/violation_writes.py                  # 2,000 violations, 8 at a time
    python benchmarks/violation_writes.py --count 10000 --concurrency 32

Two ways, alternated over the same number of violations:
- one write each: the incident, then every step's write in its own transaction
  (`Actions.enforce` called on its own, as the watcher did before batching);
- batched: the incident with its strike, points and DM slot in one transaction
  (`Actions.record`), then `handle_recorded`, its outcomes written behind.
Reported for each: transactions and SQL statements per violation (sqlite3's trace
callback), and CPU seconds of the whole process (event loop and database thread) per
1,000 violations. The last line gives the ratios batched / one write each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promptwarden.actions import (
    Actions,
    DirectMessage,
    ModlogEdit,
    ModlogEntry,
    Outcome,
)
from promptwarden.guild_states import GuildStates
from promptwarden.policy import StrikePolicy, plan_actions
from promptwarden.screening.decision import Decision, Severity, Verdict
from promptwarden.storage import Storage, open_storage
from promptwarden.storage.backends import SQLiteBackend

GUILD, CHANNEL, MODLOG = 1, 10, 20


class InstantPort:
    """Discord answering every call at once."""

    def __init__(self) -> None:
        self.posted = 0

    def guild_name(self, guild_id: int) -> str:
        return "Prompt Art"

    async def delete_message(self, guild_id: int, channel_id: int, message_id: int) -> Outcome:
        return Outcome("done")

    async def send_dm(self, user_id: int, dm: DirectMessage) -> Outcome:
        return Outcome("done")

    async def timeout(
        self, guild_id: int, user_id: int, duration: timedelta | None, reason: str
    ) -> Outcome:
        return Outcome("done")

    async def member_timeout(self, guild_id: int, user_id: int) -> tuple[Outcome, datetime | None]:
        return Outcome("done"), None

    async def post_modlog(self, guild_id: int, channel_id: int, entry: ModlogEntry) -> Outcome:
        self.posted += 1
        return Outcome("done", message_id=10_000 + self.posted)

    async def edit_modlog(
        self, guild_id: int, channel_id: int, message_id: int, edit: ModlogEdit
    ) -> Outcome:
        return Outcome("done")

    async def channel_notice(
        self, guild_id: int, channel_id: int, user_id: int, text: str
    ) -> Outcome:
        return Outcome("done")

    async def post_note(self, guild_id: int, channel_id: int, text: str) -> Outcome:
        return Outcome("done")


@dataclass
class Figures:
    name: str
    count: int
    transactions: int
    statements: int
    cpu: float

    def line(self) -> str:
        return (
            f"{self.name:<16} {self.transactions / self.count:5.2f} transactions "
            f"{self.statements / self.count:6.2f} statements per violation, "
            f"{self.cpu * 1000 / self.count:6.3f} CPU s per 1,000"
        )


def fields(n: int, now: datetime) -> dict[str, object]:
    return {
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "message_id": 1_000_000 + n,
        "user_id": 5_000_000 + n,  # one member each: no timeouts, only the common path
        "prompt_excerpt": f"a nude figure number {n}",
        "categories": ["sexual"],
        "severity": Severity.HIGH,
        "verdict": Verdict.BLOCK,
        "matches": [{"source": "rule:sexual", "term": "nude", "start": 2, "end": 6}],
        "action": "block",
        "created_at": now,
        "job_key": f"job-{n}",
    }


async def run(storage: Storage, batched: bool, start: int, count: int, workers: int) -> Figures:
    port = InstantPort()
    states = GuildStates(storage)
    minute = [datetime(2026, 6, 1, tzinfo=UTC)]
    actions = Actions(storage, port, states, clock=lambda: minute[0], retry_seconds=None)
    await states.get(GUILD)
    plan = plan_actions(
        Decision(prompt="p", verdict=Verdict.BLOCK, severity=Severity.HIGH, categories=("x",)),
        StrikePolicy(),
    )
    backend = storage.backend
    assert isinstance(backend, SQLiteBackend)
    raw = backend._connection().raw
    seen = [0, 0]
    lock = threading.Lock()

    def trace(sql: str) -> None:
        with lock:
            seen[0] += 1
            seen[1] += sql.startswith("BEGIN")

    async def one(n: int) -> None:
        if n % 50 == 0:
            minute[0] += timedelta(minutes=1)  # the DM budget (60 a minute) never binds
        if batched:
            recorded = await actions.record(fields(n, minute[0]), plan)
            await actions.handle_recorded(
                recorded.incident,
                True,
                plan,
                channel_id=CHANNEL,
                message_id=recorded.incident.message_id or 0,
                recorded=recorded,
            )
        else:
            incident_id, _ = await storage.record_incident(**fields(n, minute[0]))  # type: ignore[arg-type]
            incident = await storage.get_incident(GUILD, incident_id)
            assert incident is not None
            await actions.enforce(
                incident, plan, channel_id=CHANNEL, message_id=incident.message_id
            )

    async def worker(k: int) -> None:
        for n in range(start + k, start + count, workers):
            await one(n)

    await raw.set_trace_callback(trace)
    cpu = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(workers)))
    await actions.finish()
    cpu = time.process_time() - cpu
    await raw.set_trace_callback(None)  # type: ignore[arg-type]
    name = "batched" if batched else "one write each"
    return Figures(name, count, seen[1], seen[0], cpu)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="violations each way")
    parser.add_argument("--concurrency", type=int, default=8, help="violations at a time")
    parser.add_argument("--rounds", type=int, default=3, help="alternations")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        storage = await open_storage(Path(tmp) / "violations.db")
        async with storage:
            await storage.set_modlog_channel(GUILD, MODLOG)
            await storage.set_privacy_config(GUILD, {"dm_per_minute": 60})
            per = max(1, args.count // args.rounds)
            totals = {False: Figures("one write each", 0, 0, 0, 0.0)}
            totals[True] = Figures("batched", 0, 0, 0, 0.0)
            start = 0
            for _ in range(args.rounds):
                for batched in (False, True):
                    got = await run(storage, batched, start, per, args.concurrency)
                    start += per
                    total = totals[batched]
                    total.count += got.count
                    total.transactions += got.transactions
                    total.statements += got.statements
                    total.cpu += got.cpu
    old, new = totals[False], totals[True]
    print(f"{old.count:,} violations each way, {args.concurrency} at a time")
    print(old.line())
    print(new.line())
    print(
        "ratio batched/one write each: "
        f"transactions {new.transactions / old.transactions:.2f}x, "
        f"statements {new.statements / old.statements:.2f}x, "
        f"CPU {new.cpu / old.cpu:.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
