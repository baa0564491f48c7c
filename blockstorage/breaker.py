"""A circuit breaker for the bus: once the broker is known down, fail in microseconds.

Without it every caster waits its own full time-out on a dead or frozen broker,
one after the other. The breaker opens on the first cast that fails (after its
one reconnection); while it is open casts fail at once, and a background probe
tries the broker every ``interval`` seconds and closes the breaker when it
answers. ``on_change(down)`` is called from the probe thread, never from a
caller's, so announcing the outage never slows a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

LOG = logging.getLogger(__name__)


class Breaker:
    def __init__(self, probe: Callable[[], None], interval: float,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self._probe = probe
        self._interval = interval
        self._on_change = on_change
        self._lock = threading.Lock()
        self._opened_at: float | None = None
        self._reason = ""
        self._closed = threading.Event()  # set when the owner shuts down

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def describe(self) -> str:
        opened = self._opened_at
        if opened is None:
            return "closed"
        return f"open for {time.monotonic() - opened:.1f}s after {self._reason}"

    def trip(self, reason: str) -> None:
        """Open the breaker (idempotent) and start the probe that will close it."""
        with self._lock:
            if self._opened_at is not None:
                return
            self._opened_at = time.monotonic()
            self._reason = reason
        LOG.warning("bus circuit breaker open: %s", reason)
        threading.Thread(target=self._watch, name="bus-breaker-probe", daemon=True).start()

    def shutdown(self) -> None:
        self._closed.set()

    def _notify(self, down: bool) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(down)
        except Exception:  # an announcement must never stop the probe
            LOG.exception("bus state announcement failed")

    def _watch(self) -> None:
        self._notify(True)
        while not self._closed.is_set():
            try:
                self._probe()
            except Exception as exc:  # still down: try again later
                LOG.debug("bus probe failed: %s", exc)
                self._closed.wait(self._interval)
                continue
            with self._lock:
                self._opened_at = None
            LOG.warning("bus circuit breaker closed: the broker answers again")
            self._notify(False)
            return
