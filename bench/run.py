"""Benchmarks against Cinder 29, side by side, in one run.

    .venv/bin/python bench/run.py [--quick] [--output docs/benchmarks.md]

Installs Cinder 29 from PyPI into its own virtualenv (bench/.cinder-venv, a
benchmark peer, never a project dependency), starts a throwaway PostgreSQL, MariaDB
and RabbitMQ on 127.0.0.1, and measures, in this one run and on this machine:

1. ingest (messages/s) into SQLite and PostgreSQL: Cinder's message_create path,
   our SDK's direct sink, our SDK through RabbitMQ and the collector, the
   collector's batched insert on its own, and the raw ceiling (executemany /
   COPY into the same table with the same indexes);
2. listing over HTTP at 100,000 and 1,000,000 messages over 1,000 projects,
   first page and 500 pages deep, unfiltered and filtered, p50 and p99, against
   the real cinder-api (noauth, same PostgreSQL) and ours;
3. reaping 1,000,000 expired rows, and the listing p99 while it runs;
4. the SDK's create() p50 and p99 with the broker up and down, and with Zaqar up
   and down (bench/zaqar.py); the Zaqar collectors draining beside the bus's
   collectors in 1., with what each part spends per message;
5. listing throughput of `usermessages serve` with 1 and 2 API workers, and the
   ratio (bench/workers.py: the same data, the same wrk load);
6. on MariaDB, beside Cinder 29 on the same server: the ingest paths, listing at
   1,000,000 messages, and reaping 1,000,000 expired rows under a listing load.

Prints a table and writes it, with the command, to the output file. Nothing
here is a test: targets are compared and reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench import listing_keys, mariadb, row_cost  # noqa: E402
from bench import workers as workers_bench  # noqa: E402
from bench import zaqar as zaqar_bench  # noqa: E402
from bench.cinder_peer import (  # noqa: E402
    CINDER_VENV,
    cinder_conf,
    cinder_db_sync,
    ensure_cinder,
)
from bench.cinder_peer import cinder_url as cinder_url_of  # noqa: E402
from bench.measure import (  # noqa: E402
    IDLE_SAMPLES,
    ListingLoad,
    ms,
    pct,
    process,
    timed_gets,
    wait_http,
)
from bench.workload import PROJECTS, records  # noqa: E402
from tests import servers  # noqa: E402  (the same throwaway servers the tests use)
from tests.zaqar_server import Zaqar, zaqar_server  # noqa: E402
from usermessages import Action, Detail, Messenger, RequestContext  # noqa: E402
from usermessages.config import Settings  # noqa: E402
from usermessages.message import Message  # noqa: E402
from usermessages.reaper import reap  # noqa: E402
from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import writer  # noqa: E402
from usermessages.store.messages import utcnow as store_messages_utcnow  # noqa: E402
from usermessages.store import migrate, partitions  # noqa: E402
from usermessages.store.schema import messages as messages_table  # noqa: E402

PAGE = 50
STORM_LIMIT = 1_000_000  # rows per project and per event in a window: never reached here
RESULTS: list[tuple[str, str, str]] = []  # (section, measure, value)


def note(section: str, measure: str, value: str) -> None:
    RESULTS.append((section, measure, value))
    print(f"  {section:<10} {measure:<62} {value}", flush=True)


# --- peers ------------------------------------------------------------------


# --- 1. ingest ----------------------------------------------------------------


def fresh_db(admin_url: str) -> str:
    return servers.create_database(admin_url, f"b{uuid.uuid4().hex[:10]}")


def our_store(url: str):  # type: ignore[no-untyped-def]
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    return engine


def count_rows(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one()


def ingest(engine_name: str, url_factory: Callable[[], str], n: int, workdir: Path,
           rabbit_url: str, cinder_python: Path, *, zaqar: Zaqar | None = None,
           rabbit_pid: int | None = None) -> dict[str, float]:
    rates: dict[str, float] = {}
    # Cinder: one db.message_create (one transaction) per message.
    cinder_url = url_factory()  # kept: the Cinder-schema ceiling reuses its table
    conf = cinder_conf(workdir, cinder_url_of(cinder_url))
    cinder_db_sync(conf)
    out = subprocess.run([str(cinder_python), str(ROOT / "bench" / "cinder_ingest.py"),
                          str(conf), str(n)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rates["cinder"] = result["created"] / result["seconds"]
    note("ingest", f"{engine_name}: Cinder 29 message_create, one per message", f"{rates['cinder']:,.0f} msg/s")

    # Ours, direct sink: one INSERT per create(), as Cinder.
    url = url_factory()
    engine = our_store(url)
    messenger = Messenger.from_url(url)
    started = time.perf_counter()
    for i in range(n):
        messenger.create(RequestContext(project_id=f"{i % PROJECTS:08x}", user_id="u"),
                         Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=str(uuid.uuid4()),
                         detail=Detail.NO_BACKEND_AVAILABLE)
    rates["direct"] = n / (time.perf_counter() - started)
    messenger.close()
    note("ingest", f"{engine_name}: our SDK, direct sink (one INSERT per create)", f"{rates['direct']:,.0f} msg/s")

    # Ours, through RabbitMQ and two collectors (competing consumers).
    conf_file = workdir / f"collector-{engine_name}.conf"
    # The defaults (batch_size, flush_interval), series on, and storm control on with
    # limits this load never reaches: every batch reads and advances its windows,
    # and every message is stored.
    conf_file.write_text(f"[collector]\nstorm_rows_per_project = {STORM_LIMIT}\n"
                         f"storm_rows_per_event = {STORM_LIMIT}\n")

    def collectors(url: str, stack: contextlib.ExitStack) -> list[subprocess.Popen]:
        args = [sys.executable, "-m", "usermessages.cli.main", "collector", "--bus", rabbit_url,
                "--db", url, "--config", str(conf_file)]
        return [stack.enter_context(process(args, workdir / f"collector-{engine_name}-{k}.log"))
                for k in range(2)]

    def produce(messenger: Messenger) -> float:
        started = time.perf_counter()
        for i in range(n):
            messenger.create(RequestContext(project_id=f"{i % PROJECTS:08x}", user_id="u"),
                             Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=str(uuid.uuid4()),
                             detail=Detail.NO_BACKEND_AVAILABLE)
        return time.perf_counter() - started

    def stored(engine, started: float) -> float:  # type: ignore[no-untyped-def]
        while count_rows(engine) < n:
            if time.perf_counter() - started > 600:
                raise RuntimeError("collector did not store every message")
            time.sleep(0.02)
        return time.perf_counter() - started

    # (a) end to end: one producer thread creating while two collectors store.
    url = url_factory()
    engine = our_store(url)
    with contextlib.ExitStack() as stack:
        collectors(url, stack)
        messenger = Messenger.from_url(rabbit_url, spool_path=str(workdir / f"spool-{engine_name}-a.sqlite"))
        time.sleep(2)  # collectors connected
        started = time.perf_counter()
        produced = produce(messenger)
        elapsed = stored(engine, started)
        messenger.close()
    rates["bus_e2e"] = n / elapsed
    note("ingest", f"{engine_name}: our SDK -> RabbitMQ -> 2 collectors -> store, end to end",
         f"{rates['bus_e2e']:,.0f} msg/s (one producer thread: {n / produced:,.0f} create()/s)")

    # (b) the collectors alone: drain a queue the producer filled beforehand.
    url = url_factory()
    engine = our_store(url)
    messenger = Messenger.from_url(rabbit_url, spool_path=str(workdir / f"spool-{engine_name}-b.sqlite"))
    produce(messenger)
    assert messenger.sink.flush(120), "the forwarder did not empty its spool"  # type: ignore[attr-defined]
    messenger.close()
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        processes = collectors(url, stack)
        # With Zaqar beside: what each part spends, to compare (see zaqar_drain).
        parts = {} if zaqar is None else {
            "RabbitMQ": zaqar_bench.Cpu(*([rabbit_pid] if rabbit_pid else [])),
            "PostgreSQL": zaqar_bench.Cpu(zaqar_bench.postmaster(url)),
            "collectors": zaqar_bench.Cpu(*(p.pid for p in processes))}
        # Time the storing, not the processes' start: from the first stored row.
        while (first := count_rows(engine)) == 0:
            time.sleep(0.005)
        flowing = time.perf_counter()
        before = {name: cpu.seconds() for name, cpu in parts.items()}
        elapsed = stored(engine, flowing)
        bus_cpu = {name: (cpu.seconds() - before[name]) * 1000 / max(n - first, 1)
                   for name, cpu in parts.items()}
    rates["bus"] = (n - first) / elapsed
    note("ingest", f"{engine_name}: 2 collectors draining {n:,} queued messages into the store",
         f"{rates['bus']:,.0f} msg/s ({flowing - started:.1f} s to start)")
    if zaqar is not None:
        zaqar_drain(engine_name, url_factory, n, workdir, zaqar, rates, bus_cpu)

    # The collector's batched insert on its own (its default batch, on conflict do nothing).
    rows = records(n)
    url = url_factory()
    engine = our_store(url)
    batch = Settings().collector_batch_size
    started = time.perf_counter()
    for start in range(0, n, batch):
        with engine.begin() as conn:
            writer.insert(conn, writer.rows_of(rows[start:start + batch]))
    rates["batched"] = n / (time.perf_counter() - started)
    note("ingest", f"{engine_name}: batched insert, {batch} per transaction (the collector's path)", f"{rates['batched']:,.0f} msg/s")

    if engine_name == "PostgreSQL":
        decode_share(rows)

    # The raw ceiling: same table, same indexes.
    url = url_factory()
    engine = our_store(url)
    columns = [c.name for c in messages_table.columns]
    values = [tuple(row.get(c, False if c == "deleted" else None) for c in columns)
              for row in (message.to_row() for message in rows)]
    make_partitions(url, [message.expires_at for message in rows])
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with psycopg.connect(url) as conn:
            with conn.cursor().copy(f"COPY messages ({', '.join(columns)}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        label = "COPY"
    elif engine.dialect.name == "mysql":  # PyMySQL sends it as multi-row INSERTs
        raw = engine.raw_connection()
        raw.cursor().executemany(f"INSERT INTO messages ({', '.join(columns)}) VALUES "
                                 f"({', '.join('%s' for _ in columns)})", values)
        raw.commit()
        raw.close()
        label = "executemany"
    else:
        raw = engine.raw_connection()
        raw.executemany(f"INSERT INTO messages ({', '.join(columns)}) VALUES "
                        f"({', '.join('?' for _ in columns)})",
                        [tuple(v.isoformat(" ") if hasattr(v, "isoformat") else v for v in row)
                         for row in values])
        raw.commit()
        raw.close()
        label = "executemany"
    rates["raw"] = n / (time.perf_counter() - started)
    assert count_rows(engine) == n
    note("ingest", f"{engine_name}: raw ceiling, our schema ({label}, one transaction)",
         f"{rates['raw']:,.0f} msg/s")
    rates["raw_cinder"] = cinder_ceiling(cinder_url, rows)
    note("ingest", f"{engine_name}: raw ceiling, Cinder's schema ({label}, one transaction)",
         f"{rates['raw_cinder']:,.0f} msg/s")
    for key, label in (("cinder", "Cinder 29 message_create"), ("direct", "our direct sink"),
                       ("bus_e2e", "our SDK end to end"), ("bus", "2 collectors draining"),
                       ("batched", "batched insert")):
        note("ingest", f"{engine_name}: {label} as a share of each ceiling (ours / Cinder's)",
             f"{rates[key] / rates['raw']:.2f} / {rates[key] / rates['raw_cinder']:.2f}")
    return rates


def zaqar_drain(engine_name: str, url_factory: Callable[[], str], n: int, workdir: Path,
                zaqar: Zaqar, rates: dict[str, float], bus_cpu: dict[str, float]) -> None:
    """The Zaqar collectors beside the bus's: same count, same store, and where each
    spends its CPU (per 1,000 messages: the queue's server, the collectors, the store)."""
    figures = zaqar_bench.drain(zaqar, url_factory(), n, PROJECTS, workdir)
    rates["zaqar"] = figures.rate
    note("ingest", f"{engine_name}: 2 zaqar-collectors draining {n:,} messages from "
         f"{PROJECTS:,} Zaqar queues", f"{figures.rate:,.0f} msg/s ({figures.start:.1f} s to "
         f"start; {figures.depth} left in Zaqar after)")
    for path, cpu in (("bus", bus_cpu), ("Zaqar", figures.cpu)):
        note("ingest", f"{engine_name}: CPU s per 1,000 messages drained through {path}: "
             + " / ".join(cpu), " / ".join(f"{v:.3f}" for v in cpu.values()))
    b = zaqar_bench.breakdown(zaqar, url_factory(), n, PROJECTS)
    claims, deletes, store = b["claims"], b["deletes"], b["store"]
    note("ingest", f"{engine_name}: one zaqar-collector in process (4 claim threads, batches of "
         f"500): claims / deletes / store transactions",
         f"{b['rate']:,.0f} msg/s; {claims.calls:,} claims of "
         f"{claims.seconds / claims.calls * 1000:.1f} ms, {deletes.calls:,} deletes of "
         f"{deletes.seconds / deletes.calls * 1000:.1f} ms, {store.calls} transactions of "
         f"{store.seconds / store.calls * 1000:.0f} ms; "
         f"{b['collector_cpu_per_1000']:.3f} CPU s per 1,000 in the collector")
    costs = zaqar_bench.call_costs(zaqar)
    note("ingest", "Zaqar's own CPU per message, one call at a time: "
         + " / ".join(costs), " / ".join(f"{cpu:.0f} µs" for _wall, cpu in costs.values()))


def decode_share(messages: list[Message]) -> None:
    """What the collector spends per envelope before the store: decide(), and json.loads in it."""
    from usermessages.collector import decide

    bodies = [message.to_wire() for message in messages]
    started = time.perf_counter()
    for body in bodies:
        decide(body, 30 * 86400)
    whole = time.perf_counter() - started
    started = time.perf_counter()
    for body in bodies:
        json.loads(body)
    parse = time.perf_counter() - started
    note("ingest", "collector's decode (envelope -> checked Message), one core",
         f"{len(bodies) / whole:,.0f} envelopes/s, of which JSON parsing {parse / whole:.0%}")


CINDER_COLUMNS = ("id", "project_id", "request_id", "resource_type", "resource_uuid",
                  "event_id", "message_level", "detail_id", "action_id", "expires_at",
                  "created_at", "deleted")


def cinder_ceiling(url: str, messages: list[Message]) -> float:
    """COPY (PostgreSQL) or executemany (SQLite, MariaDB) the same messages into Cinder's
    own table.

    Cinder's schema after `cinder-manage db sync`: its primary key and its
    expires_at index. SQLite runs with the sqlite3 module's defaults, which
    are oslo.db's (journal_mode=delete, synchronous=FULL).
    """
    rows = [message.to_row() for message in messages]
    values = [tuple(False if c == "deleted" else row[c] for c in CINDER_COLUMNS) for row in rows]
    columns = ", ".join(CINDER_COLUMNS)
    if url.startswith("postgresql"):
        with psycopg.connect(url) as conn:
            conn.execute("TRUNCATE messages")
        started = time.perf_counter()
        with psycopg.connect(url) as conn:
            with conn.cursor().copy(f"COPY messages ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        return len(values) / (time.perf_counter() - started)
    if url.startswith("mysql"):
        engine = store_engine.connect(url)
        raw = engine.raw_connection()
        raw.cursor().execute("TRUNCATE messages")
        started = time.perf_counter()
        raw.cursor().executemany(f"INSERT INTO messages ({columns}) VALUES "
                                 f"({', '.join('%s' for _ in CINDER_COLUMNS)})", values)
        raw.commit()
        rate = len(values) / (time.perf_counter() - started)
        raw.close()
        engine.dispose()
        return rate
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("DELETE FROM messages")
    conn.commit()
    started = time.perf_counter()
    conn.executemany(f"INSERT INTO messages ({columns}) VALUES "
                     f"({', '.join('?' for _ in CINDER_COLUMNS)})",
                     [tuple(v.isoformat(" ") if hasattr(v, "isoformat") else v for v in row)
                      for row in values])
    conn.commit()
    rate = len(values) / (time.perf_counter() - started)
    conn.close()
    return rate


# --- 2. listing ---------------------------------------------------------------

SEED_OURS = """
INSERT INTO messages (id, kind, project_id, user_id, request_id, resource_type, resource_uuid,
    event_id, message_level, action_id, detail_id, host, exception_class, created_at, expires_at,
    deleted)
SELECT md5('m' || i)::uuid::text, 'API', to_hex(1048576 + i % {projects}), 'u',
    'req-' || md5('r' || i)::uuid::text,
    (ARRAY['VOLUME', 'VOLUME_SNAPSHOT', 'VOLUME_BACKUP'])[1 + i % 3],
    md5('v' || i)::uuid::text, 'VOLUME_VOLUME_001_003', 'ERROR', '001', '003', 'node', '',
    timestamp '2026-01-01' + i * interval '1 millisecond',
    timestamp '{expires}', false
FROM generate_series({start}, {stop} - 1) AS i
"""
SEED_CINDER = """
INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id,
    message_level, detail_id, action_id, expires_at, created_at, deleted)
SELECT md5('m' || i)::uuid::text, to_hex(1048576 + i % {projects}),
    'req-' || md5('r' || i)::uuid::text,
    (ARRAY['VOLUME', 'VOLUME_SNAPSHOT', 'VOLUME_BACKUP'])[1 + i % 3],
    md5('v' || i)::uuid::text, 'VOLUME_VOLUME_001_003', 'ERROR', '003', '001',
    timestamp '{expires}', timestamp '2026-01-01' + i * interval '1 millisecond', false
FROM generate_series({start}, {stop} - 1) AS i
"""


def make_partitions(url: str, expiries: list) -> None:  # type: ignore[type-arg]
    """Our table is partitioned by expiry day (PostgreSQL: raw SQL needs the days made;
    MariaDB: they would wait in its catch-all partition)."""
    engine = store_engine.connect(url)
    with engine.connect() as conn:
        partitions.ensure(conn, expiries)
    engine.dispose()


def seed(url: str, sql: str, start: int, stop: int, expires: str = "2099-01-01") -> float:
    """Add rows [start, stop) to a listing table; returns the seconds it took.

    Ours is partitioned by expiry day: the day's partition is detached, its
    indexes dropped, the rows inserted, and the partition attached again,
    which builds its indexes once (PostgreSQL's bulk-load recipe).
    """
    started = time.perf_counter()
    if sql is not SEED_OURS:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.format(projects=PROJECTS, start=start, stop=stop, expires=expires))
            conn.execute("ANALYZE messages")
        return time.perf_counter() - started
    day = datetime.datetime.fromisoformat(expires)
    make_partitions(url, [day])
    name = partitions.name_of(day.date())
    low, high = (day.date().isoformat(), (day.date() + datetime.timedelta(days=1)).isoformat())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(f'ALTER TABLE messages DETACH PARTITION "{name}"')
        for constraint in conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
                "AND contype = 'p'", (name,)).fetchall():
            conn.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{constraint[0]}"')
        for index in conn.execute("SELECT indexrelid::regclass::text FROM pg_index "
                                  "WHERE indrelid = %s::regclass", (name,)).fetchall():
            conn.execute(f"DROP INDEX {index[0]}")
        conn.execute(sql.replace("INSERT INTO messages", f'INSERT INTO "{name}"').format(
            projects=PROJECTS, start=start, stop=stop, expires=expires))
        conn.execute(f"ALTER TABLE messages ATTACH PARTITION \"{name}\" "
                     f"FOR VALUES FROM ('{low}') TO ('{high}')")
        # As autovacuum leaves a table: statistics, and the visibility map that
        # lets a list find its page index-only (migration 0007).
        conn.execute("VACUUM ANALYZE messages")
    return time.perf_counter() - started


def listing_cells(base: str, project: str, token: str, deep_marker: str, request_id: str
                  ) -> dict[str, str]:
    prefix = f"{base}/v3/{project}/messages?limit={PAGE}"
    return {
        "first page": prefix,
        "500 pages deep": f"{prefix}&marker={deep_marker}",
        "first page, resource_type": f"{prefix}&resource_type=VOLUME_SNAPSHOT",
        "500 deep, resource_type": f"{prefix}&resource_type=VOLUME_SNAPSHOT&marker={deep_marker}",
        "request_id": f"{prefix}&request_id={request_id}",
    }


def marker_at(url: str, position: int, where: str = "") -> str:
    engine = store_engine.connect(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                f"SELECT id FROM messages {where} ORDER BY created_at DESC, id DESC "
                f"LIMIT 1 OFFSET {int(position)}").scalar_one()
    finally:
        engine.dispose()


def cinder_index_ddl() -> list[str]:
    """Our indexes, as CREATE INDEX statements on Cinder's table (seq and kind excepted)."""
    from sqlalchemy.dialects import postgresql

    statements = []
    for index in sorted(messages_table.indexes, key=lambda i: i.name):
        parts = [str(e.compile(dialect=postgresql.dialect(),
                               compile_kwargs={"literal_binds": True})).replace("messages.", "")
                 for e in index.expressions]
        if any(part in ("seq", "kind") for part in parts):
            continue  # columns Cinder does not have
        statements.append(f"CREATE INDEX bench_{index.name} ON messages ({', '.join(parts)})")
    return statements


def with_our_indexes(cinder_url: str) -> Iterator[None]:
    """Cinder's table with our indexes for the duration, then as Cinder made it."""
    statements = cinder_index_ddl()
    with psycopg.connect(cinder_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ANALYZE messages")
    try:
        yield
    finally:
        with psycopg.connect(cinder_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(f"DROP INDEX {statement.split()[2]}")


def listing(size: int, ours_url: str, cinder_url: str, ours_base: str, cinder_base: str,
            samples: int, store: str = "") -> dict[str, dict[str, tuple[float, float]]]:
    """Admin listing of every project (Cinder's noauth context is an admin: same query).

    Three sides, the same number of samples each: ours, Cinder 29 as it
    ships, and Cinder 29 with our indexes created on its table (what the
    indexes buy, apart from the query and paging design). On another
    ``store`` than PostgreSQL (named in the lines), the first two.
    """
    project = to_hex_project(7)
    request_id = f"req-{uuid.UUID(hashlib_md5('r' + str(size // 2)))}"
    # 500 pages deep; in --quick runs, as deep as the small table allows.
    depth = min(500 * PAGE - 1, size // 4)
    deep = marker_at(ours_url, depth)
    deep_snap = marker_at(ours_url, depth, "WHERE resource_type = 'VOLUME_SNAPSHOT'")
    results: dict[str, dict[str, tuple[float, float]]] = {}
    headers = {"OpenStack-API-Version": "volume 3.5"}

    def measure(name: str, base: str) -> None:
        cells = listing_cells(base, project, "", deep, request_id)
        cells["500 deep, resource_type"] = cells["500 deep, resource_type"].replace(deep, deep_snap)
        with httpx.Client(headers={**headers, "X-Auth-Token": f"admin:{project}"},
                          timeout=120) as client:
            for cell, url in cells.items():
                times = timed_gets(client, url, samples)
                results.setdefault(cell, {})[name] = (statistics.median(times), pct(times, 99))

    measure("ours", ours_base)
    measure("cinder", cinder_base)
    if store:
        for cell, sides in results.items():
            (ours50, ours99), (c50, c99) = sides["ours"], sides["cinder"]
            note("listing", f"{store}: {size:,} msgs, {cell}: p50 / p99 ours | Cinder",
                 f"{ms(ours50)} / {ms(ours99)} | {ms(c50)} / {ms(c99)} ({c50 / ours50:,.0f}x)")
        return results
    with contextlib.contextmanager(with_our_indexes)(cinder_url):
        measure("cinder_idx", cinder_base)
    for cell, sides in results.items():
        (ours50, ours99), (c50, c99), (i50, i99) = sides["ours"], sides["cinder"], sides["cinder_idx"]
        note("listing", f"{size:,} msgs, {cell}: p50 / p99 ours | Cinder | Cinder + our indexes",
             f"{ms(ours50)} / {ms(ours99)} | {ms(c50)} / {ms(c99)} ({c50 / ours50:,.0f}x)"
             f" | {ms(i50)} / {ms(i99)} ({i50 / ours50:,.1f}x)")
    return results


def to_hex_project(i: int) -> str:
    return format(1048576 + i, "x")


def hashlib_md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def project_listing(size: int, ours_base: str, samples: int) -> None:
    """Ours only: a project user's own listing (Cinder has no scoped list to compare)."""
    project = to_hex_project(7)
    headers = {"OpenStack-API-Version": "volume 3.5", "X-Auth-Token": f"alice:{project}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        first = client.get(f"{ours_base}/v3/{project}/messages?limit={PAGE}").json()["messages"]
        deepest = client.get(f"{ours_base}/v3/{project}/messages?limit=1&offset="
                             f"{size // PROJECTS - 1}").json()["messages"][0]["id"]
        for cell, url in (("first page", f"{ours_base}/v3/{project}/messages?limit={PAGE}"),
                          ("last page (marker)", f"{ours_base}/v3/{project}/messages?limit={PAGE}"
                                                 f"&marker={deepest}")):
            times = timed_gets(client, url, samples)
            note("listing", f"{size:,} msgs, project user, {cell}: p50 / p99 (ours)",
                 f"{ms(statistics.median(times))} / {ms(pct(times, 99))}")
        del first


def every_key(ours_base: str, size: int, samples: int) -> dict[str, float]:
    """Every documented sort and filter (bench/listing_keys.py); their p50s."""
    lines, p50 = listing_keys.measure(ours_base, 7, to_hex_project(7), size, samples)
    for line in lines:
        note(*line)
    return p50


# --- 3. reaping -----------------------------------------------------------------


Seeder = Callable[..., float]  # (url, "ours" | "cinder", start, stop, expires=...) -> seconds


def pg_seed(url: str, table: str, start: int, stop: int, expires: str = "2099-01-01") -> float:
    return seed(url, SEED_OURS if table == "ours" else SEED_CINDER, start, stop, expires)


def reaping(fresh: Callable[[], str], seeder: Seeder, workdir: Path, rows: int, batch: int,
            cinder_python: Path, store: str = "") -> dict[str, float]:
    """1M expired rows reaped, ours and Cinder's, each under the same listing load.

    On PostgreSQL, or on the ``store`` named (MariaDB: ``fresh`` databases and a
    ``seeder`` of its own; its DELETE leaves nothing to VACUUM).
    """
    label = f"{store}: " if store else ""
    project = to_hex_project(3)
    url = fresh()
    our_store(url)
    seeder(url, "ours", 0, rows, expires="2020-01-01")
    seeder(url, "ours", rows, rows + 100_000)  # live rows the listing reads
    conf = workdir / "reap.conf"
    conf.write_text(f"[DEFAULT]\nmessage_reap_interval = -1\nmessage_reap_batch_size = {batch}\n"
                    "[collector]\nembedded = false\n")
    port = servers.free_port()
    args = [sys.executable, "-m", "usermessages.cli.main", "serve", "--db", url, "--port",
            str(port), "--config", str(conf)]
    with process(args, workdir / "reap-api.log"):
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/")
        load = ListingLoad(f"{base}/v3/{project}/messages?limit={PAGE}", f"alice:{project}")
        idle = load.idle(IDLE_SAMPLES)
        with load:
            engine = store_engine.connect(url)
            began, started = time.time(), time.perf_counter()
            deleted = reap(engine, batch).deleted
            seconds, ended = time.perf_counter() - started, time.time()
        during = load.during(began, ended)
    assert deleted == rows, deleted
    how = "DETACH, count, DROP" if not store else "CONVERT PARTITION TO TABLE, count, DROP"
    note("reaping", f"{label}ours: {deleted:,} expired rows (one expired day: {how}), "
         f"batch {batch}", f"{seconds:.2f} s = {deleted / seconds:,.0f} rows/s")
    note("reaping", f"{label}ours: listing p99 idle vs during the reap ({len(during)} requests)",
         f"{ms(pct(idle, 99))} vs {ms(pct(during, 99))} ({pct(during, 99) / pct(idle, 99):.2f}x)")

    # Cinder's cleanup_expired_messages, one unbatched DELETE, under the same load.
    curl = fresh()
    cport = servers.free_port()
    cconf = cinder_conf(workdir, cinder_url_of(curl), cport)
    cinder_db_sync(cconf)
    seeder(curl, "cinder", 0, rows, expires="2020-01-01")
    seeder(curl, "cinder", rows, rows + 100_000)
    with process([str(CINDER_VENV / "bin" / "cinder-api"), "--config-file", str(cconf)],
                 workdir / "cinder-reap-api.out"):
        cbase = f"http://127.0.0.1:{cport}"
        wait_http(cbase + "/")
        load = ListingLoad(f"{cbase}/v3/{project}/messages?limit={PAGE}", f"alice:{project}")
        cidle = load.idle(IDLE_SAMPLES)
        with load:
            out = subprocess.run([str(cinder_python), str(ROOT / "bench" / "cinder_ingest.py"),
                                  str(cconf), "reap"], check=True, capture_output=True, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
        cduring = load.during(result["began"], result["ended"])
    vacuum = 0.0
    if not store:
        with psycopg.connect(curl, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM messages")
            vacuum = time.perf_counter() - started
    cinder_rate = result["deleted"] / result["seconds"]
    note("reaping", f"{label}Cinder 29 cleanup_expired_messages: {result['deleted']:,} rows, "
         "one DELETE", f"{result['seconds']:.2f} s = {cinder_rate:,.0f} rows/s")
    if not store:
        note("reaping", "Cinder 29: DELETE then VACUUM (our DROP's end state: no dead rows)",
             f"{result['seconds'] + vacuum:.2f} s = "
             f"{result['deleted'] / (result['seconds'] + vacuum):,.0f} rows/s")
    note("reaping", f"{label}Cinder 29: listing p99 idle vs during its DELETE "
         f"({len(cduring)} requests)",
         f"{ms(pct(cidle, 99))} vs {ms(pct(cduring, 99)) if cduring else 'none'}"
         + (f" ({pct(cduring, 99) / pct(cidle, 99):.2f}x)" if cduring else ""))
    return {"ours": deleted / seconds, "cinder": cinder_rate,
            "cinder_vacuumed": result["deleted"] / (result["seconds"] + vacuum),
            "p99_ratio": pct(during, 99) / pct(idle, 99) if during else float("nan")}


def mariadb_listing(fresh: Callable[[], str], workdir: Path, size: int,
                    samples: int) -> dict[str, tuple[float, float]]:
    """The listing section at ``size`` rows on MariaDB: ours and Cinder 29's API on the same
    server, the same requests; each cell's p50 (ours, Cinder's)."""
    ours_url, cinder_url = fresh(), fresh()
    our_store(ours_url)
    cport, port = servers.free_port(), servers.free_port()
    cconf = cinder_conf(workdir, cinder_url_of(cinder_url), cport)
    cinder_db_sync(cconf)
    api_conf = workdir / "api-mariadb.conf"
    api_conf.write_text("[DEFAULT]\nmessage_reap_interval = -1\n[collector]\nembedded = false\n")
    seconds = mariadb.seed(ours_url, "ours", 0, size)
    note("listing", f"MariaDB: load {size:,} rows into ours (INSERT ... SELECT, every index "
         "maintained)", f"{seconds:.0f} s = {size / seconds:,.0f} rows/s")
    seconds = mariadb.seed(cinder_url, "cinder", 0, size)
    note("listing", f"MariaDB: load {size:,} rows into Cinder's", f"{seconds:.0f} s = "
         f"{size / seconds:,.0f} rows/s")
    with process([str(CINDER_VENV / "bin" / "cinder-api"), "--config-file", str(cconf)],
                 workdir / "cinder-api-mariadb.out"), \
         process([sys.executable, "-m", "usermessages.cli.main", "serve", "--db", ours_url,
                  "--port", str(port), "--config", str(api_conf)], workdir / "api-mariadb.out"):
        ours_base, cinder_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{cport}"
        wait_http(ours_base + "/")
        wait_http(cinder_base + "/")
        results = listing(size, ours_url, cinder_url, ours_base, cinder_base, samples,
                          store="MariaDB")
    return {cell: (sides["ours"][0], sides["cinder"][0]) for cell, sides in results.items()}


def partial_day(admin_url: str, rows: int, batch: int) -> float:
    """Rows expired earlier today: their day is not over, so the reaper deletes them in batches."""
    now = store_messages_utcnow()
    expires = (now - datetime.timedelta(seconds=1)).isoformat(sep=" ")
    url = fresh_db(admin_url)
    our_store(url)
    seed(url, SEED_OURS, 0, rows, expires=expires)
    engine = store_engine.connect(url)
    started = time.perf_counter()
    deleted = reap(engine, batch, now).deleted
    seconds = time.perf_counter() - started
    assert deleted == rows, deleted
    note("reaping", f"ours: {rows:,} rows expired earlier today (partial day, in batches of {batch})",
         f"{seconds:.2f} s = {rows / seconds:,.0f} rows/s")
    return rows / seconds


# --- 4. producer overhead -----------------------------------------------------------


def producer(rabbit: servers.RabbitMQ, admin_url: str, workdir: Path, n: int,
             zaqar: Zaqar) -> dict[str, float]:
    """create()'s latency, the broker up (two collectors draining beside it) and down."""
    p99: dict[str, float] = {}
    url = fresh_db(admin_url)
    our_store(url)
    collector = [sys.executable, "-m", "usermessages.cli.main", "collector", "--bus", rabbit.url,
                 "--db", url]
    for state in ("up", "down"):
        with contextlib.ExitStack() as stack:
            if state == "up":  # the machine as in production: broker and collectors busy
                for k in range(2):
                    stack.enter_context(process(collector, workdir / f"p-collector-{k}.log"))
            else:
                rabbit.stop_app()
            messenger = Messenger.from_url(rabbit.url, spool_path=str(workdir / f"p-{state}.sqlite"),
                                           timeout=1.0)
            times, own = zaqar_bench.timed_creates(messenger, n, "p")
            pending = messenger.sink.pending()  # type: ignore[attr-defined]
            if state == "up":
                assert messenger.sink.flush(120)  # type: ignore[attr-defined]
            p99[state] = pct(times, 99)
            note("producer", f"create() with the broker {state}: p50 / p99 / max over {n:,}"
                 + (" (2 collectors storing meanwhile)" if state == "up" else ""),
                 f"{ms(statistics.median(times))} / {ms(pct(times, 99))} / {ms(max(times))}"
                 + (f" ({pending:,} waiting in the spool)" if state == "down" else "")
                 + f"; p99 less the run-queue wait {ms(pct(own, 99))}")
            messenger.sink.close()  # type: ignore[attr-defined]
    rabbit.start_app()
    # The same with the zaqar sink: the forwarder posting to a live Zaqar; then with two
    # zaqar-collectors draining meanwhile, as above; then Zaqar stopped.
    for key, state, up, db_url in (
            ("zaqar_up", "up (the forwarder posting)", True, None),
            ("zaqar_busy", "up, 2 zaqar-collectors draining meanwhile", True, fresh_db(admin_url)),
            ("zaqar_down", "down", False, None)):
        times, own, pending = zaqar_bench.create_latency(zaqar, n, workdir, up=up,
                                                         db_url=db_url)
        p99[key] = pct(times, 99)
        note("producer", f"create() with Zaqar {state}: p50 / p99 / max over {n:,}",
             f"{ms(statistics.median(times))} / {ms(pct(times, 99))} / {ms(max(times))}"
             + (f" ({pending:,} waiting in the spool)" if not up else "")
             + f"; p99 less the run-queue wait {ms(pct(own, 99))}")
    return p99


def scale(ours_url: str, ours_base: str, seeded: int, size: int, samples: int) -> dict[str, float]:
    """Ours alone at ``size`` rows: the load time, then the first page and 500 pages deep.

    Cinder is not taken there: at 1M rows its pages already take ~0.4 s each.
    """
    seconds = seed(ours_url, SEED_OURS, seeded, size)
    note("scale", f"load {size - seeded:,} more rows (to {size:,}): insert, then build the indexes",
         f"{seconds:.0f} s = {(size - seeded) / seconds:,.0f} rows/s")
    project = to_hex_project(7)
    deep = marker_at(ours_url, min(500 * PAGE - 1, size // 4))
    p50: dict[str, float] = {}
    with httpx.Client(headers={"OpenStack-API-Version": "volume 3.5",
                               "X-Auth-Token": f"admin:{project}"}, timeout=120) as client:
        for cell in ("first page", "500 pages deep"):
            url = listing_cells(ours_base, project, "", deep, "")[cell]
            times = timed_gets(client, url, samples)
            p50[cell] = statistics.median(times)
            note("scale", f"{size:,} msgs, {cell}: p50 / p99 (ours)",
                 f"{ms(p50[cell])} / {ms(pct(times, 99))}")
    return p50


# --- main -------------------------------------------------------------------------


def target(measure: str, value: float, met: bool, unit: str = "x") -> None:
    note("targets", measure, f"{value:.2f}{unit}: {'met' if met else 'MISSED'}")


MariaDBFigures = tuple[dict[str, float], dict[str, tuple[float, float]], dict[str, float]]


def mariadb_section(rabbit_url: str, workdir: Path, cinder_python: Path, ingest_n: int,
                    size: int, reap_rows: int, samples: int) -> MariaDBFigures:
    """Ingest, listing at ``size`` rows and reaping on one MariaDB, ours beside Cinder's."""
    with mariadb.server() as maria:
        fresh = lambda: mariadb.fresh_db(maria)  # noqa: E731
        rates = ingest("MariaDB", fresh, ingest_n, workdir, rabbit_url, cinder_python)
        listed = mariadb_listing(fresh, workdir, size, samples)
        reaped = reaping(fresh, mariadb.seed, workdir, reap_rows, 1000, cinder_python,
                         store="MariaDB")
    return rates, listed, reaped


def mariadb_targets(rates: dict[str, float], listed: dict[str, tuple[float, float]],
                    reaped: dict[str, float], size: int, reap_rows: int) -> None:
    target("MariaDB: collectors' ingest vs Cinder per message (>= 10x)",
           rates["bus"] / rates["cinder"], rates["bus"] / rates["cinder"] >= 10)
    for cell, (ours, cinder) in listed.items():
        target(f"MariaDB: {size:,} msgs, {cell}: Cinder's p50 / ours (>= 10x)",
               cinder / ours, cinder / ours >= 10)
    target(f"MariaDB: reap of {reap_rows:,} expired rows vs Cinder's DELETE (> 1x)",
           reaped["ours"] / reaped["cinder"], reaped["ours"] > reaped["cinder"])
    target("MariaDB: listing p99 during the reap vs idle (<= 1.5x)",
           reaped["p99_ratio"], reaped["p99_ratio"] <= 1.5)


def section(title: str, started: float) -> None:
    print(f"\n[{(time.time() - started) / 60:5.1f} min] {title}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, to check the script (figures not meaningful)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--ingest-only", action="store_true",
                        help="section 1 alone, with its targets (to compare commits)")
    parser.add_argument("--only", choices=("mariadb",),
                        help="run one section alone (with the servers it needs)")
    options = parser.parse_args()
    quick = options.quick
    sizes = (2_000, 20_000) if quick else (100_000, 1_000_000)
    big = 50_000 if quick else 10_000_000
    ingest_n = 2_000 if quick else 20_000
    reap_rows = sizes[-1]
    # The same number of samples on every side (Cinder's deep pages are slow: 50).
    samples = 10 if quick else 50

    cinder_python = ensure_cinder()
    workdir = Path(tempfile.mkdtemp(prefix="um-bench-"))
    started = time.time()
    if options.only == "mariadb":
        with servers.rabbitmq_broker() as rabbit:
            section("MariaDB: ingest, listing and reaping beside Cinder's", started)
            maria = mariadb_section(rabbit.url, workdir, cinder_python, ingest_n, sizes[-1],
                                    reap_rows, samples)
        mariadb_targets(*maria, sizes[-1], reap_rows)
        write_report(options, time.time() - started)
        return
    with servers.postgresql_server() as admin_url, servers.rabbitmq_broker() as rabbit, \
            zaqar_server() as zaqar:
        section("1/8 ingest", started)
        rates = {}
        rates["sqlite"] = ingest("SQLite", lambda: f"sqlite:///{workdir}/{uuid.uuid4().hex}.sqlite",
                                 ingest_n, workdir, rabbit.url, cinder_python)
        rates["postgresql"] = ingest("PostgreSQL", lambda: fresh_db(admin_url), ingest_n, workdir,
                                     rabbit.url, cinder_python, zaqar=zaqar,
                                     rabbit_pid=rabbit.process.pid)
        if options.ingest_only:
            ingest_targets(rates["postgresql"], rates["sqlite"])
            write_report(options, time.time() - started)
            return
        write_report(options, time.time() - started, partial=True)

        section("2/8 row cost", started)
        lines, ceilings = row_cost.profile(admin_url, workdir, 5_000 if quick else 50_000,
                                           1 if quick else 3)
        for line in lines:
            note(*line)
        write_report(options, time.time() - started, partial=True)

        section("3/8 listing (and 4/8 scale)", started)
        ours_url, cinder_url = fresh_db(admin_url), fresh_db(admin_url)
        our_store(ours_url)
        cconf_port = servers.free_port()
        cconf = cinder_conf(workdir, cinder_url_of(cinder_url),
                            cconf_port)
        cinder_db_sync(cconf)
        api_conf = workdir / "api.conf"
        api_conf.write_text("[DEFAULT]\nmessage_reap_interval = -1\n[collector]\nembedded = false\n")
        our_port = servers.free_port()
        seeded = 0
        keys_p50: dict[int, dict[str, float]] = {}
        with process([str(CINDER_VENV / "bin" / "cinder-api"), "--config-file", str(cconf)],
                     workdir / "cinder-api.out"), \
             process([sys.executable, "-m", "usermessages.cli.main", "serve", "--db", ours_url,
                      "--port", str(our_port), "--config", str(api_conf)], workdir / "api.out"):
            ours_base, cinder_base = f"http://127.0.0.1:{our_port}", f"http://127.0.0.1:{cconf_port}"
            wait_http(ours_base + "/")
            wait_http(cinder_base + "/")
            for size in sizes:
                seed(ours_url, SEED_OURS, seeded, size)
                seed(cinder_url, SEED_CINDER, seeded, size)
                seeded = size
                listing(size, ours_url, cinder_url, ours_base, cinder_base, samples)
                project_listing(size, ours_base, samples)
                if size == sizes[-1]:
                    keys_p50[size] = every_key(ours_base, size, samples)
            write_report(options, time.time() - started, partial=True)
            section("4/8 scale", started)
            big_p50 = scale(ours_url, ours_base, seeded, big, samples)
            keys_p50[big] = every_key(ours_base, big, samples)
        write_report(options, time.time() - started, partial=True)

        section("5/8 reaping", started)
        reaps = [reaping(lambda: fresh_db(admin_url), pg_seed, workdir, reap_rows, batch,
                         cinder_python) for batch in (1000, 10_000)]
        partial = {batch: partial_day(admin_url, 20_000 if quick else 200_000, batch)
                   for batch in (1000, 10_000)}
        write_report(options, time.time() - started, partial=True)

        section("6/8 producer overhead", started)
        create_p99 = producer(rabbit, admin_url, workdir, 2_000 if quick else 10_000, zaqar)
        write_report(options, time.time() - started, partial=True)

        section("7/8 API workers", started)
        served = workers_bench.measure(admin_url, seconds=2 if quick else 5)
        for count, rate in served.items():
            note("workers", f"listing, a project's first page, {count} worker(s): requests/s",
                 f"{rate:,.0f}")
        note("workers", "2 workers vs 1", f"{served[2] / served[1]:.2f}x")
        write_report(options, time.time() - started, partial=True)

        section("8/8 MariaDB: ingest, listing and reaping beside Cinder's", started)
        maria = mariadb_section(rabbit.url, workdir, cinder_python, ingest_n, sizes[-1],
                                reap_rows, samples)

    pg, lite = rates["postgresql"], rates["sqlite"]

    ingest_targets(pg, lite)
    target("create() p99 with the broker up and 2 collectors storing (< 1 ms)",
           create_p99["up"] * 1000, create_p99["up"] < 0.001, " ms")
    target("create() p99 with Zaqar up, the forwarder posting (< 1 ms)",
           create_p99["zaqar_up"] * 1000, create_p99["zaqar_up"] < 0.001, " ms")
    for batch, figures in zip((1000, 10_000), reaps, strict=True):
        target(f"reap of {reap_rows:,} expired rows vs Cinder's DELETE, batch {batch} (> 1x)",
               figures["ours"] / figures["cinder"], figures["ours"] > figures["cinder"])
        target(f"reap of {reap_rows:,} expired rows vs Cinder's DELETE + VACUUM, batch {batch}"
               " (> 1x)",
               figures["ours"] / figures["cinder_vacuumed"],
               figures["ours"] > figures["cinder_vacuumed"])
        target(f"listing p99 during the reap vs idle, batch {batch} (<= 1.5x, issue 22)",
               figures["p99_ratio"], figures["p99_ratio"] <= 1.5)
        target(f"partial day in batches of {batch} vs Cinder's DELETE rate (>= 0.1)",
               partial[batch] / figures["cinder"], partial[batch] / figures["cinder"] >= 0.1, "")
    for cell, value in big_p50.items():
        target(f"{big:,} msgs, {cell}: p50 (< 15 ms)", value * 1000, value < 0.015, " ms")
    target("our schema's COPY ceiling vs Cinder's schema's, PostgreSQL, row cost's median "
           "(>= 0.4)", ceilings["postgresql"], ceilings["postgresql"] >= 0.4, "")
    target("our schema's executemany ceiling vs Cinder's schema's, SQLite, row cost's median",
           ceilings["sqlite"], True, "")
    mariadb_targets(*maria, sizes[-1], reap_rows)
    for size, cells in keys_p50.items():
        missed = {cell: value for cell, value in cells.items() if value >= listing_keys.TARGET}
        note("targets", f"{size:,} msgs: every documented sort and filter, p50 < 15 ms "
             f"({len(cells)} listings)", f"{len(cells) - len(missed)} of {len(cells)} met"
             + ("" if not missed else ": MISSED " + ", ".join(
                 f"{cell} {value * 1000:.1f} ms" for cell, value in missed.items())))
    write_report(options, time.time() - started)


def ingest_targets(pg: dict[str, float], lite: dict[str, float]) -> None:
    """Issue 22's ingest targets, each a ratio of two figures of this run."""
    target("collectors' ingest vs Cinder per message, PostgreSQL, series and storm control on"
           " (>= 10x)", pg["bus"] / pg["cinder"], pg["bus"] / pg["cinder"] >= 10)
    target("collectors' ingest vs the COPY ceiling, our schema, PostgreSQL (>= 0.5)",
           pg["bus"] / pg["raw"], pg["bus"] / pg["raw"] >= 0.5, "")
    for name, engine_rates in (("PostgreSQL", pg), ("SQLite", lite)):
        ratio = engine_rates["direct"] / engine_rates["cinder"]
        target(f"direct sink vs Cinder's message_create, {name} (>= 2x)", ratio, ratio >= 2)
    target("batched path vs raw ceiling, PostgreSQL (>= 0.5)",
           pg["batched"] / pg["raw"], pg["batched"] / pg["raw"] >= 0.5, "")
    target("batched path vs raw ceiling, SQLite (>= 0.5)",
           lite["batched"] / lite["raw"], lite["batched"] / lite["raw"] >= 0.5, "")
    target("our schema's COPY ceiling vs Cinder's schema's, PostgreSQL, the ingest section's "
           "single COPY (>= 0.4)", pg["raw"] / pg["raw_cinder"],
           pg["raw"] / pg["raw_cinder"] >= 0.4, "")


def write_report(options: argparse.Namespace, seconds: float, partial: bool = False) -> None:
    flags = " ".join([*(["--quick"] if options.quick else []),
                      *([f"--only {options.only}"] if options.only else [])])
    command = f".venv/bin/python bench/run.py {flags}" if flags else "make bench"
    lines = [
        "# Benchmarks: usermessages against Cinder 29, one run, one machine", "",
        f"Produced by `{command}` (`bench/run.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
        f" {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" PostgreSQL 15 (fsync off, throwaway), MariaDB 10.11 (throwaway, 1 GB buffer pool,"
        " innodb_flush_log_at_trx_commit=2),"
        f" RabbitMQ from Debian; run took {seconds / 60:.1f} min"
        f" (load average at the end: {os.getloadavg()[1]:.1f} over 5 min, on {os.cpu_count()}"
        " cores shared with other work)"
        + (" so far (partial: the run had not finished)." if partial else "."),
        "SQLite settings: ours journal_mode=WAL, synchronous=NORMAL (store/engine.py);"
        " Cinder 29 oslo.db's defaults, journal_mode=delete, synchronous=FULL. Our PostgreSQL"
        " messages table is partitioned by expiry day (migration 0004).",
        "Cinder is the real `cinder==29.0.0` from PyPI in its own virtualenv, its API in noauth"
        " mode (an admin context) on the same PostgreSQL.", "",
        "How to read it: absolute figures swing 2-3x with the machine's load, so every target is"
        " a ratio of two figures of this one run.", "",
        "- *ingest*: Cinder's path is its own `db.message_create`, one transaction per message."
        " Two ceilings: COPY (SQLite: executemany) of the same rows in one transaction into our"
        " table with all its indexes, and into Cinder's table as `cinder-manage db sync` makes it;"
        " each path is shown as a share of both.",
        "- *row cost*: bench/row_cost.py (`.venv/bin/python bench/row_cost.py`, 50,000 rows,"
        " median of 3 interleaved runs): COPY (SQLite: executemany) into tables that differ from"
        " ours in one thing each, against Cinder's own table; each line says what was removed or"
        " changed, the rate, the backend's CPU, the client's CPU and the WAL per row, and its share"
        " of the row's cost (wall time per row, against the first line of its group).",
        "- *listing*: the same HTTP requests, the same number of samples on every side; \"Cinder"
        " + our indexes\" is Cinder's table with our indexes created on it (all but `seq`, a"
        " column Cinder lacks): the gap that remains is the query and paging design.",
        "- *scale*: ours alone (Cinder's pages already take ~0.4 s at 1M rows).",
        "- *reaping*: both sides under the same listing load (one client looping over a project's"
        " first page). Cinder's DELETE leaves dead rows for VACUUM; our DROP leaves none, so"
        " DELETE + VACUUM is the same end state.",
        "- *MariaDB*: the lines that name it ran on one MariaDB server, ours and Cinder 29's"
        " side by side (its API and its `cleanup_expired_messages` on the same server); our"
        " table is partitioned by expiry day there too, its reap a `CONVERT PARTITION` and a DROP.",
        "- *producer*: `create()` on the caller's thread while the forwarder, the broker and two"
        " collector processes share the same cores; the same with the zaqar sink, Zaqar 23"
        " (gunicorn -w 2 --threads 4, Redis) and two `usermessages zaqar-collector` processes."
        " \"Less the run-queue wait\": each call's time minus the time its thread was runnable"
        " and not running (/proc schedstat): what the call cost, without the machine's other"
        " work.",
        "- *Zaqar draining*: the same number of messages, pre-posted as the sink posts them over"
        " the same 1,000 projects (one Zaqar queue each), drained by two `usermessages"
        " zaqar-collector` processes (told the projects, not finding them on the index) into a"
        " fresh database of the same PostgreSQL, timed from the first stored row; CPU seconds"
        " per 1,000 messages from /proc, each process tree with its reaped children"
        " (docs/zaqar.md explains the gap).",
        "- *workers*: bench/workers.py (`.venv/bin/python bench/workers.py`): `usermessages serve"
        " --workers 1`, then `--workers 2`, API only, on the same 20,000 rows; wrk (16"
        " connections, 5 s after a 1 s warm-up) asks for one project user's first page. The"
        " load generator, PostgreSQL and the workers share the machine's cores.", "",
        "| section | measure | value |", "|---|---|---|",
    ]
    lines += [f"| {s} | {m} | {v} |" for s, m, v in RESULTS]
    Path(options.output).write_text("\n".join(lines) + "\n")
    if not partial:
        print(f"\nwritten to {options.output}")


if __name__ == "__main__":
    main()
