"""Spool locally, forward in the background: the mechanism under the bus and Zaqar sinks.

``deliver`` (on the caller's thread) only appends the envelope to the local
spool and wakes the forwarder thread, so ``Messenger.create`` costs one local
SQLite insert whatever the far end is doing. The forwarder hands the oldest
envelopes to the subclass's ``_publish`` in batches; the subclass removes them
from the spool (``_settled``) only once the far end holds them. While the far
end fails, the forwarder retries with capped back-off and counts what waits
(spooled), what gets through afterwards (replayed) and what the bounded spool
had to give up (dropped).

Shutting down never drops silently: ``flush`` waits (bounded) for the spool
to empty, and ``stop`` counts, logs and returns what an in-memory spool still
held (lost); a file spool keeps it for the next start.

A subclass says only how to publish a batch (``_publish``) and how to let go
of its connection (``_disconnect``, after a failure and at exit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from usermessages import metrics
from usermessages.errors import UserMessagesError
from usermessages.message import Message
from usermessages.retry import Backoff
from usermessages.sinks.spool import Spool

BATCH = 200
MAX_BACKOFF = 30.0
CHECKPOINT_INTERVAL = 0.5  # seconds between the forwarder's spool checkpoints, at most


@dataclass
class SinkStats:
    published: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    lost: int = 0  # undelivered at stop, in an in-memory spool


class SinkClosed(UserMessagesError):
    """Raised when a message is created on a messenger that was closed."""


class ForwardingSink:
    """A Messenger sink that goes through the local spool to a far end, in a thread."""

    #: What the far end is called in logs ("message broker", "Zaqar").
    far_end = "the far end"

    def __init__(self, spool: Spool, *, timeout: float, max_backoff: float,
                 thread_name: str) -> None:
        # Subclasses set their own attributes first: the thread starts here.
        self._spool = spool
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._wake = threading.Event()  # something was spooled
        self._kick = threading.Event()  # cut a back-off short: someone is waiting
        self._stop = threading.Event()
        self._stopped = False
        self._drained = threading.Condition()  # notified whenever envelopes leave the spool
        self._down = False  # the far end failed us and has not come back yet
        self._recovering = 0  # envelopes to count as replayed once it is back
        self._lock = threading.Lock()
        self.stats = SinkStats()
        self._log = logging.getLogger(type(self).__module__)  # the logger it always had
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    # --- what a subclass provides ---------------------------------------------

    def _publish(self, batch: list[tuple[int, bytes]]) -> None:
        """Hand ``batch`` to the far end and ``_settled`` what it holds; raise to retry."""
        raise NotImplementedError

    def _disconnect(self) -> None:
        """Let go of the connection (after a failure, and when the forwarder exits)."""

    def _describe(self, exc: Exception) -> str:
        """The failure as logged: its class, unless the subclass's errors say more."""
        return type(exc).__name__

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
            self._log.warning("spool full: dropped %d oldest user messages", dropped)
        self._wake.set()

    def pending(self) -> int:
        """Envelopes the far end has not taken yet."""
        return len(self._spool)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the far end holds every spooled envelope.

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
            self._log.warning("closing with %d user messages undelivered; they stay in the spool "
                        "file for the next start", undelivered)
            return 0
        with self._lock:
            self.stats.lost += undelivered
        metrics.LOST.inc(undelivered)
        self._log.error("closing with %d user messages undelivered: lost with the in-memory "
                  "spool (set [sdk] spool_path to keep them)", undelivered)
        return undelivered

    def close(self) -> None:
        """Stop (see ``stop``, bounded by the far end's timeout) and release the spool."""
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
        checkpointed = float("-inf")
        while not self._stop.is_set():
            if time.monotonic() - checkpointed >= CHECKPOINT_INTERVAL:
                # Here, not in an append: the caller never pays for the spool's fsyncs.
                self._spool.checkpoint()
                checkpointed = time.monotonic()
            self._wake.clear()  # before reading: a later append sets it again
            batch = self._spool.oldest(BATCH)
            if not batch:
                self._wake.wait(1.0)
                continue
            try:
                self._publish(batch)
            except Exception as exc:  # any trouble at the far end: keep the spool, retry
                self._went_down(exc)
                backoff.wait(self._kick)  # stop and flush cut it short
                self._kick.clear()
                continue
            metrics.SPOOL_DEPTH.set(len(self._spool))
            backoff.reset()

    def _settled(self, seqs: Iterable[int], *, published: bool = True) -> None:
        """The far end took (or, ``published=False``, refused for good) these envelopes."""
        seqs = list(seqs)
        self._spool.remove(seqs)
        with self._drained:
            self._drained.notify_all()
        if published:
            self._count_published(len(seqs))

    def _count_published(self, count: int) -> None:
        if not count:
            return
        with self._lock:
            self.stats.published += count
            metrics.PUBLISHED.inc(count)
            if self._down:
                self._down = False
                self._recovering = len(self._spool) + count
                self._log.warning("%s reachable again; replaying %d spooled messages",
                            self.far_end, self._recovering)
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
            self._log.error("%s unreachable (%s); spooling user messages locally",
                      self.far_end, self._describe(exc))
