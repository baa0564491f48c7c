"""A throwaway three-node MariaDB Galera cluster on 127.0.0.1 (Debian's galera-4).

Ten to fifteen seconds from nothing to three Synced nodes (node 1 bootstraps,
the others join by rsync SST: mariabackup's SST sleeps a fixed 10 s), so one
cluster serves a whole session. Each node has its own group, IST and SST
ports (the defaults, 4567/4568/4444, would collide on one host), and
``evs.suspect_timeout=PT2S``: the survivors evict a dead node in about 3 s,
not 6. A node killed with SIGKILL restarts the right way: galera_recovery
first, so it rejoins by IST from its own data rather than by a full SST.
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
from pathlib import Path

import pymysql

from tests.harness.mariadb import MariaDB
from tests.harness.servers import free_port

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
# Seconds galera_recovery may take (under a second on an idle machine).
RECOVERY_TIMEOUT = 180

NODE_CNF = """binlog_format=ROW
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider={provider}
wsrep_cluster_name=usermessages-test
wsrep_cluster_address=gcomm://{members}
wsrep_node_name=n{i}
wsrep_node_address=127.0.0.1:{group}
wsrep_node_incoming_address=127.0.0.1:{port}
wsrep_sst_receive_address=127.0.0.1:{sst}
wsrep_sst_method=rsync
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:{group};ist.recv_addr=127.0.0.1:{ist};gcache.size=32M;evs.suspect_timeout=PT2S;evs.keepalive_period=PT0.5S"
wsrep_slave_threads=2
"""


class Galera:
    """Three MariaDB nodes in one cluster; the test can kill and restart any of them."""

    def __init__(self, size: int = 3) -> None:
        if not Path(PROVIDER).exists():
            raise RuntimeError("galera-4 is not installed; `make test` installs it")
        self.root = Path(tempfile.mkdtemp(prefix="um-galera-"))
        self.root.chmod(0o711)  # the nodes run as mysql: they must reach their dirs
        ports = [(free_port(), free_port(), free_port(), free_port()) for _ in range(size)]
        members = ",".join(f"127.0.0.1:{group}" for _, group, _, _ in ports)
        self.nodes = [
            MariaDB(self.root / f"n{i + 1}", port=port, init_file=False,
                    buffer_pool="32M", log_file="16M",
                    extra=NODE_CNF.format(provider=PROVIDER, members=members, i=i + 1,
                                          group=group, port=port, ist=ist, sst=sst))
            for i, (port, group, ist, sst) in enumerate(ports)]

    def start(self) -> None:
        """Bootstrap node 1, make the accounts, then join the others (SST) at once."""
        first = self.nodes[0]
        first.install()
        first.start("--wsrep-new-cluster", ready=False)
        self.wait_synced(0)
        first.make_admin()
        # HAProxy's mysql-check logs in as this user, with no password and no grant.
        first.execute("CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1'")
        for node in self.nodes[1:]:
            node.start(ready=False)
        for i in range(1, len(self.nodes)):
            self.wait_synced(i)
        self.wait_size(len(self.nodes))

    def status(self, i: int, variable: str = "wsrep_local_state_comment") -> str | None:
        """A node's wsrep status variable, or None if it does not answer."""
        try:
            with contextlib.closing(self.nodes[i].admin()) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT variable_value FROM information_schema.global_status "
                               "WHERE variable_name = %s", (variable,))
                row = cursor.fetchone()
                return None if row is None else str(row[0])
        except pymysql.MySQLError:
            return None

    def wait_synced(self, i: int, timeout: float = 180) -> None:
        node = self.nodes[i]
        deadline = time.monotonic() + timeout
        while True:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"galera node {i + 1} exited: {node.log()}")
            # Before the admin exists (bootstrap), ask through the socket.
            state = self.status(i) or self._status_by_socket(i)
            if state == "Synced":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"galera node {i + 1} not Synced ({state}): {node.log()}")
            time.sleep(0.1)

    def _status_by_socket(self, i: int) -> str | None:
        try:
            return self.nodes[i].cli("SELECT variable_value FROM information_schema."
                                     "global_status WHERE variable_name = "
                                     "'wsrep_local_state_comment'").strip() or None
        except (RuntimeError, subprocess.TimeoutExpired):
            return None

    def wait_size(self, size: int, timeout: float = 60, on: int | None = None) -> None:
        """Until a live node (``on``, or the first that answers) sees ``size`` members."""
        deadline = time.monotonic() + timeout
        while True:
            for i in ([on] if on is not None else range(len(self.nodes))):
                if self.status(i, "wsrep_cluster_size") == str(size):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster never had {size} members")
            time.sleep(0.1)

    def kill(self, i: int) -> None:
        """SIGKILL node i, as a crashed machine."""
        self.nodes[i].kill()

    def restart(self, i: int) -> float:
        """Bring a killed node back as an operator should: galera_recovery, then start at
        the position it printed, so it rejoins by IST. Returns seconds to Synced."""
        node = self.nodes[i]
        started = time.monotonic()
        # Its own process group: on a timeout, the mariadbd --wsrep-recover it runs goes
        # too (left behind, one was seen growing to 21 GB on a starved machine).
        recovery = subprocess.Popen(["galera_recovery", f"--defaults-file={node.cnf}"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
        try:
            out, err = recovery.communicate(timeout=RECOVERY_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(recovery.pid, signal.SIGKILL)
            out, err = recovery.communicate()
            raise RuntimeError(f"galera_recovery took over {RECOVERY_TIMEOUT} s: {err}") from None
        if recovery.returncode != 0:
            raise RuntimeError(f"galera_recovery failed: {err}")
        node.start(*out.split(), ready=False)
        self.wait_synced(i)
        return time.monotonic() - started

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop(timeout=30)

    def remove(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def galera_cluster() -> Iterator[Galera]:
    """Start a throwaway three-node Galera cluster; yield it; kill and remove it."""
    cluster = Galera()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
