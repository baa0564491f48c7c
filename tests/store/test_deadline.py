"""The request deadline on real PostgreSQL and MariaDB: a frozen server is cut at the
budget, a slow query is cancelled by the server, work without a budget is left alone,
and the engine serves the next request as if nothing happened."""

from __future__ import annotations

import contextvars
import os
import signal
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.harness.mariadb import MariaDB, mariadb_server
from usermessages.store import deadline
from usermessages.store import engine as store_engine

BUDGET = 1.0
SLACK = 1.5  # a loaded machine, not the design


@pytest.fixture
def pg(postgresql_url: str) -> Iterator[Engine]:
    engine = store_engine.connect(postgresql_url, timeout=BUDGET)
    yield engine
    engine.dispose()


def _in_request(work, budget: float | None = BUDGET):  # type: ignore[no-untyped-def]
    """Run ``work`` as an API request does: in a fresh context with the budget set."""
    def run():  # type: ignore[no-untyped-def]
        deadline.begin(budget)
        return work()

    return contextvars.copy_context().run(run)


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_frozen_backend_is_cut_at_the_budget_and_the_next_request_succeeds(pg):
    pid = _in_request(lambda: _backend_pid(pg))  # the pooled connection's server process
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            _in_request(lambda: _backend_pid(pg))
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert store_engine.is_unavailable(caught.value), repr(caught.value)
    assert BUDGET * 0.9 <= elapsed <= BUDGET + SLACK
    assert _in_request(lambda: _backend_pid(pg)) != pid  # a fresh connection, no help needed


def test_a_slow_query_is_cancelled_by_the_server_within_the_budget(pg):
    def slow() -> None:
        with pg.connect() as conn:
            conn.execute(text("SELECT pg_sleep(30)"))

    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        _in_request(slow)
    assert time.monotonic() - started <= BUDGET + SLACK
    assert store_engine.is_unavailable(caught.value)
    assert "statement timeout" in str(caught.value)


# --- MariaDB: one process for every session, so freezing it freezes the server --------


@pytest.fixture(scope="module")
def frozen_able() -> Iterator[MariaDB]:
    """A MariaDB of this module's own: these tests stop the whole server."""
    with mariadb_server() as server:
        yield server


@pytest.fixture
def maria(frozen_able: MariaDB) -> Iterator[Engine]:
    url = frozen_able.create_database(f"deadline_{os.urandom(4).hex()}")
    engine = store_engine.connect(url, timeout=BUDGET)
    yield engine
    engine.dispose()


def _connection_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()


def test_a_frozen_mariadb_is_cut_at_the_budget_and_the_next_request_succeeds(
        frozen_able, maria):
    before = _in_request(lambda: _connection_id(maria))
    assert frozen_able.process is not None
    frozen_able.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            _in_request(lambda: _connection_id(maria))
        elapsed = time.monotonic() - started
    finally:
        frozen_able.process.send_signal(signal.SIGCONT)
    assert store_engine.is_unavailable(caught.value), repr(caught.value)
    assert BUDGET * 0.9 <= elapsed <= BUDGET + SLACK
    assert _in_request(lambda: _connection_id(maria)) != before  # a fresh connection


def test_a_slow_query_on_mariadb_is_cancelled_by_the_server_within_the_budget(maria):
    def slow() -> None:
        with maria.connect() as conn:
            conn.execute(text("SELECT SLEEP(30)"))

    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        _in_request(slow)
    assert time.monotonic() - started <= BUDGET + SLACK
    assert store_engine.is_unavailable(caught.value)
    assert "max_statement_time exceeded" in str(caught.value)


def test_work_without_a_budget_is_not_bounded_on_mariadb(maria):
    def longer_than_the_budget() -> float:
        with maria.connect() as conn:
            conn.execute(text("SELECT SLEEP(:s)"), {"s": BUDGET * 1.5})
            return conn.execute(text("SELECT @@max_statement_time")).scalar_one()

    assert _in_request(lambda: _connection_id(maria))
    assert _in_request(longer_than_the_budget, budget=None) == 0


def test_work_without_a_budget_is_not_bounded(pg):
    def longer_than_the_budget() -> float:
        with pg.connect() as conn:
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": BUDGET * 1.5})
            return conn.execute(text("SHOW statement_timeout")).scalar_one()

    # The collector, the reaper and migrations set no budget; the server's default is back
    # on a connection a request used before.
    assert _in_request(lambda: _backend_pid(pg))
    assert _in_request(longer_than_the_budget, budget=None) == "0"
