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

Refusals: past the server's cap, 503 ``serviceUnavailable`` (the server is
full; another one behind the balancer may have room); past the project's,
429 ``overLimit`` (only that project is refused, and a balancer does not
count a 429 against a healthy server). Both carry Retry-After.

The count is this process's (``LocalSlots``). With several API workers (issue
25) a shared count, e.g. a table of leases in the database that each holder
renews and that expire when a process dies, implements the same ``Slots``
protocol; the callers do not change.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from usermessages import metrics
from usermessages.config import Settings
from usermessages.errors import ProjectOverLimit, ServerBusy
from usermessages.web.faults import UNAVAILABLE_TEXT

LOG = logging.getLogger(__name__)
# Seconds a refused client waits: a server's slot frees as soon as any holder
# ends; a project's only when one of that project's own does.
RETRY_FULL = 5
RETRY_PROJECT = 15


class Lease(Protocol):
    """One held slot."""

    def release(self) -> None:
        """Give the slot back; a second call does nothing."""


class Slots(Protocol):
    """A bounded number of concurrent holders, in total and per project."""

    def acquire(self, project: str) -> Lease:
        """A slot for ``project``; raises ServerBusy or ProjectOverLimit when there is none."""

    def held(self, project: str | None = None) -> int:
        """Slots held now: by ``project``, or by everyone."""


class LocalSlots:
    """Slots counted in this process (a lock, a total and a count per project)."""

    def __init__(self, kind: str, what: str, total: int, per_project: int) -> None:
        self.kind = kind  # the metrics label: "streams", "exports"
        self.what = what  # how a refusal names them: "event streams", "exports"
        self.total = total
        self.per_project = per_project
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def acquire(self, project: str) -> Lease:
        # Checked and counted under one lock: two requests never pass one free slot.
        with self._lock:
            if sum(self._held.values()) >= self.total:
                metrics.REFUSED.labels(self.kind, "total").inc()
                raise ServerBusy(f"{UNAVAILABLE_TEXT} (This server holds {self.total} "
                                 f"{self.what} open, its limit.)", RETRY_FULL)
            if self._held[project] >= self.per_project:
                metrics.REFUSED.labels(self.kind, "project").inc()
                raise ProjectOverLimit(
                    f"Your project already holds its share of this server's {self.what} "
                    f"({self.per_project}); close one or try again later.", RETRY_PROJECT)
            self._held[project] += 1
            metrics.HELD.labels(self.kind).inc()
        return _LocalLease(self, project)

    def held(self, project: str | None = None) -> int:
        with self._lock:
            return sum(self._held.values()) if project is None else self._held[project]

    def _release(self, project: str) -> None:
        with self._lock:
            self._held[project] -= 1
            if not self._held[project]:
                del self._held[project]  # a project with nothing open leaves no trace
            metrics.HELD.labels(self.kind).dec()


@dataclass
class _LocalLease:
    slots: LocalSlots
    project: str
    _released: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self.slots._release(self.project)


@dataclass(frozen=True)
class Limits:
    """The slots both front ends draw from, and whether the server is shutting down."""

    streams: Slots
    exports: Slots
    # Set when the server begins to shut down: open streams end at their next poll
    # (uvicorn's graceful shutdown would otherwise wait for each to time out).
    closing: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        for kind, total, share in (("streams", settings.max_streams,
                                    settings.max_streams_per_project),
                                   ("exports", settings.max_exports,
                                    settings.max_exports_per_project)):
            if share >= total:
                # Allowed (a one-tenant cloud), but the per-project cap then protects nobody.
                LOG.warning("[api] max_%s_per_project (%d) is not below max_%s (%d): one "
                            "project can take every slot", kind, share, kind, total)
        return cls(streams=LocalSlots("streams", "event streams", settings.max_streams,
                                      settings.max_streams_per_project),
                   exports=LocalSlots("exports", "exports", settings.max_exports,
                                      settings.max_exports_per_project))


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
