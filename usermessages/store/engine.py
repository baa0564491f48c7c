"""Connecting to the store: one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from usermessages.errors import ConfigError, StoreError, StoreUnavailable
from usermessages.store.deadline import EXPIRED, WATCHDOG, Breaker, budget, started

# The errors that may mean "the database is not answering" (is_unavailable decides).
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout,
                                            DisconnectionError, StoreUnavailable)


def is_unavailable(exc: BaseException) -> bool:
    """Is this the database not answering (503), rather than a bug or a bad schema (500)?

    Refused, reset or cut by the deadline, timed out (statement_timeout, pool
    wait, connect), or SQLite locked. SQLite also reports a missing table as an
    OperationalError: that one is a 500.
    """
    if not isinstance(exc, UNAVAILABLE):
        return False
    if (isinstance(exc, DBAPIError) and exc.orig is not None
            and not exc.connection_invalidated
            and type(exc.orig).__module__.startswith("sqlite3")):
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text or "unable to open" in text
    return True


DEFAULT_TIMEOUT = 2.0


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and pick the psycopg 3 driver for it."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def connect(url: str, *, pool_size: int = 5, connect_timeout: int = 5,
            timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """Create an engine with the settings this service relies on.

    SQLite: WAL so readers never wait on the writer, and a busy timeout so
    concurrent writers (collector, reaper, API deletes) queue instead of
    failing. PostgreSQL: a connect timeout, so a dead server fails fast, a
    pool wait of at most ``timeout``, and the request deadline (see
    ``_bounded_checkouts``).
    """
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        pool_timeout=timeout,
        connect_args={"connect_timeout": connect_timeout},
    )
    _bounded_checkouts(engine)
    return engine


_STATEMENT_TIMEOUT = "usermessages.statement_timeout"  # record.info: the session's setting


def _bounded_checkouts(engine: Engine) -> None:
    """Bound what a request with a ``deadline.budget`` may spend on a connection.

    On checkout the connection is armed for the budget (the watchdog cuts it
    when that passes: a frozen server cannot stall the request) and pinged with
    a SET of the server-side statement_timeout to 3/4 of the budget (a slow
    query on a live server is cancelled by the server first). Checkouts without a
    budget get the server's default back. The ping replaces pool_pre_ping,
    which would run before the connection is armed and could hang on a
    frozen server; like it, a failed ping on a stale connection (the server
    restarted) makes the pool reconnect. Budgeted connects go through the
    breaker (deadline.Breaker): once the server has failed, one request probes
    and the others fail fast.
    """

    breaker = Breaker()

    @event.listens_for(engine, "do_connect")
    def _connect_within_budget(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        seconds = budget.get()
        if seconds is None:
            return None  # the default connect
        fresh = time.monotonic() - started.get() < seconds / 4
        if not breaker.begin_connect(fresh):
            raise StoreUnavailable("the database is not answering (another request is probing)")
        # libpq's smallest connect timeout is 2 s.
        cparams["connect_timeout"] = min(cparams["connect_timeout"], max(2, math.ceil(seconds)))
        try:
            connection = dialect.connect(*cargs, **cparams)
        except BaseException:
            breaker.end_connect(ok=False)
            raise
        breaker.end_connect(ok=True)
        return connection

    @event.listens_for(engine, "checkout")
    def _arm(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        seconds = budget.get()
        if seconds is None and record.info.get(_STATEMENT_TIMEOUT) == "DEFAULT":
            # Nothing to change, so no round trip: a writer's hot path (one
            # short transaction per message) pays for every one. A stale
            # connection then shows at its first statement; SQLAlchemy
            # invalidates it, and the writer tries once more on a fresh one.
            return
        # The server cancels a slow statement at 3/4 of the budget, cleanly (the
        # connection survives); the watchdog's cut is for a server that cannot.
        setting = "DEFAULT" if seconds is None else f"{max(1, int(seconds * 750))}"
        if seconds is not None:
            WATCHDOG.arm(record, dbapi_connection.pgconn.socket, seconds, breaker.trip)
        try:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True  # a session setting, in no transaction
            try:
                dbapi_connection.execute(f"SET statement_timeout TO {setting}")
            finally:
                dbapi_connection.autocommit = autocommit
            record.info[_STATEMENT_TIMEOUT] = setting
        except engine.dialect.loaded_dbapi.Error as exc:
            WATCHDOG.disarm(record)
            if record.info.get(EXPIRED):
                raise StoreUnavailable("the database did not answer in time") from exc
            raise DisconnectionError(f"stale connection: {exc}") from exc

    for name in ("checkin", "invalidate", "soft_invalidate", "close", "detach"):
        event.listen(engine, name, _disarm_listener(name))


def _disarm_listener(name: str) -> Any:
    def disarm(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            WATCHDOG.disarm(record)

    disarm.__name__ = f"_disarm_on_{name}"
    return disarm


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextlib.contextmanager
def translated(doing: str) -> Iterator[None]:
    """Re-raise a driver failure as a one-line StoreError saying what failed.

    For the operator's commands (upgrade, reap): the CLI shows the line
    instead of a traceback, the periodic reaper logs it. The collector's hot
    path keeps SQLAlchemy's tree, which its retry logic reads.
    """
    try:
        yield
    except DBAPIError as exc:
        lines = str(exc.orig).strip().splitlines()
        raise StoreError(f"{doing}: {lines[0] if lines else type(exc.orig).__name__}") from exc
