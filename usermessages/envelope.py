"""The versioned JSON envelope a message travels in, from producer to collector.

The producer generates the message id, so redelivery can never store a
message twice (the collector inserts with "on conflict do nothing"). The
collector trusts nothing in an envelope: ``decode`` checks the version, every
catalog id, every type and size, and says exactly what is wrong, for the
dead-letter queue. The expiry is not carried: the store's ``message_ttl``
decides it at insert time.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from usermessages.catalog import Action, Detail, Kind, Level, Resource
from usermessages.errors import UserMessagesError

VERSION = 1
MAX_BYTES = 8192
MAX_FIELD = 255
CONTENT_TYPE = "application/json"

# Field name -> longest value allowed (the store's column sizes).
_STRINGS = {
    "kind": 16,
    "user_id": MAX_FIELD,
    "request_id": MAX_FIELD,
    "resource_type": 36,
    "resource_uuid": MAX_FIELD,
    "event_id": MAX_FIELD,
    "message_level": MAX_FIELD,
    "action_id": 10,
    "detail_id": 10,
    "host": MAX_FIELD,
    "exception_class": MAX_FIELD,
}
FIELDS = frozenset({"id", "project_id", "created_at", *_STRINGS})


class InvalidEnvelope(UserMessagesError):
    """Raised when an envelope cannot be accepted; the text is the dead-letter reason."""


def encode(record: Mapping[str, Any]) -> bytes:
    """The envelope of a record built by the SDK (``expires_at`` is left out)."""
    message = {key: record[key] for key in FIELDS}
    message["created_at"] = record["created_at"].isoformat()
    return json.dumps({"v": VERSION, "message": message}, separators=(",", ":")).encode()


def _expected_event_id(message: Mapping[str, Any]) -> str:
    resource = Resource(message["resource_type"])
    action = Action(message["action_id"])
    detail = Detail(message["detail_id"])
    return f"VOLUME_{resource.value}_{action.id}_{detail.id}"


def decode(body: bytes | str, ttl: int) -> dict[str, Any]:
    """Validate an envelope and return the row to store, with ``expires_at`` set."""
    if isinstance(body, str):
        body = body.encode("utf-8", errors="surrogateescape")
    if len(body) > MAX_BYTES:
        raise InvalidEnvelope(f"envelope is {len(body)} bytes, more than {MAX_BYTES}")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEnvelope(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("v") != VERSION:
        version = document.get("v") if isinstance(document, dict) else None
        raise InvalidEnvelope(f"unsupported envelope version {version!r}, expected {VERSION}")
    message = document.get("message")
    if not isinstance(message, dict):
        raise InvalidEnvelope("envelope has no message object")
    if set(message) != FIELDS:
        missing, extra = sorted(FIELDS - set(message)), sorted(set(message) - FIELDS)
        raise InvalidEnvelope(f"fields differ: missing {missing}, unexpected {extra}")
    for name, longest in _STRINGS.items():
        value = message[name]
        if not isinstance(value, str):
            raise InvalidEnvelope(f"{name} must be a string")
        if len(value) > longest:
            raise InvalidEnvelope(f"{name} is longer than {longest} characters")
    try:
        canonical = str(uuid.UUID(message["id"]))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidEnvelope("id must be a UUID") from exc
    if canonical != message["id"]:
        raise InvalidEnvelope("id must be a UUID in canonical form")
    # PostgreSQL refuses NUL in text; refuse it here so it cannot poison a batch.
    if any("\x00" in value for value in message.values() if isinstance(value, str)):
        raise InvalidEnvelope("a field contains a NUL character")
    try:
        kind = Kind(message["kind"])
        Level(message["message_level"])
        expected = _expected_event_id(message)
    except ValueError as exc:
        raise InvalidEnvelope(f"not in the catalog: {exc}") from exc
    if message["event_id"] != expected:
        raise InvalidEnvelope(f"event_id {message['event_id']!r} should be {expected!r}")
    project = message["project_id"]
    if kind is Kind.API:
        if not isinstance(project, str) or not project or len(project) > MAX_FIELD:
            raise InvalidEnvelope("an API message needs a project_id of 1 to 255 characters")
    elif project is not None:
        raise InvalidEnvelope(f"a {kind.value} message carries no project_id")
    try:
        created = dt.datetime.fromisoformat(message["created_at"])
    except (TypeError, ValueError) as exc:
        raise InvalidEnvelope("created_at must be an ISO 8601 time") from exc
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    row = dict(message)
    row["created_at"] = created
    row["expires_at"] = created + dt.timedelta(seconds=ttl)
    return row
