"""/healthcheck: oslo.middleware's healthcheck with our database and bus backends.

A real server on its own PostgreSQL cluster and its own RabbitMQ broker, which
these tests stop, freeze and start again: the answer turns 503 within the bound
and comes back by itself. Details go to admins only, never to anonymous callers,
and a file drains the node (oslo's disable_by_file).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.test_unavailable import _server_pids, _signal
from tests.harness import servers
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import engine as store_engine
from usermessages.store import migrate

TIMEOUT = Settings().database_timeout
BUS_TIMEOUT = Settings().bus_timeout
# A probe answers within its backend's timeout (+ libpq's 2 s connect floor); the margin
# is for this shared machine.
BOUND = max(2 * TIMEOUT, TIMEOUT + 2) + BUS_TIMEOUT + 1.5
HEALTH = "/healthcheck"
JSON = {"Accept": "application/json"}
DETAILED = ("oslo.middleware.healthcheck", "healthcheck", "detailed", "true")


@dataclass
class Site:
    cluster: servers.PostgreSQL
    broker: servers.RabbitMQ
    base: str
    disable_file: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("health")
    with servers.postgresql_cluster() as cluster, servers.rabbitmq_broker() as broker:
        url = servers.create_database(cluster.url, "health")
        engine = store_engine.connect(url)
        migrate.upgrade(engine)
        engine.dispose()
        disable = root / "drain"
        conf = root / "usermessages.conf"
        conf.write_text(
            f"[bus]\nurl = {broker.url}\n[collector]\nembedded = false\n"
            "[webhooks]\nembedded = false\n"
            "[healthcheck]\ndetailed = true\n"
            "backends = disable_by_file, usermessages_database, usermessages_bus\n"
            f"disable_by_file_path = {disable}\n")
        with servers.api_server(url, config_file=str(conf)) as base:
            yield Site(cluster, broker, base, disable)


def _probe(base: str, **headers: str | bytes) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    # A header may be bytes on purpose (a latin-1 token): httpx sends it as given.
    answer = httpx.get(base + HEALTH, headers=headers, timeout=60)  # type: ignore[arg-type]
    return answer, time.monotonic() - started


def _until(base: str, status: int, what: str, limit: float = 60) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        answer, seconds = _probe(base, **JSON)
        assert seconds <= BOUND, f"{what}: a probe took {seconds:.2f} s"
        if answer.status_code == status:
            return answer
        assert time.monotonic() < deadline, f"{what}: still {answer.status_code}: {answer.text}"
        time.sleep(0.2)


def test_healthy_answers_200_and_204_to_head_without_a_token(site: Site) -> None:
    answer, _ = _probe(site.base)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.splitlines() == ["OK", "database: OK", "bus: OK"]
    assert answer.headers["x-openstack-request-id"].startswith("req-")
    head = httpx.head(site.base + HEALTH, timeout=30)
    assert (head.status_code, head.content) == (204, b"")
    # Anything but GET and HEAD is no route here, as elsewhere.
    assert httpx.post(site.base + HEALTH, timeout=30).status_code == 404


def test_a_stopped_postgresql_is_503_then_200_again_by_itself(site: Site) -> None:
    site.cluster.stop()
    try:
        answer = _until(site.base, 503, "PostgreSQL stopped")
        assert answer.json()["reasons"] == ["OK", "database: unavailable", "bus: OK"]
        assert httpx.head(site.base + HEALTH, timeout=30).status_code == 503
    finally:
        site.cluster.start()
    _until(site.base, 200, "PostgreSQL started again")


def test_a_frozen_postgresql_is_503_within_the_bound_for_every_concurrent_probe(
        site: Site) -> None:
    _until(site.base, 200, "before the freeze")
    pids = _server_pids(site.cluster)
    _signal(pids, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: _probe(site.base, **JSON), range(20)))
    finally:
        _signal(pids, signal.SIGCONT)
    times = sorted(seconds for _, seconds in results)
    print(f"\nfrozen PostgreSQL: 20 concurrent probes, 503 in max {times[-1]:.2f} s, "
          f"median {times[10]:.2f} s (bound {BOUND:.1f} s)")
    for answer, seconds in results:
        assert answer.status_code == 503, answer.text
        assert "database: unavailable" in answer.json()["reasons"]
        assert seconds <= BOUND
    _until(site.base, 200, "after the freeze")


def test_a_stopped_rabbitmq_is_503_then_200_again_by_itself(site: Site) -> None:
    site.broker.stop_app()
    try:
        answer = _until(site.base, 503, "RabbitMQ stopped")
        assert answer.json()["reasons"] == ["OK", "database: OK", "bus: unavailable"]
    finally:
        site.broker.start_app()
    _until(site.base, 200, "RabbitMQ started again")


def test_a_file_drains_the_node_until_it_is_removed(site: Site) -> None:
    site.disable_file.write_text("maintenance\n")
    try:
        answer = _until(site.base, 503, "the drain file")
        assert answer.json()["reasons"][0] == "DISABLED BY FILE"
        assert httpx.head(site.base + HEALTH, timeout=30).status_code == 503
    finally:
        site.disable_file.unlink()
    _until(site.base, 200, "the drain file removed")


def test_details_go_to_admins_only(site: Site) -> None:
    """[healthcheck] detailed = true here; still, no details without an admin's token."""
    for headers in ({}, {"X-Auth-Token": "alice:aaaa1111"}, {"X-Auth-Token": ""},
                    {"X-Auth-Token": "\u00e9\u00e9".encode("latin-1")},
                    {"X-Auth-Token": "x" * 20000}):
        answer, _ = _probe(site.base, **JSON, **headers)
        assert answer.status_code == 200
        assert answer.json() == {"detailed": False,
                                 "reasons": ["OK", "database: OK", "bus: OK"]}, headers
        html, _ = _probe(site.base, Accept="text/html", **headers)
        assert "postgresql" not in html.text and "Traceback" not in html.text
    answer, _ = _probe(site.base, **JSON, **{"X-Auth-Token": "admin:aaaa1111"})
    body = answer.json()
    assert body["detailed"] is True and body["threads"]
    database = body["reasons"][1]
    assert database["reason"] == "database: OK"
    assert database["details"].startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert f"at revision {migrate.head()}" in database["details"]
    assert body["reasons"][2]["details"].startswith("amqp://guest:***@127.0.0.1:")


def test_an_unavailable_backend_tells_admins_why_and_others_only_that(site: Site) -> None:
    site.broker.stop_app()
    try:
        _until(site.base, 503, "RabbitMQ stopped")
        anonymous, _ = _probe(site.base, **JSON)
        assert "bus: unavailable" in anonymous.json()["reasons"]
        assert "refused" not in anonymous.text.lower()
        admin, _ = _probe(site.base, **JSON, **{"X-Auth-Token": "admin:aaaa1111"})
        bus = admin.json()["reasons"][2]
        assert bus["reason"] == "bus: unavailable"
        assert "guest:guest" not in admin.text  # never a password, even to admins
        assert bus["details"]  # the error, for the admin
    finally:
        site.broker.start_app()
    _until(site.base, 200, "RabbitMQ started again")


def test_without_detailed_even_an_admin_gets_the_reasons_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.sqlite"
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    for options, admin_details in (((), False), ((DETAILED,), True)):
        settings = Settings(database_connection=url, library_options=options)
        with TestClient(create_app(settings, engine=engine)) as client:
            answer = client.get(HEALTH, headers={**JSON, "X-Auth-Token": "admin:aaaa1111"})
            assert answer.status_code == 200
            assert answer.json()["detailed"] is admin_details
            # The default backends: the database and the bus, in this process here.
            reasons = answer.json()["reasons"]
            assert [r["reason"] if admin_details else r for r in reasons] == [
                "database: OK", "bus: OK"]
    engine.dispose()
