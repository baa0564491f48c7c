"""Shared fixtures: the store on real SQLite, PostgreSQL and MariaDB, and the app over it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.harness import servers
from tests.harness.cloud import Cloud, provision
from tests.harness.galera import Galera, galera_cluster
from tests.harness.haproxy import HAProxy, haproxy
from tests.harness.mariadb import MariaDB, mariadb_server
from tests.harness.rabbitmq_cluster import Cluster
from tests.harness.rabbitmq_cluster import rabbitmq_cluster as start_rabbitmq_cluster
from tests.harness.zaqar import Zaqar, zaqar_server
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import engine as store_engine
from usermessages.store import migrate

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgresql_admin_url() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the whole run."""
    with servers.postgresql_server() as url:
        yield url


@pytest.fixture
def postgresql_url(postgresql_admin_url: str) -> str:
    """A fresh, empty database on the shared cluster."""
    name = f"t{next(_counter)}_{uuid.uuid4().hex[:8]}"
    return servers.create_database(postgresql_admin_url, name)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """One throwaway MariaDB server for the whole run."""
    with mariadb_server() as server:
        yield server


@pytest.fixture
def mariadb_url(mariadb: MariaDB) -> str:
    """A fresh, empty database (and its own user) on the shared server."""
    return mariadb.create_database(f"t{next(_counter)}_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def mariadb_head(mariadb: MariaDB) -> str:
    """A database the migrations brought to head, once: what the engine fixture copies."""
    url = mariadb.create_database("head_template")
    eng = store_engine.connect(url)
    migrate.upgrade(eng)
    eng.dispose()
    return "head_template"


@pytest.fixture(scope="session")
def galera() -> Iterator[tuple[Galera, HAProxy]]:
    """A three-node Galera cluster behind HAProxy (docs/configuration.md's stanza), once:
    10 to 15 s to start. Tests that kill a node bring it back before they end."""
    with galera_cluster() as cluster, haproxy([node.port for node in cluster.nodes]) as proxy:
        yield cluster, proxy


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty store on each engine the service supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/usermessages.sqlite"
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on each store several processes share (not SQLite)."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(db_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on a store migrated to head.

    On MariaDB the tables are copied from a database migrated once per run
    (``mariadb_head``): running the DDL of every migration costs seconds
    there per test. The migrations' own tests run them from empty.
    """
    eng = store_engine.connect(db_url)
    if eng.dialect.name == "mysql":
        server: MariaDB = request.getfixturevalue("mariadb")
        server.copy_tables(request.getfixturevalue("mariadb_head"), eng.url.database or "")
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_connection=db_url)


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """An HTTP client over the real app and the real store (no server process)."""
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[servers.RabbitMQ]:
    """One throwaway RabbitMQ for the whole run (tests that stop it start their own)."""
    with servers.rabbitmq_broker() as broker:
        yield broker


@pytest.fixture(scope="session")
def rabbitmq_url(rabbitmq: servers.RabbitMQ) -> str:
    """The session RabbitMQ's AMQP URL."""
    return rabbitmq.url


@pytest.fixture(scope="session")
def rabbitmq_cluster() -> Iterator[Cluster]:
    """One three-node RabbitMQ cluster for the whole run (about 25 s to start)."""
    with start_rabbitmq_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def zaqar() -> Iterator[Zaqar]:
    """One real Zaqar 23 on a throwaway Redis for the whole run."""
    with zaqar_server() as server:
        yield server


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    """One real Keystone for the whole run (keystone and Horizon tests), a cloud in it."""
    with servers.keystone_server() as keystone:
        yield provision(keystone)
