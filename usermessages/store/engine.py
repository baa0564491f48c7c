"""Connecting to the store: one place that knows SQLite, PostgreSQL and MariaDB apart."""

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


# MariaDB's oldest release this store is tested on; MySQL is refused (see _check_server).
MARIADB_MINIMUM = (10, 11)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``mysql://`` and pick the driver for each.

    PostgreSQL goes through psycopg 3, MariaDB through PyMySQL (oslo.db's
    default: the ``mysql+pymysql://user:password@host/db?charset=utf8mb4``
    OpenStack services are configured with), in utf8mb4 unless told otherwise.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb"):
        if parsed.drivername not in ("mysql", "mariadb", "mysql+pymysql", "mariadb+pymysql"):
            raise ConfigError(f"unsupported driver {parsed.drivername!r}: use mysql+pymysql://")
        parsed = parsed.set(drivername="mysql+pymysql")
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    elif backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {parsed.drivername!r}: "
                          "use sqlite, postgresql or mysql+pymysql (MariaDB)")
    return parsed.render_as_string(hide_password=False)


def connect(url: str, *, pool_size: int = 5, connect_timeout: int = 5,
            timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """Create an engine with the settings this service relies on.

    SQLite: WAL so readers never wait on the writer, and a busy timeout so
    concurrent writers (collector, reaper, API deletes) queue instead of
    failing. PostgreSQL and MariaDB: a connect timeout, so a dead server
    fails fast, a pool wait of at most ``timeout``, and the request deadline
    (see ``_bounded_checkouts``). MariaDB also gets PostgreSQL's isolation
    (READ COMMITTED: every statement sees what committed before it, which
    the writer's duplicate check relies on) and strict SQL (a value too long
    is an error, never silently cut), and idle connections are recycled
    before a proxy (HAProxy's ``timeout client``) or ``wait_timeout`` cuts them.
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
    mysql = make_url(url).get_backend_name() == "mysql"
    engine = create_engine(
        url,
        pool_size=pool_size,
        pool_timeout=timeout,
        connect_args={"connect_timeout": connect_timeout},
        **({"isolation_level": "READ COMMITTED", "pool_recycle": MYSQL_RECYCLE} if mysql else {}),
    )
    if mysql:
        event.listen(engine, "first_connect", _check_server)
        event.listen(engine, "connect", _strict_session)
    _bounded_checkouts(engine)
    return engine


# Seconds an idle MariaDB connection is kept: under HAProxy's usual one-hour
# ``timeout client`` (kolla-ansible's) and MariaDB's ``wait_timeout``.
MYSQL_RECYCLE = 1800


def _check_server(dbapi_connection: Any, _record: Any) -> None:
    """Refuse MySQL, and MariaDB older than tested, in one line at the first connect."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
    finally:
        cursor.close()
    numbers = tuple(int(part) for part in version.split("-")[0].split(".")[:2])
    if "mariadb" not in version.lower() or numbers < MARIADB_MINIMUM:
        wanted = ".".join(map(str, MARIADB_MINIMUM))
        raise ConfigError(f"the store needs MariaDB {wanted} or later; this server is {version}")


def _strict_session(dbapi_connection: Any, _record: Any) -> None:
    # As oslo.db does: TRADITIONAL makes a bad value an error (DataError, so the
    # writer isolates the row) instead of a warning and a truncated row.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION sql_mode = 'TRADITIONAL'")
    finally:
        cursor.close()


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
            WATCHDOG.arm(record, _socket(dbapi_connection), seconds, breaker.trip)
        try:
            _set_statement_timeout(dbapi_connection, setting)
            record.info[_STATEMENT_TIMEOUT] = setting
        except engine.dialect.loaded_dbapi.Error as exc:
            WATCHDOG.disarm(record)
            if record.info.get(EXPIRED):
                raise StoreUnavailable("the database did not answer in time") from exc
            raise DisconnectionError(f"stale connection: {exc}") from exc

    for name in ("checkin", "invalidate", "soft_invalidate", "close", "detach"):
        event.listen(engine, name, _disarm_listener(name))


def _socket(dbapi_connection: Any) -> int:
    """The connection's socket, for the watchdog to shut down."""
    if hasattr(dbapi_connection, "pgconn"):
        return int(dbapi_connection.pgconn.socket)
    # PyMySQL keeps its socket in _sock (no public accessor; aiomysql reads it too).
    return int(dbapi_connection._sock.fileno())


def _set_statement_timeout(dbapi_connection: Any, milliseconds: str) -> None:
    """Set this session's server-side statement timeout (or DEFAULT), in no transaction."""
    if hasattr(dbapi_connection, "pgconn"):
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # a session setting, in no transaction
        try:
            dbapi_connection.execute(f"SET statement_timeout TO {milliseconds}")
        finally:
            dbapi_connection.autocommit = autocommit
        return
    # MariaDB counts seconds; a SET starts no transaction there.
    value = milliseconds if milliseconds == "DEFAULT" else f"{int(milliseconds) / 1000:.3f}"
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET SESSION max_statement_time = {value}")
    finally:
        cursor.close()


def _disarm_listener(name: str) -> Any:
    def disarm(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            WATCHDOG.disarm(record)

    disarm.__name__ = f"_disarm_on_{name}"
    return disarm


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def is_mariadb(engine: Engine) -> bool:
    return engine.dialect.name == "mysql"


# Errors a retry of the same transaction, at once, is the answer to: a
# deadlock (PostgreSQL's 40P01; MariaDB's 1213, which is also how Galera reports
# a transaction that lost certification to another node's) and MariaDB's lock
# wait timeout (1205).
_RETRY_AT_ONCE = {"40P01", 1213, 1205}


def is_lock_wait(exc: BaseException) -> bool:
    """Did a statement give up waiting for a lock (MariaDB's lock_wait_timeout: 1205)?"""
    orig = getattr(exc, "orig", None)
    return orig is not None and bool(orig.args) and orig.args[0] == 1205


def is_deadlock(exc: BaseException) -> bool:
    """Did the database abort this transaction to let another one through (retry it)?"""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    # psycopg names the SQLSTATE; PyMySQL's error number is its first argument.
    codes = {getattr(orig, "sqlstate", None), orig.args[0] if orig.args else None}
    return bool(codes & _RETRY_AT_ONCE)


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
