"""Never hang under concurrency: 50 creates at once with the broker stopped or frozen.

Each answers 503 within the documented bound (the circuit breaker fails every
cast after the first at once), reads made during the burst stay fast, each
failed request gets exactly one message, and admins hear once that the broker
is unreachable and once that it is back, however many API processes noticed.
Separate processes on a real RabbitMQ, as in test_never_hang.py.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.blockstorage.conftest import FAST, Cloud, blockstorage_server, frozen
from tests.harness import servers

BUS_TIMEOUT = 2.0
# docs/reference-service.md: a call that casts answers within 3 x [bus] timeout; the
# extra second is slack for 6 engineers' tests sharing 2 cores.
CAST_BOUND = 3 * BUS_TIMEOUT + 1.0
# With anyio's default 40 threads, 40 creates waiting on the publisher starve reads for
# about one [bus] timeout (measured 0.9 s with a 1 s timeout); widened, reads took at
# most 0.5 s on a loaded machine. A 2 s timeout keeps the two cases well apart.
READ_BOUND = 1.0
BURST = 50
UNREACHABLE, REACHABLE = "VOLUME_SYSTEM_102_103", "VOLUME_SYSTEM_102_104"


def _config(bus_url: str, deadline: float = 6) -> str:
    return (FAST.replace("operation_deadline = 6", f"operation_deadline = {deadline}")
            + f"\n[bus]\nurl = {bus_url}\ntimeout = {BUS_TIMEOUT}\n")


def _burst(base: str, project: str) -> tuple[list[httpx.Response], list[float], list[float]]:
    """BURST concurrent creates; GETs of /volumes/detail meanwhile. Returns
    (responses, create latencies, read latencies)."""
    headers = {"X-Auth-Token": f"alice:{project}", "OpenStack-API-Version": "volume 3.5"}
    limits = httpx.Limits(max_connections=BURST + 5)
    done = threading.Event()
    reads: list[float] = []

    def read(client: httpx.Client) -> None:
        while not done.is_set():
            started = time.monotonic()
            assert client.get(f"/v3/{project}/volumes/detail").status_code == 200
            reads.append(time.monotonic() - started)

    def create(client: httpx.Client) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = client.post(f"/v3/{project}/volumes", json={"volume": {"size": 1}})
        return response, time.monotonic() - started

    with httpx.Client(base_url=base, headers=headers, timeout=120, limits=limits) as client:
        reader = threading.Thread(target=read, args=(client,))
        reader.start()
        with ThreadPoolExecutor(BURST) as pool:
            results = list(pool.map(lambda _: create(client), range(BURST)))
        done.set()
        reader.join()
    return [r for r, _ in results], [t for _, t in results], reads


def _assert_each_answered_once(user: Cloud, responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code == 503, response.text
        fault = response.json()["serviceUnavailable"]
        request_id = response.headers["x-openstack-request-id"]
        assert request_id in fault["message"]
        assert user.wait_message(request_id=request_id, timeout=10)["event_id"] == (
            "VOLUME_VOLUME_001_109")


def _report(what: str, latencies: list[float], reads: list[float]) -> None:
    print(f"\n{what}: {len(latencies)} creates, max {max(latencies):.3f}s, median "
          f"{statistics.median(latencies):.3f}s; {len(reads)} reads during the burst, max "
          f"{max(reads):.3f}s, median {statistics.median(reads):.3f}s")


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@contextlib.contextmanager
def _warm(broker: servers.RabbitMQ, tmp_path) -> Iterator[tuple[str, Cloud, Cloud]]:
    """The all-in-one on ``broker``, its publisher connected by one successful create."""
    with blockstorage_server(_config(broker.url), workdir=tmp_path) as base:
        user = Cloud(base, "alice", os.urandom(4).hex())
        volume_id, _ = user.create_volume(1)
        user.wait(f"/volumes/{volume_id}", "volume", "available")
        yield base, user, Cloud(base, "admin", "adadadad")


def test_broker_stopped_burst_fails_fast_and_admins_hear_once(tmp_path):
    with servers.rabbitmq_broker() as broker, _warm(broker, tmp_path) as (base, user, admin):
        # A second API process on the same state: it notices the same outage.
        with blockstorage_server(_config(broker.url), components="api",
                                 workdir=tmp_path) as second:
            other = Cloud(second, "alice", user.project)
            broker.stop_app()
            responses, latencies, reads = _burst(base, user.project)
            _report("broker stopped", latencies, reads)
            assert max(latencies) <= CAST_BOUND, latencies
            assert max(reads) <= READ_BOUND, reads
            _assert_each_answered_once(user, responses)
            assert other.post("/volumes", {"volume": {"size": 1}}).status_code == 503

            assert admin.wait_message(event_id=UNREACHABLE, timeout=10)["user_message"] == (
                "reach the message bus:The message broker is unreachable.")
            broker.start_app()
            assert admin.wait_message(event_id=REACHABLE, timeout=30)["user_message"] == (
                "reach the message bus:The message broker is reachable again.")
            # Both processes' breakers close (a create is accepted by each) ...
            # Each process probes on its own: either may see the broker back first.
            _wait_for(lambda: other.post("/volumes", {"volume": {"size": 1}}).status_code == 202,
                      30, "the second API process never closed its breaker")
            accepted: list[httpx.Response] = []
            _wait_for(lambda: accepted.append(user.post("/volumes", {"volume": {"size": 1}}))
                      or accepted[-1].status_code == 202,
                      30, "the first API process never closed its breaker")
            volume_id = accepted[-1].json()["volume"]["id"]
            user.wait(f"/volumes/{volume_id}", "volume", "available", timeout=30)
            # ... and the outage and the recovery were each announced once.
            assert len(admin.messages(event_id=UNREACHABLE)) == 1
            assert len(admin.messages(event_id=REACHABLE)) == 1
            assert user.messages(event_id=UNREACHABLE) == []


def test_broker_frozen_burst_fails_fast(tmp_path):
    with servers.rabbitmq_broker() as broker, _warm(broker, tmp_path) as (base, user, admin):
        with frozen(broker):
            responses, latencies, reads = _burst(base, user.project)
            _report("broker frozen", latencies, reads)
            assert max(latencies) <= CAST_BOUND, latencies
            assert max(reads) <= READ_BOUND, reads
            _assert_each_answered_once(user, responses)
            admin.wait_message(event_id=UNREACHABLE, timeout=10)
        admin.wait_message(event_id=REACHABLE, timeout=30)
        volume_id, _ = user.create_volume(1)
        user.wait(f"/volumes/{volume_id}", "volume", "available", timeout=30)


def test_one_failed_request_one_message_when_the_cast_outlives_the_deadline(tmp_path):
    # operation_deadline shorter than one cast's wait on a frozen broker: the watchdog
    # and the API race on each volume; whoever wins the transition alone tells the user.
    with servers.rabbitmq_broker() as broker:
        config = _config(broker.url, deadline=0.5).replace("watchdog_interval = 0.5",
                                                           "watchdog_interval = 0.1")
        with blockstorage_server(config, workdir=tmp_path) as base:
            user = Cloud(base, "alice", os.urandom(4).hex())
            assert user.post("/volumes", {"volume": {"size": 1}}).status_code == 202
            with frozen(broker):
                responses, _, _ = _burst(base, user.project)
            assert [r.status_code for r in responses] == [503] * BURST
            volumes = {v["id"]: v for v in user.get("/volumes/detail").json()["volumes"]}
            timed_out = 0
            for response in responses:
                # Both writers record before they commit, and the loser waits for that
                # commit: by the time the 503 is sent the messages are final.
                request_id = response.headers["x-openstack-request-id"]
                found = user.messages(request_id=request_id)
                assert len(found) == 1, found
                assert volumes[found[0]["resource_uuid"]]["status"] == "error"
                timed_out += found[0]["event_id"] == "VOLUME_VOLUME_001_108"
            # The race did happen: some casts outlived the deadline.
            assert timed_out >= 1
