"""Casts between the API, the scheduler and the workers, over the bus (kombu).

Only casts, never calls: the API never waits for a worker's answer, so a
dead worker cannot hang an API request. Each cast carries a deadline; a
server drops a cast whose deadline has passed (the watchdog has already
failed that operation and told the user), and RabbitMQ drops it earlier
through the per-message expiration.

Publishing is bounded whatever the concurrency (docs/reference-service.md,
"Never hang"): every network step has ``timeout``; an idle connection found
dead is replaced once before a cast fails; one cast publishes at a time and
the others wait at most ``timeout`` for their turn; the first cast that fails
opens a circuit breaker, which fails every waiting and later cast at once
until a background probe sees the broker again.

A server acks a cast once it is handled, or dropped as poison (a bad body,
an unknown method, a handler's bug: logged, never blocking the queue). A
cast whose handler could not reach the bus is requeued with back-off, never
acked and lost; RabbitMQ's per-message expiration ends it at its deadline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from blockstorage.breaker import Breaker
from usermessages import bus as um_bus
from usermessages.config import DEFAULTS
from usermessages.errors import UserMessagesError
from usermessages.retry import Backoff

LOG = logging.getLogger(__name__)

EXCHANGE = Exchange("blockstorage", type="direct", durable=True)


class BusUnavailable(UserMessagesError):
    """Raised when a cast cannot be handed to the broker within its bound."""


def queue_for(topic: str) -> Queue:
    return Queue(f"blockstorage.{topic}", EXCHANGE, routing_key=topic, durable=True)


def _timed_out(exc: BaseException) -> bool:
    """Whether the broker was silent (not gone): a retry would only wait again."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Caster:
    """Publishes casts; thread-safe (the API calls it from its worker threads).

    ``on_change(down)`` is told when the breaker opens (True) and closes (False).
    """

    def __init__(self, url: str, timeout: float = DEFAULTS.bus_timeout,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self._url = url
        self._timeout = timeout
        self._turn = threading.Condition()
        self._busy = False  # one publisher at a time, on one connection
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self.breaker = Breaker(self._probe, max(timeout, 0.2), on_change)

    def cast(self, topic: str, method: str, context: dict[str, Any], deadline: float,
             **args: Any) -> None:
        body = json.dumps({"method": method, "context": context, "args": args,
                           "deadline": deadline}).encode()
        ttl = max(deadline - time.time(), 0.001)
        self._take_turn()
        try:
            self._publish(topic, body, ttl)
        except Exception as exc:  # any broker trouble is "unavailable" to the caller
            reason = f"{type(exc).__name__}: {exc}"
            self.breaker.trip(reason)
            raise BusUnavailable(reason) from exc
        finally:
            with self._turn:
                self._busy = False
                self._turn.notify_all()

    def _take_turn(self) -> None:
        """Wait for the publisher, at most ``timeout``; fail at once while the breaker is open."""
        give_up = time.monotonic() + self._timeout
        with self._turn:
            while True:
                if self.breaker.is_open:
                    raise BusUnavailable(f"broker unreachable (circuit {self.breaker.describe()})")
                if not self._busy:
                    self._busy = True
                    return
                left = give_up - time.monotonic()
                if left <= 0:
                    raise BusUnavailable(f"the publisher stayed busy for {self._timeout}s")
                self._turn.wait(left)

    def _publish(self, topic: str, body: bytes, ttl: float) -> None:
        reused = self._producer is not None
        try:
            self._send(topic, body, ttl)
        except Exception as exc:
            self._reset()
            if not reused or _timed_out(exc):
                raise
            # An idle connection the broker dropped (restart): one fresh try.
            LOG.info("publisher connection was dead (%s); reconnecting once", exc)
            self._send(topic, body, ttl)

    def _send(self, topic: str, body: bytes, ttl: float) -> None:
        if self._producer is None:
            connection = um_bus.connect(self._url, timeout=self._timeout)
            connection.ensure_connection(max_retries=0, timeout=self._timeout)
            self._connection = connection
            self._producer = Producer(connection.default_channel)
        try:
            self._producer.publish(
                body, exchange=EXCHANGE, routing_key=topic, content_type="application/json",
                content_encoding="utf-8", delivery_mode=2, expiration=ttl, retry=False,
                timeout=self._timeout, confirm_timeout=self._timeout,
                declare=[queue_for(topic)],
            )
        except Exception:
            self._reset()
            raise

    def _probe(self) -> None:
        """Raises unless the broker completes a connection handshake and opens a channel."""
        connection = um_bus.connect(self._url, timeout=self._timeout)
        try:
            connection.ensure_connection(max_retries=0, timeout=self._timeout)
            connection.default_channel  # noqa: B018 - opens only on a live broker
        finally:
            connection.collect()  # no close handshake: it could wait on a frozen broker

    def _reset(self) -> None:
        self._producer = None
        if self._connection is not None:
            try:
                # No close handshake: on a frozen broker it would wait once more.
                self._connection.collect()
            except Exception:  # already broken
                LOG.debug("close failed", exc_info=True)
            self._connection = None

    def close(self) -> None:
        self.breaker.shutdown()
        with self._turn:
            self._reset()


Handler = Callable[..., None]
# What a handler raises when the bus, not the request, is at fault: requeue, never drop.
BUS_ERRORS: tuple[type[BaseException], ...] = (BusUnavailable, ConnectionError, TimeoutError)


class Server:
    """Consumes one topic and dispatches each cast to a handler; reconnects with back-off."""

    MAX_BACKOFF = 5.0

    def __init__(self, url: str, topic: str, handlers: dict[str, Handler],
                 timeout: float = DEFAULTS.bus_timeout) -> None:
        self._url = url
        self._topic = topic
        self._handlers = handlers
        self._timeout = timeout
        self._stop = threading.Event()
        self._requeue_backoff = Backoff(self.MAX_BACKOFF)
        self.ready = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        backoff = Backoff(10.0, stop)
        while not stop.is_set():
            try:
                with um_bus.connect(self._url, timeout=self._timeout) as connection:
                    connection.ensure_connection(max_retries=1, timeout=self._timeout)
                    channel = connection.channel()
                    channel.basic_qos(0, 1, False)
                    with Consumer(channel, queues=[queue_for(self._topic)], no_ack=False,
                                  on_message=self._dispatch):
                        self.ready.set()
                        backoff.reset()
                        while not stop.is_set():
                            with contextlib.suppress(TimeoutError):
                                connection.drain_events(timeout=0.2)
            except Exception as exc:  # broker trouble: retry; casts wait on the broker
                self.ready.clear()
                LOG.warning("%s server lost the broker (%s); retrying in %.1fs",
                            self._topic, type(exc).__name__, backoff.delay)
                backoff.wait()
        self.ready.clear()

    def _dispatch(self, message) -> None:  # type: ignore[no-untyped-def]
        try:
            cast = json.loads(message.body)
            handler = self._handlers[cast["method"]]
            context, args, deadline = cast["context"], dict(cast["args"]), float(cast["deadline"])
        except Exception:  # poison: logged and dropped, the queue goes on
            LOG.exception("%s: dropping a malformed cast", self._topic)
            message.ack()
            return
        if deadline < time.time():
            LOG.warning("dropping %s.%s: its deadline has passed", self._topic, cast["method"])
            message.ack()
            return
        try:
            handler(context, **args)
        except BUS_ERRORS as exc:
            # Not handled because of the bus: back off, then give it back to the broker
            # (the per-message expiration ends it at its deadline).
            delay = min(self._requeue_backoff.advance(), max(deadline - time.time(), 0.0))
            LOG.warning("%s.%s could not reach the bus (%s); requeued after %.1fs",
                        self._topic, cast["method"], exc, delay)
            self._stop.wait(delay)
            message.requeue()
            return
        except Exception:  # a handler's bug must not block the queue
            LOG.exception("%s: dropping %s after a failure", self._topic, cast["method"])
        self._requeue_backoff.reset()
        message.ack()
