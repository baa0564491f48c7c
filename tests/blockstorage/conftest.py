"""A live all-in-one of the reference service, with short timings, and a small client."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import servers

FAST = """
[blockstorage]
report_interval = 0.5
service_down_time = 3
operation_deadline = 6
watchdog_interval = 0.5

[backend:gold]
storage_protocol = iSCSI
vendor_name = Gold Inc
total_capacity_gb = 100

[backend:silver]
storage_protocol = NFS
vendor_name = Silver Ltd
total_capacity_gb = 200
thin_provisioning = true
max_over_subscription_ratio = 2.0
"""


@contextlib.contextmanager
def blockstorage_server(config: str, *, components: str | None = None,
                        workdir: Path | None = None, port: int | None = None,
                        stop_timeout: float = 10) -> Iterator[str]:
    """Run `blockstorage serve` in a subprocess; yield its base URL; stop it (SIGTERM,
    SIGKILL after ``stop_timeout`` seconds)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="um-bs-"))
    conf = workdir / "blockstorage.conf"
    conf.write_text(config)
    port = port or servers.free_port()
    args = [sys.executable, "-m", "blockstorage.cli", "serve", "--port", str(port),
            "--config", str(conf), "--db", f"sqlite:///{workdir}/usermessages.sqlite",
            "--state-db", f"sqlite:///{workdir}/blockstorage.sqlite"]
    if components:
        args += ["--components", components]
    log_path = workdir / f"server-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        if components is None or "api" in components:
            servers.wait_serving(base, process, log_path)
        yield base
    finally:
        servers.stop_process(process, stop_timeout)


def _listener_pid(port: int) -> int:
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


@contextlib.contextmanager
def frozen(broker: servers.RabbitMQ) -> Iterator[None]:
    """Freeze the broker (SIGSTOP its Erlang VM): sockets accept, nothing answers.

    The VM runs in its own session (Debian's wrapper re-runs it through `su`), so it
    is found by the AMQP port it listens on.
    """
    pid = _listener_pid(broker.port)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class Cloud:
    """Calls the API as one user of one project, Cinder-style."""

    def __init__(self, base: str, user: str, project: str) -> None:
        self.base, self.user, self.project = base, user, project
        self.http = httpx.Client(base_url=f"{base}/v3/{project}", timeout=20, headers={
            "X-Auth-Token": f"{user}:{project}", "OpenStack-API-Version": "volume 3.5"})

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body)

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params)

    def create_type(self, name: str, **specs: str) -> str:
        response = self.post("/types", {"volume_type": {"name": name, "extra_specs": specs}})
        assert response.status_code == 200, response.text
        return response.json()["volume_type"]["id"]

    def create_volume(self, size: int, volume_type: str | None = None) -> tuple[str, str]:
        """Returns (volume id, request id of the create call)."""
        volume: dict = {"size": size}
        if volume_type:
            volume["volume_type"] = volume_type
        response = self.post("/volumes", {"volume": volume})
        assert response.status_code == 202, response.text
        return response.json()["volume"]["id"], response.headers["x-openstack-request-id"]

    def create_volume_once_accepted(self, size: int, timeout: float = 30) -> str:
        """Create a volume as soon as the service takes casts again (after a broker outage
        its circuit breaker stays open until the background probe sees the broker back;
        until then each create is a fast 503). Returns the volume id."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.post("/volumes", {"volume": {"size": size}})
            if response.status_code == 202:
                return response.json()["volume"]["id"]
            assert response.status_code == 503, response.text
            assert time.monotonic() < deadline, "the breaker never closed"
            time.sleep(0.2)

    def wait_services_up(self, *binaries: str, timeout: float = 30) -> None:
        """As the admin: wait until each binary reports its heartbeat (separately started
        processes consume their queues only once they run; a cast before that could
        outlive the operation deadline on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while True:
            up = {s["binary"] for s in self.get("/os-services").json()["services"]
                  if s["state"] == "up"}
            if set(binaries) <= up:
                return
            assert time.monotonic() < deadline, f"services never came up: {binaries} ({up})"
            time.sleep(0.2)

    def volume(self, volume_id: str) -> dict:
        response = self.get(f"/volumes/{volume_id}")
        assert response.status_code == 200, response.text
        return response.json()["volume"]

    def wait(self, path: str, key: str, status: str | tuple[str, ...], timeout: float = 20) -> dict:
        wanted = (status,) if isinstance(status, str) else status
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(path).json()[key]
            if body["status"] in wanted:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} stayed {body['status']}, wanted {wanted}")
            time.sleep(0.1)

    def action(self, volume_id: str, name: str, args: dict) -> httpx.Response:
        return self.post(f"/volumes/{volume_id}/action", {name: args})

    def messages(self, **filters: str) -> list[dict]:
        response = self.get("/messages", **filters)
        assert response.status_code == 200, response.text
        return response.json()["messages"]

    def wait_message(self, timeout: float = 20, **filters: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(**filters)
            if found:
                assert len(found) == 1, found
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no message with {filters}")
            time.sleep(0.1)

    def inject(self, backend: str, operation: str) -> str:
        response = self.post("/os-faults", {"fault": {"backend": backend, "operation": operation}})
        assert response.status_code == 201, response.text
        return response.json()["fault"]["id"]

    def clear(self, fault_id: str) -> None:
        assert self.http.delete(f"/os-faults/{fault_id}").status_code == 204


@pytest.fixture(scope="module")
def aio(tmp_path_factory) -> Iterator[str]:
    """The all-in-one on the embedded default (in-process bus), shared by a module."""
    with blockstorage_server(FAST, workdir=tmp_path_factory.mktemp("aio")) as base:
        yield base


@pytest.fixture
def admin(aio: str) -> Cloud:
    return Cloud(aio, "admin", "adadadad")


@pytest.fixture
def alice(aio: str) -> Cloud:
    # A fresh project per test keeps message lists small and unambiguous.
    return Cloud(aio, "alice", os.urandom(4).hex())
