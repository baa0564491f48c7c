"""The drill's moving parts: service processes it can kill -9, and the load it runs
meanwhile (API readers, an event stream follower, HAProxy's view of a node), each a thread
that records what it saw, with when."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness.haproxy import HAProxy

HEADERS = {"OpenStack-API-Version": "volume 3.5"}


class Process:
    """A service process in a session of its own, as on its own host: kill -9 takes all of
    it (a node's workers too)."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log = name, args, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.output()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM (sent by terminate() or here), then SIGKILL if it does not go."""
        self.terminate()
        if self.process is not None:
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def stop_all(parts: list[Process]) -> None:
    """Stop them all at once, as controllers shut down."""
    for part in parts:
        part.terminate()
    for part in parts:
        part.stop()


class Load(threading.Thread):
    """A thread doing one thing over and over until stopped; its failure is kept."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.loop()
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            self.failure = exc

    def loop(self) -> None:
        raise NotImplementedError


class Reader(Load):
    """An API client listing a project's messages through HAProxy: (start, end, status)."""

    def __init__(self, base: str, project: str) -> None:
        super().__init__()
        self.base, self.project = base, project
        self.calls: list[tuple[float, float, int]] = []
        self.unanswered: list[str] = []  # why a call got no HTTP answer (its status is 0)

    def loop(self) -> None:
        headers = {**HEADERS, "X-Auth-Token": f"alice:{self.project}"}
        with httpx.Client(timeout=30, headers=headers) as client:
            while not self.stopped.is_set():
                started = time.monotonic()
                try:
                    status = client.get(f"{self.base}/v3/{self.project}/messages?limit=5"
                                        ).status_code
                except httpx.HTTPError as exc:
                    status = 0  # no answer at all
                    self.unanswered.append(type(exc).__name__)
                self.calls.append((started, time.monotonic(), status))
                self.stopped.wait(0.05)


@dataclass
class Connection:
    opened: float
    port: int  # the client's: names the session in HAProxy's `show sess`
    status: int
    events: int = 0
    first_event: float = 0.0  # when its first event came (monotonic)


class Stream(Load):
    """A program following a project's event stream through HAProxy, resuming from its
    Last-Event-ID whenever the stream ends, as an EventSource does."""

    def __init__(self, base: str, project: str) -> None:
        super().__init__()
        self.url = f"{base}/v3/{project}/messages-ext/stream"
        self.headers = {**HEADERS, "X-Auth-Token": f"alice:{project}"}
        self.events: list[tuple[int, str]] = []  # (seq, message id), in arrival order
        self.connections: list[Connection] = []
        self.reconnect = threading.Event()  # set: end this connection, open another

    def loop(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=30)) as client:
            while not self.stopped.is_set():
                headers = dict(self.headers)
                if self.events:
                    headers["Last-Event-ID"] = str(self.events[-1][0])
                with contextlib.suppress(httpx.HTTPError):  # the node went away: resume
                    self._follow(client, headers)
                self.stopped.wait(0.2)

    def _follow(self, client: httpx.Client, headers: dict[str, str]) -> None:
        with client.stream("GET", self.url, headers=headers) as answer:
            stream = answer.extensions["network_stream"]
            connection = Connection(time.monotonic(), stream.get_extra_info("client_addr")[1],
                                    answer.status_code)
            self.connections.append(connection)
            self.reconnect.clear()
            if answer.status_code != 200:
                return
            event_id, name, data = "", "message", []
            for line in answer.iter_lines():
                if self.stopped.is_set() or self.reconnect.is_set():
                    return
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    if name == "message":
                        message = json.loads("\n".join(data))["message"]
                        self.events.append((int(event_id), message["id"]))
                        connection.events += 1
                        connection.first_event = connection.first_event or time.monotonic()
                    name, data = "message", []


class Checks(Load):
    """HAProxy's view of one node, every 100 ms: when it went DOWN, and UP again."""

    def __init__(self, proxy: HAProxy, server: str) -> None:
        super().__init__()
        self.proxy, self.server = proxy, server
        self.changes: list[tuple[float, str]] = []  # (when, DOWN or UP)

    def seen(self, state: str, after: float) -> bool:
        return any(s == state and t > after for t, s in self.changes)

    def first(self, state: str, after: float) -> float:
        """Seconds from ``after`` until HAProxy first said ``state``."""
        return next(t for t, s in self.changes if s == state and t > after) - after

    def loop(self) -> None:
        last = "UP"
        while not self.stopped.wait(0.1):
            state = (self.proxy.state(self.server) or last).split()[0]
            if state in ("UP", "DOWN") and state != last:
                self.changes.append((time.monotonic(), state))
                last = state


@contextlib.contextmanager
def running(*loads: Load) -> Iterator[None]:
    for load in loads:
        load.start()
    try:
        yield
    finally:
        for load in loads:
            load.stopped.set()
        for load in loads:
            load.join(30)
