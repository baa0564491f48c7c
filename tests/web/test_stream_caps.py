"""The caps on live streams, over a real server: one count for the API's stream and the
viewer's, per project and in total; no slot is ever leaked, whether clients vanish
(connections reset) or the server shuts down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.api.conftest import headers
from tests.web.sse import (
    Stream,
    api_url,
    cookie_header,
    kill,
    raw_get,
    status_of,
    viewer_client,
    wait_held,
)
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.web.events import POLL_SECONDS
from usermessages.web.limits import RETRY_FULL, RETRY_PROJECT

P1, P2, P3, P4 = "a1a1", "b2b2", "c3c3", "d4d4"


@pytest.fixture
def caps(tmp_path: Path) -> Iterator[str]:
    """A server holding at most 6 streams, 2 per project."""
    config = tmp_path / "usermessages.conf"
    config.write_text("[api]\nmax_streams = 6\nmax_streams_per_project = 2\n")
    with servers.api_server(f"sqlite:///{tmp_path}/caps.sqlite",
                            config_file=str(config)) as base:
        yield base


@dataclass
class Attempt:
    """One stream asked for: accepted (open), or refused and how."""

    front: str
    project: str
    stream: Stream
    client: httpx.Client
    refusal: str | None = None  # the text a refused caller was given
    status: int = 200
    retry_after: int | None = None


def _attempt(base: str, front: str, project: str, start: threading.Barrier) -> Attempt:
    client = viewer_client(base, project) if front == "viewer" else httpx.Client(timeout=30)
    start.wait()  # every request leaves at once
    if front == "api":
        stream = Stream(client, api_url(base, project), headers("u", project))
        response = stream.response()
        if response.status_code == 200:
            return Attempt(front, project, stream, client)
        (fault,) = response.json().values()
        assert fault["code"] == response.status_code
        return Attempt(front, project, stream, client, fault["message"],
                       response.status_code, int(response.headers["retry-after"]))
    stream = Stream(client, "/viewer/stream")
    assert stream.response().status_code == 200
    first = stream.next_block()
    assert first is not None
    if first.event == "busy":
        # The browser shows the text and reconnects after the retry delay.
        return Attempt(front, project, stream, client, first.fields["data"],
                       retry_after=int(first.fields["retry"]) // 1000)
    assert first.fields == {"retry": "2000"}, first
    return Attempt(front, project, stream, client)


def _burst(base: str, wanted: list[tuple[str, str]]) -> list[Attempt]:
    start = threading.Barrier(len(wanted), timeout=60)
    with ThreadPoolExecutor(len(wanted)) as pool:
        return list(pool.map(lambda fp: _attempt(base, fp[0], fp[1], start), wanted))


def test_one_project_cannot_take_every_stream_and_the_server_cap_still_holds(caps):
    base = caps
    # Project 1 asks for three times its share, on both front ends, while project 2
    # asks for one stream on each: all at the same moment.
    wanted = [("api", P1)] * 3 + [("viewer", P1)] * 3 + [("api", P2), ("viewer", P2)]
    attempts = _burst(base, wanted)
    try:
        first = [a for a in attempts if a.project == P1]
        assert sum(a.refusal is None for a in first) == 2  # its share, not one more
        for refused in (a for a in first if a.refusal is not None):
            assert refused.refusal.startswith(
                "Your project already holds its share of the service's event streams (2)")
            assert refused.retry_after == RETRY_PROJECT
            assert refused.status == (429 if refused.front == "api" else 200)
        assert [a.refusal for a in attempts if a.project == P2] == [None, None]
        wait_held(base, "streams", 4)
        # The server's cap counts both front ends: 2 more fill it, then nobody gets one.
        attempts += _burst(base, [("api", P3), ("viewer", P3)])
        assert [a.refusal for a in attempts[-2:]] == [None, None]
        attempts += _burst(base, [("api", P4), ("viewer", P4)])
        for full in attempts[-2:]:
            assert full.refusal is not None
            assert "The service holds 6 event streams open, its limit." in full.refusal
            assert full.retry_after == RETRY_FULL
            assert full.status == (503 if full.front == "api" else 200)
        wait_held(base, "streams", 6)
    finally:
        for attempt in attempts:
            attempt.client.close()
    wait_held(base, "streams", 0)


def test_reset_connections_give_every_slot_back(tmp_path: Path):
    """40 streams (API and viewer, 4 projects) opened at once, 8 more refused, then every
    connection reset at once: every slot is free again, and all 40 can be opened again."""
    config = tmp_path / "usermessages.conf"
    config.write_text("[api]\nmax_streams = 40\nmax_streams_per_project = 10\n")
    projects = [P1, P2, P3, P4]
    with servers.api_server(f"sqlite:///{tmp_path}/kill.sqlite",
                            config_file=str(config)) as base:
        sessions = {p: cookie_header(viewer_client(base, p)) for p in projects}
        requests = [(f"/v3/{p}/messages-ext/stream", headers("u", p)) for p in projects
                    for _ in range(5)]
        requests += [("/viewer/stream", {"Cookie": sessions[p]}) for p in projects
                     for _ in range(5)]

        def open_and_reset(round_: int) -> None:
            # The test joins the second barrier: it lets the resets go once it has counted.
            start = threading.Barrier(len(requests), timeout=60)
            reset = threading.Barrier(len(requests) + 1, timeout=60)

            def one(request: tuple[str, dict[str, str]]) -> int:
                start.wait()
                with raw_get(base, *request) as sock:
                    status = status_of(sock)
                    reset.wait()  # held until every stream is open and counted
                    kill(sock)
                return status

            with ThreadPoolExecutor(len(requests) + 1) as pool:
                statuses = pool.map(one, requests)
                wait_held(base, "streams", 40)
                # Full: more of the same projects are refused meanwhile.
                over = [httpx.get(base + path, headers=h, timeout=30).status_code
                        for path, h in requests[:8:2]]
                assert over == [503] * 4, f"round {round_}"
                reset.wait()
                assert list(statuses) == [200] * len(requests)
            reset_at = time.monotonic()
            wait_held(base, "streams", 0)
            print(f"\nround {round_}: 40 reset streams all given back in "
                  f"{time.monotonic() - reset_at:.2f} s")

        open_and_reset(1)
        open_and_reset(2)  # every slot came back: the same 40 fit again


def test_a_shutdown_ends_open_streams_and_gives_their_slots_back(tmp_path: Path):
    """uvicorn's graceful shutdown waits for open responses: without the streams ending
    at their next poll, it would wait up to their five minutes."""
    url = f"sqlite:///{tmp_path}/shutdown.sqlite"
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    app = create_app(Settings(database_connection=url), engine=engine)
    with servers.in_process(app) as served:
        base = served.base
        streams = [Stream(httpx.Client(timeout=30), api_url(base, p), headers("u", p))
                   for p in (P1, P2, P3)]
        viewer = viewer_client(base, P4)
        streams += [Stream(viewer, "/viewer/stream") for _ in range(3)]
        assert [s.response().status_code for s in streams] == [200] * 6
        assert app.state.limits.streams.held() == 6
        took = served.stop()
        assert not served.thread.is_alive(), "the server still waits for its streams"
    print(f"\nshutdown with 6 open streams: {took:.2f} s")
    assert took < POLL_SECONDS + 5
    assert app.state.limits.streams.held() == 0
    assert all(s.ended(5) for s in streams)
    engine.dispose()
