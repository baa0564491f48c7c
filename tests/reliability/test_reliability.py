"""The bus's promises on real RabbitMQ and PostgreSQL: every message stored once,
nothing lost, nothing hangs, whatever fails."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kombu import Exchange, Producer
from sqlalchemy import text

from tests.harness import servers
from usermessages import Action, Detail, Messenger, RequestContext, bus
from usermessages.message import Message
from usermessages.messenger import CLOSE_TIMEOUT
from usermessages.store import engine as store_engine
from usermessages.store import migrate

CREATE_BOUND = 0.05  # loose: the real p99 is measured by bench/
CLOSE_MARGIN = 1.0  # close(timeout) may overrun its timeout by milliseconds; CI is loaded


@pytest.fixture
def shared_broker(rabbitmq: servers.RabbitMQ) -> servers.RabbitMQ:
    """The session's RabbitMQ, with the messages queue empty (no earlier test's leftovers)."""
    with bus.connect(rabbitmq.url) as connection:
        bus.declare(connection)
        bus.messages_queue()(connection.default_channel).purge()
    return rabbitmq


def _fresh_store(admin_url: str):  # type: ignore[no-untyped-def]
    url = servers.create_database(admin_url, f"r_{uuid.uuid4().hex[:10]}")
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    return url, engine


def _counts(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*), count(DISTINCT id) FROM messages")).one()


def _wait_rows(broker: servers.RabbitMQ, engine, n: int,  # type: ignore[no-untyped-def]
               timeout: float = 120) -> None:
    """``n`` rows stored, then the bus drained (nothing more can arrive): exactly ``n``."""
    deadline = time.monotonic() + timeout
    while _counts(engine)[0] < n:
        assert time.monotonic() < deadline, f"only {_counts(engine)} of {n} stored"
        time.sleep(0.1)
    broker.wait_drained(bus.messages_queue().name, timeout=max(deadline - time.monotonic(), 30))
    assert _counts(engine) == (n, n)


@contextlib.contextmanager
def collector(bus_url: str, db_url: str, workdir: Path,
              name: str = "c") -> Iterator[subprocess.Popen]:
    conf = workdir / f"{name}.conf"
    conf.write_text("[collector]\nbatch_size = 200\nflush_interval = 0.1\n[bus]\ntimeout = 1\n")
    with open(workdir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "usermessages.cli.main", "-v", "collector", "--bus", bus_url,
             "--db", db_url, "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _create(messenger: Messenger, i: int) -> str | None:
    return messenger.create(RequestContext(project_id=f"{i % 3:08x}", request_id=f"req-{i}"),
                            Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=f"vol-{i}",
                            detail=Detail.NO_BACKEND_AVAILABLE)


def test_kill_9_the_collector_mid_stream_then_restart(shared_broker, postgresql_admin_url,
                                                      tmp_path):
    rabbitmq_url = shared_broker.url
    db_url, engine = _fresh_store(postgresql_admin_url)
    messenger = Messenger.from_url(rabbitmq_url, spool_path=str(tmp_path / "spool.sqlite"))
    for i in range(10_000):
        _create(messenger, i)
    assert messenger.flush(60) == 0
    with collector(rabbitmq_url, db_url, tmp_path, "first") as first:
        deadline = time.monotonic() + 60
        while _counts(engine)[0] < 2_000:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # mid-stream, batches in flight, unacked
        first.wait()
    stored_before = _counts(engine)[0]
    assert stored_before < 10_000
    with collector(rabbitmq_url, db_url, tmp_path, "second"):
        _wait_rows(shared_broker, engine, 10_000)
    messenger.close()


def test_broker_stops_while_a_producer_keeps_creating(postgresql_admin_url, tmp_path):
    db_url, engine = _fresh_store(postgresql_admin_url)
    with servers.rabbitmq_broker() as broker:
        messenger = Messenger.from_url(broker.url, spool_path=str(tmp_path / "spool.sqlite"),
                                       timeout=1.0)
        with collector(broker.url, db_url, tmp_path):
            durations: list[float] = []
            stop_at, start_at, total = 300, 1200, 1500
            for i in range(total):
                if i == stop_at:
                    broker.stop_app()
                if i == start_at:
                    broker.start_app()
                started = time.perf_counter()
                assert _create(messenger, i) is not None
                durations.append(time.perf_counter() - started)
                time.sleep(0.002)
            assert max(durations) < CREATE_BOUND, max(durations)
            _wait_rows(broker, engine, total, timeout=180)
        stats = messenger.sink.stats  # type: ignore[attr-defined]
        assert stats.spooled > 0 and stats.replayed > 0 and stats.dropped == 0
        messenger.close()


def test_a_broker_that_accepts_and_never_answers(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    accepting = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not accepting.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])  # and say nothing, ever

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}//"
        messenger = Messenger.from_url(url, spool_path=str(tmp_path / "s.sqlite"), timeout=0.5)
        durations = []
        for i in range(300):
            started = time.perf_counter()
            _create(messenger, i)
            durations.append(time.perf_counter() - started)
        assert max(durations) < CREATE_BOUND, max(durations)
        assert messenger.sink.pending() == 300  # type: ignore[attr-defined]
        started = time.perf_counter()
        assert messenger.close(timeout=1.0) == 0  # even closing is bounded; the file keeps them
        assert time.perf_counter() - started < 1.0 + CLOSE_MARGIN
    finally:
        accepting.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


def test_postgresql_stops_while_the_collector_runs(shared_broker, tmp_path):
    rabbitmq_url = shared_broker.url
    with servers.postgresql_cluster() as cluster:
        db_url = servers.create_database(cluster.url, "outage")
        engine = store_engine.connect(db_url)
        migrate.upgrade(engine)
        messenger = Messenger.from_url(rabbitmq_url, spool_path=str(tmp_path / "s.sqlite"))
        with collector(rabbitmq_url, db_url, tmp_path):
            for i in range(500):
                _create(messenger, i)
            _wait_rows(shared_broker, engine, 500)
            engine.dispose()
            cluster.stop()
            for i in range(500, 1500):  # published while the store is down
                _create(messenger, i)
            assert messenger.flush(60) == 0
            # The collector met the outage (and retries) before the store comes back.
            log = tmp_path / "c.log"
            deadline = time.monotonic() + 60
            while "store unavailable" not in log.read_text():
                assert time.monotonic() < deadline, "the collector never met the outage"
                time.sleep(0.1)
            cluster.start()
            _wait_rows(shared_broker, engine, 1500, timeout=120)
        log = (tmp_path / "c.log").read_text()
        assert "store unavailable" in log and "Traceback" not in log
        messenger.close()


def test_poison_on_the_real_broker(shared_broker, postgresql_admin_url, tmp_path):
    rabbitmq_url = shared_broker.url
    db_url, engine = _fresh_store(postgresql_admin_url)
    # A queue of its own for this test's dead letters: drain leftovers first.
    with bus.connect(rabbitmq_url) as connection:
        bus.declare(connection)
        bus.dead_letter_queue()(connection.default_channel).purge()
    good = Messenger.from_url(rabbitmq_url, spool_path=str(tmp_path / "s.sqlite"))
    with collector(rabbitmq_url, db_url, tmp_path):
        with bus.connect(rabbitmq_url) as connection:
            producer = Producer(connection.default_channel)
            for i in range(10):
                _create(good, i)
            document = json.loads(_sample().to_wire())
            document["message"]["detail_id"] = "999"
            poison = [b"{not json", json.dumps(document).encode(),
                      _crafted(resource_uuid="x" * 400)]
            for body in poison:
                producer.publish(body, exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY)
            for i in range(10, 20):
                _create(good, i)
        _wait_rows(shared_broker, engine, 20)
        deadline = time.monotonic() + 30
        while True:
            out = subprocess.run([sys.executable, "-m", "usermessages.cli.main", "dead-letters",
                                  "list", "--bus", rabbitmq_url, "--format", "json"],
                                 capture_output=True, text=True, timeout=60)
            letters = json.loads(out.stdout)
            if len(letters) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    reasons = sorted(letter["reason"].split(":")[0] for letter in letters)
    assert reasons == ["not JSON", "not in the catalog",
                       "resource_uuid is longer than 255 characters"]
    good.close()


def test_close_delivers_every_message_created(shared_broker, postgresql_admin_url, tmp_path):
    """The default in-memory spool: 5,000 creates then close() stores all 5,000."""
    rabbitmq_url = shared_broker.url
    db_url, engine = _fresh_store(postgresql_admin_url)
    with collector(rabbitmq_url, db_url, tmp_path):
        messenger = Messenger.from_url(rabbitmq_url)
        ids = {_create(messenger, i) for i in range(5000)}
        started = time.perf_counter()
        lost = messenger.close()
        took = time.perf_counter() - started
        assert lost == 0 and messenger.stats.lost == 0, messenger.stats
        assert took < CLOSE_TIMEOUT + CLOSE_MARGIN, took
        _wait_rows(shared_broker, engine, 5000)
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT id FROM messages")).scalars()) == ids


@pytest.mark.parametrize("spool", ["memory", "file"])
def test_close_with_the_broker_down_is_bounded_and_counts_what_it_lost(tmp_path, caplog, spool):
    """A stopped broker refuses connections: close() returns within its timeout and says
    what it lost (the in-memory spool's 5,000) or kept (a file spool loses nothing)."""
    from usermessages import metrics
    from usermessages.sinks.spool import Spool

    url = f"amqp://guest:guest@127.0.0.1:{servers.free_port()}//"  # nothing listens
    path = tmp_path / "spool.sqlite"
    messenger = Messenger.from_url(url, spool_path=str(path) if spool == "file" else None,
                                   timeout=0.5)
    for i in range(5000):
        assert _create(messenger, i) is not None
    lost_before = metrics.LOST._value.get()
    assert messenger.flush(0.5) == 5000  # bounded too, and says what waits
    started = time.perf_counter()
    lost = messenger.close(timeout=2.0)
    took = time.perf_counter() - started
    assert took < 2.0 + CLOSE_MARGIN, took
    expected = 5000 if spool == "memory" else 0
    assert lost == messenger.stats.lost == expected
    assert metrics.LOST._value.get() - lost_before == expected
    if spool == "memory":
        assert "5000 user messages undelivered: lost" in caplog.text
    else:
        assert len(Spool(path)) == 5000  # for the next start
    # Nothing created after close disappears uncounted either.
    assert _create(messenger, 5000) is None and messenger.stats.failed == 1


def _sample() -> Message:
    """A message the SDK builds (a fresh id each time)."""
    class Capture:
        record: Message | None = None

        def deliver(self, message: Message) -> None:
            Capture.record = message

        def close(self) -> None:
            pass

    Messenger(Capture()).create(RequestContext(project_id="p"), Action.ATTACH_VOLUME,
                                detail=Detail.ATTACH_ERROR)
    assert Capture.record is not None
    return Capture.record


def _dead_letters(rabbitmq_url: str, expected: int, timeout: float = 30) -> list[dict]:
    """The dead-letter queue as the operator's CLI lists it, once it holds ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run([sys.executable, "-m", "usermessages.cli.main", "dead-letters",
                              "list", "--bus", rabbitmq_url, "--format", "json"],
                             capture_output=True, text=True, timeout=60)
        letters = json.loads(out.stdout)
        if len(letters) >= expected or time.monotonic() > deadline:
            return letters
        time.sleep(0.2)


def _purge_dead_letters(rabbitmq_url: str) -> None:
    with bus.connect(rabbitmq_url) as connection:
        bus.declare(connection)
        bus.dead_letter_queue()(connection.default_channel).purge()


def _crafted(**changes: object) -> bytes:
    document = json.loads(_sample().to_wire())
    document["message"].update(changes)
    return json.dumps(document).encode()  # ensure_ascii: "\ud800" travels as an escape


# Each of these stopped every collector (0 of 200 good messages stored in 15 s).
CRAFTED = {
    "created_at far ahead": (_crafted(created_at="9999-12-31T23:59:59"), {},
                             "created_at is outside"),
    "created_at year 1 east of UTC": (_crafted(created_at="0001-01-01T00:00:00+05:00"), {},
                                      "created_at is outside"),
    "lone surrogate": (_crafted(resource_uuid="\ud800"), {},
                       "resource_uuid is not valid Unicode"),
    "7 KB of nested brackets": (b"[" * 7000, {}, "not JSON: nested too deeply"),
    # kombu itself raises on a body it cannot decompress, before any handler runs.
    "unknown compression": (_crafted(), {"compression": "application/x-unknown"},
                            "KeyError decoding the message"),
}


def test_crafted_envelopes_never_stall_the_collector(shared_broker, postgresql_admin_url,
                                                     tmp_path):
    rabbitmq_url = shared_broker.url
    db_url, engine = _fresh_store(postgresql_admin_url)
    _purge_dead_letters(rabbitmq_url)
    good = [_sample().to_wire() for _ in range(200)]
    crafted = list(CRAFTED.values())
    with bus.connect(rabbitmq_url) as connection:
        producer = Producer(connection.default_channel)
        for i, body in enumerate(good):  # the crafted ones interleaved with the good
            producer.publish(body, exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY)
            if i % 40 == 20:
                bad, headers, _ = crafted[i // 40]
                producer.publish(bad, exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY,
                                 headers=headers)
    with collector(rabbitmq_url, db_url, tmp_path):
        _wait_rows(shared_broker, engine, 200, timeout=60)
        letters = _dead_letters(rabbitmq_url, len(CRAFTED))
    expected = sorted(reason for _, _, reason in CRAFTED.values())
    reasons = sorted(letter["reason"] for letter in letters)
    assert [next((e for e in expected if r.startswith(e)), r) for r in reasons] == expected, letters
    log = (tmp_path / "c.log").read_text()
    assert "lost the broker" not in log and "Traceback" not in log


def test_a_notification_handler_exception_never_stalls_the_collector(
        shared_broker, postgresql_admin_url):
    """Issue 17: whatever ``notifications.decide`` raises is a dead letter, and the SDK's
    messages, which share the consumer, keep flowing."""
    from usermessages.collector import Collector
    from usermessages.notifications import load_mapping, source

    rabbitmq_url = shared_broker.url
    _, engine = _fresh_store(postgresql_admin_url)
    _purge_dead_letters(rabbitmq_url)
    exchange = f"cinder-{uuid.uuid4().hex[:6]}"  # a control_exchange of our own
    rules = load_mapping(Path(__file__).resolve().parents[2] / "etc" /
                         "notification-mapping.ini")
    # The service's exchange exists before we bind to it: the collector never declares it.
    with bus.connect(rabbitmq_url) as connection:
        Exchange(exchange, type="topic", durable=False)(connection.default_channel).declare()
    stop = threading.Event()
    instance = Collector(rabbitmq_url, engine, ttl=3600, batch_size=50, flush_interval=0.1,
                         timeout=1, extra_sources=(source([exchange], rules, 3600),))
    thread = threading.Thread(target=instance.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert instance.ready.wait(15)
        inner = {"message_id": str(uuid.uuid4()), "publisher_id": "scheduler.node-7",
                 "event_type": "scheduler.create_volume", "priority": "ERROR",
                 "payload": {"volume_id": "vol-1",
                             "volume_properties": {"project_id": "p1", "user_id": "u1"}},
                 "timestamp": "9999-12-31 23:59:59.999999"}
        bad = [b"[" * 100_000,
               json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()]
        with bus.connect(rabbitmq_url) as connection:
            producer = Producer(connection.default_channel)
            for body in bad:
                producer.publish(body, exchange=exchange, routing_key="notifications.error")
            for _ in range(100):
                producer.publish(_sample().to_wire(),
                                 exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY)
        # Both notifications are settled (dead-lettered, or stored if the handler learns
        # to read that timestamp) and the SDK's 100 are stored, not stuck behind them.
        deadline = time.monotonic() + 60
        while _counts(engine)[0] + instance.stats.dead_lettered < 102:
            assert time.monotonic() < deadline, (_counts(engine), instance.stats)
            time.sleep(0.1)
        assert _counts(engine)[0] >= 100 and instance.stats.dead_lettered >= 1
        letters = _dead_letters(rabbitmq_url, instance.stats.dead_lettered)
        assert {letter["source"] for letter in letters} == {"notifications"}
        assert any(letter["reason"].startswith("RecursionError") or "nested" in letter["reason"]
                   for letter in letters), letters
    finally:
        stop.set()
        thread.join(15)


def test_two_collectors_and_two_apis_share_one_store_and_one_broker(
        shared_broker, postgresql_admin_url, tmp_path):
    rabbitmq_url = shared_broker.url
    db_url, engine = _fresh_store(postgresql_admin_url)
    conf = tmp_path / "api.conf"
    conf.write_text(f"[collector]\nembedded = false\n[bus]\nurl = {rabbitmq_url}\n")
    messenger = Messenger.from_url(rabbitmq_url, spool_path=str(tmp_path / "s.sqlite"))
    with collector(rabbitmq_url, db_url, tmp_path, "one"), \
            collector(rabbitmq_url, db_url, tmp_path, "two"), \
            servers.api_server(db_url, config_file=str(conf)) as api_a, \
            servers.api_server(db_url, config_file=str(conf)) as api_b:
        ids = [_create(messenger, i) for i in range(2000)]
        _wait_rows(shared_broker, engine, 2000)
        for project in (f"{p:08x}" for p in range(3)):
            expected = {ids[i] for i in range(2000) if i % 3 == int(project, 16)}
            for api in (api_a, api_b):
                seen: set[str] = set()
                url: str | None = f"{api}/v3/{project}/messages?limit=1000"
                while url:
                    body = httpx.get(url, headers={"X-Auth-Token": f"u:{project}",
                                                   "OpenStack-API-Version": "volume 3.5"},
                                     timeout=30).json()
                    seen |= {m["id"] for m in body["messages"]}
                    links = body.get("messages_links")
                    url = links[0]["href"] if links else None
                assert seen == expected
    logs = [(tmp_path / f"{name}.log").read_text() for name in ("one", "two")]
    assert all("Traceback" not in log for log in logs)
    messenger.close()
