"""The SDK's zaqar sink: spool locally, forward to each project's Zaqar queue.

Like the bus sink (forwarder.BusSink), ``deliver`` only appends the envelope
to the local spool and wakes a forwarder thread, so ``Messenger.create``
costs one local SQLite insert whether Zaqar is fast, slow or down. The thread
posts oldest first, one queue per project (``[zaqar] queue`` in the message's
project; admin-only service/system messages go to ``[zaqar] admin_project``),
and removes envelopes from the spool only once Zaqar answered 201 for them.
While Zaqar is unreachable it retries with capped back-off and counts what
waits (spooled), what gets through afterwards (replayed) and what the bounded
spool had to give up, or Zaqar refused for good (dropped).

Collectors learn which projects have queues from an index queue in the admin
project: the sink announces each project there before its first post, and
again every ``announce_interval`` seconds while it keeps posting for it;
collectors consume the announcements (see source.py and docs/zaqar.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from usermessages import metrics
from usermessages.message import Message
from usermessages.retry import Backoff
from usermessages.spool import Spool
from usermessages.zaqar.client import MAX_PER_CALL, MIN_TTL, ZaqarClient, ZaqarError

if TYPE_CHECKING:
    from usermessages.config import Settings

LOG = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF = 30.0
ANNOUNCE_INTERVAL = 600.0
ZAQAR_MAX_TTL = 1209600  # Zaqar's default max_message_ttl (14 days)


@dataclass
class ZaqarSinkStats:
    published: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class Layout:
    """Where messages go in Zaqar (shared by the sink, the source and subscriptions)."""

    queue: str = "user_messages"
    admin_project: str = "admin"
    index_queue: str = "user_messages_projects"
    dead_letter_queue: str = "user_messages_dead"

    def project_of(self, message: dict[str, Any]) -> str:
        return message.get("project_id") or self.admin_project


def layout_from_settings(settings: Settings) -> Layout:
    return Layout(queue=settings.zaqar_queue, admin_project=settings.zaqar_admin_project,
                  index_queue=settings.zaqar_index_queue,
                  dead_letter_queue=settings.zaqar_dead_letter_queue)


def options_from_settings(settings: Settings) -> dict[str, Any]:
    """ZaqarSink's keyword arguments from ``[zaqar]`` (Messenger.from_settings uses it)."""
    return {"layout": layout_from_settings(settings), "max_ttl": settings.zaqar_max_message_ttl,
            "auth_token": settings.zaqar_auth_token}


def zaqar_ttl(ttl: int, max_ttl: int = ZAQAR_MAX_TTL) -> int:
    """A message_ttl Zaqar accepts: at least 60 s, at most its max_message_ttl."""
    return max(MIN_TTL, min(ttl, max_ttl))


class ZaqarSink:
    """A Messenger sink that goes through the local spool to per-project Zaqar queues."""

    def __init__(
        self,
        url: str,
        spool: Spool,
        *,
        ttl: int,
        layout: Layout = Layout(),
        timeout: float = 2.0,
        max_ttl: int = ZAQAR_MAX_TTL,
        max_backoff: float = MAX_BACKOFF,
        auth_token: str = "",
        announce_interval: float = ANNOUNCE_INTERVAL,
    ) -> None:
        self._client = ZaqarClient(url, timeout=timeout, auth_token=auth_token)
        self._spool = spool
        self._layout = layout
        self._ttl = zaqar_ttl(ttl, max_ttl)
        self._index_ttl = max_ttl  # an announcement outlives the messages it points to
        self._announce_interval = announce_interval
        self._announced: dict[str, float] = {}  # project -> monotonic time announced
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._down = False  # Zaqar failed us and has not come back yet
        self._recovering = 0  # envelopes to count as replayed once it is back
        self._lock = threading.Lock()
        self.stats = ZaqarSinkStats()
        self._thread = threading.Thread(target=self._run, name="usermessages-zaqar-forwarder",
                                        daemon=True)
        self._thread.start()

    # --- the caller's side: cheap and never blocking on the network ----------

    def deliver(self, message: Message) -> None:
        dropped = self._spool.append(message.to_wire())
        with self._lock:
            if self._down:
                self.stats.spooled += 1
                metrics.SPOOLED.inc()
            if dropped:
                self.stats.dropped += dropped
                metrics.DROPPED.inc(dropped)
        if dropped:
            LOG.warning("spool full: dropped %d oldest user messages", dropped)
        self._wake.set()

    def pending(self) -> int:
        """Envelopes Zaqar has not accepted yet."""
        return len(self._spool)

    def flush(self, timeout: float) -> bool:
        """Wait until the spool is empty (for tests and orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while len(self._spool) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)
        return not len(self._spool)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self._timeout * 3)
        self._client.close()
        self._spool.close()

    # --- the forwarder thread ----------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self._max_backoff, self._stop)
        while not self._stop.is_set():
            batch = self._spool.oldest(BATCH)
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._publish(batch)
            except Exception as exc:  # any Zaqar trouble: keep the spool, retry later
                self._went_down(exc)
                backoff.wait()
                continue
            backoff.reset()

    def _publish(self, batch: list[tuple[int, bytes]]) -> None:
        by_project: dict[str, list[tuple[int, Any]]] = {}
        for seq, body in batch:
            document = json.loads(body)
            by_project.setdefault(self._layout.project_of(document["message"]), []).append(
                (seq, document))
        for project, items in by_project.items():
            self._announce(project)
            for start in range(0, len(items), MAX_PER_CALL):
                chunk = items[start:start + MAX_PER_CALL]
                accepted = True
                try:
                    self._client.post(project, self._layout.queue,
                                      [{"ttl": self._ttl, "body": doc} for _, doc in chunk])
                except ZaqarError as exc:
                    if not exc.permanent:
                        raise
                    # Zaqar refuses these for good: drop them rather than stall the spool.
                    self._drop(len(chunk), exc)
                    accepted = False
                # A chunk whose 201 was lost is posted again; the collector
                # ignores the ids it has already stored.
                self._spool.remove([seq for seq, _ in chunk])
                if accepted:
                    self._count_published(len(chunk))
        metrics.SPOOL_DEPTH.set(len(self._spool))

    def _announce(self, project: str) -> None:
        """Put ``project`` in the index queue, at most once per announce interval."""
        if not self._layout.index_queue or project == self._layout.admin_project:
            return  # the index is off, or collectors always read the admin project
        last = self._announced.get(project)
        if last is not None and time.monotonic() - last < self._announce_interval:
            return
        self._client.post(self._layout.admin_project, self._layout.index_queue,
                          [{"ttl": self._index_ttl, "body": {"project": project}}])
        self._announced[project] = time.monotonic()

    def _drop(self, count: int, exc: ZaqarError) -> None:
        with self._lock:
            self.stats.dropped += count
        metrics.DROPPED.inc(count)
        LOG.error("Zaqar refused %d user messages for good; dropped them: %s", count, exc)

    def _count_published(self, count: int) -> None:
        with self._lock:
            self.stats.published += count
            metrics.PUBLISHED.inc(count)
            if self._down:
                self._down = False
                self._recovering = len(self._spool) + count
                LOG.warning("Zaqar reachable again; replaying %d spooled messages",
                            self._recovering)
            if self._recovering:
                replayed = min(count, self._recovering)
                self._recovering -= replayed
                self.stats.replayed += replayed
                metrics.REPLAYED.inc(replayed)

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            first = not self._down
            if first:
                self._down = True
                # What is already waiting counts as spooled, too.
                self.stats.spooled += len(self._spool)
                metrics.SPOOLED.inc(len(self._spool))
        if first:
            LOG.error("Zaqar unreachable (%s); spooling user messages locally", exc)
