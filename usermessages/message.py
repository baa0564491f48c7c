"""The user message: one frozen type from the SDK to the store.

Every message is built by ``Message.create``, which applies the catalog's
rules once: Cinder's detail precedence (a mapped exception, then the given
detail, then UNKNOWN_ERROR), the store's bounds, no text a store cannot hold
(NUL, a lone surrogate), a project for API messages and none for the
admin-only kinds. The SDK, the notification mapper and the tests all call it.
``from_wire`` restores a message another process created: it re-checks the
same invariants (they live in ``__post_init__``, so no instance escapes them)
and the envelope's ``event_id``, but keeps the producer's detail and id.

``event_id`` is derived, never stored in the instance: ``catalog.event_id``
is its one formula. ``to_wire`` is the versioned envelope (see envelope.py
for the format), ``to_row`` the store's row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from usermessages import envelope
from usermessages.catalog import (
    Action,
    Detail,
    Kind,
    Level,
    Resource,
    detail_for,
    detail_for_name,
    event_id,
)
from usermessages.errors import CatalogError

__all__ = ["MAX_FIELD", "Message"]

MAX_FIELD = 255
# The free-text fields: bounded, and text every store can hold.
_TEXT_FIELDS = ("user_id", "request_id", "global_request_id", "resource_uuid", "host",
                "exception_class")
_CATALOG_FIELDS = (("kind", Kind), ("resource_type", Resource), ("action", Action),
                   ("detail", Detail), ("level", Level))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _check_text(what: str, value: Any) -> None:
    if not isinstance(value, str):
        raise CatalogError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > MAX_FIELD:
        raise CatalogError(f"{what} is longer than {MAX_FIELD} characters")
    # PostgreSQL refuses NUL in text and no driver can encode a lone surrogate
    # (JSON's "\ud800" decodes to one): refuse both here, not in the store.
    if "\x00" in value:
        raise CatalogError(f"{what} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CatalogError(f"{what} is not valid Unicode (a lone surrogate)") from exc


def _text(value: str | None) -> str:
    return "" if value is None else value


def _check_id(value: Any) -> None:
    try:
        canonical = str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError) as exc:
        raise CatalogError("id must be a UUID") from exc
    if canonical != value:
        raise CatalogError("id must be a UUID in canonical form")


def _exception_class(exception: BaseException) -> str:
    cls = type(exception)
    return f"{cls.__module__}.{cls.__qualname__}"[:MAX_FIELD]


def _lookup(enum: Any, what: str, value: Any) -> Any:
    """A catalog member from its stored form (value or id), for ``from_wire``."""
    if not isinstance(value, str):
        raise CatalogError(f"{what} must be a string, not {type(value).__name__}")
    try:
        return enum(value)
    except ValueError as exc:
        raise CatalogError(
            f"not in the catalog: {value[:50]!r} is not a valid {enum.__name__}") from exc


@dataclass(frozen=True)
class Message:
    """One user message. Build it with ``create`` (or ``from_wire``), never directly."""

    id: str
    kind: Kind
    project_id: str | None
    user_id: str
    request_id: str
    global_request_id: str
    resource_type: Resource
    resource_uuid: str
    action: Action
    detail: Detail
    level: Level
    host: str
    exception_class: str
    created_at: dt.datetime
    expires_at: dt.datetime

    def __post_init__(self) -> None:
        for name, enum in _CATALOG_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, enum):
                raise CatalogError(f"{name} must be a catalog {enum.__name__}, not {value!r}")
        _check_id(self.id)
        for name in _TEXT_FIELDS:
            _check_text(name, getattr(self, name))
        if self.kind is Kind.API:
            project = self.project_id
            if not isinstance(project, str) or not 0 < len(project) <= MAX_FIELD:
                raise CatalogError("an API message needs a project_id of 1 to 255 characters")
            _check_text("project_id", project)
        elif self.project_id is not None:
            raise CatalogError(f"a {self.kind.value} message carries no project_id")
        for name in ("created_at", "expires_at"):
            value = getattr(self, name)
            if not isinstance(value, dt.datetime) or value.tzinfo is not None:
                raise CatalogError(f"{name} must be a naive UTC datetime, not {value!r}")

    @property
    def event_id(self) -> str:
        """``VOLUME_<RESOURCE>_<ACTION>_<DETAIL>``, as the catalog composes it."""
        return event_id(self.resource_type, self.action, self.detail)

    @classmethod
    def create(
        cls,
        kind: Kind,
        action: Action,
        resource_type: Resource,
        *,
        ttl: int,
        project_id: str | None = None,
        user_id: str | None = None,
        request_id: str | None = None,
        global_request_id: str | None = None,
        resource_uuid: str | None = None,
        detail: Detail | None = None,
        exception: BaseException | None = None,
        exception_name: str | None = None,
        level: Level = Level.ERROR,
        host: str | None = None,
        message_id: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> Message:
        """A new message, with the catalog's rules applied; CatalogError if it breaks one.

        The detail follows Cinder's precedence: an exception whose class the
        catalog maps (``exception``, or ``exception_name`` for one known only
        by its class name, as notifications report it) wins over ``detail``,
        which wins over UNKNOWN_ERROR. Only the exception's class is kept (for
        admins), never its text. None means "unset" for every text field.
        ``message_id`` defaults to a fresh UUID4, ``created_at`` (naive UTC)
        to now; the message expires ``ttl`` seconds after it was created.
        """
        for value, enum, what in ((action, Action, "action"),
                                  (resource_type, Resource, "resource_type"),
                                  (level, Level, "level")):
            if not isinstance(value, enum):
                raise CatalogError(f"{what} must be a catalog {enum.__name__}, not {value!r}")
        if detail is not None and not isinstance(detail, Detail):
            raise CatalogError(f"detail must be a catalog Detail, not {detail!r}")
        if exception is not None and not isinstance(exception, BaseException):
            raise CatalogError(f"exception must be an exception, not {exception!r}")
        if exception is not None and exception_name is not None:
            raise CatalogError("give exception or exception_name, not both")
        if exception is not None:
            chosen, recorded = detail_for(exception, detail), _exception_class(exception)
        elif exception_name:
            _check_text("exception_name", exception_name)
            chosen = detail_for_name(exception_name) or detail or Detail.UNKNOWN_ERROR
            recorded = exception_name
        else:
            chosen, recorded = detail or Detail.UNKNOWN_ERROR, ""
        created = _utcnow() if created_at is None else created_at
        return cls(
            id=str(uuid.uuid4()) if message_id is None else message_id,
            kind=kind,
            project_id=project_id,
            user_id=_text(user_id),
            request_id=_text(request_id),
            global_request_id=_text(global_request_id),
            resource_type=resource_type,
            resource_uuid=_text(resource_uuid),
            action=action,
            detail=chosen,
            level=level,
            host=_text(host),
            exception_class=recorded,
            created_at=created,
            expires_at=created + dt.timedelta(seconds=ttl),
        )

    # --- the envelope ---------------------------------------------------------------

    def to_wire(self) -> bytes:
        """The versioned envelope (``expires_at`` is not carried: the store's ttl decides)."""
        return envelope.pack({
            "id": self.id,
            "kind": self.kind.value,
            "project_id": self.project_id,
            "user_id": self.user_id,
            "request_id": self.request_id,
            "resource_type": self.resource_type.value,
            "resource_uuid": self.resource_uuid,
            "event_id": self.event_id,
            "message_level": self.level.value,
            "action_id": self.action.id,
            "detail_id": self.detail.id,
            "host": self.host,
            "exception_class": self.exception_class,
            "created_at": self.created_at.isoformat(),
        })

    @classmethod
    def from_wire(cls, body: bytes | str, ttl: int, *, now: dt.datetime | None = None) -> Message:
        """The message an envelope carries, expiring ``ttl`` seconds after it was created.

        ``now`` (naive UTC, default the clock) bounds ``created_at`` from above.
        Raises InvalidEnvelope, and nothing else, for any body; its text is
        the dead-letter reason.
        """
        fields = envelope.unpack(body, now=now or _utcnow())
        created = fields["created_at"]
        try:
            expires = created + dt.timedelta(seconds=ttl)
        except OverflowError as exc:  # only with a ttl config.MAX_MESSAGE_TTL refuses
            raise envelope.InvalidEnvelope(
                f"created_at + message_ttl ({ttl}s) is not a time") from exc
        try:
            message = cls(
                id=fields["id"],
                kind=_lookup(Kind, "kind", fields["kind"]),
                project_id=fields["project_id"],
                user_id=fields["user_id"],
                request_id=fields["request_id"],
                global_request_id="",  # envelope v1 does not carry it
                resource_type=_lookup(Resource, "resource_type", fields["resource_type"]),
                resource_uuid=fields["resource_uuid"],
                action=_lookup(Action, "action_id", fields["action_id"]),
                detail=_lookup(Detail, "detail_id", fields["detail_id"]),
                level=_lookup(Level, "message_level", fields["message_level"]),
                host=fields["host"],
                exception_class=fields["exception_class"],
                created_at=created,
                expires_at=expires,
            )
        except CatalogError as exc:
            raise envelope.InvalidEnvelope(str(exc)) from exc
        if fields["event_id"] != message.event_id:
            given = repr(fields["event_id"])
            given = given if len(given) <= 80 else given[:77] + "..."
            raise envelope.InvalidEnvelope(f"event_id {given} should be {message.event_id!r}")
        return message

    # --- the store --------------------------------------------------------------------

    def to_row(self) -> dict[str, Any]:
        """The row the store inserts: every column a message has, as the store holds it."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "project_id": self.project_id,
            "user_id": self.user_id,
            "request_id": self.request_id,
            "global_request_id": self.global_request_id,
            "resource_type": self.resource_type.value,
            "resource_uuid": self.resource_uuid,
            "event_id": self.event_id,
            "message_level": self.level.value,
            "action_id": self.action.id,
            "detail_id": self.detail.id,
            "host": self.host,
            "exception_class": self.exception_class,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }
