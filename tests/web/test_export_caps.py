"""The caps on concurrent exports, over a real server: the API's and the viewer's
downloads share them, per project and in total; a client reset or the store stopped
mid-download gives the slot back."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.api.conftest import headers, row
from tests.web.sse import cookie_header, raw_get, viewer_client, wait_held
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer
from usermessages.web.limits import RETRY_FULL, RETRY_PROJECT

P1, P2, P3, P4 = "a1a1", "b2b2", "c3c3", "d4d4"
# Enough that an export does not fit in the sockets' buffers (~7 MB of NDJSON): a
# client that does not read holds its export, and its slot, until it goes.
ROWS = 20000
LIVE = dt.timedelta(days=3650)  # far from expiry: the server's reaper leaves them


def _seed(url: str, *projects: str) -> None:
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        for project in projects:
            writer.insert(conn, [row(project, minutes=i / 1000, expires_in=LIVE)
                                 for i in range(ROWS)])
    engine.dispose()


@pytest.fixture
def caps(tmp_path: Path) -> Iterator[str]:
    """A server running at most 5 exports, 2 per project; 20,000 messages in P1 and P2."""
    url = f"sqlite:///{tmp_path}/exports.sqlite"
    _seed(url, P1, P2)
    config = tmp_path / "usermessages.conf"
    config.write_text("[api]\nmax_exports = 5\nmax_exports_per_project = 2\n")
    with servers.api_server(url, config_file=str(config)) as base:
        yield base


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and (for a sized answer: a refusal) the body, from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    if "content-length" in fields:
        while len(body) < int(fields["content-length"]):
            body += sock.recv(4096)
    return int(status_line.split(" ", 2)[1]), fields, body


def _request(base: str, front: str, project: str, user: str = "u") -> tuple[str, dict]:
    if front == "api":
        return f"/v3/{project}/messages-ext/export", headers(user, project)
    return "/viewer/export?format=ndjson", {"Cookie": cookie_header(viewer_client(base, project,
                                                                                  user))}


def _held_exports(base: str, wanted: list[tuple[str, str, str]], release: threading.Event
                  ) -> list[tuple[int, dict[str, str], bytes]]:
    """Start the ``(front, project, user)`` exports at once; each accepted one is held,
    unread, until ``release``. Their answers, in order."""
    requests = [_request(base, front, project, user) for front, project, user in wanted]
    start = threading.Barrier(len(requests), timeout=60)
    answers: list = [None] * len(requests)
    answered = threading.Semaphore(0)

    def one(i: int) -> None:
        start.wait()
        with raw_get(base, *requests[i]) as sock:
            answers[i] = _answer(sock)
            answered.release()
            if answers[i][0] == 200:
                assert release.wait(120)

    pool = ThreadPoolExecutor(len(requests))
    for i in range(len(requests)):
        pool.submit(one, i)
    pool.shutdown(wait=False)
    for _ in requests:
        assert answered.acquire(timeout=60), "an export never answered"
    return answers


def test_one_project_cannot_take_every_export_and_the_server_cap_still_holds(caps):
    base = caps
    release = threading.Event()
    try:
        # P1 asks for twice its share (API and viewer) while P2 asks for one on each.
        wanted = [("api", P1, "u")] * 3 + [("viewer", P1, "u"), ("api", P2, "u"),
                                           ("viewer", P2, "u")]
        answers = _held_exports(base, wanted, release)
        mine = [(front, answer) for (front, project, _), answer in zip(wanted, answers, strict=True)
                if project == P1]
        assert sorted(status for _, (status, _, _) in mine) == [200, 200, 429, 429]
        for front, (status, fields, body) in mine:
            if status == 200:
                continue
            assert fields["retry-after"] == str(RETRY_PROJECT)
            text = "Your project already holds its share of the service's exports (2)"
            if front == "api":
                assert json.loads(body)["overLimit"]["message"].startswith(text)
            else:  # the viewer's error page says it in words
                page = html.unescape(body.decode())
                assert text in page and "Traceback" not in page
        assert [status for (_, project, _), (status, _, _) in zip(wanted, answers, strict=True)
                if project == P2] == [200, 200]
        wait_held(base, "exports", 4)
        # The server's cap: one more (an admin whose token is scoped to P3), then none.
        more = _held_exports(base, [("api", P3, "admin")], release)
        assert more[0][0] == 200
        full = httpx.get(f"{base}/v3/{P4}/messages-ext/export",
                         headers=headers("admin", P4), timeout=30)
        assert full.status_code == 503 and full.headers["retry-after"] == str(RETRY_FULL)
        assert full.json()["serviceUnavailable"]["message"].endswith(
            "(The service holds 5 exports open, its limit.)")
        wait_held(base, "exports", 5)
    finally:
        release.set()  # the held clients reset their connections
    wait_held(base, "exports", 0)
    # Every slot is back: a whole export reads through.
    lines = httpx.get(f"{base}/v3/{P1}/messages-ext/export", headers=headers("u", P1),
                      timeout=120).text.splitlines()
    assert len(lines) == ROWS


def test_the_store_stopped_mid_export_gives_the_slot_back():
    """A server-side error mid-download (the database stopped): the response is cut and
    its slot returns; with the database back, exports run again."""
    with servers.postgresql_cluster() as cluster:
        url = servers.create_database(cluster.url, "exports")
        _seed(url, P1)
        with servers.api_server(url) as base:
            path, request_headers = _request(base, "api", P1)
            with raw_get(base, path, request_headers) as sock:
                assert _answer(sock)[0] == 200
                wait_held(base, "exports", 1)
                cluster.stop()
                try:
                    sock.settimeout(60)
                    tail = b""
                    while chunk := sock.recv(65536):  # read on: the next page fails
                        tail = (tail + chunk)[-5:]
                    # Cut short: the connection closed without the last, empty chunk.
                    assert tail != b"0\r\n\r\n"
                    wait_held(base, "exports", 0)
                finally:
                    cluster.start()
            answer = httpx.get(base + path, headers=request_headers, timeout=120)
            assert answer.status_code == 200
            assert len(answer.text.splitlines()) == ROWS
            assert re.search(r'usermessages_api_slots_held\{kind="exports"\} 0\.0',
                             httpx.get(base + "/metrics").text)
