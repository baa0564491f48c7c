"""The benchmarks' MariaDB: one throwaway server, fresh databases, tables seeded in bulk.

bench/run.py runs its ingest, listing and reaping sections on it as on PostgreSQL,
ours and Cinder 29's on the same server. The rows are the PostgreSQL seed's, value
for value (ids and request ids are md5 UUIDs of the row number, projects its hex), so
bench/listing_keys.py and the markers find the same rows on either server.
"""

from __future__ import annotations

import contextlib
import datetime
import time
import uuid
from collections.abc import Iterator

from bench.workload import PROJECTS
from tests.harness.mariadb import MariaDB
from usermessages.store import engine as store_engine
from usermessages.store import partitions

# A 1M-row table and its indexes fit the buffer pool (InnoDB reads around the
# OS cache, O_DIRECT), as a production server's would; the rest as the tests'.
BUFFER_POOL = "1G"
REDO = "256M"
CHUNK = 100_000  # rows per INSERT ... SELECT: one transaction each


@contextlib.contextmanager
def server() -> Iterator[MariaDB]:
    """A throwaway MariaDB for the run (the tests' harness, a bigger buffer pool)."""
    maria = MariaDB(buffer_pool=BUFFER_POOL, log_file=REDO)
    try:
        maria.install()
        maria.start()
        yield maria
    finally:
        maria.remove()


def fresh_db(maria: MariaDB) -> str:
    return maria.create_database(f"b{uuid.uuid4().hex[:10]}")


def _uuid_of(expression: str) -> str:
    """SQL: md5(expression) written as a UUID, as PostgreSQL's md5(...)::uuid::text."""
    h = f"md5({expression})"
    return (f"concat_ws('-', substr({h}, 1, 8), substr({h}, 9, 4), substr({h}, 13, 4), "
            f"substr({h}, 17, 4), substr({h}, 21, 12))")


SEED_OURS = f"""
INSERT INTO messages (id, kind, project_id, user_id, request_id, resource_type, resource_uuid,
    event_id, message_level, action_id, detail_id, host, exception_class, created_at, expires_at,
    deleted)
SELECT {_uuid_of("concat('m', seq)")}, 'API', lower(hex(1048576 + MOD(seq, {PROJECTS}))), 'u',
    concat('req-', {_uuid_of("concat('r', seq)")}),
    elt(1 + MOD(seq, 3), 'VOLUME', 'VOLUME_SNAPSHOT', 'VOLUME_BACKUP'),
    {_uuid_of("concat('v', seq)")}, 'VOLUME_VOLUME_001_003', 'ERROR', '001', '003', 'node', '',
    TIMESTAMP'2026-01-01 00:00:00' + INTERVAL (seq * 1000) MICROSECOND,
    CAST('{{expires}}' AS DATETIME(6)), 0
FROM seq_{{start}}_to_{{last}}
"""
SEED_CINDER = f"""
INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id,
    message_level, detail_id, action_id, expires_at, created_at, deleted)
SELECT {_uuid_of("concat('m', seq)")}, lower(hex(1048576 + MOD(seq, {PROJECTS}))),
    concat('req-', {_uuid_of("concat('r', seq)")}),
    elt(1 + MOD(seq, 3), 'VOLUME', 'VOLUME_SNAPSHOT', 'VOLUME_BACKUP'),
    {_uuid_of("concat('v', seq)")}, 'VOLUME_VOLUME_001_003', 'ERROR', '003', '001',
    CAST('{{expires}}' AS DATETIME(6)),
    TIMESTAMP'2026-01-01 00:00:00' + INTERVAL (seq * 1000) MICROSECOND, 0
FROM seq_{{start}}_to_{{last}}
"""


def seed(url: str, table: str, start: int, stop: int, expires: str = "2099-01-01") -> float:
    """Add rows [start, stop) to ``table``'s messages ("ours" or "cinder"); its seconds.

    Ours gets the day its rows expire on split off the catch-all partition first,
    as a writer would (an expiry past the horizon, 2099, stays in it).
    """
    sql = SEED_OURS if table == "ours" else SEED_CINDER
    engine = store_engine.connect(url)
    started = time.perf_counter()
    try:
        if table == "ours":
            with engine.connect() as conn:
                partitions.ensure(conn, [datetime.datetime.fromisoformat(expires)])
        with engine.connect() as conn:
            for low in range(start, stop, CHUNK):
                conn.exec_driver_sql(sql.format(expires=expires, start=low,
                                                 last=min(stop, low + CHUNK) - 1))
                conn.commit()
            conn.exec_driver_sql("ANALYZE TABLE messages")
    finally:
        engine.dispose()
    return time.perf_counter() - started
