"""Counts by column and by time bucket, the summary search and the keyset walk,
on real SQLite and real PostgreSQL (partitioned by expiry day)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event

from tests.api.conftest import BASE_TIME, row, summary
from usermessages.catalog import Action, Catalog, Detail, Kind, Resource
from usermessages.config import Settings
from usermessages.reader import Policy, Reader, Scope
from usermessages.reader.identity import Caller
from usermessages.reader.search import resolve
from usermessages.store import aggregates, writer
from usermessages.store import messages as store


def _insert(engine: Engine, rows: list[dict]) -> list[dict]:
    with engine.begin() as conn:
        writer.insert(conn, rows)
    return rows


def _project() -> str:
    return uuid.uuid4().hex[:12]


def test_counts_by_column_are_scoped_and_skip_deleted(engine):
    a, b = _project(), _project()
    rows = _insert(engine, [
        row(a, action=Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR),
        row(a, action=Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR, minutes=1),
        row(a, action=Action.SNAPSHOT_CREATE, detail=Detail.SNAPSHOT_CREATE_ERROR,
            resource=Resource.VOLUME_SNAPSHOT, level="WARNING", minutes=2),
        row(a, minutes=3),  # deleted below
        row(b, minutes=4),
        row(None, kind=Kind.SERVICE, resource=Resource.SERVICE, minutes=5),
    ])
    with engine.begin() as conn:
        assert store.soft_delete_message(conn, rows[3]["id"])
    query = store.ListQuery()
    with engine.connect() as conn:
        by_level = aggregates.count_by(conn, a, query, "message_level")
        by_type = aggregates.count_by(conn, a, query, "resource_type")
        by_event = aggregates.count_by(conn, a, query, "event_id")
        everywhere = aggregates.count_by(conn, None, query, "resource_type")
        total = store.count_messages(conn, a, query)
        all_total = store.count_messages_all_projects(conn, query)
    assert by_level == [("ERROR", 2), ("WARNING", 1)]
    assert by_type == [("VOLUME", 2), ("VOLUME_SNAPSHOT", 1)]
    assert by_event == [(rows[0]["event_id"], 2), (rows[2]["event_id"], 1)]
    assert total == 3
    # Across projects: b's row and the service message too (the deleted one never).
    assert dict(everywhere) == {"VOLUME": 3, "VOLUME_SNAPSHOT": 1, "SERVICE": 1}
    assert all_total == 5


def test_counts_honour_the_lists_filters(engine):
    a = _project()
    _insert(engine, [row(a, resource_uuid="vol-1", minutes=i) for i in range(3)]
            + [row(a, resource_uuid="vol-2", level="INFO", minutes=10)])
    query = store.ListQuery(filters={"resource_uuid": "vol-1"},
                            created_since=BASE_TIME + dt.timedelta(minutes=1))
    with engine.connect() as conn:
        assert aggregates.count_by(conn, a, query, "message_level") == [("ERROR", 2)]
        assert store.count_messages(conn, a, query) == 2


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60),
                        max_size=40),
       bucket=st.sampled_from(["hour", "day"]),
       start=st.integers(min_value=-4 * 24 * 60, max_value=0),
       span=st.integers(min_value=1, max_value=5 * 24 * 60))
def test_time_buckets_count_every_row_in_range_exactly_once(engine, offsets, bucket, start,
                                                            span):
    project = _project()
    rows = _insert(engine, [row(project, minutes=m + 0.5) for m in offsets])
    since = BASE_TIME + dt.timedelta(minutes=start)
    until = since + dt.timedelta(minutes=span)
    query = store.ListQuery(created_since=since, created_before=until)
    with engine.connect() as conn:
        counted = aggregates.count_by_time(conn, project, query, bucket)
    step = aggregates.BUCKETS[bucket]
    starts = [when for when, _ in counted]
    # Contiguous buckets covering [since, until), zero-filled.
    assert starts[0] == aggregates.truncate(since, bucket)
    assert all(b - a == step for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] < until <= starts[-1] + step
    expected = Counter(aggregates.truncate(r["created_at"], bucket) for r in rows
                       if since <= r["created_at"] < until)
    assert dict((when, n) for when, n in counted if n) == dict(expected)


def test_time_buckets_need_both_ends(engine):
    with engine.connect() as conn, pytest.raises(ValueError):
        aggregates.count_by_time(conn, "p", store.ListQuery(created_since=BASE_TIME), "hour")


# --- the summary search: SQL finds exactly the rows whose rendered text matches -----------

SEARCH_ROWS = [
    (Action.ATTACH_VOLUME, Detail.ATTACH_ERROR),
    (Action.EXTEND_VOLUME, Detail.DRIVER_FAILED_EXTEND),
    (Action.SNAPSHOT_CREATE, Detail.SNAPSHOT_CREATE_ERROR),
    (Action.BACKUP_CREATE, Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP),
    (Action.SCHEDULE_ALLOCATE_VOLUME, Detail.NO_BACKEND_AVAILABLE),
    (Action.COPY_IMAGE_TO_VOLUME, Detail.NOT_ENOUGH_SPACE_FOR_IMAGE),
]


def _searchable(engine: Engine, project: str, catalog: Catalog) -> list[dict]:
    rows = [row(project, action=action, detail=detail, minutes=i)
            for i, (action, detail) in enumerate(SEARCH_ROWS)]
    legacy = row(project, minutes=99)
    legacy.update(action_id=None, detail_id=None, event_id="VOLUME_000002")
    no_detail = row(project, minutes=98, action=Action.DETACH_VOLUME)
    no_detail["detail_id"] = None
    return _insert(engine, [*rows, legacy, no_detail])


def _found(engine: Engine, project: str, catalog: Catalog, term: str) -> set[str]:
    query = store.ListQuery(summary=resolve(catalog, term))
    with engine.connect() as conn:
        return {r.id for r in store.list_messages(conn, project, query)}


def _expected(rows: list[dict], catalog: Catalog, term: str) -> set[str]:
    return {r["id"] for r in rows
            if term.strip().casefold() in summary(r, catalog).casefold()}


@pytest.mark.parametrize("term", [
    "attach", "ATTACH VOLUME", "volume:", "volume:failed", "extend volume:Volume Driver",
    "backup", "no valid backend", "  space ", "e", ":", "no such words anywhere",
    "unknown error",
])
def test_search_finds_exactly_the_rows_whose_summary_holds_the_term(engine, term):
    catalog, project = Catalog(), _project()
    rows = _searchable(engine, project, catalog)
    assert _found(engine, project, catalog, term) == _expected(rows, catalog, term)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_search_on_any_slice_of_any_summary(engine, data):
    catalog, project = Catalog(), _project()
    rows = _searchable(engine, project, catalog)
    text = summary(data.draw(st.sampled_from(rows)), catalog)
    start = data.draw(st.integers(0, len(text) - 1))
    term = text[start:data.draw(st.integers(start + 1, len(text)))]
    if not term.strip():
        term = text
    found = _found(engine, project, catalog, term)
    assert found == _expected(rows, catalog, term)
    assert found  # the row it came from, at least


def test_search_follows_the_catalog_overrides(engine, tmp_path):
    overrides = tmp_path / "catalog.ini"
    overrides.write_text(f"[detail]\n{Detail.ATTACH_ERROR.id} = The disk is full, "
                         "call the storage team.\n")
    catalog = Catalog.from_file(overrides)
    project = _project()
    rows = _searchable(engine, project, catalog)
    assert _found(engine, project, catalog, "storage team") == _expected(rows, catalog,
                                                                         "storage team")
    assert _found(engine, project, catalog, "storage team")
    assert not _found(engine, project, Catalog(), "storage team")


# --- the keyset walk an export streams -----------------------------------------------------


def _reader(engine: Engine) -> Reader:
    return Reader(Settings(), engine, Catalog(), Policy())


def _scope(project: str) -> Scope:
    # A project's reader, as noauth makes one: the reader's walk authorizes itself.
    return Scope(Caller(user_id="u", project_id=project, roles=("member", "reader")), False)


def _selects(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM messages" in statement:
            seen.append(statement)

    return seen


@pytest.mark.parametrize("sort", [[("created_at", "desc")], [("event_id", "asc")]])
def test_walk_reads_page_by_page_and_yields_every_row_once(engine, sort):
    project = _project()
    rows = _insert(engine, [row(project, minutes=i // 3,
                                action=(Action.ATTACH_VOLUME, Action.EXTEND_VOLUME)[i % 2])
                            for i in range(53)])
    selects = _selects(engine)
    walk = _reader(engine).walk(_scope(project), store.ListQuery(sort=sort), page_size=10)
    first = next(walk)
    assert len(selects) == 1  # one page read, not the whole result
    rest = list(walk)
    assert len(selects) == 6  # 53 rows in pages of 10: the sixth is short
    ids = [first.id, *(r.id for r in rest)]
    assert sorted(ids) == sorted(r["id"] for r in rows) and len(ids) == len(set(ids))
    with engine.connect() as conn:
        listed = store.list_messages(conn, project, store.ListQuery(sort=sort))
    assert ids == [r.id for r in listed]


def test_walk_survives_rows_deleted_and_added_while_it_runs(engine):
    project = _project()
    rows = _insert(engine, [row(project, minutes=i) for i in range(30)])
    reader = _reader(engine)
    walk = reader.walk(_scope(project), store.ListQuery(), page_size=7)
    got = [next(walk) for _ in range(7)]
    # The row the next page starts after is deleted; a newer row arrives.
    with engine.begin() as conn:
        store.soft_delete_message(conn, got[-1].id)
    _insert(engine, [row(project, minutes=100)])
    got += list(walk)
    ids = [r.id for r in got]
    assert len(ids) == len(set(ids)) == 30
    assert set(ids) == {r["id"] for r in rows}


@pytest.mark.parametrize("direction", ["desc", "asc"])
def test_walk_while_another_thread_inserts_and_deletes(engine, direction):
    """Every row there before the walk began and not deleted comes exactly once,
    whatever a concurrent writer does meanwhile."""
    project = _project()
    before = _insert(engine, [row(project, minutes=i) for i in range(120)])
    doomed = {r["id"] for r in before[::7]}
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        step = 0
        while not stop.is_set() and step < 200:
            fresh = row(project, minutes=60 + step / 10)
            _insert(engine, [fresh])
            written.append(fresh["id"])
            victim = sorted(doomed)[step % len(doomed)]
            with engine.begin() as conn:
                store.soft_delete_message(conn, victim)
            step += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        ids = [r.id for r in _reader(engine).walk(
            _scope(project), store.ListQuery(sort=[("created_at", direction)]), page_size=9)]
    finally:
        stop.set()
        thread.join()
    assert len(ids) == len(set(ids))
    kept = {r["id"] for r in before} - doomed
    assert kept <= set(ids)
    assert set(ids) <= {r["id"] for r in before} | set(written)
