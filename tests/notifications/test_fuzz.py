"""decide() is total: whatever arrives on the notification queue maps, is ignored
(and counted), or is dead-lettered with a reason; it never raises, and every row
it accepts is one the store takes. Hypothesis, then the two bodies that stalled
every collector, through the real RabbitMQ."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Exchange, Producer
from oslo_context.context import RequestContext
from sqlalchemy import Engine, text

from tests.notifications import openstack_payloads as os_payloads
from tests.notifications.notifier import collector, notifier, rows, running, wait_for
from tests.notifications.openstack_payloads import RequestContextSerializer
from usermessages.collector import Accept, Ignore, Reject, list_dead_letters
from usermessages.notifications import MAX_FIELD, decide, load_mapping, source
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer

MAPPING = Path(__file__).resolve().parents[2] / "etc" / "notification-mapping.ini"
RULES = load_mapping(MAPPING)
TTL = 2592000


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _real(event_type: str, payload: dict) -> dict:
    """A notification as oslo.messaging sends it, with a RequestContext."""
    serializer = RequestContextSerializer()
    context = serializer.serialize_context(RequestContext(
        project_id="p1", user_id="u1", global_request_id=f"req-{uuid.uuid4()}"))
    message = {"message_id": str(uuid.uuid4()), "publisher_id": "scheduler.host-1",
               "event_type": event_type, "priority": "ERROR",
               "payload": serializer.serialize_entity(None, payload), "timestamp": _now()}
    message.update({f"_context_{k}": v for k, v in context.items()})
    return message


REAL = [
    _real("scheduler.create_volume", os_payloads.cinder_create_volume(
        "v1", "p1", "u1", os_payloads.NoValidBackend(reason="r"))),
    _real("scheduler.retype", os_payloads.cinder_set_volume_state(
        "retype", "v2", "p1", "u1", os_payloads.ParameterNotFound(param="volume_type"))),
    _real("scheduler.create_snapshot", os_payloads.cinder_create_snapshot(
        "s1", os_payloads.NoValidBackend(reason="r"))),
    _real("compute.instance.create.error", os_payloads.nova_legacy_instance_error(
        "i1", "p1", "u1", os_payloads.BuildAbortException(instance_uuid="i1", reason="r"))),
    _real("compute_task.build_instances", os_payloads.nova_legacy_compute_task(
        "build_instances", "i2", "p1", "u1", os_payloads.NoValidHost(reason="r"))),
    _real("instance.create.error", os_payloads.nova_versioned_instance_error(
        "i3", "p1", "u1", os_payloads.NoValidHost(reason="r"))),
    _real("compute_task.migrate_server.error", os_payloads.nova_versioned_compute_task_error(
        "i4", "p1", "u1", os_payloads.NoValidHost(reason="r"))),
]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
# Values that broke or could break the mapping: huge and odd dates, NULs, lone
# surrogates, long strings, wrong types.
NASTY = st.sampled_from([
    "9999-12-31 23:59:59.999999", "0001-01-01 00:00:00", "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-14:00", "\x00", "\ud800", "x" * 10_000, "", None, 1e308, -1,
    [], {}, "NoValidBackend(", "(NoValidHost)", "nova_object.data",
]) | JSON


@pytest.fixture(scope="module")
def store_engine_() -> Iterator[Engine]:
    engine = store_engine.connect("sqlite://")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _check(decision, engine: Engine | None = None) -> None:
    assert isinstance(decision, (Accept, Ignore, Reject))
    if isinstance(decision, Reject):
        assert decision.reason
    if isinstance(decision, Accept):
        row = decision.message.to_row()
        for key, value in row.items():
            if isinstance(value, str):
                assert len(value) <= MAX_FIELD and "\x00" not in value, key
                value.encode("utf-8")
        assert row["project_id"] and row["created_at"] < row["expires_at"]
        if engine is not None:  # the store takes it
            with engine.begin() as conn:
                writer.insert(conn, writer.rows_of([decision.message]))


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes(body):
    _check(decide(body, RULES, TTL))


@given(JSON, st.booleans())
@settings(max_examples=300, deadline=None)
def test_arbitrary_json(document, wrapped):
    body = json.dumps(document)
    if wrapped:
        body = json.dumps({"oslo.version": "2.0", "oslo.message": body})
    _check(decide(body.encode(), RULES, TTL))


def _paths(document, prefix=()):
    if isinstance(document, dict):
        for key, value in document.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


@given(st.sampled_from(REAL), st.data())
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mutated_real_notifications(store_engine_, notification, data):
    mutated = copy.deepcopy(notification)
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(list(_paths(mutated))))
        parent = mutated
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(NASTY)
        else:
            del parent[path[-1]]
        if not isinstance(mutated, dict) or not list(_paths(mutated)):
            break
    body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(mutated)})
    _check(decide(body.encode(), RULES, TTL), store_engine_)


def test_every_real_notification_maps(store_engine_):
    for notification in REAL:
        body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(notification)})
        decision = decide(body.encode(), RULES, TTL)
        assert isinstance(decision, Accept), (notification["event_type"], decision)
        _check(decision, store_engine_)


def test_the_bodies_that_stalled_every_collector():
    deep = b"[" * 100_000 + b"]" * 100_000
    decision = decide(deep, RULES, TTL)
    assert isinstance(decision, Reject) and "deep" in decision.reason
    far = dict(REAL[0], timestamp="9999-12-31 23:59:59.999999")
    decision = decide(json.dumps(far).encode(), RULES, TTL)
    assert isinstance(decision, Accept)  # an implausible time is replaced by now
    assert decision.message.created_at.year == dt.datetime.now(dt.UTC).year


def test_one_bad_notification_stalls_nothing_on_the_real_broker(rabbitmq_url, tmp_path):
    engine = store_engine.connect(f"sqlite:///{tmp_path}/um.sqlite")
    migrate.upgrade(engine)
    exchange = f"cinder-{uuid.uuid4().hex[:8]}"
    topic = f"notifications-{exchange}"
    src = source([exchange], RULES, TTL, topics=(topic,), retry_interval=0.1,
                 queue_name=f"usermessages.notifications-{uuid.uuid4().hex[:8]}")
    with notifier(rabbitmq_url, tmp_path, exchange, topic=topic, publisher_id="scheduler.h",
                  serializer=RequestContextSerializer()) as cinder, \
            running(collector(rabbitmq_url, engine, src)) as consuming:
        context = RequestContext(project_id="p1", user_id="u1")
        cinder.error(context, "scheduler.create_volume", os_payloads.cinder_create_volume(
            "v-first", "p1", "u1", os_payloads.NoValidBackend(reason="r")))  # makes the exchange
        wait_for(lambda: exchange in src.prepare.__self__.bound, what="our binding")
        # What a broken sender puts on the same topic (the Notifier itself cannot).
        far = dict(REAL[0], message_id=str(uuid.uuid4()), timestamp="9999-12-31 23:59:59.999999")
        far["payload"] = dict(far["payload"], volume_id="v-far")
        with Connection(rabbitmq_url) as connection:
            producer = Producer(connection.channel())
            for body in (b"[" * 100_000 + b"]" * 100_000, json.dumps(far).encode()):
                producer.publish(body, exchange=Exchange(exchange, type="topic", no_declare=True),
                                 routing_key=f"{topic}.error", content_type="application/json",
                                 content_encoding="utf-8", retry=False)
        cinder.error(context, "scheduler.create_volume", os_payloads.cinder_create_volume(
            "v-after", "p1", "u1", os_payloads.NoValidBackend(reason="r")))
        wait_for(lambda: {"v-far", "v-after"} <= {r["resource_uuid"] for r in rows(engine)},
                 what="the notifications behind the bad one")
        assert consuming.stats.dead_lettered == 1
    letters = [letter for letter in list_dead_letters(rabbitmq_url, limit=1000)
               if letter["body"].startswith("[[[")]
    assert letters and "nested too deeply" in letters[0]["reason"]
    with engine.connect() as conn:  # v-first went out before our queue was bound
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 2
    engine.dispose()
