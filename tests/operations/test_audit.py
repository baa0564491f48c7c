"""CADF audit events of deletes, webhook changes and exports, consumed from a real RabbitMQ.

The service sends them as oslo.messaging notifications ([oslo_messaging_notifications]);
here a real oslo.messaging notification listener on that topic receives them and checks
each event's action, outcome, initiator (user, project, request id) and target. The
broker is this module's own: a test stops it, and requests must not wait for it.
"""

from __future__ import annotations

import queue
import re
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import row
from tests.harness import servers
from tests.viewer_session import sign_in
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer

with warnings.catch_warnings():  # eventlet, which oslo.messaging imports, says it is old
    warnings.simplefilter("ignore")
    import oslo_messaging
from oslo_config import cfg

PROJECT, OTHER = "aaaa1111", "bbbb2222"
V = {"OpenStack-API-Version": "volume 3.5"}
ALICE = {"X-Auth-Token": f"alice:{PROJECT}", **V}
WAIT = 30.0


@dataclass(frozen=True)
class Notification:
    context: dict[str, Any]
    publisher_id: str
    event_type: str
    payload: dict[str, Any]


class Listener:
    """oslo.messaging's notification listener on one topic, gathering what it receives."""

    def __init__(self, url: str, topic: str) -> None:
        conf = cfg.ConfigOpts()
        conf([], default_config_files=[], default_config_dirs=[])
        self.received: queue.Queue[Notification] = queue.Queue()
        self._transport = oslo_messaging.get_notification_transport(conf, url=url)
        self._server = oslo_messaging.get_notification_listener(
            self._transport, [oslo_messaging.Target(topic=topic)], [self], executor="threading")
        self._server.start()

    def info(self, ctxt: dict, publisher_id: str, event_type: str, payload: dict,
             metadata: dict) -> None:
        self.received.put(Notification(ctxt, publisher_id, event_type, payload))

    def next(self, event_type: str, wait: float = WAIT) -> Notification:
        """The next notification; it must be of ``event_type``."""
        found = self.received.get(timeout=wait)
        assert found.event_type == event_type, found
        return found

    def stop(self) -> None:
        self._server.stop()
        self._server.wait()
        self._transport.cleanup()  # else its heartbeat outlives the module's broker


@dataclass
class Site:
    broker: servers.RabbitMQ
    topic: str
    listener: Listener
    settings: Settings
    engine: Any
    clients: list[TestClient] = field(default_factory=list)


@pytest.fixture(scope="module")
def broker() -> Iterator[servers.RabbitMQ]:
    with servers.rabbitmq_broker() as started:
        yield started


def _transport_url(broker: servers.RabbitMQ) -> str:
    return f"rabbit://guest:guest@127.0.0.1:{broker.port}/"


@pytest.fixture
def site(broker: servers.RabbitMQ, tmp_path: Path) -> Iterator[Site]:
    topic = f"audit_{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path}/audit.sqlite"
    messaging = "oslo.messaging", "oslo_messaging_notifications"
    settings = Settings(database_connection=url, library_options=(
        (*messaging, "driver", "messagingv2"),
        (*messaging, "transport_url", _transport_url(broker)),
        (*messaging, "topics", topic)))
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    listener = Listener(_transport_url(broker), topic)
    site = Site(broker, topic, listener, settings, engine)
    yield site
    # Their notifiers' transports go too, with their heartbeats (TestClient types its app
    # as any ASGI app; this one is ours).
    for client in site.clients:
        client.app.state.reader.auditor.close()  # type: ignore[attr-defined]
    listener.stop()
    engine.dispose()


def _seed(engine: Any, *projects: str) -> list[str]:
    rows = [row(project) for project in projects]
    with engine.begin() as conn:
        writer.insert(conn, rows)
    return [r["id"] for r in rows]


def _client(site: Site, **changes: Any) -> TestClient:
    client = TestClient(create_app(site.settings.replace(**changes), engine=site.engine))
    site.clients.append(client)
    return client


def _check(found: Notification, action: str, outcome: str, status: int, target_type: str,
           target_id: str, request_id: str, user: str = "alice",
           project: str = PROJECT) -> dict[str, Any]:
    event = found.payload
    assert event["typeURI"] == "http://schemas.dmtf.org/cloud/audit/1.0/event"
    assert (event["eventType"], event["action"], event["outcome"]) == (
        "activity", action, outcome)
    assert event["reason"] == {"reasonType": "HTTP", "reasonCode": str(status)}
    initiator = event["initiator"]
    assert initiator["typeURI"] == "service/security/account/user"
    assert (initiator["id"], initiator["project_id"]) == (user, project)
    assert initiator["request_id"] == request_id
    assert (event["target"]["typeURI"], event["target"]["id"]) == (target_type, target_id)
    assert event["observer"]["typeURI"] == "service/storage/block"
    # The notification's context is the request's (oslo.context).
    assert (found.context["request_id"], found.context["user"],
            found.context["project_id"]) == (request_id, user, project)
    assert found.publisher_id.startswith("usermessages.")
    return event


def test_deletes_are_audited_with_their_outcome(site: Site) -> None:
    mine, theirs = _seed(site.engine, PROJECT, OTHER)
    with _client(site) as client:
        deleted = client.delete(f"/v3/{PROJECT}/messages/{mine}", headers=ALICE)
        assert deleted.status_code == 204
        _check(site.listener.next("usermessages.message.delete"), "delete", "success", 204,
               "service/storage/block/messages/message", mine,
               deleted.headers["x-openstack-request-id"])
        # Another project's message: a 404, audited as a failure.
        refused = client.delete(f"/v3/{PROJECT}/messages/{theirs}", headers=ALICE)
        assert refused.status_code == 404
        _check(site.listener.next("usermessages.message.delete"), "delete", "failure", 404,
               "service/storage/block/messages/message", theirs,
               refused.headers["x-openstack-request-id"])


def test_a_delete_in_the_viewer_is_audited_too(site: Site) -> None:
    [mine] = _seed(site.engine, PROJECT)
    with _client(site) as client:
        assert sign_in(client, "alice", PROJECT).status_code == 303
        page = client.get(f"/viewer/messages/{mine}/delete")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        done = client.post(f"/viewer/messages/{mine}/delete", data={"csrf": csrf.group(1)},
                           follow_redirects=False)
        assert done.status_code == 303
        _check(site.listener.next("usermessages.message.delete"), "delete", "success", 204,
               "service/storage/block/messages/message", mine,
               done.headers["x-openstack-request-id"])


def test_webhook_changes_are_audited(site: Site, tmp_path: Path) -> None:
    base = f"/v3/{PROJECT}/messages-ext/webhooks"
    with _client(site, webhooks_allow_private_targets=True) as client:
        created = client.post(base, headers=ALICE,
                              json={"webhook": {"url": "http://127.0.0.1:9/um"}})
        assert created.status_code == 201, created.text
        webhook_id = created.json()["webhook"]["id"]
        _check(site.listener.next("usermessages.webhook.create"), "create", "success", 201,
               "service/storage/block/messages-ext/webhooks/webhook", webhook_id,
               created.headers["x-openstack-request-id"])
        deleted = client.delete(f"{base}/{webhook_id}", headers=ALICE)
        assert deleted.status_code == 204
        _check(site.listener.next("usermessages.webhook.delete"), "delete", "success", 204,
               "service/storage/block/messages-ext/webhooks/webhook", webhook_id,
               deleted.headers["x-openstack-request-id"])
        # Refused input is a failed create, on the project's webhooks.
        bad = client.post(base, headers=ALICE, json={"webhook": {"url": "ftp://x"}})
        assert bad.status_code == 400
        _check(site.listener.next("usermessages.webhook.create"), "create", "failure", 400,
               "service/storage/block/messages-ext/webhooks", PROJECT,
               bad.headers["x-openstack-request-id"])
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:webhooks:create": "rule:context_is_admin"\n')
    with _client(site, policy_file=str(policy_file)) as client:
        denied = client.post(base, headers=ALICE,
                             json={"webhook": {"url": "http://127.0.0.1:9/um"}})
        assert denied.status_code == 403
        _check(site.listener.next("usermessages.webhook.create"), "create", "failure", 403,
               "service/storage/block/messages-ext/webhooks", PROJECT,
               denied.headers["x-openstack-request-id"])


def test_exports_are_audited_with_their_query(site: Site, tmp_path: Path) -> None:
    _seed(site.engine, PROJECT, PROJECT)
    path = f"/v3/{PROJECT}/messages-ext/export?format=csv&message_level=ERROR"
    with _client(site) as client:
        exported = client.get(path, headers=ALICE)
        assert exported.status_code == 200 and exported.text.count("\n") == 3
        event = _check(site.listener.next("usermessages.message.export"), "read/export",
                       "success", 200, "service/storage/block/messages-ext/export", PROJECT,
                       exported.headers["x-openstack-request-id"])
        [query] = event["attachments"]
        assert (query["name"], query["content"]) == (
            "query", {"format": "csv", "message_level": "ERROR"})
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:export": "rule:context_is_admin"\n')
    with _client(site, policy_file=str(policy_file)) as client:
        denied = client.get(path, headers=ALICE)
        assert denied.status_code == 403
        assert client.get(f"/v3/{PROJECT}/messages", headers=ALICE).status_code == 200
        _check(site.listener.next("usermessages.message.export"), "read/export", "failure",
               403, "service/storage/block/messages-ext/export", PROJECT,
               denied.headers["x-openstack-request-id"])


def test_a_broker_down_never_holds_a_request_and_its_events_follow_later(site: Site) -> None:
    ids = _seed(site.engine, *[PROJECT] * 10)
    with _client(site) as client:
        site.broker.stop_app()
        try:
            answered = {}
            for message_id in ids:
                started = time.monotonic()
                deleted = client.delete(f"/v3/{PROJECT}/messages/{message_id}", headers=ALICE)
                assert deleted.status_code == 204
                assert time.monotonic() - started < 1.0, "a delete waited for the broker"
                answered[message_id] = deleted.headers["x-openstack-request-id"]
        finally:
            site.broker.start_app()
        # The sender waits for the broker, then sends: nothing was lost meanwhile.
        got = {}
        while len(got) < len(ids):
            found = site.listener.next("usermessages.message.delete")
            got[found.payload["target"]["id"]] = found.payload["initiator"]["request_id"]
        assert got == answered
