"""Catch-up cursors that never pass a message not yet handled.

Catch-up reads a channel's history after its cursor, so the cursor must only ever cover a
contiguous prefix of handled messages: a message counts as handled once it was screened
and its incident, if any, recorded. Two things break contiguity, and both are held here:

- Messages still in flight (queued, waiting for room in the queue, or being screened): the
  cursor stops below the oldest of them, whatever newer ones finished first.
- A gap: from the start of a session (or a lost one) until catch-up has read a channel's
  history, live messages are newer than history nobody has screened yet, so the channel's
  cursor is frozen until catch-up has queued that history.

Memory stays bounded: per channel, the ids in flight (bounded by the work queue and its
waiting producers) and the handled ids above the oldest one in flight; while a channel is
frozen only the newest handled id is kept, since catch-up queues everything older again.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class _Channel:
    in_flight: Counter[int] = field(default_factory=Counter)
    in_flight_heap: list[int] = field(default_factory=list)  # lazily pruned
    handled: list[int] = field(default_factory=list)  # a min-heap of ids above the cursor

    def oldest_in_flight(self) -> int | None:
        heap = self.in_flight_heap
        while heap and not self.in_flight[heap[0]]:
            del self.in_flight[heapq.heappop(heap)]
        return heap[0] if heap else None

    def idle(self) -> bool:
        return not self.handled and self.oldest_in_flight() is None


class CursorTracker(Generic[K]):
    """Per-channel (`K`) cursors; `take_advanced` returns the ones to save."""

    def __init__(self) -> None:
        self._channels: dict[K, _Channel] = {}
        self._epoch = 0  # bumped whenever events may have been missed
        self._caught_up: dict[K, int] = {}  # channel -> epoch its history was queued in
        self._done_epoch = -1  # the last epoch whose catch-up went through every guild
        self._held: set[K] = set()  # channels to read again at the next catch-up
        self._advanced: dict[K, int] = {}

    @property
    def epoch(self) -> int:
        return self._epoch

    def gap_opened(self) -> None:
        """Events may have been missed (a new or lost session): freeze every cursor until
        catch-up has queued each channel's history again."""
        self._epoch += 1
        for channel in self._channels.values():
            if len(channel.handled) > 1:
                channel.handled = [max(channel.handled)]

    def caught_up(self, key: K, epoch: int) -> None:
        """Catch-up started in `epoch` has queued the channel's history (registering each
        message with `begin`): from now on its cursor may move. A stale epoch (a gap opened
        meanwhile) changes nothing; the next catch-up covers it."""
        if epoch == self._epoch:
            self._caught_up[key] = epoch
            self._held.discard(key)
            self._settle(key)

    def catch_up_done(self, epoch: int) -> None:
        """Catch-up of `epoch` went through every guild: channels it did not read (created
        since, or not readable) move again; those whose reading failed stay held."""
        if epoch == self._epoch:
            self._done_epoch = epoch
            for key in list(self._channels):
                self._settle(key)

    def frozen(self, key: K) -> bool:
        if key in self._held:
            return True
        return self._done_epoch != self._epoch and self._caught_up.get(key) != self._epoch

    def hold(self, key: K) -> None:
        """Reading or handling in this channel failed: keep its cursor where it is until the
        next catch-up reads the channel again (from the saved cursor, so that message too)."""
        self._held.add(key)
        self._settle(key)

    def begin(self, key: K, message_id: int) -> None:
        """A message enters the pipeline; call before any await, so arrival order holds."""
        # Not setdefault: that would build a _Channel (and its Counter) per message.
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel()
        if not channel.in_flight[message_id]:
            heapq.heappush(channel.in_flight_heap, message_id)
        channel.in_flight[message_id] += 1

    def finish(self, key: K, message_id: int, *, handled: bool) -> None:
        """The message left the pipeline: `handled` when screened and its incident recorded
        (or none needed); False when it was out of scope (nothing to cover)."""
        channel = self._channels.get(key)
        if channel is None or not channel.in_flight[message_id]:
            return
        channel.in_flight[message_id] -= 1
        if handled:
            heapq.heappush(channel.handled, message_id)
        self._settle(key)

    def take_advanced(self) -> dict[K, int]:
        """Cursors that moved since the last call (channel -> newest covered id)."""
        advanced, self._advanced = self._advanced, {}
        return advanced

    def pending_saves(self) -> int:
        return len(self._advanced)

    def _settle(self, key: K) -> None:
        channel = self._channels.get(key)
        if channel is None:
            return
        handled = channel.handled
        limit = channel.oldest_in_flight()  # also forgets the finished ids below it
        if self.frozen(key):
            if len(handled) > 1:
                channel.handled = [max(handled)]
        else:
            newest: int | None = None
            while handled and (limit is None or handled[0] < limit):
                newest = heapq.heappop(handled)
            if newest is not None and newest > self._advanced.get(key, 0):
                self._advanced[key] = newest
        if channel.idle():
            del self._channels[key]
