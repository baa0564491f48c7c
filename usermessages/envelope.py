"""The versioned JSON envelope a message travels in, from producer to collector.

This module is the format: ``pack`` writes the fields ``Message.to_wire``
gives it, ``unpack`` checks the document's shape and returns the fields for
``Message.from_wire``, which applies the message's own rules (catalog ids,
bounds, text, the project per kind, ``event_id``). The producer generates the
message id, so redelivery can never store a message twice (the collector
inserts with "on conflict do nothing"). The expiry is not carried: the
store's ``message_ttl`` decides it at insert time.

Whatever the bytes, ``Message.from_wire`` either returns a message every
supported store accepts or raises InvalidEnvelope; it never raises anything
else (a property the fuzz tests check against SQLite and PostgreSQL). Here:

* the body is at most MAX_BYTES and JSON nested no deeper than the parser
  allows (deeper is refused, not a RecursionError);
* the message object has exactly FIELDS;
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
from collections.abc import Mapping
from typing import Any

from usermessages.errors import UserMessagesError

VERSION = 1
MAX_BYTES = 8192
CONTENT_TYPE = "application/json"
# A pack: many envelopes in one bus message, one per line. Compact JSON never
# holds a raw newline (json.dumps escapes it), so a line is an envelope. One
# message per envelope cost the broker and the collector a delivery, a frame
# and a callback each; the forwarder sends what it spooled as packs instead.
PACK_CONTENT_TYPE = "application/x-ndjson"
MAX_PACK_BYTES = 64 * 1024
MAX_PACK_ENVELOPES = 512
# The formats, "content type;v=envelope version": what a collector reads (it says so in
# its announcement, store/collectors.py) and what this release's producers send.
FORMAT = f"{CONTENT_TYPE};v={VERSION}"
PACK_FORMAT = f"{PACK_CONTENT_TYPE};v={VERSION}"
READS = (FORMAT, PACK_FORMAT)

FIELDS = frozenset({
    "id", "kind", "project_id", "user_id", "request_id", "resource_type", "resource_uuid",
    "event_id", "message_level", "action_id", "detail_id", "host", "exception_class",
    "created_at",
})

EARLIEST = dt.datetime(1970, 1, 1)
MAX_CLOCK_SKEW = dt.timedelta(days=1)
_DAY = dt.timedelta(days=1)
# Longer than any ISO 8601 time fromisoformat reads ("...T..:..:..,ffffff+hh:mm:ss.ffffff").
_MAX_TIME_TEXT = 64


class InvalidEnvelope(UserMessagesError):
    """Raised when an envelope cannot be accepted; the text is the dead-letter reason."""


def pack(fields: Mapping[str, Any]) -> bytes:
    """The envelope of a message's wire fields (``Message.to_wire`` gives them)."""
    return json.dumps({"v": VERSION, "message": dict(fields)}, separators=(",", ":")).encode()


def packs(bodies: list[bytes]) -> list[list[bytes]]:
    """Split envelopes, in order, into groups that each fit in one pack."""
    groups: list[list[bytes]] = []
    size = MAX_PACK_BYTES + 1
    for body in bodies:
        if size + len(body) + 1 > MAX_PACK_BYTES or len(groups[-1]) >= MAX_PACK_ENVELOPES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += len(body) + 1
    return groups


def join(bodies: list[bytes]) -> bytes:
    """The body of one pack (``packs`` sizes the groups)."""
    return b"\n".join(bodies)


def split(body: bytes) -> list[bytes]:
    """The envelopes of a pack, each still to ``unpack``; InvalidEnvelope if oversize."""
    if len(body) > MAX_PACK_BYTES:
        raise InvalidEnvelope(f"pack is {len(body)} bytes, more than {MAX_PACK_BYTES}")
    parts = body.split(b"\n")
    if len(parts) > MAX_PACK_ENVELOPES:
        raise InvalidEnvelope(f"pack holds {len(parts)} envelopes, more than "
                              f"{MAX_PACK_ENVELOPES}")
    return parts


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


def unpack(body: bytes | str, *, now: dt.datetime) -> dict[str, Any]:
    """The wire fields of an envelope, ``created_at`` read as naive UTC.

    ``now`` (naive UTC) bounds ``created_at`` from above. Raises
    InvalidEnvelope, and nothing else, for any body; the values of the other
    fields are checked by ``Message.from_wire``.
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
    return {**message, "created_at": _created_at(message["created_at"], now)}
