"""The socket `serve` binds before its banner answers as fast as uvicorn's own.

A socket made with proto 0 instead of IPPROTO_TCP made asyncio skip TCP_NODELAY on every
accepted connection: each response then waited ~40 ms for the client's delayed ACK
(measured: /v3 at 44 ms p50 instead of 1.1 ms).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time

import httpx

from tests.harness import servers
from usermessages import service


def test_the_listening_socket_says_tcp() -> None:
    sock = service.listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_served_answers_do_not_wait_for_delayed_acks(tmp_path) -> None:
    with servers.api_server(f"sqlite:///{tmp_path}/um.sqlite") as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        client.get("/v3")  # the connection, kept alive for the samples
        samples = []
        for _ in range(25):
            started = time.perf_counter()
            assert client.get("/v3").status_code == 200
            samples.append(time.perf_counter() - started)
    assert statistics.median(samples) < 0.03, samples


def test_sigterm_stops_serve_cleanly(tmp_path) -> None:
    """uvicorn re-raises the SIGTERM it handled: without our handler the process died of
    it (-15) before serve's finally stopped the collector and the reaper."""
    port = servers.free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "usermessages.cli.main", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--db", f"sqlite:///{tmp_path}/um.sqlite"],
            stdout=out, stderr=subprocess.STDOUT)
        servers.wait_serving(f"http://127.0.0.1:{port}", process, log)
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text(errors="replace")
