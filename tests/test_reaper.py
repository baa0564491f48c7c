"""The reaper on real SQLite, PostgreSQL and MariaDB: expired rows go, in batches, exactly
once, even with two reapers at once; one pass at a time (PostgreSQL's advisory lock,
MariaDB's lease); the periodic runner and the CLI."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, text

from tests.api.conftest import row
from usermessages import reaper
from usermessages.catalog import Kind, Resource
from usermessages.cli.main import main
from usermessages.reaper import ADVISORY_LOCK_KEY, Lease, PeriodicReaper, ReapResult, reap
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, partitions, writer
from usermessages.store import sessions as store_sessions

NOW = dt.datetime(2026, 11, 24, 12, 0, 0)
TICK = dt.timedelta(microseconds=1)


def _ids(engine: Engine) -> set[str]:
    """Every stored id, soft-deleted or not."""
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT id FROM messages")).scalars())


def _aged(project: str | None, expires_at: dt.datetime, *, deleted: bool = False,
          kind: Kind = Kind.API) -> dict:
    message = row(project, kind=kind,
                  resource=Resource.VOLUME if kind is Kind.API else Resource.SERVICE)
    message.update(expires_at=expires_at, deleted=deleted)
    return message


def _seed(engine: Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        writer.insert(conn, rows)


def _seed_many(engine: Engine, expired: int, live: int, now: dt.datetime) -> None:
    """``expired`` rows that expired before ``now``, then ``live`` rows that have not."""
    if engine.dialect.name == "mysql":
        _seed_many_mariadb(engine, expired, live, now)
        return
    with engine.begin() as conn:
        # PostgreSQL's daily partitions (made on demand by the store's inserts).
        partitions.ensure(conn, [now - dt.timedelta(minutes=1000), now,
                                 now + dt.timedelta(days=1)])
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, event_id, message_level, action_id, "
            "detail_id, created_at, expires_at, deleted) SELECT md5(i::text)::uuid::text, "
            "'API', 'p' || (i % 50), 'VOLUME_VOLUME_001_003', 'ERROR', '001', '003', "
            ":now - interval '31 days', CASE WHEN i <= :expired "
            "THEN :now - (i % 1000) * interval '1 minute' - interval '1 second' "
            "ELSE :now + interval '1 day' END, i % 7 = 0 "
            "FROM generate_series(1, :total) i"),
            {"now": now, "expired": expired, "total": expired + live})


def _seed_many_mariadb(engine: Engine, expired: int, live: int, now: dt.datetime) -> None:
    with engine.begin() as conn:
        partitions.ensure(conn, [now - dt.timedelta(minutes=1000), now,
                                 now + dt.timedelta(days=1)])
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, event_id, message_level, action_id, "
            "detail_id, created_at, expires_at, deleted) SELECT md5(seq), "
            "'API', concat('p', seq % 50), 'VOLUME_VOLUME_001_003', 'ERROR', '001', '003', "
            ":now - INTERVAL 31 DAY, CASE WHEN seq <= :expired "
            "THEN :now - INTERVAL (seq % 1000) MINUTE - INTERVAL 1 SECOND "
            "ELSE :now + INTERVAL 1 DAY END, seq % 7 = 0 "
            f"FROM seq_1_to_{int(expired + live)}"),
            {"now": now, "expired": expired})


# --- one pass ------------------------------------------------------------------------


def test_reap_deletes_exactly_the_rows_expired_before_now(engine):
    expired = [
        _aged("p1", NOW - dt.timedelta(days=40)),
        _aged("p1", NOW - TICK),  # expired a microsecond ago
        _aged("p2", NOW - dt.timedelta(hours=1), deleted=True),  # soft-deleted rows go too
        _aged(None, NOW - dt.timedelta(days=1), kind=Kind.SERVICE),  # of every kind
        *(_aged("p3", NOW - dt.timedelta(minutes=i)) for i in range(1, 6)),
    ]
    live = [
        _aged("p1", NOW),  # expires now: not yet expired (strictly less than now)
        _aged("p1", NOW + TICK),
        _aged("p2", NOW + dt.timedelta(days=30)),
        _aged("p2", NOW + dt.timedelta(days=1), deleted=True),  # soft-deleted, not expired
    ]
    _seed(engine, expired + live)
    result = reap(engine, batch_size=2, now=NOW)  # 9 rows: five batches
    assert (result.deleted, result.skipped) == (len(expired), False)
    assert _ids(engine) == {m["id"] for m in live}
    assert reap(engine, batch_size=2, now=NOW).deleted == 0
    assert reap(engine, batch_size=2, now=NOW + TICK).deleted == 1  # the one at NOW


def test_reap_deletes_the_viewer_sessions_past_their_expiry(engine):
    with engine.begin() as conn:
        store_sessions.create(conn, "ended", "sealed", NOW - TICK)
        store_sessions.create(conn, "open", "sealed", NOW + dt.timedelta(seconds=1))
    reap(engine, batch_size=10, now=NOW)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM viewer_sessions")).scalars().all() == ["open"]


@pytest.mark.parametrize(("rows", "batches"), [(10, [3, 3, 3, 1]), (9, [3, 3, 3, 0])])
def test_each_batch_is_its_own_transaction(engine, monkeypatch, rows, batches):
    _seed(engine, [_aged("p", NOW - dt.timedelta(minutes=i + 1)) for i in range(rows)]
          + [_aged("p", NOW + dt.timedelta(days=1))])
    log: list[tuple[str, int, int]] = []
    delete_expired = store.delete_expired

    def logged_delete(conn, *args):
        deleted, cursor = delete_expired(conn, *args)
        log.append(("delete", id(conn.connection.dbapi_connection), deleted))
        return deleted, cursor

    def on_commit(conn) -> None:
        log.append(("commit", id(conn.connection.dbapi_connection), 0))

    monkeypatch.setattr(store, "delete_expired", logged_delete)
    event.listen(engine, "commit", on_commit)
    try:
        assert reap(engine, batch_size=3, now=NOW).deleted == rows
    finally:
        event.remove(engine, "commit", on_commit)
    deletes = [i for i, entry in enumerate(log) if entry[0] == "delete"]
    assert [log[i][2] for i in deletes] == batches
    for i in deletes:  # each batch is committed before the next one runs
        following = [entry for entry in log[i + 1:] if entry[1] == log[i][1]]
        assert following[0][0] == "commit", log
    assert len(_ids(engine)) == 1


# --- two reapers, the lock --------------------------------------------------------------


def test_two_reaper_processes_at_once_delete_each_expired_row_once(server_url, tmp_path):
    engine = store_engine.connect(server_url)
    migrate.upgrade(engine)
    now = store.utcnow()
    _seed_many(engine, expired=20_000, live=1_000, now=now)
    conf = tmp_path / "reap.conf"
    conf.write_text("[DEFAULT]\nmessage_reap_batch_size = 200\n")
    command = [sys.executable, "-m", "usermessages.cli.main", "reap", "--db", server_url,
               "--config", str(conf)]
    reapers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [reaper.communicate(timeout=120) for reaper in reapers]
    assert [reaper.returncode for reaper in reapers] == [0, 0], outputs
    assert [err for _, err in outputs] == ["", ""], outputs
    deleted = []
    for out, _ in outputs:
        if out == "another node is reaping now; nothing deleted\n":
            deleted.append(0)
        else:
            words = out.split()
            assert words[0] == "deleted" and out.endswith(" expired messages\n"), out
            deleted.append(int(words[1]))
    assert sum(deleted) == 20_000, outputs
    with engine.connect() as conn:
        left = conn.execute(text("SELECT count(*), min(expires_at) FROM messages")).one()
    assert left[0] == 1_000 and left[1] > now
    engine.dispose()


def test_without_the_lock_skip_locked_still_deletes_each_row_once(postgresql_url):
    """Two reapers that bypass the lock (delete_expired in parallel) never double-count."""
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    now = store.utcnow()
    _seed_many(engine, expired=6_000, live=500, now=now)
    start = threading.Barrier(2)
    counts: list[int] = [0, 0]
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        try:
            start.wait()
            cursor = None
            while True:
                with engine.begin() as conn:
                    deleted, cursor = store.delete_expired(conn, now, 100, cursor)
                counts[slot] += deleted
                if deleted == 0:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and sum(counts) == 6_000, (errors, counts)
    assert len(_ids(engine)) == 500
    engine.dispose()


def test_a_held_advisory_lock_makes_the_pass_skip(postgresql_url):
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    _seed(engine, [_aged("p", NOW - dt.timedelta(days=1)) for _ in range(3)])
    holder = store_engine.connect(postgresql_url)  # another node
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        assert reap(engine, batch_size=10, now=NOW) == ReapResult(0, skipped=True)
        assert len(_ids(engine)) == 3
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        conn.commit()
    assert reap(engine, batch_size=10, now=NOW) == ReapResult(3, skipped=False)
    holder.dispose()
    engine.dispose()


def test_a_held_lease_makes_the_pass_skip_until_it_lapses(mariadb_url):
    """MariaDB: another node's lease (a row, not a session lock) holds until its expiry."""
    engine = store_engine.connect(mariadb_url)
    migrate.upgrade(engine)
    _seed(engine, [_aged("p", NOW - dt.timedelta(days=1)) for _ in range(3)])
    other = Lease(engine, seconds=1)  # another node, which then dies holding it
    assert other.take()
    assert reap(engine, batch_size=10, now=NOW) == ReapResult(0, skipped=True)
    assert len(_ids(engine)) == 3
    deadline = time.monotonic() + 10
    while (result := reap(engine, batch_size=10, now=NOW)).skipped:
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.1)
    assert result == ReapResult(3, skipped=False)
    assert not other.keep()  # its holder has lost it
    engine.dispose()


def test_a_pass_stops_when_its_lease_is_taken_over(mariadb_url, monkeypatch):
    """MariaDB: a pass renews its lease between batches; once another node has taken it
    (this one stalled past its expiry), the pass stops instead of reaping beside it."""
    engine = store_engine.connect(mariadb_url)
    migrate.upgrade(engine)
    _seed(engine, [_aged("p", NOW - dt.timedelta(minutes=i + 1)) for i in range(10)])
    monkeypatch.setattr(reaper, "LEASE_SECONDS", 0.4)
    batches = []
    delete_expired = store.delete_expired

    def stalled_after_two(conn, now, batch_size, after):  # type: ignore[no-untyped-def]
        if len(batches) == 2:
            with engine.begin() as other:  # our lease lapsed; another node took it
                other.execute(text("UPDATE leases SET holder = 'other', expires_at = :t"),
                              {"t": store.utcnow() + dt.timedelta(minutes=5)})
            time.sleep(0.3)  # past half the lease: the pass renews before the next batch
        batches.append(batch_size)
        return delete_expired(conn, now, batch_size, after)

    monkeypatch.setattr(store, "delete_expired", stalled_after_two)
    result = reap(engine, batch_size=2, now=NOW)
    assert result == ReapResult(6, skipped=False)  # three batches, then it saw the takeover
    assert len(_ids(engine)) == 4
    with engine.connect() as conn:  # and it left the new holder's lease alone
        assert conn.execute(text("SELECT holder FROM leases")).scalar_one() == "other"
    engine.dispose()


# --- the periodic runner --------------------------------------------------------------


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_periodic_reaper_reaps_rows_that_expire_after_it_started(engine):
    started = store.utcnow()
    expired = _aged("p", started - dt.timedelta(days=1))
    soon = _aged("p", started + dt.timedelta(seconds=1.5))
    later = _aged("p", started + dt.timedelta(days=9))
    _seed(engine, [expired, soon, later])
    reaper = PeriodicReaper(engine, interval=1, batch_size=100)
    reaper.start()
    try:
        assert _wait_for(lambda: expired["id"] not in _ids(engine), 5)  # the first pass
        # Not reaped before it is due (unless this machine took 1.5 s to get here).
        assert soon["id"] in _ids(engine) or store.utcnow() >= soon["expires_at"]
        assert _wait_for(lambda: soon["id"] not in _ids(engine), 6)  # a later pass
        assert store.utcnow() >= soon["expires_at"]
    finally:
        stopping = time.monotonic()
        reaper.stop()
        assert time.monotonic() - stopping < 1.5  # no waiting out the interval
    assert _ids(engine) == {later["id"]}


def test_disabled_reaper_never_runs(engine):
    _seed(engine, [_aged("p", NOW - dt.timedelta(days=1))])
    reaper = PeriodicReaper(engine, interval=-1, batch_size=100)
    reaper.start()
    time.sleep(0.3)
    reaper.stop()
    assert len(_ids(engine)) == 1


# --- the CLI --------------------------------------------------------------------------


def test_cli_reap_prints_the_deleted_count(db_url):
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade", "--db", db_url]).exit_code == 0
    engine = store_engine.connect(db_url)
    _seed(engine, [_aged("p", store.utcnow() - dt.timedelta(days=1)) for _ in range(3)]
          + [_aged("p", store.utcnow() + dt.timedelta(days=1))])
    result = runner.invoke(main, ["reap", "--db", db_url])
    assert (result.exit_code, result.output) == (0, "deleted 3 expired messages\n")
    result = runner.invoke(main, ["reap", "--db", db_url])
    assert (result.exit_code, result.output) == (0, "deleted 0 expired messages\n")
    assert len(_ids(engine)) == 1
    engine.dispose()


def test_cli_reap_errors_are_one_line(tmp_path):
    runner = CliRunner()
    bad_config = tmp_path / "bad.conf"
    bad_config.write_text("[DEFAULT]\nmessage_reap_batch_size = many\n")
    for args, complaint in (
        (["--db", "oracle://x/y"], "unsupported database"),
        (["--db", "mysql://u:p@127.0.0.1:1/none"], "Can't connect to MySQL server"),
        (["--db", "not a url"], "not a database URL"),
        (["--db", "postgresql://postgres@127.0.0.1:1/none"], "Connection refused"),
        (["--db", f"sqlite:///{tmp_path}/missing/dir/x.sqlite"], "unable to open database"),
        (["--db", f"sqlite:///{tmp_path}/empty.sqlite"], "no such table: messages"),
        (["--config", str(bad_config)], "is not a valid int"),
    ):
        result = runner.invoke(main, ["reap", *args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, args
        assert complaint in result.output, (args, result.output)
