"""A filtered view as a download: NDJSON or CSV lines, one row at a time.

Both front ends (the API's ``messages-ext/export`` and the viewer's button)
stream these generators over the reader's keyset walk, so a download of any
size holds one page of rows in memory. What a line holds is the export's
projection (``projections.export_record``): Cinder's message fields (the text
composed now, as the list shows it), and for an admin each message's project
and kind.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from usermessages.catalog import Catalog
from usermessages.store.messages import StoredMessage
from usermessages.web.projections import Audience, export_fields, export_record, visible

FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
# A spreadsheet runs a cell starting with one of these as a formula (OWASP's
# list: = + - @, and tab and carriage return, which some strip first).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str | None) -> str:
    """A CSV cell a spreadsheet shows as text: a formula-like start gets a quote."""
    text = "" if value is None else value
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def ndjson(rows: Iterable[StoredMessage], catalog: Catalog,
           audience: Audience) -> Iterator[str]:
    for row in rows:
        record = export_record(visible(row, audience, catalog))
        yield json.dumps(record, ensure_ascii=False) + "\n"


def csv_lines(rows: Iterable[StoredMessage], catalog: Catalog,
              audience: Audience) -> Iterator[str]:
    names = export_fields(audience)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(names)
    for row in rows:
        record = export_record(visible(row, audience, catalog))
        yield line(safe_cell(record[name]) for name in names)


def lines(fmt: str, rows: Iterable[StoredMessage], catalog: Catalog,
          audience: Audience) -> Iterator[str]:
    """The download's lines in ``fmt`` (a key of FORMATS)."""
    if fmt == "csv":
        return csv_lines(rows, catalog, audience)
    return ndjson(rows, catalog, audience)
