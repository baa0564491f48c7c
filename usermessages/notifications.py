"""OpenStack error notifications turned into catalog messages.

Services that do not use our SDK still tell the world when something fails:
oslo.messaging publishes ERROR notifications (``<topic>.error`` on their
``control_exchange``; Nova's versioned ones on topic ``versioned_notifications``).
The collector can listen to them and, through a deployer-editable mapping
file, store the known ones as catalog messages. What the mapping does not
know is counted and dropped: payloads carry free text (exception strings)
that must never reach users.

Mapping file (INI, one section per event type)::

    [scheduler.create_volume]
    action = 001
    detail = 001
    resource_type = VOLUME
    resource_id = payload.volume_id
    project_id = payload.volume_properties.project_id
    exception = payload.reason
    level = ERROR

``resource_id``, ``project_id``, ``user_id``, ``request_id`` and ``exception``
are dotted paths into the notification; a Nova versioned payload's
``nova_object.data`` wrappers are stepped through, so ``payload.fault.exception``
reaches the class name of an ``ExceptionPayload``. oslo.messaging sends the
sender's request context as ``_context_*`` keys beside the payload: the
context's project, user, request id and global request id win; the paths are
the fallback. ``exception`` names the field holding the exception's class
(``"NoValidBackend('...')"``, ``"NoValidHost"``, or a NovaException's repr
``"{..., 'class': 'NoValidHost'}"``): its class name picks the detail through the
catalog, ``detail`` is the fallback. tests/notifications/test_real.py checks every
path of the shipped mapping against what Cinder's and Nova's own code sends.

``decide`` is total: whatever the bytes, it maps, ignores (and counts), or
rejects with a reason; it never raises, so no notification can stall the queue.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import json
import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue

from usermessages import metrics
from usermessages.catalog import Action, Detail, Kind, Level, Resource
from usermessages.collector import Accept, Decision, Ignore, Reject, Source
from usermessages.config import DEFAULTS, Settings
from usermessages.errors import CatalogError, ConfigError
from usermessages.message import MAX_FIELD, Message

LOG = logging.getLogger(__name__)

# Ids derived from the notification's own message_id, so a redelivered
# notification maps to the same row and is stored once.
NAMESPACE = uuid.UUID("6f1f3b9e-5d3c-4b8e-9c51-0b7d2f6a9e10")
PRIORITIES = ("error", "critical")
QUEUE = "usermessages.notifications"
# A payload that claims a time further ahead than this is not trusted.
MAX_CLOCK_SKEW = dt.timedelta(hours=1)
# Unmapped event types are a metric label: bounded, so hostile or buggy
# senders cannot grow the registry (or break its text format) without limit.
MAX_UNMAPPED_LABELS = 200
_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# "NoValidBackend('...')" (repr, Cinder), "NoValidHost" (Nova), "nova.exception.X".
_EXCEPTION_NAME = re.compile(r"\s*(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)\s*(?:\(|$)")
# NovaException.__repr__ is str(self.__dict__) with 'class' added last:
# "{'kwargs': {...}, 'message': '...', 'class': 'NoValidHost'}" (Nova's legacy
# payloads); anchored at the end, so text in the message cannot pose as the class.
_NOVA_EXCEPTION_REPR = re.compile(r"'class': '([A-Za-z_]\w*)'\}\s*$")
_NOVA_DATA = "nova_object.data"

PATH_KEYS = ("resource_id", "project_id", "user_id", "request_id", "exception")


@dataclass(frozen=True)
class Rule:
    """How one event type becomes a message."""

    action: Action
    detail: Detail
    resource_type: Resource
    level: Level
    paths: Mapping[str, tuple[str, ...]]


def load_mapping(path: str | Path) -> dict[str, Rule]:
    """Read the mapping file; any mistake is a start-up error naming file and section."""
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"cannot read notification mapping {path}: {exc}") from exc
    rules: dict[str, Rule] = {}
    for event_type in parser.sections():
        where = f"{path}: [{event_type}]"
        options = dict(parser.items(event_type))
        unknown = set(options) - {"action", "detail", "resource_type", "level", *PATH_KEYS}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            action = Action(options["action"])
            detail = Detail(options["detail"])
            resource = Resource(options.get("resource_type", "VOLUME"))
            level = Level(options.get("level", "ERROR").upper())
        except KeyError as exc:
            raise ConfigError(f"{where}: {exc.args[0]} is required") from exc
        except ValueError as exc:
            raise ConfigError(f"{where}: not in the catalog: {exc}") from exc
        paths = {}
        for key in PATH_KEYS:
            text = options.get(key, "").strip()
            if not text:
                continue
            parts = tuple(text.split("."))
            if len(parts) < 2 or not all(parts):
                raise ConfigError(f"{where}: {key} must be a dotted path into the "
                                  f"notification, like payload.volume_id, not {text!r}")
            paths[key] = parts
        rules[event_type] = Rule(action, detail, resource, level, paths)
    if not rules:
        raise ConfigError(f"{path}: maps no event type")
    return rules


def _unwrap(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    if isinstance(document, dict) and "oslo.message" in document:
        document = json.loads(document["oslo.message"])  # the oslo.messaging 2.0 envelope
    if not isinstance(document, dict):
        raise ValueError("not an object")
    return document


def _text(value: Any) -> str:
    """A string the store can hold, or '' (NUL and lone surrogates are refused
    by PostgreSQL and SQLite alike, and would fail a whole batch)."""
    if not isinstance(value, str) or "\x00" in value:
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return value


def _context(notification: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = _text(notification.get(f"_context_{name}"))
        if value:
            return value
    return ""


def lookup(document: Any, path: tuple[str, ...] | None) -> str:
    """The string at a mapping's dotted path in a notification, or '' when the
    path leads nowhere (or to anything but a string the store can hold)."""
    if not path:
        return ""
    for key in path:
        # Nova's versioned payloads wrap each object's fields in nova_object.data.
        if isinstance(document, dict) and key not in document and _NOVA_DATA in document:
            document = document[_NOVA_DATA]
        if not isinstance(document, dict):
            return ""
        document = document.get(key)
    return _text(document)


def _host(publisher: str) -> str:
    """The host part of a publisher id: legacy "scheduler.node-1.example.org",
    versioned (Nova) "nova-compute:node-1.example.org"."""
    if ":" in publisher:
        return publisher.split(":", 1)[1]
    return publisher.split(".", 1)[-1]


def _exception_name(text: str) -> str:
    match = _NOVA_EXCEPTION_REPR.search(text) or _EXCEPTION_NAME.match(text)
    return match.group(1) if match else ""


def _created(notification: Mapping[str, Any], now: dt.datetime) -> dt.datetime:
    """The notification's own time (oslo: UTC, "YYYY-MM-DD HH:MM:SS.ffffff"),
    unless missing, unparsable or in the future: then now."""
    stamp = notification.get("timestamp")
    if not isinstance(stamp, str):
        return now
    try:
        created = dt.datetime.fromisoformat(stamp.replace(" ", "T"))
        if created.tzinfo is not None:
            created = created.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return now
    return now if created > now + MAX_CLOCK_SKEW else created


_unmapped_labels: set[str] = set()
_labels_lock = threading.Lock()


def _count_unmapped(event_type: str) -> None:
    label = event_type if _LABEL.fullmatch(event_type) else "other"
    with _labels_lock:
        if label not in _unmapped_labels:
            if len(_unmapped_labels) >= MAX_UNMAPPED_LABELS:
                label = "other"
            _unmapped_labels.add(label)
    metrics.UNMAPPED.labels(event_type=label).inc()


def decide(body: bytes, rules: Mapping[str, Rule], ttl: int) -> Decision:
    """The pure handler for one notification: never raises.

    Anything unforeseen (a body nested too deep for the JSON parser, a date
    past year 9999, a bug of ours) is a dead letter with its reason: letting it
    escape would make the collector take it for a lost broker and redeliver it
    forever, stalling every message behind it.
    """
    try:
        return _decide(body, rules, ttl)
    except RecursionError:
        return Reject("notification nested too deeply to parse")
    except Exception as exc:  # noqa: BLE001 - see above: total by design
        return Reject(f"cannot map this notification: {type(exc).__name__}: {exc}"[:500])


def _decide(body: bytes, rules: Mapping[str, Rule], ttl: int) -> Decision:
    try:
        notification = _unwrap(body)
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        return Reject(f"not an oslo.messaging notification: {exc}")
    event_type = notification.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return Reject("notification without an event_type")
    priority = notification.get("priority")
    priority = priority.upper() if isinstance(priority, str) else ""
    if priority not in ("ERROR", "CRITICAL"):
        return Ignore(f"priority {priority or 'unknown'}")
    rule = rules.get(event_type)
    if rule is None:
        _count_unmapped(event_type)
        return Ignore(f"no mapping for {event_type[:100]!r}")
    paths = rule.paths
    # The request context is the sender's truth (whose request failed), as for
    # Cinder's own message API; the payload path is the fallback.
    project = (_context(notification, "project_id", "project", "tenant")
               or lookup(notification, paths.get("project_id")))
    if not project or len(project) > MAX_FIELD:
        return Reject(f"{event_type}: no project in the notification's context or payload")
    message_id = _text(notification.get("message_id"))
    if not message_id:
        return Reject(f"{event_type}: notification without a message_id")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    created = _created(notification, now)
    if created + dt.timedelta(seconds=ttl) <= now:
        return Ignore(f"{event_type}: older than message_ttl")
    publisher = _text(notification.get("publisher_id"))
    user = (_context(notification, "user_id", "user")
            or lookup(notification, paths.get("user_id")))
    request = (_context(notification, "request_id")
               or lookup(notification, paths.get("request_id")))
    # Only the class name (admins only): the exception text is free text.
    exception = _exception_name(lookup(notification, paths.get("exception")))[:MAX_FIELD]
    try:
        message = Message.create(
            Kind.API, rule.action, rule.resource_type, ttl=ttl,
            project_id=project,
            user_id=user[:MAX_FIELD],
            request_id=request[:MAX_FIELD],
            global_request_id=_context(notification, "global_request_id")[:MAX_FIELD],
            resource_uuid=lookup(notification, paths.get("resource_id"))[:MAX_FIELD],
            detail=rule.detail,
            exception_name=exception or None,
            level=rule.level,
            host=_host(publisher)[:MAX_FIELD],
            message_id=str(uuid.uuid5(NAMESPACE, message_id)),
            created_at=created,
        )
    except CatalogError as exc:
        return Reject(f"{event_type}: {exc}")
    return Accept(message)


@dataclass
class Binder:
    """Binds our queue to the services' exchanges without ever declaring one.

    A service's exchange belongs to the service: oslo.messaging declares it
    durable or not after ``amqp_durable_queues``, and RabbitMQ refuses any
    later declaration with other flags (PRECONDITION_FAILED), losing the
    service's notification for every consumer. So we only look (a passive
    declare) and bind what exists; an exchange not there yet is looked for
    again every ``retry_interval`` seconds by a thread of its own, until the
    service's first notification has created it or the collector stops.
    """

    exchanges: tuple[str, ...]
    topics: tuple[str, ...]
    retry_interval: float = 5.0
    queue: str = QUEUE
    queue_type: str = DEFAULTS.bus_queue_type
    bound: set[str] = field(default_factory=set)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def waiter(self) -> threading.Thread | None:
        """The thread looking for missing exchanges, if one was started."""
        return self._thread

    def prepare(self, connection: Connection, stop: threading.Event) -> None:
        """On each (re)connection: our queue, then whatever can be bound now.

        ``stop`` is the collector's: the thread waiting for a missing exchange
        ends with it, rather than outliving the collector forever.
        """
        channel = connection.channel()
        try:
            _queue(self.queue, self.queue_type)(channel).declare()
        finally:
            channel.close()
        with self._lock:
            self.bound = set()
        if self._bind_existing(connection) and not (self._thread and self._thread.is_alive()):
            self._thread = threading.Thread(target=self._retry,
                                            args=(connection.clone(), stop),
                                            name="notification-binder", daemon=True)
            self._thread.start()

    def _bind_existing(self, connection: Connection) -> list[str]:
        """Bind each exchange that exists; return those still missing."""
        missing = []
        for name in self.exchanges:
            if name in self.bound:
                continue
            if not self._exists(connection, name):
                missing.append(name)
                continue
            channel = connection.channel()
            try:
                for topic in self.topics:
                    for priority in PRIORITIES:
                        channel.queue_bind(self.queue, name, f"{topic}.{priority}")
            finally:
                channel.close()
            with self._lock:
                self.bound.add(name)
            LOG.info("reading notifications of exchange %s", name)
        return missing

    @staticmethod
    def _exists(connection: Connection, name: str) -> bool:
        channel = connection.channel()
        try:
            Exchange(name, type="topic", passive=True)(channel).declare()
            return True
        except Exception:  # 404: the broker closed this channel
            return False
        finally:
            with contextlib.suppress(Exception):  # already closed by the broker
                channel.close()

    def _retry(self, connection: Connection, stop: threading.Event) -> None:
        try:
            with connection:
                while not stop.wait(self.retry_interval) and self._bind_existing(connection):
                    pass
        except Exception as exc:  # broker gone: the next prepare() starts over
            LOG.warning("stopped waiting for notification exchanges: %s", exc)


def _queue(name: str, queue_type: str) -> Queue:
    # Of the bus's type: on a cluster (quorum) no node takes it down with it.
    arguments = {"x-queue-type": "quorum"} if queue_type == "quorum" else None
    return Queue(name, durable=True, queue_arguments=arguments)


def source(exchanges: list[str], rules: Mapping[str, Rule], ttl: int,
           topics: tuple[str, ...] = ("notifications",),
           retry_interval: float = 5.0, queue_name: str = QUEUE,
           queue_type: str = DEFAULTS.bus_queue_type) -> Source:
    """Our own queue, bound to each exchange's error topics: other consumers of
    ``notifications.error`` (ceilometer...) keep getting every notification."""
    binder = Binder(tuple(exchanges), tuple(topics), retry_interval, queue_name, queue_type)
    queue = _queue(queue_name, queue_type)
    # prepare is the binder's bound method: source.prepare.__self__.bound says
    # which exchanges are read (for tests and health checks).
    return Source("notifications", queue, lambda body: decide(body, rules, ttl),
                  binder.prepare)


def _names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(e.strip() for e in text.split(",") if e.strip())
    if not names:
        raise ConfigError(f"[collector] {option} names nothing")
    return names


def sources_from_settings(settings: Settings) -> tuple[Source, ...]:
    """The notification source the config asks for, or none."""
    if not settings.collector_notification_mapping_file:
        return ()
    exchanges = _names(settings.collector_notifications_exchanges, "notifications_exchanges")
    topics = _names(settings.collector_notifications_topics, "notifications_topics")
    rules = load_mapping(settings.collector_notification_mapping_file)
    return (source(list(exchanges), rules, settings.message_ttl, topics,
                   queue_type=settings.bus_queue_type),)
