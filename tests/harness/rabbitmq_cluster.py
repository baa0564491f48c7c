"""A throwaway three-node RabbitMQ cluster on 127.0.0.1, for the tests that need a cluster.

The nodes share one epmd (that is how nodes on one host find each other) and
form the cluster by classic_config peer discovery, all three started at once
(about 20 s on two cores; see ../shared/reference/real-peers-and-services.md,
"RabbitMQ 3.10, 3 nodes"). Debian's wrappers run every node and every CLI call
as the rabbitmq user, so they share its Erlang cookie. A node is killed with
SIGKILL by the PID in its pid file (the beam, not the wrapper) and restarted
on its data; it rejoins by itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.servers import free_port

SERVER = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
CTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
QUEUES = shutil.which("rabbitmq-queues") or "/usr/sbin/rabbitmq-queues"


@dataclass
class Node:
    index: int
    name: str
    port: int
    dist: int
    root: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def pid_file(self) -> Path:
        return self.root / "rabbit.pid"


@dataclass
class Cluster:
    root: Path
    epmd: int
    ctl_low: int
    nodes: list[Node] = field(default_factory=list)

    @property
    def transport_url(self) -> str:
        """The URL as OpenStack services write it: several hosts in one rabbit:// URL."""
        hosts = ",".join(f"guest:guest@127.0.0.1:{node.port}" for node in self.nodes)
        return f"rabbit://{hosts}/"

    def env(self, node: Node) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.ctl_low),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.ctl_low + 19),
            "RABBITMQ_MNESIA_BASE": str(node.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.root / "log"),
            "RABBITMQ_PID_FILE": str(node.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(node.root / "rabbitmq"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, node: Node, *args: str, tool: str = CTL,
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([tool, "-q", "-n", node.name, *args], env=self.env(node),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, node: Node) -> None:
        log = open(node.root / "server.out", "ab")  # noqa: SIM115 - the node's, closed with it
        env = {**self.env(node), "RABBITMQ_DIST_PORT": str(node.dist)}
        node.process = subprocess.Popen([SERVER], env=env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def wait(self, node: Node, timeout: float = 120) -> None:
        result = self.ctl(node, "wait", str(node.pid_file), "--timeout", str(int(timeout)),
                          timeout=timeout + 10)
        if result.returncode != 0:
            raise RuntimeError(f"RabbitMQ node {node.name} did not start: {result.stderr}"
                               f"{(node.root / 'server.out').read_text(errors='replace')[-2000:]}")

    def running(self, node: Node) -> list[str]:
        """The nodes ``node`` sees running, by name."""
        out = self.ctl(node, "eval", "rabbit_nodes:all_running().").stdout
        return sorted(name.strip(" []'\n") for name in out.split(",") if "@" in name)

    def kill(self, node: Node) -> None:
        """kill -9 the node's Erlang VM (what its pid file names)."""
        os.kill(int(node.pid_file.read_text().strip()), signal.SIGKILL)
        if node.process is not None:
            node.process.wait(30)

    def restart(self, node: Node) -> None:
        self.start(node)
        self.wait(node)

    def leader(self, queue: str) -> Node:
        """The node that leads a quorum queue now."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            out = self.ctl(node, "list_queues", "name", "leader", "--no-table-headers").stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == queue:
                    return next(n for n in self.nodes if n.name == parts[1])
        raise LookupError(f"no leader found for {queue}")

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                self.ctl(node, "stop", str(node.pid_file), timeout=60)
                try:
                    node.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(node.process.pid, signal.SIGKILL)
                    node.process.wait()
        # epmd outlives the nodes: end it by the port it holds.
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{self.epmd}"], capture_output=True,
                             text=True).stdout
        for token in out.split("pid=")[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(token.split(",", 1)[0]), signal.SIGKILL)


@contextlib.contextmanager
def rabbitmq_cluster(size: int = 3) -> Iterator[Cluster]:
    """Start ``size`` clustered nodes at once; yield when every node sees all of them."""
    if not Path(SERVER).exists():
        raise RuntimeError("rabbitmq-server is not installed; `make test` installs it")
    root = Path(tempfile.mkdtemp(prefix="um-rmq-cluster-"))
    cluster = Cluster(root, epmd=free_port(), ctl_low=free_port())
    tag = cluster.epmd
    for i in range(1, size + 1):
        node = Node(i, f"c{tag}n{i}@localhost", free_port(), free_port(), root / f"n{i}")
        for sub in ("mnesia", "log"):
            (node.root / sub).mkdir(parents=True)
        (node.root / "enabled_plugins").write_text("[].")
        cluster.nodes.append(node)
    for node in cluster.nodes:
        peers = "".join(f"cluster_formation.classic_config.nodes.{peer.index} = {peer.name}\n"
                        for peer in cluster.nodes)
        (node.root / "rabbitmq.conf").write_text(
            "loopback_users.guest = true\n"
            f"listeners.tcp.default = 127.0.0.1:{node.port}\n"
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"{peers}"
            "cluster_formation.randomized_startup_delay_range.min = 0\n"
            "cluster_formation.randomized_startup_delay_range.max = 1\n")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(root)], check=True)
    try:
        for node in cluster.nodes:
            cluster.start(node)
        for node in cluster.nodes:
            cluster.wait(node)
        deadline = time.monotonic() + 120
        while len(cluster.running(cluster.nodes[0])) < size:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not form: {cluster.running(cluster.nodes[0])}")
            time.sleep(0.5)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
