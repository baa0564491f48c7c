"""Lists sort strings byte by byte on every store, whatever the database's locale
(migration 0008): SQLite, PostgreSQL in C.UTF-8, and PostgreSQL created in ICU en-US."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine

from tests.api.conftest import row
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, writer

# Capitals, '-' and '_' sort apart in byte order and together in en-US.
VALUES = ["req_b", "req-a", "Req-c", "req-B", "abc", "ABC", "a-b", "a_c", "0e0e", "volume",
          "VOLUME_BACKUP", "VOLUMEBACKUP"]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-icu-en-US"])
def any_locale_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/usermessages.sqlite"
    if request.param == "postgresql":
        return request.getfixturevalue("postgresql_url")
    admin = request.getfixturevalue("postgresql_admin_url")
    name = f"icu_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
                     "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
    return admin.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def seeded(any_locale_url: str) -> Iterator[Engine]:
    engine = store_engine.connect(any_locale_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        writer.insert(conn, [row("p1", minutes=i, request_id=v, resource_uuid=v)
                             for i, v in enumerate(VALUES)])
    yield engine
    engine.dispose()


def _sorted_by(engine: Engine, key: str, direction: str = "asc") -> list[str]:
    with engine.connect() as conn:
        return [getattr(r, key) for r in store.list_messages(conn, "p1", store.ListQuery(
            sort=((key, direction),)))]


@pytest.mark.parametrize("key", ["request_id", "resource_uuid"])
def test_lists_sort_in_byte_order_on_every_store(seeded: Engine, key: str) -> None:
    assert _sorted_by(seeded, key) == sorted(VALUES)  # Python compares code points
    assert _sorted_by(seeded, key, "desc") == sorted(VALUES, reverse=True)


def test_before_0008_an_en_us_database_sorted_by_its_locale(postgresql_admin_url: str) -> None:
    """What 0008 changes, and that its downgrade gives the locale's order back."""
    name = f"icu_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgresql_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
                     "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
    engine = store_engine.connect(postgresql_admin_url.rsplit("/", 1)[0] + f"/{name}")
    migrate.upgrade(engine, "0007")
    with engine.begin() as conn:
        writer.insert(conn, [row("p1", minutes=i, request_id=v, resource_uuid=v)
                             for i, v in enumerate(VALUES)])
    in_locale = _sorted_by(engine, "request_id")
    assert in_locale != sorted(VALUES)
    assert in_locale.index("req_b") < in_locale.index("req-a")  # en-US: '_' before '-'
    migrate.upgrade(engine)
    assert _sorted_by(engine, "request_id") == sorted(VALUES)
    migrate.downgrade(engine, "0007")
    assert _sorted_by(engine, "request_id") == in_locale
    engine.dispose()
