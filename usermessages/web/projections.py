"""What each audience sees of a stored message or series, and the forms it is sent in.

The rule "internals are for admins only" is written here, once, in ``visible``:
a project user sees a message's public fields; an admin (a reader across
projects) also its ``Internals``: its owner (project, kind), the node it came
from, the exception class, the cross-service request id. Every front end
renders a ``VisibleMessage``, never a stored row, so none can show what its
audience may not see:

* ``MessageView``: the Cinder body of the API's list, show and stream;
* ``export_record``: a line of an NDJSON or CSV download;
* ``webhook_payload``: what a subscription's receiver gets, always a project
  user's view (it leaves the cloud);
* the viewer's rows (``usermessages.viewer``) and the CLI (through the API);
* ``series_body``: a series of repeats, its project for admins only.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from usermessages.catalog import LEGACY_DETAILS, PLACEHOLDERS, Advice, Catalog
from usermessages.store.messages import StoredMessage
from usermessages.store.series import StoredSeries
from usermessages.web.views import timestamp

WEBHOOK_EVENT = "message.created"
EXPORT_FIELDS = ("id", "created_at", "guaranteed_until", "message_level", "event_id",
                 "user_message", "resource_type", "resource_uuid", "request_id")
# What an admin's export adds: whose message it is.
EXPORT_OWNER_FIELDS = ("project_id", "kind")


class Audience(enum.Enum):
    """Who reads: a project's user, or an admin who reads across projects."""

    PROJECT = "project"
    ADMIN = "admin"

    @classmethod
    def of(cls, all_projects: bool) -> Audience:
        """The audience of a reader's scope (``Scope.all_projects``): policy decided it."""
        return cls.ADMIN if all_projects else cls.PROJECT


@dataclass(frozen=True, slots=True)
class Internals:
    """What only an admin sees of a message."""

    project_id: str | None
    kind: str
    host: str
    exception_class: str
    global_request_id: str

    @property
    def tenant(self) -> str:
        """The owner as a column shows it: the project, or ``(service)``/``(system)``."""
        return self.project_id or f"({self.kind.lower()})"


@dataclass(frozen=True, slots=True)
class VisibleMessage:
    """A message as one audience may see it, its text composed in one language."""

    id: str
    event_id: str
    user_message: str
    message_level: str
    request_id: str
    resource_type: str
    resource_uuid: str
    created_at: dt.datetime  # naive UTC, as stored; each form writes it its way
    expires_at: dt.datetime
    seq: int
    internals: Internals | None  # None for a project user


_PLACEHOLDERS = tuple(sorted(PLACEHOLDERS))


def _placeholders(message: StoredMessage) -> dict[str, str]:
    """What a catalog text may name of its message (``{resource_uuid}``...)."""
    return {name: getattr(message, name) or "" for name in _PLACEHOLDERS}


def visible(message: StoredMessage, audience: Audience, catalog: Catalog) -> VisibleMessage:
    """What ``audience`` may see of ``message``, its text in ``catalog``'s language."""
    internals = Internals(
        project_id=message.project_id, kind=message.kind, host=message.host,
        exception_class=message.exception_class,
        global_request_id=message.global_request_id,
    ) if audience is Audience.ADMIN else None
    return VisibleMessage(
        id=message.id,
        event_id=message.event_id,
        # Composed now from the stored ids: overrides and translations apply to old rows.
        user_message=catalog.user_message(message.action_id, message.detail_id,
                                          message.event_id, _placeholders(message)),
        message_level=message.message_level,
        request_id=message.request_id,
        resource_type=message.resource_type,
        resource_uuid=message.resource_uuid,
        created_at=message.created_at,
        expires_at=message.expires_at,
        seq=message.seq,
        internals=internals,
    )


def advice(message: StoredMessage, catalog: Catalog) -> Advice:
    """What the catalog advises for a message's detail (a legacy row's by its event);
    the same for every audience."""
    legacy = LEGACY_DETAILS.get(message.event_id)
    detail_id = message.detail_id or (legacy.id if legacy is not None else None)
    return catalog.advice(detail_id, _placeholders(message))


class MessageView:
    """Cinder's message bodies and links, for one request's audience and language."""

    def __init__(self, base: str, url_project: str | None, catalog: Catalog,
                 audience: Audience, owner_fields: bool = False) -> None:
        self._base = base
        self._project_path = f"/{url_project}" if url_project else ""
        self.catalog = catalog
        self.audience = audience
        # Beyond Cinder, opted into by a header: an admin's body also names the
        # message's project and node (tempest's schemas forbid extra keys otherwise).
        self._owner_fields = owner_fields

    def collection_url(self) -> str:
        return f"{self._base}/v3{self._project_path}/messages"

    def detail(self, message: StoredMessage) -> dict[str, Any]:
        """The body GET /messages/{id} shows (``{"message": ...}``'s value)."""
        return self.cinder(visible(message, self.audience, self.catalog))

    def cinder(self, shown: VisibleMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": shown.id,
            "event_id": shown.event_id,
            "user_message": shown.user_message,
            "message_level": shown.message_level,
            "created_at": timestamp(shown.created_at),
            "guaranteed_until": timestamp(shown.expires_at),
            "request_id": shown.request_id,
            "links": [
                {"rel": "self", "href": f"{self.collection_url()}/{shown.id}"},
                {"rel": "bookmark",
                 "href": f"{self._base}{self._project_path}/messages/{shown.id}"},
            ],
        }
        # Cinder omits these keys when they are empty.
        if shown.resource_type:
            body["resource_type"] = shown.resource_type
        if shown.resource_uuid:
            body["resource_uuid"] = shown.resource_uuid
        if self._owner_fields and shown.internals is not None:
            body["project_id"] = shown.internals.project_id
            body["host"] = shown.internals.host
        return body

    def index(self, messages: Sequence[StoredMessage], params: list[tuple[str, str]],
              link_limit: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": [self.detail(message) for message in messages]}
        # Cinder links whenever a non-empty page is full, even if nothing is left.
        if messages and link_limit is not None and link_limit <= len(messages):
            kept = [(k, v) for k, v in params if k != "marker"]
            query = urlencode([*kept, ("marker", messages[-1].id)])
            body["messages_links"] = [{"rel": "next", "href": f"{self.collection_url()}?{query}"}]
        return body


def export_fields(audience: Audience) -> tuple[str, ...]:
    """The columns of an export, in order."""
    return EXPORT_FIELDS + EXPORT_OWNER_FIELDS if audience is Audience.ADMIN else EXPORT_FIELDS


def export_record(shown: VisibleMessage) -> dict[str, str | None]:
    """One message as a download shows it: Cinder's fields, and an admin's owner fields."""
    values: dict[str, str | None] = {
        "id": shown.id,
        "created_at": timestamp(shown.created_at),
        "guaranteed_until": timestamp(shown.expires_at),
        "message_level": shown.message_level,
        "event_id": shown.event_id,
        "user_message": shown.user_message,
        "resource_type": shown.resource_type,
        "resource_uuid": shown.resource_uuid,
        "request_id": shown.request_id,
    }
    if shown.internals is not None:
        values["project_id"] = shown.internals.project_id
        values["kind"] = shown.internals.kind
    return values


def webhook_payload(message: StoredMessage, base: str, project_id: str,
                    catalog: Catalog) -> bytes:
    """The Standard Webhooks payload of a project's subscription: the message as
    GET /messages/{id} shows it to the project's users (never internals: it
    leaves the cloud)."""
    view = MessageView(base, project_id, catalog, Audience.PROJECT)
    body = {"type": WEBHOOK_EVENT, "timestamp": timestamp(message.created_at),
            "data": {"message": view.detail(message)}}
    return json.dumps(body, separators=(",", ":")).encode()


def series_body(series: StoredSeries, audience: Audience, catalog: Catalog,
                href: str) -> dict[str, Any]:
    """A series as the extension shows it; its project to admins only."""
    body: dict[str, Any] = {
        "id": series.id,
        "event_id": series.event_id,
        "resource_type": series.resource_type or None,
        "resource_uuid": series.resource_uuid or None,
        "message_level": series.message_level,
        # The latest occurrence's text (its request id is the newest exemplar's).
        "user_message": catalog.user_message(series.action_id, series.detail_id, series.event_id, {
            "resource_type": series.resource_type, "resource_uuid": series.resource_uuid,
            "request_id": series.request_ids[0] if series.request_ids else "",
            "message_level": series.message_level}),
        "count": series.count,
        "suppressed": series.suppressed,
        "first_seen": timestamp(series.first_seen),
        "last_seen": timestamp(series.last_seen),
        "request_ids": list(series.request_ids),
        "links": [{"rel": "self", "href": href}],
    }
    if audience is Audience.ADMIN:
        body["project_id"] = series.project_id
    return body
