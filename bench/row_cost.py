"""Where a row's cost goes: COPY into our messages table against Cinder 29's, piece by piece.

    .venv/bin/python bench/row_cost.py [--rows N] [--repeat R]

On PostgreSQL, N rows (the SDK's messages, as bench/run.py stores them) are
COPYed in one transaction into a series of tables that differ from our schema
in one thing each: where the COPY lands (the partitioned parent, the day's
partition, an unpartitioned table), which indexes exist (none, each alone, all
but each, expression indexes as plain columns), the column types, how ``seq``
is made, WAL (an unlogged table; wal_level=minimal on a cluster of its own),
and how the client writes the rows. Every variant runs R times, interleaved
with the others, and keeps its median; beside the rate it records the
backend's CPU time per row (from /proc: the figure the machine's load moves
least), the client's, and the WAL per row. ``perf`` samples the backend during
the two ends (our 0006 table, Cinder's) and sorts its time into index
insertion, heap, input parsing, partition routing and the rest.
On SQLite the same questions are asked of executemany.

Cinder's table is Cinder's own (`cinder-manage db sync`, bench/cinder_peer.py).
"Ours (0006)" is the schema up to migration 0006, the one the 10x was measured
on; "ours (head)" is the current one. Prints the lines; bench/run.py puts them
in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import String  # noqa: E402

from bench.cinder_peer import cinder_conf, cinder_db_sync, ensure_cinder  # noqa: E402
from bench.workload import records  # noqa: E402
from tests.harness import servers  # noqa: E402
from usermessages.message import Message  # noqa: E402
from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import migrate, partitions, writer  # noqa: E402
from usermessages.store.schema import messages as messages_table  # noqa: E402

BEFORE = "0006"  # the schema the 10x was measured on
COLUMNS = [c.name for c in messages_table.columns]
CINDER_COLUMNS = ("id", "project_id", "request_id", "resource_type", "resource_uuid",
                  "event_id", "message_level", "detail_id", "action_id", "expires_at",
                  "created_at", "deleted")
BATCH = 2000  # the collector's default batch
Line = tuple[str, str, str]  # (section, measure, value), as bench/run.py notes them


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    server: float  # backend CPU seconds
    client: float  # this process's CPU seconds
    wal: int  # bytes


@dataclass(frozen=True)
class Cost:
    """A variant's median over its repeats, per row."""

    label: str
    rows: int
    samples: tuple[Sample, ...]

    def _median(self, field: str) -> float:
        return statistics.median(getattr(s, field) for s in self.samples) / self.rows

    @property
    def wall(self) -> float:
        return self._median("wall")

    @property
    def server(self) -> float:
        return self._median("server")

    @property
    def client(self) -> float:
        return self._median("client")

    @property
    def wal(self) -> float:
        return self._median("wal")

    @property
    def rate(self) -> float:
        return 1 / self.wall


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time (the backend runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rows(n: int) -> list[dict[str, Any]]:
    """n message rows of one expiry day (so one partition holds them all), seq numbered."""
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=30), dt.time(1))
    rows = []
    for i, message in enumerate(records(n)):
        row = message.to_row()
        row["created_at"] = start - dt.timedelta(days=30) + dt.timedelta(milliseconds=i)
        row["expires_at"] = row["created_at"] + dt.timedelta(days=30)
        rows.append({**row, "deleted": False, "deleted_at": None, "seq": i + 1})
    return rows


# --- PostgreSQL ------------------------------------------------------------------------


@dataclass
class Variant:
    """One COPY target: a table set up once, emptied before each timed COPY."""

    label: str
    table: str
    columns: Sequence[str]
    values: list[tuple[Any, ...]]
    url: str
    binary: bool = False
    before: str = ""  # run in the COPY's transaction, first (e.g. the seq counter's bump)


class PgBench:
    def __init__(self, admin_url: str, rows: list[dict[str, Any]]) -> None:
        self.admin_url = admin_url
        self.rows = rows
        self.values = {c: [tuple(r[k] for k in c) for r in rows]
                       for c in (tuple(COLUMNS), CINDER_COLUMNS)}

    def database(self, revision: str | None) -> str:
        url = servers.create_database(self.admin_url, f"rc{uuid.uuid4().hex[:10]}")
        if revision is not None:
            engine = store_engine.connect(url)
            migrate.upgrade(engine, revision)
            with engine.connect() as conn:
                partitions.ensure(conn, [self.rows[0]["expires_at"], self.rows[-1]["expires_at"]])
            engine.dispose()
        return url

    def measure(self, variant: Variant) -> Sample:
        with psycopg.connect(variant.url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {variant.table}")
            pid = conn.info.backend_pid
            types = _pg_types(conn, variant.table, variant.columns) if variant.binary else []
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
            began, server, client = time.perf_counter(), _cpu_seconds(pid), time.process_time()
            with conn.transaction():
                if variant.before:
                    conn.execute(variant.before)
                copy_sql = (f"COPY {variant.table} ({', '.join(variant.columns)}) FROM STDIN"
                            + (" (FORMAT BINARY)" if variant.binary else ""))
                with conn.cursor().copy(copy_sql) as copy:
                    if variant.binary:
                        copy.set_types(types)
                    for value in variant.values:
                        copy.write_row(value)
            sample = Sample(time.perf_counter() - began, _cpu_seconds(pid) - server,
                            time.process_time() - client, 0)
            wal = conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn",
                               (lsn,)).fetchone()[0]  # type: ignore[index]
        return Sample(sample.wall, sample.server, sample.client, int(wal))


def _pg_types(conn: psycopg.Connection, table: str, columns: Sequence[str]) -> list[str]:
    types = dict(conn.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0", (table,)).fetchall())
    return [types[c] for c in columns]


def _index_ddl(url: str) -> dict[str, str]:
    """The messages table's indexes as CREATE statements, by name; the primary key too."""
    with psycopg.connect(url) as conn:
        found = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes "
                                  "WHERE tablename = 'messages'").fetchall())
        pkey = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conrelid = 'messages'::regclass AND contype = 'p'").fetchone()
    assert pkey is not None
    found[pkey[0]] = f"ALTER TABLE messages ADD {pkey[1]}"
    return found


def _on(ddl: str, name: str, table: str) -> str:
    """An index of messages, made on ``table`` under a name of its own."""
    ddl = re.sub(r" ON (ONLY )?(public\.)?messages ", f" ON {table} ", ddl)
    ddl = ddl.replace("ALTER TABLE messages ", f"ALTER TABLE {table} ")
    return ddl.replace(f"INDEX {name} ", f"INDEX {table}_{name} ")


def _plain(ddl: str) -> str:
    """An expression index on coalesce(x, '') made on the column itself."""
    return re.sub(r"COALESCE\(\(?(\w+)\)?(::text)?, ''::(character varying|text)\)", r"\1",
                  ddl, flags=re.IGNORECASE)


def _table(url: str, table: str, statements: Sequence[str], like: str = "messages",
           unlogged: bool = False) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE {table} "
                     f"(LIKE {like} INCLUDING DEFAULTS)")
        for statement in statements:
            conn.execute(statement)


def pg_profile(admin_url: str, workdir: Path, n: int, repeat: int,
               cinder: bool = True) -> tuple[list[Line], float]:
    """The lines, and ours (head) / Cinder's COPY rate (nan without Cinder)."""
    rows = _rows(n)
    bench = PgBench(admin_url, rows)
    old, new = bench.database(BEFORE), bench.database(None)
    engine = store_engine.connect(new)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        partitions.ensure(conn, [rows[0]["expires_at"], rows[-1]["expires_at"]])
    engine.dispose()
    day = partitions.name_of(rows[0]["expires_at"].date())
    before, head = _index_ddl(old), _index_ddl(new)
    full = bench.values[tuple(COLUMNS)]
    variants: list[Variant] = []

    def add(label: str, table: str, statements: Sequence[str] = (), url: str = old,
            columns: Sequence[str] = tuple(COLUMNS), values: list[tuple[Any, ...]] | None = None,
            make: bool = True, **options: Any) -> Variant:
        if make:
            _table(url, table, statements, unlogged=options.pop("unlogged", False))
        variant = Variant(label, table, columns, full if values is None else values, url,
                          **options)
        variants.append(variant)
        return variant

    def each(ddl: dict[str, str], table: str) -> list[str]:
        return [_on(statement, name, table) for name, statement in sorted(ddl.items())]

    base = add(f"ours ({BEFORE}): COPY into the partitioned parent, {len(before)} indexes "
               "(primary key included)", "messages", make=False)
    add(f"ours ({BEFORE}): straight into the day's partition", day, make=False)
    plain_all = add(f"ours ({BEFORE}): an unpartitioned table, same indexes", "t_all",
                    each(before, "t_all"))
    none = add(f"ours ({BEFORE}): no index, no primary key (the heap and COPY alone)", "t_none")
    alone = {name: add(f"+ {name} alone", f"t_only{i}", [_on(ddl, name, f"t_only{i}")])
             for i, (name, ddl) in enumerate(sorted(before.items()))}
    but = {name: add(f"all but {name}", f"t_but{i}",
                     [_on(d, k, f"t_but{i}") for k, d in sorted(before.items()) if k != name])
           for i, name in enumerate(sorted(before))}
    add("expression indexes (coalesce) made on the plain columns",
        "t_noexpr", [_plain(s) for s in each(before, "t_noexpr")])
    # Column types, with every index (what a type changes is mostly compared in indexes).
    types = {
        "VARCHAR(n) columns as text": [
            f"ALTER TABLE t_text ALTER {c.name} TYPE text" for c in messages_table.columns
            if str(c.type).startswith("VARCHAR")],
        'text columns COLLATE "C" (byte order, as SQLite and MariaDB\'s _bin)': [
            f'ALTER TABLE t_collate ALTER {c.name} TYPE varchar({c.type.length}) COLLATE "C"'
            for c in messages_table.columns
            if isinstance(c.type, String) and str(c.type).startswith("VARCHAR")],
        "id and resource_uuid as uuid": [
            "ALTER TABLE t_uuid ALTER id TYPE uuid USING id::uuid",
            "ALTER TABLE t_uuid ALTER resource_uuid DROP DEFAULT",
            "ALTER TABLE t_uuid ALTER resource_uuid TYPE uuid USING resource_uuid::uuid"],
        "DateTime columns as timestamptz": [
            f"ALTER TABLE t_tz ALTER {c} TYPE timestamptz" for c in
            ("created_at", "expires_at", "deleted_at")],
    }
    for (label, alters), table in zip(types.items(), ("t_text", "t_collate", "t_uuid", "t_tz"),
                                      strict=True):
        add(label, table, [*alters, *each(before, table)])
    cinder_only = [c for c in COLUMNS if c in CINDER_COLUMNS]
    narrow = add("only Cinder's 12 columns, no index (8 columns fewer)", "t_narrow",
        [f"ALTER TABLE t_narrow DROP COLUMN {c}" for c in COLUMNS if c not in CINDER_COLUMNS],
        columns=cinder_only, values=[tuple(r[c] for c in cinder_only) for r in rows])
    # The seq: handed in from the counter row (one bump per COPY), by a sequence, or not at all.
    with psycopg.connect(old, autocommit=True) as raw:
        raw.execute("CREATE SEQUENCE IF NOT EXISTS bench_seq CACHE 1")
    no_seq = [c for c in COLUMNS if c != "seq"]
    no_seq_values = [tuple(r[c] for c in no_seq) for r in rows]
    add("seq: the counter row bumped once per COPY (today)", "t_counter",
                  each(before, "t_counter"), before=f"UPDATE message_seq SET value = value + {n}")
    add("seq: a sequence, nextval() per row", "t_sequence",
        ["ALTER TABLE t_sequence ALTER seq SET DEFAULT nextval('bench_seq')",
         *each(before, "t_sequence")], columns=no_seq, values=no_seq_values)
    add("seq: none (NULL, ix_messages_seq kept)", "t_noseq", each(before, "t_noseq"),
        columns=no_seq, values=no_seq_values)
    # WAL: an unlogged table writes none (a probe: a crash would empty it).
    add("WAL: an unlogged table, same indexes (probe)", "t_unlogged",
        each(before, "t_unlogged"), unlogged=True)
    # The client: binary COPY instead of text.
    add("client: binary COPY (no text to parse), no index", "t_binary", binary=True)
    # The redesign.
    head_base = add("ours (head): COPY into the partitioned parent, "
                    f"{len(head)} indexes (primary key included)", "messages", url=new, make=False)
    head_alone = {name: add(f"head: + {name} alone", f"h_only{i}",
                            [_on(ddl, name, f"h_only{i}")], url=new)
                  for i, (name, ddl) in enumerate(sorted(head.items()))}
    cinder_variant = None
    if cinder:
        curl = bench.database(None)
        cinder_db_sync(cinder_conf(workdir, curl.replace("postgresql://",
                                                          "postgresql+psycopg2://")))
        cinder_variant = add("Cinder 29's own table (cinder-manage db sync): its primary key "
                             "and expires_at index", "messages", url=curl, make=False,
                             columns=CINDER_COLUMNS, values=bench.values[CINDER_COLUMNS])

    print(f"row cost: {len(variants)} variants x {repeat}", file=sys.stderr, flush=True)
    bench.measure(base)  # warm the caches, the client's code and the day's partition
    samples: dict[int, list[Sample]] = collections.defaultdict(list)
    for _ in range(repeat):
        for k, variant in enumerate(variants):
            samples[k].append(bench.measure(variant))
    costs = {variant.label: Cost(variant.label, n, tuple(samples[k]))
             for k, variant in enumerate(variants)}

    def cost(variant: Variant) -> Cost:
        return costs[variant.label]

    lines: list[Line] = []
    ref = cost(base)

    def line(what: str, c: Cost, share: float | None) -> None:
        value = (f"{c.rate:,.0f} rows/s; {c.wall * 1e6:.1f} µs wall, "
                 f"{c.server * 1e6:.1f} µs server, {c.client * 1e6:.1f} µs client, "
                 f"{c.wal:,.0f} B WAL per row")
        if share is not None:
            value += f"; {share:.0%} of the row's cost"
        lines.append(("row cost", f"PostgreSQL: {what}", value))

    def removed(c: Cost, of: Cost = ref) -> float:
        return (of.wall - c.wall) / of.wall

    # What each variant's share is taken against: the table it differs from in one thing.
    against = {v.label: cost(plain_all) for v in variants if v.table.startswith("t_")}
    against.update({v.label: ref for v in (plain_all, none, *variants[:2])})
    against.update({v.label: cost(none) for v in variants if v.table in ("t_narrow",
                                                                          "t_binary")})
    line(base.label, ref, None)
    for variant in variants:
        if variant in (base, head_base, cinder_variant) or variant.label.startswith(
                ("+ ", "all but ", "head: + ")):
            continue
        reference = against[variant.label]
        suffix = "" if reference is ref else (
            " (against the unpartitioned table)" if reference is cost(plain_all)
            else " (against the heap-only table)")
        line(variant.label + suffix, cost(variant), removed(cost(variant), reference))
    line("the indexes one by one, each alone on the heap-only table: "
         "(that alone - none) / ours (0006)", cost(none), None)
    for name, variant in alone.items():
        c = cost(variant)
        lines.append(("row cost", f"PostgreSQL: + {name} alone",
                      f"{c.rate:,.0f} rows/s; +{(c.server - cost(none).server) * 1e6:.1f} µs "
                      f"server per row; {(c.wall - cost(none).wall) / ref.wall:.0%} of the "
                      "row's cost"))
    summed = sum(cost(v).wall - cost(none).wall for v in alone.values())
    lines.append(("row cost", "PostgreSQL: the indexes alone, summed / all of them together "
                  "(unpartitioned)", f"{summed / ref.wall:.0%} / "
                  f"{(cost(plain_all).wall - cost(none).wall) / ref.wall:.0%} of the row's cost"))
    for name, variant in but.items():
        lines.append(("row cost", f"PostgreSQL: all but {name} (the old budget's way)",
                      f"{cost(variant).rate:,.0f} rows/s; "
                      f"{removed(cost(variant), cost(plain_all)):.0%} of the row's cost"))
    line(head_base.label, cost(head_base), removed(cost(head_base)))
    for name, variant in head_alone.items():
        c = cost(variant)
        lines.append(("row cost", f"PostgreSQL: head: + {name} alone",
                      f"+{(c.server - cost(none).server) * 1e6:.1f} µs server per row"))
    if cinder_variant is not None:
        line(cinder_variant.label, cost(cinder_variant), None)
        lines.append(("row cost", "PostgreSQL: ours (0006) / ours (head) as a share of Cinder's "
                      "rate (same run, same COPY)",
                      f"{ref.rate / cost(cinder_variant).rate:.2f} / "
                      f"{cost(head_base).rate / cost(cinder_variant).rate:.2f}"))
    if cinder_variant is not None:
        lines.append(("row cost", "PostgreSQL: the gap, explained",
                      _explained(ref, cost(plain_all), cost(none), cost(narrow),
                                 [cost(v) for v in alone.values()], cost(cinder_variant))))
    lines += python_side(rows)
    lines += perf_breakdown(bench, base, "ours (0006)")
    if cinder_variant is not None:
        lines += perf_breakdown(bench, cinder_variant, "Cinder's table")
    lines += perf_breakdown(bench, head_base, "ours (head)")
    lines += store_path(new, rows)
    lines += seq_contention(new, rows)
    lines += minimal_wal(rows, repeat)
    ratio = (cost(head_base).rate / cost(cinder_variant).rate if cinder_variant is not None
             else float("nan"))
    return lines, ratio


def _explained(ours: Cost, unpartitioned: Cost, heap_only: Cost, narrow: Cost,
               alone: list[Cost], cinder: Cost) -> str:
    """Ours (0006)'s row against Cinder's, in the backend's CPU time, term by term
    (the figure the machine's load moves least; wall time follows it on a quiet one)."""
    us = 1e6
    indexes = unpartitioned.server - heap_only.server
    each = [c.server - heap_only.server for c in alone]
    return (
        f"backend CPU per row: ours (0006) {ours.server * us:.1f} µs, Cinder's "
        f"{cinder.server * us:.1f} µs ({ours.server / cinder.server:.1f}x; wall "
        f"{ours.wall / cinder.wall:.1f}x). Of ours: its {len(alone)} indexes "
        f"{indexes * us:.1f} µs ({indexes / ours.server:.0%}): alone, each costs "
        f"{min(each) * us:.1f} to {max(each) * us:.1f} µs, {sum(each) * us:.1f} µs summed, the "
        "rest is what they cost each other in the caches; partition routing "
        f"{(ours.server - unpartitioned.server) * us:.1f} µs; the 8 columns Cinder lacks "
        f"{(heap_only.server - narrow.server) * us:.1f} µs; COPY of Cinder's 12 columns into a "
        f"heap {narrow.server * us:.1f} µs, which with a primary key and an expiry index is "
        "Cinder's whole row. Dropping one index at a time (the old budget) saves one index's "
        f"{statistics.median(each) / ours.server:.0%} or so of the row, less than one COPY's "
        "noise on a shared machine; nobody added the 16 up"
    )


def python_side(rows: list[dict[str, Any]]) -> list[Line]:
    """The client's part before COPY: a Message to its row, the row to a tuple."""
    messages: list[Message] = records(len(rows))
    started = time.process_time()
    built = [message.to_row() for message in messages]
    to_row = time.process_time() - started
    started = time.process_time()
    [tuple(row.get(c) for c in COLUMNS) for row in built]
    to_tuple = time.process_time() - started
    n = len(rows)
    return [("row cost", "Python: Message.to_row() / the row to a COPY tuple, per row",
             f"{to_row / n * 1e6:.2f} µs / {to_tuple / n * 1e6:.2f} µs client CPU")]


def _perf_categories(script: str) -> collections.Counter[str]:
    """Each sample of ``perf script`` to the outermost step of COPY it was in."""
    order = (("index insertion", ("ExecInsertIndexTuples", "btinsert", "brininsert",
                                  "hashinsert")),
             ("partition routing", ("ExecFindPartition", "ExecGetPartitionInfo")),
             ("heap insert", ("heap_multi_insert", "heap_insert", "CopyMultiInsertBufferFlush",
                              "table_multi_insert")),
             ("input parsing", ("NextCopyFrom", "CopyReadLine", "CopyFromBinary",
                                "InputFunctionCall", "ReceiveFunctionCall")),
             ("WAL", ("XLogInsert", "XLogFlush", "XLogWrite")))
    counts: collections.Counter[str] = collections.Counter()
    for sample in script.split("\n\n"):
        frames = sample.strip().splitlines()[1:]
        if not frames:
            continue
        symbols = " ".join(frames)
        for category, names in order:
            if any(name in symbols for name in names):
                counts[category] += 1
                break
        else:
            counts["other"] += 1
    return counts


def perf_breakdown(bench: PgBench, variant: Variant, label: str) -> list[Line]:
    """Where the backend's time goes during one COPY, by perf's call stacks."""
    if shutil.which("perf") is None or os.geteuid() != 0:
        return [("row cost", f"perf: {label}", "not run (needs perf and root)")]
    data = Path(tempfile.mkdtemp(prefix="um-perf-")) / "perf.data"
    with psycopg.connect(variant.url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {variant.table}")
        recorder = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p",
                                     str(conn.info.backend_pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)  # perf attached (no signal says so)
        for _ in range(3):
            conn.execute(f"TRUNCATE {variant.table}")
            with conn.transaction(), conn.cursor().copy(
                    f"COPY {variant.table} ({', '.join(variant.columns)}) FROM STDIN") as copy:
                for value in variant.values:
                    copy.write_row(value)
        recorder.send_signal(2)
        recorder.wait()
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym"],
                            capture_output=True, text=True).stdout
    shutil.rmtree(data.parent, ignore_errors=True)
    counts = _perf_categories(script)
    total = sum(counts.values()) or 1
    shares = ", ".join(f"{name} {count / total:.0%}" for name, count in counts.most_common())
    return [("row cost", f"perf: the backend's time during 3 COPYs, {label} ({total} samples)",
             shares)]


def store_path(url: str, rows: list[dict[str, Any]]) -> list[Line]:
    """The store's own path at head, batch by batch: with series and without."""
    engine = store_engine.connect(url)
    spent = {"with": 0.0, "without": 0.0}
    lines = []
    for label in spent:
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE messages, message_series")
        for start in range(0, len(rows), BATCH):
            batch = [{k: v for k, v in r.items() if k != "seq"} for r in rows[start:start + BATCH]]
            began = time.perf_counter()
            with engine.begin() as conn:
                if label == "with":
                    writer.insert(conn, batch)
                else:
                    writer._copy_insert(conn, batch)  # numbers the rows itself, after its COPY
            spent[label] += time.perf_counter() - began
    engine.dispose()
    n = len(rows)
    lines.append(("row cost", f"PostgreSQL: the store's path at head, batches of {BATCH} "
                  "(temp table, INSERT ... SELECT, seq) with / without the series upsert",
                  f"{n / spent['with']:,.0f} / {n / spent['without']:,.0f} rows/s; series "
                  f"{(spent['with'] - spent['without']) / spent['with']:.0%} of the row's cost"))
    return lines


def seq_contention(url: str, rows: list[dict[str, Any]]) -> list[Line]:
    """Two writers at once: the counter row serialises them from its bump to commit."""
    engine = store_engine.connect(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE messages, message_series")
    half = len(rows) // 2
    batches = [[{k: v for k, v in r.items() if k != "seq"} for r in part[i:i + BATCH]]
               for part in (rows[:half], rows[half:]) for i in range(0, len(part), BATCH)]

    errors: list[BaseException] = []

    def write(mine: list[list[dict[str, Any]]]) -> None:
        try:
            for batch in mine:
                with engine.begin() as conn:
                    writer._copy_insert(conn, batch)
        except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
            errors.append(exc)

    began = time.perf_counter()
    threads = [threading.Thread(target=write, args=(batches[k::2],)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - began
    engine.dispose()
    return [("row cost", f"PostgreSQL: the store's path at head, two writers at once, "
             f"batches of {BATCH}", f"{len(rows) / seconds:,.0f} rows/s")]


def minimal_wal(rows: list[dict[str, Any]], repeat: int) -> list[Line]:
    """wal_level=minimal (a probe, on a cluster of its own): a table made in the COPY's
    transaction writes no WAL for its rows; an existing one still does."""
    cluster = servers.PostgreSQL()
    try:
        with open(cluster.data / "postgresql.conf", "a") as conf:
            conf.write("\nwal_level = minimal\nmax_wal_senders = 0\n")
        cluster.start()
        bench = PgBench(cluster.url, rows)
        url = bench.database(BEFORE)
        ddl = _index_ddl(url)
        values = bench.values[tuple(COLUMNS)]
        made, existing = [], []
        for _ in range(repeat):
            _table(url, "t_existing", [_on(d, k, "t_existing") for k, d in ddl.items()])
            existing.append(bench.measure(Variant("", "t_existing", COLUMNS, values, url)))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS t_made")
                began = time.perf_counter()
                with conn.transaction():
                    conn.execute("CREATE TABLE t_made (LIKE messages INCLUDING DEFAULTS)")
                    for k, d in ddl.items():
                        conn.execute(_on(d, k, "t_made"))
                    with conn.cursor().copy(f"COPY t_made ({', '.join(COLUMNS)}) FROM STDIN") \
                            as copy:
                        for value in values:
                            copy.write_row(value)
                made.append(time.perf_counter() - began)
        n = len(rows)
        rate = n / statistics.median(s.wall for s in existing)
        return [("row cost", "PostgreSQL: wal_level=minimal (probe): ours (0006) unpartitioned, "
                 "an existing table / one made in the COPY's transaction (no WAL for its rows)",
                 f"{rate:,.0f} / {n / statistics.median(made):,.0f} rows/s")]
    finally:
        cluster.remove()


# --- SQLite ----------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    return value.isoformat(" ") if isinstance(value, dt.datetime) else value


def sqlite_profile(workdir: Path, n: int, repeat: int,
                   cinder: bool = True) -> tuple[list[Line], float]:
    """The lines, and ours (head) / Cinder's executemany rate (nan without Cinder)."""
    rows = _rows(n)
    values = [tuple(_sqlite_value(r[c]) for c in COLUMNS) for r in rows]
    cinder_values = [tuple(_sqlite_value(r[c]) for c in CINDER_COLUMNS) for r in rows]

    def ours(revision: str | None) -> Path:
        path = workdir / f"rc-{uuid.uuid4().hex[:8]}.sqlite"
        engine = store_engine.connect(f"sqlite:///{path}")
        migrate.upgrade(engine, revision or "head")
        engine.dispose()
        return path

    old = ours(BEFORE)
    with sqlite3.connect(old) as conn:
        table_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages'"
                                 ).fetchone()[0]
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                    "AND tbl_name = 'messages' AND sql IS NOT NULL").fetchall())

    def make(path: Path, table: str, index_sql: Sequence[tuple[str, str]]) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(table_sql.replace("CREATE TABLE messages", f"CREATE TABLE {table}", 1))
            for name, sql in index_sql:
                conn.execute(sql.replace(f"INDEX {name} ON messages",
                                         f"INDEX {table}_{name} ON {table}"))

    # Ours as the store opens it (WAL, synchronous=NORMAL); Cinder's as oslo.db does (defaults).
    def ours_conn(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    targets: list[tuple[str, Path, str, Sequence[str], list[tuple[Any, ...]],
                        Callable[[Path], sqlite3.Connection]]] = []
    cols = tuple(COLUMNS)
    targets.append((f"ours ({BEFORE}): {len(indexes)} indexes and the primary key", old,
                    "messages", cols, values, ours_conn))
    make(old, "t_none", [])
    targets.append(("no index (the primary key kept: SQLite's table needs its rowid lookup)", old,
                    "t_none", cols, values, ours_conn))
    for i, (name, sql) in enumerate(sorted(indexes.items())):
        make(old, f"t_only{i}", [(name, sql)])
        targets.append((f"+ {name} alone", old, f"t_only{i}", cols, values, ours_conn))
    make(old, "t_noexpr", [(k, re.sub(r"coalesce\((\w+), ''\)", r"\1", s))
                           for k, s in indexes.items()])
    targets.append(("expression indexes (coalesce) made on the plain columns", old, "t_noexpr",
                    cols, values, ours_conn))
    targets.append((f"ours ({BEFORE}) with Cinder's pragmas (journal_mode=delete, "
                    "synchronous=FULL)", old, "messages", cols, values, sqlite3.connect))
    head = ours(None)
    targets.append(("ours (head)", head, "messages", cols, values, ours_conn))
    if cinder:
        cpath = workdir / f"rc-cinder-{uuid.uuid4().hex[:8]}.sqlite"
        cinder_db_sync(cinder_conf(workdir, f"sqlite:///{cpath}"))
        targets.append(("Cinder 29's own table (cinder-manage db sync), oslo.db's pragmas",
                        cpath, "messages", CINDER_COLUMNS, cinder_values, sqlite3.connect))

    def once(path: Path, table: str, columns: Sequence[str], vals: list[tuple[Any, ...]],
             opener: Callable[[Path], sqlite3.Connection]) -> float:
        conn = opener(path)
        conn.execute(f"DELETE FROM {table}")
        conn.commit()
        began = time.perf_counter()
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                         f"({', '.join('?' for _ in columns)})", vals)
        conn.commit()
        seconds = time.perf_counter() - began
        conn.close()
        return seconds

    times: dict[int, list[float]] = collections.defaultdict(list)
    for _ in range(repeat):
        for k, target in enumerate(targets):
            times[k].append(once(*target[1:]))
    median = {targets[k][0]: statistics.median(t) / n for k, t in times.items()}
    ref = median[targets[0][0]]
    nothing = median[targets[1][0]]
    lines: list[Line] = []
    for label, *_ in targets:
        c = median[label]
        if label.startswith("+ "):
            share = (c - nothing) / ref
        elif label == targets[0][0] or label.startswith("Cinder"):
            share = None
        else:
            share = (ref - c) / ref
        lines.append(("row cost", f"SQLite: {label}",
                      f"{1 / c:,.0f} rows/s; {c * 1e6:.1f} µs per row"
                      + ("" if share is None else f"; {share:.0%} of the row's cost")))
    ratio = float("nan")
    if cinder:
        ratio = median[targets[-1][0]] / median["ours (head)"]
        lines.append(("row cost", "SQLite: ours (0006) / ours (head) as a share of Cinder's rate",
                      f"{median[targets[-1][0]] / ref:.2f} / {ratio:.2f}"))
    return lines, ratio


# --- main ------------------------------------------------------------------------------


def profile(admin_url: str, workdir: Path, n: int, repeat: int
            ) -> tuple[list[Line], dict[str, float]]:
    """Both engines' profiles as bench/run.py's lines, and ours (head) / Cinder's rate."""
    pg_lines, pg_ratio = pg_profile(admin_url, workdir, n, repeat)
    lite_lines, lite_ratio = sqlite_profile(workdir, n, repeat)
    return pg_lines + lite_lines, {"postgresql": pg_ratio, "sqlite": lite_ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgresql", help="an admin URL of a running server (default: a "
                        "throwaway cluster of its own)")
    options = parser.parse_args()
    ensure_cinder()
    workdir = Path(tempfile.mkdtemp(prefix="um-rowcost-"))
    with contextlib.ExitStack() as stack:
        admin_url = options.postgresql or stack.enter_context(servers.postgresql_server())
        lines, _ = profile(admin_url, workdir, options.rows, options.repeat)
        for section, measure, value in lines:
            print(f"| {section} | {measure} | {value} |", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
