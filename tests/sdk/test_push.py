"""The push side in one process: envelope, spool, forwarder and collector on kombu's
in-process transport, storing into real SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
import uuid

import pytest
from click.testing import CliRunner
from kombu import Producer, Queue
from sqlalchemy import text

from usermessages import Action, Detail, Messenger, RequestContext, bus, envelope
from usermessages.cli.main import main
from usermessages.collector import Accept, Collector, Decision, Source, list_dead_letters
from usermessages.config import Settings
from usermessages.message import Message
from usermessages.sinks.spool import Spool
from usermessages.store import engine as store_engine
from usermessages.store import migrate

MEMORY = "memory://"


class Capture:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def close(self) -> None:
        pass


def _record(**changes) -> Message:
    sink = Capture()
    Messenger(sink).create(RequestContext(project_id="p1", user_id="u", request_id="req-1"),
                           Action.ATTACH_VOLUME, resource_uuid="vol-1",
                           detail=Detail.ATTACH_ERROR)
    return dataclasses.replace(sink.messages[0], **changes)


def _body(**message_changes) -> bytes:
    document = json.loads(_record().to_wire())
    document["message"].update(message_changes)
    return json.dumps(document).encode()


# --- envelope --------------------------------------------------------------------------


def test_envelope_round_trip_sets_expiry_from_the_store_ttl():
    record = _record()
    decoded = Message.from_wire(record.to_wire(), ttl=60)
    assert decoded == dataclasses.replace(record,
                                          expires_at=record.created_at + dt.timedelta(seconds=60))
    assert (decoded.expires_at - decoded.created_at).total_seconds() == 60


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'{"v": 2, "message": {}}', "unsupported envelope version 2"),
    (b"[1]", "unsupported envelope version None"),
    (b'{"v": 1}', "envelope has no message object"),
    (_body(detail_id="999"), "not in the catalog"),
    (_body(action_id="999"), "not in the catalog"),
    (_body(resource_type="DISK"), "not in the catalog"),
    (_body(message_level="FATAL"), "not in the catalog"),
    (_body(kind="PRIVATE"), "not in the catalog"),
    (_body(event_id="VOLUME_VOLUME_001_003"), "event_id 'VOLUME_VOLUME_001_003' should be"),
    (_body(id="not-a-uuid"), "id must be a UUID"),
    (_body(id=str(uuid.uuid4()).upper()), "canonical form"),
    (_body(project_id=None), "an API message needs a project_id"),
    (_body(project_id="p" * 256), "an API message needs a project_id"),
    (_body(kind="SERVICE"), "a SERVICE message carries no project_id"),
    (_body(resource_uuid="x" * 256), "resource_uuid is longer than 255"),
    (_body(host=7), "host must be a string"),
    (_body(request_id="req\x00"), "NUL"),
    (_body(created_at="yesterday"), "created_at must be an ISO 8601 time"),
    (json.dumps({"v": 1, "message": {"extra": 1}}).encode(), "fields differ"),
    (b"x" * (envelope.MAX_BYTES + 1), "more than 8192"),
])
def test_envelope_rejections_say_why(body, reason):
    with pytest.raises(envelope.InvalidEnvelope, match=reason.replace("(", r"\(")):
        Message.from_wire(body, ttl=60)


# --- spool -------------------------------------------------------------------------------


def test_spool_is_fifo_durable_and_bounded(tmp_path):
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_messages=3)
    for i in range(5):
        spool.append(f"m{i}".encode())
    assert spool.dropped == 2 and len(spool) == 3
    assert [body for _, body in spool.oldest(10)] == [b"m2", b"m3", b"m4"]
    first = spool.oldest(1)[0][0]
    spool.remove([first])
    spool.close()
    reopened = Spool(path, max_messages=3)  # survives a restart
    assert [body for _, body in reopened.oldest(10)] == [b"m3", b"m4"]


def test_spool_keeps_every_envelope_under_concurrent_appends(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite", max_messages=100_000)

    def append(worker: int) -> None:
        for i in range(300):
            spool.append(f"{worker}-{i}".encode())

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bodies = [body for _, body in spool.oldest(10_000)]
    assert len(bodies) == len(set(bodies)) == 1200 == len(spool)


# --- forwarder and collector ------------------------------------------------------------------


@pytest.fixture
def clean_bus():
    """kombu's memory transport is process-wide: start and end with empty queues."""
    def purge() -> None:
        with bus.connect(MEMORY) as connection:
            bus.declare(connection)
            for queue in (bus.messages_queue(), bus.dead_letter_queue()):
                queue(connection.default_channel).purge()

    purge()
    yield
    purge()


@pytest.fixture
def collector(engine, clean_bus):
    stop = threading.Event()
    instance = Collector(MEMORY, engine, ttl=3600, batch_size=10, flush_interval=0.1)
    thread = threading.Thread(target=instance.run, args=(stop,), daemon=True)
    thread.start()
    assert instance.ready.wait(10)
    yield instance
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def _rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM messages")).mappings()]


def _wait(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _publish(body: bytes) -> None:
    with bus.connect(MEMORY) as connection:
        Producer(connection.default_channel).publish(
            body, exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY,
            content_type="application/json", content_encoding="utf-8")


def test_sdk_to_bus_to_collector_stores_each_message_once(engine, collector):
    messenger = Messenger.from_url(MEMORY)
    ids = [messenger.create(RequestContext(project_id="p1", request_id=f"req-{i}"),
                            Action.ATTACH_VOLUME, resource_uuid=f"vol-{i}",
                            detail=Detail.ATTACH_ERROR) for i in range(95)]
    _wait(lambda: len(_rows(engine)) == 95)  # 9 full batches and a partial one
    rows = {r["id"]: r for r in _rows(engine)}
    assert set(rows) == set(ids)
    assert rows[ids[7]]["request_id"] == "req-7" and rows[ids[7]]["event_id"] == (
        "VOLUME_VOLUME_002_021")
    assert messenger.sink.stats.published == 95  # type: ignore[attr-defined]
    messenger.close()


def test_redelivery_is_ignored(engine, collector):
    body = _record().to_wire()
    _publish(body)
    _publish(body)
    _wait(lambda: collector.stats.stored + collector.stats.duplicates == 2)
    assert len(_rows(engine)) == 1 and collector.stats.duplicates == 1


def test_poison_goes_to_dead_letters_and_the_rest_flows(engine, collector):
    good = [_record(id=str(uuid.uuid4())).to_wire() for _ in range(3)]
    for body in (good[0], b"{broken", _body(detail_id="999"), good[1],
                 _body(resource_uuid="x" * 300), good[2]):
        _publish(body)
    _wait(lambda: len(_rows(engine)) == 3 and collector.stats.dead_lettered == 3)
    letters = list_dead_letters(MEMORY)
    assert len(letters) == 3
    assert [letter["reason"].split(":")[0] for letter in letters] == [
        "not JSON", "not in the catalog", "resource_uuid is longer than 255 characters"]
    result = CliRunner().invoke(main, ["dead-letters", "list", "--bus", MEMORY,
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3  # listing leaves them in the queue


# A second source, as notifications.py adds one: its handler is not ours to trust.
EXTRA_KEY = "test.extra"
EXTRA_QUEUE = Queue("usermessages.test.extra", bus.EXCHANGE, routing_key=EXTRA_KEY)


def _extra_decide(body: bytes) -> Decision:
    """Raises on b"raise", returns a message no driver can store on b"surrogate"."""
    if body == b"raise":
        raise RecursionError("maximum recursion depth exceeded")
    message = Message.from_wire(_record(id=str(uuid.uuid4())).to_wire(), ttl=3600)
    if body == b"surrogate":
        # No Message can hold this (its constructor refuses it): forced past it here
        # to exercise the collector's last line of defence against a refused row.
        object.__setattr__(message, "resource_uuid", "vol-\ud800")
    return Accept(message)


@pytest.fixture
def two_source_collector(engine, clean_bus):
    with bus.connect(MEMORY) as connection:
        EXTRA_QUEUE(connection.default_channel).declare()
        EXTRA_QUEUE(connection.default_channel).purge()
    stop = threading.Event()
    instance = Collector(MEMORY, engine, ttl=3600, batch_size=10, flush_interval=0.1,
                         extra_sources=(Source("extra", EXTRA_QUEUE, _extra_decide),))
    thread = threading.Thread(target=instance.run, args=(stop,), daemon=True)
    thread.start()
    assert instance.ready.wait(10)
    yield instance
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def _publish_extra(body: bytes) -> None:
    with bus.connect(MEMORY) as connection:
        Producer(connection.default_channel).publish(
            body, exchange=bus.EXCHANGE, routing_key=EXTRA_KEY,
            content_type="application/octet-stream", content_encoding="binary")


def test_a_handler_exception_is_a_dead_letter_not_a_lost_broker(engine, two_source_collector,
                                                               caplog):
    collector = two_source_collector
    for body in (b"ok", b"raise", b"ok", b"ok"):
        _publish_extra(body)
    for _ in range(3):
        _publish(_record(id=str(uuid.uuid4())).to_wire())
    _wait(lambda: len(_rows(engine)) == 6 and collector.stats.dead_lettered == 1)
    [letter] = list_dead_letters(MEMORY)
    assert letter["source"] == "extra"
    assert letter["reason"].startswith("RecursionError in the extra handler")
    assert "lost the broker" not in caplog.text


def test_a_row_the_store_refuses_is_isolated_and_dead_lettered(engine, two_source_collector,
                                                              caplog):
    collector = two_source_collector
    # One batch of 10 holding the bad row: the other 9 must still be stored.
    for body in (b"ok",) * 4 + (b"surrogate",) + (b"ok",) * 5:
        _publish_extra(body)
    _wait(lambda: len(_rows(engine)) == 9 and collector.stats.dead_lettered == 1)
    [letter] = list_dead_letters(MEMORY)
    assert letter["source"] == "extra"
    assert letter["reason"].startswith("store refused the row: ")
    assert collector.stats.db_retries == 0 and "lost the broker" not in caplog.text
    _publish(_record(id=str(uuid.uuid4())).to_wire())  # and the rest keeps flowing
    _wait(lambda: len(_rows(engine)) == 10)


def test_store_down_retries_without_losing_anything(postgresql_admin_url, clean_bus):
    from tests.harness import servers

    url = servers.create_database(postgresql_admin_url, f"down_{uuid.uuid4().hex[:8]}")
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:  # the store refuses connections for a while
        conn.execute(text("ALTER TABLE messages RENAME TO messages_away"))
    stop = threading.Event()
    instance = Collector(MEMORY, engine, ttl=3600, batch_size=5, flush_interval=0.05,
                         max_backoff=0.2)
    thread = threading.Thread(target=instance.run, args=(stop,), daemon=True)
    thread.start()
    try:
        bodies = [_record(id=str(uuid.uuid4())).to_wire() for _ in range(12)]
        for body in bodies:
            _publish(body)
        _wait(lambda: instance.stats.db_retries >= 2)
        assert instance.stats.stored == 0
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE messages_away RENAME TO messages"))
        _wait(lambda: len(_rows(engine)) == 12)
    finally:
        stop.set()
        thread.join(10)
    assert instance.stats.stored == 12


def test_broker_unreachable_create_stays_fast_and_spools(tmp_path):
    from tests.harness import servers

    url = f"amqp://guest:guest@127.0.0.1:{servers.free_port()}//"  # nothing listens
    spool_path = tmp_path / "spool.sqlite"
    messenger = Messenger.from_url(url, spool_path=str(spool_path), timeout=0.5)
    durations = []
    for _ in range(200):
        started = time.perf_counter()
        assert messenger.create(RequestContext(project_id="p"), Action.ATTACH_VOLUME,
                                detail=Detail.ATTACH_ERROR) is not None
        durations.append(time.perf_counter() - started)
    assert max(durations) < 0.05, max(durations)  # the precise bound is in bench/
    sink = messenger.sink
    _wait(lambda: sink.stats.spooled == 200)  # type: ignore[attr-defined]
    assert sink.pending() == 200  # type: ignore[attr-defined]
    messenger.close()
    assert len(Spool(spool_path)) == 200  # still there for the next start


def test_sink_both_stores_once(engine, db_url, collector):
    messenger = Messenger.from_url(MEMORY, sink="both", db_url=db_url)
    message_id = messenger.create(RequestContext(project_id="p1"), Action.ATTACH_VOLUME,
                                  detail=Detail.ATTACH_ERROR)
    assert [r["id"] for r in _rows(engine)] == [message_id]  # at once, directly
    _wait(lambda: collector.stats.duplicates == 1)  # the bus copy is recognised
    assert len(_rows(engine)) == 1
    messenger.close()


def test_sink_both_with_the_database_down_delivers_through_the_bus(engine, collector):
    # Nothing listens on port 1: the direct path fails, the bus path takes the message.
    # The fan-out fails only when every path failed, so create() succeeds.
    messenger = Messenger.from_url(MEMORY, sink="both",
                                   db_url="postgresql://nobody@127.0.0.1:1/none")
    message_id = messenger.create(RequestContext(project_id="p1"), Action.ATTACH_VOLUME,
                                  detail=Detail.ATTACH_ERROR)
    assert message_id is not None
    assert messenger.stats.created == 1 and messenger.stats.failed == 0
    _wait(lambda: [r["id"] for r in _rows(engine)] == [message_id])  # through the collector
    messenger.close()


def test_from_settings_follows_the_config(db_url, engine):
    messenger = Messenger.from_settings(Settings(database_connection=db_url, sdk_sink="db"))
    messenger.create(RequestContext(project_id="p1"), Action.ATTACH_VOLUME,
                     detail=Detail.ATTACH_ERROR)
    assert len(_rows(engine)) == 1
    with pytest.raises(Exception, match="needs a bus URL"):
        Messenger.from_url(db_url, sink="bus")


def test_the_sdk_side_of_the_bus_loads_no_server_code():
    import subprocess
    import sys

    code = ("import sys, usermessages.sinks.bus, usermessages.bus\n"
            "print(sorted({'fastapi', 'starlette', 'uvicorn', 'usermessages.collector',"
            " 'usermessages.api'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
