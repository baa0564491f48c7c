"""Order per subscription holds under the pool, across several deliverer processes.

Three `usermessages webhook-deliverer` processes of four workers each share eight
subscriptions on PostgreSQL; the receiver answers late or 503 at random. Each
subscription is never sent two messages at once, and its receiver takes each
message once, in stored order, while the subscriptions are served in parallel.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import Engine
from standardwebhooks import Webhook

from tests.api.conftest import row as _row
from tests.webhooks.receiver import receiver
from usermessages.config import Settings
from usermessages.store import writer
from usermessages.webhooks import subscriptions

PROJECTS = [f"c{i:03x}" for i in range(8)]
PER_PROJECT = 25


def test_each_subscription_in_order_once_with_the_pool_across_processes(
        postgresql_url: str, engine_pg: Engine, tmp_path: Path) -> None:
    config = tmp_path / "usermessages.conf"
    config.write_text("[webhooks]\nallowed_cidrs = 127.0.0.0/8\ntimeout = 2\nworkers = 4\n"
                      "poll_interval = 0.05\nretry_base = 0.05\nretry_max = 0.1\n"
                      "disable_after_failures = 1000000\n")
    log = tmp_path / "deliverers.log"
    chance = random.Random(21)
    lock = threading.Lock()

    def plan(number: int) -> tuple[int, float]:
        with lock:  # a 503 one time in five, answers up to 30 ms late
            return (503 if chance.random() < 0.2 else 204), chance.uniform(0, 0.03)

    settings = Settings(webhooks_allowed_cidrs="127.0.0.0/8")
    with receiver() as hook:
        hook.plan = plan
        secrets = {p: subscriptions.register(settings, engine_pg, p, "u",
                                             {"url": f"{hook.url}?p={p}"})[1]
                   for p in PROJECTS}
        processes = [subprocess.Popen(
            [sys.executable, "-m", "usermessages.cli.main", "webhook-deliverer", "--db",
             postgresql_url, "--config", str(config)], stdout=log.open("ab"),
            stderr=subprocess.STDOUT) for _ in range(3)]
        try:
            stored: dict[str, list[str]] = {p: [] for p in PROJECTS}
            for _ in range(PER_PROJECT):  # stored while the deliverers run
                rows = [_row(p, expires_in=dt.timedelta(days=3650)) for p in PROJECTS]
                with engine_pg.begin() as conn:
                    writer.insert(conn, rows)
                for message in rows:
                    stored[message["project_id"]].append(message["id"])
            hook.wait_for(lambda got: len(got) >= len(PROJECTS) * PER_PROJECT, timeout=120)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            assert [p.wait(timeout=60) for p in processes] == [0, 0, 0], log.read_text()
    got: dict[str, list[str]] = {p: [] for p in PROJECTS}
    for received in hook.received:
        message = json.loads(received.body)["data"]["message"]
        project = message["links"][0]["href"].split("/v3/")[1].split("/")[0]
        Webhook(secrets[project]).verify(received.body, received.headers)
        got[project].append(message["id"])
    assert got == stored  # once each, in stored order
    assert hook.peak_per_path == 1  # never two at once to one subscription
    assert hook.peak >= 3, hook.peak  # but subscriptions in parallel
    assert hook.count > len(hook.received)  # and the 503s were retried
