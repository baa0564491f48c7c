"""A failure storm on real RabbitMQ, two collectors and PostgreSQL: storm control stores a
bounded number of rows, the series counts every occurrence exactly, /metrics accounts for
what was not stored, and the API keeps answering meanwhile."""

from __future__ import annotations

import contextlib
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.harness import servers
from usermessages import Action, Detail, Messenger, RequestContext, bus
from usermessages.store import engine as store_engine
from usermessages.store import migrate

PROJECT = "5707a000"
VOLUME = "d2b7f0de-5c1a-4e8b-9a47-0c1d2e3f4a5b"
PRODUCERS, EACH = 10, 10_000
PER_EVENT = 200
HEADERS = {"X-Auth-Token": f"alice:{PROJECT}", "OpenStack-API-Version": "volume 3.5"}


@contextlib.contextmanager
def _collector(bus_url: str, db_url: str, workdir: Path, name: str,
               metrics_port: int) -> Iterator[subprocess.Popen]:
    conf = workdir / f"{name}.conf"
    conf.write_text("[collector]\nbatch_size = 500\nflush_interval = 0.1\n"
                    f"storm_rows_per_event = {PER_EVENT}\nstorm_rows_per_project = 1000\n"
                    "storm_window = 3600\n[bus]\ntimeout = 1\n")
    log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "usermessages.cli.main", "collector", "--bus", bus_url,
         "--db", db_url, "--config", str(conf), "--metrics-port", str(metrics_port)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _series(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        found = conn.execute(text("SELECT coalesce(sum(count), 0), coalesce(sum(suppressed), 0) "
                                  "FROM message_series")).one()
    return int(found[0]), int(found[1])


def _rows(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM messages")).scalar_one()


def _metric(port: int, name: str) -> float:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    match = re.search(rf"^{name}_total (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class ApiProbe:
    """Calls the messages list and the series list in turn, timing each, until stopped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.timings: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        urls = [f"{self.base}/v3/{PROJECT}/messages?limit=50",
                f"{self.base}/v3/{PROJECT}/messages-ext/series"]
        with httpx.Client(headers=HEADERS, timeout=30) as client:
            while not self.stop.is_set():
                for url in urls:
                    started = time.monotonic()
                    response = client.get(url)
                    self.timings.append(time.monotonic() - started)
                    if response.status_code != 200:
                        self.failures.append(f"{url}: {response.status_code}")
                self.stop.wait(0.05)


@pytest.fixture
def broker(rabbitmq: servers.RabbitMQ) -> servers.RabbitMQ:
    """The session's RabbitMQ, its messages queue empty."""
    with bus.connect(rabbitmq.url) as connection:
        bus.declare(connection)
        bus.messages_queue()(connection.default_channel).purge()
    return rabbitmq


def test_a_storm_of_100000_identical_failures(broker, postgresql_admin_url, tmp_path):
    db_url = servers.create_database(postgresql_admin_url, f"storm_{uuid.uuid4().hex[:8]}")
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    api_conf = tmp_path / "api.conf"
    api_conf.write_text("[collector]\nembedded = false\n")
    ports = [servers.free_port(), servers.free_port()]

    def produce(worker: int) -> None:
        messenger = Messenger.from_url(broker.url,
                                       spool_path=str(tmp_path / f"spool{worker}.sqlite"))
        for i in range(EACH):
            messenger.create(RequestContext(project_id=PROJECT, user_id="alice",
                                            request_id=f"req-{worker}-{i}"),
                             Action.ATTACH_VOLUME, resource_uuid=VOLUME,
                             detail=Detail.ATTACH_ERROR)
        assert messenger.flush(300) == 0
        messenger.close()

    with servers.api_server(db_url, config_file=str(api_conf)) as base, \
            _collector(broker.url, db_url, tmp_path, "one", ports[0]), \
            _collector(broker.url, db_url, tmp_path, "two", ports[1]):
        probe = ApiProbe(base)
        probe.thread.start()
        started = time.monotonic()
        producers = [threading.Thread(target=produce, args=(w,)) for w in range(PRODUCERS)]
        for producer in producers:
            producer.start()
        for producer in producers:
            producer.join()
        published = time.monotonic() - started
        deadline = time.monotonic() + 600
        while _series(engine)[0] < PRODUCERS * EACH:
            assert time.monotonic() < deadline, f"only {_series(engine)} counted"
            time.sleep(0.2)
        stored_all = time.monotonic() - started
        probe.stop.set()
        probe.thread.join()
        # Nothing more arrives once the bus is drained (the collectors ack after commit):
        # the count is exact, not merely at least the total.
        broker.wait_drained(bus.messages_queue().name)
        total, suppressed = _series(engine)
        rows = _rows(engine)
        metric_suppressed = sum(_metric(p, "usermessages_collector_suppressed") for p in ports)
        metric_stored = sum(_metric(p, "usermessages_collector_stored") for p in ports)
        series = httpx.get(f"{base}/v3/{PROJECT}/messages-ext/series", headers=HEADERS,
                           timeout=30).json()["series"]

    timings = sorted(probe.timings)
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1] if len(timings) >= 100 else timings[-1]
    print(f"\nstorm: {PRODUCERS * EACH} occurrences published in {published:.1f} s, "
          f"all counted after {stored_all:.1f} s; {rows} rows stored, {suppressed} suppressed; "
          f"API during the storm: {len(timings)} calls, p50 {p50 * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {timings[-1] * 1000:.1f} ms")
    assert (total, suppressed) == (PRODUCERS * EACH, PRODUCERS * EACH - PER_EVENT)
    assert rows == PER_EVENT  # one window: the two collectors together kept to the limit
    assert (metric_stored, metric_suppressed) == (PER_EVENT, PRODUCERS * EACH - PER_EVENT)
    (only,) = series
    assert (only["count"], only["suppressed"], only["resource_uuid"]) == (
        PRODUCERS * EACH, PRODUCERS * EACH - PER_EVENT, VOLUME)
    assert len(only["request_ids"]) == 5
    assert probe.failures == []
    assert len(timings) >= 20
    assert p50 < 1.0 and p99 < 5.0  # generous: a loaded shared machine, not the target
    engine.dispose()


def test_series_count_exactly_through_a_collector_killed_mid_stream(
        broker, postgresql_admin_url, tmp_path):
    """No storm limit: two collectors, one killed -9 with batches in flight and restarted;
    the redelivered messages are stored once and counted once."""
    db_url = servers.create_database(postgresql_admin_url, f"kill_{uuid.uuid4().hex[:8]}")
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    total = 20_000
    messenger = Messenger.from_url(broker.url, spool_path=str(tmp_path / "spool.sqlite"))
    for i in range(total):
        messenger.create(RequestContext(project_id=PROJECT, request_id=f"req-{i}"),
                         Action.ATTACH_VOLUME, resource_uuid=f"vol-{i % 7}",
                         detail=Detail.ATTACH_ERROR)
    assert messenger.flush(120) == 0
    messenger.close()
    plain = "[collector]\nbatch_size = 300\nflush_interval = 0.1\n[bus]\ntimeout = 1\n"
    logs = [open(tmp_path / f"{n}.log", "ab") for n in ("a", "b", "c")]  # noqa: SIM115
    (tmp_path / "plain.conf").write_text(plain)

    def start(log) -> subprocess.Popen:  # type: ignore[no-untyped-def]
        return subprocess.Popen(
            [sys.executable, "-m", "usermessages.cli.main", "collector", "--bus", broker.url,
             "--db", db_url, "--config", str(tmp_path / "plain.conf")],
            stdout=log, stderr=subprocess.STDOUT)

    survivor, victim = start(logs[0]), start(logs[1])
    try:
        deadline = time.monotonic() + 120
        while _rows(engine) < total // 5:
            assert time.monotonic() < deadline, f"only {_rows(engine)} stored"
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)  # unacked batches go back to the queue
        victim.wait()
        replacement = start(logs[2])
        deadline = time.monotonic() + 300
        while _rows(engine) < total:
            assert time.monotonic() < deadline, f"only {_rows(engine)} stored"
            time.sleep(0.2)
        broker.wait_drained(bus.messages_queue().name)  # a double count would show now
        assert _rows(engine) == total
        with engine.connect() as conn:
            counts = dict(conn.execute(text(
                "SELECT resource_uuid, count FROM message_series")).all())
        assert counts == {f"vol-{k}": len(range(k, total, 7)) for k in range(7)}
    finally:
        for process in (survivor, victim, locals().get("replacement")):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
        for log in logs:
            log.close()
    engine.dispose()
