"""The processes of `usermessages serve` with several API workers, kept running.

The serve process binds the port, then only supervises: it starts its
children (the API workers, which all accept on that one socket, and the
process that runs the background parts once for the node), starts again any
child that ends while it runs, and stops them all on SIGTERM or SIGINT.

- **Spawned, not forked:** each child is a fresh interpreter (multiprocessing's
  spawn), so it inherits no thread, lock or connection of the supervisor, and
  imports prometheus_client after ``PROMETHEUS_MULTIPROC_DIR`` is set: every
  child's counters go to files in that directory, which /metrics on any worker
  adds up (api/metrics.py).
- **Replaced:** a child that dies (kill -9, a crash) is started again at once,
  or after a back-off (0.1 s doubling to 10 s) while children keep dying within
  YOUNG seconds of their start (a broken start does not spin). Before, its
  gauges leave /metrics (``mark_process_dead``; counters stay, so sums never
  go back) and its ``on_exit`` runs (the API workers': their stream and export
  slots are given back at once instead of lapsing).
- **Graceful stop:** SIGTERM or SIGINT sends SIGTERM to every child, waits up to
  STOP_SECONDS for them to finish what they serve, kills what is left, and
  returns.
- **Orphans stop:** a child whose supervisor died (kill -9) stops by itself: it
  watches its parent.

Why not uvicorn's own ``--workers`` supervisor: it starts identical workers
only (no place for the parts that must run once), has no hook for a dead
worker's metrics and slots, and runs uvicorn's server rather than ours (which
ends open event streams at shutdown). Gunicorn and oslo.service fork from a
parent that already created its Prometheus metrics in single-process mode.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import connection
from multiprocessing.context import SpawnProcess
from typing import Any

from prometheus_client import multiprocess

from usermessages.retry import Backoff

LOG = logging.getLogger(__name__)

# Where prometheus_client's multiprocess mode keeps each process's values.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# A child that ends sooner than this after its start is started again after a back-off.
YOUNG = 10.0
RESTART_CAP = 10.0
# How long children get to finish what they serve once told to stop.
STOP_SECONDS = 30.0

_spawn = multiprocessing.get_context("spawn")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container limits it)."""
    return len(os.sched_getaffinity(0))


@dataclass
class Child:
    """One child to keep running: ``target(*args)`` in a process of its own.

    ``target`` and ``args`` cross to the child by pickling (module-level function,
    plain values, sockets); ``on_exit(pid)`` runs in the supervisor once the
    process has ended, before it is started again.
    """

    name: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    on_exit: Callable[[int], None] | None = None
    process: SpawnProcess | None = None
    started: float = 0.0
    due: float | None = None  # when to start it again (None: it runs)
    backoff: Backoff = field(default_factory=lambda: Backoff(RESTART_CAP))


class Supervisor:
    """Keeps ``children`` running until SIGTERM or SIGINT (see the module docstring)."""

    def __init__(self, children: Sequence[Child], *, metrics_dir: str, log_level: int,
                 log_format: str) -> None:
        self.children = list(children)
        self.metrics_dir = metrics_dir
        self.log_level = log_level
        self.log_format = log_format
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def run(self) -> None:
        """Run every child until told to stop; then stop them and return."""
        os.environ[METRICS_DIR] = self.metrics_dir  # the children read it when they start
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                self._start(child)
            while not self._stopping.is_set():
                self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.environ.pop(METRICS_DIR, None)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _start(self, child: Child) -> None:
        child.process = _spawn.Process(
            target=_child_main, name=child.name,
            args=(child.target, child.args, self.log_level, self.log_format))
        child.process.start()
        child.started = time.monotonic()
        child.due = None
        LOG.info("started %s (pid %s)", child.name, child.process.pid)

    def _watch(self) -> None:
        """Wait for a child to end, a restart to fall due, or a signal; act on it."""
        now = time.monotonic()
        dues = [child.due for child in self.children if child.due is not None]
        timeout = max(0.0, min(dues) - now) if dues else None
        running = [child.process.sentinel for child in self.children
                   if child.due is None and child.process is not None]
        connection.wait([*running, self._wake_r], timeout)
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(64)
        if self._stopping.is_set():
            return
        now = time.monotonic()
        for child in self.children:
            if child.due is None and child.process is not None and not child.process.is_alive():
                self._ended(child)
                lived = now - child.started
                if lived >= YOUNG:
                    child.backoff.reset()
                delay = child.backoff.advance() if lived < YOUNG else 0.0
                LOG.error("%s (pid %s) ended (exit code %s) after %.1f s; starting it again%s",
                          child.name, child.process.pid, child.process.exitcode, lived,
                          f" in {delay:.1f} s" if delay else "")
                child.due = now + delay
            if child.due is not None and child.due <= now:
                self._start(child)

    def _ended(self, child: Child) -> None:
        """A child's process is gone: join it, drop its live gauges, run its on_exit."""
        assert child.process is not None and child.process.pid is not None
        child.process.join()
        pid = child.process.pid
        multiprocess.mark_process_dead(pid, self.metrics_dir)
        if child.on_exit is not None:
            try:
                child.on_exit(pid)
            except Exception:  # the store is down: what it held lapses by itself
                LOG.warning("%s (pid %s): cleanup after its end failed", child.name, pid,
                            exc_info=True)

    def _stop_all(self) -> None:
        running = [child for child in self.children
                   if child.due is None and child.process is not None
                   and child.process.is_alive()]
        for child in running:
            assert child.process is not None and child.process.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in running:
            assert child.process is not None
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                LOG.error("%s (pid %s) did not stop within %.0f s: killed", child.name,
                          child.process.pid, STOP_SECONDS)
                child.process.kill()
        for child in running:
            self._ended(child)


def _child_main(target: Callable[..., None], args: tuple[Any, ...], log_level: int,
                log_format: str) -> None:
    """A child's first steps: the supervisor's logging, a watch on the supervisor."""
    logging.basicConfig(level=log_level, format=log_format)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_stop_when_gone, args=(parent.sentinel,),
                         name="supervisor-watch", daemon=True).start()
    target(*args)


def _stop_when_gone(sentinel: int) -> None:
    """The supervisor died (its end of the pipe closed): stop as if told to."""
    connection.wait([sentinel])
    os.kill(os.getpid(), signal.SIGTERM)
