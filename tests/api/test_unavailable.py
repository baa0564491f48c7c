"""A frozen or stopped PostgreSQL never freezes the API: concurrent requests each get
503 serviceUnavailable within the documented bound, the viewer shows a page saying so,
the live streams (the viewer's and the API's) stay open and say so, and everything
answers again by itself once the database is back. Real server, real PostgreSQL (its
own cluster: this test freezes and stops it)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import signal
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import row
from tests.harness import servers
from tests.viewer.test_stream import Stream
from tests.viewer_session import sign_in
from tests.web import sse
from usermessages.config import Settings
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer

PROJECT = "dddd0004"
TIMEOUT = Settings().database_timeout
# docs/api.md: a request answers within max(2 x timeout, timeout + 2 s); the margin is
# for this shared machine, not for the design.
BOUND = max(2 * TIMEOUT, TIMEOUT + 2) + 1.5
CONCURRENCY = 20
# Rows that outlive the run: row()'s fixed time plus 30 days is already past,
# and the server's reaper would take them mid-test.
LIVE = dt.timedelta(days=3650)
HEADERS = {"X-Auth-Token": f"alice:{PROJECT}", "OpenStack-API-Version": "volume 3.5"}


@pytest.fixture
def site() -> Iterator[tuple[servers.PostgreSQL, str, str]]:
    with servers.postgresql_cluster() as cluster:
        url = servers.create_database(cluster.url, "frozen")
        engine = store_engine.connect(url)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            writer.insert(conn, [row(PROJECT, expires_in=LIVE)])
        engine.dispose()
        with servers.api_server(url) as base:
            yield cluster, base, url


def _server_pids(cluster: servers.PostgreSQL) -> list[int]:
    """The postmaster and every process it started."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _burst(base: str, n: int = CONCURRENCY) -> list[tuple[int, float, httpx.Response]]:
    """n concurrent list calls: (status, seconds, response) each."""
    def one(_: int) -> tuple[int, float, httpx.Response]:
        started = time.monotonic()
        answer = httpx.get(f"{base}/v3/{PROJECT}/messages", headers=HEADERS, timeout=60)
        return answer.status_code, time.monotonic() - started, answer

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def _assert_all_unavailable(results, what: str) -> None:  # type: ignore[no-untyped-def]
    times = [seconds for _, seconds, _ in results]
    print(f"\n{what}: {len(times)} concurrent requests, 503 in max {max(times):.2f} s, "
          f"median {statistics.median(times):.2f} s (bound {BOUND:.1f} s)")
    for status, seconds, answer in results:
        assert status == 503, answer.text
        assert answer.json() == {"serviceUnavailable": {
            "code": 503,
            "message": "The server is currently unavailable. Please try again at a later time.",
        }}
        assert seconds <= BOUND, f"{what}: a 503 took {seconds:.2f} s"


def _viewer(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    signed_in = sign_in(client, "alice", PROJECT)
    assert signed_in.status_code == 303
    return client


def _assert_viewer_unavailable(client: httpx.Client) -> None:
    started = time.monotonic()
    page = client.get("/viewer/messages")
    assert time.monotonic() - started <= BOUND
    assert page.status_code == 503
    assert "Temporarily unavailable" in page.text and "Traceback" not in page.text


def _assert_recovers(base: str, url: str, stream: Stream, api_stream: sse.Stream) -> None:
    """Without any help, the API answers again once the database is back, and the live
    streams, open through the outage, show a row stored after it."""
    deadline = time.monotonic() + 30
    url_list = f"{base}/v3/{PROJECT}/messages"
    while httpx.get(url_list, headers=HEADERS, timeout=60).status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover"
        time.sleep(0.2)
    results = _burst(base)
    assert [status for status, _, _ in results] == [200] * CONCURRENCY
    assert all(len(answer.json()["messages"]) == 1 for _, _, answer in results)
    engine = store_engine.connect(url)
    with engine.begin() as conn:
        writer.insert(conn, [row(PROJECT, message_id="after-the-outage", expires_in=LIVE)])
    engine.dispose()
    while stream.next_event()[1] != "after-the-outage":
        pass
    while sse.message_id(api_stream.next_event()) != "after-the-outage":
        pass


def _open_stream(viewer: httpx.Client) -> Stream:
    stream = Stream(viewer, "/viewer/stream")
    assert stream.status.get(timeout=10) == 200
    return stream


def _open_api_stream(base: str) -> sse.Stream:
    stream = sse.api_stream(base, PROJECT, user="alice")
    assert stream.response().status_code == 200
    return stream


def _assert_stream_says_unavailable(stream: Stream) -> None:
    try:
        assert stream.notices.get(timeout=BOUND + 2) == "unavailable"
    except queue.Empty:
        raise AssertionError("the open stream never said the store is unavailable") from None


def _assert_api_stream_says_unavailable(stream: sse.Stream) -> None:
    """The same event as the viewer's (one loop), and the stream stays open."""
    event = stream.next_event("unavailable", timeout=BOUND + 2)
    assert event.fields["data"] == "The database is not answering."


def test_a_frozen_database_answers_503_within_the_bound_then_recovers(site):
    cluster, base, url = site
    viewer = _viewer(base)
    stream = _open_stream(viewer)
    api_stream = _open_api_stream(base)
    assert _burst(base, 5)[0][0] == 200  # the pool holds live connections before the freeze
    pids = _server_pids(cluster)
    _signal(pids, signal.SIGSTOP)
    try:
        _assert_all_unavailable(_burst(base), "frozen (SIGSTOP)")
        _assert_all_unavailable(_burst(base), "frozen (SIGSTOP), second burst")
        _assert_viewer_unavailable(viewer)
        _assert_stream_says_unavailable(stream)
        _assert_api_stream_says_unavailable(api_stream)
    finally:
        _signal(pids, signal.SIGCONT)
    _assert_recovers(base, url, stream, api_stream)
    assert viewer.get("/viewer/messages").status_code == 200


def test_a_stopped_database_answers_503_within_the_bound_then_recovers(site):
    cluster, base, url = site
    viewer = _viewer(base)
    stream = _open_stream(viewer)
    api_stream = _open_api_stream(base)
    assert _burst(base, 5)[0][0] == 200
    cluster.stop()
    try:
        _assert_all_unavailable(_burst(base), "stopped")
        _assert_viewer_unavailable(viewer)
        _assert_stream_says_unavailable(stream)
        _assert_api_stream_says_unavailable(api_stream)
    finally:
        cluster.start()
    _assert_recovers(base, url, stream, api_stream)
    assert viewer.get("/viewer/messages").status_code == 200
