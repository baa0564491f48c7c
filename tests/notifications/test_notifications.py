"""OpenStack error notifications, published by the real oslo.messaging Notifier to the
real RabbitMQ, become catalog messages; unmapped ones are counted, never stored."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from oslo_context.context import RequestContext
from prometheus_client import generate_latest

from tests.notifications.notifier import collector, notifier, rows, running, wait_for
from tests.notifications.openstack_payloads import (
    NoValidBackend,
    RequestContextSerializer,
    cinder_create_volume,
)
from usermessages import metrics, notifications
from usermessages.collector import Accept, Ignore, Reject
from usermessages.errors import ConfigError
from usermessages.notifications import decide, load_mapping, source

MAPPING = Path(__file__).resolve().parents[2] / "etc" / "notification-mapping.ini"


def _notification(event_type: str = "scheduler.create_volume", priority: str = "ERROR",
                  **extra) -> bytes:
    inner = {"message_id": str(uuid.uuid4()), "publisher_id": "scheduler.node-7",
             "event_type": event_type, "priority": priority,
             "payload": {"volume_id": "vol-1", "reason": "secret backend detail",
                         "volume_properties": {"project_id": "p1", "user_id": "u1"}},
             "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
             "_context_project_id": "p1",
             "_context_user_id": "u1", "_context_request_id": "req-1", **extra}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


def test_the_shipped_mapping_loads():
    rules = load_mapping(MAPPING)
    # The fallback is the unknown error: the payload's exception picks the detail.
    assert rules["scheduler.create_volume"].detail.id == "001"


@pytest.mark.parametrize(("content", "complaint"), [
    ("[x.error]\naction = 001\n", "detail is required"),
    ("[x.error]\naction = 999\ndetail = 003\n", "not in the catalog"),
    ("[x.error]\naction = 001\ndetail = 003\ncolour = red\n", "unknown keys"),
    ("[x.error]\naction = 001\ndetail = 003\nresource_id = volume_id\n", "dotted path"),
    ("", "maps no event type"),
])
def test_bad_mappings_fail_at_start(tmp_path, content, complaint):
    path = tmp_path / "m.ini"
    path.write_text(content)
    with pytest.raises(ConfigError, match=complaint):
        load_mapping(path)


def test_decide():
    rules = load_mapping(MAPPING)
    body = _notification()
    decision = decide(body, rules, ttl=60)
    assert isinstance(decision, Accept)
    row = decision.message.to_row()
    # No exception in the payload: the rule's fallback detail (001).
    assert (row["event_id"], row["project_id"], row["request_id"], row["resource_uuid"],
            row["host"]) == ("VOLUME_VOLUME_001_001", "p1", "req-1", "vol-1", "node-7")
    assert "secret" not in json.dumps(row, default=str)
    assert decide(body, rules, ttl=60).message.id == row["id"]  # redelivery: same id
    assert isinstance(decide(_notification(priority="INFO"), rules, 60), Ignore)
    before = metrics.UNMAPPED.labels(event_type="volume_type.create")._value.get()
    assert isinstance(decide(_notification("volume_type.create"), rules, 60), Ignore)
    assert metrics.UNMAPPED.labels(
        event_type="volume_type.create")._value.get() == before + 1
    assert isinstance(decide(b"garbage", rules, 60), Reject)
    assert isinstance(decide(_notification(payload={"volume_id": "v"}, _context_project_id=""),
                             rules, 60), Reject)
    # Older senders put the context beside the payload: used when the path finds nothing.
    fallback = decide(_notification(payload={"volume_id": "v"}), rules, 60)
    assert isinstance(fallback, Accept) and fallback.message.project_id == "p1"


def test_the_exception_class_in_the_payload_picks_the_detail():
    rules = load_mapping(MAPPING)
    payload = {"volume_id": "v", "reason": "NoValidBackend('No valid backend was found. x')"}
    row = decide(_notification(payload=payload), rules, 60).message.to_row()
    assert (row["event_id"], row["exception_class"]) == ("VOLUME_VOLUME_001_003", "NoValidBackend")
    payload["reason"] = "InvalidVolumeType('secret')"  # not mapped: the fallback
    row = decide(_notification(payload=payload), rules, 60).message.to_row()
    assert (row["event_id"], row["exception_class"]) == (
        "VOLUME_VOLUME_001_001", "InvalidVolumeType")
    assert "secret" not in json.dumps(row, default=str)


def test_the_request_context_wins_over_payload_paths():
    rules = load_mapping(MAPPING)
    body = _notification(_context_project_id="ctx-project", _context_user_id="ctx-user",
                         _context_global_request_id="req-global")
    row = decide(body, rules, 60).message.to_row()
    assert (row["project_id"], row["user_id"], row["request_id"], row["global_request_id"]) == (
        "ctx-project", "ctx-user", "req-1", "req-global")


def test_real_oslo_messaging_notifier_to_real_rabbitmq(rabbitmq_url, engine, tmp_path):
    rules = load_mapping(MAPPING)
    exchange = f"cinder-{uuid.uuid4().hex[:6]}"  # a control_exchange of our own
    topic = f"notifications-{exchange}"
    src = source([exchange], rules, 3600, topics=(topic,), retry_interval=0.1,
                 queue_name=f"usermessages.notifications-{uuid.uuid4().hex[:8]}")
    with notifier(rabbitmq_url, tmp_path, exchange, topic=topic,
                  publisher_id="scheduler.node-7",
                  serializer=RequestContextSerializer()) as cinder, \
            running(collector(rabbitmq_url, engine, src)) as running_collector:
        # A real request context, as Cinder's RequestContextSerializer sends it.
        ctxt = RequestContext(project_id="p1", user_id="u1", request_id="req-oslo",
                              global_request_id="req-global")
        cinder.error(ctxt, "scheduler.create_volume", cinder_create_volume(
            "vol-9", "p1", "u1", NoValidBackend(reason="secret detail")))
        wait_for(lambda: exchange in src.prepare.__self__.bound, what="the binding")
        cinder.error(ctxt, "scheduler.create_volume", cinder_create_volume(
            "vol-10", "p1", "u1", NoValidBackend(reason="secret detail")))
        cinder.error(ctxt, "volume_type.create", {"volume_types": {"name": "secret"}})
        cinder.info(ctxt, "scheduler.create_volume", {"volume_id": "vol-info"})
        stored = wait_for(lambda: [r for r in rows(engine) if r["resource_uuid"] == "vol-10"],
                          what="vol-10's message")
        # The info one is not even routed to us (we bind .error and .critical only).
        wait_for(lambda: running_collector.stats.ignored >= 1, what="the unmapped one")
        row = stored[0]
        assert (row["event_id"], row["request_id"], row["global_request_id"], row["host"],
                row["project_id"], row["user_id"], row["exception_class"]) == (
            "VOLUME_VOLUME_001_003", "req-oslo", "req-global", "node-7", "p1", "u1",
            "NoValidBackend")
        assert all("secret" not in str(value) for r in rows(engine) for value in r.values())
        assert {r["resource_uuid"] for r in rows(engine)} <= {"vol-9", "vol-10"}


def test_unmapped_event_types_keep_the_metrics_bounded_and_renderable():
    rules = load_mapping(MAPPING)
    for event_type in ["x\ud800", "a b", "é" * 5, "y" * 101]:
        assert isinstance(decide(_notification(event_type), rules, 60), Ignore)
    for number in range(notifications.MAX_UNMAPPED_LABELS + 50):
        decide(_notification(f"flood.{number}.error"), rules, 60)
    text = generate_latest().decode("utf-8")  # a lone surrogate would break the scrape
    labels = [line for line in text.splitlines()
              if line.startswith("usermessages_collector_unmapped_notifications_total{")]
    assert len(labels) <= notifications.MAX_UNMAPPED_LABELS + 1
    assert any('event_type="other"' in line for line in labels)
