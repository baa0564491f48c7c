"""Packs: many envelopes in one bus message, as the forwarder sends them.

The pack format round-trips and bounds its size; on the real RabbitMQ a pack
that mixes good and crafted envelopes stores every good one once and
dead-letters each bad one alone, with its own body, and leaves nothing
unacknowledged; and the SDK's forwarder sends what it spooled as packs.
"""

from __future__ import annotations

import threading
import time
import uuid

import amqp
from hypothesis import given
from hypothesis import strategies as st
from kombu import Producer
from sqlalchemy import text

from tests.harness import servers
from usermessages import Action, Detail, Messenger, RequestContext, bus, envelope
from usermessages.catalog import Kind, Resource
from usermessages.collector import Collector, list_dead_letters
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import migrate


@given(st.lists(st.binary(min_size=1, max_size=envelope.MAX_BYTES).filter(
    lambda b: b"\n" not in b), max_size=700))
def test_packs_keep_order_and_bounds(bodies):
    groups = envelope.packs(bodies)
    assert [body for group in groups for body in group] == bodies
    for group in groups:
        assert 1 <= len(group) <= envelope.MAX_PACK_ENVELOPES
        assert len(envelope.join(group)) <= envelope.MAX_PACK_BYTES
        assert envelope.split(envelope.join(group)) == group


def _envelope(project: str = "p") -> bytes:
    return Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, ttl=3600,
                          project_id=project, detail=Detail.ATTACH_ERROR).to_wire()


def _stored(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM messages")).scalar_one()


def _queue_depth(rabbitmq_url: str) -> int:
    with bus.connect(rabbitmq_url) as connection:
        _, count, _ = connection.default_channel.queue_declare(
            bus.messages_queue().name, passive=True)
    return count


def _fresh(rabbitmq_url: str, postgresql_admin_url: str):  # type: ignore[no-untyped-def]
    engine = store_engine.connect(
        servers.create_database(postgresql_admin_url, f"pack_{uuid.uuid4().hex[:8]}"))
    migrate.upgrade(engine)
    with bus.connect(rabbitmq_url) as connection:
        bus.declare(connection)
        bus.messages_queue()(connection.default_channel).purge()
        bus.dead_letter_queue()(connection.default_channel).purge()
    return engine


def _run_until(collector: Collector, done, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, collector.stats
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(15)


def test_a_pack_of_good_and_crafted_envelopes(rabbitmq_url, postgresql_admin_url):
    engine = _fresh(rabbitmq_url, postgresql_admin_url)
    good = [_envelope() for _ in range(300)]
    crafted = [b"not json", b'{"v": 2, "message": {}}',
               _envelope().replace(b'"p"', b'"p\\u0000"')]  # NUL in the project id
    with bus.connect(rabbitmq_url) as connection:
        producer = Producer(connection.default_channel)

        def publish(body: bytes, content_type: str = envelope.PACK_CONTENT_TYPE) -> None:
            producer.publish(body, exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY,
                             content_type=content_type)

        # Three packs of 100 good ones, a crafted envelope inside each.
        for i in range(3):
            start = i * 100
            publish(envelope.join(good[start:start + 50] + [crafted[i]]
                                  + good[start + 50:start + 100]))
        publish(envelope.join(crafted))  # nothing good in it: acked at once
        publish(b"x" * (envelope.MAX_PACK_BYTES + 1))  # oversize: the whole pack is refused
        publish(good[0], envelope.CONTENT_TYPE)  # a single envelope, redelivered in effect
    collector = Collector(rabbitmq_url, engine, ttl=3600, batch_size=120, flush_interval=0.2)
    _run_until(collector, lambda: collector.stats.dead_lettered >= 7 and _stored(engine) >= 300)
    assert _stored(engine) == 300
    letters = list_dead_letters(rabbitmq_url, limit=100)
    bodies = sorted(letter["body"] for letter in letters)
    # Each crafted envelope twice (in a good pack, in the bad pack), alone, and the oversize pack.
    assert len(letters) == 7, letters
    assert sorted(b.decode() for b in crafted * 2) == sorted(
        b for b in bodies if not b.startswith("xxx"))
    assert any("more than" in letter["reason"] for letter in letters)
    assert _queue_depth(rabbitmq_url) == 0  # every pack acked, none left behind


def test_the_forwarder_sends_packs(rabbitmq_url, postgresql_admin_url, monkeypatch):
    engine = _fresh(rabbitmq_url, postgresql_admin_url)
    publishes: list[int] = []
    real_publish = amqp.Channel._basic_publish  # with or without confirms

    def counting(channel, msg, *args, **kwargs):
        publishes.append(msg.body.count(b"\n") + 1)
        return real_publish(channel, msg, *args, **kwargs)

    monkeypatch.setattr(amqp.Channel, "_basic_publish", counting)
    messenger = Messenger.from_url(rabbitmq_url)
    for i in range(2000):
        messenger.create(RequestContext(project_id=f"p{i % 7}", user_id="u"),
                         Action.ATTACH_VOLUME, resource_uuid=str(uuid.uuid4()),
                         detail=Detail.ATTACH_ERROR)
    assert messenger.sink.flush(60)  # type: ignore[attr-defined]
    messenger.close()
    assert sum(publishes) == 2000
    assert len(publishes) < 2000 / 10, publishes  # packs, not one message per envelope
    collector = Collector(rabbitmq_url, engine, ttl=3600, batch_size=500, flush_interval=0.2)
    _run_until(collector, lambda: _stored(engine) >= 2000)
    assert _stored(engine) == 2000
    assert _queue_depth(rabbitmq_url) == 0
