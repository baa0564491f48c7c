"""Cinder's fault bodies: ``{"<faultName>": {"code": N, "message": "..."}}``.

The one place the API turns an error into a response.
"""

from __future__ import annotations

import json

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",  # beyond Cinder's table (it never answers 429), as Nova's faults name it
    501: "notImplemented",
    503: "serviceUnavailable",
}
# Cinder's text for anything unexpected; the real cause goes to the log only.
INTERNAL_ERROR_TEXT = (
    "The server has either erred or is incapable of performing the requested operation."
)
# webob's text for 503, which Cinder's faults carry.
UNAVAILABLE_TEXT = "The server is currently unavailable. Please try again at a later time."


def fault_name(status: int) -> str:
    return FAULT_NAMES.get(status, "computeFault")


def fault_body(status: int, message: str) -> bytes:
    return json.dumps({fault_name(status): {"code": status, "message": message}}).encode()
