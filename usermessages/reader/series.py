"""Reading series (repeats of one failure): parameters, scope and policy.

The extension's list takes exact filters and keyset paging, last seen
first; a project user sees only their project's series, an admin every
project's (optionally filtered by ``project_id``).
"""

from __future__ import annotations

from collections.abc import Sequence

from usermessages.errors import BadRequest, SeriesNotFound
from usermessages.reader import policy
from usermessages.reader.params import parse_limit
from usermessages.reader.reader import MAX_ID, Reader, Scope
from usermessages.store import series as store

USER_FILTERS = ("event_id", "resource_uuid", "resource_type")
ADMIN_FILTERS = (*USER_FILTERS, "project_id")
# all_tenants: as on the messages list, an admin reads across projects anyway.
ACCEPTED = ("limit", "marker", "all_tenants")
MAX_VALUE = 255


def parse(scope: Scope, params: Sequence[tuple[str, str]], max_limit: int) -> store.SeriesQuery:
    """A series list request's query string; a clear BadRequest for anything else."""
    allowed = ADMIN_FILTERS if scope.all_projects else USER_FILTERS
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


def list_series(reader: Reader, scope: Scope, params: Sequence[tuple[str, str]],
                max_limit: int) -> tuple[list[dict], int]:
    """Authorize, parse, query: one page of series and the limit a next link is judged on."""
    reader.policy.authorize(policy.SERIES_GET_ALL, scope.caller, scope.caller.project_id)
    query = parse(scope, params, max_limit)
    with reader.engine.connect() as conn:
        if scope.project_id is None:
            return store.list_series_all_projects(conn, query), query.limit
        return store.list_series(conn, scope.project_id, query), query.limit


def get_series(reader: Reader, scope: Scope, series_id: str) -> dict:
    """One series, looked up before the policy check: another project's id is a 404."""
    if len(series_id) > MAX_ID:
        raise SeriesNotFound(series_id[:MAX_ID] + "...")
    with reader.engine.connect() as conn:
        if scope.project_id is None:
            row = store.get_series_all_projects(conn, series_id)
        else:
            row = store.get_series(conn, series_id, scope.project_id)
    reader.policy.authorize(policy.SERIES_GET, scope.caller, row["project_id"])
    return row


def repeats(reader: Reader, rows: Sequence[dict]) -> dict[str, int]:
    """How many times each row's failure occurred (its series' count), by message id.

    For rows the caller was already allowed to list: a row's series is of the
    same project, so no further policy check is due.
    """
    keys = {row["id"]: store.series_id(row["kind"], row["project_id"], row["event_id"],
                                       row["resource_uuid"] or "") for row in rows}
    if not keys:
        return {}
    with reader.engine.connect() as conn:
        found = store.counts(conn, sorted(set(keys.values())))
    return {message_id: found[sid] for message_id, sid in keys.items() if sid in found}
