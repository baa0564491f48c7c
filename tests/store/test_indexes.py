"""Structural: a project's listing reads through our indexes in every order and filter.

On PostgreSQL the plans are taken with EXPLAIN ANALYZE of the exact SQL the store runs,
over 20,000 rows in 100 projects; on MariaDB with ANALYZE FORMAT=JSON over the same rows;
on SQLite with EXPLAIN QUERY PLAN. A project's page is
found in one covering index, ix_messages_project_created, index-only (migration 0007):
never a scan of the table, never a sort of more than the project's own rows.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, event, text

from tests.api.conftest import row
from tests.harness import servers
from usermessages.catalog import Action, Detail, Resource
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, partitions, writer

PROJECT = "p7"
PROJECT_ROWS = 200  # p7's rows in the PostgreSQL seed, soft-deleted ones included
LIMIT = 50
USER_FILTERS = ("resource_uuid", "resource_type", "event_id", "request_id", "message_level")
# A value of each filter that p7 holds (see _seed_postgresql).
FILTER_VALUES = {"resource_uuid": "vol-7", "resource_type": "VOLUME",
                 "event_id": "VOLUME_VOLUME_001_003", "request_id": "req-7",
                 "message_level": "ERROR"}
# The filters a lookup index serves (equality on a near-unique value); the
# others are read from the project's covering index.
LOOKUPS = {"resource_uuid": "ix_messages_resource_uuid", "request_id": "ix_messages_request_id"}


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
    # As autovacuum leaves a table: statistics, and the visibility map that lets
    # an index-only scan skip the table.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE messages"))


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
    return first[-1].id if len(first) == LIMIT else first[0].id


def _page(plan: dict) -> dict:
    """The subquery that finds the page's keys: the plan under its Limit."""
    limits = [n for n in _nodes(plan) if n["Node Type"] == "Limit"]
    assert limits, _show(plan)
    return limits[-1]


def _page_scans(plan: dict) -> list[dict]:
    """The scans that found the page."""
    return [n for n in _nodes(_page(plan)) if "Index Name" in n or "Scan" in n["Node Type"]]


def _row_reads(plan: dict) -> list[dict]:
    """The reads of the table: index scans that are not index-only (the page's rows,
    looked up by (id, expires_at) through the primary key or the expiry index)."""
    return [n for n in _nodes(plan) if n["Node Type"] in ("Index Scan", "Bitmap Heap Scan")]


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
def test_each_sort_order_finds_its_page_in_the_covering_index(planned, key, direction):
    sort = [(key, direction)]
    with planned.connect() as conn:
        marker = _page_two_marker(conn, sort=sort)
        for page, query in (("first", store.ListQuery(sort=sort, limit=LIMIT)),
                            ("after marker", store.ListQuery(sort=sort, limit=LIMIT,
                                                             marker=marker))):
            plan = _plan(conn, query)
            assert plan["Actual Rows"] == LIMIT, page
            assert "Seq Scan" not in {n["Node Type"] for n in _nodes(plan)}, (page, _show(plan))
            scans = [n for n in _page_scans(plan) if n["Actual Rows"] > 0]
            assert scans, (page, _show(plan))
            for scan in scans:  # one per partition that holds p7's rows
                assert scan["Node Type"] == "Index Only Scan", (page, _show(plan))
                assert scan["Index Name"] == "ix_messages_project_created", (page, _show(plan))
                assert scan["Heap Fetches"] == 0, (page, _show(plan))
                assert PROJECT in scan["Index Cond"], (page, _show(plan))
            # A sort, if any, orders the project's rows at most, never the table.
            for sort_node in _sorts(plan):
                assert sort_node["Plans"][0]["Actual Rows"] <= PROJECT_ROWS, (page, _show(plan))
            if key in ("created_at", "project_id"):  # the index's own order: the page
                assert not _sorts(_page(plan)), (page, _show(plan))  # is its first entries
            # The page's rows are put back in order: at most a sort of one page.
            inner = {id(n) for n in _nodes(_page(plan))}
            for sort_node in _sorts(plan):
                if id(sort_node) not in inner:
                    assert sort_node["Plans"][0]["Actual Rows"] <= LIMIT, (page, _show(plan))
            # The table is read for the page's rows only.
            read = sum(n["Actual Rows"] * n["Actual Loops"] for n in _row_reads(plan))
            assert read == LIMIT, (page, _show(plan))


@pytest.mark.parametrize("key", USER_FILTERS)
def test_each_user_filter_is_read_from_an_index(planned, key):
    filters = {key: FILTER_VALUES[key]}
    expected = LOOKUPS.get(key, "ix_messages_project_created")
    with planned.connect() as conn:
        marker = _page_two_marker(conn, filters=filters)
        for page, query in (("first", store.ListQuery(filters=filters, limit=LIMIT)),
                            ("after marker", store.ListQuery(filters=filters, limit=LIMIT,
                                                             marker=marker))):
            plan = _plan(conn, query)
            assert plan["Actual Rows"] > 0, page
            assert "Seq Scan" not in {n["Node Type"] for n in _nodes(plan)}, (page, _show(plan))
            scans = [n for n in _page_scans(plan) if n["Actual Rows"] > 0]
            # A lookup index, or the project's own entries when the planner finds
            # them fewer (p7 holds 200 rows here): never the table.
            names = {n["Index Name"] for n in scans if "Index Name" in n}
            assert names and names <= {expected, "ix_messages_project_created"}, (
                page, _show(plan))
            for scan in scans:
                condition = scan.get("Index Cond", "") + scan.get("Filter", "")
                assert FILTER_VALUES[key] in condition or key in LOOKUPS, (page, _show(plan))
            for sort_node in _sorts(plan):
                assert sort_node["Plans"][0]["Actual Rows"] <= PROJECT_ROWS, (page, _show(plan))
            if key not in LOOKUPS:  # read in the index's order: newest first, no sort
                assert not _sorts(_page(plan)), (page, _show(plan))


@pytest.mark.parametrize("key", sorted(LOOKUPS))
def test_an_admin_lookup_across_projects_reads_its_hash_index(planned, key):
    """A request's or a resource's messages in every project: the hash index, no scan."""
    query = store.ListQuery(filters={key: FILTER_VALUES[key]}, limit=LIMIT)
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "ORDER BY" in statement:
            captured.append((statement, parameters))

    with planned.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        rows = store.list_messages_all_projects(conn, query)
        event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = captured[-1]
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        plan = _by_parent_index(conn, cursor.fetchone()[0][0]["Plan"])
    assert rows and all(getattr(row, key) == FILTER_VALUES[key] for row in rows)
    assert "Seq Scan" not in {n["Node Type"] for n in _nodes(plan)}, _show(plan)
    assert LOOKUPS[key] in {n.get("Index Name") for n in _nodes(_page(plan))}, _show(plan)


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
        marker = store.list_messages(conn, PROJECT, store.ListQuery(limit=LIMIT))[-1].id
        first = _query_plan(conn, store.ListQuery(limit=LIMIT))
        after = _query_plan(conn, store.ListQuery(limit=LIMIT, marker=marker))
    assert first == ["SEARCH messages USING INDEX ix_messages_project_created (project_id=?)"]
    # The marker's row value bounds the index range.
    assert after == [("SEARCH messages USING INDEX ix_messages_project_created "
                     "(project_id=? AND (created_at,id)<(?,?))")]


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
def test_sqlite_every_sort_order_searches_the_project_index(sqlite_planned, key, direction):
    """Only the project's rows are read (its index range), then sorted unless the index
    already holds the order; the table is never scanned."""
    sort = [(key, direction)]
    with sqlite_planned.connect() as conn:
        marker = store.list_messages(conn, PROJECT, store.ListQuery(sort=sort,
                                                                    limit=LIMIT))[-1].id
        for query in (store.ListQuery(sort=sort, limit=LIMIT),
                      store.ListQuery(sort=sort, limit=LIMIT, marker=marker)):
            plan = _query_plan(conn, query)
            assert plan[0].startswith("SEARCH messages USING INDEX ix_messages_project_created "
                                      "(project_id=?"), plan
            if key in ("created_at", "project_id"):
                assert len(plan) == 1, plan
            else:
                assert plan[1:] == ["USE TEMP B-TREE FOR ORDER BY"], plan


@pytest.mark.parametrize("key", USER_FILTERS)
def test_sqlite_each_user_filter_searches_an_index(sqlite_planned, key):
    with sqlite_planned.connect() as conn:
        marker = store.list_messages(conn, PROJECT, store.ListQuery(limit=LIMIT))[-1].id
        for query in (store.ListQuery(limit=LIMIT, filters={key: "x"}),
                      store.ListQuery(limit=LIMIT, filters={key: "x"}, marker=marker)):
            plan = _query_plan(conn, query)
            assert not any(step.startswith("SCAN") for step in plan), plan
            used = plan[0].removeprefix("SEARCH messages USING INDEX ").split(" ")[0]
            assert used in {LOOKUPS.get(key), "ix_messages_project_created"}, plan
            if used == "ix_messages_project_created":  # newest first: the index's order
                assert len(plan) == 1 and plan[0].endswith(")") and "project_id=?" in plan[0], plan


# --- MariaDB ------------------------------------------------------------------------------
# InnoDB has no INCLUDE, and a composite key of every listed column would pass its 3,072
# bytes in utf8mb4: a project's page is found in ix_messages_project_created (its own order)
# or by sorting the project's rows (any other), and its rows read by primary key. Keyset
# conditions are spelt out key by key (messages.keyset_after), which MariaDB's range
# optimizer reads as index ranges. ANALYZE FORMAT=JSON of the exact statement: the rows
# read are counted, not estimated.


def _seed_mariadb(engine: Engine) -> None:
    """As _seed_postgresql: 20,000 API rows over 100 projects in several expiry days, plus
    soft-deleted rows and service rows without a project."""
    base = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        partitions.ensure(conn, [base, base + dt.timedelta(days=30)])
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, request_id, resource_type, "
            "resource_uuid, event_id, message_level, action_id, detail_id, host, created_at, "
            "expires_at, deleted, seq) "
            "SELECT md5(seq), 'API', concat('p', seq % 100), concat('req-', seq % 10000), "
            "elt(1 + (seq DIV 100) % 2, 'VOLUME', 'VOLUME_SNAPSHOT'), concat('vol-', seq % 2000), "
            "concat('VOLUME_VOLUME_00', 1 + (seq DIV 100) % 7, '_003'), "
            "elt(1 + (seq DIV 100) % 3, 'ERROR', 'WARNING', 'INFO'), "
            "IF(seq % 11 = 0, NULL, concat('00', 1 + seq % 9)), "
            "IF(seq % 13 = 0, NULL, concat('0', 10 + seq % 20)), 'node-1', "
            ":base + INTERVAL (seq DIV 1000) SECOND, :base + INTERVAL (seq DIV 3000) DAY, "
            "seq % 17 = 0, seq FROM seq_1_to_20000"), {"base": base})
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, event_id, message_level, action_id, "
            "detail_id, created_at, expires_at, seq) SELECT md5(concat('s', seq)), 'SERVICE', "
            "NULL, 'SERVICE_SERVICE_101_101', 'WARNING', '101', '101', "
            ":base + INTERVAL seq SECOND, :base + INTERVAL 30 DAY, 20000 + seq "
            "FROM seq_1_to_500"), {"base": base})
        conn.execute(text("UPDATE message_seq SET value = 20500"))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE TABLE messages"))


@pytest.fixture(scope="module")
def mariadb_planned(mariadb) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    engine = store_engine.connect(mariadb.create_database(f"plans_{uuid.uuid4().hex[:8]}"))
    migrate.upgrade(engine)
    _seed_mariadb(engine)
    yield engine
    engine.dispose()


def _analyzed(conn: Connection, statement: str, parameters: object) -> dict:
    """MariaDB's ANALYZE FORMAT=JSON of a statement: its plan with the rows really read."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute("ANALYZE FORMAT=JSON " + statement, parameters)
        return json.loads(cursor.fetchone()[0])["query_block"]
    finally:
        cursor.close()


def _messages_read(block: object) -> dict:
    """The one access of the messages table in a MariaDB plan, wherever it nests."""
    found: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("table_name") == "messages":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(block)
    assert len(found) == 1, json.dumps(block, indent=1)
    return found[0]


def _mariadb_plan(conn: Connection, query: store.ListQuery,
                  project: str | None = PROJECT) -> tuple[dict, str]:
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "ORDER BY" in statement:
            captured.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        if project is None:
            store.list_messages_all_projects(conn, query)
        else:
            store.list_messages(conn, project, query)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    block = _analyzed(conn, *captured[-1])
    return _messages_read(block), json.dumps(block, indent=1)


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
def test_mariadb_each_sort_order_reads_the_project_index_never_the_table(
        mariadb_planned, key, direction):
    sort = [(key, direction)]
    with mariadb_planned.connect() as conn:
        marker = _page_two_marker(conn, sort=sort)
        for page, query in (("first", store.ListQuery(sort=sort, limit=LIMIT)),
                            ("after marker", store.ListQuery(sort=sort, limit=LIMIT,
                                                             marker=marker))):
            table, shown = _mariadb_plan(conn, query)
            assert table["key"] == "ix_messages_project_created", (page, shown)
            assert table["access_type"] in ("ref", "range"), (page, shown)
            if key in ("created_at", "project_id"):
                # The index's own order: a page reads about a page (the soft-deleted
                # rows, 1 in 17, are read and skipped), and nothing is sorted.
                assert "filesort" not in shown, (page, shown)
                assert table["r_rows"] <= 1.2 * LIMIT + 1, (page, shown)
            else:  # any other order sorts the project's rows, never the table's
                assert table["r_rows"] <= PROJECT_ROWS, (page, shown)


@pytest.mark.parametrize("key", USER_FILTERS)
def test_mariadb_each_user_filter_reads_an_index(mariadb_planned, key):
    filters = {key: FILTER_VALUES[key]}
    with mariadb_planned.connect() as conn:
        marker = _page_two_marker(conn, filters=filters)
        for page, query in (("first", store.ListQuery(filters=filters, limit=LIMIT)),
                            ("after marker", store.ListQuery(filters=filters, limit=LIMIT,
                                                             marker=marker))):
            table, shown = _mariadb_plan(conn, query)
            # A lookup index, or the project's own entries: never the table.
            assert table["key"] in {LOOKUPS.get(key), "ix_messages_project_created"}, (
                page, shown)
            assert table["r_rows"] <= PROJECT_ROWS, (page, shown)


@pytest.mark.parametrize("key", sorted(LOOKUPS))
def test_mariadb_an_admin_lookup_across_projects_reads_its_index(mariadb_planned, key):
    with mariadb_planned.connect() as conn:
        table, shown = _mariadb_plan(
            conn, store.ListQuery(filters={key: FILTER_VALUES[key]}, limit=LIMIT), project=None)
    assert table["key"] == LOOKUPS[key], shown
    assert table["r_rows"] <= 20, shown  # the value's few rows, of 20,500


def test_mariadb_the_live_stream_reads_from_its_cursor_or_the_project(mariadb_planned):
    """Rows stored after a cursor near the end: across projects, a range of the seq index
    (the last 1,000 of 20,500); for a project, that or the project's own entries, whichever
    MariaDB finds fewer (200 here): never the table."""
    query = store.ListQuery(after_seq=19_500, limit=100)
    with mariadb_planned.connect() as conn:
        admin, shown = _mariadb_plan(conn, query, project=None)
        assert admin["key"] == "ix_messages_seq" and admin["access_type"] == "range", shown
        assert admin["r_rows"] <= 1000, shown
        table, shown = _mariadb_plan(conn, query)
    assert table["key"] in {"ix_messages_seq", "ix_messages_project_created"}, shown
    assert table["r_rows"] <= PROJECT_ROWS, shown


def test_mariadb_the_reaper_walks_the_expiry_index(mariadb_planned):
    """The reaper's DELETE ... ORDER BY ... LIMIT reads a range of ix_messages_expires_at
    from its cursor, in the partitions between the cursor and now only."""
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            captured.append((statement, parameters))

    with mariadb_planned.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        store.delete_expired(conn, dt.datetime(2026, 1, 3), 100,
                             (dt.datetime(2026, 1, 2), "8"))
        conn.rollback()  # keep the rows for the other tests
        event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = captured[-1]
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN PARTITIONS " + statement.split(" RETURNING")[0], parameters)
        [plan] = cursor.fetchall()
        columns = [d[0] for d in cursor.description]
        conn.rollback()
    plan = dict(zip(columns, plan, strict=True))
    assert plan["key"] == "ix_messages_expires_at" and plan["type"] == "range", plan
    # Between the cursor (Jan 2) and now (Jan 3): one day's partition, pruned.
    assert plan["partitions"] == "messages_p20260102", plan
