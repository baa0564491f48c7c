"""The SDK's bus sink: spool locally, forward to the broker in the background.

``deliver`` (on the caller's thread) only appends to the local spool and
wakes the forwarder thread, so ``Messenger.create`` costs one local SQLite
insert whatever the broker is doing. The forwarder publishes oldest first,
in batches, each an AMQP transaction, and removes an envelope from the spool
only once the broker has committed its batch. While the broker is down it retries with capped
back-off and counts what waits (spooled), what gets through afterwards
(replayed) and what the bounded spool had to give up (dropped).

Shutting down never drops silently: ``flush`` waits (bounded) for the spool
to empty, and ``stop`` counts, logs and returns what an in-memory spool
still held (lost); a file spool keeps it for the next start.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kombu import Connection, Producer

from usermessages import bus, envelope, metrics
from usermessages.errors import UserMessagesError
from usermessages.message import Message
from usermessages.retry import Backoff
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
    lost: int = 0  # undelivered at stop, in an in-memory spool


class SinkClosed(UserMessagesError):
    """Raised when a message is created on a messenger that was closed."""


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
        self._wake = threading.Event()  # something was spooled
        self._kick = threading.Event()  # cut a back-off short: someone is waiting
        self._stop = threading.Event()
        self._stopped = False
        self._drained = threading.Condition()  # notified whenever envelopes leave the spool
        self._down = False  # the broker failed us and has not come back yet
        self._recovering = 0  # envelopes to count as replayed once it is back
        self._lock = threading.Lock()
        self.stats = ForwarderStats()
        self._thread = threading.Thread(target=self._run, name="usermessages-forwarder",
                                        daemon=True)
        self._thread.start()

    # --- the caller's side: cheap and never blocking on the network ----------

    def deliver(self, message: Message) -> None:
        body = message.to_wire()
        # Under the lock that stop() takes: an envelope is either appended before
        # stop() counts what is left, or refused (and the caller counts it failed).
        with self._lock:
            if self._stopped:
                raise SinkClosed("the messenger is closed")
            dropped = self._spool.append(body)
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
        """Wait up to ``timeout`` seconds until the broker holds every spooled envelope.

        True when the spool is empty. A forwarder backing off after a failure
        tries again at once rather than at the end of its back-off.
        """
        self._kick.set()
        self._wake.set()
        with self._drained:
            return self._drained.wait_for(lambda: not len(self._spool), max(timeout, 0.0))

    def stop(self, timeout: float) -> int:
        """Stop forwarding, waiting at most ``timeout`` seconds for the step in flight.

        Returns how many undelivered envelopes are lost: those an in-memory
        spool still holds (counted in ``stats.lost`` and the ``lost`` metric,
        logged as an error). A file spool keeps them for the next start. If
        the step in flight outlives ``timeout``, what it then delivers was
        already counted: the count errs on the side of loss.
        """
        with self._lock:
            if self._stopped:
                return 0
            self._stopped = True
        self._stop.set()
        self._kick.set()
        self._wake.set()
        self._thread.join(max(timeout, 0.0))
        undelivered = len(self._spool)
        if not undelivered:
            return 0
        if self._spool.durable:
            LOG.warning("closing with %d user messages undelivered; they stay in the spool "
                        "file for the next start", undelivered)
            return 0
        with self._lock:
            self.stats.lost += undelivered
        metrics.LOST.inc(undelivered)
        LOG.error("closing with %d user messages undelivered: lost with the in-memory "
                  "spool (set [sdk] spool_path to keep them)", undelivered)
        return undelivered

    def close(self) -> None:
        """Stop (see ``stop``, bounded by the broker timeout) and release the spool."""
        self.stop(self._timeout)
        # The forwarder releases the connection and the spool as it exits.

    # --- the forwarder thread ----------------------------------------------

    def _run(self) -> None:
        try:
            self._forward()
        finally:
            self._disconnect()
            self._spool.close()

    def _forward(self) -> None:
        backoff = Backoff(self._max_backoff, self._stop)
        while not self._stop.is_set():
            self._wake.clear()  # before reading: a later append sets it again
            batch = self._spool.oldest(BATCH)
            if not batch:
                self._wake.wait(1.0)
                continue
            try:
                self._publish(batch)
            except Exception as exc:  # any broker trouble: keep the spool, retry later
                self._went_down(exc)
                backoff.wait(self._kick)  # stop and flush cut it short
                self._kick.clear()
                continue
            backoff.reset()

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
        with self._drained:
            self._drained.notify_all()
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
                channel.tx_select()  # type: ignore[attr-defined]  # kombu's stub lacks it
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
