"""A throwaway HAProxy (Debian's) in front of several `usermessages serve` nodes.

HTTP mode, no affinity: each request goes to the next node in turn, unless it
carries a ``node=NAME`` cookie, which sends it to that node. The tests set that
cookie to play "the balancer sent this browser to node B" on demand; every
request is routed on its own, keep-alive connections included, and each answer
says which node gave it (``X-Served-By``). Event streams pass through: their
heartbeats (every 15 s) come well within ``timeout server``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.servers import free_port, stop_process

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def config(port: int, nodes: Mapping[str, str]) -> str:
    """The configuration: ``nodes`` maps a name to its ``host:port``."""
    lines = [
        "global", "  maxconn 1000",
        "defaults", "  mode http", "  timeout connect 2s", "  timeout client 60s",
        "  timeout server 60s",
        "frontend api", f"  bind 127.0.0.1:{port}",
        "  http-response set-header X-Served-By %[srv_name]",
        *(f"  use_backend node_{name} if {{ req.cook(node) -m str {name} }}" for name in nodes),
        "  default_backend all",
        "backend all", "  balance roundrobin",
        *(f"  server {name} {address}" for name, address in nodes.items()),
        *(line for name, address in nodes.items()
          for line in (f"backend node_{name}", f"  server {name} {address}")),
    ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def balancer(nodes: Mapping[str, str], timeout: float = 10) -> Iterator[str]:
    """HAProxy on a free port in front of ``nodes`` (name -> base URL); yield its base URL."""
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="um-haproxy-"))
    path = root / "haproxy.cfg"
    path.write_text(config(port, {name: base.removeprefix("http://")
                                  for name, base in nodes.items()}))
    subprocess.run([HAPROXY, "-c", "-q", "-f", str(path)], check=True)
    with open(root / "haproxy.log", "wb") as log:
        process = subprocess.Popen([HAPROXY, "-db", "-f", str(path)], stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None, (root / "haproxy.log").read_text()
            assert time.monotonic() < deadline, "HAProxy did not listen"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
        shutil.rmtree(root, ignore_errors=True)
