"""Casts between the API, the scheduler and the workers, over the bus (kombu).

Only casts, never calls: the API never waits for a worker's answer, so a
dead worker cannot hang an API request. Each cast carries a deadline; a
server drops a cast whose deadline has passed (the watchdog has already
failed that operation and told the user), and RabbitMQ drops it earlier
through the per-message expiration.

Publishing is bounded too: connect, write and confirm each have a timeout,
so when the broker is down or silent a cast fails with BusUnavailable in
about ``timeout`` seconds instead of hanging.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from kombu import Consumer, Exchange, Producer, Queue

from usermessages import bus as um_bus

LOG = logging.getLogger(__name__)

EXCHANGE = Exchange("blockstorage", type="direct", durable=True)


class BusUnavailable(Exception):
    """Raised when a cast cannot be handed to the broker within the timeout."""


def queue_for(topic: str) -> Queue:
    return Queue(f"blockstorage.{topic}", EXCHANGE, routing_key=topic, durable=True)


class Caster:
    """Publishes casts; thread-safe (the API calls it from its worker threads)."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self._url = url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection = None
        self._producer: Producer | None = None

    def cast(self, topic: str, method: str, context: dict[str, Any], deadline: float,
             **args: Any) -> None:
        body = json.dumps({"method": method, "context": context, "args": args,
                           "deadline": deadline}).encode()
        ttl = max(deadline - time.time(), 0.001)
        with self._lock:
            try:
                producer = self._ensure()
                producer.publish(
                    body, exchange=EXCHANGE, routing_key=topic, content_type="application/json",
                    content_encoding="utf-8", delivery_mode=2, expiration=ttl, retry=False,
                    timeout=self._timeout, confirm_timeout=self._timeout,
                    declare=[queue_for(topic)],
                )
            except Exception as exc:  # any broker trouble is "unavailable" to the caller
                self._reset()
                raise BusUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _ensure(self) -> Producer:
        if self._producer is None:
            connection = um_bus.connect(self._url, timeout=self._timeout)
            connection.ensure_connection(max_retries=1, timeout=self._timeout)
            self._connection = connection
            self._producer = Producer(connection.default_channel)
        return self._producer

    def _reset(self) -> None:
        self._producer = None
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken
                LOG.debug("close failed", exc_info=True)
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._reset()


Handler = Callable[..., None]


class Server:
    """Consumes one topic and dispatches each cast to a handler; reconnects with back-off."""

    def __init__(self, url: str, topic: str, handlers: dict[str, Handler],
                 timeout: float = 2.0) -> None:
        self._url = url
        self._topic = topic
        self._handlers = handlers
        self._timeout = timeout
        self.ready = threading.Event()

    def run(self, stop: threading.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                with um_bus.connect(self._url, timeout=self._timeout) as connection:
                    connection.ensure_connection(max_retries=1, timeout=self._timeout)
                    channel = connection.channel()
                    channel.basic_qos(0, 1, False)
                    with Consumer(channel, queues=[queue_for(self._topic)], no_ack=False,
                                  on_message=self._dispatch):
                        self.ready.set()
                        backoff = 0.1
                        while not stop.is_set():
                            try:
                                connection.drain_events(timeout=0.2)
                            except socket.timeout:
                                pass
            except Exception as exc:  # broker trouble: retry; casts wait on the broker
                self.ready.clear()
                LOG.warning("%s server lost the broker (%s); retrying in %.1fs",
                            self._topic, type(exc).__name__, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.ready.clear()

    def _dispatch(self, message) -> None:  # type: ignore[no-untyped-def]
        try:
            cast = json.loads(message.body)
            handler = self._handlers[cast["method"]]
            if cast["deadline"] < time.time():
                LOG.warning("dropping %s.%s: its deadline has passed", self._topic,
                            cast["method"])
            else:
                handler(cast["context"], **cast["args"])
        except Exception:  # a broken cast or handler must not block the queue
            LOG.exception("%s: cast failed", self._topic)
        finally:
            message.ack()
