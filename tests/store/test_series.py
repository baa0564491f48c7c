"""Series on real SQLite and PostgreSQL: repeats grouped without losing one, exemplars
bounded, redelivery not counted twice, concurrent writers exact, storm control accounted,
expired series reaped."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from tests.api.conftest import row
from usermessages import reaper
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.errors import SeriesNotFound
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, series, writer

VOLUME = "8b1f3a52-8d6c-4b53-9f0e-0d3c1f6a2b11"


def _all(engine: Engine, project: str = "p1") -> list[series.StoredSeries]:
    with engine.connect() as conn:
        return series.list_series(conn, project, series.SeriesQuery({}, limit=100))


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM messages")).scalar_one()


def test_repeats_form_one_series_with_counts_times_and_recent_exemplars(engine):
    repeats = [row("p1", minutes=i, resource_uuid=VOLUME, request_id=f"req-{i}")
               for i in range(8)]
    with engine.begin() as conn:
        writer.insert(conn, repeats[:5], series.Policy(exemplars=3))
    with engine.begin() as conn:
        writer.insert(conn, repeats[5:], series.Policy(exemplars=3))
    (only,) = _all(engine)
    assert only.count == 8 and only.suppressed == 0
    assert only.first_seen == repeats[0]["created_at"]
    assert only.last_seen == repeats[7]["created_at"]
    assert only.request_ids == ("req-7", "req-6", "req-5")  # most recent, newest first
    assert (only.event_id, only.resource_uuid) == (repeats[0]["event_id"], VOLUME)
    assert only.id == series.series_id("API", "p1", repeats[0]["event_id"], VOLUME)


def test_the_key_is_project_event_and_resource_with_no_resource_its_own(engine):
    rows = [
        row("p1", resource_uuid=VOLUME), row("p1", resource_uuid=VOLUME, minutes=1),
        row("p1"), row("p1", minutes=2),  # no resource: one series of its own
        row("p1", resource_uuid=VOLUME, detail=Detail.QUOTA_EXCEED),  # another event
        row("p2", resource_uuid=VOLUME),  # another project
    ]
    with engine.begin() as conn:
        writer.insert(conn, rows)
    counts = sorted((s.resource_uuid, s.event_id, s.count) for s in _all(engine))
    assert counts == sorted([(VOLUME, rows[0]["event_id"], 2), ("", rows[2]["event_id"], 2),
                             (VOLUME, rows[4]["event_id"], 1)])
    assert [s.count for s in _all(engine, "p2")] == [1]


def test_a_redelivered_batch_counts_nothing_twice(engine):
    rows = [row("p1", resource_uuid=VOLUME, minutes=i) for i in range(4)]
    with engine.begin() as conn:
        writer.insert(conn, rows)
    with engine.begin() as conn:
        writer.insert(conn, [*rows, rows[0]])  # redelivery, and an id twice in a batch
    assert [s.count for s in _all(engine)] == [4]


def test_the_direct_sink_path_counts_too(engine):
    from usermessages.message import Message

    batch = [Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, ttl=3600,
                            project_id="p1", resource_uuid=VOLUME, detail=Detail.ATTACH_ERROR)
             for _ in range(3)]
    for message in batch:
        with engine.begin() as conn:
            writer.insert(conn, [message.to_row()])
    assert [s.count for s in _all(engine)] == [3]


def test_series_are_scoped_to_the_project_and_paged_last_seen_first(engine):
    with engine.begin() as conn:
        writer.insert(conn, [row("p1", minutes=i, resource_uuid=f"vol-{i}") for i in range(5)]
                          + [row("p2", minutes=9)])
    with engine.connect() as conn:
        first = series.list_series(conn, "p1", series.SeriesQuery({}, limit=2))
        rest = series.list_series(conn, "p1", series.SeriesQuery({}, limit=10,
                                                                 marker=first[-1].id))
        other = series.list_series_all_projects(conn, series.SeriesQuery({}, limit=10))
        with pytest.raises(SeriesNotFound):
            series.get_series(conn, first[0].id, "p2")
        with pytest.raises(SeriesNotFound):  # a marker of another project
            series.list_series(conn, "p2", series.SeriesQuery({}, limit=2, marker=first[0].id))
    assert [s.resource_uuid for s in first + rest] == [f"vol-{i}" for i in range(4, -1, -1)]
    assert len(other) == 6


def test_concurrent_writers_lose_no_occurrence(server_url):
    """Four writers, each its own transactions, upserting the same series at once."""
    migrate.upgrade(eng := store_engine.connect(server_url))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for batch in range(10):
                rows = [row("p1", minutes=worker + batch, resource_uuid=VOLUME) for _ in range(50)]
                with eng.begin() as conn:
                    writer.insert(conn, rows)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [s.count for s in _all(eng)] == [4 * 10 * 50]
    eng.dispose()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.integers(0, 3)),
                min_size=1, max_size=40),
       st.integers(1, 6))
def test_counts_equal_the_distinct_occurrences_stored_whatever_the_batching(
        engine, plan, batch_size):
    """Any mix of keys, redeliveries and batch sizes: each series counts its distinct ids."""
    project = f"p-{uuid.uuid4().hex[:8]}"  # examples share the store
    sent: list[dict] = []
    for resource, redeliver, minutes in plan:
        if redeliver and sent:
            sent.append(sent[minutes % len(sent)])
        else:
            sent.append(row(project, minutes=minutes, resource_uuid=f"vol-{resource}"
                            if resource else ""))
    for start in range(0, len(sent), batch_size):
        with engine.begin() as conn:
            writer.insert(conn, sent[start:start + batch_size])
    expected: dict[str, set[str]] = {}
    for r in sent:
        expected.setdefault(r["resource_uuid"], set()).add(r["id"])
    got = {s.resource_uuid: s.count for s in _all(engine, project)}
    assert got == {key: len(ids) for key, ids in expected.items()}


def test_storm_control_stores_up_to_the_limit_and_counts_the_rest(engine):
    policy = series.Policy(storm=series.Storm(per_event=3, per_project=5, window=3600))
    storm = [row("p1", minutes=i / 100, resource_uuid=VOLUME) for i in range(10)]
    other_event = [row("p1", minutes=i, detail=Detail.QUOTA_EXCEED) for i in range(4)]
    with engine.begin() as conn:
        first = writer.insert(conn, storm[:6], policy)
    with engine.begin() as conn:
        second = writer.insert(conn, [*storm[6:], *storm[:2]], policy)  # 2 redelivered
    with engine.begin() as conn:
        third = writer.insert(conn, other_event, policy)
    assert (first.new, first.suppressed) == (3, 3)
    assert (second.new, second.suppressed) == (0, 4)
    assert (third.new, third.suppressed) == (2, 2)  # the project's 5 are used up
    assert _rows(engine) == 5
    by_event = {s.event_id: s for s in _all(engine)}
    assert (by_event[storm[0]["event_id"]].count,
            by_event[storm[0]["event_id"]].suppressed) == (10, 7)
    assert (by_event[other_event[0]["event_id"]].count,
            by_event[other_event[0]["event_id"]].suppressed) == (4, 2)
    # Another project has its own budget.
    with engine.begin() as conn:
        assert writer.insert(conn, [row("p2")], policy).new == 1
    # A window that has passed stores again.
    with engine.begin() as conn:
        conn.execute(text("UPDATE message_storm SET window_start = :t"),
                     {"t": dt.datetime(2000, 1, 1)})
    with engine.begin() as conn:
        again = writer.insert(conn, [row("p1", resource_uuid=VOLUME)], policy)
    assert (again.new, again.suppressed) == (1, 0)


def test_storm_control_holds_across_concurrent_writers(server_url):
    """Two writers (as two collectors) together store no more than the limit."""
    migrate.upgrade(eng := store_engine.connect(server_url))
    policy = series.Policy(storm=series.Storm(per_event=25, window=3600))
    barrier = threading.Barrier(2)
    results: list[store.Stored] = []

    def write() -> None:
        barrier.wait()
        for _ in range(10):
            with eng.begin() as conn:
                rows = [row("p1", resource_uuid=VOLUME) for _ in range(20)]
                results.append(writer.insert(conn, rows, policy))

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.new for r in results) == 25 == _rows(eng)
    assert sum(r.suppressed for r in results) == 400 - 25
    (only,) = _all(eng)
    assert (only.count, only.suppressed) == (400, 375)
    eng.dispose()


def test_the_reaper_deletes_series_last_seen_longer_ago_than_the_ttl(engine):
    with engine.begin() as conn:
        writer.insert(conn, [row("p1", resource_uuid="old"),
                                 row("p1", minutes=60 * 24 * 3, resource_uuid="recent")])
    now = row("p1")["created_at"] + dt.timedelta(days=3, hours=1)
    reaper.reap(engine, 1, now=now)  # no ttl given: series stay
    assert len(_all(engine)) == 2
    reaper.reap(engine, 1, now=now, ttl=2 * 86400)
    assert [s.resource_uuid for s in _all(engine)] == ["recent"]


def test_kinds_without_a_project_are_admin_only(engine):
    with engine.begin() as conn:
        writer.insert(conn, [row(None, kind=Kind.SERVICE)])
    assert _all(engine, "") == []
    with engine.connect() as conn:
        (only,) = series.list_series_all_projects(conn, series.SeriesQuery({}, limit=5))
    assert (only.kind, only.project_id, only.count) == ("SERVICE", None, 1)


@given(kind=st.text(max_size=20), project=st.none() | st.text(max_size=40),
       event=st.text(max_size=40), resource=st.text(max_size=40))
def test_series_id_is_uuid5_of_the_key(kind, project, event, resource):
    """The hand-written hash is exactly uuid5: ids must never change between releases."""
    key = "\x1f".join((kind, project or "", event, resource))
    assert series.series_id(kind, project, event, resource) == str(
        uuid.uuid5(series._NAMESPACE, key))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.booleans(), max_size=5), min_size=1, max_size=5),
       st.integers(1, 4))
def test_exemplars_are_each_batch_newest_first_then_the_stored_ones_cut_to_n(
        engine, batches, exemplars):
    """A batch's request ids (newest first, none for an empty one) go before the stored
    ones, cut to N: whether the batch brings N or fewer, on both engines."""
    project = f"p-{uuid.uuid4().hex[:8]}"  # examples share the store
    expected: list[str] = []
    minute = 0
    for plan in batches:
        rows = []
        for has_request in plan:
            minute += 1
            r = row(project, minutes=minute, resource_uuid=VOLUME)
            if not has_request:
                r["request_id"] = ""
            rows.append(r)
        with engine.begin() as conn:
            writer.insert(conn, rows[::-1], series.Policy(exemplars=exemplars))  # any order
        recent = [r["request_id"] for r in reversed(rows) if r["request_id"]][:exemplars]
        expected = (recent + expected)[:exemplars]
    found = _all(engine, project)
    if minute == 0:
        assert found == []
        return
    (only,) = found
    assert list(only.request_ids) == expected
    assert only.count == minute


def test_storm_windows_stay_exact_under_four_concurrent_writers(postgresql_url):
    """Four writers, two projects of two events each, limits per project and per event:
    every project stores exactly its limit, no event more than its own, and each series
    counts every occurrence, stored or suppressed, as its windows say."""
    migrate.upgrade(eng := store_engine.connect(postgresql_url))
    policy = series.Policy(storm=series.Storm(per_project=50, per_event=30, window=3600))
    details = (Detail.ATTACH_ERROR, Detail.QUOTA_EXCEED)
    barrier = threading.Barrier(4)
    results: list[writer.Stored] = []
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for batch in range(10):
                rows = [row(f"p{k % 2}", minutes=batch, detail=details[(k // 2) % 2])
                        for k in range(worker, worker + 40)]
                with eng.begin() as conn:
                    results.append(writer.insert(conn, rows, policy))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with eng.connect() as conn:
        stored = dict(((p, e), n) for p, e, n in conn.execute(text(
            "SELECT project_id, event_id, count(*) FROM messages GROUP BY 1, 2")))
        windows = dict(conn.execute(text("SELECT scope, stored FROM message_storm")).all())
        every = series.list_series_all_projects(conn, series.SeriesQuery({}, limit=10))
    assert sum(r.new for r in results) == sum(stored.values()) == 100
    assert sum(r.suppressed for r in results) == 4 * 10 * 40 - 100
    for project in ("p0", "p1"):
        assert sum(n for (p, _), n in stored.items() if p == project) == 50
        assert windows["\x1f".join(("p", project))] == 50
    for (project, event), n in stored.items():
        assert n <= 30
        assert windows["\x1f".join(("p", project, event))] == n
    assert len(every) == 4
    for found in every:
        assert found.count == 400
        assert found.suppressed == 400 - stored[(found.project_id, found.event_id)]
    eng.dispose()
