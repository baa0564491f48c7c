"""Zaqar figures, against the suite's throwaway Zaqar 23 (gunicorn, Redis) and PostgreSQL.

    .venv/bin/python bench/zaqar.py [--calls 10000] [--messages 20000] [--projects 1000]

`make bench` (bench/run.py) calls these functions beside the bus's figures, in the
same run, on the same PostgreSQL, with the same message count; run alone, this
script prints them.

1. ``Messenger.create()`` with the zaqar sink, on the caller's thread: p50 / p99 /
   max over ``--calls`` calls, file spool, with Zaqar up (the forwarder posting
   all along, two ``usermessages zaqar-collector`` processes draining the queue
   meanwhile, as the bus's figure has two collectors storing) and stopped;
2. two ``usermessages zaqar-collector`` processes draining ``--messages``
   envelopes pre-posted over ``--projects`` project queues into PostgreSQL, from
   the first stored row to the last (as the bus's "2 collectors draining"), the
   queues' depth afterwards, and the CPU seconds each part spent per 1,000
   messages (Zaqar's gunicorn and Redis, the collectors, PostgreSQL);
3. where one collector's time goes (in this process): claim round trips,
   deletes, the store's transactions;
4. what Zaqar itself spends (gunicorn and Redis CPU) per message on each call
   the collector and the sink make, one client, one call at a time: a post of
   200, a claim of 20, a delete of 20 under their claim.

Nothing here is a test: the figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import event  # noqa: E402

from tests.harness import servers  # noqa: E402
from tests.harness.zaqar import Zaqar, zaqar_server  # noqa: E402
from usermessages import Action, Detail, Messenger, RequestContext  # noqa: E402
from usermessages.message import Message  # noqa: E402
from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import migrate  # noqa: E402
from usermessages.zaqar.client import ZaqarClient, ZaqarError  # noqa: E402
from usermessages.zaqar.collector import ZaqarCollector  # noqa: E402
from usermessages.zaqar.layout import Layout  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- measuring ----------------------------------------------------------------


class Cpu:
    """CPU seconds (user + system) of process trees, the reaped children included."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids

    def seconds(self) -> float:
        total = 0
        seen: set[int] = set()
        todo = list(self.pids)
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, IndexError):  # gone meanwhile
                continue
        return total / CLOCK_TICKS


def postmaster(url: str) -> int:
    """The PostgreSQL server's pid (the parent of a backend), to count its CPU."""
    with psycopg.connect(url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- the messages ---------------------------------------------------------------


def built(count: int, projects: list[str]) -> dict[str, list[bytes]]:
    """``count`` envelopes as the SDK builds them, round-robin over ``projects``."""
    by_project: dict[str, list[bytes]] = {p: [] for p in projects}

    class Keep:
        def deliver(self, message: Message) -> None:
            by_project[message.project_id or ""].append(message.to_wire())

        def close(self) -> None:
            pass

    messenger = Messenger(Keep())
    for n in range(count):
        messenger.create(RequestContext(project_id=projects[n % len(projects)], user_id="u"),
                         Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=str(uuid.uuid4()),
                         detail=Detail.NO_BACKEND_AVAILABLE)
    return by_project


def prepost(url: str, layout: Layout, by_project: dict[str, list[bytes]]) -> None:
    """Post them as the sink does (200 a post), before any collector starts.

    A post Zaqar fails for now (a 503 when Redis is slow on a loaded machine) is
    posted again, as the sink would.
    """
    with ZaqarClient(url, timeout=30) as client:
        for project, bodies in by_project.items():
            for start in range(0, len(bodies), 200):
                for attempt in range(5):
                    try:
                        client.post_encoded(project, layout.queue, bodies[start:start + 200],
                                            3600)
                        break
                    except ZaqarError as exc:
                        if exc.permanent or attempt == 4:
                            raise
                        time.sleep(0.5 * 2 ** attempt)


def depth(url: str, layout: Layout, projects: list[str]) -> int:
    """Messages left in the projects' queues, claimed or not (Zaqar's queue stats)."""
    left = 0
    with httpx.Client(base_url=url, headers={"Client-ID": str(uuid.uuid4())},
                      timeout=30) as http:
        for project in projects:
            stats = http.get(f"/v2/queues/{layout.queue}/stats",
                             headers={"X-Project-ID": project}).json()
            left += stats["messages"]["total"]
    return left


def stored_rows(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM messages").fetchone()[0]  # type: ignore[index]


@contextlib.contextmanager
def zaqar_collectors(zaqar: Zaqar, db_url: str, layout: Layout, projects: list[str],
                     count: int, workdir: Path) -> Iterator[list[subprocess.Popen]]:
    """``count`` `usermessages zaqar-collector` processes with the default settings.

    They are told the projects (``[zaqar] projects``) rather than left to find them
    on the index: each would otherwise wait for its next refresh to learn the
    projects the other claimed the announcements of.
    """
    conf = workdir / f"zaqar-collector-{uuid.uuid4().hex[:6]}.conf"
    conf.write_text(f"[zaqar]\nqueue = {layout.queue}\nadmin_project = {layout.admin_project}\n"
                    f"index_queue =\nprojects = {','.join(projects)}\n")
    args = [sys.executable, "-m", "usermessages.cli.main", "zaqar-collector", "--zaqar",
            zaqar.url, "--db", db_url, "--config", str(conf)]
    with contextlib.ExitStack() as stack:
        started = []
        for k in range(count):
            log = stack.enter_context(open(workdir / f"zaqar-collector-{k}.log", "ab"))
            started.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        try:
            yield started
        finally:
            for process in started:
                process.terminate()  # SIGTERM: the last round's deletes finish first
            for process in started:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- 2. draining ----------------------------------------------------------------


@dataclass
class Drain:
    messages: int
    projects: int
    rate: float  # msg/s, first stored row to last
    start: float  # s before the first row
    depth: int  # messages left in the queues afterwards
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per 1,000 messages


def drain(zaqar: Zaqar, db_url: str, count: int, projects: int, workdir: Path,
          collectors: int = 2) -> Drain:
    """Two collector processes draining ``count`` pre-posted messages into ``db_url``."""
    tag = uuid.uuid4().hex[:8]
    layout = Layout(queue=f"bench_{tag}", admin_project=f"admin_{tag}", index_queue="")
    names = [f"{n:08x}{tag}" for n in range(projects)]
    prepost(zaqar.url, layout, built(count, names))
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    parts = {"Zaqar (gunicorn + Redis)": Cpu(*zaqar.pids()),
             "PostgreSQL": Cpu(postmaster(db_url))}
    started = time.perf_counter()
    with psycopg.connect(db_url, autocommit=True) as conn, \
            zaqar_collectors(zaqar, db_url, layout, names, collectors, workdir) as processes:
        parts["zaqar-collectors"] = Cpu(*(p.pid for p in processes))
        while (first := stored_rows(conn)) == 0:
            time.sleep(0.005)
        flowing = time.perf_counter()
        before = {name: cpu.seconds() for name, cpu in parts.items()}
        while (rows := stored_rows(conn)) < count:
            if time.perf_counter() - flowing > 900:
                raise RuntimeError(f"the Zaqar collectors stored {rows} of {count}")
            time.sleep(0.02)
        elapsed = time.perf_counter() - flowing
        spent = {name: cpu.seconds() - before[name] for name, cpu in parts.items()}
    return Drain(count, projects, max(count - first, 1) / elapsed, flowing - started,
                 depth(zaqar.url, layout, names),
                 {name: seconds * 1000 / max(count - first, 1) for name, seconds in spent.items()})


# --- 3. where a collector's time goes ------------------------------------------------


@dataclass
class Timer:
    calls: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        with self.lock:
            self.calls += 1
            self.seconds += seconds


@contextlib.contextmanager
def timed_client() -> Iterator[dict[str, Timer]]:
    """Time ZaqarClient.claim and .delete, whoever calls them, while in the block."""
    timers = {"claim": Timer(), "delete": Timer()}
    saved = {name: getattr(ZaqarClient, name) for name in timers}

    def timing(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return saved[name](*args, **kwargs)
            finally:
                timers[name].add(time.perf_counter() - started)
        return call

    for name in timers:
        setattr(ZaqarClient, name, timing(name))
    try:
        yield timers
    finally:
        for name, method in saved.items():
            setattr(ZaqarClient, name, method)


def breakdown(zaqar: Zaqar, db_url: str, count: int, projects: int) -> dict[str, Any]:
    """One collector (4 projects claimed in parallel, batches of 500) in this process."""
    tag = uuid.uuid4().hex[:8]
    layout = Layout(queue=f"bench_{tag}", admin_project=f"admin_{tag}", index_queue="")
    names = [f"{n:08x}{tag}" for n in range(projects)]
    prepost(zaqar.url, layout, built(count, names))
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    transactions = Timer()  # the store's: begin to commit
    opened: dict[int, float] = {}

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        opened[id(conn)] = time.perf_counter()

    @event.listens_for(engine, "commit")
    def _commit(conn):  # type: ignore[no-untyped-def]
        transactions.add(time.perf_counter() - opened.pop(id(conn)))

    @event.listens_for(engine, "rollback")
    def _rollback(conn):  # type: ignore[no-untyped-def]
        opened.pop(id(conn), None)

    with timed_client() as timers:
        collector = ZaqarCollector(zaqar.url, engine, ttl=3600, layout=layout,
                                   projects=tuple(names), batch_size=500, timeout=30)
        cpu = time.process_time()
        started = time.perf_counter()
        while collector.stats.stored < count and time.perf_counter() - started < 900:
            collector.collect_once()
        collector.close()  # waits for the last deletes
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    engine.dispose()
    return {"rate": collector.stats.stored / elapsed, "rounds": collector.stats.rounds,
            "elapsed": elapsed, "claims": timers["claim"], "deletes": timers["delete"],
            "store": transactions, "collector_cpu_per_1000": cpu * 1000 / count,
            "deleted": collector.stats.deleted, "depth": depth(zaqar.url, layout, names)}


# --- 4. what Zaqar spends per call -----------------------------------------------------


def call_costs(zaqar: Zaqar, count: int = 4000) -> dict[str, tuple[float, float]]:
    """Per message, for each call: (wall µs, Zaqar's CPU µs), one call at a time.

    The claims and deletes go to ``count / 20`` queues of 20 messages each, so no
    claim scans past messages claimed before it (see docs/zaqar.md).
    """
    project = f"cost{uuid.uuid4().hex[:8]}"
    body = built(1, [project])[project][0]
    queues = [f"costs{n}" for n in range(count // 20)]
    server = Cpu(*zaqar.pids())
    costs: dict[str, tuple[float, float]] = {}

    def measure(name: str, step: Callable[[], Any]) -> Any:
        cpu, started = server.seconds(), time.perf_counter()
        result = step()
        costs[name] = ((time.perf_counter() - started) * 1e6 / count,
                       (server.seconds() - cpu) * 1e6 / count)
        return result

    with ZaqarClient(zaqar.url, timeout=30) as client:
        measure("post, 200 a post", lambda: [
            client.post_encoded(project, "costs", [body] * 200, 3600)
            for _ in range(count // 200)])
        for queue in queues:
            client.post_encoded(project, queue, [body] * 20, 3600)
        claims = measure("claim, 20 a claim", lambda: [
            (queue, client.claim(project, queue, ttl=60, grace=60)) for queue in queues])
        measure("delete, 20 a delete", lambda: [
            client.delete(project, queue, [m.id for m in claim.messages], claim.id)
            for queue, claim in claims if claim])
    return costs


# --- 1. create() on the caller's thread ------------------------------------------------


def timed_creates(messenger: Messenger, calls: int,
                  project: str) -> tuple[list[float], list[float]]:
    """``calls`` create() calls: each one's wall time, and that time less the calling
    thread's run-queue wait (Linux schedstat): what the call itself cost, CPU and
    waits on a lock, the GIL or the disk, without the time the machine's other work
    kept it off a core."""
    context = RequestContext(project_id=project, user_id="u")
    walls, own = [], []
    path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
    with open(path, "rb") as schedstat:

        def runqueue() -> int:
            schedstat.seek(0)
            return int(schedstat.read().split()[1])  # nanoseconds runnable, not running

        for _ in range(calls):
            waited = runqueue()
            started = time.perf_counter()
            messenger.create(context, Action.ATTACH_VOLUME, resource_uuid=str(uuid.uuid4()),
                             detail=Detail.ATTACH_ERROR)
            wall = time.perf_counter() - started
            walls.append(wall)
            own.append(max(0.0, wall - (runqueue() - waited) / 1e9))
    return walls, own


def create_latency(zaqar: Zaqar, calls: int, workdir: Path, *, up: bool,
                   db_url: str | None = None) -> tuple[list[float], list[float], int]:
    """create() timings (see ``timed_creates``) with Zaqar up (the forwarder posting all
    along; two collectors draining the queue meanwhile when ``db_url`` is given) or
    stopped, and how many messages the spool still held when the calls ended."""
    tag = uuid.uuid4().hex[:8]
    layout = Layout(queue=f"bench_{tag}", admin_project=f"admin_{tag}", index_queue="")
    project = f"p{tag}"
    with contextlib.ExitStack() as stack:
        if up and db_url:
            engine = store_engine.connect(db_url)
            migrate.upgrade(engine)
            engine.dispose()
            stack.enter_context(zaqar_collectors(zaqar, db_url, layout, [project], 2, workdir))
        elif not up:
            zaqar.stop()
            stack.callback(zaqar.start)
        messenger = Messenger.from_url(zaqar.url, sink="zaqar", timeout=1.0,
                                       spool_path=str(workdir / f"spool-{tag}.sqlite"),
                                       zaqar_options={"layout": layout})
        times, own = timed_creates(messenger, calls, project)
        pending = messenger.sink.pending()  # type: ignore[attr-defined]
        if up:
            assert messenger.flush(120) == 0
        messenger.close(timeout=1.0)
    return times, own, pending


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--projects", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="um-bench-zaqar-") as tmp, \
            servers.postgresql_server() as admin_url, zaqar_server() as zaqar:
        workdir = Path(tmp)

        def fresh() -> str:
            return servers.create_database(admin_url, f"z{uuid.uuid4().hex[:10]}")

        for state, up, db_url in (("up", True, None),
                                  ("up, 2 zaqar-collectors draining", True, fresh()),
                                  ("down", False, None)):
            times, own, pending = create_latency(zaqar, args.calls, workdir, up=up,
                                                 db_url=db_url)
            print(f"create() with Zaqar {state}: p50 / p99 / max {ms(statistics.median(times))}"
                  f" / {ms(pct(times, 99))} / {ms(max(times))}; less the run-queue wait: p99 "
                  f"{ms(pct(own, 99))} ({pending} in the spool at the end; load "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        figures = drain(zaqar, fresh(), args.messages, args.projects, workdir)
        print(f"2 zaqar-collectors draining {figures.messages:,} messages over "
              f"{figures.projects:,} queues: {figures.rate:,.0f} msg/s ({figures.start:.1f} s "
              f"to start), {figures.depth} left in the queues; CPU s per 1,000: "
              + ", ".join(f"{k} {v:.3f}" for k, v in figures.cpu.items()), flush=True)
        print_breakdown(breakdown(zaqar, fresh(), args.messages, args.projects))
        print("Zaqar per message, one call at a time (wall / Zaqar's CPU): " + ", ".join(
            f"{name} {wall:.0f} / {cpu:.0f} µs" for name, (wall, cpu) in call_costs(zaqar).items()))


def print_breakdown(b: dict[str, Any]) -> None:
    claims, deletes, store = b["claims"], b["deletes"], b["store"]
    print(f"1 collector in process: {b['rate']:,.0f} msg/s, {b['rounds']} rounds in "
          f"{b['elapsed']:.1f} s; {claims.calls} claims {1000 * claims.seconds / claims.calls:.1f}"
          f" ms each ({claims.seconds:.1f} s over 4 threads), {deletes.calls} deletes "
          f"{1000 * deletes.seconds / deletes.calls:.1f} ms each ({deletes.seconds:.1f} s), "
          f"{store.calls} store transactions {store.seconds:.1f} s; collector CPU "
          f"{b['collector_cpu_per_1000']:.3f} s per 1,000; {b['depth']} left", flush=True)


if __name__ == "__main__":
    main()
