"""CADF audit events for what deletes, changes or takes data out: message deletes,
webhook creates and deletes, exports.

Each event is a pycadf Event (DMTF CADF, as Keystone and keystonemiddleware's
audit middleware write them): its action (``delete``, ``create``,
``read/export``), outcome (``success`` or ``failure``, with the HTTP status as
the reason), initiator (the verified user, with their project and the
request's ids), target (what was acted on) and observer (this service). It is
logged at INFO and, when ``[oslo_messaging_notifications] driver`` is set,
sent as an oslo.messaging notification (event type ``usermessages.<what>.<action>``,
priority INFO) to its ``topics`` on its ``transport_url``, as every OpenStack
service sends its notifications.

Sending is a bounded queue and a thread of its own: a broker that is down or
frozen never holds a request. What the queue cannot take is counted on
/metrics (``usermessages_audit_dropped_total``) and logged, never waited for.
Before each send on RabbitMQ the thread waits, with back-off, until a broker of
the transport URL accepts a connection: oslo.messaging retries a publish
through an outage (``retry = -1``), but an event whose send must open a new
connection while the broker is down is logged by it and lost.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from pycadf import attachment, cadftaxonomy, event, reason, resource

from usermessages import bus, config, logs
from usermessages.config import Settings
from usermessages.retry import Backoff

LOG = logging.getLogger(__name__)

CREATE, DELETE, EXPORT = "create", "delete", "read/export"
MESSAGE = "service/storage/block/messages/message"
WEBHOOK = "service/storage/block/messages-ext/webhooks/webhook"
WEBHOOKS = "service/storage/block/messages-ext/webhooks"
EXPORTS = "service/storage/block/messages-ext/export"
SERVICE = "service/storage/block"
# An admin's export across projects names no project.
ALL_PROJECTS = "all"
QUEUE_SIZE = 10000
# Seconds one connection attempt to the notifications broker may take, and the longest
# pause between two.
BROKER_TIMEOUT = 2.0
BROKER_BACKOFF = 10.0
# pycadf warns about every id that is no UUID (a noauth user, a project like aaaa1111).
warnings.filterwarnings("ignore", message="Invalid uuid: ", category=UserWarning)

SENT = Counter("usermessages_audit_sent", "CADF audit events sent as notifications")
DROPPED = Counter("usermessages_audit_dropped",
                  "CADF audit events not sent: the queue was full or the send failed")


@dataclass(frozen=True)
class Target:
    """What an event acted on: a CADF resource type, its id and name, and the noun of
    the notification's event type (``usermessages.<noun>.<verb>``)."""

    type_uri: str
    id: str
    name: str
    noun: str


def message(message_id: str) -> Target:
    return Target(MESSAGE, message_id, "message", "message")


def webhook(webhook_id: str) -> Target:
    return Target(WEBHOOK, webhook_id, "webhook", "webhook")


def webhooks(project_id: str) -> Target:
    """A project's webhooks, where a new one goes (before it has an id)."""
    return Target(WEBHOOKS, project_id, "webhooks", "webhook")


def export(project_id: str | None) -> Target:
    return Target(EXPORTS, project_id or ALL_PROJECTS, "export", "message")


# The notification's verb for each CADF action.
VERBS = {CREATE: "create", DELETE: "delete", EXPORT: "export"}


@dataclass
class Audit:
    """An action under way (``Auditor.audited``): its target may become known inside."""

    target: Target


def build(action: str, outcome: str, status: int, user_id: str, project_id: str | None,
          target: Target, attachments: dict[str, Any] | None = None) -> event.Event:
    """The CADF event, with the current request's ids on its initiator."""
    initiator = resource.Resource(typeURI=cadftaxonomy.ACCOUNT_USER, id=user_id or "unknown")
    # As Keystone and keystonemiddleware: the project and request ids beside the id.
    initiator.project_id = project_id or None
    context = logs.current()
    if context is not None:
        initiator.request_id = context.request_id
        initiator.global_request_id = context.global_request_id
    found = event.Event(
        action=action, outcome=outcome, initiator=initiator,
        target=resource.Resource(typeURI=target.type_uri, id=target.id, name=target.name),
        observer=resource.Resource(typeURI=SERVICE, id="usermessages", name="usermessages"),
        reason=reason.Reason(reasonType="HTTP", reasonCode=str(status)))
    for name, content in (attachments or {}).items():
        found.add_attachment(attachment.Attachment(typeURI="mime:application/json",
                                                   content=content, name=name))
    return found


class Auditor:
    """Records audit events: logged, and sent when notifications are configured."""

    def __init__(self, notifier: Any = None, queue_size: int = QUEUE_SIZE,
                 broker_url: str | None = None) -> None:
        """``broker_url``: a RabbitMQ transport URL to wait for before each send."""
        self._notifier = notifier
        self._broker_url = broker_url
        self._queue: queue.Queue[tuple[Any, str, dict] | None] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if notifier is not None:
            self._thread = threading.Thread(target=self._send, name="audit-notifier",
                                            daemon=True)
            self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings) -> Auditor:
        """Notifications as ``[oslo_messaging_notifications]`` says; none without a driver.
        oslo.messaging is imported only then (it takes seconds, and brings eventlet)."""
        if not any(namespace == config.MESSAGING for namespace, *_ in settings.library_options):
            return cls()
        with warnings.catch_warnings():  # oslo.messaging's eventlet says it is old
            warnings.simplefilter("ignore")
            import oslo_messaging
        conf = config.oslo_conf(settings)
        transport = oslo_messaging.get_notification_transport(conf)
        notifier = oslo_messaging.Notifier(transport, publisher_id=f"usermessages.{_host()}")
        url = conf.oslo_messaging_notifications.transport_url or conf.transport_url or ""
        return cls(notifier if notifier.is_enabled() else None,
                   broker_url=url if url.startswith("rabbit:") else None)

    @property
    def sending(self) -> bool:
        return self._notifier is not None

    def record(self, action: str, outcome: str, status: int, user_id: str,
               project_id: str | None, target: Target,
               attachments: dict[str, Any] | None = None) -> None:
        """Log one event and queue it for sending; never waits, never raises (an audit
        failure must not fail what it audits: it is logged and counted)."""
        try:
            found = build(action, outcome, status, user_id, project_id, target, attachments)
        except Exception:
            DROPPED.inc()
            LOG.exception("audit: cannot build the %s event of %s %s", action, target.name,
                          target.id)
            return
        LOG.info("audit: %s %s %s by user %s of project %s: %s (%s)", action, target.name,
                 target.id, user_id, project_id, outcome, status)
        if self._notifier is None:
            return
        context = logs.current()
        try:
            # The request's context as it is now (oslo.messaging sends it without secrets).
            self._queue.put_nowait((context.redacted_copy() if context is not None else None,
                                    f"usermessages.{target.noun}.{VERBS[action]}",
                                    found.as_dict()))
        except queue.Full:
            DROPPED.inc()
            LOG.error("audit: the notification queue is full (%d); event %s not sent",
                      self._queue.maxsize, found.id)

    @contextlib.contextmanager
    def audited(self, action: str, user_id: str, project_id: str | None, target: Target,
                *, status: int = 200, attachments: dict[str, Any] | None = None
                ) -> Iterator[Audit]:
        """Record ``action`` once the block ends: success with ``status``, or failure
        with the status of the error the block raised (which goes on). The block may
        name the final target (a new webhook's) on the Audit it is given."""
        audit = Audit(target)
        try:
            yield audit
        except Exception as exc:
            self.record(action, cadftaxonomy.OUTCOME_FAILURE, getattr(exc, "status", 500),
                        user_id, project_id, audit.target, attachments)
            raise
        self.record(action, cadftaxonomy.OUTCOME_SUCCESS, status, user_id, project_id,
                    audit.target, attachments)

    def _send(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            context, event_type, payload = item
            self._wait_for_broker()
            try:
                self._notifier.info(context, event_type, payload)
                SENT.inc()
            except Exception as exc:  # the driver's errors are many; the event is lost, said
                DROPPED.inc()
                LOG.error("audit: event %s not sent: %s: %s", payload.get("id"),
                          type(exc).__name__, exc)

    def _wait_for_broker(self) -> None:
        """Until a broker of the transport URL accepts a connection (see the module's doc)."""
        if self._broker_url is None:
            return
        backoff = Backoff(BROKER_BACKOFF, self._stop)
        while True:
            try:
                with bus.connect(self._broker_url, timeout=BROKER_TIMEOUT) as connection:
                    bus.ensure(connection, BROKER_TIMEOUT)
                return
            except Exception as exc:  # refused, timed out: the events wait in the queue
                LOG.warning("audit: the notifications broker %s does not answer (%s); "
                            "%d event(s) wait", bus.redacted(self._broker_url),
                            type(exc).__name__, self._queue.qsize() + 1)
                if backoff.wait():
                    return

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, for at most ``timeout`` seconds, then release the transport
        (its heartbeat thread would outlive the auditor, and log once the broker is gone)."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._stop.set()
        self._notifier.transport.cleanup()


def _host() -> str:
    return socket.gethostname()
