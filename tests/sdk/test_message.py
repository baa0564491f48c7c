"""The message is one type: built by one constructor, the same row whatever the path.

The SDK, the notification mapper, the envelope and the store all go through
``Message``; these tests hold every path to the same row for the same input,
the same refusal (and text) for the same bad input, and the catalog's
``event_id`` formula to one place in the code.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from usermessages import (
    Action,
    Detail,
    Kind,
    Level,
    Messenger,
    RequestContext,
    Resource,
    catalog,
    envelope,
)
from usermessages.collector import Accept
from usermessages.errors import CatalogError, StoreError
from usermessages.message import MAX_FIELD, Message
from usermessages.notifications import NAMESPACE, Rule, decide
from usermessages.store import messages as store
from usermessages.store import writer

ROOT = Path(__file__).resolve().parents[2]
TTL = 2592000  # 30 days: CREATED, a fixed past time, has not expired
CREATED = dt.datetime(2026, 11, 20, 8, 30, 15, 250000)


class Capture:
    """A sink that keeps what the SDK hands it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def close(self) -> None:
        pass


def _sdk(**changes: Any) -> Message:
    sink = Capture()
    context = RequestContext(project_id="p1", user_id="u1", request_id="req-1")
    arguments: dict[str, Any] = {"resource_uuid": "vol-1", "detail": Detail.ATTACH_ERROR,
                                 "level": Level.WARNING, **changes}
    Messenger(sink, ttl=TTL, host="node-7").create(context, Action.ATTACH_VOLUME, **arguments)
    [message] = sink.messages
    return message


def _direct(**changes: Any) -> Message:
    arguments: dict[str, Any] = {
        "ttl": TTL, "project_id": "p1", "user_id": "u1", "request_id": "req-1",
        "resource_uuid": "vol-1", "detail": Detail.ATTACH_ERROR, "level": Level.WARNING,
        "host": "node-7", **changes}
    return Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, **arguments)


def _notified(notification_id: str, **payload: Any) -> Message:
    rule = Rule(Action.ATTACH_VOLUME, Detail.ATTACH_ERROR, Resource.VOLUME, Level.WARNING,
                {"resource_id": ("payload", "volume_id"),
                 "exception": ("payload", "reason")})
    body = {"message_id": notification_id, "publisher_id": "volume.node-7",
            "event_type": "volume.attach", "priority": "ERROR",
            "payload": {"volume_id": "vol-1", **payload},
            "timestamp": CREATED.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "_context_project_id": "p1", "_context_user_id": "u1",
            "_context_request_id": "req-1"}
    decision = decide(json.dumps(body).encode(), {"volume.attach": rule}, TTL)
    assert isinstance(decision, Accept), decision
    return decision.message


# --- one constructor: every path, the same row -------------------------------------------


def test_the_sdk_and_the_constructor_build_the_same_row():
    built = _sdk().to_row()
    expected = _direct(message_id=built["id"], created_at=built["created_at"]).to_row()
    assert built == expected
    assert built["expires_at"] - built["created_at"] == dt.timedelta(seconds=TTL)


def test_a_notification_and_the_constructor_build_the_same_row():
    notification_id = str(uuid.uuid4())
    mapped = _notified(notification_id)
    direct = _direct(message_id=str(uuid.uuid5(NAMESPACE, notification_id)),
                     created_at=CREATED)
    assert mapped.to_row() == direct.to_row()
    # A class name picks the detail the way a class does (Cinder's precedence).
    named = _notified(notification_id, reason="NoValidBackend('pool gold is full')")
    assert (named.detail, named.exception_class) == (Detail.NO_BACKEND_AVAILABLE,
                                                     "NoValidBackend")
    assert _sdk(exception=catalog.NoValidBackend("x")).detail is Detail.NO_BACKEND_AVAILABLE


@pytest.mark.parametrize("kind", [Kind.API, Kind.SERVICE, Kind.SYSTEM])
def test_the_envelope_carries_the_message_unchanged(kind):
    if kind is Kind.API:
        message = _sdk(exception=catalog.SnapshotIsBusy("busy"))
    else:
        message = Message.create(kind, Action.SERVICE_STATUS, Resource.SERVICE, ttl=TTL,
                                 detail=Detail.SERVICE_DOWN, host="node-2", request_id="r")
    assert Message.from_wire(message.to_wire(), TTL) == message
    wire = json.loads(message.to_wire())["message"]
    assert set(wire) == envelope.FIELDS
    assert wire["event_id"] == message.event_id == message.to_row()["event_id"]


def test_every_store_path_stores_the_same_row(engine):
    """The SDK's direct sink and the collector's batch insert store identical rows."""
    direct, batched = _sdk(), _sdk()
    writer.Writer(engine).write_one(direct)
    assert writer.Writer(engine).write([batched, batched]).new == 1
    with engine.connect() as conn:
        stored = {row.id: row for row in
                  store.list_messages_all_projects(conn, store.ListQuery())}
    for message in (direct, batched):
        row = stored[message.id]
        assert {key: getattr(row, key) for key in message.to_row()} == message.to_row()
        assert (row.deleted, row.deleted_at) == (False, None)
    assert set(direct.to_row()) == writer.MESSAGE_COLUMNS  # to_row is every message column


def test_the_store_fills_in_no_field_of_a_message(engine):
    """A row missing a message column is refused, not stored with a default kind."""
    row = _sdk().to_row()
    del row["kind"]
    with engine.begin() as conn, pytest.raises(StoreError, match=r"lacks \['kind'\]"):
        writer.insert(conn, [row])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 0


# --- the same rules, and the same words, on every path ------------------------------------


BAD = {
    "oversize": ({"resource_uuid": "x" * (MAX_FIELD + 1)},
                 "resource_uuid is longer than 255 characters"),
    "nul": ({"resource_uuid": "vol-\x00"}, "resource_uuid contains a NUL character"),
    "lone surrogate": ({"user_id": "\udcff"}, r"user_id is not valid Unicode \(a lone"),
    "not text": ({"host": 7}, "host must be a string, not int"),
    "no project": ({"project_id": ""}, "an API message needs a project_id"),
    "long project": ({"project_id": "p" * 256}, "an API message needs a project_id"),
}


@pytest.mark.parametrize("name", BAD)
def test_the_constructor_and_the_envelope_refuse_alike(name):
    change, reason = BAD[name]
    with pytest.raises(CatalogError, match=reason):
        _direct(**change)
    document = json.loads(_direct().to_wire())
    document["message"].update(change)
    body = json.dumps(document).encode("utf-8", errors="surrogatepass")
    with pytest.raises(envelope.InvalidEnvelope, match=reason):
        Message.from_wire(body, TTL)


def test_admin_kinds_carry_no_project():
    with pytest.raises(CatalogError, match="a SERVICE message carries no project_id"):
        Message.create(Kind.SERVICE, Action.SERVICE_STATUS, Resource.SERVICE, ttl=TTL,
                       project_id="p1")


def test_a_message_is_frozen_and_keeps_its_rules_when_copied():
    message = _direct()
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.user_id = "someone else"  # type: ignore[misc]
    with pytest.raises(CatalogError, match="resource_uuid contains a NUL"):
        dataclasses.replace(message, resource_uuid="\x00")
    with pytest.raises(CatalogError, match="id must be a UUID"):
        dataclasses.replace(message, id="not-a-uuid")
    with pytest.raises(CatalogError, match="detail must be a catalog Detail"):
        dataclasses.replace(message, detail="021")


def test_a_mapped_exception_wins_over_the_detail_and_its_text_is_dropped():
    message = _direct(exception=catalog.NoValidBackend("pool gold has 3 GiB free"),
                      detail=Detail.ATTACH_ERROR)
    assert message.detail is Detail.NO_BACKEND_AVAILABLE
    assert message.exception_class == "usermessages.catalog.NoValidBackend"
    assert "pool gold" not in repr(message) and "pool gold" not in str(message.to_wire())
    assert _direct(exception=KeyError("k"), detail=None).detail is Detail.UNKNOWN_ERROR
    with pytest.raises(CatalogError, match="not both"):
        _direct(exception=KeyError("k"), exception_name="KeyError")


# --- structure: one formula, one constructor -----------------------------------------------


def _sources() -> list[Path]:
    return sorted([*(ROOT / "usermessages").rglob("*.py"), *(ROOT / "blockstorage").rglob("*.py")])


def test_the_event_id_formula_is_written_once():
    formula = re.compile(r"""f["']VOLUME_\{""")
    writers = [path.relative_to(ROOT).as_posix() for path in _sources()
               if formula.search(path.read_text(encoding="utf-8"))]
    assert writers == ["usermessages/catalog.py"]


def test_messages_are_built_only_in_the_message_module():
    """Nobody calls Message(...) directly: create (or from_wire) applies the rules."""
    callers = []
    for path in _sources():
        if path == ROOT / "usermessages" / "message.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in ("Message", "UserMessage"):
                    callers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert callers == []

