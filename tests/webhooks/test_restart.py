"""At least once across a crash: SIGKILL the deliverer mid-delivery, start it again."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from standardwebhooks import Webhook

from tests.api.conftest import headers
from tests.api.conftest import row as _row
from tests.webhooks.receiver import receiver
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import writer


def row(project: str | None, **fields: object) -> dict:
    """A message as the API tests seed it, but far from expiry (BASE_TIME is in the past:
    a server's reaper would delete a row that expired)."""
    return _row(project, expires_in=dt.timedelta(days=3650), **fields)  # type: ignore[arg-type]


P1 = "a1a1"
COUNT = 40


def _deliverer(db_url: str, config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "usermessages.cli.main", "webhook-deliverer", "--db", db_url,
         "--config", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_a_killed_deliverer_loses_nothing(postgresql_url: str, engine_pg: Engine,
                                          tmp_path: Path) -> None:
    config = tmp_path / "usermessages.conf"
    config.write_text("[webhooks]\nallowed_cidrs = 127.0.0.0/8\ntimeout = 2\n"
                      "retry_base = 0.1\npoll_interval = 0.1\n")
    log = tmp_path / "deliverer.log"
    settings = Settings(database_connection=postgresql_url, webhooks_allowed_cidrs="127.0.0.0/8")
    with receiver() as hook, TestClient(create_app(settings, engine=engine_pg)) as client:
        hook.hold_at = 5  # the sixth request waits: the kill lands mid-delivery
        sub = client.post(f"/v3/{P1}/messages-ext/webhooks", json={"webhook": {"url": hook.url}},
                          headers=headers("u", P1)).json()["webhook"]
        rows = [row(P1, minutes=i) for i in range(COUNT)]
        with engine_pg.begin() as conn:
            writer.insert(conn, rows)
        first = _deliverer(postgresql_url, config, log)
        try:
            assert hook.holding.wait(60), log.read_text()
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        # The receiver takes the message the dead deliverer sent: it never heard the 2xx.
        hook.release.set()
        hook.wait_for(lambda got: len(got) == 6)
        second = _deliverer(postgresql_url, config, log)
        try:
            # Its lease lapses (2 x timeout + 5 s), then the second one carries on.
            hook.wait_for(lambda got: {json.loads(r.body)["data"]["message"]["id"]
                                       for r in got} >= {r["id"] for r in rows}, timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0, log.read_text()
    verifier = Webhook(sub["secret"])
    delivered = [verifier.verify(r.body, r.headers)["data"]["message"]["id"]
                 for r in hook.received]
    assert set(delivered) == {r["id"] for r in rows}  # none missing
    # In stored order, each once, but the one in flight when killed: sent again.
    assert len(delivered) == COUNT + 1
    assert delivered[5] == delivered[6] == rows[5]["id"]
    assert list(dict.fromkeys(delivered)) == [r["id"] for r in rows]
    # A duplicate carries the same webhook-id: the receiver can drop it.
    ids = [r.headers["webhook-id"] for r in hook.received]
    assert len(set(ids)) == COUNT


def test_deliverers_running_together_send_each_message_once_in_order(
        postgresql_url: str, engine_pg: Engine) -> None:
    """Several deliverers share the subscriptions through their leases: none is served
    twice at once, so (no crash) each receiver gets each message once, in stored order."""
    import threading

    from usermessages.webhooks.deliverer import Deliverer

    settings = Settings(database_connection=postgresql_url, webhooks_allowed_cidrs="127.0.0.0/8",
                        webhooks_poll_interval=0.05)
    projects = ["a1a1", "b2b2", "c3c3"]
    with receiver() as hook, TestClient(create_app(settings, engine=engine_pg)) as client:
        subs = {p: client.post(f"/v3/{p}/messages-ext/webhooks",
                               json={"webhook": {"url": f"{hook.url}?p={p}"}},
                               headers=headers("u", p)).json()["webhook"] for p in projects}
        stop = threading.Event()
        threads = [threading.Thread(target=Deliverer(settings, engine_pg).run, args=(stop,))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            stored: list[dict] = []
            for i in range(15):  # stored while the deliverers run
                batch = [row(p, minutes=i) for p in projects]
                with engine_pg.begin() as conn:
                    writer.insert(conn, batch)
                stored += batch
            hook.wait_for(lambda got: len(got) >= len(stored))
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    by_project: dict[str, list[str]] = {p: [] for p in projects}
    for got in hook.received:
        message = json.loads(got.body)["data"]["message"]
        project = next(p for p in projects if message["links"][0]["href"].count(f"/{p}/"))
        Webhook(subs[project]["secret"]).verify(got.body, got.headers)
        by_project[project].append(message["id"])
    for project in projects:
        assert by_project[project] == [r["id"] for r in stored if r["project_id"] == project]
