"""Timing helpers every benchmark section shares: percentiles, processes, HTTP samples,
and a listing load to run a reap under."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict | None = None) -> Iterator[subprocess.Popen]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def timed_gets(client: httpx.Client, url: str, samples: int) -> list[float]:
    client.get(url).raise_for_status()  # warm
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


class ListingLoad:
    """One client listing a page in a loop: what a reap must not slow down.

    Each sample keeps its wall-clock start, so a reap that runs in another
    process (Cinder's) is matched with the samples taken while it ran.
    """

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._client = httpx.Client(headers={"OpenStack-API-Version": "volume 3.5",
                                             "X-Auth-Token": token}, timeout=120)
        self._done = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (wall-clock start, seconds)
        self._thread = threading.Thread(target=self._run)

    def idle(self, count: int) -> list[float]:
        return timed_gets(self._client, self._url, count)

    def _run(self) -> None:
        while not self._done.is_set():
            began, started = time.time(), time.perf_counter()
            self._client.get(self._url).raise_for_status()
            self.samples.append((began, time.perf_counter() - started))

    def __enter__(self) -> ListingLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._client.close()

    def during(self, began: float, ended: float) -> list[float]:
        """The samples whose request overlapped [began, ended]."""
        return [s for start, s in self.samples if start <= ended and start + s >= began]


IDLE_SAMPLES = 100  # per side, for the idle p99 the reap is compared with
