"""OpenStack error notifications turned into catalog messages.

Services that do not use our SDK still tell the world when something fails:
oslo.messaging publishes ERROR notifications (``notifications.error`` on their
``control_exchange``). The collector can listen to them and, through a
deployer-editable mapping file, store the known ones as catalog messages.
What the mapping does not know is counted and dropped: notification payloads
carry free text (exception strings) that must never reach users.

Mapping file (INI, one section per event type)::

    [scheduler.create_volume]
    action = 001
    detail = 003
    resource_type = VOLUME
    resource_id = payload.volume_id
    project_id = payload.volume_properties.project_id
    level = ERROR

``resource_id``, ``project_id``, ``user_id`` and ``request_id`` are dotted paths
into the notification. oslo.messaging does not put the request context in
notifications, so the project usually comes from the payload; when a sender
adds ``_context_*`` keys (older releases did), they are used as a fallback.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue, binding

from usermessages import metrics
from usermessages.catalog import Action, Detail, Kind, Level, Resource, event_id
from usermessages.collector import Accept, Decision, Ignore, Reject, Source
from usermessages.config import Settings
from usermessages.errors import ConfigError

# Ids derived from the notification's own message_id, so a redelivered
# notification maps to the same row and is stored once.
NAMESPACE = uuid.UUID("6f1f3b9e-5d3c-4b8e-9c51-0b7d2f6a9e10")
ROUTING_KEYS = ("notifications.error", "notifications.critical")
QUEUE = "usermessages.notifications"
MAX_FIELD = 255


PATH_KEYS = ("resource_id", "project_id", "user_id", "request_id")


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


def _context(notification: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = notification.get(f"_context_{name}")
        if isinstance(value, str) and value:
            return value
    return ""


def _dig(document: Any, path: tuple[str, ...] | None) -> str:
    for key in path or ():
        if not isinstance(document, dict):
            return ""
        document = document.get(key)
    return document if isinstance(document, str) and path else ""


def decide(body: bytes, rules: Mapping[str, Rule], ttl: int) -> Decision:
    """The pure handler for one notification."""
    try:
        notification = _unwrap(body)
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        return Reject(f"not an oslo.messaging notification: {exc}")
    event_type = notification.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return Reject("notification without an event_type")
    priority = str(notification.get("priority", "")).upper()
    if priority not in ("ERROR", "CRITICAL"):
        return Ignore(f"priority {priority or 'unknown'}")
    rule = rules.get(event_type)
    if rule is None:
        metrics.UNMAPPED.labels(event_type=event_type[:100]).inc()
        return Ignore(f"no mapping for {event_type[:100]}")
    paths = rule.paths
    project = (_dig(notification, paths.get("project_id"))
               or _context(notification, "project_id", "project", "tenant"))
    if not project or len(project) > MAX_FIELD:
        return Reject(f"{event_type}: no project in the notification's context")
    message_id = str(notification.get("message_id") or "")
    if not message_id:
        return Reject(f"{event_type}: notification without a message_id")
    created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = notification.get("timestamp")
    if isinstance(stamp, str):
        try:
            created = dt.datetime.fromisoformat(stamp.replace(" ", "T"))
        except ValueError:
            pass
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    publisher = str(notification.get("publisher_id", ""))
    resource_uuid = _dig(notification, paths.get("resource_id"))
    user = _dig(notification, paths.get("user_id")) or _context(notification, "user_id", "user")
    request = (_dig(notification, paths.get("request_id"))
               or _context(notification, "request_id", "global_request_id"))
    return Accept({
        "id": str(uuid.uuid5(NAMESPACE, message_id)),
        "kind": Kind.API.value,
        "project_id": project,
        "user_id": user[:MAX_FIELD],
        "request_id": request[:MAX_FIELD],
        "resource_type": rule.resource_type.value,
        "resource_uuid": resource_uuid[:MAX_FIELD],
        "event_id": event_id(rule.resource_type, rule.action, rule.detail),
        "message_level": rule.level.value,
        "action_id": rule.action.id,
        "detail_id": rule.detail.id,
        # "volume.node-1" -> "node-1": the host part of oslo's publisher id.
        "host": publisher.split(".", 1)[-1][:MAX_FIELD],
        # The notification's exception text is free text: never kept.
        "exception_class": "",
        "created_at": created,
        "expires_at": created + dt.timedelta(seconds=ttl),
    })


def source(exchanges: list[str], rules: Mapping[str, Rule], ttl: int) -> Source:
    """Our own queue, bound to each exchange's error topics: other consumers of
    ``notifications.error`` (ceilometer...) keep getting every notification."""
    bound = [binding(Exchange(name, type="topic", no_declare=True), routing_key=key)
             for name in exchanges for key in ROUTING_KEYS]
    queue = Queue(QUEUE, bindings=bound, durable=True)

    def prepare(connection: Connection) -> None:
        for name in exchanges:
            _ensure_exchange(connection, name)

    return Source("notifications", queue, lambda body: decide(body, rules, ttl), prepare)


def sources_from_settings(settings: Settings) -> tuple[Source, ...]:
    """The notification source the config asks for, or none."""
    if not settings.collector_notification_mapping_file:
        return ()
    exchanges = [e.strip() for e in settings.collector_notifications_exchanges.split(",")
                 if e.strip()]
    if not exchanges:
        raise ConfigError("[collector] notifications_exchanges names no exchange")
    rules = load_mapping(settings.collector_notification_mapping_file)
    return (source(exchanges, rules, settings.message_ttl),)


def _ensure_exchange(connection: Connection, name: str) -> None:
    """Use the exchange as oslo.messaging declared it, or declare it as oslo would.

    oslo.messaging declares its topic exchanges non-durable unless
    amqp_durable_queues is on; redeclaring with other flags is an error
    (PRECONDITION_FAILED), so look first (passive) and declare only if absent.
    """
    channel = connection.channel()
    try:
        Exchange(name, type="topic", passive=True)(channel).declare()
    except Exception:  # absent: the passive declare closed this channel
        Exchange(name, type="topic", durable=False, auto_delete=False)(
            connection.channel()).declare()
    finally:
        try:
            channel.close()
        except Exception:  # already closed by the broker
            pass
