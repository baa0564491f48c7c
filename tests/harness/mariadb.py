"""A throwaway MariaDB server: Debian's mariadbd on 127.0.0.1, a temp datadir, no system service.

About a second from nothing to a usable server (mariadb-install-db, then start),
so one serves the whole session and each test gets a fresh database. Run as
the ``mysql`` user when the suite runs as root (mariadbd refuses root), as
the current user otherwise. Nothing here skips: a missing mariadbd is a loud
failure (``scripts/system-packages`` installs it).

The server reads only the file written here (``--defaults-file`` first, so
/etc/mysql is never read). An admin account for the tests is made at every
start by ``--init-file``, over TCP with a password: no unix_socket auth,
which PyMySQL cannot do.
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

from tests.servers import free_port

MARIADBD = "/usr/sbin/mariadbd"
ADMIN_USER = "umadmin"
ADMIN_PASSWORD = "umadmin-pw"

# The settings every throwaway node shares (a Galera node adds its own lines).
# Durability is traded for speed where a test never needs it: the data dies
# with the test run anyway.
BASE_CNF = """[mariadbd]
datadir={root}/data
socket={root}/mysqld.sock
pid-file={root}/mysqld.pid
log-error={root}/error.log
# Its own temp dir: a shared /tmp that something cleans takes its temp tables with it.
tmpdir={root}/tmp
port={port}
bind-address=127.0.0.1
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
innodb_flush_log_at_trx_commit=2
innodb_doublewrite=0
innodb_buffer_pool_size={buffer_pool}
innodb_log_file_size={log_file}
max_connections=500
performance_schema=OFF
{init}
{extra}
[client]
socket={root}/mysqld.sock
"""

INIT_SQL = f"""CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'127.0.0.1'
  IDENTIFIED BY '{ADMIN_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'127.0.0.1' WITH GRANT OPTION;
"""


def _binary(path: str) -> str:
    if Path(path).exists():
        return path
    found = shutil.which(Path(path).name)
    if not found:
        raise RuntimeError(f"{Path(path).name} is not installed; `make test` installs "
                           "mariadb-server (scripts/system-packages)")
    return found


def _os_user() -> str:
    import pwd

    return "mysql" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


class MariaDB:
    """One mariadbd on a datadir of its own; the test can stop, kill and start it again."""

    def __init__(self, root: Path | None = None, *, port: int | None = None,
                 extra: str = "skip-log-bin", buffer_pool: str = "64M",
                 log_file: str = "32M", init_file: bool = True) -> None:
        """``init_file=False``: no admin account at start (a Galera node, whose
        account comes from the cluster); ``make_admin`` makes it instead."""
        self.root = root or Path(tempfile.mkdtemp(prefix="um-mariadb-"))
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        self.cnf = self.root / "my.cnf"
        init = f"init-file={self.root}/init.sql" if init_file else ""
        self.cnf.write_text(BASE_CNF.format(root=self.root, port=self.port, extra=extra, init=init,
                                            buffer_pool=buffer_pool, log_file=log_file))
        (self.root / "init.sql").write_text(INIT_SQL)
        self._own()

    def _own(self) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "mysql:mysql", str(self.root)], check=True)

    def install(self) -> None:
        """Make the system tables (mariadb-install-db), once, before the first start."""
        result = subprocess.run(
            [_binary("/usr/bin/mariadb-install-db"), f"--defaults-file={self.cnf}",
             f"--user={_os_user()}", "--skip-test-db", "--auth-root-authentication-method=socket"],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {result.stdout}{result.stderr}")

    def cli(self, sql: str) -> str:
        """Run SQL with the mariadb client over the socket, as the OS user (unix_socket auth)."""
        import pwd

        result = subprocess.run(
            ["mariadb", f"--defaults-file={self.cnf}", f"-u{pwd.getpwuid(os.geteuid()).pw_name}",
             "-NBe", sql], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb -e {sql!r}: {result.stderr}")
        return result.stdout

    def make_admin(self) -> None:
        """The admin account the tests connect with (what --init-file does otherwise)."""
        self.cli(INIT_SQL)

    def start(self, *args: str, timeout: float = 60, ready: bool = True) -> None:
        """Start mariadbd and wait (unless ``ready`` is False) until the admin can connect."""
        with open(self.root / "mariadbd.out", "ab") as log:
            self.process = subprocess.Popen(
                [_binary(MARIADBD), f"--defaults-file={self.cnf}", f"--user={_os_user()}", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        if ready:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.log()}")
            try:
                self.admin().close()
                return
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start: {self.log()}") from None
                time.sleep(0.05)

    def admin(self, database: str | None = None) -> pymysql.Connection:
        """A connection of the admin account (autocommit), over TCP."""
        return pymysql.connect(host="127.0.0.1", port=self.port, user=ADMIN_USER,
                               password=ADMIN_PASSWORD, database=database, autocommit=True,
                               connect_timeout=2)

    def execute(self, *statements: str) -> list[tuple]:
        """Run statements as the admin; the last one's rows."""
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            return list(cursor.fetchall())

    def create_database(self, name: str) -> str:
        """A fresh, empty database and a user owning it; its URL, as OpenStack writes it."""
        self.execute(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
            f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY 'pw-{name}'",
            f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'127.0.0.1'")
        return self.url(name, name, f"pw-{name}")

    def copy_tables(self, source: str, target: str) -> None:
        """Give ``target`` the tables of ``source``, rows, partitions and all.

        A fresh database at the migrations' head in a third of a second:
        running them costs seconds on MariaDB, where every step is DDL.
        """
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables "
                           "WHERE table_schema = %s", (source,))
            for (table,) in cursor.fetchall():
                new, old = f"`{target}`.`{table}`", f"`{source}`.`{table}`"
                cursor.execute(f"CREATE TABLE {new} LIKE {old}")
                cursor.execute(f"INSERT INTO {new} SELECT * FROM {old}")

    def url(self, database: str, user: str, password: str, port: int | None = None) -> str:
        return (f"mysql+pymysql://{user}:{password}@127.0.0.1:{port or self.port}/{database}"
                "?charset=utf8mb4")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM: a clean shutdown (a tenth of a second on a small datadir)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crashed node."""
        self._signal(signal.SIGKILL, 30)

    def _signal(self, signum: int, timeout: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-4000:]
                         for path in (self.root / "error.log", self.root / "mariadbd.out")
                         if path.exists())

    def remove(self) -> None:
        self.stop(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def mariadb_server() -> Iterator[MariaDB]:
    """Install and start a throwaway MariaDB on 127.0.0.1; yield it; kill and remove it."""
    server = MariaDB()
    try:
        server.install()
        server.start()
        yield server
    finally:
        server.remove()
