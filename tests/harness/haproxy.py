"""HAProxy running a stanza of the docs as written: in front of a Galera cluster, the one
docs/configuration.md recommends (the default), or any other given (the drill runs
docs/deployment.md's in front of three API nodes).

Only the stanza's addresses change (the documented 192.0.2.10 and 192.0.2.1N, on the
service's port, become this machine's 127.0.0.1 ports). The
``global`` and ``defaults`` around it are the harness's: a stats socket to read each
server's state, and a log of every session.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.harness.servers import free_port

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
HAPROXY = "/usr/sbin/haproxy"

AROUND = """global
    maxconn 1000
    stats socket {root}/haproxy.sock mode 600 level admin
defaults
    log stdout format raw local0
    option tcplog
    timeout connect 2s
    retries 3
"""


def documented_stanza() -> str:
    """The recommended ``listen`` block of docs/configuration.md, as written."""
    [block] = re.findall(r"```haproxy\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    return block


def localized(stanza: str, port: int, backends: list[int], service: int = 3306) -> str:
    """The stanza with its documented addresses (192.0.2.10 in front, 192.0.2.1N behind, on
    the ``service`` port) replaced by this machine's."""
    stanza = stanza.replace(f"192.0.2.10:{service}", f"127.0.0.1:{port}")
    for i, backend in enumerate(backends, start=1):
        stanza = stanza.replace(f"192.0.2.1{i}:{service}", f"127.0.0.1:{backend}")
    if "192.0.2." in stanza:
        raise ValueError(f"an address of the stanza was left as documented:\n{stanza}")
    return stanza


class HAProxy:
    """One haproxy process (foreground, -db) on a config of its own."""

    def __init__(self, backends: list[int], stanza: str | None = None,
                 service: int = 3306) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="um-haproxy-"))
        self.port = free_port()
        self.config = self.root / "haproxy.cfg"
        self.config.write_text(AROUND.format(root=self.root) + localized(
            stanza or documented_stanza(), self.port, backends, service))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        binary = HAPROXY if Path(HAPROXY).exists() else shutil.which("haproxy")
        if not binary:
            raise RuntimeError("haproxy is not installed; `make test` installs it")
        checked = subprocess.run([binary, "-c", "-f", str(self.config)], capture_output=True,
                                 text=True, timeout=30)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy refused the config: {checked.stdout}{checked.stderr}")
        with open(self.root / "haproxy.log", "ab") as log:
            self.process = subprocess.Popen([binary, "-db", "-f", str(self.config)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.state(self.servers()[0]) != "UP":
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not come up: {self.log()}")
            time.sleep(0.05)

    def servers(self) -> list[str]:
        return re.findall(r"^\s*server\s+(\S+)", self.config.read_text(), flags=re.M)

    def command(self, line: str) -> str:
        """One command on the admin socket (``show stat``, ``set server ...``): its answer."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.root / "haproxy.sock"))
            sock.sendall(line.encode() + b"\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode()

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's ``show stat``, one dict per proxy line."""
        header, *lines = self.command("show stat").strip().splitlines()
        names = header.lstrip("# ").split(",")
        return [dict(zip(names, line.split(","), strict=False)) for line in lines]

    def state(self, server: str) -> str | None:
        """UP, DOWN, "UP 1/2" (going down)..., or None when the socket does not answer."""
        try:
            return next((row["status"] for row in self.stats() if row["svname"] == server), None)
        except OSError:
            return None

    def log(self) -> str:
        path = self.root / "haproxy.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def haproxy(backends: list[int]) -> Iterator[HAProxy]:
    """Run the documented stanza in front of ``backends`` (SQL ports, the active one first)."""
    proxy = HAProxy(backends)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.remove()
