"""Connecting to the store: one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from usermessages.errors import ConfigError, StoreError


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


def connect(url: str, *, pool_size: int = 5, connect_timeout: int = 5) -> Engine:
    """Create an engine with the settings this service relies on.

    SQLite: WAL so readers never wait on the writer, and a busy timeout so
    concurrent writers (collector, reaper, API deletes) queue instead of
    failing. PostgreSQL: a connect timeout, so a dead server fails fast.
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
    return create_engine(
        url,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": connect_timeout},
    )


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
