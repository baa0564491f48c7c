"""The collector: bus → validate → batch insert (idempotent) → ack.

Shaped like kombu's ConsumerMixin: a pure handler decides what an envelope
is (a row to store, or a dead letter with its reason), and a thin loop
connects with capped back-off, drains, flushes batches and stops cleanly.

Guarantees:
* an envelope is acknowledged only after the transaction holding its row
  has committed, so a collector killed at any instant loses nothing (on
  AMQP a batch is acknowledged with one basic.ack, ``multiple=True``);
* rows are inserted with "on conflict do nothing" on the producer's id, so
  the redelivery that follows such a kill stores nothing twice;
* while the store is down the batch is retried with capped back-off and
  nothing is acknowledged; the broker keeps the envelopes;
* an envelope that cannot be accepted (bad JSON, unknown catalog id,
  oversize field, or a row the store refuses) goes to the dead-letter queue
  with the reason, and the rest keeps flowing;
* while it consumes, it announces itself every minute (its release, the schema it
  was built for, the envelope formats it reads: store/collectors.py), which
  ``usermessages-status upgrade check`` reads;
* nothing a message carries is taken for a lost broker: an exception raised
  by any source's ``decide`` (or by kombu decoding the message) dead-letters
  that message with the exception class as the reason, and a row the store
  refuses for any reason but its own outage is isolated from its batch and
  dead-lettered alone. Only broker errors reconnect; only store outages retry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from kombu import Connection, Consumer, Producer
from kombu.message import Message
from sqlalchemy import Engine

from usermessages import bus, envelope, metrics
from usermessages.config import DEFAULTS, Settings, check_ttl
from usermessages.message import Message as UserMessage
from usermessages.retry import Backoff
from usermessages.store import collectors, migrate, series
from usermessages.store.messages import utcnow
from usermessages.store.writer import Writer, Written, policy_of

LOG = logging.getLogger(__name__)
PREFETCH_CAP = 1000


@dataclass(frozen=True)
class Accept:
    """A message to store."""

    message: UserMessage


@dataclass(frozen=True)
class Reject:
    """Cannot be accepted: goes to the dead-letter queue with the reason."""

    reason: str


@dataclass(frozen=True)
class Ignore:
    """Well-formed but not for us (e.g. an unmapped notification): acked, not stored."""

    reason: str


Decision = Accept | Reject | Ignore


def decide(body: bytes, ttl: int) -> Decision:
    """The pure handler: what to do with one envelope from the messages queue."""
    try:
        return Accept(UserMessage.from_wire(body, ttl))
    except envelope.InvalidEnvelope as exc:
        return Reject(str(exc))


@dataclass
class CollectorStats:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    db_retries: int = 0
    ignored: int = 0
    suppressed: int = 0  # by storm control: counted on their series, not stored as rows


@dataclass
class _Pending:
    """Envelopes decoded but not yet committed, with the broker messages to ack.

    A pack brings many rows in one broker message: ``rows``, ``bodies`` and
    ``sources`` go per envelope, ``messages`` per broker message, acked once
    every row of the batch is settled.
    """

    rows: list[UserMessage] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    since: float = 0.0


def _decide(source: Source, body: bytes) -> Decision:
    try:
        return source.decide(body)
    except Exception as exc:  # crafted input or a handler bug: this envelope only
        return Reject(f"{type(exc).__name__} in the {source.name} handler: {exc}")


def _raw(body: Any) -> bytes:
    """A message body as bytes, whatever kombu handed over."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    # surrogatepass: a str kombu decoded may hold lone surrogates; keep them as bytes.
    return str(body).encode("utf-8", errors="surrogatepass")


def _printable(reason: str) -> str:
    """A reason an AMQP header can carry (valid UTF-8, bounded)."""
    return reason.encode("utf-8", errors="backslashreplace").decode("utf-8")[:1000]


@dataclass(frozen=True)
class Source:
    """A queue the collector consumes and the handler that decides for it.

    "Source" means that alone: where envelopes come in. Its ``name`` goes with
    every dead letter (the ``x-source`` header, the ``source`` label of
    ``usermessages_collector_dead_lettered``), as "zaqar" does for the Zaqar collector.
    """

    name: str
    queue: Any
    decide: Callable[[bytes], Decision]
    # Declares what the queue binds to, before consuming (see notifications.py);
    # given the collector's stop event, so any waiting it starts ends with the collector.
    prepare: Callable[[Connection, threading.Event], None] | None = None


class Collector:
    """Consumes envelopes and stores them in batches; run it in any number of processes."""

    def __init__(
        self,
        bus_url: str,
        engine: Engine,
        *,
        ttl: int,
        batch_size: int = DEFAULTS.collector_batch_size,
        flush_interval: float = DEFAULTS.collector_flush_interval,
        queue_type: str = DEFAULTS.bus_queue_type,
        timeout: float = DEFAULTS.bus_timeout,
        max_backoff: float = 30.0,
        extra_sources: tuple[Source, ...] = (),
        policy: series.Policy = series.DEFAULT_POLICY,
    ) -> None:
        check_ttl(ttl)  # an expiry that cannot be computed would reject every message
        self._url = bus_url
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue_type = queue_type
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._engine = engine
        self._writer = Writer(engine, policy)
        self._started_at = utcnow()
        self._announced = -collectors.ANNOUNCE_INTERVAL  # monotonic: never yet
        self._sources = (
            Source("usermessages", bus.messages_queue(queue_type), lambda b: decide(b, ttl)),
            *extra_sources,
        )
        # Enough prefetch to fill a batch while the previous one commits. It counts
        # broker messages, which may be packs: capped, it bounds the memory held
        # to PREFETCH_CAP x envelope.MAX_PACK_BYTES.
        self._prefetch = min(batch_size * 2, PREFETCH_CAP)
        self._pending = _Pending()
        self._dead_producer: Producer | None = None
        self._ack_multiple = False  # set per connection (see _ack)
        # Deliveries not yet handled (see _consume): handled one at a time, never
        # from inside another's dead-letter publish.
        self._inbox: deque[Callable[[], None]] = deque()
        self._stop = threading.Event()
        self.stats = CollectorStats()
        self.ready = threading.Event()  # consuming (for tests and health checks)

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine, extra_sources: tuple[Source, ...] = ()
    ) -> Collector:
        return cls(
            settings.bus_url,
            engine,
            ttl=settings.message_ttl,
            batch_size=settings.collector_batch_size,
            flush_interval=settings.collector_flush_interval,
            queue_type=settings.bus_queue_type,
            timeout=settings.bus_timeout,
            extra_sources=extra_sources,
            policy=policy_of(settings),
        )

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; reconnects to the broker with capped back-off."""
        self._stop = stop
        backoff = Backoff(self._max_backoff, stop)
        while not stop.is_set():
            try:
                with bus.connect(self._url, timeout=self._timeout) as connection:
                    bus.ensure(connection, self._timeout)
                    bus.declare(connection, self._queue_type)
                    backoff.reset()
                    self._consume(connection)
            except Exception as exc:  # broker trouble: envelopes stay on the broker
                self.ready.clear()
                self._pending = _Pending()  # unacked: the broker will redeliver them
                self._inbox.clear()
                LOG.error("collector lost the broker (%s: %s); retrying in %.1fs",
                          type(exc).__name__, exc, backoff.delay)
                backoff.wait()

    def _consume(self, connection: Connection) -> None:
        channel = connection.channel()
        self._ack_multiple = connection.transport.driver_type == "amqp"
        channel.basic_qos(0, self._prefetch, False)
        self._dead_producer = Producer(connection.channel())
        for source in self._sources:
            if source.prepare is not None:
                source.prepare(connection, self._stop)
        consumers = [
            Consumer(channel, queues=[source.queue], no_ack=False,
                     on_message=self._handler(source),
                     on_decode_error=self._undecodable(source))
            for source in self._sources
        ]
        for consumer in consumers:
            consumer.consume()
        self.ready.set()
        LOG.info("collector consuming %s", ", ".join(source.name for source in self._sources))
        try:
            while not self._stop.is_set():
                if time.monotonic() - self._announced >= collectors.ANNOUNCE_INTERVAL:
                    self._announce()
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=self._flush_interval)
                self._handle_inbox()
                if self._due():
                    self._flush()
            self._flush()
        finally:
            self.ready.clear()
            for consumer in consumers:
                try:
                    consumer.cancel()
                except Exception:  # the connection may be gone already
                    LOG.debug("cancel failed", exc_info=True)

    def _announce(self) -> None:
        """Say who consumes, on which release, reading what (store/collectors.py: the
        upgrade check reads it). A store that is down only delays it."""
        self._announced = time.monotonic()
        found = collectors.Announcement(
            f"{socket.gethostname()}:{os.getpid()}", socket.gethostname(), version("usermessages"),
            migrate.head(), envelope.READS, self._started_at, utcnow())
        try:
            with self._engine.begin() as conn:
                collectors.announce(conn, found)
        except Exception as exc:  # no table yet (schema before 0008), or the store is down
            LOG.warning("collector could not announce itself: %s: %s", type(exc).__name__,
                        (str(exc).splitlines() or [""])[0][:200])

    def _handle_inbox(self) -> None:
        """Handle the deliveries drained so far, in delivery order.

        kombu calls on_message from inside any wait on the connection, and a
        dead letter's publish waits (for the broker's confirm): handled there,
        the next deliveries would nest inside it, a batch could be acked
        before the letter was, and the inner wait could take the outer one's
        confirm, leaving it stuck. Queued, they are handled after it returns.
        """
        while self._inbox:
            self._inbox.popleft()()

    def _handler(self, source: Source) -> Callable[[Message], None]:
        def on_message(message: Message) -> None:
            self._inbox.append(lambda: handle(message))

        def handle(message: Message) -> None:
            body = _raw(message.body)
            if message.content_type != envelope.PACK_CONTENT_TYPE:
                decision = _decide(source, body)
                if isinstance(decision, Reject):
                    self._dead_letter(message, decision.reason, source.name)
                elif isinstance(decision, Ignore):
                    message.ack()
                    self.stats.ignored += 1
                else:
                    self._add(message, [(decision.message, body)], source.name)
                return
            try:
                parts = envelope.split(body)
            except envelope.InvalidEnvelope as exc:
                self._dead_letter(message, str(exc), source.name)
                return
            accepted = []
            for part in parts:
                decision = _decide(source, part)
                if isinstance(decision, Accept):
                    accepted.append((decision.message, part))
                elif isinstance(decision, Reject):
                    # The envelope alone is the dead letter; the pack is acked with its batch.
                    self._dead_letter_body(part, decision.reason, source.name)
                else:
                    self.stats.ignored += 1
            if accepted:
                self._add(message, accepted, source.name)
            else:
                message.ack()

        return on_message

    def _add(self, message: Message, rows: list[tuple[UserMessage, bytes]], source: str) -> None:
        pending = self._pending
        if not pending.rows:
            pending.since = time.monotonic()
        for row, body in rows:
            pending.rows.append(row)
            pending.bodies.append(body)
            pending.sources.append(source)
        pending.messages.append(message)
        # Also full when the prefetch window is: nothing more arrives before an ack.
        if len(pending.rows) >= self._batch_size or len(pending.messages) >= self._prefetch:
            self._flush()

    def _undecodable(self, source: Source) -> Callable[[Message, Exception], None]:
        # kombu raises before on_message for a body it cannot decode (e.g. a
        # "compression" header naming no codec): a dead letter, not a lost broker.
        def on_decode_error(message: Message, exc: Exception) -> None:
            reason = f"{type(exc).__name__} decoding the message: {exc}"
            self._inbox.append(lambda: self._dead_letter(message, reason, source.name))

        return on_decode_error

    def _due(self) -> bool:
        pending = self._pending
        return bool(pending.rows) and (
            time.monotonic() - pending.since >= self._flush_interval
        )

    def _flush(self) -> None:
        """Commit the pending batch, then ack it; retry while the store is down.

        The writer settles what it can (stored, duplicate, suppressed, or
        refused: a refused row is dead-lettered alone); after an outage the
        rest stays pending, unacknowledged, and is written again.
        """
        backoff = Backoff(self._max_backoff, self._stop)
        while self._pending.rows:
            pending = self._pending
            written = self._writer.write(pending.rows)
            self._count(written)
            for refusal in written.refused:
                self._dead_letter_body(pending.bodies[refusal.index], refusal.reason,
                                       pending.sources[refusal.index])
            if written.outage is None:
                self._ack(pending.messages)
                self._pending = _Pending()
                return
            # The store is down or broken: keep the rest, ack nothing, try again.
            kept = written.settled
            self._pending = _Pending(pending.rows[kept:], pending.bodies[kept:],
                                     pending.sources[kept:], pending.messages, pending.since)
            LOG.error("%s; retrying batch of %d in %.1fs", written.outage,
                      len(self._pending.rows), backoff.delay)
            if backoff.wait():
                return  # stopping: the broker redelivers the unacked batch

    def _ack(self, messages: list[Message]) -> None:
        """Acknowledge a committed batch: on AMQP one basic.ack for all of it.

        ``multiple`` acks every delivery of the channel up to the given tag.
        Every earlier delivery is in this batch or was settled on arrival
        (dead-lettered, ignored, isolated), so that is exactly the batch.
        kombu's virtual transports (the in-process bus) ignore ``multiple``,
        so there each message is acked on its own.
        """
        if self._ack_multiple:
            max(messages, key=lambda m: m.delivery_tag).ack(multiple=True)
            return
        for message in messages:
            message.ack()

    def _count(self, written: Written) -> None:
        self.stats.stored += written.new
        self.stats.duplicates += written.duplicates
        self.stats.suppressed += written.suppressed
        self.stats.db_retries += written.outage is not None

    def _dead_letter(self, message: Message, reason: str, source: str) -> None:
        """A whole broker message is refused: it goes as it came, then is acked."""
        self._dead_letter_body(_raw(message.body), reason, source)
        message.ack()

    def _dead_letter_body(self, body: bytes, reason: str, source: str) -> None:
        assert self._dead_producer is not None
        reason = _printable(reason)
        self._dead_producer.publish(
            body,
            exchange=bus.EXCHANGE,
            routing_key=bus.DEAD_KEY,
            headers={"x-reason": reason, "x-source": source},
            content_type="application/octet-stream",
            content_encoding="binary",
            delivery_mode=2,
            retry=False,
        )
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERED.labels(source=source).inc()
        LOG.warning("dead-lettered an envelope from %s: %s", source, reason)


def list_dead_letters(bus_url: str, limit: int = 100, timeout: float = DEFAULTS.bus_timeout,
                      queue_type: str = DEFAULTS.bus_queue_type) -> list[dict]:
    """Read dead letters without consuming them (they are requeued on close)."""
    letters: list[dict] = []
    with bus.connect(bus_url, timeout=timeout) as connection:
        bus.ensure(connection, timeout)
        bus.declare(connection, queue_type)
        queue = bus.dead_letter_queue(queue_type)(connection.channel())
        held = []
        while len(letters) < limit:
            message = queue.get(no_ack=False)
            if message is None:
                break
            held.append(message)
            headers = message.headers or {}
            body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
            letters.append({
                "reason": headers.get("x-reason", ""),
                "source": headers.get("x-source", ""),
                "body": body[:500].decode("utf-8", errors="replace"),
            })
        # Put every letter back: listing is not consuming.
        for message in held:
            message.requeue()
    return letters
