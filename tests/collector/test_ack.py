"""The collector acknowledges a committed batch with one basic.ack (multiple=True) on the
real RabbitMQ, and leaves nothing unacknowledged behind, dead letters interleaved."""

from __future__ import annotations

import threading
import time
import uuid

import amqp
from kombu import Producer

from tests.harness import servers
from usermessages import bus
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.collector import Collector
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import migrate

TOTAL = 300
BATCH = 100


def _envelope() -> bytes:
    """A fresh message's envelope, as the SDK builds it."""
    return Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, ttl=3600,
                          project_id="p", detail=Detail.ATTACH_ERROR).to_wire()


def _queued(rabbitmq_url: str) -> int:
    """Messages on the messages queue, ready or unacknowledged-then-requeued."""
    with bus.connect(rabbitmq_url) as connection:
        _, count, _ = connection.default_channel.queue_declare(
            bus.messages_queue().name, passive=True)
    return count


def test_one_ack_per_batch_and_nothing_left_unacked(rabbitmq_url, postgresql_admin_url,
                                                     monkeypatch):
    engine = store_engine.connect(
        servers.create_database(postgresql_admin_url, f"ack_{uuid.uuid4().hex[:8]}"))
    migrate.upgrade(engine)
    with bus.connect(rabbitmq_url) as connection:
        bus.declare(connection)
        bus.messages_queue()(connection.default_channel).purge()
        producer = Producer(connection.default_channel)
        for i in range(TOTAL):
            producer.publish(_envelope(),
                             exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY)
            if i % 50 == 25:  # settled on arrival: must not be acked twice or left behind
                producer.publish(b"not json", exchange=bus.EXCHANGE,
                                 routing_key=bus.MESSAGES_KEY)
    acks: list[tuple[int, bool]] = []
    real_ack = amqp.Channel.basic_ack

    def counting_ack(channel, delivery_tag, multiple=False, argsig="Lb"):
        acks.append((delivery_tag, multiple))
        return real_ack(channel, delivery_tag, multiple, argsig)

    monkeypatch.setattr(amqp.Channel, "basic_ack", counting_ack)
    stop = threading.Event()
    collector = Collector(rabbitmq_url, engine, ttl=3600, batch_size=BATCH,
                         flush_interval=1.0, timeout=2)
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while collector.stats.stored + collector.stats.dead_lettered < TOTAL + 6:
            assert time.monotonic() < deadline, (collector.stats, acks)
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(15)
    assert (collector.stats.stored, collector.stats.dead_lettered) == (TOTAL, 6)
    batch_acks = [tag for tag, multiple in acks if multiple]
    single_acks = [tag for tag, multiple in acks if not multiple]
    assert len(single_acks) == 6  # one per dead letter
    # 300 rows in batches of 100, a partial one at most between them.
    assert 3 <= len(batch_acks) <= 6, acks
    assert _queued(rabbitmq_url) == 0  # nothing unacked came back to the queue
    engine.dispose()
