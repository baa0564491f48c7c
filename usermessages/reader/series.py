"""A series list request's parameters: exact filters and keyset paging.

The extension's list takes exact filters and keyset paging, last seen
first; a project user filters within their project, an admin across every
project (optionally by ``project_id``). ``Reader.list_series`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

from usermessages.errors import BadRequest
from usermessages.reader.params import parse_limit
from usermessages.store import series as store

USER_FILTERS = ("event_id", "resource_uuid", "resource_type")
ADMIN_FILTERS = (*USER_FILTERS, "project_id")
# all_tenants: as on the messages list, an admin reads across projects anyway.
ACCEPTED = ("limit", "marker", "all_tenants")
MAX_VALUE = 255


def parse(params: Sequence[tuple[str, str]], *, is_admin: bool,
          max_limit: int) -> store.SeriesQuery:
    """A series list request's query string; a clear BadRequest for anything else."""
    allowed = ADMIN_FILTERS if is_admin else USER_FILTERS
    values: dict[str, str] = {}
    for key, value in params:
        if key not in allowed and key not in ACCEPTED:
            raise BadRequest(f"Invalid input received: unknown query parameter {key[:40]!r} "
                             f"(series filter on {', '.join(allowed)})")
        if key in values:
            raise BadRequest(f"Invalid input received: {key[:40]!r} given twice")
        if len(value) > MAX_VALUE:
            raise BadRequest(f"Invalid input received: query parameter {key!r} is longer "
                             f"than {MAX_VALUE} characters")
        values[key] = value
    limit = parse_limit(values.pop("limit", None), max_limit)
    marker = values.pop("marker", None)
    values.pop("all_tenants", None)
    return store.SeriesQuery(filters=values, limit=limit, marker=marker)
