"""Signed deliveries to a real local receiver, retries, disabling, the SSRF guard again."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from standardwebhooks import Webhook

from tests.api.conftest import headers
from tests.api.conftest import row as _row
from tests.webhooks.receiver import receiver
from usermessages.catalog import Level
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import writer
from usermessages.store.schema import webhooks
from usermessages.webhooks.deliverer import Deliverer

Make = Callable[[Settings, Engine], Deliverer]


def row(project: str | None, **fields: object) -> dict:
    """A message as the API tests seed it, but far from expiry (BASE_TIME is in the past:
    a server's reaper would delete a row that expired)."""
    return _row(project, expires_in=dt.timedelta(days=3650), **fields)  # type: ignore[arg-type]


P1, P2 = "a1a1", "b2b2"
LOCAL = "127.0.0.0/8"  # the receiver is local: the deployer allows loopback explicitly


def _settings(db_url: str, **changes: object) -> Settings:
    values: dict = {"webhooks_allowed_cidrs": LOCAL, "webhooks_retry_base": 0.05,
                    "webhooks_timeout": 2.0, **changes}
    return Settings(database_connection=db_url, **values)


def _subscribe(client: TestClient, project: str, url: str, **filters: str) -> dict:
    answer = client.post(f"/v3/{project}/messages-ext/webhooks",
                         json={"webhook": {"url": url, **filters}}, headers=headers("u", project))
    assert answer.status_code == 201, answer.text
    return answer.json()["webhook"]


def _store(engine: Engine, *rows: dict) -> list[dict]:
    with engine.begin() as conn:
        writer.insert(conn, list(rows))
    return list(rows)


def _deliver_until(deliverer: Deliverer, done, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "delivery did not happen in time"
        if not deliverer.pass_once():
            time.sleep(0.02)


def test_each_new_matching_message_is_posted_signed_once(db_url: str, engine: Engine,
                                                         make_deliverer: Make) -> None:
    # Links in payloads use the public endpoint, as the API's do behind a proxy.
    settings = _settings(db_url, public_endpoint="http://testserver")
    with receiver() as hook, TestClient(create_app(settings, engine=engine)) as client:
        _store(engine, row(P1))  # stored before the subscription: not sent
        sub = _subscribe(client, P1, hook.url, message_level="ERROR")
        assert sub["secret"].startswith("whsec_")
        wanted = _store(engine, row(P1, minutes=1), row(P1, minutes=2))
        _store(engine, row(P1, level=Level.WARNING.value), row(P2), row(P2))
        last = _store(engine, row(P1, minutes=3))
        wanted += last
        deliverer = make_deliverer(settings, engine)
        _deliver_until(deliverer, lambda: len(hook.received) >= 3)
        # Nothing else comes: a full extra pass sends nothing.
        deliverer.pass_once()
        assert len(hook.received) == 3

        verifier = Webhook(sub["secret"])  # an independent Standard Webhooks implementation
        ids = []
        for got in hook.received:
            payload = verifier.verify(got.body, got.headers)
            assert payload["type"] == "message.created"
            ids.append(payload["data"]["message"]["id"])
            # The message exactly as GET /messages/{id} shows it.
            shown = client.get(f"/v3/{P1}/messages/{ids[-1]}", headers=headers("u", P1))
            assert payload["data"]["message"] == shown.json()["message"]
            # A forged body fails verification.
            with pytest.raises(Exception, match="(?i)signature"):
                verifier.verify(got.body.replace(b"ERROR", b"INFO!"), got.headers)
        assert ids == [m["id"] for m in wanted]  # stored order, no other project's, filtered
        assert len({got.headers["webhook-id"] for got in hook.received}) == 3

        log = client.get(f"/v3/{P1}/messages-ext/webhooks/{sub['id']}/deliveries",
                         headers=headers("u", P1)).json()["deliveries"]
        assert [(d["status_code"], d["outcome"]) for d in log] == [(204, "delivered")] * 3
        assert set(log[0]) == {"message_id", "seq", "attempt", "status_code", "error",
                               "outcome", "created_at"}


def test_failures_back_off_then_disable_and_a_recovery_resets(db_url: str, engine: Engine,
                                                              make_deliverer: Make) -> None:
    settings = _settings(db_url, webhooks_disable_after_failures=4)
    with receiver() as hook, TestClient(create_app(settings, engine=engine)) as client:
        sub = _subscribe(client, P1, hook.url)
        first, second = _store(engine, row(P1), row(P1, minutes=1))
        deliverer = make_deliverer(settings, engine)
        hook.status = 503
        url = f"/v3/{P1}/messages-ext/webhooks/{sub['id']}"

        def failures() -> int:
            return client.get(url, headers=headers("u", P1)).json()["webhook"][
                "consecutive_failures"]

        _deliver_until(deliverer, lambda: failures() >= 2)
        # The receiver recovers: the same message is sent again, then the next.
        hook.status = 200
        _deliver_until(deliverer, lambda: len(hook.received) == 2)
        assert [json.loads(r.body)["data"]["message"]["id"] for r in hook.received] == [
            first["id"], second["id"]]
        assert failures() == 0
        log = client.get(url + "/deliveries", headers=headers("u", P1)).json()["deliveries"]
        outcomes = [(d["message_id"], d["attempt"], d["status_code"], d["outcome"])
                    for d in reversed(log)]
        assert outcomes[0] == (first["id"], 1, 503, "retry")
        assert outcomes[-2:] == [(first["id"], outcomes[-2][1], 200, "delivered"),
                                 (second["id"], 1, 200, "delivered")]
        # Delivered: no retry is scheduled any more.
        with engine.connect() as conn:
            assert conn.execute(select(webhooks.c.next_attempt_at)).scalar() is None

        # Persistent failure: disabled after 4 consecutive failures, nothing more is tried.
        hook.status = 500
        _store(engine, row(P1, minutes=2))
        deadline = time.monotonic() + 60
        while client.get(url, headers=headers("u", P1)).json()["webhook"]["enabled"]:
            assert time.monotonic() < deadline
            deliverer.pass_once() or time.sleep(0.02)
        shown = client.get(url, headers=headers("u", P1)).json()["webhook"]
        assert shown["consecutive_failures"] == 4
        assert "4 consecutive failed deliveries" in shown["disabled_reason"]
        log = client.get(url + "/deliveries", headers=headers("u", P1)).json()["deliveries"]
        assert [d["outcome"] for d in log[:4]] == ["failed", "retry", "retry", "retry"]
        assert not deliverer.pass_once()


def test_the_guard_runs_again_at_delivery(db_url: str, engine: Engine,
                                          make_deliverer: Make) -> None:
    """A URL allowed at registration but not any more (the rule changed, or the name now
    resolves elsewhere) is not called; the attempt is logged as refused."""
    with receiver() as hook, TestClient(create_app(_settings(db_url), engine=engine)) as client:
        sub = _subscribe(client, P1, hook.url)
        _store(engine, row(P1))
        strict = make_deliverer(Settings(database_connection=db_url, webhooks_retry_base=0.05),
                                engine)
        url = f"/v3/{P1}/messages-ext/webhooks/{sub['id']}/deliveries"
        deadline = time.monotonic() + 30
        while not client.get(url, headers=headers("u", P1)).json()["deliveries"]:
            assert time.monotonic() < deadline
            strict.pass_once()
        [attempt] = client.get(url, headers=headers("u", P1)).json()["deliveries"]
        assert (attempt["error"], attempt["status_code"]) == ("TargetRefused", None)
        assert hook.received == []


def test_redirects_are_not_followed(db_url: str, engine: Engine, make_deliverer: Make) -> None:
    settings = _settings(db_url)
    with receiver() as hook, receiver() as elsewhere, \
            TestClient(create_app(settings, engine=engine)) as client:
        sub = _subscribe(client, P1, hook.url)
        hook.status = 307
        _store(engine, row(P1))
        deliverer = make_deliverer(settings, engine)
        url = f"/v3/{P1}/messages-ext/webhooks/{sub['id']}/deliveries"
        deadline = time.monotonic() + 30
        while not client.get(url, headers=headers("u", P1)).json()["deliveries"]:
            assert time.monotonic() < deadline
            deliverer.pass_once()
        [attempt] = client.get(url, headers=headers("u", P1)).json()["deliveries"]
        assert (attempt["status_code"], attempt["outcome"]) == (307, "retry")
        assert elsewhere.received == []


@pytest.mark.parametrize(("changes", "status", "reason"), [
    # Failing for longer than disable_after_hours (here 0.0005 h, under 2 s) disables too.
    ({"webhooks_disable_after_failures": 1000, "webhooks_disable_after_hours": 0.0005},
     500, "Failing for over"),
    # 410 Gone: the receiver wants no more; disabled at once.
    ({}, 410, "410 Gone"),
])
def test_other_ways_a_subscription_is_disabled(db_url: str, engine: Engine, changes: dict,
                                               status: int, reason: str,
                                               make_deliverer: Make) -> None:
    settings = _settings(db_url, **changes)
    with receiver() as hook, TestClient(create_app(settings, engine=engine)) as client:
        sub = _subscribe(client, P1, hook.url)
        hook.status = status
        _store(engine, row(P1))
        deliverer = make_deliverer(settings, engine)
        url = f"/v3/{P1}/messages-ext/webhooks/{sub['id']}"
        deadline = time.monotonic() + 60
        while (shown := client.get(url, headers=headers("u", P1)).json()["webhook"])["enabled"]:
            assert time.monotonic() < deadline
            deliverer.pass_once() or time.sleep(0.05)
        assert reason in shown["disabled_reason"]
        if status == 410:
            assert shown["consecutive_failures"] == 1


def test_serve_runs_the_deliverer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The embedded shape: `usermessages serve` alone delivers ([webhooks] embedded)."""
    import httpx

    from tests.harness import servers
    from usermessages.store import engine as store_engine

    config = tmp_path / "usermessages.conf"
    config.write_text("[webhooks]\nallowed_cidrs = 127.0.0.0/8\npoll_interval = 0.1\n")
    db_url = f"sqlite:///{tmp_path}/um.sqlite"
    with receiver() as hook, servers.api_server(db_url, config_file=str(config)) as base:
        sub = httpx.post(f"{base}/v3/{P1}/messages-ext/webhooks",
                         json={"webhook": {"url": hook.url}}, headers=headers("u", P1)).json()
        engine = store_engine.connect(db_url)
        try:
            [stored] = _store(engine, row(P1))
        finally:
            engine.dispose()
        hook.wait_for(lambda got: len(got) == 1)
        payload = Webhook(sub["webhook"]["secret"]).verify(hook.received[0].body,
                                                          hook.received[0].headers)
        assert payload["data"]["message"]["id"] == stored["id"]


def test_the_back_off_doubles(db_url: str, engine: Engine, make_deliverer: Make) -> None:
    from sqlalchemy import update

    from usermessages.store.schema import webhook_deliveries

    settings = _settings(db_url, webhooks_retry_base=100.0, webhooks_retry_max=350.0)
    with receiver() as hook, TestClient(create_app(settings, engine=engine)) as client:
        _subscribe(client, P1, hook.url)
        hook.status = 500
        _store(engine, row(P1))
        deliverer = make_deliverer(settings, engine)
        waits = []
        for _ in range(4):
            assert deliverer.pass_once()
            with engine.begin() as conn:
                due = conn.execute(select(webhooks.c.next_attempt_at)).scalar_one()
                tried = conn.execute(select(webhook_deliveries.c.created_at).order_by(
                    webhook_deliveries.c.id.desc())).scalars().first()
                waits.append((due - tried).total_seconds())
                # Not due yet: a pass sends nothing. Then make it due (no waiting here).
                assert not deliverer.pass_once()
                conn.execute(update(webhooks).values(next_attempt_at=None))
        # base x 2^(n-1), with up to 20% jitter below, capped at retry_max.
        for wait, full in zip(waits, (100, 200, 350, 350), strict=True):
            assert 0.8 * full - 1 <= wait <= full + 1, waits


def test_a_receiver_slower_than_the_timeout_is_a_failure(db_url: str, engine: Engine,
                                                         make_deliverer: Make) -> None:
    settings = _settings(db_url, webhooks_timeout=0.5)
    with receiver() as hook, TestClient(create_app(settings, engine=engine)) as client:
        sub = _subscribe(client, P1, hook.url)
        hook.hold_at = 0  # never answers in time
        try:
            _store(engine, row(P1))
            make_deliverer(settings, engine).pass_once()
            [attempt] = client.get(f"/v3/{P1}/messages-ext/webhooks/{sub['id']}/deliveries",
                                   headers=headers("u", P1)).json()["deliveries"]
            assert (attempt["error"], attempt["status_code"]) == ("ReadTimeout", None)
        finally:
            hook.release.set()


def test_a_stop_ends_the_deliverer_at_once(db_url: str, engine: Engine) -> None:
    """However long the poll interval: serve waits 10 s for its threads, a SIGTERM'd
    webhook-deliverer should not wait at all."""
    deliverer = Deliverer(_settings(db_url, webhooks_poll_interval=3600.0), engine)
    dispatched = threading.Event()
    dispatch = deliverer.dispatch

    def observed(stop: threading.Event | None = None) -> list:
        turns = dispatch(stop)
        dispatched.set()
        return turns

    deliverer.dispatch = observed  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=deliverer.run, args=(stop,), daemon=True)
    thread.start()
    assert dispatched.wait(30)  # it polled once: now it waits for the next poll
    began = time.monotonic()
    stop.set()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - began < 2
