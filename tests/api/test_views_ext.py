"""``messages-ext/aggregates`` and ``messages-ext/export`` over the real app and store."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from tests.api.conftest import headers, row
from usermessages.api.views_ext import EXPORT_PAGE
from usermessages.catalog import Action, Detail, Kind, Resource

A, B = "aaaa1111", "bbbb2222"
RANGE = {"created_since": "2026-11-01T10:00:00", "created_before": "2026-11-01T16:00:00"}


def _aggregates(client, project: str | None, user: str = "u", **params: str) -> dict:
    path = f"/v3/{project}/messages-ext/aggregates" if project else "/v3/messages-ext/aggregates"
    response = client.get(path, params=params, headers=headers(user, project or A))
    assert response.status_code == 200, response.text
    return response.json()["aggregates"]


@pytest.fixture
def seeded(seed):
    return seed(
        row(A, minutes=0, resource_uuid="vol-1"),
        row(A, minutes=5, resource_uuid="vol-1"),
        row(A, minutes=65, action=Action.SNAPSHOT_CREATE, detail=Detail.SNAPSHOT_CREATE_ERROR,
            resource=Resource.VOLUME_SNAPSHOT, resource_uuid="snap-1", level="WARNING"),
        row(A, minutes=-90, action=Action.EXTEND_VOLUME, detail=Detail.DRIVER_FAILED_EXTEND),
        row(B, minutes=1, resource_uuid="vol-b"),
        row(None, kind=Kind.SERVICE, resource=Resource.SERVICE, minutes=2),
    )


def test_aggregates_count_a_projects_messages_by_each_dimension_and_hour(client, seeded):
    body = _aggregates(client, A, bucket="hour", **RANGE)
    assert body["total"] == 4
    assert body["by_message_level"] == [{"value": "ERROR", "count": 3},
                                        {"value": "WARNING", "count": 1}]
    assert body["by_resource_type"] == [{"value": "VOLUME", "count": 3},
                                        {"value": "VOLUME_SNAPSHOT", "count": 1}]
    assert body["by_event_id"][0] == {"value": seeded[0]["event_id"], "count": 2}
    assert sum(item["count"] for item in body["by_event_id"]) == 4
    assert body["bucket"] == "hour"
    assert (body["since"], body["until"]) == ("2026-11-01T10:00:00.000000",
                                              "2026-11-01T16:00:00.000000")
    # BASE_TIME is 12:00:00.12: -90 min is 10:30, 0 and 5 min are 12:xx, 65 min is 13:05.
    assert [(b["start"][11:16], b["count"]) for b in body["by_time"]] == [
        ("10:00", 1), ("11:00", 0), ("12:00", 2), ("13:00", 1), ("14:00", 0), ("15:00", 0)]


def test_aggregates_take_the_lists_filters_and_a_summary_search(client, seeded):
    body = _aggregates(client, A, resource_uuid="vol-1", **RANGE)
    assert body["total"] == 2
    body = _aggregates(client, A, q="snapshot", **RANGE)
    assert body["total"] == 1 and body["by_resource_type"][0]["value"] == "VOLUME_SNAPSHOT"
    assert _aggregates(client, A, q="no such text", **RANGE)["total"] == 0


def test_aggregates_never_count_another_projects_messages(client, seeded):
    assert _aggregates(client, B, **RANGE)["total"] == 1
    # The project-less form counts the caller's own project only...
    assert _aggregates(client, None, user="u", **RANGE)["total"] == 4
    # ... except for an admin, across projects and kinds.
    everything = _aggregates(client, None, user="admin", **RANGE)
    assert everything["total"] == 6
    assert {"value": "SERVICE", "count": 1} in everything["by_resource_type"]
    # A project filter is the admin's; a project user's is refused, as on the list.
    assert _aggregates(client, None, user="admin", project_id=B, **RANGE)["total"] == 1
    refused = client.get(f"/v3/{A}/messages-ext/aggregates", params={"project_id": B},
                         headers=headers("u", A))
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == (
        "Invalid filters project_id are found in query options.")


def test_aggregates_default_to_the_last_day_by_hour(client, seed):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    recent = row(A)
    recent.update(created_at=now - dt.timedelta(minutes=10),
                  expires_at=now + dt.timedelta(days=30))
    seed(recent)
    body = _aggregates(client, A)
    assert body["bucket"] == "hour" and len(body["by_time"]) in (24, 25)
    assert sum(b["count"] for b in body["by_time"]) == 1
    days = _aggregates(client, A, bucket="day")
    assert len(days["by_time"]) in (30, 31)


def _export(client, project: str | None, fmt: str, user: str = "u", **params: str):
    path = f"/v3/{project}/messages-ext/export" if project else "/v3/messages-ext/export"
    response = client.get(path, params={"format": fmt, **params},
                          headers=headers(user, project or A))
    assert response.status_code == 200, response.text
    return response


def test_export_ndjson_is_the_filtered_view_in_list_order(client, seeded):
    response = _export(client, A, "ndjson")
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == 'attachment; filename="messages.ndjson"'
    lines = [json.loads(line) for line in response.text.splitlines()]
    listed = client.get(f"/v3/{A}/messages", headers=headers("u", A)).json()["messages"]
    assert [m["id"] for m in lines] == [m["id"] for m in listed]
    by_id = {m["id"]: m for m in listed}
    for item in lines:
        assert item["user_message"] == by_id[item["id"]]["user_message"]
        assert item["created_at"] == by_id[item["id"]]["created_at"]
        assert item["guaranteed_until"] == by_id[item["id"]]["guaranteed_until"]
        assert "project_id" not in item and "host" not in item
    snapshot = _export(client, A, "ndjson", resource_type="VOLUME_SNAPSHOT", sort="created_at:asc")
    assert [json.loads(x)["resource_uuid"] for x in snapshot.text.splitlines()] == ["snap-1"]
    assert _export(client, A, "ndjson", q="no such text").text == ""


def test_export_csv_has_a_header_and_one_row_per_message(client, seeded):
    response = _export(client, A, "csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 4
    assert set(table[0]) == {"id", "created_at", "guaranteed_until", "message_level",
                             "event_id", "user_message", "resource_type", "resource_uuid",
                             "request_id"}
    assert {r["resource_uuid"] for r in table} == {"vol-1", "snap-1", ""}


def test_an_admin_exports_across_projects_with_each_rows_project(client, seeded):
    lines = [json.loads(x) for x in _export(client, None, "ndjson", user="admin").text.splitlines()]
    assert {(m["project_id"], m["kind"]) for m in lines} == {(A, "API"), (B, "API"),
                                                             (None, "SERVICE")}
    assert len(lines) == 6
    mine = [json.loads(x) for x in _export(client, B, "ndjson").text.splitlines()]
    assert [m["resource_uuid"] for m in mine] == ["vol-b"]


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(client, seed, cell):
    seed(row(A, resource_uuid=cell, request_id=cell))
    table = list(csv.DictReader(io.StringIO(_export(client, A, "csv").text, newline="")))
    assert table[0]["resource_uuid"] == "'" + cell
    assert table[0]["request_id"] == "'" + cell
    # NDJSON is data, not a sheet: the value as stored.
    assert json.loads(_export(client, A, "ndjson").text)["resource_uuid"] == cell


BAD = [
    ("aggregates", "bucket=week", "Invalid input received: bucket must be 'hour' or 'day'."),
    ("aggregates", "bucket=hour&created_since=2026-01-01T00:00:00&created_before=2026-03-01",
     "Invalid input received: the range holds 1416 hours; at most 400 buckets are counted. "
     "Narrow the range or use bucket=day."),
    ("aggregates", "created_since=2026-01-02&created_before=2026-01-01",
     "Invalid input received: created_since must be before created_before."),
    ("aggregates", "limit=5", "Invalid input received: limit cannot be used here; the whole "
     "filtered view is covered."),
    ("export", "marker=abc&offset=1", "Invalid input received: marker, offset cannot be used "
     "here; the whole filtered view is covered."),
    ("export", "format=xlsx", "Invalid input received: format must be 'ndjson' or 'csv'."),
    ("export", "q=", "Invalid input received: the search term is empty."),
    ("export", "q=" + "x" * 256,
     "Invalid input received: the search term is longer than 255 characters."),
    ("export", "host=node-1", "Invalid filters host are found in query options."),
    ("export", "created_since=yesterday",
     "Invalid input received: created_since must be an ISO 8601 time"),
    ("export", "level=ERROR&level=INFO", "Invalid input received: 'level' is given twice."),
    ("aggregates", "sort=nope", "Invalid input received: Invalid sort key"),
]


@pytest.mark.parametrize(("resource", "query", "text"), BAD)
def test_bad_input_is_a_cinder_fault_before_any_byte(client, resource, query, text):
    response = client.get(f"/v3/{A}/messages-ext/{resource}?{query}", headers=headers("u", A))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"badRequest": {"code": 400, "message": text}}


def test_the_extension_needs_a_token_and_the_urls_project(client):
    for resource in ("aggregates", "export"):
        assert client.get(f"/v3/{A}/messages-ext/{resource}").status_code == 401
        other = client.get(f"/v3/{B}/messages-ext/{resource}", headers=headers("u", A))
        assert other.status_code == 400 and "not the token's" in other.text


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["q", "bucket", "format", "created_since", "created_before", "sort",
                            "resource_uuid", "message_level", "event_id~", "kind"]),
       value=st.text(max_size=300),
       resource=st.sampled_from(["aggregates", "export"]),
       user=st.sampled_from(["u", "admin"]))
def test_no_parameter_makes_the_extension_fail(client, key, value, resource, user):
    response = client.get(f"/v3/{A}/messages-ext/{resource}", params={key: value},
                          headers=headers(user, A))
    assert response.status_code in (200, 400), (key, value, response.text)
    assert "Traceback" not in response.text
    if response.status_code == 400:
        assert response.json()["badRequest"]["code"] == 400



def test_the_api_export_reads_the_store_a_page_at_a_time(client, engine, seed):
    seed(*(row(A, minutes=i / 100) for i in range(2 * EXPORT_PAGE + 1)))
    selects: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM messages" in statement:
            selects.append(statement)

    lines = _export(client, A, "ndjson").text.splitlines()
    assert len(lines) == 2 * EXPORT_PAGE + 1
    # Three keyset pages (500, 500, 1), each with its LIMIT: never one read of everything.
    assert len(selects) == 3 and all("LIMIT" in s.upper() for s in selects)
