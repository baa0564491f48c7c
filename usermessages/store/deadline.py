"""A client-side deadline on the API's database connections.

A PostgreSQL server stopped with SIGSTOP cannot enforce ``statement_timeout``,
and its kernel still ACKs TCP, so neither keepalives nor ``tcp_user_timeout``
fire: a request would wait for the whole freeze. So each connection an API
request checks out is armed here for ``budget`` seconds; if it is still out
when they pass, the watchdog shuts its socket down. The driver then fails at
once ("server closed the connection"), SQLAlchemy invalidates the connection,
and the API answers 503. Other users of the engine (collector, reaper,
migrations) set no budget and are never armed: their work may be long.
"""

from __future__ import annotations

import contextvars
import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

# Seconds a connection checked out in this context may stay out; None: unbounded.
budget: contextvars.ContextVar[float | None] = contextvars.ContextVar("store_budget",
                                                                      default=None)
# When the current store work began (a request, or one poll of a stream).
started: contextvars.ContextVar[float] = contextvars.ContextVar("store_started", default=0.0)
EXPIRED = "usermessages_deadline_expired"


def begin(seconds: float | None) -> None:
    """Bound the store work that starts now, in this context, to ``seconds`` per connection."""
    budget.set(seconds)
    started.set(time.monotonic())


class Breaker:
    """Once the database has failed a deadline or a connect, fail requests fast.

    Without it, the requests queued behind the cut connections would each
    spend a connect time-out (2 s at least) on the frozen server in turn.
    While open, one request at a time probes with a real connect; the others
    fail at once. The first connect that succeeds closes it, so recovery needs
    no timer and nothing waits for a fixed delay.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._probing = False

    def trip(self) -> None:
        with self._lock:
            if not self._open:
                LOG.error("the database is not answering: failing requests fast until it does")
            self._open = True

    def begin_connect(self, fresh: bool) -> bool:
        """May a budgeted connect go ahead? True: it does, as the probe if open.

        Only a ``fresh`` request probes: one that already waited for the pool
        would add a connect time-out to its wait.
        """
        with self._lock:
            if not self._open:
                return True
            if self._probing or not fresh:
                return False
            self._probing = True
            return True

    def end_connect(self, ok: bool) -> None:
        with self._lock:
            self._probing = False
            if ok and self._open:
                LOG.warning("the database answers again")
                self._open = False
            elif not ok:
                self._open = True



class Watchdog:
    """One thread for the process, waking at the earliest armed deadline."""

    def __init__(self) -> None:
        # connection record -> (deadline, fd, what to call when it expires)
        self._armed: dict[Any, tuple[float, int, Callable[[], None]]] = {}
        self._heap: list[tuple[float, int, Any]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, record: Any, fd: int, seconds: float, on_expiry: Callable[[], None]) -> None:
        deadline = time.monotonic() + seconds
        with self._wake:
            record.info[EXPIRED] = False
            self._armed[record] = (deadline, fd, on_expiry)
            heapq.heappush(self._heap, (deadline, id(record), record))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-deadline",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def disarm(self, record: Any) -> None:
        # Called before the connection is returned, invalidated or closed, so a
        # closed descriptor (which the OS may reuse) is never shut down.
        with self._wake:
            self._armed.pop(record, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, _, record = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._wake.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                armed = self._armed.get(record)
                if armed is None or armed[0] != deadline:
                    continue  # disarmed, or armed again later
                del self._armed[record]
                record.info[EXPIRED] = True
                _shut_down(armed[1])
                armed[2]()


def _shut_down(fd: int) -> None:
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        LOG.warning("a database connection passed its deadline; closed it")
    except OSError as exc:  # already closed by the server: nothing is waiting on it
        LOG.debug("shutting down an expired connection: %s", exc)


WATCHDOG = Watchdog()
