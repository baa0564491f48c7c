"""Queries on real SQLite and PostgreSQL: idempotent inserts, scoping, keyset paging in
every order, offset, LIKE escaping and time ranges."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
from sqlalchemy import Engine, text

from tests.api.conftest import BASE_TIME, row
from tests.harness import servers
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.errors import MessageNotFound
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, writer

Sort = Sequence[tuple[str, str]]

ACTIONS = (Action.ATTACH_VOLUME, Action.EXTEND_VOLUME, Action.SNAPSHOT_CREATE)
DETAILS = (Detail.ATTACH_ERROR, Detail.QUOTA_EXCEED, Detail.UNKNOWN_ERROR,
           Detail.DRIVER_FAILED_EXTEND)
RESOURCES = (Resource.VOLUME, Resource.VOLUME_SNAPSHOT)
LEVELS = ("ERROR", "WARNING", "INFO")


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM messages")).scalar_one()


# --- inserts, scoping, soft delete (each test on a fresh store) -------------------------


def test_insert_stores_each_id_once_and_counts_only_new_rows(engine):
    rows = [row("p1", minutes=i) for i in range(5)]
    with engine.begin() as conn:
        assert writer.insert(conn, []).new == 0
        assert writer.insert(conn, rows).new == 5
    with engine.begin() as conn:
        assert writer.insert(conn, rows).new == 0  # a redelivered batch
    with engine.begin() as conn:
        fresh = row("p1", minutes=9)
        # Old ids, a new one, and the new one twice in the same batch.
        assert writer.insert(conn, [*rows[3:], fresh, fresh]).new == 1
    assert _count(engine) == 6
    with engine.connect() as conn:
        stored = store.get_message(conn, fresh["id"], "p1")
    assert {k: getattr(stored, k) for k in fresh} == fresh


def test_an_insert_rolled_back_stores_nothing(engine):
    rows = [row("p1") for _ in range(3)]
    with engine.connect() as conn:
        assert writer.insert(conn, rows).new == 3
        conn.rollback()
    assert _count(engine) == 0
    with engine.begin() as conn:  # and the same ids go in afterwards
        assert writer.insert(conn, rows).new == 3


def test_queries_are_scoped_to_the_project_and_the_api_kind(engine):
    mine, theirs = row("p1"), row("p2")
    service = row(None, kind=Kind.SERVICE, resource=Resource.SERVICE)
    # A service message that names the project is still not the project's to see.
    service_in_p1 = row("p1", kind=Kind.SERVICE, resource=Resource.SERVICE)
    with engine.begin() as conn:
        writer.insert(conn, [mine, theirs, service, service_in_p1])
    with engine.connect() as conn:
        assert [r.id for r in store.list_messages(conn, "p1", store.ListQuery())] == [mine["id"]]
        assert [r.id for r in store.list_messages(conn, "p2", store.ListQuery())] == [theirs["id"]]
        assert store.list_messages(conn, "p3", store.ListQuery()) == []
        assert store.get_message(conn, mine["id"], "p1").id == mine["id"]
        for other in (theirs, service, service_in_p1):
            with pytest.raises(MessageNotFound):
                store.get_message(conn, other["id"], "p1")
            # Nor can another project's row serve as a marker.
            with pytest.raises(MessageNotFound):
                store.list_messages(conn, "p1", store.ListQuery(marker=other["id"]))
        with pytest.raises(MessageNotFound):
            store.get_message(conn, str(uuid.uuid4()), "p1")
        every = store.list_messages_all_projects(conn, store.ListQuery())
        assert {r.id for r in every} == {m["id"] for m in (mine, theirs, service, service_in_p1)}
        assert store.get_message_all_projects(conn, service["id"]).kind == "SERVICE"


def test_soft_delete_hides_the_row_everywhere(engine):
    gone, kept = row("p1", minutes=1), row("p1", minutes=2)
    with engine.begin() as conn:
        writer.insert(conn, [gone, kept])
        assert store.soft_delete_message(conn, gone["id"])
        assert not store.soft_delete_message(conn, gone["id"])  # already deleted
    with engine.connect() as conn:
        with pytest.raises(MessageNotFound):
            store.get_message(conn, gone["id"], "p1")
        with pytest.raises(MessageNotFound):
            store.get_message_all_projects(conn, gone["id"])
        with pytest.raises(MessageNotFound):
            store.list_messages(conn, "p1", store.ListQuery(marker=gone["id"]))
        assert [r.id for r in store.list_messages(conn, "p1", store.ListQuery())] == [kept["id"]]
        assert len(store.list_messages_all_projects(conn, store.ListQuery())) == 1
        deleted_at = conn.execute(text("SELECT deleted_at FROM messages WHERE id = :id"),
                                  {"id": gone["id"]}).scalar_one()
    assert deleted_at is not None and _count(engine) == 2  # soft: the reaper removes it later


def test_stored_projects_lists_each_project_once(engine):
    """The Zaqar collector's list of queues to visit: one probe per project."""
    with engine.begin() as conn:
        writer.insert(conn, [row(p, minutes=i) for i in range(3) for p in ("p2", "p1", "p3")]
                      + [row(None, kind=Kind.SERVICE, resource=Resource.SERVICE)])
    with engine.connect() as conn:
        assert store.stored_projects_all_projects(conn) == ["p1", "p2", "p3"]


def test_like_filters_match_percent_underscore_and_backslash_literally(engine):
    values = ["a%b", "axb", "a_b", "ayyb", "a\\b", "c%d"]
    with engine.begin() as conn:
        writer.insert(conn, [row("p1", resource_uuid=v) for v in values])
    with engine.connect() as conn:
        def like(value: str) -> set[str]:
            found = store.list_messages(conn, "p1", store.ListQuery(
                like_filters={"resource_uuid": value}))
            return {r.resource_uuid for r in found}

        assert like("%") == {"a%b", "c%d"}
        assert like("_") == {"a_b"}
        assert like("\\") == {"a\\b"}
        assert like("a%") == {"a%b"}
        assert like("%b") == {"a%b"}
        assert like("a") == {"a%b", "axb", "a_b", "ayyb", "a\\b"}
        assert like("zz") == set()


# --- reading a shared store: paging, offset, time ranges -------------------------------


def _paging_rows() -> list[dict]:
    """64 rows of p1 where every sort key has ties and NULLs, 8 rows per created_at."""
    rows = []
    for i in range(64):
        message = row("p1", minutes=i // 8, action=ACTIONS[i % 3], detail=DETAILS[(i // 3) % 4],
                      resource=RESOURCES[(i // 2) % 2],
                      resource_uuid="" if i % 5 == 0 else f"vol-{i % 4}",
                      request_id=f"req-{i % 3}", level=LEVELS[(i // 4) % 3],
                      expires_in=dt.timedelta(days=1 + i % 2))
        if i % 7 == 0:
            message["action_id"] = None  # a legacy row
        if i % 9 == 4:
            message["detail_id"] = None
        rows.append(message)
    return rows


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def paged(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple[Engine, dict]]:
    """A store holding p1's paging rows and rows that p1 must never see; read-only."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('paged')}/usermessages.sqlite"
    elif request.param == "mariadb":
        url = request.getfixturevalue("mariadb").create_database(f"paged_{uuid.uuid4().hex[:8]}")
    else:
        admin = request.getfixturevalue("postgresql_admin_url")
        url = servers.create_database(admin, f"paged_{uuid.uuid4().hex[:8]}")
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    visible = _paging_rows()
    others = [row("p2", minutes=i // 8, level=LEVELS[i % 3]) for i in range(12)]
    others += [row(None, minutes=i, kind=Kind.SYSTEM, resource=Resource.SYSTEM) for i in range(5)]
    others += [row("p1", minutes=3, kind=Kind.SERVICE, resource=Resource.SERVICE)]
    deleted = [row("p1", minutes=i // 8) for i in range(0, 64, 9)]
    with engine.begin() as conn:
        writer.insert(conn, visible + others + deleted)
        for message in deleted:
            store.soft_delete_message(conn, message["id"])
    yield engine, {"p1": visible, "all": visible + others}
    engine.dispose()


def _reference(rows: Sequence[Mapping], sort: Sort) -> list[str]:
    """The order the store promises: the sort, then created_at and id in the first
    key's direction; NULL sorts as the empty string."""
    first_direction = sort[0][1]
    keys = [*sort, ("created_at", first_direction), ("id", first_direction)]
    ordered = list(rows)
    for key, direction in reversed(keys):  # stable sorts, least significant key first
        ordered.sort(key=lambda r, k=key: "" if r[k] is None else r[k],
                     reverse=direction == "desc")
    return [r["id"] for r in ordered]


def _walk(list_page: Callable[[store.ListQuery], list[store.StoredMessage]], limit: int,
          **query) -> list[str]:
    """Every page, each from the previous page's last id, as a client pages."""
    ids: list[str] = []
    marker = None
    for _ in range(200):
        page = list_page(store.ListQuery(limit=limit, marker=marker, **query))
        ids += [r.id for r in page]
        if len(page) < limit:
            return ids
        marker = page[-1].id
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", sorted(store.SORT_KEYS))
def test_every_sort_key_pages_exactly_like_a_full_sort(paged, key, direction):
    engine, rows = paged
    sort = [(key, direction)]
    expected = _reference(rows["p1"], sort)
    with engine.connect() as conn:
        def project_page(query: store.ListQuery) -> list[store.StoredMessage]:
            return store.list_messages(conn, "p1", query)

        assert [r.id for r in project_page(store.ListQuery(sort=sort))] == expected
        for limit in (1, 7, 8, 64):  # 8 = one created_at group; 64 = everything, then empty
            assert _walk(project_page, limit, sort=sort) == expected, limit


MIXED = [
    [("message_level", "asc"), ("created_at", "desc")],
    [("resource_uuid", "desc"), ("request_id", "asc")],
    [("action_id", "asc"), ("event_id", "desc")],
    [("detail_id", "desc"), ("expires_at", "asc"), ("id", "desc")],
    [("created_at", "asc"), ("id", "desc")],
    [("resource_type", "asc"), ("resource_uuid", "desc"), ("message_level", "asc")],
    [("expires_at", "desc"), ("action_id", "asc"), ("request_id", "desc")],
    [("project_id", "desc"), ("message_level", "asc")],
    [("id", "asc"), ("created_at", "desc")],  # nothing can follow a unique key
    [("event_id", "asc"), ("event_id", "desc")],  # nor repeat one
]


@pytest.mark.parametrize("sort", MIXED, ids=lambda s: ",".join(f"{k}:{d}" for k, d in s))
def test_mixed_directions_page_exactly_like_a_full_sort(paged, sort):
    engine, rows = paged
    expected = _reference(rows["p1"], sort)
    with engine.connect() as conn:
        def project_page(query: store.ListQuery) -> list[store.StoredMessage]:
            return store.list_messages(conn, "p1", query)

        for limit in (1, 5, 8):
            assert _walk(project_page, limit, sort=sort) == expected, limit


@pytest.mark.parametrize("sort", [[("project_id", "asc")], [("project_id", "desc")],
                                  [("action_id", "desc"), ("project_id", "asc")],
                                  [("detail_id", "asc")]],
                         ids=lambda s: ",".join(f"{k}:{d}" for k, d in s))
def test_admin_listing_pages_over_rows_without_a_project(paged, sort):
    engine, rows = paged
    with engine.connect() as conn:
        def admin_page(query: store.ListQuery) -> list[store.StoredMessage]:
            return store.list_messages_all_projects(conn, query)

        assert _walk(admin_page, 6, sort=sort) == _reference(rows["all"], sort)


def test_exact_filters_page_in_the_filtered_key_order(paged):
    engine, rows = paged
    with engine.connect() as conn:
        def project_page(query: store.ListQuery) -> list[store.StoredMessage]:
            return store.list_messages(conn, "p1", query)

        def admin_page(query: store.ListQuery) -> list[store.StoredMessage]:
            return store.list_messages_all_projects(conn, query)

        for key, value in (("resource_uuid", "vol-1"), ("message_level", "INFO"),
                           ("request_id", "req-2")):
            matching = [r for r in rows["p1"] if r[key] == value]
            for sort in ([(key, "asc")], [(key, "desc"), ("created_at", "asc")]):
                assert (_walk(project_page, 3, sort=sort, filters={key: value})
                        == _reference(matching, sort))
        # A filter on a nullable key the list sorts on (admins filter on project_id).
        sort = [("project_id", "desc"), ("message_level", "asc")]
        in_p1 = [r for r in rows["all"] if r["project_id"] == "p1"]  # of every kind
        assert len(in_p1) == len(rows["p1"]) + 1
        assert (_walk(admin_page, 5, sort=sort, filters={"project_id": "p1"})
                == _reference(in_p1, sort))


def test_offset_skips_rows_of_the_ordered_list(paged):
    engine, rows = paged
    sort = [("resource_uuid", "asc")]
    expected = _reference(rows["p1"], sort)
    with engine.connect() as conn:
        def ids(**query) -> list[str]:
            return [r.id for r in store.list_messages(conn, "p1",
                                                      store.ListQuery(sort=sort, **query))]

        for offset in (0, 1, 7, 63, 64, 1000):
            assert ids(offset=offset, limit=5) == expected[offset:offset + 5]
            assert ids(offset=offset) == expected[offset:]
        # After a marker, offset counts from the row after the marker (Cinder's order).
        marker = expected[10]
        assert ids(marker=marker, offset=4, limit=3) == expected[15:18]


def test_created_since_is_inclusive_and_created_before_exclusive(paged):
    engine, rows = paged
    boundary = BASE_TIME + dt.timedelta(minutes=3)  # rows 24..31 were created exactly then
    with engine.connect() as conn:
        def ids(**query) -> set[str]:
            return {r.id for r in store.list_messages(conn, "p1", store.ListQuery(**query))}

        since = {r["id"] for r in rows["p1"] if r["created_at"] >= boundary}
        before = {r["id"] for r in rows["p1"] if r["created_at"] < boundary}
        assert len(since) == 40 and len(before) == 24
        assert ids(created_since=boundary) == since
        assert ids(created_before=boundary) == before
        assert ids(created_since=boundary, created_before=boundary) == set()
        window = ids(created_since=boundary, created_before=boundary + dt.timedelta(minutes=1))
        assert window == {r["id"] for r in rows["p1"] if r["created_at"] == boundary}
        assert len(window) == 8
        # A time range pages like any other filter.
        sort = [("created_at", "asc")]
        walked = _walk(lambda q: store.list_messages(conn, "p1", q), 3, sort=sort,
                       created_since=boundary)
        assert walked == _reference([r for r in rows["p1"] if r["id"] in since], sort)


def test_the_reference_covers_ties_and_nulls():
    """The paging rows exercise what they claim to: ties on every key, NULL ids."""
    rows = _paging_rows()
    for key in store.SORT_KEYS - {"id", "project_id"}:
        groups = [len(list(g)) for _, g in itertools.groupby(
            sorted("" if r[key] is None else r[key] for r in rows))]
        assert max(groups) > 1, key
    assert any(r["action_id"] is None for r in rows)
    assert any(r["detail_id"] is None for r in rows)
    assert any(r["resource_uuid"] == "" for r in rows)
