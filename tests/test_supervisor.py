"""`usermessages serve` with several API workers, as real processes: one port, a killed
worker replaced while the port keeps answering, a graceful stop, the background parts
run once beside the workers, and /metrics and the stream caps shared by every worker."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from kombu import Connection
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import select

from tests import servers
from tests.api.conftest import headers
from tests.web.sse import Stream, api_stream, api_url, held
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.store.schema import slot_leases
from usermessages.supervisor import STOP_SECONDS
from usermessages.web.events import POLL_SECONDS

P1, P2, P3 = "a1a1", "b2b2", "c3c3"
REFUSED = "usermessages_api_slots_refused_total"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent has not reaped it yet).
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def _metrics_dir(pid: int) -> Path:
    """Where a worker writes its values (its environment says)."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
            return Path(item.split(b"=", 1)[1].decode())
    raise AssertionError(f"process {pid} is not in multiprocess mode")


class Load:
    """Clients asking for a project's list in a loop, each on its own keep-alive
    connection, until stopped: when each answer came, and the failures."""

    def __init__(self, base: str, clients: int = 2) -> None:
        self.base = base
        self.answered: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=1)) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.base}/v3/{P1}/messages",
                                        headers=headers("u", P1)).status_code
                except httpx.TransportError as exc:
                    self.failures.append(type(exc).__name__)
                    continue
                if status == 200:
                    self.answered.append(time.monotonic())
                else:
                    self.failures.append(str(status))

    def wait_answers(self, count: int, after: float = 0.0, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(t > after for t in list(self.answered)) < count:
            assert time.monotonic() < deadline, f"fewer than {count} answers: {self.failures}"
            time.sleep(0.05)

    def stop(self) -> float:
        """Stop; the longest time without an answer while it ran."""
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        times = sorted(self.answered)
        return max(b - a for a, b in zip(times, times[1:], strict=False))


def test_one_port_a_killed_worker_replaced_and_a_graceful_stop(tmp_path):
    with servers.serve(f"sqlite:///{tmp_path}/u.sqlite", workers=2, verbose=True) as served:
        started = served.wait_started({"api-0", "api-1", "background"})
        metrics_dir = _metrics_dir(started["api-0"])
        load = Load(served.base)
        load.wait_answers(20)
        os.kill(started["api-0"], signal.SIGKILL)
        killed_at = time.monotonic()
        again = served.wait_started({"api-0"}, unlike=started)
        print(f"\na killed worker was started again {time.monotonic() - killed_at:.1f} s "
              "after the kill")
        assert again["api-1"] == started["api-1"] and _alive(again["api-1"])
        load.wait_answers(20, after=killed_at)
        gap = load.stop()
        print(f"longest time without an answer: {gap:.2f} s; failures: {load.failures}")
        # At most the request each client had in flight on the killed worker.
        assert len(load.failures) <= 2, load.failures
        assert gap < 3.0, "the port stopped answering while one worker was down"

        # SIGTERM: the open stream ends at its next poll, every process exits, cleanly.
        stream = api_stream(served.base, P1)
        assert stream.response().status_code == 200
        stop_at = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert stream.ended(POLL_SECONDS + 10), "the stream outlived the stop"
        assert served.process.wait(STOP_SECONDS + 10) == 0, served.output()
        took = time.monotonic() - stop_at
        print(f"stopped with an open stream in {took:.1f} s")
        assert took < STOP_SECONDS, "a child had to be killed"
        assert not any(_alive(pid) for pid in again.values())
        assert not metrics_dir.exists()
        assert "Traceback" not in served.output()


def _consumers(url: str) -> int:
    with Connection(url, connect_timeout=5) as connection:
        _, _, consumers = connection.default_channel.queue_declare(
            "usermessages.messages", passive=True)
        return consumers


def _eventually(condition, timeout: float = 60, what: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def test_the_background_parts_run_once_beside_the_workers(tmp_path, rabbitmq_url):
    """Three workers, one collector (one consumer on the broker), one deliverer, one
    reaper pass at start; killed, the background process is started again, once."""
    db_url = f"sqlite:///{tmp_path}/u.sqlite"
    config = tmp_path / "usermessages.conf"
    config.write_text(f"[bus]\nurl = {rabbitmq_url}\n")
    messenger = Messenger.from_url(rabbitmq_url)  # declares the queue
    context = RequestContext(project_id=P1, user_id="u")
    messenger.create(context, Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
    assert messenger.flush() == 0
    before = _consumers(rabbitmq_url)  # other tests' collectors on the session's broker
    with servers.serve(db_url, config_file=str(config), workers=3, verbose=True) as served:
        started = served.wait_started({"api-0", "api-1", "api-2", "background"})
        _eventually(lambda: "webhook deliverer started" in served.output()
                    and "Deleted 0 expired messages." in served.output(), what="parts")
        _eventually(lambda: _consumers(rabbitmq_url) == before + 1, what="one consumer")
        out = served.output()
        assert out.count("background parts: collector, reaper, webhooks") == 1
        assert out.count("webhook deliverer started") == 1
        assert out.count("Deleted 0 expired messages.") == 1  # the reaper's pass at start
        # The collector stores what the bus holds; every worker reads it.
        _eventually(lambda: len(httpx.get(f"{served.base}/v3/{P1}/messages",
                                          headers=headers("u", P1)).json()["messages"]) == 1,
                    what="the message stored")
        # Killed, the background process comes back, once; the workers are untouched.
        os.kill(started["background"], signal.SIGKILL)
        again = served.wait_started({"background"}, unlike=started)
        assert {k: v for k, v in again.items() if k != "background"} == {
            k: v for k, v in started.items() if k != "background"}
        _eventually(lambda: served.output().count("webhook deliverer started") == 2,
                    what="the deliverer started again")
        _eventually(lambda: _consumers(rabbitmq_url) == before + 1, what="one consumer again")
        messenger.create(context, Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
        assert messenger.flush() == 0
        _eventually(lambda: len(httpx.get(f"{served.base}/v3/{P1}/messages",
                                          headers=headers("u", P1)).json()["messages"]) == 2,
                    what="the next message stored")
    messenger.close()


def _refused_by_pid(metrics_dir: Path) -> dict[int, float]:
    """Each process's count of refused streams, from its own file (a copy, read alone)."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = Path(tempfile.mkdtemp())
        try:
            shutil.copy(path, alone / path.name)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(alone))
            value = registry.get_sample_value(REFUSED, {"kind": "streams", "cap": "project"})
        finally:
            shutil.rmtree(alone)
        if value:
            counts[int(path.stem.split("_")[1])] = value
    return counts


def _refused_on_metrics(base: str) -> float:
    registry_text = httpx.get(f"{base}/metrics", timeout=10).text
    line = f'{REFUSED}{{cap="project",kind="streams"}} '
    found = [row for row in registry_text.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


@pytest.fixture
def capped(tmp_path, postgresql_url) -> Iterator[tuple[servers.Served, str]]:
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    engine.dispose()
    config = tmp_path / "usermessages.conf"
    config.write_text("[api]\nmax_streams = 4\nmax_streams_per_project = 2\n")
    with servers.serve(postgresql_url, config_file=str(config), workers=3,
                       verbose=True) as served:
        yield served, postgresql_url


def _statuses(base: str, project: str, count: int) -> tuple[list[int], list[Stream]]:
    """``count`` streams asked for at once: their statuses, and the open ones."""
    start = threading.Barrier(count, timeout=60)

    def one(_: int) -> Stream:
        start.wait()
        return api_stream(base, project)

    with ThreadPoolExecutor(count) as pool:
        streams = list(pool.map(one, range(count)))
    statuses = [s.response().status_code for s in streams]
    return statuses, [s for s, status in zip(streams, statuses, strict=True) if status == 200]


def test_caps_and_metrics_hold_across_workers(capped):
    served, db_url = capped
    base = served.base
    started = served.wait_started({"api-0", "api-1", "api-2"})
    # Six at once for one project, on three workers: its two, not one per worker.
    statuses, p1 = _statuses(base, P1, 6)
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
    statuses, p2 = _statuses(base, P2, 2)
    assert statuses == [200, 200]
    # The total (4) is full, whichever worker is asked.
    statuses, _ = _statuses(base, P3, 3)
    assert statuses == [503] * 3
    assert held(base, "streams") == 4  # the node's workers' gauges, added up
    for stream in p2:
        stream.close()
    _eventually(lambda: held(base, "streams") == 2, what="P2's streams given back")

    # Refusals counted by several workers, summed in one /metrics answer.
    refused = 4
    metrics_dir = _metrics_dir(started["api-0"])
    for _ in range(10):
        with ThreadPoolExecutor(9) as pool:
            answers = list(pool.map(
                lambda _: httpx.get(api_url(base, P1), headers=headers("u", P1),
                                    timeout=30).status_code, range(9)))
        assert answers == [429] * 9
        refused += 9
        by_pid = _refused_by_pid(metrics_dir)
        if len(by_pid) >= 2:
            break
    assert len(by_pid) >= 2, f"every refusal came from one worker: {by_pid}"
    assert sum(by_pid.values()) == refused == _refused_on_metrics(base)
    print(f"\n{refused} refusals counted by {len(by_pid)} workers: {by_pid}")

    # Kill -9 the worker holding one of P1's streams: its slot comes back at once
    # (the supervisor gives it back), its counts stay in the sums.
    engine = store_engine.connect(db_url)
    with engine.connect() as conn:
        holders = conn.execute(select(slot_leases.c.holder)
                               .where(slot_leases.c.project_id == P1)).scalars().all()
    engine.dispose()
    victim = int(holders[0].rsplit(":", 1)[1])
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    assert any(s.ended(10) for s in p1), "the killed worker's stream did not end"
    while True:
        statuses, more = _statuses(base, P1, 1)
        if statuses == [200]:
            break
        assert statuses == [429]
        refused += 1
        assert time.monotonic() - killed_at < 10, "the killed worker's slot did not come back"
        time.sleep(0.1)
    took = time.monotonic() - killed_at
    print(f"a killed worker's stream slot came back {took:.1f} s after the kill "
          f"(its lease would have lapsed after 30 s)")
    # The dead worker's file still counts: the sum never goes back.
    assert _refused_on_metrics(base) == refused == sum(_refused_by_pid(metrics_dir).values())
    for stream in p1 + more:
        stream.close()
