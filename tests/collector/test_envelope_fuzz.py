"""Crafted input never reaches the store unchecked: property-based fuzzing of the decoder.

Whatever the bytes, ``Message.from_wire`` either raises InvalidEnvelope or
returns a message that really inserts on SQLite and on PostgreSQL. A RecursionError,
an OverflowError or a row a driver cannot encode would stall every collector
(the loop would take it for a lost broker), so the property is checked
against both real stores, not against a model of them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.harness import servers
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource, envelope
from usermessages.collector import Collector
from usermessages.config import MAX_MESSAGE_TTL, Settings, check_ttl, load
from usermessages.errors import ConfigError
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer

TTL = 2592000
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory,
           postgresql_admin_url: str) -> Iterator[list[Engine]]:
    """One SQLite and one PostgreSQL store, migrated, shared by every example."""
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.sqlite"
    pg_url = servers.create_database(postgresql_admin_url, f"fuzz_{uuid.uuid4().hex[:8]}")
    engines = [store_engine.connect(url) for url in (sqlite_url, pg_url)]
    for engine in engines:
        migrate.upgrade(engine)
    yield engines
    for engine in engines:
        engine.dispose()


def _check(body: bytes, engines: list[Engine]) -> Message | None:
    """The property: InvalidEnvelope, or a message every store inserts (rolled back after)."""
    try:
        message = Message.from_wire(body, TTL)
    except envelope.InvalidEnvelope:
        return None
    for engine in engines:
        with engine.connect() as conn, conn.begin() as transaction:
            assert writer.insert(conn, writer.rows_of([message])).new == 1, engine.dialect.name
            transaction.rollback()
    return message


# --- strategies ------------------------------------------------------------------------

# Text as hostile as JSON can carry: NUL, controls, non-BMP and lone surrogates.
hostile_text = st.text(st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),
    st.sampled_from("\x00\n\"\\{}[]"),
), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(hostile_text, children, max_size=5),
    max_leaves=30,
)
plain_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                     max_size=255)
offsets = st.builds(dt.timedelta, minutes=st.integers(-(24 * 60 - 1), 24 * 60 - 1))
times = st.one_of(
    st.datetimes(),  # naive, year 1 to 9999
    st.datetimes(timezones=st.builds(dt.timezone, offsets)),
    st.sampled_from([
        dt.datetime.max, dt.datetime.min,
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=5))),
    ]),
)


class _Capture:
    def __init__(self) -> None:
        self.message: Message | None = None

    def deliver(self, message: Message) -> None:
        self.message = message

    def close(self) -> None:
        pass


@st.composite
def valid_messages(draw: st.DrawFn) -> dict[str, Any]:
    """The message object of an envelope the SDK really builds, with varied contents."""
    sink = _Capture()
    messenger = Messenger(sink, host=draw(plain_text))
    action, detail = draw(st.sampled_from(Action)), draw(st.sampled_from(Detail))
    level = draw(st.sampled_from(Level))
    if draw(st.booleans()):
        context = RequestContext(project_id=draw(plain_text.filter(bool)),
                                 user_id=draw(plain_text), request_id=draw(plain_text))
        messenger.create(context, action, draw(st.sampled_from(Resource)),
                         resource_uuid=draw(plain_text), detail=detail, level=level)
    else:
        messenger.create_service_message(action, detail, host=draw(plain_text), level=level)
    return json.loads(sink.message.to_wire())["message"]


def _mutate(draw: st.DrawFn, message: dict[str, Any]) -> None:
    name = draw(st.sampled_from(sorted(envelope.FIELDS)))
    choice = draw(st.integers(0, 5))
    if choice == 0:
        message[name] = draw(json_values)
    elif choice == 1:
        message[name] = draw(hostile_text)
    elif choice == 2:
        message.pop(name, None)
    elif choice == 3:
        message[draw(hostile_text)] = draw(json_values)
    elif choice == 4:
        message["created_at"] = draw(times).isoformat()
    else:
        message["created_at"] = draw(hostile_text)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> bytes:
    message = draw(valid_messages())
    for _ in range(draw(st.integers(0, 3))):
        _mutate(draw, message)
    document: dict[str, Any] = {"v": draw(st.sampled_from([1, 1, 1, True, 1.0, 2])),
                                "message": message}
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode(
        "utf-8", errors="surrogatepass")


# --- the properties --------------------------------------------------------------------


# Deep nesting is what a RecursionError needs; random bytes rarely nest.
nested = st.builds(lambda opener, depth: opener * depth,
                   st.sampled_from([b"[", b'{"a":', b'{"v":1,"message":[']),
                   st.integers(0, envelope.MAX_BYTES))


@FUZZ
@given(body=st.binary(max_size=envelope.MAX_BYTES + 16) | nested)
def test_arbitrary_bytes_are_rejected_or_stored(stores, body):
    _check(body, stores)


@FUZZ
@given(value=json_values, wrapped=st.booleans())
def test_arbitrary_json_is_rejected_or_stored(stores, value, wrapped):
    document = {"v": 1, "message": value} if wrapped else value
    _check(json.dumps(document).encode(), stores)


@FUZZ
@given(body=mutated_envelopes())
def test_mutated_envelopes_are_rejected_or_stored(stores, body):
    _check(body, stores)


@FUZZ
@given(message=valid_messages())
def test_every_envelope_the_sdk_builds_is_stored(stores, message):
    stored = _check(json.dumps({"v": 1, "message": message}).encode(), stores)
    assert stored is not None and stored.id == message["id"]


# --- the crafted envelopes that stalled every collector --------------------------------


def _valid(**changes: Any) -> bytes:
    sink = _Capture()
    Messenger(sink).create(RequestContext(project_id="p1"), Action.ATTACH_VOLUME,
                           detail=Detail.ATTACH_ERROR)
    message = json.loads(sink.message.to_wire())["message"]
    message.update(changes)
    return json.dumps({"v": 1, "message": message}).encode()


CRAFTED = {
    "far future": (_valid(created_at="9999-12-31T23:59:59"), "created_at is outside"),
    "year 1 east of UTC": (_valid(created_at="0001-01-01T00:00:00+05:00"),
                           "created_at is outside"),
    "lone surrogate": (_valid(user_id="\ud800"), "user_id is not valid Unicode"),
    "nested brackets": (b"[" * 3500 + b"]" * 3500, "nested too deeply"),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_the_crafted_envelopes_are_rejected_with_a_reason(name):
    body, reason = CRAFTED[name]
    with pytest.raises(envelope.InvalidEnvelope, match=reason):
        Message.from_wire(body, TTL)


def test_created_at_range_is_1970_to_one_day_ahead():
    now = dt.datetime(2026, 6, 1, 12, 0)
    ok = [("1970-01-01T00:00:00", dt.datetime(1970, 1, 1)),
          ("1970-01-01T05:00:00+05:00", dt.datetime(1970, 1, 1)),
          ("2026-06-02T12:00:00", now + dt.timedelta(days=1)),
          ("2026-06-02T07:00:00-05:00", now + dt.timedelta(days=1))]
    for text, expected in ok:
        message = Message.from_wire(_valid(created_at=text), TTL, now=now)
        assert message.created_at == expected, text
        assert message.expires_at == expected + dt.timedelta(seconds=TTL)
    for text in ("1969-12-31T23:59:59", "1970-01-01T04:59:59+05:00",
                 "2026-06-02T12:00:01", "2026-06-02T07:00:01-05:00"):
        with pytest.raises(envelope.InvalidEnvelope, match="created_at is outside"):
            Message.from_wire(_valid(created_at=text), TTL, now=now)


# --- an absurd message_ttl is refused where it is set ----------------------------------


@pytest.mark.parametrize("ttl", [0, -1, MAX_MESSAGE_TTL + 1, 10**12, 10**30])
def test_an_absurd_message_ttl_is_refused(tmp_path, ttl):
    path = tmp_path / "u.conf"
    path.write_text(f"[DEFAULT]\nmessage_ttl = {ttl}\n")
    with pytest.raises(ConfigError, match="message_ttl must be"):
        load(path)
    with pytest.raises(ConfigError, match="message_ttl must be"):
        Collector("memory://", None, ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="message_ttl must be"):
        Messenger(_Capture(), ttl=ttl)


def test_the_longest_message_ttl_still_gives_an_expiry():
    check_ttl(MAX_MESSAGE_TTL)
    message = Message.from_wire(_valid(), MAX_MESSAGE_TTL)
    assert (message.expires_at - message.created_at).days >= 36500
    assert Settings(message_ttl=MAX_MESSAGE_TTL).message_ttl == MAX_MESSAGE_TTL
