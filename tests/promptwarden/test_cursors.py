"""The catch-up cursor covers only a contiguous prefix of handled messages."""

from __future__ import annotations

from promptwarden.cursors import CursorTracker

CHANNEL = (1, 10)
OTHER = (1, 11)


def caught_up() -> CursorTracker[tuple[int, int]]:
    tracker: CursorTracker[tuple[int, int]] = CursorTracker()
    tracker.gap_opened()
    tracker.caught_up(CHANNEL, tracker.epoch)
    tracker.caught_up(OTHER, tracker.epoch)
    return tracker


def test_the_cursor_stops_below_the_oldest_message_still_in_flight() -> None:
    tracker = caught_up()
    for message_id in (100, 101, 102):
        tracker.begin(CHANNEL, message_id)
    tracker.finish(CHANNEL, 101, handled=True)
    tracker.finish(CHANNEL, 102, handled=True)
    assert tracker.take_advanced() == {}  # 100 is still waiting: a kill must not skip it
    tracker.finish(CHANNEL, 100, handled=True)
    assert tracker.take_advanced() == {CHANNEL: 102}


def test_out_of_scope_messages_do_not_move_the_cursor_but_do_not_hold_it() -> None:
    tracker = caught_up()
    tracker.begin(CHANNEL, 100)
    tracker.begin(CHANNEL, 101)
    tracker.begin(CHANNEL, 102)
    tracker.finish(CHANNEL, 100, handled=False)  # e.g. our own message
    tracker.finish(CHANNEL, 102, handled=True)
    assert tracker.take_advanced() == {}
    tracker.finish(CHANNEL, 101, handled=True)
    assert tracker.take_advanced() == {CHANNEL: 102}


def test_live_messages_during_a_gap_wait_for_catch_up_to_queue_the_history() -> None:
    tracker = caught_up()
    tracker.begin(CHANNEL, 100)
    tracker.finish(CHANNEL, 100, handled=True)
    assert tracker.take_advanced() == {CHANNEL: 100}
    tracker.gap_opened()  # session lost: 101..150 posted meanwhile, only in history
    for live in (151, 152):
        tracker.begin(CHANNEL, live)
        tracker.finish(CHANNEL, live, handled=True)
    assert tracker.take_advanced() == {}  # not past the unread history
    epoch = tracker.epoch
    for history in range(101, 153):  # catch-up reads up to the newest message
        tracker.begin(CHANNEL, history)
    tracker.caught_up(CHANNEL, epoch)
    assert tracker.take_advanced() == {}
    for history in range(101, 153):
        tracker.finish(CHANNEL, history, handled=True)
    assert tracker.take_advanced() == {CHANNEL: 152}


def test_a_stale_catch_up_does_not_release_a_newer_gap() -> None:
    tracker = caught_up()
    epoch = tracker.epoch
    tracker.gap_opened()  # another loss while the first catch-up ran
    tracker.caught_up(CHANNEL, epoch)
    tracker.catch_up_done(epoch)
    tracker.begin(CHANNEL, 200)
    tracker.finish(CHANNEL, 200, handled=True)
    assert tracker.frozen(CHANNEL) and tracker.take_advanced() == {}


def test_channels_catch_up_did_not_read_move_once_it_is_done() -> None:
    tracker: CursorTracker[tuple[int, int]] = CursorTracker()
    tracker.gap_opened()
    epoch = tracker.epoch
    tracker.begin(OTHER, 300)  # a thread created after catch-up listed the channels
    tracker.finish(OTHER, 300, handled=True)
    assert tracker.take_advanced() == {}
    tracker.catch_up_done(epoch)
    assert tracker.take_advanced() == {OTHER: 300}


def test_a_failed_message_holds_its_channel_until_it_is_read_again() -> None:
    tracker = caught_up()
    tracker.begin(CHANNEL, 100)
    tracker.hold(CHANNEL)  # screening 100 raised
    tracker.finish(CHANNEL, 100, handled=False)
    for message_id in range(101, 1101):
        tracker.begin(CHANNEL, message_id)
        tracker.finish(CHANNEL, message_id, handled=True)
    assert tracker.take_advanced() == {}
    assert tracker.frozen(CHANNEL)
    tracker.begin(OTHER, 5)
    tracker.finish(OTHER, 5, handled=True)
    assert tracker.take_advanced() == {OTHER: 5}  # other channels go on
    tracker.gap_opened()
    epoch = tracker.epoch
    tracker.begin(CHANNEL, 100)  # the next catch-up reads it again
    tracker.caught_up(CHANNEL, epoch)
    tracker.finish(CHANNEL, 100, handled=True)
    assert tracker.take_advanced() == {CHANNEL: 1100}


def test_memory_stays_bounded_by_what_is_in_flight() -> None:
    tracker = caught_up()
    for message_id in range(1, 10_001):
        tracker.begin(CHANNEL, message_id)
        tracker.finish(CHANNEL, message_id, handled=True)
    assert tracker.take_advanced() == {CHANNEL: 10_000}
    assert not tracker._channels  # nothing kept once everything is covered
    tracker.gap_opened()
    for message_id in range(10_001, 20_001):  # frozen: only the newest handled id is kept
        tracker.begin(CHANNEL, message_id)
        tracker.finish(CHANNEL, message_id, handled=True)
    assert len(tracker._channels[CHANNEL].handled) == 1


def test_a_held_channel_keeps_only_what_is_in_flight() -> None:
    tracker = caught_up()
    tracker.hold(CHANNEL)
    for message_id in range(1, 5001):
        tracker.begin(CHANNEL, message_id)
        tracker.begin(OTHER, message_id)  # e.g. an unwatched channel while frozen
        tracker.finish(OTHER, message_id, handled=False)
        tracker.finish(CHANNEL, message_id, handled=True)
    channel = tracker._channels[CHANNEL]
    assert len(channel.handled) == 1 and len(channel.in_flight_heap) <= 1
    assert OTHER not in tracker._channels
