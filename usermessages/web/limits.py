"""How many event streams and exports run at once: in total, and per project.

Both front ends draw from the same ``Limits`` (the composition root builds one
for the API and the viewer), so the viewer's live list counts against
``[api] max_streams`` as the API's stream does, and its downloads against
``max_exports``. A project may hold at most its own cap of each
(``max_streams_per_project``, ``max_exports_per_project``), so one tenant
cannot take every slot and lock the others out.

A slot is held from the moment a response is admitted until it ends, however
it ends (done, the client gone, an error, the server shutting down):
``LeasedResponse`` gives it back in a ``finally`` around the whole response,
which runs even when the body never started.

Refusals: past the total, 503 ``serviceUnavailable`` (the service is full
for everyone, for now); past the project's cap, 429 ``overLimit`` (only that
project is refused, and a balancer does not count a 429 against a healthy
server). Both carry Retry-After.

The count is the store's, so the caps hold across every worker and node: a
slot is a lease row (store/slots.py), taken in a transaction that first takes
its kind's turn (one row lock: two processes never pass one free slot). The
process holding it renews it every third of LEASE_SECONDS and deletes it when
the response ends; a process that dies stops renewing, so its slots come back
within LEASE_SECONDS by themselves, and at once when `usermessages serve`'s
supervisor sees its worker go (``LeaseKeeper.release_holder``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from usermessages import metrics
from usermessages.config import Settings
from usermessages.errors import ProjectOverLimit, ServerBusy
from usermessages.store import slots as store_slots
from usermessages.store.messages import utcnow
from usermessages.web.faults import UNAVAILABLE_TEXT

LOG = logging.getLogger(__name__)
# Seconds a refused client waits: a server's slot frees as soon as any holder
# ends; a project's only when one of that project's own does.
RETRY_FULL = 5
RETRY_PROJECT = 15
# How long a slot outlives a holder that stopped renewing it (a node that died
# whole); each holder renews every third of it.
LEASE_SECONDS = 30.0


class Lease(Protocol):
    """One held slot."""

    def release(self) -> None:
        """Give the slot back; a second call does nothing. Never blocks."""


class Slots(Protocol):
    """A bounded number of concurrent holders, in total and per project."""

    def acquire(self, project: str) -> Lease:
        """A slot for ``project``; raises ServerBusy or ProjectOverLimit when there is none.
        Blocks (the store): call it off the event loop."""

    def held(self, project: str | None = None) -> int:
        """Slots held now, by every process: by ``project``, or by everyone. Blocks."""


def new_holder() -> str:
    """A name for this process's leases, unique across nodes and restarts."""
    return f"{socket.gethostname()[:200]}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseKeeper:
    """This process's leases: renewed, and deleted once given back, by one thread.

    A response gives its slot back from the event loop, which must not wait on
    the store: the lease is only marked, and deleted by the thread at once, or
    by the next ``acquire``/``held`` of this process, whichever comes first.
    """

    def __init__(self, engine: Engine, holder: str | None = None,
                 seconds: float = LEASE_SECONDS) -> None:
        self.engine = engine
        self.holder = holder or new_holder()
        self.seconds = seconds
        self._held: set[str] = set()
        self._given_back: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def until(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.seconds)

    def keep(self, lease_id: str) -> None:
        """Renew this lease from now on (it was just taken)."""
        with self._lock:
            self._held.add(lease_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="slot-leases",
                                                daemon=True)
                self._thread.start()

    def give_back(self, lease_id: str) -> None:
        """Stop renewing the lease and have it deleted (without waiting for the store)."""
        with self._lock:
            self._held.discard(lease_id)
            self._given_back.add(lease_id)
        self._wake.set()

    def flush(self) -> None:
        """Blocking: delete the leases given back so far. One that cannot be deleted
        now (the store is down) is tried again, and lapses meanwhile."""
        with self._lock:
            gone = set(self._given_back)
        if not gone:
            return
        with self.engine.begin() as conn:
            store_slots.remove(conn, gone)
        with self._lock:
            self._given_back -= gone

    def renew(self) -> None:
        """Blocking: push every held lease's end forward."""
        with self._lock:
            held = set(self._held)
        if not held:
            return
        with self.engine.begin() as conn:
            found = store_slots.renew(conn, held, self.until(utcnow()))
        if found < len(held):
            # Lapsed while the store could not be reached, and deleted by a taker since:
            # those responses go on, uncounted, until they end.
            LOG.warning("%d slot lease(s) lapsed before they could be renewed",
                        len(held) - found)

    def close(self) -> None:
        """Blocking: stop, and delete every lease of this holder (the process is ending)."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            self._held.clear()
            self._given_back.clear()
        try:
            release_holder(self.engine, self.holder)
        except Exception:  # the store is down: they lapse by themselves
            LOG.warning("cannot give back this process's slot leases", exc_info=True)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.seconds / 3)
            self._wake.clear()
            try:
                self.flush()
                self.renew()
            except Exception:  # the store is down: the leases lapse if it stays down
                LOG.warning("cannot renew or give back slot leases", exc_info=True)


def release_holder(engine: Engine, holder: str) -> int:
    """Blocking: give back every slot ``holder`` (a process known to be gone) held."""
    with engine.begin() as conn:
        return store_slots.remove_holder(conn, holder)


class DatabaseSlots:
    """One kind of slot (streams or exports), counted in the store across processes."""

    def __init__(self, kind: str, what: str, total: int, per_project: int,
                 keeper: LeaseKeeper) -> None:
        self.kind = kind  # the metrics label and the store's: "streams", "exports"
        self.what = what  # how a refusal names them: "event streams", "exports"
        self.total = total
        self.per_project = per_project
        self.keeper = keeper

    def acquire(self, project: str) -> Lease:
        self.keeper.flush()  # what this process gave back is free for this very call
        lease_id = str(uuid.uuid4())
        now = utcnow()
        with self.keeper.engine.begin() as conn:
            # Counted and taken in one turn of this kind: nobody else takes one meanwhile.
            store_slots.take_turn(conn, self.kind)
            store_slots.delete_lapsed(conn, now, self.kind)
            if store_slots.held(conn, self.kind, now) >= self.total:
                metrics.REFUSED.labels(self.kind, "total").inc()
                raise ServerBusy(f"{UNAVAILABLE_TEXT} (The service holds {self.total} "
                                 f"{self.what} open, its limit.)", RETRY_FULL)
            if store_slots.held(conn, self.kind, now, project) >= self.per_project:
                metrics.REFUSED.labels(self.kind, "project").inc()
                raise ProjectOverLimit(
                    f"Your project already holds its share of the service's {self.what} "
                    f"({self.per_project}); close one or try again later.", RETRY_PROJECT)
            store_slots.add(conn, lease_id, self.kind, project, self.keeper.holder,
                            self.keeper.until(now))
        self.keeper.keep(lease_id)
        metrics.HELD.labels(self.kind).inc()
        return _DatabaseLease(self, lease_id)

    def held(self, project: str | None = None) -> int:
        self.keeper.flush()
        with self.keeper.engine.connect() as conn:
            return store_slots.held(conn, self.kind, utcnow(), project)


@dataclass
class _DatabaseLease:
    slots: DatabaseSlots
    lease_id: str
    _released: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self.slots.keeper.give_back(self.lease_id)
        metrics.HELD.labels(self.slots.kind).dec()


@dataclass(frozen=True)
class Limits:
    """The slots both front ends draw from, and whether the server is shutting down."""

    streams: Slots
    exports: Slots
    keeper: LeaseKeeper
    # Set when the server begins to shut down: open streams end at their next poll
    # (uvicorn's graceful shutdown would otherwise wait for each to time out).
    closing: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine,
                      holder: str | None = None) -> Limits:
        """The caps of ``settings``, counted in ``engine``'s store under ``holder``
        (this process's name for its leases; a new one by default)."""
        for kind, total, share in (("streams", settings.max_streams,
                                    settings.max_streams_per_project),
                                   ("exports", settings.max_exports,
                                    settings.max_exports_per_project)):
            if share >= total:
                # Allowed (a one-tenant cloud), but the per-project cap then protects nobody.
                LOG.warning("[api] max_%s_per_project (%d) is not below max_%s (%d): one "
                            "project can take every slot", kind, share, kind, total)
        keeper = LeaseKeeper(engine, holder)
        return cls(streams=DatabaseSlots("streams", "event streams", settings.max_streams,
                                         settings.max_streams_per_project, keeper),
                   exports=DatabaseSlots("exports", "exports", settings.max_exports,
                                         settings.max_exports_per_project, keeper),
                   keeper=keeper)


def holder(project_id: str | None) -> str:
    """Whose slot a caller takes: their token's project (a system-scoped token: the system's)."""
    return project_id or "(system)"


class LeasedResponse(StreamingResponse):
    """A streamed response that gives its slot back however it ends, even if its body
    never started (a client gone before the first byte: a generator's own ``finally``
    would not run)."""

    def __init__(self, lease: Lease, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._lease.release()
