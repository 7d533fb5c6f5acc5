"""The worker's memory of stops for turns it has not started: bounded, and
O(1) per stop however many it holds (issue 18, finding 4: past 100,000
remembered stops each further one rebuilt the whole set, ~8.5 ms, so ~120
stops/s kept every worker busy)."""

from __future__ import annotations

import time

import pytest

from shared.keys import CANCEL_TTL_S
from worker import cancel
from worker.cancel import EARLY_MAX, CancelWatcher


def watcher() -> CancelWatcher:
    # request() and watch() never touch Redis.
    return CancelWatcher(redis=None, channel="tc:cancel")  # type: ignore[arg-type]


def test_a_flood_of_distinct_stops_stays_bounded_and_cheap() -> None:
    w = watcher()
    flood = EARLY_MAX + 50_000
    for i in range(flood):
        w.request(f"turn{i}", "mallory")
    assert w.remembered == EARLY_MAX
    # The newest stops are the ones kept; a turn stopped at the end of the
    # flood still ends at once when it starts here.
    assert w.watch(f"turn{flood - 1}", "mallory").is_set()
    assert not w.watch("turn0", "mallory").is_set()  # the oldest were forgotten


def test_a_stop_counts_only_for_the_turns_own_user_and_only_while_fresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = watcher()
    w.request("t1", "alice")
    assert not w.watch("t1", "bob").is_set()
    w.request("t2", "alice")
    # Ten minutes and a second later the stop has expired (its key has too).
    later = time.monotonic() + CANCEL_TTL_S + 1
    monkeypatch.setattr(cancel.time, "monotonic", lambda: later)
    assert not w.watch("t2", "alice").is_set()
    w.request("t3", "alice")  # expired ones are dropped as new ones come
    assert w.remembered == 1
