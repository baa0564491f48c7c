"""The store on real SQLite and PostgreSQL: migrations, idempotent inserts, scoping,
keyset paging, and the plans that keep a project's listing on its indexes."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from tests.api.conftest import row
from usermessages.catalog import Kind, Resource
from usermessages.errors import MessageNotFound
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate
from usermessages.store.schema import metadata


def test_migrations_match_the_models_and_go_both_ways(db_url):
    engine = store_engine.connect(db_url)
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    with engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn), metadata)
    assert drift == []
    migrate.upgrade(engine)  # idempotent
    migrate.downgrade(engine, "base")
    assert "messages" not in inspect(engine).get_table_names()


def test_insert_is_idempotent_on_the_id(engine):
    rows = [row("p1", minutes=i) for i in range(5)]
    with engine.begin() as conn:
        assert store.insert_messages(conn, rows) == 5
    with engine.begin() as conn:
        assert store.insert_messages(conn, rows[3:] + [row("p1", minutes=9)]) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 6


def test_queries_are_scoped_to_the_project_and_the_api_kind(engine):
    mine, theirs, service = row("p1"), row("p2"), row(None, kind=Kind.SERVICE,
                                                      resource=Resource.SERVICE)
    with engine.begin() as conn:
        store.insert_messages(conn, [mine, theirs, service])
    with engine.connect() as conn:
        assert [r["id"] for r in store.list_messages(conn, "p1", store.ListQuery())] == [mine["id"]]
        with pytest.raises(MessageNotFound):
            store.get_message(conn, theirs["id"], "p1")
        with pytest.raises(MessageNotFound):
            store.get_message(conn, service["id"], "p1")
        assert len(store.list_messages_all_projects(conn, store.ListQuery())) == 3


def _walk(conn, project: str, sort, limit: int) -> list[str]:
    ids: list[str] = []
    marker = None
    while True:
        page = store.list_messages(conn, project, store.ListQuery(sort=sort, limit=limit,
                                                                  marker=marker))
        ids += [r["id"] for r in page]
        if len(page) < limit:
            return ids
        marker = page[-1]["id"]


@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_keyset_pages_match_a_full_sort_with_ties(engine, key, direction):
    # Many rows share created_at, so the id tie-breaker decides.
    rows = [row("p1", minutes=i // 5, resource_uuid=f"v{i % 4}", request_id=f"r{i % 3}",
                level=["ERROR", "WARNING", "INFO"][i % 3]) for i in range(37)]
    with engine.begin() as conn:
        store.insert_messages(conn, rows)
    sort = [(key, direction)]
    keys = store.full_sort(sort)
    expected = list(rows)
    for column, way in reversed(keys):
        expected.sort(key=lambda r: r[column], reverse=way == "desc")
    with engine.connect() as conn:
        assert _walk(conn, "p1", sort, 6) == [r["id"] for r in expected]


def test_like_filters_escape_wildcards(engine):
    rows = [row("p1", resource_uuid="a%b"), row("p1", resource_uuid="axb"),
            row("p1", resource_uuid="a_b")]
    with engine.begin() as conn:
        store.insert_messages(conn, rows)
    with engine.connect() as conn:
        def like(value: str) -> set[str]:
            found = store.list_messages(conn, "p1", store.ListQuery(
                like_filters={"resource_uuid": value}))
            return {r["resource_uuid"] for r in found}
        assert like("%") == {"a%b"}
        assert like("_") == {"a_b"}
        assert like("a") == {"a%b", "axb", "a_b"}


def test_soft_delete_hides_the_row(engine):
    message = row("p1")
    with engine.begin() as conn:
        store.insert_messages(conn, [message])
        assert store.soft_delete_message(conn, message["id"])
        assert not store.soft_delete_message(conn, message["id"])
    with engine.connect() as conn:
        with pytest.raises(MessageNotFound):
            store.get_message_all_projects(conn, message["id"])


@pytest.mark.postgresql
@pytest.mark.parametrize("sort_key", ["created_at", "id", "event_id", "message_level",
                                      "resource_type", "resource_uuid", "request_id",
                                      "expires_at"])
def test_project_listing_uses_an_index_in_every_sort_order(postgresql_url, sort_key):
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    base = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, request_id, resource_type, "
            "resource_uuid, event_id, message_level, action_id, detail_id, created_at, "
            "expires_at, deleted) SELECT md5(i::text)::uuid::text, 'API', 'p' || (i % 100), "
            "'req-' || (i % 977), (ARRAY['VOLUME','VOLUME_SNAPSHOT'])[1 + i % 2], "
            "'vol-' || (i % 1013), 'VOLUME_VOLUME_00' || (1 + i % 7) || '_003', "
            "(ARRAY['ERROR','WARNING'])[1 + i % 2], '001', '003', "
            ":base + i * interval '1 second', :base + interval '30 days', false "
            "FROM generate_series(1, 20000) i"), {"base": base})
        conn.execute(text("ANALYZE messages"))
    with engine.connect() as conn:
        marker = store.list_messages(conn, "p7", store.ListQuery(limit=30))[-1]["id"]
        for query in (store.ListQuery(sort=[(sort_key, "desc")], limit=50),
                      store.ListQuery(sort=[(sort_key, "asc")], limit=50, marker=marker),
                      store.ListQuery(filters={"resource_uuid": "vol-7"}, limit=50),
                      store.ListQuery(filters={"request_id": "req-7"}, limit=50),
                      store.ListQuery(filters={"event_id": "VOLUME_VOLUME_001_003"}, limit=50)):
            plan = _explain_list(conn, "p7", query)
            assert "ix_messages_" in plan, plan
            assert "Seq Scan" not in plan, plan


def _explain_list(conn, project: str, query: store.ListQuery) -> str:
    """EXPLAIN the exact SQL the store runs for this listing."""
    captured: list[tuple[str, object]] = []

    def capture(conn_, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement:
            captured.append((statement, parameters))

    from sqlalchemy import event

    event.listen(conn, "before_cursor_execute", capture)
    try:
        store.list_messages(conn, project, query)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    cursor = conn.connection.driver_connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    return "\n".join(line[0] for line in cursor.fetchall())
