"""A slow receiver delays only its own webhook.

Another project's delivery latency (stored to received) is measured quiet, then beside
two receivers of each bad kind in other projects (trickling, hanging, sleeping 30 s,
answering 10 GB), then beside all eight at once (six failing subscriptions, more than
the workers), then beside as many receivers as workers that answer 2xx, but after
1.5 s. Each figure stays within one second of the quiet one, on the deliverer
inside `usermessages serve` and on two `usermessages webhook-deliverer` processes
sharing a PostgreSQL store. ``pytest -s`` prints the figures docs/webhooks.md quotes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from tests.api.conftest import row as _row
from tests.harness import servers
from tests.webhooks.bad_receivers import FAILING, KINDS, BadReceiver, bad_receiver
from tests.webhooks.receiver import Receiver, receiver
from usermessages.config import Settings
from usermessages.store import engine as store_engine
from usermessages.store import webhooks as store_webhooks
from usermessages.store import writer
from usermessages.webhooks import subscriptions

TIMEOUT = 2.0
STEPS = 12
ALLOWANCE = 1.0  # seconds over the quiet figure another project may see
QUIET = "a0a0"  # the project whose latency is measured


def row(project: str) -> dict:
    return _row(project, expires_in=dt.timedelta(days=3650))


def _config(tmp_path: Path, workers: int) -> Path:
    path = tmp_path / "usermessages.conf"
    path.write_text(
        f"[webhooks]\nallowed_cidrs = 127.0.0.0/8\ntimeout = {TIMEOUT:g}\nworkers = {workers}\n"
        "poll_interval = 0.1\n"
        # The worst neighbours: tried again at once, never disabled.
        "retry_base = 0.1\nretry_max = 0.2\ndisable_after_failures = 1000000\n")
    return path


def _subscribe(engine: Engine, project: str, url: str) -> str:
    settings = Settings(webhooks_allowed_cidrs="127.0.0.0/8")
    webhook, _ = subscriptions.register(settings, engine, project, "u", {"url": url})
    return webhook["id"]


class Tenant:
    """The quiet project: its receiver, and the ids of the messages stored for it."""

    def __init__(self, engine: Engine, hook: Receiver) -> None:
        self.engine, self.hook = engine, hook
        self.sent: list[str] = []
        _subscribe(engine, QUIET, hook.url)
        # One delivery before any figure: the deliverers are up and connected.
        self.sent.append(row(QUIET)["id"])
        with engine.begin() as conn:
            writer.insert(conn, [{**row(QUIET), "id": self.sent[0]}])
        hook.wait_for(lambda got: len(got) == 1, timeout=60)

    def latencies(self, neighbours: list[str], bad: list[BadReceiver]) -> tuple[list[float],
                                                                                 int]:
        """STEPS messages to the quiet project, one at a time, each stored with one for
        each neighbour: how long each took to arrive, and in how many steps a failing
        neighbour's attempt was under way."""
        took, busy = [], 0
        for _ in range(STEPS):
            count = len(self.hook.received)
            busy += any(b.open for b in bad if b.kind in FAILING)
            mine = row(QUIET)
            began = time.monotonic()
            with self.engine.begin() as conn:
                writer.insert(conn, [mine, *(row(p) for p in neighbours)])
            self.sent.append(mine["id"])
            self.hook.wait_for(lambda got, count=count: len(got) > count, timeout=60)
            took.append(self.hook.received[count].at - began)
        return took, busy

    def beside(self, kinds: tuple[str, ...], copies: int, first: int,
               **options: float) -> list[float]:
        """The latencies beside ``copies`` bad receivers of each kind, each in a project
        of its own."""
        with contextlib.ExitStack() as stack:
            bad = [stack.enter_context(bad_receiver(kind, **options))
                   for kind in kinds for _ in range(copies)]
            projects = [f"b{first + i:03x}" for i in range(len(bad))]
            ids = [_subscribe(self.engine, p, b.url) for p, b in zip(projects, bad, strict=True)]
            with self.engine.begin() as conn:
                writer.insert(conn, [row(p) for p in projects])
            # Each bad receiver tried once: from now on the deliverer knows them for
            # what they are (a receiver is trusted until its first failed or slow attempt).
            deadline = time.monotonic() + 60
            while not all(self._tried(p, i) for p, i in zip(projects, ids, strict=True)):
                assert time.monotonic() < deadline, "the bad receivers were never tried"
                time.sleep(0.05)
            took, busy = self.latencies(projects, bad)
            if set(kinds) & set(FAILING):
                assert busy >= STEPS // 2, f"{kinds}: bad attempts under way in {busy} steps"
            with self.engine.begin() as conn:
                for project, webhook_id in zip(projects, ids, strict=True):
                    store_webhooks.remove(conn, project, webhook_id)
            for receiver_ in bad:  # the attempts under way end by their deadline
                receiver_.wait_idle(TIMEOUT + 30)
        return took

    def _tried(self, project: str, webhook_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(store_webhooks.deliveries(conn, project, webhook_id, 1))


# Name, the bad kinds beside the quiet project, how many receivers of each, their options.
PHASES: list[tuple[str, tuple[str, ...], int, dict[str, float]]] = [
    ("quiet", (), 0, {}),
    *((kind, (kind,), 2, {}) for kind in KINDS),
    ("all at once", KINDS, 2, {}),  # six failing subscriptions: more than the workers
    # Never failing, only slow: as many receivers answering in 1.5 s as the workers.
    ("answer 1.5 s", ("slow",), 4, {"sleep": 1.5}),
]


def _measure(shape: str, engine: Engine, hook: Receiver) -> None:
    tenant = Tenant(engine, hook)
    print(f"\nanother project's webhook latency, {shape} (s): median / max of {STEPS}")
    quiet: list[float] = []
    for i, (name, kinds, copies, options) in enumerate(PHASES):
        took = (tenant.beside(kinds, copies, first=16 * i, **options) if kinds
                else tenant.latencies([], [])[0])
        quiet = quiet or took
        print(f"  {name:<12} {statistics.median(took):.3f} / {max(took):.3f}")
        assert max(took) <= max(quiet) + ALLOWANCE, (name, took, quiet)
    # Each of its messages once, in stored order.
    got = [json.loads(r.body)["data"]["message"]["id"] for r in hook.received]
    assert got == tenant.sent


def test_on_the_deliverer_inside_serve(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/um.sqlite"
    config = _config(tmp_path, workers=4)
    with receiver() as hook, servers.api_server(db_url, config_file=str(config)):
        engine = store_engine.connect(db_url)  # serve migrated it
        try:
            _measure("embedded in serve, 4 workers, SQLite", engine, hook)
        finally:
            engine.dispose()


@contextlib.contextmanager
def _deliverers(count: int, db_url: str, config: Path, log: Path) -> Iterator[None]:
    processes = [subprocess.Popen(
        [sys.executable, "-m", "usermessages.cli.main", "webhook-deliverer", "--db", db_url,
         "--config", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT)
        for _ in range(count)]
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("webhook deliverer on") < count:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in processes]
        assert codes == [0] * count, log.read_text()


def test_on_several_deliverer_processes(postgresql_url: str, engine_pg: Engine,
                                        tmp_path: Path) -> None:
    config = _config(tmp_path, workers=2)
    with receiver() as hook, _deliverers(2, postgresql_url, config, tmp_path / "log"):
        _measure("2 webhook-deliverer processes, 2 workers each, PostgreSQL", engine_pg, hook)
