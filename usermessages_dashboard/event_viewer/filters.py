"""The filter box's text turned into the message list's query parameters."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from horizon import exceptions

# Upper-cased before sending: the service stores and matches them exactly.
UPPER_CASE = ("message_level", "resource_type")
TIME_RANGE = "time_range"


class InvalidFilter(exceptions.HorizonException):
    """Raised when a filter's text cannot be sent (a malformed time range)."""


def _iso(text: str) -> str:
    from datetime import datetime

    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidFilter(_("Not an ISO 8601 time: %s") % text) from exc
    return text


def search_opts(field: str | None, value: str) -> dict[str, str]:
    """One field's value as query parameters; a time range is START/END (either may be empty)."""
    value = value.strip()
    if not field or not value:
        return {}
    if field == TIME_RANGE:
        start, _sep, end = value.partition("/")
        opts = {}
        if start.strip():
            opts["created_since"] = _iso(start.strip())
        if end.strip():
            opts["created_before"] = _iso(end.strip())
        return opts
    return {field: value.upper() if field in UPPER_CASE else value}
