"""The one back-off of every retry loop: doubling, capped, reset, and cut short by stop."""

from __future__ import annotations

import threading
import time

import pytest

from usermessages.retry import Backoff


def test_delays_double_up_to_the_cap_and_reset_to_the_first() -> None:
    backoff = Backoff(cap=1.0)
    assert [backoff.advance() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    backoff.reset()
    assert backoff.advance() == 0.1


def test_wait_sleeps_the_delay_when_nothing_stops_it() -> None:
    backoff = Backoff(cap=1.0, first=0.05)
    started = time.monotonic()
    assert backoff.wait() is False
    assert time.monotonic() - started >= 0.05
    assert backoff.delay == 0.1


def test_a_stop_set_during_the_wait_ends_it_at_once() -> None:
    stop = threading.Event()
    backoff = Backoff(cap=600.0, stop=stop, first=600.0)
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert backoff.wait() is True
    assert time.monotonic() - started < 30  # not the 600 s delay


def test_wait_on_another_event_is_cut_short_by_it() -> None:
    kick = threading.Event()
    kick.set()
    assert Backoff(cap=600.0, first=600.0).wait(kick) is True


def test_a_first_delay_above_the_cap_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(cap=0.1, first=1.0)
