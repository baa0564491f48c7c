"""Zaqar figures for docs/zaqar.md, against the suite's throwaway Zaqar and PostgreSQL.

    .venv/bin/python bench/zaqar.py [--calls 5000] [--messages 10000] [--projects 10]

1. ``Messenger.create()`` with the zaqar sink while Zaqar is stopped (connection
   refused), spool in a SQLite file: p50 / p99 / max over ``--calls`` calls;
2. messages per second from Zaqar into PostgreSQL: ``--messages`` envelopes
   pre-posted over ``--projects`` project queues, drained by one ZaqarCollector
   (claim 20 at a time, insert in batches of 500, then bulk-delete), timed from
   its first claim to the last delete.

Nothing here is a test: the figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import servers  # noqa: E402
from tests.zaqar_server import zaqar_server  # noqa: E402
from usermessages import Action, Detail, Messenger, RequestContext  # noqa: E402
from usermessages.spool import Spool  # noqa: E402
from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import migrate  # noqa: E402
from usermessages.zaqar.sink import Layout, ZaqarSink  # noqa: E402
from usermessages.zaqar.source import ZaqarCollector  # noqa: E402


def _create(messenger: Messenger, project: str) -> None:
    messenger.create(RequestContext(project_id=project, user_id="u", request_id="r"),
                     Action.SCHEDULE_ALLOCATE_VOLUME, detail=Detail.NO_BACKEND_AVAILABLE)


def create_while_down(zaqar, calls: int, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    sink = ZaqarSink(zaqar.url, Spool(workdir / "spool.sqlite"), ttl=3600,
                     layout=Layout(queue="bench_down"), timeout=2.0)
    messenger = Messenger(sink)
    zaqar.stop()
    timings = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            _create(messenger, "bench-down")
            timings.append(time.perf_counter() - started)
    finally:
        zaqar.start()
    replay = time.perf_counter()
    assert sink.flush(300)
    replay = time.perf_counter() - replay
    messenger.close()
    timings.sort()
    ms = [t * 1000 for t in timings]
    print(f"create() with Zaqar down, {calls} calls: p50 {statistics.median(ms):.3f} ms, "
          f"p99 {ms[int(calls * 0.99) - 1]:.3f} ms, max {ms[-1]:.3f} ms; "
          f"stats {sink.stats}; replayed in {replay:.1f} s after Zaqar came back")


def drain_into_postgresql(zaqar, messages: int, projects: int,  # type: ignore[no-untyped-def]
                          workdir: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    layout = Layout(queue=f"bench_{tag}", admin_project=f"admin_{tag}", index_queue="")
    names = [f"p{n}-{tag}" for n in range(projects)]
    sink = ZaqarSink(zaqar.url, Spool(None, messages + 1), ttl=3600, layout=layout, timeout=10)
    messenger = Messenger(sink)
    for n in range(messages):
        _create(messenger, names[n % projects])
    assert sink.flush(600)
    messenger.close()
    print(f"posted {messages} messages: {sink.stats}")
    with servers.postgresql_server() as url:
        engine = store_engine.connect(url)
        migrate.upgrade(engine)
        collector = ZaqarCollector(zaqar.url, engine, ttl=3600, layout=layout,
                                   projects=tuple(names), batch_size=500, timeout=10)
        started = time.perf_counter()
        empty = 0  # rounds that claimed nothing before the end (should stay 0)
        while collector.stats.stored < messages and time.perf_counter() - started < 300:
            empty += not collector.collect_once()
        elapsed = time.perf_counter() - started
        collector.close()
        engine.dispose()
    print(f"Zaqar -> PostgreSQL, {messages} messages over {projects} projects: "
          f"{collector.stats.stored} stored in {elapsed:.2f} s = "
          f"{collector.stats.stored / elapsed:,.0f} msg/s ({collector.stats.rounds} rounds, "
          f"{empty} empty)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--projects", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="um-bench-zaqar-") as tmp, zaqar_server() as zaqar:
        create_while_down(zaqar, args.calls, Path(tmp))
        drain_into_postgresql(zaqar, args.messages, args.projects, Path(tmp))


if __name__ == "__main__":
    main()
