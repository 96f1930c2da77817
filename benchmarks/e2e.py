"""PromptWarden against the loopback emulator, beside a bare discord.py client, in one run.

    python benchmarks/e2e.py                 # 10,000 messages, 4 channels
    python benchmarks/e2e.py --count 1000000 # streamed: the burst is never built in memory
    python benchmarks/e2e.py --rate 500      # a fixed offered load: p50/p99 message -> delete
    python benchmarks/e2e.py --guilds 20     # the same burst over 20 guilds x 4 channels

Both processes get the same burst (about 2% violating, 70% Midjourney Bot job messages)
pushed as fast as the emulator's socket takes it, dealt round-robin over every guild's
channels (consecutive messages land in different guilds). Each guild has its own members,
mod-log channel and DM budget, configured as one guild is. Reported for each:
- messages per second: burst size / (first message sent -> last message handled). For the
  bare client "handled" is "received"; for PromptWarden it is the last action on any
  violating message (a final violating message in each channel of each guild marks the end
  of the burst; actions run apart from the channel's queue, so it is not necessarily the
  last one done);
- p50/p99 latency: message sent -> its last action (delete, DM, mod-log entry) for the
  violating messages; for the bare client, sent -> received, over the same messages;
- peak resident memory (the process's high-water mark).
With `--rate N` messages are offered at N a second instead, and latency is message sent ->
its delete (the action a channel's readers notice).
`INTAKE_MAX_MESSAGES` / `INTAKE_CHANNEL_MESSAGES` in the environment reach the bot, so a
small intake limit exercises the behind-and-read-back path with a modest burst.
The ratios PromptWarden/bare read as the bot's own cost. Time is measured with
time.monotonic() in every process (one system-wide clock on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptwarden.storage import open_storage  # noqa: E402
from tests.emulator import (  # noqa: E402
    GOOD_TOKEN,
    MIDJOURNEY_BOT_ID,
    BotProcess,
    Channel,
    Emulator,
    Guild,
    Post,
    User,
)
from tests.emulator.rest import Call  # noqa: E402
from tests.emulator.traffic import (  # noqa: E402
    DELETE_MESSAGE,
    SEND_MESSAGE,
    ActionLog,
    Planned,
    burst_stream,
)

DONE = "benchmark burst complete"
DM_BUDGET = 60  # the most a guild can allow
MEMBERS = 200  # per guild
HISTORY = "GET /channels/{channel_id}/messages"


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    cpu_s: float  # the process's own CPU time (user + system) while measured
    work: str = ""  # what the process sent Discord while measured, if anything

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def row(self) -> str:
        return (
            f"{self.name:<14} {self.rate:>10,.0f} msg/s  p50 {self.p50_ms:>8.1f} ms  "
            f"p99 {self.p99_ms:>8.1f} ms  RSS {self.rss_mb:>6.1f} MB  ({self.seconds:.2f} s, "
            f"CPU {self.cpu_s:.2f} s)"
        )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc): unlike throughput, it
    holds steady when other work shares the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Burst:
    """The burst as a stream of posts; only the violating messages are remembered (by
    position), so a million messages cost the benchmark no memory to build."""

    def __init__(self, emu: Emulator, count: int, channels: int, guilds: int) -> None:
        self.count = count
        self.guilds: list[Guild] = [emu.world.guild]
        self.guilds += [emu.add_guild(f"Prompt Gallery {g}") for g in range(1, guilds)]
        per_guild = [
            [emu.add_channel(f"imagine-{i}", guild=guild) for i in range(channels)]
            for guild in self.guilds
        ]
        # Interleaved: channel 0 of every guild, then channel 1 of every guild, ...
        self.chans: list[Channel] = [c for row in zip(*per_guild, strict=True) for c in row]
        self.members: dict[int, list[User]] = {
            guild.id: [emu.add_member(f"member{i}", guild=guild) for i in range(MEMBERS)]
            for guild in self.guilds
        }
        self.generator = emu.user(MIDJOURNEY_BOT_ID)
        self.violating: list[tuple[int, Planned]] = []

    def posts(self, extra: list[Post] | None = None) -> Iterator[Post]:
        self.violating.clear()
        stream = burst_stream(self.chans, self.members, self.generator, self.count)
        # A last violating message per channel marks "everything before it is handled".
        # Messages are dealt to channels in turn, so closing message i lands in channel i.
        closing = burst_stream(
            self.chans,
            self.members,
            self.generator,
            len(self.chans),
            violating_share=1.0,
            first_tag=self.count,
        )
        for n, p in enumerate(itertools.chain(stream, closing)):
            if p.violating:
                self.violating.append((n, p))
            yield p.post
        yield from extra or ()

    def done_post(self) -> Post:
        """The bare client's "that was all" message, in the last channel."""
        channel = self.chans[-1]
        assert channel.guild_id is not None
        return Post(channel, self.members[channel.guild_id][0], DONE)

    def channels_of(self, guild: Guild) -> list[int]:
        return [c.id for c in self.chans if c.guild_id == guild.id]


def bare(count: int, channels: int, guilds: int, workdir: Path, rate: float | None) -> Result:
    with Emulator() as emu:
        plan = Burst(emu, count, channels, guilds)
        receipts = workdir / "receipts.json"
        env = {
            **emu.env(),
            "DISCORD_TOKEN": GOOD_TOKEN,
            "BARE_DONE_CONTENT": DONE,
            "BARE_RECEIPTS": str(receipts),
        }
        with BotProcess(
            env, workdir, script=ROOT / "benchmarks" / "bare_client.py", name="bare"
        ) as proc:
            emu.gateway.ready_sent.wait(30)
            time.sleep(0.5)  # let the client finish its start-up before the clock starts
            cpu_start = cpu_seconds(proc.pid)
            ids = emu.post_many(
                plan.posts([plan.done_post()]), rate=rate, timeout=timeout_for(count)
            )
            emu.wait_until(
                lambda: any(
                    c.body and c.body.get("content") == "received everything"
                    for c in emu.calls("POST /channels/{channel_id}/messages")
                ),
                timeout=timeout_for(count),
                what="the bare client to receive the burst",
            )
            cpu = cpu_seconds(proc.pid) - cpu_start
            rss = proc.peak_rss_kb() / 1024
        got = {int(k): v for k, v in json.loads(receipts.read_text()).items()}
        sent = emu.sent_at
        start = sent[ids[0]]
        seconds = got[ids[-1]] - start
        latencies = [(got[ids[n]] - sent[ids[n]]) * 1000 for n, _ in plan.violating]
        return Result(
            "bare client",
            len(ids),
            seconds,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            rss,
            cpu,
        )


def start_profile(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy attached to the bot (`pip install py-spy`; may need ptrace permission)."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    fmt = "flamegraph" if out.endswith(".svg") else "raw"
    return subprocess.Popen(
        [spy, "record", "-r", "200", "-f", fmt, "-o", str(Path(out).resolve()), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timeout_for(count: int) -> float:
    return max(900.0, count / 200)


def promptwarden(
    count: int,
    channels: int,
    guilds: int,
    workdir: Path,
    rate: float | None,
    profile: str | None = None,
) -> Result:
    with Emulator() as emu:
        plan = Burst(emu, count, channels, guilds)
        database = workdir / "promptwarden.db"
        modlogs = {g.id: emu.add_channel("mod-log", guild=g) for g in plan.guilds}

        async def configure() -> None:
            storage = await open_storage(database)
            async with storage:
                for guild in plan.guilds:
                    for channel in plan.channels_of(guild):
                        await storage.add_watched_channel(guild.id, channel)
                    await storage.set_modlog_channel(guild.id, modlogs[guild.id].id)
                    await storage.set_screening_rules(guild.id, {"learned": False})
                    await storage.set_privacy_config(guild.id, {"dm_per_minute": DM_BUDGET})

        asyncio.run(configure())
        env = {
            **emu.env(),
            "DISCORD_TOKEN": GOOD_TOKEN,
            "DATABASE_PATH": str(database),
            "LOG_LEVEL": "WARNING",
            **{k: v for k, v in os.environ.items() if k.startswith("INTAKE_")},
        }
        with BotProcess(env, workdir, name="promptwarden") as proc:
            emu.gateway.ready_sent.wait(30)
            # Start-up ends with reading every watched channel's history once (catch-up);
            # with many guilds that takes a while, and is not the burst's time.
            watched = {c.id for c in plan.chans}
            emu.wait_until(
                lambda: watched <= {c.param("channel_id") for c in emu.calls(HISTORY)},
                timeout=120,
                what="PromptWarden to read every watched channel once at start",
            )
            time.sleep(0.5)
            spy = None if profile is None else start_profile(proc.pid, profile)
            cpu_start = cpu_seconds(proc.pid)
            ids = emu.post_many(plan.posts(), rate=rate, timeout=timeout_for(count))
            actions = ActionLog(emu)
            violating = [(p, ids[n]) for n, p in plan.violating]

            pending = dict((i, p) for p, i in violating)

            def handled() -> bool:
                actions.update()
                # Deleted, and quoted by a DM or the mod-log entry (DMs beyond the guild's
                # budget of DM_BUDGET a minute are dropped by design; mod-log entries never).
                # Only what is still pending is checked: this runs after every REST call.
                for i, p in list(pending.items()):
                    if not (actions.deletes.get(i) and actions.posts.get(p.tag)):
                        return False
                    del pending[i]
                return True

            emu.wait_until(
                handled, timeout=timeout_for(count), what="PromptWarden to act on every violation"
            )
            cpu = cpu_seconds(proc.pid) - cpu_start
            rss = proc.peak_rss_kb() / 1024
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
                spy.wait(60)
        sent = emu.sent_at
        start = sent[ids[0]]
        if rate is None:
            done = {i: actions.last_action_at(i, p.tag) or 0.0 for p, i in violating}
        else:
            done = {i: min(c.at for c in actions.deletes[i] if c.ok) for _, i in violating}
        closing_done = max(done.values())
        latencies = [(done[i] - sent[i]) * 1000 for _, i in violating]
        measured = [c for c in emu.calls() if start <= c.at <= closing_done]
        return Result(
            "PromptWarden",
            len(ids),
            closing_done - start,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            rss,
            cpu,
            rest_work(emu, measured, {c.id for c in modlogs.values()}),
        )


def rest_work(emu: Emulator, calls: list[Call], modlogs: set[int]) -> str:
    """The REST calls made while measured, by kind: what the bot did for the burst. More
    guilds mean more DMs (each guild has its own DM budget) and more mod-log entries."""
    dms = {c.id for c in emu.world.dm_channels.values()}
    deletes = sent_dms = entries = 0
    other: Counter[str] = Counter()
    for call in calls:
        if call.route == DELETE_MESSAGE:
            deletes += 1
        elif call.route == SEND_MESSAGE and call.param("channel_id") in dms:
            sent_dms += 1
        elif call.route == SEND_MESSAGE and call.param("channel_id") in modlogs:
            entries += 1
        else:
            other[call.route] += 1
    kinds = ", ".join(f"{route} {n:,}" for route, n in other.most_common(3))
    return (
        f"{deletes:,} deletes, {sent_dms:,} DMs, {entries:,} mod-log entries, "
        f"{sum(other.values()):,} other REST calls" + (f" ({kinds})" if kinds else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages in the burst")
    parser.add_argument("--channels", type=int, default=4, help="watched channels per guild")
    parser.add_argument("--guilds", type=int, default=1, help="guilds, each with --channels")
    parser.add_argument(
        "--rate", type=float, default=None, help="offer this many messages a second"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record a py-spy profile of PromptWarden (speedscope JSON or .svg) into FILE",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        base = bare(args.count, args.channels, args.guilds, Path(tmp) / "bare", args.rate)
        bot = promptwarden(
            args.count, args.channels, args.guilds, Path(tmp) / "bot", args.rate, args.profile
        )
    offered = "as fast as possible" if args.rate is None else f"at {args.rate:,.0f}/s"
    channels = args.channels * args.guilds
    where = (
        f"{args.channels} channels"
        if args.guilds == 1
        else (f"{args.guilds} guilds x {args.channels} channels")
    )
    print(f"burst: {args.count:,} messages (+{channels} closing), {where}, offered {offered}")
    print(base.row())
    print(bot.row())
    print(f"{'':<14} while measured: {bot.work}")
    print(
        f"ratio PromptWarden/bare: throughput {bot.rate / base.rate:.2f}x, "
        f"p50 {bot.p50_ms / base.p50_ms:.1f}x, p99 {bot.p99_ms / base.p99_ms:.1f}x, "
        f"memory {bot.rss_mb / base.rss_mb:.2f}x, CPU {bot.cpu_s / base.cpu_s:.2f}x"
    )


if __name__ == "__main__":
    main()
