"""How writes scale with bot processes: incidents/s and strike updates/s, SQLite vs PostgreSQL.

Each writer is a separate OS process (multiprocessing) with its own Storage, as each bot
process of a cluster has; all start together and write for a fixed time. Strikes go to a
few members only, so processes really contend on the same rows (the case the per-member
lock exists for). After each run the stored totals are checked against what the writers
reported, so a fast but wrong backend cannot win.

    python benchmarks/storage_scale.py                       # SQLite only
    python benchmarks/storage_scale.py --postgres postgresql://USER:PW@127.0.0.1/postgres

The PostgreSQL URL (or PROMPTWARDEN_TEST_POSTGRES_URL) must allow CREATE DATABASE: every
run gets a fresh database, dropped afterwards. Figures depend on the machine; compare the
columns of one run, not numbers across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from threading import Barrier as BarrierType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promptwarden.screening.decision import Severity, Verdict
from promptwarden.storage import Storage, open_storage

GUILD = 111111111111111111
MEMBERS = 8  # strikes land on few members: writers collide on the same rows
WINDOW = timedelta(days=30)


async def _incident(storage: Storage, writer: int, n: int) -> None:
    await storage.record_incident(
        guild_id=GUILD,
        channel_id=10,
        message_id=writer * 10_000_000 + n,
        user_id=1000 + n % 50,
        prompt_excerpt="a knight in shining armour, --no clothes --ar 16:9",
        categories=["sexual"],
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=[{"category": "sexual", "term": "no clothes"}],
        action="block",
    )


async def _strike(storage: Storage, writer: int, n: int) -> None:
    del writer
    await storage.add_strike(GUILD, 2000 + n % MEMBERS, 1, incident_id=None, window=WINDOW)


WORKLOADS = {"incidents": _incident, "strikes": _strike}


async def _write(
    target: str, workload: str, writer: int, ready: BarrierType, seconds: float
) -> int:
    step = WORKLOADS[workload]
    storage = await open_storage(target)
    try:
        # Every writer starts once all have imported and connected: start-up is not
        # write throughput, and a slow import must not eat into the timed window.
        ready.wait(timeout=120)
        done = 0
        end = time.time() + seconds
        while time.time() < end:
            await step(storage, writer, done)
            done += 1
        return done
    finally:
        await storage.close()


def _writer_process(
    target: str, workload: str, writer: int, ready: BarrierType, seconds: float, out: mp.Queue[int]
) -> None:
    out.put(asyncio.run(_write(target, workload, writer, ready, seconds)))


async def _stored_total(target: str, workload: str) -> int:
    if workload == "incidents":
        return await _count(target)
    async with await open_storage(target) as storage:
        return sum(
            [await storage.active_points(GUILD, 2000 + m, window=WINDOW) for m in range(MEMBERS)]
        )


async def _count(target: str) -> int:
    """Incident rows, counted the cheap way for each backend."""
    if target.startswith("postgresql://"):
        import asyncpg

        conn = await asyncpg.connect(target)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM incidents"))
        finally:
            await conn.close()
    import sqlite3

    with sqlite3.connect(target) as conn:
        return int(conn.execute("SELECT count(*) FROM incidents").fetchone()[0])


def run(target: str, workload: str, writers: int, seconds: float) -> float:
    asyncio.run(_stored_total(target, "strikes"))  # create and migrate before timing
    context = mp.get_context("spawn")
    out: mp.Queue[int] = context.Queue()
    ready = context.Barrier(writers)
    processes = [
        context.Process(target=_writer_process, args=(target, workload, w, ready, seconds, out))
        for w in range(writers)
    ]
    for process in processes:
        process.start()
    counts = [out.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    total = sum(counts)
    stored = asyncio.run(_stored_total(target, workload))
    if stored != total:
        raise SystemExit(
            f"{workload} on {writers} writers: writers reported {total}, database holds {stored}"
        )
    return total / seconds


@contextmanager
def fresh_target(backend: str, postgres_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield str(Path(folder) / "bench.db")
        return
    assert postgres_url is not None
    import asyncpg

    name = f"pw_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres_url.rpartition('/')[0]}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _server_settings(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        fsync = await conn.fetchval("SHOW fsync")
        commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    return f"{version}, fsync={fsync}, synchronous_commit={commit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("PROMPTWARDEN_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=3.0, help="timed length of each run")
    parser.add_argument("--writers", default="1,2,4", help="process counts, e.g. 1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    if not args.postgres:
        print("(no --postgres URL: SQLite only)")

    print(f"{os.cpu_count()} CPU(s); each writer is one process, {args.seconds:g} s per run")
    if args.postgres:
        print(f"PostgreSQL: {asyncio.run(_server_settings(args.postgres))}")

    rows: list[tuple[str, str, list[float]]] = []
    for backend in backends:
        for workload in WORKLOADS:
            rates = []
            for writers in counts:
                with fresh_target(backend, args.postgres) as target:
                    rates.append(run(target, workload, writers, args.seconds))
                print(f"  {backend} {workload} x{writers}: {rates[-1]:,.0f}/s", flush=True)
            rows.append((backend, workload, rates))

    header = " | ".join(f"{n} writer{'s' if n > 1 else ''}" for n in counts)
    print(f"\n| backend | workload | {header} | scaling {counts[-1]}/{counts[0]} |")
    print("|---|---|" + "---:|" * (len(counts) + 1))
    for backend, workload, rates in rows:
        cells = " | ".join(f"{r:,.0f}/s" for r in rates)
        print(f"| {backend} | {workload} | {cells} | {rates[-1] / rates[0]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
