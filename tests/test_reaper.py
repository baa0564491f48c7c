"""The reaper: expired rows go, in batches, exactly once, even with two reapers at once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

from click.testing import CliRunner
from sqlalchemy import text

from tests.api.conftest import row
from usermessages.cli.main import main
from usermessages.reaper import ADVISORY_LOCK_KEY, PeriodicReaper, reap
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate

NOW = dt.datetime(2026, 11, 24, 12, 0, 0)


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM messages")).scalar_one()


def _aged(project: str, expires_at: dt.datetime, deleted: bool = False) -> dict:
    message = row(project)
    message.update(expires_at=expires_at, deleted=deleted)
    return message


def test_reap_deletes_exactly_what_expired_before_now(engine):
    expired = [_aged("p", NOW - dt.timedelta(days=1)) for _ in range(5)]
    expired.append(_aged("p", NOW - dt.timedelta(seconds=1), deleted=True))  # soft-deleted too
    live = [_aged("p", NOW), _aged("p", NOW + dt.timedelta(days=1))]  # "now" is not expired
    with engine.begin() as conn:
        store.insert_messages(conn, expired + live)
    result = reap(engine, batch_size=2, now=NOW)  # several batches
    assert (result.deleted, result.skipped) == (6, False)
    with engine.connect() as conn:
        left = {r["id"] for r in store.list_messages_all_projects(conn, store.ListQuery())}
    assert left == {m["id"] for m in live}
    assert reap(engine, batch_size=2, now=NOW).deleted == 0


def test_batches_are_separate_transactions(engine):
    with engine.begin() as conn:
        store.insert_messages(conn, [_aged("p", NOW - dt.timedelta(hours=i + 1))
                                     for i in range(7)])
    commits = []
    from sqlalchemy import event

    def count(_conn) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    try:
        assert reap(engine, batch_size=3, now=NOW).deleted == 7
    finally:
        event.remove(engine, "commit", count)
    assert len(commits) >= 3  # 3 + 3 + 1: one transaction per batch


def test_two_reapers_at_once_delete_every_expired_row_exactly_once(postgresql_url, tmp_path):
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO messages (id, kind, project_id, event_id, message_level, action_id, "
            "detail_id, created_at, expires_at, deleted) SELECT md5(i::text)::uuid::text, 'API', "
            "'p', 'VOLUME_VOLUME_001_003', 'ERROR', '001', '003', now(), "
            "CASE WHEN i <= 20000 THEN now() - interval '1 day' ELSE now() + interval '1 day' END,"
            " false FROM generate_series(1, 21000) i"))
    conf = tmp_path / "reap.conf"
    conf.write_text("[DEFAULT]\nmessage_reap_batch_size = 500\n")
    command = [sys.executable, "-m", "usermessages.cli.main", "reap", "--db", postgresql_url,
               "--config", str(conf)]
    reapers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [reaper.communicate(timeout=120) for reaper in reapers]
    assert [reaper.returncode for reaper in reapers] == [0, 0], outputs
    assert all(err == "" for _, err in outputs), outputs
    deleted = [int(out.split()[1]) if out.startswith("deleted") else 0 for out, _ in outputs]
    assert sum(deleted) == 20000, outputs
    assert _count(engine) == 1000
    with engine.connect() as conn:
        assert conn.execute(text("SELECT min(expires_at) > now() FROM messages")).scalar_one()


def test_a_held_lock_makes_a_pass_skip(postgresql_url):
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        store.insert_messages(conn, [_aged("p", NOW - dt.timedelta(days=1))])
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        result = reap(engine, batch_size=10, now=NOW)
        assert (result.deleted, result.skipped) == (0, True)
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        holder.commit()
    assert reap(engine, batch_size=10, now=NOW).deleted == 1


def test_periodic_reaper_runs_at_start_and_every_interval_and_stops(engine):
    soon = store.utcnow() + dt.timedelta(seconds=1.5)
    with engine.begin() as conn:
        store.insert_messages(conn, [_aged("p", store.utcnow() - dt.timedelta(days=1)),
                                     _aged("p", soon), _aged("p", soon + dt.timedelta(days=9))])
    reaper = PeriodicReaper(engine, interval=1, batch_size=100)
    reaper.start()
    try:
        deadline = time.monotonic() + 10
        while _count(engine) != 1:
            assert time.monotonic() < deadline, _count(engine)
            time.sleep(0.1)
    finally:
        started = time.monotonic()
        reaper.stop()
        assert time.monotonic() - started < 5


def test_disabled_reaper_never_runs(engine):
    with engine.begin() as conn:
        store.insert_messages(conn, [_aged("p", NOW - dt.timedelta(days=1))])
    reaper = PeriodicReaper(engine, interval=-1, batch_size=100)
    reaper.start()
    time.sleep(0.3)
    reaper.stop()
    assert _count(engine) == 1


def test_cli_reap_and_db_upgrade(db_url):
    runner = CliRunner()
    result = runner.invoke(main, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0 and result.output.strip() == "database at revision 0001"
    engine = store_engine.connect(db_url)
    with engine.begin() as conn:
        store.insert_messages(conn, [_aged("p", NOW - dt.timedelta(days=1)) for _ in range(3)])
    result = runner.invoke(main, ["reap", "--db", db_url])
    assert result.exit_code == 0 and result.output.strip() == "deleted 3 expired messages"


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    for args, complaint in ((["reap", "--db", "mysql://x/y"], "unsupported database"),
                            (["reap", "--db", "not a url"], "not a database URL")):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        assert complaint in result.output and "Traceback" not in result.output
    bad = tmp_path / "bad.conf"
    bad.write_text("[DEFAULT]\nmessage_reap_batch_size = many\n")
    result = runner.invoke(main, ["reap", "--config", str(bad)])
    assert result.exit_code == 1 and "is not a valid int" in result.output
