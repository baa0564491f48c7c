"""A throwaway Zaqar 23 on a throwaway Redis, on 127.0.0.1, for tests/zaqar.

Zaqar is not a dependency of usermessages (it is a server), so it lives in a
venv of its own, tests/.zaqar-venv (git-ignored), created on first use with
the pinned packages below and reused while they stay the same. Redis comes
from Debian (scripts/system-packages), runs without persistence, and Zaqar
uses a random ``dbid`` on it. Zaqar runs under gunicorn (its built-in wsgiref
server is single-threaded and resets connections under concurrency); the
config is the tested recipe: empty auth_strategy (no Keystone), Redis for
both stores, fail-fast Redis reconnects, and the notifier pipeline without
which webhooks are stored but never delivered.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tests.harness.servers import free_port

PACKAGES = ("zaqar[redis]==23.0.1", "gunicorn==27.0.1")
VENV = Path(__file__).resolve().parent.parent / ".zaqar-venv"

CONF = """\
[DEFAULT]
auth_strategy =
log_file = {root}/zaqar.log
[drivers]
transport = wsgi
message_store = redis
management_store = redis
[drivers:message_store:redis]
uri = {redis}
max_reconnect_attempts = 1
reconnect_sleep = 0.1
[drivers:management_store:redis]
uri = {redis}
max_reconnect_attempts = 1
reconnect_sleep = 0.1
[storage]
message_pipeline = zaqar.notification.notifier
"""


def ensure_venv() -> Path:
    """The Zaqar venv, created or refreshed when PACKAGES changed; returns its bin dir."""
    stamp = VENV / ".installed"
    wanted = "\n".join(PACKAGES)
    if stamp.exists() and stamp.read_text() == wanted:
        return VENV / "bin"
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *PACKAGES], check=True)
    stamp.write_text(wanted)
    return VENV / "bin"


def _wait(what: str, ready: Callable[[], bool], process: subprocess.Popen, log: Path,
          timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): "
                               f"{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {timeout}s: "
                               f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


class Zaqar:
    """Handles on the running pair, so a test can stop and start Zaqar on the same port."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root, self.bin = root, bin_dir
        self.redis_port, self.port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dbid = random.randint(1, 15)
        self._redis: subprocess.Popen | None = None
        self._zaqar: subprocess.Popen | None = None
        home = root / "home" / ".zaqar"
        home.mkdir(parents=True)
        (home / "zaqar.conf").write_text(CONF.format(
            root=root, redis=f"redis://127.0.0.1:{self.redis_port}?dbid={self.dbid}"))

    def start_redis(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(server).exists():
            raise RuntimeError("redis-server is not installed; scripts/system-packages installs it")
        log = self.root / "redis.out"
        with open(log, "wb") as out:
            self._redis = subprocess.Popen(
                [server, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir",
                 str(self.root), "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def pong() -> bool:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", self.redis_port), 0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            return False

        _wait("redis-server", pong, self._redis, log, 15)

    def start(self) -> None:
        """Start Zaqar (gunicorn, 2 workers x 4 threads) and wait for /v2/ping."""
        log = self.root / "gunicorn.out"
        env = {**os.environ, "HOME": str(self.root / "home")}
        with open(log, "ab") as out:
            self._zaqar = subprocess.Popen(
                [str(self.bin / "gunicorn"), "-b", f"127.0.0.1:{self.port}", "-w", "2",
                 "--threads", "4", "zaqar.transport.wsgi.app:application"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": "ready"}

        def ping() -> bool:
            try:
                return httpx.get(self.url + "/v2/ping", headers=headers,
                                 timeout=1).status_code == 204
            except httpx.HTTPError:
                return False

        _wait("zaqar (gunicorn)", ping, self._zaqar, log, 60)

    def pids(self) -> list[int]:
        """The running gunicorn master's and Redis's process ids (to count their CPU)."""
        return [p.pid for p in (self._zaqar, self._redis) if p is not None]

    def freeze(self) -> None:
        """SIGSTOP Zaqar: its port still accepts connections, and nothing answers."""
        if self._zaqar is not None:
            os.killpg(self._zaqar.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._zaqar is not None:
            os.killpg(self._zaqar.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop Zaqar (its port closes: clients get connection refused)."""
        if self._zaqar is not None:
            _terminate(self._zaqar)
            self._zaqar = None

    def close(self) -> None:
        self.stop()
        if self._redis is not None:
            _terminate(self._redis)
            self._redis = None


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)  # a frozen one cannot act on SIGTERM
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


@contextlib.contextmanager
def zaqar_server() -> Iterator[Zaqar]:
    """Redis + Zaqar on 127.0.0.1 for the session; yields the handle; stops and removes both."""
    bin_dir = ensure_venv()
    root = Path(tempfile.mkdtemp(prefix="um-zaqar-"))
    server = Zaqar(root, bin_dir)
    try:
        server.start_redis()
        server.start()
        yield server
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)
