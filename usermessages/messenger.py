"""The producer SDK: what a service calls at each failure point.

Shaped like Cinder's ``cinder.message.api.API`` so a Cinder developer feels at
home. Two kinds of failure are kept apart on purpose:

* a programming mistake (an action, detail or resource not in the catalog, a
  context without a project) raises CatalogError at once, loudly;
* an operational failure (the database is down) never breaks the caller's
  operation: it is logged and counted in ``Messenger.stats``.

A bus messenger delivers in the background: ``flush(timeout)`` waits for
what was created so far, and ``close(timeout)`` flushes within its timeout,
then stops and returns how many messages it lost (an in-memory spool's
undelivered ones; a file spool keeps them for the next start). Every loss is
counted, in ``stats`` and in Prometheus, and logged.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from usermessages import metrics
from usermessages.catalog import Action, Detail, Kind, Level, Resource
from usermessages.config import DEFAULTS, SINKS, check_ttl
from usermessages.context import RequestContext
from usermessages.errors import CatalogError, UserMessagesError
from usermessages.message import MAX_FIELD, Message
from usermessages.sinks import Buffered, Sink
from usermessages.sinks.database import DatabaseSink
from usermessages.sinks.fanout import FanoutSink

if TYPE_CHECKING:
    from usermessages.config import Settings
    from usermessages.store.series import Policy

LOG = logging.getLogger(__name__)

# Seconds close() waits for the bus to take what is spooled before it gives up.
CLOSE_TIMEOUT = 10.0


@dataclass
class Stats:
    """What the messenger has done, for logs and metrics."""

    created: int = 0
    failed: int = 0  # could not be recorded nor spooled
    lost: int = 0  # spooled in memory, still undelivered at close


class Messenger:
    """Creates user messages from the sanctioned catalog and hands them to a sink."""

    def __init__(self, sink: Sink, *, ttl: int = DEFAULTS.message_ttl,
                 host: str | None = None) -> None:
        self._sink = sink
        self._ttl = check_ttl(ttl)
        self._host = host or socket.gethostname()
        self._lock = threading.Lock()
        self._sink_name = type(sink).__name__
        self.stats = Stats()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        sink: str | None = None,
        db_url: str | None = None,
        spool_path: str | None = None,
        spool_max_messages: int = DEFAULTS.sdk_spool_max_messages,
        timeout: float = DEFAULTS.bus_timeout,
        ttl: int = DEFAULTS.message_ttl,
        host: str | None = None,
        zaqar_options: dict[str, Any] | None = None,
        policy: Policy | None = None,
        queue_type: str = DEFAULTS.bus_queue_type,
    ) -> Messenger:
        """A messenger for a database URL or a bus URL.

        ``sqlite:///...``, ``postgresql://...`` or ``mysql+pymysql://...`` inserts directly
        (sink ``db``).
        ``amqp://...`` (RabbitMQ) or ``memory://`` (in-process) goes through a
        local spool to the bus (sink ``bus``); ``spool_path`` makes the spool a
        file that survives a crash (None keeps it in memory). Sink ``both``
        takes the bus URL and ``db_url``. Sinks ``zaqar`` and ``db+zaqar`` take
        Zaqar's URL (and ``db_url``), with ``zaqar_options`` for ZaqarSink.
        ``policy`` is how the database sink groups and limits what it stores
        (series exemplars, storm control; the store's defaults if None).
        A bus URL may name several brokers of a cluster (``rabbit://u:p@h1,u:p@h2/``
        or kombu's ``amqp://...;amqp://...``); ``queue_type`` must be the
        cluster's (``quorum``), as the collectors declare it.
        """
        from usermessages.bus import is_bus_url

        chosen = sink or ("bus" if is_bus_url(url) else "db")
        if chosen not in SINKS:
            raise CatalogError(f"sink must be one of {', '.join(SINKS)}, not {chosen!r}")
        if chosen in ("zaqar", "db+zaqar"):  # Zaqar: see docs/zaqar.md
            from usermessages.sinks.spool import Spool
            from usermessages.sinks.zaqar import ZaqarSink

            if chosen == "db+zaqar" and not db_url:
                raise CatalogError("sink 'db+zaqar' needs db_url as well as Zaqar's URL")
            zaqar_sink = ZaqarSink(url, Spool(spool_path, spool_max_messages), ttl=ttl,
                                   timeout=timeout, **(zaqar_options or {}))
            if chosen == "zaqar":
                return cls(zaqar_sink, ttl=ttl, host=host)
            assert db_url is not None  # checked above
            return cls(FanoutSink(DatabaseSink(db_url, policy), zaqar_sink), ttl=ttl, host=host)
        if chosen == "db":
            return cls(DatabaseSink(url, policy), ttl=ttl, host=host)
        if not is_bus_url(url):
            raise CatalogError(f"sink {chosen!r} needs a bus URL (rabbit://, amqp:// or memory://)")
        from usermessages.sinks.bus import BusSink
        from usermessages.sinks.spool import Spool

        bus_sink = BusSink(url, Spool(spool_path, spool_max_messages), timeout=timeout,
                           queue_type=queue_type)
        if chosen == "bus":
            return cls(bus_sink, ttl=ttl, host=host)
        if not db_url:
            raise CatalogError("sink 'both' needs db_url as well as the bus URL")
        return cls(FanoutSink(DatabaseSink(db_url, policy), bus_sink), ttl=ttl, host=host)

    @classmethod
    def from_settings(cls, settings: Settings, *, host: str | None = None) -> Messenger:
        """A messenger as the config file says (``[sdk]``, ``[bus]``, ``[database]``).

        A sink that writes to the database applies ``[collector]``'s series
        and storm control, as the collectors do.
        """
        sink = settings.sdk_sink
        policy = None
        if sink in ("db", "both", "db+zaqar"):
            from usermessages.store.writer import policy_of

            policy = policy_of(settings)
        if sink in ("zaqar", "db+zaqar"):
            from usermessages.sinks.zaqar import options_from_settings

            return cls.from_url(
                settings.zaqar_url, sink=sink, db_url=settings.database_connection,
                spool_path=settings.sdk_spool_path or None,
                spool_max_messages=settings.sdk_spool_max_messages,
                timeout=settings.zaqar_timeout, ttl=settings.message_ttl, host=host,
                zaqar_options=options_from_settings(settings), policy=policy,
            )
        return cls.from_url(
            settings.database_connection if sink == "db" else settings.bus_url,
            sink=sink,
            db_url=settings.database_connection,
            spool_path=settings.sdk_spool_path or None,
            spool_max_messages=settings.sdk_spool_max_messages,
            timeout=settings.bus_timeout,
            ttl=settings.message_ttl,
            host=host,
            policy=policy,
            queue_type=settings.bus_queue_type,
        )

    @property
    def sink(self) -> Sink:
        return self._sink

    def create(
        self,
        context: RequestContext,
        action: Action,
        resource_type: Resource = Resource.VOLUME,
        resource_uuid: str | None = None,
        exception: BaseException | None = None,
        detail: Detail | None = None,
        level: Level = Level.ERROR,
    ) -> str | None:
        """Record that ``action`` failed for the user behind ``context``.

        The detail follows Cinder's precedence: an exception whose class the
        catalog maps wins over ``detail``, which wins over UNKNOWN_ERROR. The
        exception's text is never stored; its class is kept for admins only.
        Returns the new message id, or None if it could not be delivered.
        """
        if not isinstance(context, RequestContext):
            raise CatalogError(f"context must be a RequestContext, not {context!r}")
        if context.project_id is None or context.project_id == "":
            raise CatalogError("context.project_id is required for a user message")
        return self._deliver(self._create(
            Kind.API, action, resource_type, resource_uuid=resource_uuid, exception=exception,
            detail=detail, level=level, project_id=context.project_id,
            user_id=context.user_id, request_id=context.request_id,
        ))

    def create_from_request_context(
        self,
        context: RequestContext,
        exception: BaseException | None = None,
        detail: Detail | None = None,
        level: Level = Level.ERROR,
    ) -> str | None:
        """Like ``create``, with action and resource from the context's ``message_*`` fields."""
        if context.message_action is None:
            raise CatalogError("context.message_action is not set")
        return self.create(
            context,
            context.message_action,
            resource_type=context.message_resource_type or Resource.VOLUME,
            resource_uuid=context.message_resource_id,
            exception=exception,
            detail=detail,
            level=level,
        )

    def create_service_message(
        self,
        action: Action,
        detail: Detail,
        *,
        host: str,
        level: Level = Level.ERROR,
        request_id: str | None = None,
    ) -> str | None:
        """An admin-only message about a service (it stopped reporting, it is back)."""
        return self._deliver(self._create(Kind.SERVICE, action, Resource.SERVICE, detail=detail,
                                          level=level, host=host, request_id=request_id))

    def create_system_message(
        self,
        action: Action,
        detail: Detail,
        *,
        level: Level = Level.ERROR,
        host: str | None = None,
        request_id: str | None = None,
    ) -> str | None:
        """An admin-only message about the platform (the broker is unreachable)."""
        return self._deliver(self._create(Kind.SYSTEM, action, Resource.SYSTEM, detail=detail,
                                          level=level, host=host, request_id=request_id))

    def flush(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Wait up to ``timeout`` seconds until every message created so far is delivered.

        Returns how many are still waiting (0: all delivered; for a bus
        messenger, the broker holds them). A database messenger delivers
        synchronously, so it returns 0 at once.
        """
        if not isinstance(self._sink, Buffered):
            return 0
        self._sink.flush(timeout)
        return self._sink.pending()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Flush for at most ``timeout`` seconds, then stop; returns how many messages were lost.

        Lost means created, not yet delivered, and held by an in-memory spool,
        which dies with the messenger; they are logged and counted in
        ``stats.lost`` and ``usermessages_sdk_lost``. A file spool
        (``spool_path``) loses nothing: what it holds is sent at the next start.
        Returns within ``timeout`` (plus a few milliseconds) whatever the
        broker does. Creating a message after close counts it as failed.
        """
        lost = 0
        if isinstance(self._sink, Buffered):
            deadline = time.monotonic() + timeout
            self._sink.flush(timeout)
            lost = self._sink.stop(deadline - time.monotonic())
        self._sink.close()
        with self._lock:
            self.stats.lost += lost
        return lost

    def _create(self, kind: Kind, action: Action, resource_type: Resource,
                **fields: Any) -> Message:
        # An explicit host is the caller's (bounded, or refused); ours is cut to fit.
        host = fields.pop("host", None) or self._host[:MAX_FIELD]
        return Message.create(kind, action, resource_type, ttl=self._ttl, host=host, **fields)

    def _deliver(self, message: Message) -> str | None:
        try:
            self._sink.deliver(message)
        except Exception as exc:  # an operational failure must not break the caller
            with self._lock:
                self.stats.failed += 1
            metrics.FAILED.inc()
            # Our own errors (the messenger is closed) say it all: no traceback.
            LOG.error("could not record user message %s (%s): %s", message.id,
                      message.event_id, exc, exc_info=not isinstance(exc, UserMessagesError))
            return None
        with self._lock:
            self.stats.created += 1
        metrics.CREATED.labels(sink=self._sink_name).inc()
        return message.id
