"""The API's stream and the viewer's are one loop: the same resume rule and heartbeats,
checked the same way on both, over a real server and real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from tests.api.conftest import row as _row
from tests.harness import servers
from tests.web.sse import Stream, api_stream, message_id, viewer_stream
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer
from usermessages.web.events import HEARTBEAT_SECONDS, POLL_SECONDS

P1, P2 = "a1a1", "b2b2"
OPENERS: dict[str, Callable[..., Stream]] = {"api": api_stream, "viewer": viewer_stream}


def row(project: str, **fields: object) -> dict:
    """Far from expiry: the server's reaper would take a row that expired."""
    return _row(project, expires_in=dt.timedelta(days=3650), **fields)  # type: ignore[arg-type]


@pytest.fixture
def site(postgresql_url: str) -> Iterator[tuple[str, Engine]]:
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    with servers.api_server(postgresql_url) as base:
        yield base, engine
    engine.dispose()


def _store(engine: Engine, *rows: dict) -> list[dict]:
    with engine.begin() as conn:
        writer.insert(conn, list(rows))
    return list(rows)


def _messages(stream: Stream, count: int) -> list[tuple[int, str]]:
    """The next ``count`` message events: (seq, message id) each."""
    found = []
    for _ in range(count):
        event = stream.next_event()
        found.append((int(event.fields["id"]), message_id(event)))
    return found


def _cursor_moved(stream: Stream) -> int:
    """The seq of the next block that is an id alone."""
    while True:
        block = stream.next_block()
        assert block is not None, "the stream ended"
        if set(block.fields) == {"id"}:
            return int(block.fields["id"])
        assert block.event != "message", block


@pytest.mark.parametrize("front", ["api", "viewer"])
def test_resume_by_last_event_id_has_no_gap_and_no_duplicate(site, front):
    base, engine = site
    open_stream = OPENERS[front]
    stream = open_stream(base, P1)
    assert stream.response().status_code == 200
    first = _store(engine, row(P1), row(P2), row(P1, minutes=1))
    got = _messages(stream, 2)
    assert [m for _, m in got] == [first[0]["id"], first[2]["id"]]
    last_seq = got[-1][0]
    stream.close()
    # Meanwhile more are stored, some of another project.
    later = _store(engine, *[row(p, minutes=2 + i) for i, p in enumerate([P1, P2, P1, P1])])
    wanted = [m["id"] for m in later if m["project_id"] == P1]
    resumed = open_stream(base, P1, **{"Last-Event-ID": str(last_seq)})
    got = _messages(resumed, len(wanted))
    assert [m for _, m in got] == wanted
    seqs = [seq for seq, _ in got]
    assert seqs == sorted(seqs) and seqs[0] > last_seq
    # Nothing else arrives: the next P1 message is the very next event.
    newest = _store(engine, row(P2, minutes=9), row(P1, minutes=10))[1]
    assert _messages(resumed, 1)[0][1] == newest["id"]
    # Rows the stream's scope skips move the client's cursor by an id alone (no event),
    # so a reconnect from it does not read them again.
    _store(engine, row(P2, minutes=11))
    moved = _cursor_moved(resumed)
    assert moved > seqs[-1]
    after = open_stream(base, P1, **{"Last-Event-ID": str(moved)})
    assert after.response().status_code == 200
    last = _store(engine, row(P1, minutes=12))[0]
    assert _messages(after, 1)[0][1] == last["id"]


def test_a_quiet_viewer_stream_sends_heartbeats(site):
    """A comment every HEARTBEAT_SECONDS without an event, as the API's stream sends."""
    base, _ = site
    stream = viewer_stream(base, P1)
    assert stream.response().status_code == 200
    opened = time.monotonic()
    bound = HEARTBEAT_SECONDS + 2 * POLL_SECONDS + 5  # margin for this shared machine
    while True:
        block = stream.next_block(timeout=max(opened + bound - time.monotonic(), 0.01))
        assert block is not None and block.event is None, block  # nothing was stored
        if "heartbeat" in block.comments:
            break
    took = time.monotonic() - opened
    print(f"\nfirst heartbeat after {took:.1f} s (interval {HEARTBEAT_SECONDS} s)")
    assert took >= HEARTBEAT_SECONDS - POLL_SECONDS  # not sooner than documented either
    # And again, one interval later.
    second = time.monotonic()
    while "heartbeat" not in (block := stream.next_block(timeout=bound)).comments:
        assert block.event is None, block
    assert time.monotonic() - second <= bound
