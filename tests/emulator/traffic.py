"""Busy generation channels: Midjourney Bot job messages and members' own prompts.

About 2% violate the guidelines. Every prompt carries a unique `#n` tag, so no two are
identical (identical prompts are, by design, screened once) and a DM or an incident can
be traced back to the message it is about.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from .rest import Call
from .server import Emulator, Post
from .world import Channel, User

BENIGN = (
    "a castle on a hill at sunset, oil painting",
    "portrait of a cyberpunk samurai, neon",
    "cozy cabin in snowy woods, watercolor",
    "astronaut riding a horse on mars",
    "a bowl of ramen, studio lighting, 8k",
    "ancient library with floating books, fantasy art",
    "a fox in a misty forest --ar 16:9 --v 6",
    "isometric tiny city on a floating island --s 250",
)
# Each is blocked by the default rules (a test checks this against the real screener).
VIOLATING = (
    "naked woman in the shower, photo",
    "severed head dripping blood, gore",
    "hentai porn",
    "nude girl, explicit",
)
MODES = ("(fast)", "(relaxed)", "(turbo)", "(fast, stealth)")


@dataclass(frozen=True, slots=True)
class Planned:
    post: Post
    tag: str  # "#000017": unique within a burst
    violating: bool
    responsible: User  # the member a warning goes to: the requester of a bot's job


# The members who prompt: one list for every channel, or a list per guild id (a member
# prompts only in a guild they are in).
Members = Sequence[User] | Mapping[int, Sequence[User]]


def burst(
    channels: list[Channel],
    members: Members,
    generator: User,
    count: int,
    *,
    violating_share: float = 0.02,
    generator_share: float = 0.7,
    seed: int = 7,
    first_tag: int = 0,
) -> list[Planned]:
    """`count` messages over `channels`; a fixed seed makes the same burst every run."""
    return list(
        burst_stream(
            channels,
            members,
            generator,
            count,
            violating_share=violating_share,
            generator_share=generator_share,
            seed=seed,
            first_tag=first_tag,
        )
    )


def burst_stream(
    channels: list[Channel],
    members: Members,
    generator: User,
    count: int,
    *,
    violating_share: float = 0.02,
    generator_share: float = 0.7,
    seed: int = 7,
    first_tag: int = 0,
) -> Iterator[Planned]:
    """The same burst as `burst`, made one message at a time (a million cost no memory).

    Message i goes to `channels[i % len(channels)]`: list the channels of several guilds
    interleaved and consecutive messages land in different guilds.
    """
    rng = random.Random(seed)
    violating_at = set(rng.sample(range(count), max(1, round(count * violating_share))))
    for i in range(count):
        # Six digits (seven past a million): tags end where a digit cannot follow.
        tag = f"#{first_tag + i:06d}"
        violating = i in violating_at
        prompt = f"{rng.choice(VIOLATING if violating else BENIGN)} {tag}"
        channel = channels[i % len(channels)]
        if isinstance(members, Mapping):
            assert channel.guild_id is not None, "a burst goes to guild channels"
            member = rng.choice(members[channel.guild_id])
        else:
            member = rng.choice(members)
        if rng.random() < generator_share:
            content = f"**{prompt}** - <@{member.id}> {rng.choice(MODES)}"
            post = Post(channel, generator, content, mentions=[member])
        else:
            post = Post(channel, member, prompt)
        yield Planned(post, tag, violating, member)


_TAG = re.compile(r"#\d{6,7}")
DELETE_MESSAGE = "DELETE /channels/{channel_id}/messages/{message_id}"
SEND_MESSAGE = "POST /channels/{channel_id}/messages"


class ActionLog:
    """The bot's REST calls grouped by the burst message they act on, read incrementally.

    A delete names the message id; a DM or a mod-log entry quotes the prompt, and so its tag.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.deletes: dict[int, list[Call]] = defaultdict(list)  # message id -> calls
        self.posts: dict[str, list[Call]] = defaultdict(list)  # tag -> sends quoting it
        self._read = 0

    def update(self) -> ActionLog:
        rest = self.emulator.rest
        with rest.changed:  # only the calls since the last read: no copy of them all
            calls = rest.calls[self._read :]
        for call in calls:
            if call.route == DELETE_MESSAGE:
                self.deletes[call.param("message_id")].append(call)
            elif call.route == SEND_MESSAGE:
                for tag in set(_TAG.findall(json.dumps(call.body, ensure_ascii=False))):
                    self.posts[tag].append(call)
        self._read += len(calls)
        return self

    def dm_posts(self, tag: str) -> list[Call]:
        """Sends quoting `tag` that went to a DM channel (not the mod-log or the channel)."""
        dms = self.emulator.world.dm_channels
        dm_ids = {c.id for c in list(dms.values())}
        return [c for c in self.posts.get(tag, []) if c.param("channel_id") in dm_ids]

    def last_action_at(self, message_id: int, tag: str) -> float | None:
        times = [c.at for c in self.deletes.get(message_id, []) if c.ok]
        times += [c.at for c in self.posts.get(tag, []) if c.ok]
        return max(times, default=None)
