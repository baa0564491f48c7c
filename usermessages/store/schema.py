"""The messages table and its indexes.

Every string column a user can sort or filter on is NOT NULL (empty string
for "unset"), so keyset pagination can compare row values without NULL
special cases; the API view omits empty ``resource_type``/``resource_uuid``
exactly as Cinder omits falsy ones. The three ids whose NULL means something
(project_id, action_id, detail_id) sort through ``sortable`` instead.

On MariaDB every table compares strings byte for byte (``utf8mb4_nopad_bin``:
case and trailing spaces count, as on PostgreSQL and SQLite, so a filter,
an id lookup or a sort answers the same on every store), times keep their
microseconds (``DATETIME(6)``), and each table has a primary key (Galera
replicates rows by it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    func,
    literal_column,
    true,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()


def _key(length: int) -> String:
    """A string compared byte by byte on every store (migration 0008).

    SQLite's BINARY and MariaDB's utf8mb4_nopad_bin already are; on
    PostgreSQL COLLATE "C" makes lists sort alike whatever locale the
    database was created in, and each comparison a memcmp instead of the
    locale's.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


# A time with its microseconds on every store (MySQL's DATETIME drops them).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
# Table options on MariaDB (ignored elsewhere): see the module docstring.
MYSQL_TABLE: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin"}

messages = Table(
    "messages",
    metadata,
    # PostgreSQL's primary key is (id, expires_at), as its partitions require
    # (migration 0004); the expiry derives from the envelope, so an id keeps one.
    Column("id", _key(36), primary_key=True),
    # API messages belong to a project; SERVICE and SYSTEM ones (admin-only) have none.
    Column("kind", _key(16), nullable=False, server_default="API"),
    Column("project_id", _key(255), nullable=True),
    Column("user_id", _key(255), nullable=False, server_default=""),
    Column("request_id", _key(255), nullable=False, server_default=""),
    Column("resource_type", _key(36), nullable=False, server_default=""),
    Column("resource_uuid", _key(255), nullable=False, server_default=""),
    Column("event_id", _key(255), nullable=False),
    Column("message_level", _key(255), nullable=False),
    # NULL action_id marks a legacy row whose text comes from its event_id.
    Column("action_id", _key(10), nullable=True),
    Column("detail_id", _key(10), nullable=True),
    # Admin-only internals: never rendered for project users.
    Column("host", _key(255), nullable=False, server_default=""),
    Column("exception_class", _key(255), nullable=False, server_default=""),
    # OpenStack's cross-service correlation id, from a notification's context.
    Column("global_request_id", _key(255), nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("deleted", Boolean(), nullable=False, server_default=false()),
    Column("deleted_at", Timestamp, nullable=True),
    # The order rows were stored in (store-assigned, see messages.reserve_seqs):
    # what live updates page by, since a late producer's created_at can be
    # older than rows already shown. Nullable only because SQLite cannot add a
    # NOT NULL column without rebuilding the table; every insert sets it.
    Column("seq", BigInteger(), nullable=True),
    **MYSQL_TABLE,
)

# One row: the last seq handed out. Bumping it row-locks until commit, so
# inserting transactions commit in seq order (see messages.reserve_seqs).
message_seq = Table(
    "message_seq",
    metadata,
    Column("value", BigInteger(), nullable=False),
    **MYSQL_TABLE,
)


def sortable(column: Column[Any]) -> ColumnElement[Any]:
    """The expression a list sorts on.

    A nullable column (project_id of SERVICE/SYSTEM rows, action_id of legacy
    rows) sorts as the empty string: NULL would compare as unknown in the
    keyset condition, losing rows, and would sort first on SQLite but last on
    PostgreSQL. The '' is literal SQL, not a bound parameter, so every page
    of a list sorts on one and the same expression.
    """
    return func.coalesce(column, literal_column("''")) if column.nullable else column


# Columns MariaDB's tables have beyond the models: message_seq's invisible
# primary key (Galera replicates rows by their key; migration 0002).
MARIADB_ONLY_COLUMNS = frozenset({"seq_key"})


# What a project's list reads besides its key (project_id, created_at, id):
# every column its conditions and sort keys name, so the list finds its page
# in this one index without touching the table (an index-only scan, see
# messages._list), whatever the sort or filter. One index per sort key served
# each order straight from its own index, but a row then cost 17 index
# insertions and COPY ran at a tenth of Cinder's table (docs/benchmarks.md,
# "row cost"). PostgreSQL only: SQLite and MariaDB have no INCLUDE.
PROJECT_LIST_COLUMNS = (
    "kind", "deleted", "event_id", "message_level", "resource_type", "resource_uuid",
    "request_id", "expires_at", "action_id", "detail_id",
)

Index("ix_messages_project_created", messages.c.project_id, messages.c.created_at, messages.c.id,
      postgresql_include=list(PROJECT_LIST_COLUMNS))
# Admins list across projects, newest first. Inserted in created_at order, so
# each insert lands on the index's last page: the cheapest index a row has.
Index("ix_messages_created", messages.c.created_at, messages.c.id)
# Lookups of one request's or one resource's messages, for admins and as a
# project's filters: equality only, which a hash index serves for half a
# btree's insertion cost on PostgreSQL (a btree elsewhere).
Index("ix_messages_request_id", messages.c.request_id, postgresql_using="hash")
Index("ix_messages_resource_uuid", messages.c.resource_uuid, postgresql_using="hash")
# Live updates read rows stored after a cursor, in stored order. Not unique:
# on PostgreSQL a unique index must hold the partition key (migration 0004);
# seq is unique by construction (one counter row hands the numbers out).
Index("ix_messages_seq", messages.c.seq)
# The reaper walks expired rows oldest first, in (expires_at, id) keyset order.
Index("ix_messages_expires_at", messages.c.expires_at, messages.c.id)


# Repeats of one failure (kind, project, event, resource), counted losslessly
# (see store/series.py). The id derives from that key, so concurrent
# collectors upsert the same row; an unset resource is '' as in messages.
message_series = Table(
    "message_series",
    metadata,
    Column("id", _key(36), primary_key=True),
    Column("kind", _key(16), nullable=False),
    Column("project_id", _key(255), nullable=True),
    Column("event_id", _key(255), nullable=False),
    Column("resource_uuid", _key(255), nullable=False),
    # The latest occurrence's, as are the catalog ids the text comes from.
    Column("resource_type", _key(36), nullable=False),
    Column("message_level", _key(255), nullable=False),
    Column("action_id", _key(10), nullable=True),
    Column("detail_id", _key(10), nullable=True),
    Column("count", BigInteger(), nullable=False),
    # Of count, the occurrences storm control did not store as rows.
    Column("suppressed", BigInteger(), nullable=False),
    Column("first_seen", Timestamp, nullable=False),
    Column("last_seen", Timestamp, nullable=False),
    # JSON array of the most recent request ids, newest first.
    Column("request_ids", Text(), nullable=False),
    **MYSQL_TABLE,
)
Index("ix_message_series_project_last_seen", message_series.c.project_id,
      message_series.c.last_seen, message_series.c.id)
Index("ix_message_series_last_seen", message_series.c.last_seen, message_series.c.id)

# Storm control's windows: rows stored per scope ("project" or "event") in
# the window that started at window_start (see store/series.py).
message_storm = Table(
    "message_storm",
    metadata,
    Column("scope", _key(600), primary_key=True),
    Column("window_start", Timestamp, nullable=False),
    Column("stored", Integer(), nullable=False),
    **MYSQL_TABLE,
)

# Jobs one node at a time may run (migration 0009): a row per job, taken by a
# compare-and-set of its holder and expiry (store/leases.py). The reaper's
# pass uses it on MariaDB, where Galera replicates neither GET_LOCK() nor
# table locks but certifies every row change across the nodes.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False, server_default=""),
    Column("expires_at", Timestamp, nullable=True),
    **MYSQL_TABLE,
)

# --- Webhook subscriptions (migration 0006, usermessages.webhooks) ---
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=False, server_default=""),
    Column("url", String(2048), nullable=False),
    Column("secret", String(255), nullable=False),
    # Filters: exact matches, '' for any.
    Column("message_level", String(255), nullable=False, server_default=""),
    Column("event_id", String(255), nullable=False, server_default=""),
    Column("resource_type", String(36), nullable=False, server_default=""),
    Column("enabled", Boolean(), nullable=False, server_default=true()),
    Column("disabled_reason", String(255), nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    # The last message seq delivered (2xx) or given up on: delivery resumes after it.
    Column("cursor", BigInteger(), nullable=False),
    Column("failures", Integer(), nullable=False, server_default="0"),
    Column("failing_since", Timestamp, nullable=True),
    Column("next_attempt_at", Timestamp, nullable=True),
    # A deliverer's claim: another deliverer leaves the subscription alone until then.
    Column("lease_until", Timestamp, nullable=True),
    **MYSQL_TABLE,
)
Index("ix_webhooks_project", webhooks.c.project_id, webhooks.c.created_at)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("webhook_id", String(36), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("attempt", Integer(), nullable=False),
    # The receiver's status code, or the class of the error that stopped the attempt.
    Column("status_code", Integer(), nullable=True),
    Column("error", String(64), nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    **MYSQL_TABLE,
)
Index("ix_webhook_deliveries_webhook", webhook_deliveries.c.webhook_id, webhook_deliveries.c.id)

# --- Collectors' announcements (migration 0010, store/collectors.py) ---
collectors = Table(
    "collectors",
    metadata,
    # host:pid: one row a collector process.
    Column("name", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    # The schema revision the collector's release was built for.
    Column("schema", String(32), nullable=False),
    # The envelope formats it reads, space-separated ("content type;v=version").
    Column("reads", String(255), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("seen_at", Timestamp, nullable=False),
    **MYSQL_TABLE,
)
Index("ix_collectors_seen_at", collectors.c.seen_at)

# --- What every API process and node shares (migration 0011) ---
# A slot of a stream or export cap (web/limits.py) is a lease row: its holder (one
# process) renews it while the response runs and deletes it when the response
# ends; a process that dies stops renewing, and its leases lapse at expires_at.
slot_leases = Table(
    "slot_leases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("project_id", String(255), nullable=False),
    Column("holder", String(255), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    **MYSQL_TABLE,
)
Index("ix_slot_leases_kind_project", slot_leases.c.kind, slot_leases.c.project_id)
Index("ix_slot_leases_holder", slot_leases.c.holder)

# One row per kind of slot. Taking a slot first bumps its kind's count, which
# row-locks it until commit: the takers of one kind take turns across every
# process, so two never pass the same free slot (as message_seq does for inserts).
slot_kinds = Table(
    "slot_kinds",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("acquired", BigInteger(), nullable=False),
    **MYSQL_TABLE,
)

# The Event Viewer's server-side sessions (keystone mode, viewer/sessions.py),
# by a hash of the cookie's random id, their data encrypted with a key derived
# from it: what the table holds opens nothing without the browser's cookie.
viewer_sessions = Table(
    "viewer_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("data", Text(), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    **MYSQL_TABLE,
)
Index("ix_viewer_sessions_expires_at", viewer_sessions.c.expires_at)
