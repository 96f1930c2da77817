"""PromptWarden against the loopback emulator, beside a bare discord.py client, in one run.

    python benchmarks/e2e.py                 # 10,000 messages, 4 channels
    python benchmarks/e2e.py --count 2000

Both processes get the same burst (about 2% violating, 70% Midjourney Bot job messages)
pushed as fast as the emulator's socket takes it. Reported for each:
- messages per second: burst size / (first message sent -> last message handled). For the
  bare client "handled" is "received"; for PromptWarden it is the last action on a final
  violating message in each channel (channels are handled in order, so all before it are done);
- p50/p99 latency: message sent -> its last action (delete, DM, mod-log entry) for the
  violating messages; for the bare client, sent -> received, over the same messages;
- resident memory at the end.
The ratios PromptWarden/bare read as the bot's own cost. Time is measured with
time.monotonic() in every process (one system-wide clock on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptwarden.storage import open_storage  # noqa: E402
from tests.emulator import GOOD_TOKEN, MIDJOURNEY_BOT_ID, BotProcess, Emulator, Post  # noqa: E402
from tests.emulator.traffic import ActionLog, Planned, burst  # noqa: E402

DONE = "benchmark burst complete"
DM_BUDGET = 60  # the most a guild can allow


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rss_mb: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def row(self) -> str:
        return (
            f"{self.name:<14} {self.rate:>10,.0f} msg/s  p50 {self.p50_ms:>8.1f} ms  "
            f"p99 {self.p99_ms:>8.1f} ms  RSS {self.rss_mb:>6.1f} MB  ({self.seconds:.2f} s)"
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_burst(emu: Emulator, count: int, channels: int) -> tuple[list[Planned], list[Post]]:
    chans = [emu.add_channel(f"imagine-{i}") for i in range(channels)]
    members = [emu.add_member(f"member{i}") for i in range(200)]
    generator = emu.user(MIDJOURNEY_BOT_ID)
    planned = burst(chans, members, generator, count)
    # A last violating message per channel marks "everything before it is handled".
    # burst() deals messages to channels in turn, so closing message i lands in channel i.
    closing = burst(chans, members, generator, channels, violating_share=1.0, first_tag=count)
    return planned + closing, [p.post for p in planned + closing]


def bare(count: int, channels: int, workdir: Path) -> Result:
    with Emulator() as emu:
        planned, posts = make_burst(emu, count, channels)
        posts.append(Post(posts[-1].channel, posts[-1].author, DONE))
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
            ids = emu.post_many(posts)
            emu.wait_until(
                lambda: any(
                    c.body and c.body.get("content") == "received everything"
                    for c in emu.calls("POST /channels/{channel_id}/messages")
                ),
                timeout=600,
                what="the bare client to receive the burst",
            )
            rss = proc.rss_kb() / 1024
        got = {int(k): v for k, v in json.loads(receipts.read_text()).items()}
        sent = emu.sent_at
        start = min(sent[i] for i in ids)
        seconds = got[ids[-1]] - start
        latencies = [
            (got[i] - sent[i]) * 1000 for p, i in zip(planned, ids, strict=False) if p.violating
        ]
        return Result(
            "bare client",
            len(ids),
            seconds,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            rss,
        )


def promptwarden(count: int, channels: int, workdir: Path) -> Result:
    with Emulator() as emu:
        planned, posts = make_burst(emu, count, channels)
        database = workdir / "promptwarden.db"
        modlog = emu.add_channel("mod-log")

        async def configure() -> None:
            storage = await open_storage(database)
            async with storage:
                guild = emu.world.guild.id
                for channel in {p.channel.id for p in posts}:
                    await storage.add_watched_channel(guild, channel)
                await storage.set_modlog_channel(guild, modlog.id)
                await storage.set_screening_rules(guild, {"learned": False})
                await storage.set_privacy_config(guild, {"dm_per_minute": DM_BUDGET})

        asyncio.run(configure())
        env = {
            **emu.env(),
            "DISCORD_TOKEN": GOOD_TOKEN,
            "DATABASE_PATH": str(database),
            "LOG_LEVEL": "WARNING",
        }
        with BotProcess(env, workdir, name="promptwarden") as proc:
            emu.gateway.ready_sent.wait(30)
            time.sleep(0.5)
            ids = emu.post_many(posts)
            actions = ActionLog(emu)
            violating = [(p, i) for p, i in zip(planned, ids, strict=True) if p.violating]

            def handled() -> bool:
                actions.update()
                # Deleted, and quoted by a DM or the mod-log entry (DMs beyond the guild's
                # budget of DM_BUDGET a minute are dropped by design; mod-log entries never).
                return all(
                    actions.deletes.get(i) and actions.posts.get(p.tag) for p, i in violating
                )

            emu.wait_until(handled, timeout=900, what="PromptWarden to act on every violation")
            rss = proc.rss_kb() / 1024
        sent = emu.sent_at
        start = min(sent[i] for i in ids)
        done = {i: actions.last_action_at(i, p.tag) or 0.0 for p, i in violating}
        closing_done = max(done[i] for i in ids[-channels:])
        latencies = [(done[i] - sent[i]) * 1000 for _, i in violating]
        return Result(
            "PromptWarden",
            len(ids),
            closing_done - start,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            rss,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages in the burst")
    parser.add_argument("--channels", type=int, default=4, help="watched channels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        base = bare(args.count, args.channels, Path(tmp) / "bare")
        bot = promptwarden(args.count, args.channels, Path(tmp) / "bot")
    print(f"burst: {args.count:,} messages (+{args.channels} closing), {args.channels} channels")
    print(base.row())
    print(bot.row())
    print(
        f"ratio PromptWarden/bare: throughput {bot.rate / base.rate:.2f}x, "
        f"p50 {bot.p50_ms / base.p50_ms:.1f}x, p99 {bot.p99_ms / base.p99_ms:.1f}x, "
        f"memory {bot.rss_mb / base.rss_mb:.2f}x"
    )


if __name__ == "__main__":
    main()
