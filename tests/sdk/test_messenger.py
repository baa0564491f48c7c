"""The producer SDK: sanctioned catalog only, never breaks its caller."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import subprocess
import sys
import time

import pytest

from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource, catalog
from usermessages.errors import CatalogError
from usermessages.store import messages as store


def _rows(engine):
    with engine.connect() as conn:
        return store.list_messages_all_projects(conn, store.ListQuery())


def test_create_stores_ids_not_text(engine, db_url):
    messenger = Messenger.from_url(db_url, ttl=300, host="node-7")
    context = RequestContext(project_id="p1", user_id="u1", request_id="req-abc")
    message_id = messenger.create(
        context, Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid="vol-1",
        exception=catalog.NoValidBackend("pool gold has 3 GiB free, asked 500"),
    )
    [row] = _rows(engine)
    assert row.id == message_id
    assert (row.event_id, row.action_id, row.detail_id) == (
        "VOLUME_VOLUME_001_003", "001", "003")
    assert (row.project_id, row.user_id, row.request_id) == ("p1", "u1", "req-abc")
    assert (row.resource_type, row.resource_uuid, row.kind) == ("VOLUME", "vol-1", "API")
    assert row.exception_class == "usermessages.catalog.NoValidBackend"
    assert row.host == "node-7"
    assert row.expires_at - row.created_at == dt.timedelta(seconds=300)
    # The exception's text never reaches the store.
    assert not any("pool gold" in str(value) for value in dataclasses.astuple(row))
    assert messenger.stats.created == 1 and messenger.stats.failed == 0


def test_create_from_request_context(engine, db_url):
    messenger = Messenger.from_url(db_url)
    context = RequestContext(
        project_id="p1", message_action=Action.BACKUP_CREATE,
        message_resource_type=Resource.VOLUME_BACKUP, message_resource_id="bk-1",
    )
    messenger.create_from_request_context(context, detail=Detail.BACKUP_SERVICE_DOWN,
                                          level=Level.WARNING)
    [row] = _rows(engine)
    assert row.event_id == "VOLUME_VOLUME_BACKUP_013_018"
    assert (row.resource_uuid, row.message_level) == ("bk-1", "WARNING")


def test_service_and_system_messages_have_no_project(engine, db_url):
    messenger = Messenger.from_url(db_url)
    messenger.create_service_message(Action.SERVICE_STATUS, Detail.SERVICE_DOWN, host="vol-node-2")
    messenger.create_system_message(Action.MESSAGE_BUS, Detail.BROKER_UNREACHABLE)
    rows = sorted(_rows(engine), key=lambda r: r.kind)
    assert [(r.kind, r.project_id, r.event_id) for r in rows] == [
        ("SERVICE", None, "VOLUME_SERVICE_101_101"),
        ("SYSTEM", None, "VOLUME_SYSTEM_102_103"),
    ]
    assert rows[0].host == "vol-node-2"


@pytest.mark.parametrize(
    "call",
    [
        lambda m, c: m.create(c, "001"),
        lambda m, c: m.create(c, Action.ATTACH_VOLUME, detail="021"),
        lambda m, c: m.create(c, Action.ATTACH_VOLUME, resource_type="VOLUME"),
        lambda m, c: m.create(c, Action.ATTACH_VOLUME, level="ERROR"),
        lambda m, c: m.create(c, Action.ATTACH_VOLUME, exception="free text"),
        lambda m, c: m.create(c, Action.ATTACH_VOLUME, resource_uuid="x" * 256),
        lambda m, c: m.create(RequestContext(project_id=""), Action.ATTACH_VOLUME),
        lambda m, c: m.create({"project_id": "p"}, Action.ATTACH_VOLUME),
        lambda m, c: m.create_from_request_context(c),
        # Text no store can hold: the collector would only dead-letter it.
        lambda m, c: m.create(c, Action.ATTACH_VOLUME, resource_uuid="vol-\x00"),
        lambda m, c: m.create(RequestContext(project_id="p", user_id="\ud800"),
                              Action.ATTACH_VOLUME),
        lambda m, c: m.create_service_message(Action.ATTACH_VOLUME, Detail.ATTACH_ERROR,
                                              host="node-\udcff"),
    ],
    ids=["raw-action", "raw-detail", "raw-resource", "raw-level", "text-exception",
         "oversize-uuid", "no-project", "dict-context", "no-context-action", "nul",
         "lone-surrogate", "lone-surrogate-host"],
)
def test_programming_errors_raise(call):
    class NeverDeliver:
        def deliver(self, record):
            raise AssertionError("nothing may be delivered")

        def close(self):
            pass

    with pytest.raises(CatalogError):
        call(Messenger(NeverDeliver()), RequestContext(project_id="p"))


def test_database_down_never_raises_is_logged_and_counted(caplog):
    # Nothing listens on port 1: the database is "down".
    messenger = Messenger.from_url("postgresql://nobody@127.0.0.1:1/none")
    context = RequestContext(project_id="p1")
    started = time.perf_counter()
    with caplog.at_level(logging.ERROR, logger="usermessages.messenger"):
        result = messenger.create(context, Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
    assert result is None
    assert time.perf_counter() - started < 5
    assert messenger.stats.failed == 1 and messenger.stats.created == 0
    assert "could not record user message" in caplog.text
    assert "VOLUME_VOLUME_002_021" in caplog.text


def test_flush_and_close_of_a_database_messenger(engine, db_url):
    messenger = Messenger.from_url(db_url)
    messenger.create(RequestContext(project_id="p1"), Action.ATTACH_VOLUME,
                     detail=Detail.ATTACH_ERROR)
    assert messenger.flush(0) == 0  # delivered synchronously: nothing ever waits
    assert messenger.close(timeout=0) == 0 and messenger.stats.lost == 0
    assert len(_rows(engine)) == 1


def _drain_envelopes(bus) -> int:  # type: ignore[no-untyped-def]
    """Empty the in-process bus's queue; how many envelopes it held (a pack holds many)."""
    from usermessages import envelope

    count = 0
    with bus.connect("memory://") as connection:
        bus.declare(connection)
        queue = bus.messages_queue()(connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            packed = message.content_type == envelope.PACK_CONTENT_TYPE
            count += len(envelope.split(body)) if packed else 1
    return count


def test_close_on_the_in_process_bus_waits_for_the_forwarder():
    """memory:// with nobody consuming: close() still hands every message to the bus."""
    from usermessages import bus

    def purge() -> int:
        return _drain_envelopes(bus)

    purge()  # the in-process bus is shared by the whole test process
    messenger = Messenger.from_url("memory://")
    for i in range(1000):
        messenger.create(RequestContext(project_id="p1", request_id=f"req-{i}"),
                         Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
    assert messenger.close(timeout=30) == 0
    assert messenger.sink.stats.published == 1000  # type: ignore[attr-defined]
    assert purge() == 1000


def test_close_while_threads_create_counts_every_message():
    """Whatever the interleaving, each create() is delivered, counted lost, or counted failed."""
    import threading

    from usermessages import bus

    def purge() -> int:
        return _drain_envelopes(bus)

    purge()
    messenger = Messenger.from_url("memory://")
    returned: list[str | None] = []
    started = threading.Barrier(5)

    def create() -> None:
        started.wait()
        for _ in range(2000):
            returned.append(messenger.create(RequestContext(project_id="p1"),
                                             Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    lost = messenger.close(timeout=0.05)  # mid-stream: the creators are still going
    for thread in threads:
        thread.join()
    ids = [i for i in returned if i is not None]
    published = messenger.sink.stats.published  # type: ignore[attr-defined]
    assert len(returned) == 8000
    assert len(ids) == published + lost and lost == messenger.stats.lost
    assert messenger.stats.failed == 8000 - len(ids) > 0  # created after close
    assert purge() == published


def test_sdk_import_pulls_in_no_server_libraries():
    code = (
        "import sys, usermessages\n"
        "from usermessages import Messenger, RequestContext, Action, Detail, Resource\n"
        "heavy = {'fastapi', 'starlette', 'uvicorn', 'oslo_policy', 'oslo_config', 'sqlalchemy',"
        " 'click', 'usermessages.api', 'usermessages.cli', 'usermessages.store'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_surface_is_sorted_and_importable():
    import usermessages

    assert usermessages.__all__ == sorted(usermessages.__all__)
    for name in usermessages.__all__:
        assert getattr(usermessages, name) is not None
