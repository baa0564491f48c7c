"""Capped exponential back-off with a stop event: the one retry rhythm of every loop
that waits for a broker, a store or Zaqar to come back (collector, forwarder, Zaqar
sink and source, the reference service's RPC server).

A loop keeps one ``Backoff``, calls ``wait()`` after each failure (0.1 s, 0.2 s,
0.4 s... up to ``cap``) and ``reset()`` after a success. The wait is on an event, so
stopping the process cuts it short instead of sleeping through the shutdown.
"""

from __future__ import annotations

import threading

FIRST = 0.1


class Backoff:
    """The next delay of a retry loop, doubling from ``first`` up to ``cap``."""

    def __init__(self, cap: float, stop: threading.Event | None = None,
                 first: float = FIRST) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"back-off needs 0 < first <= cap, not first={first} cap={cap}")
        self._first = first
        self._cap = cap
        self._stop = stop if stop is not None else threading.Event()
        self.delay = first

    def advance(self) -> float:
        """The delay to wait now; the next one doubles (capped)."""
        delay = self.delay
        self.delay = min(delay * 2, self._cap)
        return delay

    def wait(self, event: threading.Event | None = None) -> bool:
        """Wait the current delay on ``event`` (default: the stop event), then double it.

        True if the event was set (stop, or a kick), so the caller can leave at once.
        """
        return (event or self._stop).wait(self.advance())

    def reset(self) -> None:
        """Back to the first delay: the last attempt succeeded."""
        self.delay = self._first
