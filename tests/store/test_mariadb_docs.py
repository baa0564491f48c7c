"""The MariaDB blocks of README.md and docs/configuration.md run as written, each on a
MariaDB of its own: the SQL makes the database and an account with exactly the grants
shown, and with that account alone the service migrates, writes (splitting days off the
catch-all partition), serves, reaps (dropping expired days) and migrates back down.
The only change to the blocks is the address: db.example or 192.0.2.10 becomes this
machine's 127.0.0.1 port, and 8776 a free port. (The HAProxy stanza runs in front of
the Galera drill: tests/harness/haproxy.py, tests/reliability/test_galera.py.)"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.conftest import row
from tests.harness import servers
from tests.harness.mariadb import MariaDB, mariadb_server
from usermessages import config
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, partitions, writer

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "usermessages.cli.main"]


def _section(path: Path, heading: str) -> str:
    """The text under a heading, up to the next heading of its level."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ", 1)[0]
    end = text.find(f"\n{level} ", start + 1)
    return text[start:end if end > 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _run_sql(server: MariaDB, block: str) -> None:
    with contextlib.closing(server.admin()) as conn, conn.cursor() as cursor:
        for statement in filter(str.strip, block.split(";")):
            cursor.execute(statement)


def _lists(base: str) -> int:
    return httpx.get(f"{base}/v3/aaaa1111/messages", timeout=30, headers={
        "X-Auth-Token": "alice:aaaa1111", "OpenStack-API-Version": "volume 3.5"}).status_code


def _exercise(url: str, tmp_path: Path) -> None:
    """Everything the service does to its database, as the documented account."""
    engine = store_engine.connect(url)
    assert migrate.is_at_head(engine)
    now = store.utcnow()
    rows = [row("aaaa1111", minutes=i) for i in range(6)]
    for i, message in enumerate(rows):  # three expiry days, the first two already over
        message["created_at"] = now - dt.timedelta(days=40)
        message["expires_at"] = now + dt.timedelta(days=(-2, -1, 1)[i // 2])
    with engine.begin() as conn:  # the writer splits their days off pmax (ALTER)
        assert writer.insert(conn, rows).new == 6
    with engine.connect() as conn:
        assert len(partitions.mariadb_days(conn) or []) >= 3
    reaped = subprocess.run([*CLI, "reap", "--db", url], capture_output=True, text=True,
                            timeout=120)  # the expired days' partitions go (DROP)
    assert (reaped.returncode, reaped.stdout) == (0, "deleted 4 expired messages\n"), reaped
    with engine.connect() as conn:  # as partitions, not row by row
        assert min(partitions.mariadb_days(conn) or [now.date()]) >= now.date()
    conf = tmp_path / "no-reaper.conf"
    conf.write_text("[DEFAULT]\nmessage_reap_interval = -1\n")
    with servers.api_server(url, config_file=str(conf)) as base:
        assert _lists(base) == 200
    migrate.downgrade(engine, "base")
    engine.dispose()


def test_the_readme_blocks_run_as_written(tmp_path):
    section = _section(ROOT / "README.md", "## On MariaDB, or a Galera cluster")
    [sql] = _blocks(section, "sql")
    [shell] = _blocks(section, "sh")
    port = servers.free_port()
    with mariadb_server() as server:
        _run_sql(server, sql)
        located = (shell.replace("@db.example/", f"@127.0.0.1:{server.port}/")
                   .replace("--port 8776", f"--port {port}"))
        if not (ROOT / ".venv" / "bin" / "usermessages").exists():
            located = located.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
        log = tmp_path / "block.log"
        with open(log, "wb") as out:  # the last line serves until stopped
            process = subprocess.Popen(["bash", "-c", located], cwd=ROOT, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            servers.wait_serving(f"http://127.0.0.1:{port}", process, log, timeout=90)
            assert _lists(f"http://127.0.0.1:{port}") == 200  # upgraded, and serving
        finally:
            servers.stop_process(process)
        assert f"database at revision {migrate.head()}" in log.read_text()
        [url] = re.findall(r"DB='([^']+)'", located)
        _exercise(url, tmp_path)


def test_the_configuration_blocks_run_as_written(tmp_path):
    docs = ROOT / "docs" / "configuration.md"
    section = _section(docs, "## MariaDB and Galera")
    [sql] = _blocks(section, "sql")
    [ini] = _blocks(section, "ini")
    with mariadb_server() as server:
        _run_sql(server, sql)
        conf = tmp_path / "usermessages.conf"
        conf.write_text(ini.replace("@192.0.2.10/", f"@127.0.0.1:{server.port}/"))
        upgraded = subprocess.run([*CLI, "db", "upgrade", "--config", str(conf)],
                                  capture_output=True, text=True, timeout=120)
        assert upgraded.returncode == 0, upgraded.stderr
        _exercise(config.load(conf).database_connection, tmp_path)
