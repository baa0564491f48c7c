"""Parsing a list request's query string into a store ListQuery, with Cinder's errors."""

from __future__ import annotations

import datetime as dt

from usermessages.errors import BadRequest
from usermessages.store.messages import SORT_KEYS, ListQuery

# What a project user may filter on (Cinder's resource_filters.json for "message").
USER_FILTERS = ("resource_uuid", "resource_type", "event_id", "request_id", "message_level")
# Admins may also filter on these columns, as they can in Cinder (plus our own).
ADMIN_FILTERS = (*USER_FILTERS, "project_id", "action_id", "detail_id", "host", "kind", "user_id")
# Beyond Cinder: a time range, named as Manila names it.
TIME_FILTERS = ("created_since", "created_before")
PAGING = ("limit", "marker", "offset", "sort", "sort_key", "sort_dir")
# cinderclient sends all_tenants=1 in its name lookup; Cinder drops it silently.
IGNORED = ("all_tenants",)
MAX_VALUE = 255
MAX_OFFSET = 2**31 - 1
SORT_CONFLICT = (
    "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with "
    "the 'sort' parameter."
)


def parse_limit(raw: str | None, max_limit: int) -> int:
    """A ``limit`` query parameter, Cinder's way: capped at max_limit, 400 if not a count."""
    if raw is None:
        return max_limit
    try:
        limit = int(raw)
    except ValueError as exc:
        raise BadRequest("limit param must be an integer") from exc
    if limit < 0:
        raise BadRequest("limit param must be positive")
    return min(limit, max_limit)


def _offset(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        offset = int(raw)
    except ValueError as exc:
        raise BadRequest("offset must be an integer") from exc
    if offset < 0:
        raise BadRequest("offset must be >= 0")
    if offset > MAX_OFFSET:
        raise BadRequest(f"offset must be <= {MAX_OFFSET}")
    return offset


def _direction(raw: str) -> str:
    direction = raw.strip().lower()
    if direction not in ("asc", "desc"):
        raise BadRequest(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."
        )
    return direction


def _key(raw: str) -> str:
    key = raw.strip()
    if key not in SORT_KEYS:
        raise BadRequest("Invalid input received: Invalid sort key")
    return key


def parse_sort(params: dict[str, str]) -> list[tuple[str, str]]:
    """``sort=k[:dir],...`` or the deprecated ``sort_key``/``sort_dir``; default created_at desc."""
    if "sort" in params and ("sort_key" in params or "sort_dir" in params):
        raise BadRequest(SORT_CONFLICT)
    if "sort" in params:
        sort = []
        for item in params["sort"].split(","):
            key, _, direction = item.partition(":")
            sort.append((_key(key), _direction(direction) if direction else "desc"))
        return sort
    key = _key(params["sort_key"]) if "sort_key" in params else "created_at"
    direction = _direction(params["sort_dir"]) if "sort_dir" in params else "desc"
    return [(key, direction)]


def _timestamp(name: str, raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is not None:
            # OverflowError: an offset can push year 1 or 9999 out of range.
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"Invalid input received: {name} must be an ISO 8601 time") from exc
    return value


def _check_sizes(params: dict[str, str]) -> None:
    for key, value in params.items():
        if len(key) > MAX_VALUE or len(value) > MAX_VALUE:
            raise BadRequest(
                f"Invalid input received: query parameter {key[:40]!r} is longer than "
                f"{MAX_VALUE} characters"
            )


def parse_list_query(
    params: dict[str, str], *, legacy: bool, is_admin: bool, max_limit: int
) -> tuple[ListQuery, int]:
    """Build the ListQuery for a list request; also return the link-deciding limit.

    ``legacy`` is a request at a microversion below 3.5, where Cinder reads
    no list parameter (the API decides it from the version it negotiated).
    The second value is the page size a ``next`` link is judged against
    (Cinder's ``_get_collection_links``): ``limit``, else ``osapi_max_limit``.
    """
    _check_sizes(params)
    if legacy:
        # Before 3.5 Cinder reads no parameter. We honour limit and marker all
        # the same: openstacksdk sends them at 3.3 and loops forever otherwise.
        limit = parse_limit(params.get("limit"), max_limit)
        query = ListQuery(limit=limit, marker=params.get("marker"))
        # Cinder links a page as full against limit or osapi_max_limit at 3.3 too;
        # as we cap the page, that link is also the only way past the cap.
        return query, limit

    filters: dict[str, str] = {}
    like: dict[str, str] = {}
    allowed = ADMIN_FILTERS if is_admin else USER_FILTERS
    invalid: list[str] = []
    for key, value in params.items():
        if key in PAGING or key in IGNORED or key in TIME_FILTERS:
            continue
        if not key.isascii():
            raise BadRequest("Filter keys can only contain ASCII characters.")
        if key.endswith("~") and is_admin and key[:-1] in allowed:
            like[key[:-1]] = value
        elif key in allowed:
            filters[key] = value
        else:
            invalid.append(key)
    if invalid:
        raise BadRequest(f"Invalid filters {','.join(invalid)} are found in query options.")
    limit = parse_limit(params.get("limit"), max_limit)
    query = ListQuery(
        filters=filters,
        like_filters=like,
        sort=parse_sort(params),
        limit=limit,
        marker=params.get("marker"),
        offset=_offset(params.get("offset")),
        created_since=_timestamp("created_since", params["created_since"])
        if "created_since" in params else None,
        created_before=_timestamp("created_before", params["created_before"])
        if "created_before" in params else None,
    )
    return query, limit

