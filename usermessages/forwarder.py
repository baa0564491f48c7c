"""The SDK's bus sink: spool locally, forward to the broker in the background.

``deliver`` (on the caller's thread) only appends to the local spool and
wakes the forwarder thread, so ``Messenger.create`` costs one local SQLite
insert whatever the broker is doing. The forwarder publishes oldest first,
in batches, each an AMQP transaction, and removes an envelope from the spool
only once the broker has committed its batch. While the broker is down it retries with capped
back-off and counts what waits (spooled), what gets through afterwards
(replayed) and what the bounded spool had to give up (dropped).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Producer

from usermessages import bus, envelope, metrics
from usermessages.spool import Spool

LOG = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF = 30.0


@dataclass
class ForwarderStats:
    published: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0


class BusSink:
    """A Messenger sink that goes through the local spool to the bus."""

    def __init__(
        self,
        url: str,
        spool: Spool,
        *,
        timeout: float = 2.0,
        queue_type: str = "classic",
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._url = url
        self._spool = spool
        self._timeout = timeout
        self._queue_type = queue_type
        self._max_backoff = max_backoff
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._transactional = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._down = False  # the broker failed us and has not come back yet
        self._recovering = 0  # envelopes to count as replayed once it is back
        self._lock = threading.Lock()
        self.stats = ForwarderStats()
        self._thread = threading.Thread(target=self._run, name="usermessages-forwarder",
                                        daemon=True)
        self._thread.start()

    # --- the caller's side: cheap and never blocking on the network ----------

    def deliver(self, record: dict[str, Any]) -> None:
        dropped = self._spool.append(envelope.encode(record))
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
        """Envelopes not yet confirmed by the broker."""
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
        self._disconnect()
        self._spool.close()

    # --- the forwarder thread ----------------------------------------------

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            batch = self._spool.oldest(BATCH)
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._publish(batch)
            except Exception as exc:  # any broker trouble: keep the spool, retry later
                self._went_down(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.1

    def _publish(self, batch: list[tuple[int, bytes]]) -> None:
        producer = self._ensure_producer()
        for _seq, body in batch:
            producer.publish(
                body,
                exchange=bus.EXCHANGE,
                routing_key=bus.MESSAGES_KEY,
                content_type=envelope.CONTENT_TYPE,
                content_encoding="utf-8",
                delivery_mode=2,
                retry=False,
                timeout=self._timeout,
            )
        if self._transactional:
            # Returns once the broker holds the whole batch (bounded by read_timeout).
            producer.channel.tx_commit()
        # A batch that failed stays spooled whole and is published again; the
        # collector ignores the ids that had got through.
        self._spool.remove([seq for seq, _ in batch])
        self._count_published(len(batch))
        metrics.SPOOL_DEPTH.set(len(self._spool))

    def _count_published(self, count: int) -> None:
        if not count:
            return
        with self._lock:
            self.stats.published += count
            metrics.PUBLISHED.inc(count)
            if self._down:
                self._down = False
                self._recovering = len(self._spool) + count
                LOG.warning("message broker reachable again; replaying %d spooled messages",
                            self._recovering)
            if self._recovering:
                replayed = min(count, self._recovering)
                self._recovering -= replayed
                self.stats.replayed += replayed
                metrics.REPLAYED.inc(replayed)

    def _went_down(self, exc: Exception) -> None:
        self._disconnect()
        with self._lock:
            first = not self._down
            if first:
                self._down = True
                # What is already waiting counts as spooled, too.
                self.stats.spooled += len(self._spool)
                metrics.SPOOLED.inc(len(self._spool))
        if first:
            LOG.error("message broker unreachable (%s); spooling user messages locally",
                      type(exc).__name__)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            connection = bus.connect(self._url, timeout=self._timeout, confirms=False)
            connection.ensure_connection(max_retries=1, timeout=self._timeout)
            bus.declare(connection, self._queue_type)
            channel = connection.default_channel
            self._transactional = bus.is_amqp(self._url)
            if self._transactional:
                channel.tx_select()
            self._connection = connection
            self._producer = Producer(channel)
        return self._producer

    def _disconnect(self) -> None:
        self._producer = None
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; nothing to save
                LOG.debug("error closing broker connection", exc_info=True)
            self._connection = None
