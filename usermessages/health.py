"""Backends of oslo.middleware's /healthcheck: does the database answer, does the bus?

Two plugins of oslo.middleware's healthcheck API, entry points
``usermessages_database`` and ``usermessages_bus`` of ``oslo.middleware.healthcheck``
(``[healthcheck] backends`` names them). Like any such plugin they are
configured from the ConfigOpts the middleware is given (``[database]``, ``[bus]``,
see ``config.oslo_conf``), and keep what they open between probes.

Each probe is bounded, so a load balancer never waits on a frozen server: the
database's by ``[database] timeout`` (the request deadline of store/deadline.py
cuts a server that stopped answering), the bus's by ``[bus] timeout`` per broker.
Callers arriving while a backend's probe runs share its answer rather than start
their own: many load balancers probing a frozen server wait for one probe, not
for a queue of them.
The reason is all an anonymous caller sees ("database: OK", "bus: unavailable"); the
details (what answered and how fast, or the error) are for admins, when
``[healthcheck] detailed`` is on. Neither ever holds a password.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from oslo_middleware.healthcheck import pluginbase
from sqlalchemy import Engine, text

from usermessages import bus
from usermessages.store import deadline
from usermessages.store import engine as store_engine

UNAVAILABLE_DATABASE = "database: unavailable"
UNAVAILABLE_BUS = "bus: unavailable"


def _why(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0][:300] if first else ''}"


class _Shared:
    """One probe at a time; whoever arrives meanwhile gets that probe's answer."""

    def __init__(self, probe: Callable[[], pluginbase.HealthcheckResult]) -> None:
        self._probe = probe
        self._lock = threading.Lock()
        self._running: Future[pluginbase.HealthcheckResult] | None = None

    def __call__(self) -> pluginbase.HealthcheckResult:
        with self._lock:
            running, mine = self._running, self._running is None
            if mine:
                running = self._running = Future()
        assert running is not None
        if not mine:
            return running.result()
        try:
            result = self._probe()
            running.set_result(result)
            return result
        except BaseException as exc:
            running.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._running = None


class DatabaseCheck(pluginbase.HealthcheckBaseExtension):
    """Available while the store answers a read of its schema revision in time."""

    def __init__(self, oslo_conf: Any, conf: dict[str, Any]) -> None:
        super().__init__(oslo_conf, conf)
        self._url = oslo_conf.database.connection
        self._timeout = oslo_conf.database.timeout
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._shared = _Shared(self._probe)

    def _connected(self) -> Engine:
        with self._lock:
            if self._engine is None:
                # One connection is all a probe needs, kept apart from the API's pool.
                self._engine = store_engine.connect(self._url, pool_size=1,
                                                    timeout=self._timeout)
            return self._engine

    def healthcheck(self, server_port: int) -> pluginbase.HealthcheckResult:
        return self._shared()

    def _probe(self) -> pluginbase.HealthcheckResult:
        started = time.monotonic()
        deadline.begin(self._timeout)  # this thread's store work is bounded as a request's
        try:
            engine = self._connected()
            with engine.connect() as conn:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception as exc:  # any failure to answer is the answer
            return pluginbase.HealthcheckResult(False, UNAVAILABLE_DATABASE, _why(exc))
        where = engine.url.render_as_string(hide_password=True)
        return pluginbase.HealthcheckResult(
            True, "database: OK", f"{where} at revision {revision}, answered in "
                        f"{(time.monotonic() - started) * 1000:.0f} ms")


class BusCheck(pluginbase.HealthcheckBaseExtension):
    """Available while a broker of ``[bus] url`` accepts a connection in time (always,
    for the in-process bus)."""

    def __init__(self, oslo_conf: Any, conf: dict[str, Any]) -> None:
        super().__init__(oslo_conf, conf)
        self._url = oslo_conf.bus.url
        self._timeout = oslo_conf.bus.timeout
        self._shared = _Shared(self._probe)

    def healthcheck(self, server_port: int) -> pluginbase.HealthcheckResult:
        return self._shared()

    def _probe(self) -> pluginbase.HealthcheckResult:
        shown = bus.redacted(self._url)
        if not bus.is_amqp(self._url):
            return pluginbase.HealthcheckResult(True, "bus: OK", f"{shown}: in this process")
        started = time.monotonic()
        try:
            with bus.connect(self._url, timeout=self._timeout) as connection:
                bus.ensure(connection, self._timeout)
        except Exception as exc:  # refused, timed out, refused our credentials...
            return pluginbase.HealthcheckResult(False, UNAVAILABLE_BUS, _why(exc))
        return pluginbase.HealthcheckResult(
            True, "bus: OK", f"{shown} answered in {(time.monotonic() - started) * 1000:.0f} ms")
