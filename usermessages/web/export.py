"""A filtered view as a download: NDJSON or CSV lines, one row at a time.

Both front ends (the API's ``messages-ext/export`` and the viewer's button)
stream these generators over the reader's keyset walk, so a download of any
size holds one page of rows in memory. The fields are Cinder's message fields
(the text composed now, as the list shows it); a reader across projects also
gets each message's project and kind.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from usermessages.catalog import Catalog
from usermessages.web.views import timestamp, user_message

FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
FIELDS = ("id", "created_at", "guaranteed_until", "message_level", "event_id", "user_message",
          "resource_type", "resource_uuid", "request_id")
OWNER_FIELDS = ("project_id", "kind")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP's
# list: = + - @, and tab and carriage return, which some strip first).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def fields(all_projects: bool) -> tuple[str, ...]:
    return FIELDS + OWNER_FIELDS if all_projects else FIELDS


def record(row: dict, catalog: Catalog, all_projects: bool) -> dict[str, str | None]:
    """One message as the export shows it."""
    values: dict[str, str | None] = {
        "id": row["id"],
        "created_at": timestamp(row["created_at"]),
        "guaranteed_until": timestamp(row["expires_at"]),
        "message_level": row["message_level"],
        "event_id": row["event_id"],
        "user_message": user_message(row, catalog),
        "resource_type": row["resource_type"],
        "resource_uuid": row["resource_uuid"],
        "request_id": row["request_id"],
    }
    if all_projects:
        values["project_id"] = row["project_id"]
        values["kind"] = row["kind"]
    return values


def safe_cell(value: str | None) -> str:
    """A CSV cell a spreadsheet shows as text: a formula-like start gets a quote."""
    text = "" if value is None else value
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def ndjson(rows: Iterable[dict], catalog: Catalog, all_projects: bool) -> Iterator[str]:
    for row in rows:
        yield json.dumps(record(row, catalog, all_projects), ensure_ascii=False) + "\n"


def csv_lines(rows: Iterable[dict], catalog: Catalog, all_projects: bool) -> Iterator[str]:
    names = fields(all_projects)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(names)
    for row in rows:
        values = record(row, catalog, all_projects)
        yield line(safe_cell(values[name]) for name in names)


def lines(fmt: str, rows: Iterable[dict], catalog: Catalog, all_projects: bool) -> Iterator[str]:
    """The download's lines in ``fmt`` (a key of FORMATS)."""
    if fmt == "csv":
        return csv_lines(rows, catalog, all_projects)
    return ndjson(rows, catalog, all_projects)
