"""The options that become a view's query: the same names as ``usermessages message``'s."""

from __future__ import annotations

import argparse
from typing import Any


def add_resource_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resource-uuid", metavar="<uuid>",
                        help="Only those about this volume, snapshot or backup")
    parser.add_argument("--resource-type", metavar="<type>",
                        help="Only those about VOLUME, VOLUME_SNAPSHOT or VOLUME_BACKUP")
    parser.add_argument("--event-id", metavar="<event-id>",
                        help="Only this event, e.g. VOLUME_VOLUME_001_003")


def add_view_filters(parser: argparse.ArgumentParser) -> None:
    """What a filtered view (aggregates, export) takes."""
    add_resource_filters(parser)
    parser.add_argument("--request-id", metavar="<request-id>",
                        help="Only messages of this request")
    parser.add_argument("--level", metavar="<level>", help="ERROR, WARNING or INFO")
    parser.add_argument("--since", metavar="<time>",
                        help="Created at or after this ISO 8601 time (UTC if no zone)")
    parser.add_argument("--until", metavar="<time>", help="Created before this ISO 8601 time")
    parser.add_argument("--search", metavar="<text>",
                        help="Only messages whose summary holds this text")


def query(parsed_args: argparse.Namespace) -> dict[str, Any]:
    """The API's query parameters for the filter options given (types upper-cased)."""
    given = vars(parsed_args)
    upper = {"resource_type": given.get("resource_type"), "message_level": given.get("level")}
    params = {
        "resource_uuid": given.get("resource_uuid"),
        "event_id": given.get("event_id"),
        "request_id": given.get("request_id"),
        "created_since": given.get("since"),
        "created_before": given.get("until"),
        "q": given.get("search"),
        **{key: value.upper() for key, value in upper.items() if value},
    }
    return {key: value for key, value in params.items() if value is not None}


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse's usage error otherwise)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number of at least 1")
    return int(text)
