"""The real oslo.messaging Notifier, configured as an OpenStack service configures it,
and a collector reading its notifications: shared by the notification tests."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oslo_messaging
from oslo_config import cfg
from sqlalchemy import Engine, text

from usermessages.collector import Collector, Source


@contextlib.contextmanager
def notifier(rabbitmq_url: str, tmp_path: Path, exchange: str, *, topic: str,
             publisher_id: str, durable: bool = False,
             serializer: oslo_messaging.Serializer | None = None,
             ) -> Iterator[oslo_messaging.Notifier]:
    """A Notifier as a service with ``control_exchange = exchange`` and
    ``[oslo_messaging_rabbit] amqp_durable_queues = durable`` has one."""
    config = tmp_path / f"service-{uuid.uuid4().hex[:6]}.conf"
    config.write_text(f"[DEFAULT]\ncontrol_exchange = {exchange}\n"
                      f"[oslo_messaging_rabbit]\namqp_durable_queues = {str(durable).lower()}\n")
    conf = cfg.ConfigOpts()
    conf(["--config-file", str(config)], project="usermessages-test")
    url = rabbitmq_url.replace("amqp://", "rabbit://").rstrip("/") + "/"
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    try:
        yield oslo_messaging.Notifier(transport, publisher_id=publisher_id, driver="messaging",
                                      topics=[topic], serializer=serializer)
    finally:
        transport.cleanup()


@contextlib.contextmanager
def running(collector: Collector) -> Iterator[Collector]:
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert collector.ready.wait(20), "the collector never started consuming"
        yield collector
    finally:
        stop.set()
        thread.join(20)


def collector(rabbitmq_url: str, engine: Engine, *sources: Source) -> Collector:
    return Collector(rabbitmq_url, engine, ttl=3600, batch_size=10, flush_interval=0.05,
                     extra_sources=sources)


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            text("SELECT * FROM messages ORDER BY created_at, id")).mappings()]


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll until condition() is truthy; fail with what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.05)
