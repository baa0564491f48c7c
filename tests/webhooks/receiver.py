"""A local webhook receiver: a real HTTP server in a thread that records what it got."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (before the answer)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 204
    delay: float = 0.0  # seconds before answering: a slow receiver
    # Or per request (numbered from 0): its status and delay, overriding the two above.
    plan: Callable[[int], tuple[int, float]] | None = None
    # Hold the request numbered ``hold_at`` (0-based) until ``release`` is set; ``holding``
    # is set while it waits, so a test can act mid-delivery.
    hold_at: int | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Requests under way, by path (with its query), and the most ever under way at once:
    # in all, and on any one path.
    active: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    peak_per_path: int = 0

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 60) -> None:
        """Poll until ``predicate(received)`` holds (no fixed sleeps); fail at the deadline."""
        deadline = time.monotonic() + timeout
        while not predicate(list(self.received)):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.received)} requests, not enough")
            time.sleep(0.05)


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                number, state.count = state.count, state.count + 1
                state.active[self.path] = state.active.get(self.path, 0) + 1
                state.peak = max(state.peak, sum(state.active.values()))
                state.peak_per_path = max(state.peak_per_path, state.active[self.path])
            try:
                status = self._decide(number, body)
            finally:
                with state.lock:  # before the answer: the sender may not send again sooner
                    state.active[self.path] -= 1
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def _decide(self, number: int, body: bytes) -> int:
            if number == state.hold_at:
                state.holding.set()
                state.release.wait(60)
            status, delay = state.plan(number) if state.plan else (state.status, state.delay)
            if delay:
                time.sleep(delay)
            if 200 <= status < 300:
                # Recorded once answered 2xx: what the sender may count as delivered.
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()},
                                               body))
            return status

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
