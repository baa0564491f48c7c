"""The extension's read requests: a filtered view (list filters plus a summary
search) and the time range its histogram covers.

The list's own parser (``params.parse_list_query``) does the filters, so a view
takes exactly the filters a list takes, with the same errors; this adds ``q``
(search on the summary) and, for aggregates, ``bucket``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from usermessages.catalog import Catalog
from usermessages.errors import BadRequest
from usermessages.reader import search
from usermessages.reader.params import parse_list_query
from usermessages.store.aggregates import BUCKETS, truncate
from usermessages.store.messages import ListQuery, utcnow

SEARCH = "q"
# A histogram has at most this many bars: a year of days, or two weeks of hours.
MAX_BUCKETS = 400
# Without a From, a histogram covers this much before its end.
DEFAULT_SPAN = {"hour": dt.timedelta(days=1), "day": dt.timedelta(days=30)}
PAGING = ("limit", "marker", "offset")


def parse_view(params: dict[str, str], catalog: Catalog, *, is_admin: bool,
               max_limit: int, paged: bool = True) -> ListQuery:
    """A view's query: the list's filters, sort and paging, and ``q`` on the summary.

    ``paged`` False (export, aggregates) refuses paging parameters: those
    cover the whole view.
    """
    params = dict(params)
    term = params.pop(SEARCH, None)
    if not paged:
        given = [name for name in PAGING if name in params]
        if given:
            raise BadRequest(f"Invalid input received: {', '.join(given)} cannot be used "
                             "here; the whole filtered view is covered.")
    query, _ = parse_list_query(params, legacy=False, is_admin=is_admin, max_limit=max_limit)
    if term is not None:
        query = replace(query, summary=search.resolve(catalog, term))
    return query


@dataclass(frozen=True)
class Histogram:
    """A histogram's query: the view's, bounded to [since, until), and its bucket."""

    query: ListQuery
    bucket: str
    since: dt.datetime
    until: dt.datetime


def histogram(query: ListQuery, bucket: str | None, *, now: dt.datetime | None = None) -> Histogram:
    """Bound the view in time for a histogram; BadRequest if that makes too many bars."""
    bucket = bucket or "hour"
    if bucket not in BUCKETS:
        raise BadRequest("Invalid input received: bucket must be 'hour' or 'day'.")
    until = query.created_before or (now or utcnow())
    since = query.created_since or until - DEFAULT_SPAN[bucket]
    if since >= until:
        raise BadRequest("Invalid input received: created_since must be before "
                         "created_before.")
    count = -(-(until - truncate(since, bucket)) // BUCKETS[bucket])
    if count > MAX_BUCKETS:
        raise BadRequest(f"Invalid input received: the range holds {count} {bucket}s; at most "
                         f"{MAX_BUCKETS} buckets are counted. Narrow the range or use "
                         f"bucket=day.")
    return Histogram(replace(query, created_since=since, created_before=until), bucket,
                     since, until)
