"""Reading the live streams of a real server from tests: the API's and the viewer's alike.

``Stream`` parses a response as EventSource does (blocks end at a blank line)
in a thread, so a test waits for what it expects with a deadline. ``raw_get``
opens a request on a bare socket that ``kill`` then resets, as a client that
vanishes does. ``held`` reads the server's count of open streams and exports.
"""

from __future__ import annotations

import contextlib
import queue
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from tests.api.conftest import headers
from tests.viewer_session import sign_in


@dataclass
class Block:
    """One block of an event stream: its fields (data lines joined) and comments."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def event(self) -> str | None:
        return self.fields.get("event", "message" if "data" in self.fields else None)


class Stream:
    """One open event stream, read in a thread."""

    def __init__(self, client: httpx.Client, url: str,
                 request_headers: dict[str, str] | None = None) -> None:
        self.status: queue.Queue[httpx.Response] = queue.Queue()
        self.blocks: queue.Queue[Block | None] = queue.Queue()  # None: the stream ended
        self._client, self._url, self._headers = client, url, request_headers or {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers,
                                     timeout=httpx.Timeout(10, read=60)) as response:
                if response.status_code != 200:
                    response.read()  # a refusal's fault body, read before it is handed over
                self.status.put(response)
                if response.status_code != 200:
                    return
                block = Block()
                for line in response.iter_lines():
                    if line == "":
                        if block.fields or block.comments:
                            self.blocks.put(block)
                        block = Block()
                    elif line.startswith(":"):
                        block.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if name == "data" and "data" in block.fields:
                            value = block.fields["data"] + "\n" + value
                        block.fields[name] = value
        except httpx.HTTPError:
            pass  # the server or the test closed it
        finally:
            self.blocks.put(None)

    def response(self, timeout: float = 30) -> httpx.Response:
        try:
            return self.status.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer to {self._url} in {timeout} s") from None

    def next_block(self, timeout: float = 30) -> Block | None:
        """The next block (None once the stream ended); fails at the deadline."""
        try:
            return self.blocks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing on {self._url} in {timeout} s") from None

    def next_event(self, name: str = "message", timeout: float = 30) -> Block:
        """The next block that is the event ``name``, skipping others; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(max(deadline - time.monotonic(), 0.01))
            assert block is not None, f"the stream ended before an event {name!r}"
            if block.event == name:
                return block

    def close(self) -> None:
        """Go away, as a closed browser tab does."""
        self._client.close()

    def ended(self, timeout: float = 30) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def message_id(block: Block) -> str:
    """The message an event shows: the API's JSON or the viewer's row."""
    data = block.fields["data"]
    found = re.search(r'data-id="([^"]+)"', data) or re.search(r'"id":"([^"]+)"', data)
    assert found, data
    return found.group(1)


def api_url(base: str, project: str) -> str:
    return f"{base}/v3/{project}/messages-ext/stream"


def api_stream(base: str, project: str, user: str = "u", **extra: str) -> Stream:
    client = httpx.Client(timeout=30)
    return Stream(client, api_url(base, project), headers(user, project, **extra))


def viewer_client(base: str, project: str, user: str = "u") -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    assert sign_in(client, user, project).status_code == 303
    return client


def viewer_stream(base: str, project: str, user: str = "u", **extra: str) -> Stream:
    return Stream(viewer_client(base, project, user), "/viewer/stream", extra)


def held(base: str, kind: str) -> int:
    """How many streams or exports the server holds open now (its own gauge)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.search(rf'^usermessages_api_slots_held{{kind="{kind}"}} ([0-9.]+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def wait_held(base: str, kind: str, count: int, timeout: float = 30) -> None:
    """Wait until the server holds exactly ``count`` slots of ``kind``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while (now := held(base, kind)) != count:
        assert time.monotonic() < deadline, f"{now} {kind} held, not {count}, after {timeout} s"
        time.sleep(0.1)


@contextlib.contextmanager
def raw_get(base: str, path: str, request_headers: dict[str, str]) -> Iterator[socket.socket]:
    """A GET on a bare socket with a tiny receive window (a response that does not fit
    waits in the server), its status line read; closed abruptly unless killed before."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}",
             *(f"{k}: {v}" for k, v in request_headers.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode("latin-1"))
    try:
        yield sock
    finally:
        kill(sock)


def status_of(sock: socket.socket) -> int:
    """The status of the response on ``sock`` (its first line)."""
    first = b""
    while b"\r\n" not in first:
        chunk = sock.recv(64)
        assert chunk, "the server closed the connection before answering"
        first += chunk
    return int(first.split(b" ", 2)[1])


def kill(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a crashed client or a dropped link does."""
    with contextlib.suppress(OSError):  # already closed
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def cookie_header(client: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())
