"""Migrations on real SQLite, PostgreSQL and MariaDB: head matches the models, and they go
both ways."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

from tests.api.conftest import row
from usermessages.cli.main import main
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, partitions, writer
from usermessages.store.schema import PROJECT_LIST_COLUMNS, messages, metadata

# The messages table's indexes from 0004 to 0006: one per sort key of a project's list.
INDEXES_0006 = {
    "ix_messages_created", "ix_messages_expires_at", "ix_messages_project_created",
    "ix_messages_project_id", "ix_messages_request_id", "ix_messages_resource_uuid",
    "ix_messages_seq",
    *(f"ix_messages_project_{key}" for key in (
        "action_id", "detail_id", "event_id", "expires_at", "message_level", "request_id",
        "resource_type", "resource_uuid")),
}
# MariaDB has no expression indexes: it never gets 0001's two on coalesce(), which 0007
# drops everywhere.
EXPRESSION_INDEXES = {"ix_messages_project_action_id", "ix_messages_project_detail_id"}


def _indexes_0006(engine: Engine) -> set[str]:
    return INDEXES_0006 - (EXPRESSION_INDEXES if engine.dialect.name == "mysql" else set())


def _index_definitions(engine: Engine) -> dict[str, str]:
    """The messages table's indexes as the database holds them, by name (no primary key)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                     "AND tbl_name = 'messages' AND sql IS NOT NULL"))
        elif engine.dialect.name == "mysql":
            rows = conn.execute(text(
                "SELECT index_name, group_concat(column_name ORDER BY seq_in_index "
                "SEPARATOR ', ') FROM information_schema.statistics WHERE table_schema = "
                "DATABASE() AND table_name = 'messages' AND index_name <> 'PRIMARY' "
                "GROUP BY index_name"))
        else:
            rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                     "WHERE tablename = 'messages' AND indexname <> 'messages_pkey'"))
        return {name: definition for name, definition in rows}


def _drift(engine: Engine) -> list:
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite cannot reflect expression indexes, so autogenerate skips them
        # there (and says so); test_expression_indexes_... covers them instead.
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        # What migrations compare (migrate.include_name, include_object): the day
        # partitions of messages (migration 0004) are its, not tables of the models.
        return compare_metadata(MigrationContext.configure(conn, opts={
            "include_name": migrate.include_name,
            "include_object": migrate.include_object(conn.dialect.name)}), metadata)


def test_one_linear_history():
    script = ScriptDirectory.from_config(migrate._config(None))  # type: ignore[arg-type]
    assert script.get_heads() == [migrate.head()]
    revisions = [rev.revision for rev in script.walk_revisions()]
    assert revisions == ["0011", "0010", "0009", "0008", "0007", "0006", "0005", "0004", "0003",
                         "0002", "0001"]


def test_upgrade_matches_the_models_then_downgrade_leaves_nothing(db_url):
    engine = store_engine.connect(db_url)
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    assert _drift(engine) == []
    # Every index of the models exists under its name, as PostgreSQL's options make it.
    indexes = _index_definitions(engine)
    assert set(indexes) == {index.name for index in messages.indexes}
    if engine.dialect.name == "postgresql":
        assert indexes["ix_messages_project_created"].endswith(
            "(project_id, created_at, id) INCLUDE (" + ", ".join(PROJECT_LIST_COLUMNS) + ")")
        for name in ("ix_messages_request_id", "ix_messages_resource_uuid"):
            assert " USING hash " in indexes[name]
    migrate.upgrade(engine)  # idempotent
    assert migrate.is_at_head(engine)

    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None
    assert "messages" not in inspect(engine).get_table_names()
    assert _index_definitions(engine) == {}
    engine.dispose()


def test_each_migration_goes_up_down_and_up_again(db_url):
    """Step by step from empty: each revision upgrades, downgrades to the one before, and
    upgrades again; at head nothing drifted on the way."""
    engine = store_engine.connect(db_url)
    script = ScriptDirectory.from_config(migrate._config(None))  # type: ignore[arg-type]
    revisions = [rev.revision for rev in script.walk_revisions()][::-1]
    for before, revision in zip(["base", *revisions], revisions, strict=False):
        migrate.upgrade(engine, revision)
        migrate.downgrade(engine, before)
        assert migrate.current(engine) == (None if before == "base" else before)
        migrate.upgrade(engine, revision)
        assert migrate.current(engine) == revision
    assert _drift(engine) == []
    engine.dispose()


def test_drift_is_seen(db_url):
    """The drift check is not vacuous: an index the database lacks is reported."""
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        [index] = [ix for ix in messages.indexes if ix.name == "ix_messages_request_id"]
        index.drop(conn)  # in each store's syntax
    assert [diff[0] for diff in _drift(engine)] == ["add_index"]
    engine.dispose()


def test_cli_db_upgrade_prints_the_revision(db_url):
    runner = CliRunner()
    for _ in range(2):  # the second run finds the schema current
        result = runner.invoke(main, ["db", "upgrade", "--db", db_url])
        assert (result.exit_code, result.output) == (0, f"database at revision {migrate.head()}\n")
    engine = store_engine.connect(db_url)
    assert migrate.is_at_head(engine)
    engine.dispose()


def test_cli_db_upgrade_on_an_unreachable_store_is_one_line(tmp_path):
    runner = CliRunner()
    for url, complaint in (
        ("postgresql://postgres@127.0.0.1:1/none", "Connection refused"),
        (f"sqlite:///{tmp_path}/missing/dir/x.sqlite", "unable to open database file"),
        ("mysql+pymysql://u:p@127.0.0.1:1/none", "Can't connect to MySQL server"),
        ("oracle://x/y", "unsupported database"),
        ("mysql+mysqldb://x/y", "use mysql+pymysql://"),
        ("not a url", "not a database URL"),
    ):
        result = runner.invoke(main, ["db", "upgrade", "--db", url])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
        assert complaint in result.output


def test_0002_numbers_existing_rows_in_created_order_and_new_rows_after_them(db_url):
    """Rows stored before 0002 get seqs in (created_at, id) order; the next insert follows."""
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO messages (id, event_id, message_level, created_at, expires_at) VALUES "
            "('b', 'e', 'ERROR', '2026-01-02 00:00:00', '2027-01-01 00:00:00'), "
            "('a', 'e', 'ERROR', '2026-01-02 00:00:00', '2027-01-01 00:00:00'), "
            "('c', 'e', 'ERROR', '2026-01-01 00:00:00', '2027-01-01 00:00:00')"))
    migrate.upgrade(engine)
    with engine.begin() as conn:
        writer.insert(conn, [row("p", message_id="late", minutes=-10_000)])
        numbered = conn.execute(text("SELECT id, seq FROM messages ORDER BY seq")).all()
    assert [tuple(r) for r in numbered] == [("c", 1), ("a", 2), ("b", 3), ("late", 4)]
    migrate.downgrade(engine, "0001")
    assert "seq" not in {c["name"] for c in inspect(engine).get_columns("messages")}
    # Going down kept every index 0001 made, expression indexes included.
    assert set(_index_definitions(engine)) == _indexes_0006(engine) - {"ix_messages_seq"}
    engine.dispose()


def _insert_rows(engine: Engine, revision: str, start: int, count: int) -> None:
    """Rows as a store at ``revision`` holds them, in two expiry days and two projects."""
    base = dt.datetime(2026, 3, 1, 12)
    rows = [{"id": f"m-{i:04d}", "project_id": f"p{i % 2}", "event_id": "VOLUME_VOLUME_001_003",
             "message_level": ("ERROR", "WARNING")[i % 2], "action_id": None if i % 5 else "001",
             "created_at": base + dt.timedelta(minutes=i),
             "expires_at": base + dt.timedelta(days=30, hours=12 * (i % 2), minutes=i)}
            for i in range(start, start + count)]
    numbered = revision >= "0002"
    with engine.begin() as conn:
        partitions.ensure(conn, [row["expires_at"] for row in rows])  # a no-op before 0004
        if numbered:
            first = writer.reserve_seqs(conn, count)
        conn.execute(text(
            "INSERT INTO messages (id, project_id, event_id, message_level, action_id, created_at, "
            "expires_at" + (", seq) " if numbered else ") ") + "VALUES (:id, :project_id, "
            ":event_id, :message_level, :action_id, :created_at, :expires_at"
            + (", :seq)" if numbered else ")")),
            [{**row, "seq": first + k} if numbered else row for k, row in enumerate(rows)])


def _stored(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, project_id, message_level, action_id, created_at, expires_at "
            "FROM messages ORDER BY id"))]


@pytest.mark.parametrize("earlier", ["0001", "0002", "0003", "0004", "0005", "0006"])
def test_0007_from_each_earlier_head_keeps_rows_and_lists_them_then_goes_back(db_url, earlier):
    """Upgrade a store holding rows at each earlier revision to head (0007's indexes),
    list through the new ones, store more, and downgrade to 0006: rows intact both ways."""
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine, earlier)
    _insert_rows(engine, earlier, 0, 40)
    before = _stored(engine)
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine) and _drift(engine) == []
    assert _stored(engine) == before
    assert set(_index_definitions(engine)) == {index.name for index in messages.indexes}
    _insert_rows(engine, migrate.head(), 40, 10)  # numbered after the rows that were there
    with engine.connect() as conn:
        for sort in (("created_at", "desc"), ("action_id", "asc"), ("message_level", "desc")):
            page = store.list_messages(conn, "p0", store.ListQuery(sort=[sort], limit=7))
            everything = store.list_messages(conn, "p0", store.ListQuery(sort=[sort]))
            assert len(everything) == 25 and page == everything[:7], sort
        seqs = conn.execute(text("SELECT seq FROM messages WHERE id >= 'm-0040' ORDER BY id"))
        assert min(seqs.scalars()) > 40  # after every row stored before
    after = _stored(engine)
    migrate.downgrade(engine, "0006")
    assert migrate.current(engine) == "0006"
    assert set(_index_definitions(engine)) == _indexes_0006(engine)
    assert _stored(engine) == after
    # Back up again: the downgrade left a schema 0007 accepts.
    migrate.upgrade(engine)
    assert _stored(engine) == after and _drift(engine) == []
    engine.dispose()
