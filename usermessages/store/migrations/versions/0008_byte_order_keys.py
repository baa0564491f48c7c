"""PostgreSQL: the write path's strings compared byte by byte (COLLATE "C").

SQLite compares strings with BINARY and MariaDB's tables are
utf8mb4_nopad_bin: byte order, so lists sorted by request_id, resource_uuid,
project_id or id come back in one order there whatever the server's locale.
PostgreSQL compared them in the database's collation: on a database created
in en_US, "req_b" sorted before "req-a" and "abc" before "Abc", unlike every
other store, and each comparison went through the locale (on an ICU en-US
database, COPY into messages cost 8% more backend CPU per row;
docs/benchmarks.md). The catalog's ids and lowercase UUIDs sort the same in
both, so only free-form values with punctuation or capitals move. A database
created in C or C.UTF-8 (the order is the same) only gets faster.

Changing a column's collation keeps its rows in place but rebuilds every
index holding it, on every partition, under an ACCESS EXCLUSIVE lock: run it
in a maintenance window. SQLite and MariaDB need nothing.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_COLUMNS: dict[str, dict[str, int]] = {
    'messages': {
        'id': 36, 'kind': 16, 'project_id': 255, 'user_id': 255, 'request_id': 255,
        'resource_type': 36, 'resource_uuid': 255, 'event_id': 255, 'message_level': 255,
        'action_id': 10, 'detail_id': 10, 'host': 255, 'exception_class': 255,
        'global_request_id': 255,
    },
    'message_series': {
        'id': 36, 'kind': 16, 'project_id': 255, 'event_id': 255, 'resource_uuid': 255,
        'resource_type': 36, 'message_level': 255, 'action_id': 10, 'detail_id': 10,
    },
    'message_storm': {'scope': 600},
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in _COLUMNS.items():
        # One statement per table: its indexes are rebuilt once, not once per column.
        op.execute(f'ALTER TABLE {table} ' + ', '.join(
            f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE {collation}'
            for name, length in columns.items()))


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')
