"""The store's write path on its own, as two collectors drive it: rows per second.

    .venv/bin/python bench/write_path.py [--rows N] [--writers W] [--storm] [--sqlite]
                                         [--postgresql ADMIN_URL]

W processes (default 2, as two collectors) each write their share of N
messages (bench/workload.py: 1,000 projects, a fresh volume each) through
``Writer.write`` in the collector's default batches, series on, storm
control on with ``--storm`` (limits no batch reaches, so every row is
stored and every window is read and advanced). Prints one JSON line:
{"rows": N, "seconds": S, "rate": R}, timed from the moment every writer
is ready to the last commit.

For an A/B of two commits on a shared machine, run it from each checkout in
turn, pair by pair, against one running PostgreSQL (``--postgresql``), and
compare the rates of each pair: separate runs far apart vary more than the
code does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.synchronize
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.workload import records  # noqa: E402
from tests.harness import servers  # noqa: E402
from usermessages.config import Settings  # noqa: E402
from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import migrate, series  # noqa: E402
from usermessages.store.writer import Writer  # noqa: E402

# Limits no batch of this workload reaches: storm control reads and advances
# every window, and stores every row.
STORM = series.Storm(per_project=10**6, per_event=10**6, window=3600)


def _write(url: str, storm: bool, part: list, ready: multiprocessing.synchronize.Barrier,
           done: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    engine = store_engine.connect(url)
    writer = Writer(engine, series.Policy(storm=STORM if storm else series.Storm(0, 0)))
    batch = Settings().collector_batch_size
    writer.write(part[:1])  # connected, partitions made
    ready.wait()
    for start in range(1, len(part), batch):
        written = writer.write(part[start:start + batch])
        assert written.outage is None and not written.refused, written
    done.put(time.perf_counter())
    engine.dispose()


def run(url: str, rows: int, writers: int, storm: bool) -> dict[str, float]:
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    engine.dispose()
    messages = records(rows)
    ready = multiprocessing.Barrier(writers + 1)
    done: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=_write, args=(url, storm, messages[k::writers],
                                                          ready, done))
             for k in range(writers)]
    for proc in procs:
        proc.start()
    ready.wait()
    started = time.perf_counter()
    ended = max(done.get(timeout=600) for _ in procs)
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0
    # The first message of each part was written before the clock started.
    timed = rows - writers
    return {"rows": timed, "seconds": round(ended - started, 3),
            "rate": round(timed / (ended - started))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--storm", action="store_true")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--postgresql", help="an admin URL of a running server (default: a "
                        "throwaway cluster of its own)")
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if options.sqlite:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{folder}/write_path.sqlite"
        else:
            admin = options.postgresql or stack.enter_context(servers.postgresql_server())
            url = servers.create_database(admin, f"wp{uuid.uuid4().hex[:10]}")
        print(json.dumps(run(url, options.rows, options.writers, options.storm)), flush=True)


if __name__ == "__main__":
    main()
