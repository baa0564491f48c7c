"""The one writer every way in uses: batches, isolation of refused rows, outages, counters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.sdk.test_message import _sdk
from usermessages import metrics
from usermessages.errors import StoreError, StoreUnavailable
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer
from usermessages.store.writer import Refusal, Writer


def _poisoned() -> Message:
    """A message no driver can store: a lone surrogate (Message itself refuses one)."""
    message = _sdk()
    object.__setattr__(message, "resource_uuid", "vol-\ud800")
    return message


def _stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT id FROM messages")).scalars())


def _value(counter) -> float:  # type: ignore[no-untyped-def]
    return counter._value.get()


def test_a_batch_is_stored_once_and_counted_once(engine):
    batch = [_sdk() for _ in range(5)]
    stored_before, duplicates_before = _value(metrics.STORED), _value(metrics.DUPLICATES)
    first = Writer(engine).write(batch)
    again = Writer(engine).write([*batch[3:], batch[4]])  # redelivered, and an id twice
    assert (first.settled, first.new, first.duplicates, first.refused) == (5, 5, 0, ())
    assert (again.settled, again.new, again.duplicates) == (3, 0, 3)
    assert _stored_ids(engine) == {m.id for m in batch}
    assert _value(metrics.STORED) - stored_before == 5
    assert _value(metrics.DUPLICATES) - duplicates_before == 3


def test_a_refused_row_is_isolated_with_its_reason_and_the_rest_stored(engine):
    batch = [_sdk(), _sdk(), _poisoned(), _sdk(), _sdk()]
    written = Writer(engine).write(batch)
    assert written.settled == 5 and written.outage is None
    assert written.new == 4
    [refusal] = written.refused
    assert refusal.index == 2
    assert refusal.reason.startswith("store refused the row: ")
    assert _stored_ids(engine) == {m.id for i, m in enumerate(batch) if i != 2}


def test_write_one_raises_what_the_direct_sink_reports(engine):
    with pytest.raises(StoreError, match="store refused the row"):
        Writer(engine).write_one(_poisoned())
    message = _sdk()
    Writer(engine).write_one(message)
    assert _stored_ids(engine) == {message.id}


def test_an_unreachable_store_is_an_outage_not_a_refusal():
    closed = store_engine.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)
    retries = _value(metrics.DB_RETRIES)
    written = Writer(closed).write([_sdk(), _sdk()])
    assert written.settled == 0 and written.refused == ()
    assert isinstance(written.outage, StoreUnavailable)
    assert _value(metrics.DB_RETRIES) - retries == 1
    with pytest.raises(StoreUnavailable):
        Writer(closed).write_one(_sdk())


@pytest.fixture
def pg_engine(postgresql_url: str) -> Iterator[Engine]:
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_an_outage_while_isolating_settles_only_the_rows_before_it(pg_engine):
    """The store dies on the fourth row of an isolation: three settled, the rest kept.

    A real PostgreSQL trigger terminates the inserting backend when it sees one
    chosen id, so the connection is really lost mid-isolation.
    """
    engine = pg_engine
    batch = [_poisoned(), _sdk(), _sdk(), _sdk(), _sdk()]
    with engine.begin() as conn:
        conn.execute(text(f"""
            CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.id = '{batch[3].id}' THEN PERFORM pg_terminate_backend(pg_backend_pid());
              END IF;
              RETURN NEW;
            END $$"""))
        conn.execute(text("CREATE TRIGGER die BEFORE INSERT ON messages "
                          "FOR EACH ROW EXECUTE FUNCTION die()"))
    written = Writer(engine).write(batch)
    assert isinstance(written.outage, StoreUnavailable)
    assert written.settled == 3
    assert written.refused == (Refusal(0, written.refused[0].reason),)
    assert _stored_ids(engine) == {batch[1].id, batch[2].id}
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER die ON messages"))
    rest = Writer(engine).write(batch[written.settled:])  # what a transport retries
    assert (rest.settled, rest.new, rest.outage) == (2, 2, None)
    assert _stored_ids(engine) == {m.id for m in batch[1:]}


def test_insert_refuses_a_row_missing_a_message_column(engine):
    row = _sdk().to_row()
    del row["kind"]
    with engine.begin() as conn, pytest.raises(StoreError, match=r"lacks \['kind'\]"):
        writer.insert(conn, [row])


def test_one_message_on_postgresql_uses_no_temp_table(pg_engine):
    """The direct sink's path: two short statements, no temp table to create or empty."""
    engine = pg_engine
    message = _sdk()
    Writer(engine).write_one(message)
    with engine.connect() as conn:
        temp = conn.execute(text(
            "SELECT count(*) FROM pg_class WHERE relpersistence = 't' "
            "AND relname IN ('messages_incoming', 'series_incoming')")).scalar_one()
    assert temp == 0
    assert _stored_ids(engine) == {message.id}
