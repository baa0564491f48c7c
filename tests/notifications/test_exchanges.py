"""The collector never breaks the services' own traffic: it never declares their
exchanges, in either start order, whether the services declare them durable
(amqp_durable_queues = true) or not. Real RabbitMQ, real oslo.messaging Notifier."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange
from oslo_context.context import RequestContext
from sqlalchemy import Engine

from tests.notifications.notifier import collector, notifier, rows, running, wait_for
from tests.notifications.openstack_payloads import (
    NoValidBackend,
    RequestContextSerializer,
    cinder_create_volume,
)
from usermessages.notifications import load_mapping, source
from usermessages.store import engine as store_engine
from usermessages.store import migrate

MAPPING = Path(__file__).resolve().parents[2] / "etc" / "notification-mapping.ini"
CONTEXT = RequestContext(project_id="p1", user_id="u1")


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = store_engine.connect(f"sqlite:///{tmp_path}/um.sqlite")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _exists(url: str, name: str) -> bool:
    with Connection(url) as connection:
        try:
            Exchange(name, type="topic", passive=True)(connection.channel()).declare()
            return True
        except Exception:  # 404
            return False


def _queued(url: str, queue: str) -> int:
    """Messages waiting in the service's own queue (what Ceilometer... would read)."""
    with Connection(url) as connection:
        return connection.channel().queue_declare(queue=queue, passive=True).message_count


def _declared_durable(url: str, name: str, durable: bool) -> None:
    """Redeclaring with the given flags succeeds only if the exchange has them."""
    with Connection(url) as connection:
        Exchange(name, type="topic", durable=durable)(connection.channel()).declare()


def _volume_failure(notify, volume_id: str) -> None:
    notify.error(CONTEXT, "scheduler.create_volume",
                 cinder_create_volume(volume_id, "p1", "u1", NoValidBackend(reason="x")))


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "transient"])
@pytest.mark.parametrize("order", ["collector-first", "service-first"])
def test_the_services_exchange_is_theirs(rabbitmq_url, sqlite_engine, tmp_path, durable, order):
    exchange = f"cinder-{uuid.uuid4().hex[:8]}"
    topic = f"notifications-{exchange}"
    src = source([exchange], load_mapping(MAPPING), 3600, topics=(topic,), retry_interval=0.1,
                 queue_name=f"usermessages.notifications-{uuid.uuid4().hex[:8]}")
    binder = src.prepare.__self__
    with notifier(rabbitmq_url, tmp_path, exchange, topic=topic, publisher_id="scheduler.h",
                  durable=durable, serializer=RequestContextSerializer()) as cinder:
        if order == "service-first":
            _volume_failure(cinder, "vol-early")
            assert _exists(rabbitmq_url, exchange)
        with running(collector(rabbitmq_url, sqlite_engine, src)):
            if order == "collector-first":
                # Consuming, yet the service's exchange is not ours to create.
                assert not _exists(rabbitmq_url, exchange)
                assert binder.bound == set()
                _volume_failure(cinder, "vol-early")
            # The service's publication went through: its own queue holds it.
            assert _queued(rabbitmq_url, f"{topic}.error") == 1
            _declared_durable(rabbitmq_url, exchange, durable)
            wait_for(lambda: exchange in binder.bound, what="our binding")
            _volume_failure(cinder, "vol-late")
            wait_for(lambda: [r for r in rows(sqlite_engine) if r["resource_uuid"] == "vol-late"],
                     what="the notification published after the binding")
            assert _queued(rabbitmq_url, f"{topic}.error") == 2  # others still get everything


def test_the_binder_stops_waiting_when_the_collector_stops(rabbitmq_url, sqlite_engine):
    """An exchange that never appears: the binder's thread ends with its collector."""
    exchange = f"never-{uuid.uuid4().hex[:8]}"
    src = source([exchange], load_mapping(MAPPING), 3600, topics=("notifications",),
                 retry_interval=2.0,
                 queue_name=f"usermessages.notifications-{uuid.uuid4().hex[:8]}")
    binder = src.prepare.__self__
    with running(collector(rabbitmq_url, sqlite_engine, src)):
        waiter = wait_for(lambda: binder.waiter, what="the binder's thread")
        assert waiter.is_alive() and binder.bound == set()
    # running() has set the stop event and joined the collector.
    waiter.join(10)
    assert not waiter.is_alive(), "the binder outlived its collector"
