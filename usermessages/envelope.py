"""The versioned JSON envelope a message travels in, from producer to collector.

The producer generates the message id, so redelivery can never store a
message twice (the collector inserts with "on conflict do nothing"). The
collector trusts nothing in an envelope: ``decode`` checks the version, every
catalog id, every type and size, and says exactly what is wrong, for the
dead-letter queue. The expiry is not carried: the store's ``message_ttl``
decides it at insert time.

Whatever the bytes, ``decode`` either returns a row every supported store
accepts or raises InvalidEnvelope; it never raises anything else (a property
the fuzz tests check against SQLite and PostgreSQL). In particular:

* the body is at most MAX_BYTES and JSON nested no deeper than the parser
  allows (deeper is refused, not a RecursionError);
* every string is valid Unicode (no lone surrogate, no NUL), which the
  drivers could not store;
* ``created_at`` is an ISO 8601 time, naive meaning UTC, from EARLIEST
  (1970-01-01T00:00:00Z) to MAX_CLOCK_SKEW (one day) ahead of the
  collector's clock: a producer's clock may run a little fast, but a message
  dated years ahead would top every list and never expire. With
  ``message_ttl`` bounded by ``config.MAX_MESSAGE_TTL`` the expiry is then
  always a representable time.
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

EARLIEST = dt.datetime(1970, 1, 1)
MAX_CLOCK_SKEW = dt.timedelta(days=1)
_DAY = dt.timedelta(days=1)
# Longer than any ISO 8601 time fromisoformat reads ("...T..:..:..,ffffff+hh:mm:ss.ffffff").
_MAX_TIME_TEXT = 64


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


def _check_text(name: str, value: str) -> None:
    # PostgreSQL refuses NUL in text and no driver can encode a lone surrogate
    # (JSON's "\\ud800" decodes to one): refuse both here, not in the store.
    if "\x00" in value:
        raise InvalidEnvelope(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEnvelope(f"{name} is not valid Unicode (a lone surrogate)") from exc


def _created_at(value: Any, now: dt.datetime) -> dt.datetime:
    """``created_at`` as naive UTC, within [EARLIEST, now + MAX_CLOCK_SKEW]."""
    if not isinstance(value, str) or len(value) > _MAX_TIME_TEXT:
        raise InvalidEnvelope("created_at must be an ISO 8601 time")
    try:
        created = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidEnvelope("created_at must be an ISO 8601 time") from exc
    latest = now + MAX_CLOCK_SKEW
    # Compare before converting: astimezone overflows at the ends of the
    # calendar, and an offset is less than a day.
    local = created.replace(tzinfo=None)
    if not EARLIEST - _DAY <= local <= latest + _DAY:
        raise InvalidEnvelope(f"created_at is outside {EARLIEST.isoformat()}Z .. now + 1 day")
    offset = created.utcoffset()
    utc = local - offset if offset is not None else local
    if not EARLIEST <= utc <= latest:
        raise InvalidEnvelope(f"created_at is outside {EARLIEST.isoformat()}Z .. now + 1 day")
    return utc


def decode(body: bytes | str, ttl: int, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Validate an envelope and return the row to store, with ``expires_at`` set.

    ``now`` (naive UTC, default the clock) bounds ``created_at`` from above.
    Raises InvalidEnvelope, and nothing else, for any body.
    """
    if isinstance(body, str):
        # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, refused below.
        body = body.encode("utf-8", errors="surrogatepass")
    if len(body) > MAX_BYTES:
        raise InvalidEnvelope(f"envelope is {len(body)} bytes, more than {MAX_BYTES}")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEnvelope(f"not JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidEnvelope("not JSON: nested too deeply") from exc
    version = document.get("v") if isinstance(document, dict) else None
    # type() as well: JSON's true and 1.0 compare equal to 1.
    if type(version) is not int or version != VERSION:
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
    for name, value in message.items():
        if isinstance(value, str):
            _check_text(name, value)
    try:
        canonical = str(uuid.UUID(message["id"]))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidEnvelope("id must be a UUID") from exc
    if canonical != message["id"]:
        raise InvalidEnvelope("id must be a UUID in canonical form")
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
    created = _created_at(message["created_at"], now or _utcnow())
    try:
        expires = created + dt.timedelta(seconds=ttl)
    except OverflowError as exc:  # only with a ttl config.MAX_MESSAGE_TTL refuses
        raise InvalidEnvelope(f"created_at + message_ttl ({ttl}s) is not a time") from exc
    row = dict(message)
    row["created_at"] = created
    row["expires_at"] = expires
    return row


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
