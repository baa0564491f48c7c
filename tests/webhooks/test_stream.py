"""GET messages-ext/stream on a real server: resume by Last-Event-ID, scope, the stream limit."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import Engine

from tests.api.conftest import headers
from tests.api.conftest import row as _row
from tests.harness import servers
from usermessages.store import writer


def row(project: str | None, **fields: object) -> dict:
    """A message as the API tests seed it, but far from expiry (BASE_TIME is in the past:
    a server's reaper would delete a row that expired)."""
    return _row(project, expires_in=dt.timedelta(days=3650), **fields)  # type: ignore[arg-type]


P1, P2 = "a1a1", "b2b2"


def _store(engine: Engine, *rows: dict) -> list[dict]:
    with engine.begin() as conn:
        writer.insert(conn, list(rows))
    return list(rows)


class Events:
    """A reader of one open event stream, parsed as EventSource does."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next_message(self, timeout: float = 30) -> tuple[int, dict]:
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        for line in self.lines:
            assert time.monotonic() < deadline, "no event in time"
            if line.startswith(":"):
                self.comments.append(line)
            elif line == "":
                if fields.get("event") == "message":
                    return int(fields["id"]), json.loads(fields["data"])["message"]
                fields = {}
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        raise AssertionError("the stream ended")


@contextlib.contextmanager
def _stream(base: str, project: str | None, user: str = "u",
            **extra: str) -> Iterator[httpx.Response]:
    path = f"/v3/{project}/messages-ext/stream" if project else "/v3/messages-ext/stream"
    with httpx.Client(timeout=httpx.Timeout(30, read=30)) as http, http.stream(
            "GET", base + path, headers=headers(user, project or "a0a0", **extra)) as response:
        yield response


def test_resume_after_a_disconnect_has_no_gap_and_no_duplicate(postgresql_url: str,
                                                              engine_pg: Engine) -> None:
    engine = engine_pg
    with servers.api_server(postgresql_url) as base:
        with _stream(base, P1) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = Events(response)
            first = _store(engine, row(P1), row(P2), row(P1, minutes=1))
            got = [events.next_message(), events.next_message()]
            assert [m["id"] for _, m in got] == [first[0]["id"], first[2]["id"]]
            # The message as GET /messages/{id} shows it.
            shown = httpx.get(f"{base}/v3/{P1}/messages/{first[0]['id']}",
                              headers=headers("u", P1)).json()["message"]
            assert got[0][1] == shown
            last_id = got[-1][0]
        # Disconnected: more messages are stored, some of another project.
        later = _store(engine, *[row(p, minutes=2 + i, resource_uuid=f"r-{i}")
                                  for i, p in enumerate([P1, P2, P1, P1])])
        wanted = [m["id"] for m in later if m["project_id"] == P1]
        with _stream(base, P1, **{"Last-Event-ID": str(last_id)}) as response:
            events = Events(response)
            resumed = [events.next_message() for _ in wanted]
            assert [m["id"] for _, m in resumed] == wanted
            seqs = [seq for seq, _ in resumed]
            assert seqs == sorted(seqs) and seqs[0] > last_id
            # Nothing else arrives: another new P1 message is the very next event.
            newest = _store(engine, row(P2, minutes=9), row(P1, minutes=10))[1]
            assert events.next_message()[1]["id"] == newest["id"]
        # The query form resumes as well, and the list's filters apply.
        marked = later[2]["resource_uuid"]
        url = (f"{base}/v3/{P1}/messages-ext/stream?last_event_id={last_id}"
               f"&resource_uuid={marked}")
        with httpx.Client(timeout=30) as http, http.stream(
                "GET", url, headers=headers("u", P1)) as filtered:
            assert Events(filtered).next_message()[1]["id"] == later[2]["id"]


def test_admin_stream_reads_across_projects_in_the_callers_language(
        postgresql_url: str, engine_pg: Engine) -> None:
    german = {"Accept-Language": "de"}
    with servers.api_server(postgresql_url) as base, \
            _stream(base, None, user="admin", **german) as response:
        assert response.headers["content-language"] == "de"
        events = Events(response)
        stored = _store(engine_pg, row(P1), row(P2))
        got = [events.next_message()[1] for _ in stored]
        assert [m["id"] for m in got] == [m["id"] for m in stored]
        # As the project-less show renders it, in German.
        shown = httpx.get(f"{base}/v3/messages/{got[0]['id']}",
                          headers=headers("admin", "a0a0", **german)).json()["message"]
        assert got[0] == shown
        english = httpx.get(f"{base}/v3/messages/{got[0]['id']}",
                            headers=headers("admin", "a0a0")).json()["message"]
        assert english["user_message"] != got[0]["user_message"]


def test_bad_cursors_and_foreign_projects_are_refused(postgresql_url: str,
                                                     engine_pg: Engine) -> None:
    with servers.api_server(postgresql_url) as base:
        for bad in ("x", "-1", "1" * 19, "1.5"):
            with _stream(base, P1, **{"Last-Event-ID": bad}) as response:
                assert response.status_code == 400
                response.read()
                assert "badRequest" in response.json()
        answer = httpx.get(f"{base}/v3/{P1}/messages-ext/stream", headers=headers("u", P2))
        assert answer.status_code == 400


def test_streams_are_bounded_per_server(postgresql_url: str, engine_pg: Engine,
                                        tmp_path: Path) -> None:
    config = tmp_path / "usermessages.conf"
    config.write_text("[api]\nmax_streams = 2\n")
    with servers.api_server(postgresql_url, config_file=str(config)) as base:
        with _stream(base, P1) as one, _stream(base, P1) as two:
            assert (one.status_code, two.status_code) == (200, 200)
            with _stream(base, P1) as three:
                assert three.status_code == 503
                assert three.headers["retry-after"]
                three.read()
                assert "serviceUnavailable" in three.json()
        # Closed streams free their slots (the server notices the disconnect when it polls).
        deadline = time.monotonic() + 30
        while True:
            with _stream(base, P1) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "closed streams never freed their slots"
            time.sleep(0.2)


def test_a_quiet_stream_sends_heartbeats(postgresql_url: str, engine_pg: Engine) -> None:
    """Nothing to send: a comment line every HEARTBEAT_SECONDS keeps proxies from closing it."""
    with servers.api_server(postgresql_url) as base, _stream(base, P1) as response:
        deadline = time.monotonic() + 60
        for line in response.iter_lines():
            assert time.monotonic() < deadline, "no heartbeat in time"
            assert not line.startswith("data:"), line  # nothing was stored
            if line == ": heartbeat":
                break
