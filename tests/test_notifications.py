"""OpenStack error notifications, published by the real oslo.messaging Notifier to the
real RabbitMQ, become catalog messages; unmapped ones are counted, never stored."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import oslo_messaging
import pytest
from oslo_config import cfg
from sqlalchemy import text

from usermessages import metrics
from usermessages.collector import Accept, Collector, Ignore, Reject
from usermessages.errors import ConfigError
from usermessages.notifications import load_mapping, decide, source

MAPPING = Path(__file__).resolve().parent.parent / "etc" / "notification-mapping.ini"


def _notification(event_type: str = "scheduler.create_volume", priority: str = "ERROR",
                  **extra) -> bytes:
    inner = {"message_id": str(uuid.uuid4()), "publisher_id": "scheduler.node-7",
             "event_type": event_type, "priority": priority,
             "payload": {"volume_id": "vol-1", "reason": "secret backend detail",
                         "volume_properties": {"project_id": "p1", "user_id": "u1"}},
             "timestamp": "2026-11-24 12:00:00.123456", "_context_project_id": "p1",
             "_context_user_id": "u1", "_context_request_id": "req-1", **extra}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


def test_the_shipped_mapping_loads():
    rules = load_mapping(MAPPING)
    assert rules["scheduler.create_volume"].detail.id == "003"


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
    row = decision.row
    assert (row["event_id"], row["project_id"], row["request_id"], row["resource_uuid"],
            row["host"]) == ("VOLUME_VOLUME_001_003", "p1", "req-1", "vol-1", "node-7")
    assert "secret" not in json.dumps(row, default=str)
    assert decide(body, rules, ttl=60).row["id"] == row["id"]  # redelivery: same id
    assert isinstance(decide(_notification(priority="INFO"), rules, 60), Ignore)
    before = metrics.UNMAPPED.labels(event_type="compute.instance.create.error")._value.get()
    assert isinstance(decide(_notification("compute.instance.create.error"), rules, 60), Ignore)
    assert metrics.UNMAPPED.labels(
        event_type="compute.instance.create.error")._value.get() == before + 1
    assert isinstance(decide(b"garbage", rules, 60), Reject)
    assert isinstance(decide(_notification(payload={"volume_id": "v"}, _context_project_id=""),
                             rules, 60), Reject)
    # Older senders put the context beside the payload: used when the path finds nothing.
    fallback = decide(_notification(payload={"volume_id": "v"}), rules, 60)
    assert isinstance(fallback, Accept) and fallback.row["project_id"] == "p1"


def test_real_oslo_messaging_notifier_to_real_rabbitmq(rabbitmq_url, engine):
    rules = load_mapping(MAPPING)
    exchange = f"cinder-{uuid.uuid4().hex[:6]}"  # a control_exchange of our own
    stop = threading.Event()
    collector = Collector(rabbitmq_url, engine, ttl=3600, batch_size=10, flush_interval=0.1,
                          extra_sources=(source([exchange], rules, 3600),))
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    assert collector.ready.wait(15)
    # As a Cinder configured with control_exchange = <exchange> would publish.
    oslo_messaging.set_transport_defaults(control_exchange=exchange)
    conf = cfg.ConfigOpts()
    conf([], project="usermessages-test")
    transport_url = rabbitmq_url.replace("amqp://", "rabbit://").rstrip("/") + "/"
    transport = oslo_messaging.get_notification_transport(conf, url=transport_url)
    try:
        notifier = oslo_messaging.Notifier(transport, publisher_id="scheduler.node-7",
                                           driver="messaging", topics=["notifications"])
        ctxt = {"project_id": "p1", "user_id": "u1", "request_id": "req-oslo"}  # not sent
        # The payload Cinder's scheduler sends after NoValidBackend (abridged).
        notifier.error(ctxt, "scheduler.create_volume", {
            "volume_id": "vol-9", "state": "error", "method": "create_volume",
            "reason": "No valid backend was found. secret detail",
            "volume_properties": {"project_id": "p1", "user_id": "u1"}})
        notifier.error(ctxt, "compute.instance.create.error", {"instance_id": "i-1"})
        notifier.info(ctxt, "scheduler.create_volume", {"volume_id": "vol-info"})
        deadline = time.monotonic() + 20
        while True:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT * FROM messages")).mappings().all()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(1)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM messages")).mappings().all()
        assert [(r["event_id"], r["resource_uuid"], r["request_id"], r["host"]) for r in rows] == [
            ("VOLUME_VOLUME_001_003", "vol-9", "", "node-7")]
        assert rows[0]["project_id"] == "p1" and rows[0]["user_id"] == "u1"
        assert all("secret" not in str(value) for value in rows[0].values())
        assert collector.stats.ignored >= 1  # the unmapped compute error
    finally:
        transport.cleanup()
        stop.set()
        thread.join(10)
