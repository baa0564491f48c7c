"""The messages table partitioned by expiry day (migration 0004), on real PostgreSQL and
MariaDB: the migration keeps every row both ways, redelivery stays idempotent across
partitions, and the reaper drops whole expired days while listings run."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, event, inspect, text

from tests.api.conftest import BASE_TIME, row
from usermessages.reaper import reap
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, partitions, writer
from usermessages.store.schema import messages

DAY = dt.timedelta(days=1)


def _relkind(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT relkind FROM pg_class "
                                 "WHERE oid = to_regclass('messages')")).scalar_one()


def _attached(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return partitions.attached(conn)


def _days(engine: Engine) -> list[dt.date]:
    """The days messages has a partition of, on either server."""
    with engine.connect() as conn:
        if engine.dialect.name == "mysql":
            return partitions.mariadb_days(conn) or []
        return [d for d in map(partitions.day_of_name, partitions.attached(conn)) if d]


def _all_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, project_id, created_at, expires_at, seq, deleted FROM messages "
            "ORDER BY id"))]


def _expiring(project: str, day: int, minutes: float = 0) -> dict:
    """A row whose expiry falls ``day`` days after BASE_TIME's day."""
    message = row(project, minutes=minutes)
    message["expires_at"] = message["created_at"] + day * DAY
    return message


def test_0004_moves_every_row_into_daily_partitions_and_back(postgresql_url):
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine, "0003")
    rows = [_expiring(f"p{i % 3}", day=i % 4, minutes=i) for i in range(40)]
    with engine.begin() as conn:
        # As the code of revision 0003 stored them (today's also counts series, from 0005).
        conn.execute(messages.insert(), [{**r, "seq": i + 1} for i, r in enumerate(rows)])
        conn.execute(text("UPDATE message_seq SET value = :n"), {"n": len(rows)})
        store.soft_delete_message(conn, rows[0]["id"])
    before = _all_rows(engine)
    assert _relkind(engine) == "r"

    migrate.upgrade(engine)
    assert _relkind(engine) == "p"
    days = sorted({r["expires_at"].date() for r in rows})
    assert _attached(engine) == [partitions.name_of(d) for d in days]
    assert _all_rows(engine) == before
    with engine.begin() as conn:  # numbering and idempotency go on after the move
        assert writer.insert(conn, rows[:5]).new == 0
        assert writer.insert(conn, [_expiring("p9", day=9)]).new == 1
        assert store.last_seq(conn) == 46  # the 5 ignored rows' numbers are skipped
    after = _all_rows(engine)

    migrate.downgrade(engine, "0003")
    assert _relkind(engine) == "r"
    assert _all_rows(engine) == after
    with engine.connect() as conn:  # no partition outlived its table
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname "
                                 "~ '^messages_p[0-9]{8}$'")).scalar_one() == 0
        unique = conn.execute(text("SELECT indisunique FROM pg_index "
                                   "WHERE indexrelid = 'ix_messages_seq'::regclass")).scalar_one()
    assert unique  # as 0002 made it
    engine.dispose()


def test_redelivery_is_ignored_in_whichever_partition_the_row_went(server_url):
    """The expiry derives from the envelope, so a redelivered row has the same key
    (id, expires_at) and lands on its first copy, whatever its partition."""
    engine = store_engine.connect(server_url)
    migrate.upgrade(engine)
    rows = [_expiring("p1", day=i % 5, minutes=i) for i in range(25)]
    with engine.begin() as conn:
        assert writer.insert(conn, rows[:15]).new == 15
    with engine.begin() as conn:  # a redelivered batch that overlaps and extends the first
        assert writer.insert(conn, rows[10:]).new == 10
    # Another process (its own connections: no memory of partitions) redelivers all.
    other = store_engine.connect(server_url)
    with other.begin() as conn:
        assert writer.insert(conn, rows).new == 0
    other.dispose()
    assert len(_all_rows(engine)) == 25
    assert {r["expires_at"].date() for r in rows} <= set(_days(engine))
    engine.dispose()


def test_concurrent_inserters_create_each_new_day_once(server_url):
    """Two collectors meeting the same new days at once: one makes each partition."""
    engine = store_engine.connect(server_url)
    migrate.upgrade(engine)
    batches = [[_expiring(f"w{w}", day=d, minutes=i) for d in range(6) for i in range(20)]
               for w in range(4)]
    start = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def insert(batch: list[dict]) -> None:
        try:
            start.wait()
            with engine.begin() as conn:
                writer.insert(conn, batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(_all_rows(engine)) == 4 * 6 * 20
    days = _days(engine)  # each once (MariaDB's made ahead, too)
    assert len(days) == len(set(days)) and {r["expires_at"].date() for b in batches
                                            for r in b} <= set(days)
    engine.dispose()


def test_reap_drops_whole_expired_days_and_batches_the_partial_one(server_url):
    engine = store_engine.connect(server_url)
    migrate.upgrade(engine)
    now = dt.datetime.combine(BASE_TIME.date() + 3 * DAY, dt.time(12))
    rows = [_expiring("p1", day=d, minutes=i) for d in range(6) for i in range(10)]
    with engine.begin() as conn:
        writer.insert(conn, rows)
    expired = {r["id"] for r in rows if r["expires_at"] < now}
    result = reap(engine, batch_size=3, now=now)
    assert result.deleted == len(expired)
    # The days that ended before now are gone; now's day is still there.
    assert min(_days(engine)) == now.date()
    if engine.dialect.name == "postgresql":  # as tables too, not just detached
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname = :n"),
                                {"n": partitions.name_of(BASE_TIME.date())}).scalar_one() == 0
    assert {r[0] for r in _all_rows(engine)} == {r["id"] for r in rows} - expired
    # The store makes a dropped day again if a (very late) message still lands in it.
    with engine.begin() as conn:
        assert writer.insert(conn, [_expiring("p1", day=0, minutes=999)]).new == 1
    engine.dispose()


def test_listings_run_unharmed_while_the_reaper_drops_partitions(server_url):
    """Readers page through a project while whole days are detached and dropped:
    no error, and every live row is seen on every pass."""
    engine = store_engine.connect(server_url, pool_size=8)
    migrate.upgrade(engine)
    now = dt.datetime.combine(BASE_TIME.date() + 8 * DAY, dt.time(0))
    doomed = [_expiring("p1", day=d, minutes=i) for d in range(8) for i in range(300)]
    live = [_expiring("p1", day=d, minutes=i) for d in (9, 10) for i in range(40)]
    with engine.begin() as conn:
        writer.insert(conn, doomed + live)
    live_ids = {r["id"] for r in live}
    stop = threading.Event()
    errors: list[BaseException] = []
    passes = [0]

    def reader() -> None:
        query = store.ListQuery(sort=[("expires_at", "desc")], limit=25)
        try:
            while not stop.is_set():
                seen: list[str] = []
                marker = None
                while True:
                    with engine.connect() as conn:
                        page = store.list_messages(conn, "p1", store.ListQuery(
                            sort=query.sort, limit=query.limit, marker=marker))
                    seen += [m.id for m in page]
                    if len(page) < (query.limit or 0) or set(seen) >= live_ids:
                        break
                    marker = page[-1].id
                # Newest expiry first: the live rows always lead, whatever is dropped.
                assert set(seen[:len(live_ids)]) == live_ids
                passes[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        result = reap(engine, batch_size=500, now=now)
    finally:
        stop.set()
        for thread in readers:
            thread.join(60)
    assert errors == []
    assert passes[0] > 0
    assert result.deleted == len(doomed)
    days = _days(engine)  # every whole day before now dropped (MariaDB made some ahead)
    assert min(days) >= now.date() and {BASE_TIME.date() + d * DAY for d in (9, 10)} <= set(days)
    assert {r[0] for r in _all_rows(engine)} == live_ids
    engine.dispose()


def test_one_id_with_two_expiries_is_stored_once(server_url):
    """The SDK's direct sink and a collector (or two collectors) with different
    message_ttl give one id two expiries, in two partitions: still stored once."""
    engine = store_engine.connect(server_url)
    migrate.upgrade(engine)
    first = _expiring("p1", day=1)
    again = {**first, "expires_at": first["expires_at"] + 5 * DAY}
    with engine.begin() as conn:
        assert writer.insert(conn, [first]).new == 1
    with engine.begin() as conn:
        assert writer.insert(conn, [again, _expiring("p1", day=2)]).new == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages WHERE id = :id"),
                            {"id": first["id"]}).scalar_one() == 1
    engine.dispose()


def test_the_reaper_counts_a_day_on_one_core_and_leaves_its_connection_as_found(postgresql_url):
    """Dropping a day counts its rows first. A parallel scan (a leader and two workers)
    took both cores of a two-core server from the API's listings; the count runs in one
    process, and the pooled connection gets PostgreSQL's default back."""
    engine = store_engine.connect(postgresql_url, pool_size=1)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        writer.insert(conn, [_expiring("p1", day=0, minutes=i) for i in range(50)])
    plans: list[str] = []

    def explain_counts(_conn, cursor, statement, parameters, _context, _many) -> None:
        if statement.startswith("SELECT count(*)"):
            with cursor.connection.cursor() as probe:
                # Gather on every plan whenever the session allows workers at all
                # (force_parallel_mode, debug_parallel_query from PostgreSQL 16).
                probe.execute("SELECT name FROM pg_settings WHERE name IN "
                              "('force_parallel_mode', 'debug_parallel_query')")
                setting = probe.fetchone()[0]
                probe.execute(f"SET {setting} = on")
                probe.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in probe.fetchall()))
                probe.execute(f"RESET {setting}")

    event.listen(engine, "before_cursor_execute", explain_counts)
    try:
        deleted = partitions.drop_expired(engine, BASE_TIME + 2 * DAY)
    finally:
        event.remove(engine, "before_cursor_execute", explain_counts)
    assert deleted == 50
    assert plans and all("Gather" not in plan and "Parallel" not in plan for plan in plans), plans
    with engine.connect() as conn:  # the pool's one connection, the reaper's
        assert conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar_one() == "2"


def _partitions_of(engine: Engine) -> list[tuple[str, int]]:
    """MariaDB: (partition, rows in it) in order, pmax last."""
    with engine.connect() as conn:
        names = conn.execute(text(
            "SELECT partition_name FROM information_schema.partitions WHERE table_schema = "
            "DATABASE() AND table_name = 'messages' ORDER BY partition_ordinal_position"))
        return [(name, conn.execute(text("SELECT count(*) FROM messages" + (
                    f" PARTITION ({name})" if name else ""))).scalar_one())
                for name in names.scalars()]


def test_0004_on_mariadb_partitions_in_place_and_back(mariadb_url):
    engine = store_engine.connect(mariadb_url)
    migrate.upgrade(engine, "0003")
    rows = [_expiring(f"p{i % 3}", day=i % 4, minutes=i) for i in range(40)]
    with engine.begin() as conn:
        conn.execute(messages.insert(), [{**r, "seq": i + 1} for i, r in enumerate(rows)])
        conn.execute(text("UPDATE message_seq SET value = :n"), {"n": len(rows)})
        store.soft_delete_message(conn, rows[0]["id"])
    before = _all_rows(engine)

    migrate.upgrade(engine)
    days = sorted({r["expires_at"].date() for r in rows})
    # A partition per day the rows expire on, each holding that day's rows, then pmax.
    assert _partitions_of(engine) == [
        *((partitions.name_of(d), sum(r["expires_at"].date() == d for r in rows)) for d in days),
        (partitions.PMAX, 0)]
    assert _all_rows(engine) == before
    assert inspect(engine).get_pk_constraint("messages")["constrained_columns"] == [
        "id", "expires_at"]
    with engine.begin() as conn:  # numbering and idempotency go on after the move
        assert writer.insert(conn, rows[:5]).new == 0
        assert writer.insert(conn, [_expiring("p9", day=9)]).new == 1
        assert store.last_seq(conn) == 46
    after = _all_rows(engine)

    migrate.downgrade(engine, "0003")
    assert _partitions_of(engine) == [(None, len(after))]
    assert _all_rows(engine) == after
    assert inspect(engine).get_pk_constraint("messages")["constrained_columns"] == ["id"]
    [seq_index] = [ix for ix in inspect(engine).get_indexes("messages")
                   if ix["name"] == "ix_messages_seq"]
    assert seq_index["unique"]  # as 0002 made it
    engine.dispose()


def test_mariadb_days_are_made_ahead_and_far_expiries_wait_in_pmax(mariadb_url):
    """An inserter meeting a new day splits it and AHEAD_DAYS more off pmax, so the next
    days need no DDL; an expiry past the horizon (a TTL of years) goes to pmax, making
    no partition, and still reaps."""
    engine = store_engine.connect(mariadb_url)
    migrate.upgrade(engine)
    today = store.utcnow().date()
    soon = _expiring("p1", day=0)
    soon["expires_at"] = dt.datetime.combine(today + DAY, dt.time(9))
    with engine.begin() as conn:
        assert writer.insert(conn, [soon]).new == 1
    made = [today + (1 + i) * DAY for i in range(partitions.AHEAD_DAYS + 1)]
    assert _days(engine) == made
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    later = [_expiring("p1", day=0, minutes=i) for i in range(3)]
    for i, message in enumerate(later):  # days already made: no DDL
        message["expires_at"] = dt.datetime.combine(made[i + 2], dt.time(1))
    far = _expiring("p1", day=0)
    far["expires_at"] = dt.datetime.combine(today + 3 * 365 * DAY, dt.time())
    with engine.begin() as conn:
        assert writer.insert(conn, [*later, far]).new == 4
    assert not [s for s in statements if "PARTITION" in s.upper()], statements
    assert _days(engine) == made
    assert _partitions_of(engine)[-1] == (partitions.PMAX, 1)
    assert reap(engine, batch_size=10, now=far["expires_at"] + DAY).deleted == 5
    assert _all_rows(engine) == []
    engine.dispose()


def test_mariadb_a_day_left_out_of_the_table_by_a_stopped_reaper_goes_next_pass(mariadb_url):
    """A reaper stopped between taking a day out (CONVERT PARTITION ... TO TABLE) and
    dropping it leaves a table named as the partition was: the next pass drops it, and
    counts its rows."""
    engine = store_engine.connect(mariadb_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        writer.insert(conn, [_expiring("p1", day=d, minutes=i) for d in (0, 1) for i in range(5)])
    stranded = partitions.name_of(BASE_TIME.date())
    with engine.connect() as conn:  # the stopped pass's first step
        conn.execute(text(f"ALTER TABLE messages CONVERT PARTITION {stranded} TO TABLE "
                          f"{stranded}"))
    assert partitions.drop_expired(engine, BASE_TIME + 2 * DAY) == 10  # 5 stranded + 5
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM information_schema.tables WHERE "
                                 "table_schema = DATABASE() AND table_name LIKE "
                                 "'messages\\\\_p%'")).scalar_one() == 0
    assert _all_rows(engine) == []
    engine.dispose()
