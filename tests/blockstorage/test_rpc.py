"""The casts' transport on a real RabbitMQ: nothing consumed is lost, nothing blocks.

A cast whose handler could not reach the bus (its forward cast failed) is
requeued with back-off and handled once the bus is back, never acked and lost;
a poison cast (bad body, unknown method, a handler's bug) is logged and dropped
and the casts behind it still flow. A publisher whose idle connection died
with a broker restart reconnects before it reports failure.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kombu import Producer

from blockstorage import db
from blockstorage.config import Backend, StorageSettings
from blockstorage.rpc import EXCHANGE, BusUnavailable, Caster, Server, queue_for
from blockstorage.runtime import Runtime
from blockstorage.scheduler import Scheduler, volume_topic
from tests.harness import servers
from usermessages import Messenger
from usermessages import bus as um_bus
from usermessages.store import engine as store_engine
from usermessages.store import migrate


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def serving(rabbitmq_url: str) -> Iterator[Callable[[dict], str]]:
    """Start a Server on a fresh topic with the given handlers; yields start(handlers)."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(handlers: dict) -> str:
        topic = f"test-{uuid.uuid4().hex[:8]}"
        server = Server(rabbitmq_url, topic, handlers, timeout=1.0)
        stop = threading.Event()
        thread = threading.Thread(target=server.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread))
        assert server.ready.wait(10)
        return topic

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(10)


def _raw(url: str, topic: str, body: bytes) -> None:
    with um_bus.connect(url) as connection:
        Producer(connection.default_channel).publish(
            body, exchange=EXCHANGE, routing_key=topic, content_type="application/json",
            declare=[queue_for(topic)])


def _queue_depth(url: str, topic: str) -> int:
    with um_bus.connect(url) as connection:
        return queue_for(topic)(connection.default_channel).queue_declare(passive=True)[1]


def test_a_cast_that_could_not_reach_the_bus_is_requeued_not_lost(rabbitmq_url, serving):
    attempts: list[str] = []
    handled: list[str] = []

    def forward(ctx: dict, volume_id: str) -> None:
        attempts.append(volume_id)
        if len(attempts) <= 2:  # its own forward cast fails twice, as on a broker restart
            raise BusUnavailable("ConnectionResetError: [Errno 104] Connection reset by peer")
        handled.append(volume_id)

    topic = serving({"create_volume": forward})
    caster = Caster(rabbitmq_url, 1.0)
    try:
        caster.cast(topic, "create_volume", {}, time.time() + 30, volume_id="v1")
        _until(lambda: handled == ["v1"], 15, f"never handled: {attempts}")
    finally:
        caster.close()
    assert attempts == ["v1"] * 3
    _until(lambda: _queue_depth(rabbitmq_url, topic) == 0, 5, "the cast was left queued")


def test_poison_casts_are_dropped_and_the_queue_flows(rabbitmq_url, serving):
    handled: list[int] = []

    def bug(ctx: dict, n: int) -> None:
        raise ValueError("a handler's bug")

    topic = serving({"ok": lambda ctx, n: handled.append(n), "bug": bug})
    for body in (b"{not json", b'{"method": "nope", "context": {}, "args": {}, "deadline": 0}',
                 b'{"method": "ok"}', b"[]"):
        _raw(rabbitmq_url, topic, body)
    caster = Caster(rabbitmq_url, 1.0)
    try:
        caster.cast(topic, "bug", {}, time.time() + 30, n=0)
        for n in range(1, 4):
            caster.cast(topic, "ok", {}, time.time() + 30, n=n)
    finally:
        caster.close()
    _until(lambda: handled == [1, 2, 3], 10, f"queue stalled: {handled}")
    _until(lambda: _queue_depth(rabbitmq_url, topic) == 0, 5, "poison left queued")


def test_an_idle_publisher_survives_a_broker_restart():
    with servers.rabbitmq_broker() as broker:
        caster = Caster(broker.url, 1.0)
        try:
            caster.cast("restart", "op", {}, time.time() + 60)
            broker.stop_app()
            broker.start_app()
            # No call in between: the first cast finds its connection dead, reconnects once.
            started = time.monotonic()
            caster.cast("restart", "op", {}, time.time() + 60)
            assert time.monotonic() - started < 3 * 1.0
            assert not caster.breaker.is_open
        finally:
            caster.close()
        with um_bus.connect(broker.url) as connection:
            assert queue_for("restart")(connection.default_channel).queue_declare(
                passive=True)[1] == 2


def test_a_requeued_create_keeps_its_placement(rabbitmq_url, tmp_path):
    # The scheduler places, then its forward cast fails (the bus is down: nothing listens
    # on that port) and the cast is requeued. Redelivered, it must forward the placement it
    # recorded, not place the volume again (a second pool, space counted twice).
    engine = store_engine.connect(f"sqlite:///{tmp_path}/state.sqlite")
    db.create_schema(engine)
    messages = f"sqlite:///{tmp_path}/messages.sqlite"
    migrate.upgrade(store_engine.connect(messages))
    backends = (Backend("a", total_capacity_gb=10), Backend("b", total_capacity_gb=10))
    down = Caster(f"amqp://guest:guest@127.0.0.1:{servers.free_port()}//", 0.5)
    rt = Runtime(settings=StorageSettings(backends=backends), engine=engine,
                 messenger=Messenger.from_url(messages), caster=down)
    deadline, _ = rt.deadline()
    with engine.begin() as conn:
        db.add(conn, db.volumes, id="v1", project_id="p", user_id="u", size=6,
               status="creating", attach_status="detached", task_deadline=deadline)
    scheduler = Scheduler(rt)
    with pytest.raises(BusUnavailable):
        scheduler.create_volume({"project_id": "p", "request_id": "req-1"}, volume_id="v1")
    with engine.connect() as conn:
        placed = db.get(conn, db.volumes, "v1")["host"]
    assert placed is not None

    rt.caster = Caster(rabbitmq_url, 1.0)  # the bus is back: the redelivery
    try:
        scheduler.create_volume({"project_id": "p", "request_id": "req-1"}, volume_id="v1")
    finally:
        rt.caster.close()
        down.close()
    with engine.connect() as conn:
        volume = db.get(conn, db.volumes, "v1")
    assert (volume["host"], volume["status"]) == (placed, "creating")
    backend = rt.backend_of_host(placed)
    assert backend is not None
    assert _queue_depth(rabbitmq_url, volume_topic(backend.name)) >= 1
