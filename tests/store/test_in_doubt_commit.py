"""A commit whose answer never comes back, on real MariaDB: the connection drops during
COMMIT (2013, what a writer sees when HAProxy's active Galera node dies), after the
server committed. The writer runs the batch again on a fresh connection and finds it
stored: every row once, every series counted once, and the batch settled, not an outage."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from tests.harness.servers import free_port
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.store.writer import Writer

COMMIT = b"\x03COMMIT"  # a COM_QUERY packet's command byte and text
INSERT = b"\x03INSERT INTO messages "


class CommitCutter:
    """A TCP proxy to MariaDB that, once armed, passes the COMMIT of a transaction that
    inserted messages on to the server and drops the client's connection as the server's
    answer arrives, so the commit happened and the client cannot know it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.armed = threading.Event()
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            committing = threading.Event()
            threading.Thread(target=self._up, args=(client, server, committing),
                             daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, committing),
                             daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket,
            committing: threading.Event) -> None:
        with_closing(client, server, lambda: self._pump_up(client, server, committing))

    def _pump_up(self, client: socket.socket, server: socket.socket,
                 committing: threading.Event) -> None:
        inserted = False  # the COMMIT to cut is the one of a transaction that inserted rows
        while data := client.recv(65536):  # (SQLAlchemy also commits a new session's SETs)
            inserted = inserted or (self.armed.is_set() and INSERT in data)
            if inserted and self.armed.is_set() and COMMIT in data:
                self.armed.clear()
                committing.set()
            server.sendall(data)

    def _down(self, server: socket.socket, client: socket.socket,
              committing: threading.Event) -> None:
        with_closing(client, server, lambda: self._pump_down(server, client, committing))

    def _pump_down(self, server: socket.socket, client: socket.socket,
                   committing: threading.Event) -> None:
        while data := server.recv(65536):
            if committing.is_set():  # the server's answer to COMMIT: it committed
                self.cut.set()
                return
            client.sendall(data)

    def close(self) -> None:
        self._listener.close()


def with_closing(client: socket.socket, server: socket.socket,
                 pump: Callable[[], None]) -> None:
    """Run a pump; whichever way it ends, both ends of the pair are closed."""
    with contextlib.suppress(OSError):
        pump()
    for sock in (client, server):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture
def cutter(mariadb) -> Iterator[CommitCutter]:  # type: ignore[no-untyped-def]
    proxy = CommitCutter(mariadb.port)
    yield proxy
    proxy.close()


def test_a_batch_committed_in_doubt_is_found_stored_not_stored_twice(mariadb_url, cutter):
    url = mariadb_url.replace(f":{cutter.target}/", f":{cutter.port}/")
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    batch = [Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, ttl=3600,
                            project_id="aaaa1111", resource_uuid=f"vol-{i % 3}",
                            detail=Detail.ATTACH_ERROR) for i in range(30)]
    cutter.armed.set()
    written = Writer(engine).write(batch)
    assert cutter.cut.is_set(), "the commit was not cut: the test did not test it"
    assert written.duplicates == 30  # the second run found the first one's rows
    assert written.outage is None and written.settled == 30 and not written.refused, written
    with engine.connect() as conn:
        rows, ids = conn.execute(text("SELECT count(*), count(DISTINCT id) FROM messages")).one()
        counted = conn.execute(text("SELECT sum(count) FROM message_series")).scalar_one()
    assert (rows, ids, counted) == (30, 30, 30)
    engine.dispose()
