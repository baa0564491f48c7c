"""Structural: a project's listing reads through our indexes in every order and filter.

On PostgreSQL the plans are taken with EXPLAIN ANALYZE of the exact SQL the store runs,
over 20,000 rows in 100 projects; on SQLite with EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, event, text

from tests import servers
from tests.api.conftest import row
from usermessages.catalog import Action, Detail, Resource
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, partitions, writer
from usermessages.store.schema import PROJECT_LIST_KEYS

PROJECT = "p7"
LIMIT = 50
USER_FILTERS = ("resource_uuid", "resource_type", "event_id", "request_id", "message_level")
# A value of each filter that p7 holds (see _seed_postgresql).
FILTER_VALUES = {"resource_uuid": "vol-7", "resource_type": "VOLUME",
                 "event_id": "VOLUME_VOLUME_001_003", "request_id": "req-7",
                 "message_level": "ERROR"}


def expected_index(key: str) -> str:
    """The index that serves a project's listing sorted by (or filtered on) ``key``."""
    if key in ("created_at", "project_id"):  # every row of the listing shares project_id
        return "ix_messages_project_created"
    if key == "id":
        return "ix_messages_project_id"
    assert key in (*PROJECT_LIST_KEYS, "action_id", "detail_id"), key
    return f"ix_messages_project_{key}"


def _captured_sql(conn: Connection, query: store.ListQuery) -> tuple[str, object]:
    """The listing statement exactly as the store sends it."""
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "ORDER BY" in statement:
            captured.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        store.list_messages(conn, PROJECT, query)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    return captured[-1]


# --- PostgreSQL ---------------------------------------------------------------------------


def _seed_postgresql(engine: Engine) -> None:
    """20,000 API rows over 100 projects (200 each, 10 per created_at), plus rows the
    listing must skip: soft-deleted ones and service rows without a project."""
    base = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        # The daily partitions the rows below expire in (made on demand by the
        # store's inserts): the API rows' day, and the service rows' day, which
        # holds no project's row. (Over several small partitions the planner
        # reads some through other indexes, by their own statistics.)
        partitions.ensure(conn, [base, base + dt.timedelta(days=30)])
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, request_id, resource_type, "
            "resource_uuid, event_id, message_level, action_id, detail_id, host, created_at, "
            "expires_at, deleted, seq) "
            "SELECT md5(i::text)::uuid::text, 'API', 'p' || (i % 100), 'req-' || (i % 10000), "
            "(ARRAY['VOLUME', 'VOLUME_SNAPSHOT'])[1 + (i / 100) % 2], 'vol-' || (i % 2000), "
            "'VOLUME_VOLUME_00' || (1 + (i / 100) % 7) || '_003', "
            "(ARRAY['ERROR', 'WARNING', 'INFO'])[1 + (i / 100) % 3], "
            "CASE WHEN i % 11 = 0 THEN NULL ELSE '00' || (1 + i % 9) END, "
            "CASE WHEN i % 13 = 0 THEN NULL ELSE '0' || (10 + i % 20) END, 'node-1', "
            ":base + (i / 1000) * interval '1 second', :base + (i / 3000) * interval '1 hour', "
            "i % 17 = 0, i FROM generate_series(1, 20000) i"), {"base": base})
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, event_id, message_level, action_id, "
            "detail_id, created_at, expires_at, seq) SELECT md5('s' || i)::uuid::text, 'SERVICE', "
            "NULL, 'SERVICE_SERVICE_101_101', 'WARNING', '101', '101', "
            ":base + i * interval '1 second', :base + interval '30 days', 20000 + i "
            "FROM generate_series(1, 500) i"), {"base": base})
        conn.execute(text("UPDATE message_seq SET value = 20500"))
        conn.execute(text("ANALYZE messages"))


@pytest.fixture(scope="module")
def planned(postgresql_admin_url: str) -> Iterator[Engine]:
    engine = store_engine.connect(
        servers.create_database(postgresql_admin_url, f"plans_{uuid.uuid4().hex[:8]}"))
    migrate.upgrade(engine)
    _seed_postgresql(engine)
    yield engine
    engine.dispose()


def _plan(conn: Connection, query: store.ListQuery, *, sorts: bool = True) -> dict:
    """EXPLAIN ANALYZE of the store's statement; ``sorts=False`` forbids Sort nodes
    unless no plan can do without one (i.e. no index delivers the order)."""
    statement, parameters = _captured_sql(conn, query)
    cursor = conn.connection.driver_connection.cursor()
    try:
        if not sorts:
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_incremental_sort = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        plan = cursor.fetchone()[0][0]["Plan"]
    finally:
        cursor.close()
    conn.rollback()  # drop the SET LOCALs
    return _by_parent_index(conn, plan)


def _by_parent_index(conn: Connection, plan: dict) -> dict:
    """Name each index scan by the index of ``messages`` it belongs to.

    The table is partitioned by expiry day (migration 0004): a listing reads
    one index per partition, each named by PostgreSQL after its partition,
    and merges them in order (Merge Append, no Sort).
    """
    parents = dict(conn.execute(text(
        "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relkind = 'I'")).all())
    conn.rollback()
    for node in _nodes(plan):
        if "Index Name" in node:
            node["Index Name"] = parents.get(node["Index Name"], node["Index Name"])
    return plan


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _index_nodes(plan: dict) -> list[dict]:
    """The index scans that delivered rows.

    The table is partitioned by expiry day: a partition holding none of the
    listing's rows (the service rows' day here) may be probed through
    whichever index its own statistics favour; it adds no row and no order.
    """
    return [n for n in _nodes(plan) if "Index Name" in n and n["Actual Rows"] > 0]


def _sorts(plan: dict) -> list[dict]:
    return [n for n in _nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")]


def _show(plan: dict) -> str:
    return json.dumps(plan, indent=1, default=str)


def _page_two_marker(conn: Connection, **query) -> str:
    """The last id of the first page, as a client sends it for the next one."""
    first = store.list_messages(conn, PROJECT, store.ListQuery(limit=LIMIT, **query))
    return first[-1]["id"] if len(first) == LIMIT else first[0]["id"]


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
def test_each_sort_order_is_read_from_its_index_without_sorting(planned, key, direction):
    sort = [(key, direction)]
    with planned.connect() as conn:
        marker = _page_two_marker(conn, sort=sort)
        for page, query in (("first", store.ListQuery(sort=sort, limit=LIMIT)),
                            ("after marker", store.ListQuery(sort=sort, limit=LIMIT,
                                                             marker=marker))):
            plan = _plan(conn, query)
            assert plan["Node Type"] == "Limit" and plan["Actual Rows"] == LIMIT, page
            scans = {n["Node Type"] for n in _nodes(plan)}
            assert "Seq Scan" not in scans, (page, _show(plan))
            assert not _sorts(plan), (page, _show(plan))  # the index delivers the order
            indexes = _index_nodes(plan)
            assert indexes, (page, _show(plan))
            for index in indexes:  # one per partition that holds p7's rows
                assert index["Node Type"] in ("Index Scan", "Index Only Scan"), (page, _show(plan))
                assert index["Index Name"] == expected_index(key), (page, _show(plan))
                if query.marker:
                    # The keyset condition bounds the index range; it is not a row filter.
                    assert marker in index["Index Cond"], (page, _show(plan))


@pytest.mark.parametrize("key", USER_FILTERS)
def test_each_user_filter_is_read_from_its_index(planned, key):
    filters = {key: FILTER_VALUES[key]}
    with planned.connect() as conn:
        marker = _page_two_marker(conn, filters=filters)
        for page, query in (("first", store.ListQuery(filters=filters, limit=LIMIT)),
                            ("after marker", store.ListQuery(filters=filters, limit=LIMIT,
                                                             marker=marker))):
            plan = _plan(conn, query)
            assert plan["Actual Rows"] > 0, page
            assert "Seq Scan" not in {n["Node Type"] for n in _nodes(plan)}, (page, _show(plan))
            indexes = _index_nodes(plan)
            assert {n["Index Name"] for n in indexes} == {expected_index(key)}, (page, _show(plan))
            for index in indexes:
                assert FILTER_VALUES[key] in index["Index Cond"], (page, _show(plan))
                if query.marker:
                    assert marker in index["Index Cond"], (page, _show(plan))
            # For a few dozen matching rows the planner may rather fetch them by
            # bitmap and keep the top 50 (cheaper than 50 random heap reads): a sort
            # of what the index range delimits, about a page, never the project's
            # 200 rows, let alone the table.
            for sort in _sorts(plan):
                assert sort["Plans"][0]["Actual Rows"] <= 2 * LIMIT, (page, _show(plan))
            # And the index can deliver the order itself: with sorting forbidden
            # the plan needs no Sort node at all.
            ordered = _plan(conn, query, sorts=False)
            assert not _sorts(ordered), (page, _show(ordered))
            assert {n["Index Name"] for n in _index_nodes(ordered)} == {expected_index(key)}


def test_the_live_stream_reads_the_seq_index_from_its_cursor(planned):
    """Rows stored after a cursor near the end: an index range on seq, no scan, no sort."""
    with planned.connect() as conn:
        # p7's API rows after seq 19,500 (seq = i, p7 holds i % 100 == 7): five
        # rows, less the soft-deleted. (A filter on another project, as this
        # test had, is a contradiction the partitioned plan now proves empty.)
        plan = _plan(conn, store.ListQuery(after_seq=19_500, limit=100))
    assert "Seq Scan" not in {n["Node Type"] for n in _nodes(plan)}, _show(plan)
    # Partitioned, the few rows after the cursor come from one index range
    # per partition; the planner may merge them or sort that handful.
    for sort in _sorts(plan):
        assert sort["Plans"][0]["Actual Rows"] <= 10, _show(plan)
    assert {n["Index Name"] for n in _index_nodes(plan)} == {"ix_messages_seq"}, _show(plan)
    assert 0 < plan["Actual Rows"] <= 10


def test_the_reaper_walks_the_expiry_index(planned):
    """delete_expired claims its batch through ix_messages_expires_at, not a scan."""
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            captured.append((statement, parameters))

    with planned.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        store.delete_expired(conn, dt.datetime(2026, 1, 3), 100,
                             (dt.datetime(2026, 1, 2), "8"))
        event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = captured[-1]
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plan = _by_parent_index(conn, cursor.fetchone()[0][0]["Plan"])
        conn.rollback()
    names = {n.get("Index Name") for n in _nodes(plan)}
    assert "ix_messages_expires_at" in names, _show(plan)
    assert "Seq Scan" not in {n["Node Type"] for n in _nodes(plan)}, _show(plan)


# --- SQLite -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_planned(tmp_path_factory) -> Iterator[Engine]:
    engine = store_engine.connect(f"sqlite:///{tmp_path_factory.mktemp('plans')}/um.sqlite")
    migrate.upgrade(engine)
    rows = []
    for i in range(3000):
        message = row(f"p{i % 30}", minutes=i // 50,
                      action=(Action.ATTACH_VOLUME, Action.EXTEND_VOLUME)[i % 2],
                      detail=(Detail.ATTACH_ERROR, Detail.QUOTA_EXCEED)[i // 7 % 2],
                      resource=(Resource.VOLUME, Resource.VOLUME_SNAPSHOT)[i // 30 % 2],
                      resource_uuid=f"vol-{i % 300}", request_id=f"req-{i % 1000}",
                      level=("ERROR", "WARNING")[i // 60 % 2])
        if i % 11 == 0:
            message["action_id"] = None
        rows.append(message)
    with engine.begin() as conn:
        writer.insert(conn, rows)
        conn.execute(text("ANALYZE"))
    yield engine
    engine.dispose()


def _query_plan(conn: Connection, query: store.ListQuery) -> list[str]:
    statement, parameters = _captured_sql(conn, query)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return [detail for *_, detail in cursor.fetchall()]
    finally:
        cursor.close()


def test_sqlite_default_listing_searches_an_index(sqlite_planned):
    with sqlite_planned.connect() as conn:
        marker = store.list_messages(conn, PROJECT, store.ListQuery(limit=LIMIT))[-1]["id"]
        first = _query_plan(conn, store.ListQuery(limit=LIMIT))
        after = _query_plan(conn, store.ListQuery(limit=LIMIT, marker=marker))
    assert first == ["SEARCH messages USING INDEX ix_messages_project_created (project_id=?)"]
    # The marker's row value bounds the index range.
    assert after == [("SEARCH messages USING INDEX ix_messages_project_created "
                     "(project_id=? AND (created_at,id)<(?,?))")]


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
def test_sqlite_every_sort_order_uses_its_index_and_no_temp_btree(sqlite_planned, key,
                                                                  direction):
    sort = [(key, direction)]
    with sqlite_planned.connect() as conn:
        marker = store.list_messages(conn, PROJECT, store.ListQuery(sort=sort,
                                                                    limit=LIMIT))[-1]["id"]
        for query in (store.ListQuery(sort=sort, limit=LIMIT),
                      store.ListQuery(sort=sort, limit=LIMIT, marker=marker)):
            plan = _query_plan(conn, query)
            assert len(plan) == 1, plan  # no "USE TEMP B-TREE FOR ORDER BY"
            assert plan[0].startswith(f"SEARCH messages USING INDEX {expected_index(key)} "), plan


@pytest.mark.parametrize("key", USER_FILTERS)
def test_sqlite_each_user_filter_searches_its_index(sqlite_planned, key):
    with sqlite_planned.connect() as conn:
        marker = store.list_messages(conn, PROJECT, store.ListQuery(limit=LIMIT))[-1]["id"]
        for query in (store.ListQuery(limit=LIMIT, filters={key: "x"}),
                      store.ListQuery(limit=LIMIT, filters={key: "x"}, marker=marker)):
            plan = _query_plan(conn, query)
            assert len(plan) == 1, plan
            assert plan[0].startswith(
                f"SEARCH messages USING INDEX {expected_index(key)} (project_id=? AND {key}=?"), plan
