"""Migrations on real SQLite and PostgreSQL: head matches the models, and they go both ways."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

from tests.api.conftest import row
from usermessages.cli.main import main
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer
from usermessages.store.schema import messages, metadata


def _index_definitions(engine: Engine) -> dict[str, str]:
    """The messages table's indexes as the database holds them, by name (no primary key)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                     "AND tbl_name = 'messages' AND sql IS NOT NULL"))
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
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_one_linear_history():
    script = ScriptDirectory.from_config(migrate._config(None))  # type: ignore[arg-type]
    assert script.get_heads() == [migrate.head()]
    revisions = [rev.revision for rev in script.walk_revisions()]
    assert revisions == ["0006", "0005", "0004", "0003", "0002", "0001"]


def test_upgrade_matches_the_models_then_downgrade_leaves_nothing(db_url):
    engine = store_engine.connect(db_url)
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    assert _drift(engine) == []
    # Every index of the models exists under its name, expression indexes included.
    indexes = _index_definitions(engine)
    assert set(indexes) == {index.name for index in messages.indexes}
    for key in ("action_id", "detail_id"):
        assert f"coalesce({key}, ''" in indexes[f"ix_messages_project_{key}"].lower()
    migrate.upgrade(engine)  # idempotent
    assert migrate.is_at_head(engine)

    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None
    assert "messages" not in inspect(engine).get_table_names()
    assert _index_definitions(engine) == {}
    engine.dispose()


def test_drift_is_seen(db_url):
    """The drift check is not vacuous: an index the database lacks is reported."""
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_messages_request_id"))
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
        ("mysql://x/y", "unsupported database"),
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
    expected = {index.name for index in messages.indexes} - {"ix_messages_seq"}
    assert set(_index_definitions(engine)) == expected
    engine.dispose()
