"""Listing throughput of `usermessages serve` with 1 and 2 API workers (`[api] workers`).

    .venv/bin/python bench/workers.py [--seconds 5] [--connections 16] [--rows 20000]

The same store (a throwaway PostgreSQL, ROWS messages over PROJECTS projects,
seeded once), the same load for each server: wrk (Debian's, C, a process of its
own: the load generator's CPU is not the server's interpreter) holding
CONNECTIONS keep-alive connections that ask for one project user's first page
(50 rows) for SECONDS, after a one-second warm-up. Prints requests/s for each
and the ratio; bench/run.py reports the same figures. The server has only the
API on (no collector, reaper or deliverer), so the figures are the workers'.
A figure, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402  (the throwaway servers the tests use)

from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import messages, migrate, partitions  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"
PROJECTS = 100
PAGE = 50
PROJECT = "a1b2c3"  # one of SEED's projects (a1b2c0 ... a1b2c99): ROWS / PROJECTS rows
SEED = """
INSERT INTO messages (id, kind, project_id, user_id, request_id, resource_type, resource_uuid,
    event_id, message_level, action_id, detail_id, host, exception_class, created_at, expires_at,
    deleted)
SELECT md5('m' || i)::uuid::text, 'API', 'a1b2c' || mod(i, {projects}), 'u',
    'req-' || md5('r' || i)::uuid::text, 'VOLUME', md5('v' || i)::uuid::text,
    'VOLUME_VOLUME_001_003', 'ERROR', '001', '003', 'node', '',
    now() - i * interval '1 second', now() + interval '30 days', false
FROM generate_series(0, {rows} - 1) AS i
"""
# The API's own listing, as a project user asks for it (noauth: the token names the caller).
HEADERS = {"X-Auth-Token": f"alice:{PROJECT}", "OpenStack-API-Version": "volume 3.5"}


def seeded(admin_url: str, rows: int) -> str:
    """A fresh database of ``admin_url``'s server, migrated, with ``rows`` messages."""
    url = servers.create_database(admin_url, "workers_bench")
    engine = store_engine.connect(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            # The partitions the rows' expiry days need (the writer makes them on demand).
            now = messages.utcnow()
            partitions.ensure(conn, [now + timedelta(days=30, seconds=s) for s in (0, 86_400)])
            conn.exec_driver_sql(SEED.format(projects=PROJECTS, rows=rows))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE messages")
    finally:
        engine.dispose()
    return url


@contextlib.contextmanager
def serving(db_url: str, workers: int) -> Iterator[str]:
    """`usermessages serve --workers N` with only the API on; its base URL."""
    with tempfile.TemporaryDirectory(prefix="um-workers-") as root:
        config = Path(root) / "usermessages.conf"
        config.write_text("[DEFAULT]\nmessage_reap_interval = -1\n"
                          "[collector]\nembedded = false\n[webhooks]\nembedded = false\n")
        with servers.api_server(db_url, config_file=str(config), workers=workers) as base:
            yield base


def load(base: str, seconds: int, connections: int) -> float:
    """wrk against ``base``'s first page: requests/s (every answer a 200, else an error)."""
    url = f"{base}/v3/{PROJECT}/messages?limit={PAGE}"
    args = [WRK, "-t", "2", "-c", str(connections)]
    for name, value in HEADERS.items():
        args += ["-H", f"{name}: {value}"]
    subprocess.run([*args, "-d", "1s", url], check=True, capture_output=True)  # warm-up
    out = subprocess.run([*args, "-d", f"{seconds}s", url], check=True, capture_output=True,
                         text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not found:
        raise RuntimeError(f"no rate in wrk's output:\n{out}")
    return float(found.group(1))


def measure(admin_url: str, seconds: int = 5, connections: int = 16,
            rows: int = 20_000) -> dict[int, float]:
    """Requests/s with 1 and 2 workers, on one seeded database of ``admin_url``."""
    db_url = seeded(admin_url, rows)
    rates = {}
    for workers in (1, 2):
        with serving(db_url, workers) as base:
            rates[workers] = load(base, seconds, connections)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=20_000)
    options = parser.parse_args()
    with servers.postgresql_server() as admin_url:
        rates = measure(admin_url, options.seconds, options.connections, options.rows)
    for workers, rate in rates.items():
        print(f"{workers} worker(s): {rate:,.0f} requests/s")
    print(f"ratio 2/1: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
