"""Real servers the suite starts for itself: a throwaway PostgreSQL cluster and the API.

Nothing here skips when a server is missing: a suite that silently skips
PostgreSQL in CI is a hole, so a missing initdb is a loud failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from usermessages.service import Server

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        path = Path(folder, name)
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed; `make test` installs it")
    return found


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; run the throwaway cluster as `postgres`.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgreSQL:
    """A throwaway cluster that a test can stop and start again on the same data."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="um-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        subprocess.run(
            _as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A",
                          "trust", "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-l",
                          str(self.root / "log.txt"), "-o", options, "-w", "start"]),
            check=True, capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode,
                                     "stop"]), capture_output=True)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgresql_cluster() -> Iterator[PostgreSQL]:
    """Start a throwaway PostgreSQL on 127.0.0.1; yield its handle; stop and remove it."""
    cluster = PostgreSQL()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@contextlib.contextmanager
def postgresql_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL on 127.0.0.1; yield its admin URL; stop and remove it."""
    with postgresql_cluster() as cluster:
        yield cluster.url


def create_database(admin_url: str, name: str) -> str:
    """Create a fresh database on the cluster and return its URL."""
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql://", "postgresql://", 1),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@dataclass
class Served:
    """A running `usermessages serve`: its address, its process (the supervisor, with
    several workers) and its output."""

    base: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def started(self) -> dict[str, int]:
        """The supervised children as last started, by name (``-v`` logs them)."""
        return {name: int(pid) for name, pid in
                re.findall(r"started (api-\d+|background) \(pid (\d+)\)", self.output())}

    def wait_started(self, names: set[str], timeout: float = 60,
                     unlike: dict[str, int] | None = None) -> dict[str, int]:
        """Wait until each of ``names`` has started (again, with another pid than in
        ``unlike``); the children by name."""
        deadline = time.monotonic() + timeout
        while True:
            started = self.started()
            if all(name in started and started[name] != (unlike or {}).get(name)
                   for name in names):
                return started
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"not started: {names}\n{self.output()}"
            time.sleep(0.1)


@contextlib.contextmanager
def serve(db_url: str, *, config_file: str | None = None, workers: int = 1,
          verbose: bool = False, timeout: float | None = None) -> Iterator[Served]:
    """Run `usermessages serve` in a subprocess on a free port, with ``workers`` API
    processes; yield it once it answers (within ``timeout`` seconds); stop it (SIGTERM)
    after."""
    port = free_port()
    args = [sys.executable, "-m", "usermessages.cli.main", *(["-v"] if verbose else []),
            "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url,
            "--workers", str(workers)]
    if config_file:
        args += ["--config", config_file]
    log = tempfile.NamedTemporaryFile(prefix="um-api-", suffix=".log", delete=False)
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(base, process, Path(log.name),
                     timeout=timeout or 30 + 30 * (workers > 1))
        yield Served(base, process, Path(log.name))
    finally:
        stop_process(process, timeout=40)
        os.unlink(log.name)


@contextlib.contextmanager
def api_server(db_url: str, *, config_file: str | None = None, workers: int = 1,
               timeout: float | None = None) -> Iterator[str]:
    """Run `usermessages serve` in a subprocess on a free port; yield its base URL."""
    with serve(db_url, config_file=config_file, workers=workers, timeout=timeout) as served:
        yield served.base


def wait_serving(base: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Wait until the server at ``base`` answers; fail with its log if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
        try:
            httpx.get(base + "/", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text(errors='replace')}")
            time.sleep(0.1)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not go."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class InProcess:
    """The app served by uvicorn in a thread of the test's process."""

    base: str
    server: Server
    thread: threading.Thread

    def stop(self, timeout: float = 30) -> float:
        """Shut down as a SIGTERM would; how long it took (the thread may outlive it)."""
        began = time.monotonic()
        self.server.should_exit = True
        self.thread.join(timeout)
        return time.monotonic() - began


@contextlib.contextmanager
def in_process(app: FastAPI) -> Iterator[InProcess]:
    """``app`` (built by ``create_app``) on a free port, served by ``usermessages serve``'s
    uvicorn server in a thread: real HTTP streaming, and the test can reach the app's state."""
    server = Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                   log_level="warning"), app.state.limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    served = InProcess(f"http://127.0.0.1:{server.config.port}", server, thread)
    try:
        yield served
    finally:
        served.stop()


@contextlib.contextmanager
def rabbitmq_server() -> Iterator[str]:
    """Start a throwaway RabbitMQ on 127.0.0.1; yield its AMQP URL; stop it and its epmd."""
    with rabbitmq_broker() as broker:
        yield broker.url


@contextlib.contextmanager
def rabbitmq_broker() -> Iterator[RabbitMQ]:
    """Start a throwaway RabbitMQ on 127.0.0.1; yield a handle (url, stop_app, start_app).

    Per Debian's packaging, rabbitmq-server re-runs itself as the `rabbitmq`
    user, so every directory it is given must belong to that user (else it
    hangs silently). The CLI gets its own distribution port range, apart
    from the server's, or the two fight over one port.
    """
    server = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(server).exists():
        raise RuntimeError("rabbitmq-server is not installed; `make test` installs it")
    root = Path(tempfile.mkdtemp(prefix="um-rmq-"))
    for sub in ("mnesia", "log"):
        (root / sub).mkdir()
    (root / "enabled_plugins").write_text("[].")
    port = free_port()
    dist, epmd = free_port(), free_port()
    ctl_low = free_port()
    node = f"um{port}@localhost"
    common = {
        **os.environ,
        "RABBITMQ_NODENAME": node,
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(epmd),
        "RABBITMQ_CTL_DIST_PORT_MIN": str(ctl_low),
        "RABBITMQ_CTL_DIST_PORT_MAX": str(ctl_low + 10),
        "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "HOME": str(root),
    }
    server_env = {
        **common,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_PID_FILE": str(root / "rabbit.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(root)], check=True)
    log = open(root / "server.out", "wb")
    process = subprocess.Popen([server], env=server_env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    rabbit = RabbitMQ(process, ctl, common, root, port, epmd)
    try:
        rabbit.wait_ready()
        yield rabbit
    finally:
        rabbit.stop()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


class RabbitMQ:
    """Handles on a running throwaway broker, so tests can stop and restart it."""

    def __init__(self, process, ctl, env, root, port, epmd) -> None:  # type: ignore[no-untyped-def]
        self.process, self.ctl, self.env, self.root = process, ctl, env, root
        self.port, self.epmd = port, epmd
        self.url = f"amqp://guest:guest@127.0.0.1:{port}//"

    def _ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([self.ctl, "-n", self.env["RABBITMQ_NODENAME"], *args],
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def wait_ready(self) -> None:
        result = self._ctl("wait", str(self.root / "rabbit.pid"), "--timeout", "90")
        if result.returncode != 0:
            raise RuntimeError(f"RabbitMQ did not start: {result.stdout}{result.stderr}"
                               f"{(self.root / 'server.out').read_text(errors='replace')}")

    def stop_app(self) -> None:
        """Stop the broker application (connections drop, the port closes) but keep the node."""
        self._ctl("stop_app", timeout=60).check_returncode()

    def start_app(self) -> None:
        self._ctl("start_app", timeout=60).check_returncode()
        self._ctl("await_startup", timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self._ctl("stop", str(self.root / "rabbit.pid"), timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        # epmd outlives the node; end it by the port it holds.
        subprocess.run(["pkill", "-f", f"epmd.*-port {self.epmd}"], capture_output=True)
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{self.epmd}"], capture_output=True,
                             text=True).stdout
        for token in out.split("pid=")[1:]:
            pid = int(token.split(",", 1)[0])
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


KEYSTONE_CONF = """[DEFAULT]
log_file = {root}/log/keystone.log
[database]
connection = sqlite:///{root}/keystone.sqlite
[token]
provider = fernet
expiration = {expiration}
[fernet_tokens]
key_repository = {root}/fernet
[fernet_receipts]
key_repository = {root}/fernet
[credential]
key_repository = {root}/cred
[identity]
# bcrypt at 4 rounds: each password auth costs 45 ms of CPU instead of 240 ms.
password_hash_rounds = 4
"""
# Keystone's app calls oslo.config's CONF(), which parses sys.argv: under gunicorn
# that list holds gunicorn's own flags, and the worker dies in a respawn loop.
KEYSTONE_WSGI = "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application\n"
KEYSTONE_ADMIN_PASSWORD = "secret-admin-password"


class Keystone:
    """A throwaway Keystone 30 (own venv, SQLite, fernet) under gunicorn on 127.0.0.1."""

    def __init__(self, venv: Path, *, token_expiration: int = 3600) -> None:
        self.venv = venv
        self.root = Path(tempfile.mkdtemp(prefix="um-ks-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self.process: subprocess.Popen | None = None
        for sub in ("etc", "fernet", "cred", "log"):
            (self.root / sub).mkdir()
        (self.root / "etc" / "keystone.conf").write_text(
            KEYSTONE_CONF.format(root=self.root, expiration=token_expiration))
        (self.root / "ks_wsgi.py").write_text(KEYSTONE_WSGI)

    def _manage(self, *args: str) -> None:
        command = [str(self.venv / "bin" / "keystone-manage"), "--config-file",
                   str(self.root / "etc" / "keystone.conf"), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"keystone-manage {args[0]} failed: {result.stderr[-2000:]}")

    def bootstrap(self) -> None:
        owner = ["--keystone-user", _user(), "--keystone-group", _group()]
        self._manage("db_sync")
        self._manage("fernet_setup", *owner)
        self._manage("credential_setup", *owner)
        # The port is baked into the catalog here, so it was chosen before.
        self._manage("bootstrap", "--bootstrap-password", KEYSTONE_ADMIN_PASSWORD,
                     "--bootstrap-region-id", "RegionOne",
                     "--bootstrap-admin-url", self.url, "--bootstrap-internal-url", self.url,
                     "--bootstrap-public-url", self.url)

    def start(self, timeout: float = 60) -> None:
        log = open(self.root / "log" / "gunicorn.out", "wb")
        env = {**os.environ, "OS_KEYSTONE_CONFIG_DIR": str(self.root / "etc")}
        # --no-control-socket: gunicorn 27 otherwise shares one control socket per
        # user, and another gunicorn exiting removes ours.
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--no-control-socket",
             "--chdir", str(self.root), "--error-logfile", str(self.root / "log" / "gunicorn.log"),
             "ks_wsgi:application"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"keystone exited: {self.logs()}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"keystone did not start: {self.logs()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.process = None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted((self.root / "log").iterdir()))

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _group() -> str:
    import grp

    return grp.getgrgid(os.getegid()).gr_name


def keystone_venv() -> Path:
    """The Keystone venv, created by scripts/venv-keystone on first use."""
    repo = Path(__file__).resolve().parent.parent
    venv = Path(os.environ.get("KEYSTONE_VENV", repo / ".venv-keystone"))
    subprocess.run([str(repo / "scripts" / "venv-keystone")], check=True,
                   env={**os.environ, "KEYSTONE_VENV": str(venv)})
    return venv


@contextlib.contextmanager
def keystone_server(token_expiration: int = 3600) -> Iterator[Keystone]:
    """Bootstrap and serve a throwaway Keystone; yield its handle; stop and remove it."""
    keystone = Keystone(keystone_venv(), token_expiration=token_expiration)
    try:
        keystone.bootstrap()
        keystone.start()
        yield keystone
    finally:
        keystone.remove()
