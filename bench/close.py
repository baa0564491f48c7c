"""What Messenger.close() delivers, and how long it takes, broker up and broker down.

    .venv/bin/python bench/close.py [N]

Broker up: a throwaway RabbitMQ and PostgreSQL, one `usermessages collector`
process, N create() on an amqp:// messenger with the default in-memory spool,
then close(); prints close()'s duration and return value and how many rows
were stored once the collector settles. Broker down (nothing listens on the
port): N create() then close(timeout=2), with an in-memory and a file spool.
Nothing here is a test: the promises are asserted in tests/reliability.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from tests.harness import servers  # noqa: E402  (the same throwaway servers the tests use)
from usermessages import Action, Detail, Messenger, RequestContext  # noqa: E402
from usermessages.sinks.spool import Spool  # noqa: E402
from usermessages.store import engine as store_engine  # noqa: E402
from usermessages.store import migrate  # noqa: E402


def create(messenger: Messenger, n: int) -> None:
    for i in range(n):
        messenger.create(RequestContext(project_id="p1", request_id=f"req-{i}"),
                         Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)


def broker_up(n: int, workdir: Path) -> None:
    with servers.rabbitmq_server() as url, servers.postgresql_server() as admin:
        db = servers.create_database(admin, "close_bench")
        engine = store_engine.connect(db)
        migrate.upgrade(engine)
        with open(workdir / "collector.log", "wb") as log:
            collector = subprocess.Popen(
                [sys.executable, "-m", "usermessages.cli.main", "collector", "--bus", url,
                 "--db", db], stdout=log, stderr=subprocess.STDOUT)
            try:
                messenger = Messenger.from_url(url)
                create(messenger, n)
                started = time.perf_counter()
                lost = messenger.close()
                took = time.perf_counter() - started
                stored, stable = -1, 0
                deadline = time.monotonic() + 120
                while stable < 3 and time.monotonic() < deadline:  # settled: 3 equal counts
                    with engine.connect() as conn:
                        now = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
                    stable, stored = (stable + 1 if now == stored else 0), now
                    time.sleep(1)
            finally:
                collector.terminate()
                collector.wait(30)
        print(f"broker up, in-memory spool: {n} create(), close() took {took:.2f} s, "
              f"returned {lost}; stored {stored} of {n}")


def broker_down(n: int, workdir: Path) -> None:
    for spool in ("memory", "file"):
        path = workdir / f"spool-{spool}.sqlite"
        url = f"amqp://guest:guest@127.0.0.1:{servers.free_port()}//"  # nothing listens
        messenger = Messenger.from_url(url, spool_path=str(path) if spool == "file" else None,
                                       timeout=0.5)
        create(messenger, n)
        started = time.perf_counter()
        lost = messenger.close(timeout=2.0)
        took = time.perf_counter() - started
        kept = len(Spool(path)) if spool == "file" else 0
        print(f"broker down, {spool} spool: close(timeout=2.0) took {took:.2f} s, "
              f"returned lost={lost}; stats.lost={messenger.stats.lost}; kept in the file={kept}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        broker_up(count, Path(tmp))
        broker_down(count, Path(tmp))
