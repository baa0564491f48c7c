"""Receivers that misbehave, as real TCP servers in threads.

- ``trickling``: answers one byte every ``trickle`` seconds (a long header), so no single
  read ever waits long: only a deadline on the whole attempt ends it;
- ``hanging``: accepts, reads the request, never answers;
- ``slow``: sleeps ``sleep`` seconds (30), then answers 204;
- ``huge``: answers 200 at once with a body of 10 GB, sent as fast as the client reads.

Each counts the attempts it saw, the connections still open (a client that gives up
closes its side: the server notices) and the bytes of answer it sent.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

KINDS = ("trickling", "hanging", "slow", "huge")
FAILING = ("trickling", "hanging", "slow")  # the kinds whose attempts never succeed in time
HUGE = 10 * 1024**3
CHUNK = 64 * 1024


@dataclass
class BadReceiver:
    kind: str
    url: str = ""
    trickle: float = 0.5  # seconds between two bytes (trickling)
    trickle_for: float = 3600.0  # seconds a trickled answer lasts in all (trickling)
    sleep: float = 30.0  # seconds before the answer (slow)
    attempts: int = 0
    open: int = 0
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def wait_idle(self, timeout: float = 60) -> None:
        """Until every client connection is closed (the sender gave up or finished)."""
        deadline = time.monotonic() + timeout
        while self.open:
            assert time.monotonic() < deadline, f"{self.kind}: {self.open} connections open"
            time.sleep(0.02)

    def handle(self, conn: socket.socket) -> None:
        with self.lock:
            self.attempts += 1
            self.open += 1
        try:
            conn.settimeout(30)
            _read_request(conn)
            if self.kind == "hanging":
                self._until_closed(conn, float("inf"))
            elif self.kind == "slow":
                if not self._until_closed(conn, self.sleep):
                    self._send(conn, b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            elif self.kind == "trickling":
                count = max(1, int(self.trickle_for / self.trickle))
                answer = (b"HTTP/1.1 200 OK\r\nx-trickle: " + b"a" * count
                          + b"\r\ncontent-length: 0\r\n\r\n")
                for i in range(len(answer)):
                    self._send(conn, answer[i:i + 1])
                    if i < len(answer) - 1 and self.stop.wait(self.trickle):
                        return
            else:
                self._send(conn, f"HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n".encode())
                zeros = bytes(CHUNK)
                while not self.stop.is_set() and self.sent < HUGE:
                    self._send(conn, zeros)
        except OSError:
            pass  # the client closed the connection: it gave up
        finally:
            conn.close()
            with self.lock:
                self.open -= 1

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self.lock:
            self.sent += len(data)

    def _until_closed(self, conn: socket.socket, seconds: float) -> bool:
        """Wait ``seconds`` without answering; True as soon as the client closed."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable and not conn.recv(CHUNK):
                return True
        return self.stop.is_set()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(CHUNK)
        if not chunk:
            raise ConnectionResetError("closed before the request ended")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(CHUNK)
        if not chunk:
            raise ConnectionResetError("closed before the body ended")
        body += chunk


@contextlib.contextmanager
def bad_receiver(kind: str, **options: float) -> Iterator[BadReceiver]:
    """Serve on a free port of 127.0.0.1 until the block ends (then every connection ends)."""
    assert kind in KINDS, kind
    state = BadReceiver(kind, **options)  # type: ignore[arg-type]
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.settimeout(0.1)
    state.url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"

    def accept() -> None:
        while not state.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=state.handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        thread.join(5)
        listener.close()
        state.wait_idle(10)
