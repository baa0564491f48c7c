"""``usermessages-status upgrade check``: each check's success, warning and failure, and
the community goal's exit codes (0, 1, 2, 255), from the real command.

The stores are real (SQLite, PostgreSQL); a real collector on a real RabbitMQ
announces itself for the all-clear; the other announcements are written by the same
store function a collector uses, to stand for collectors of other releases.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from usermessages import envelope
from usermessages.collector import Collector
from usermessages.store import collectors, migrate, partitions
from usermessages.store import engine as store_engine
from usermessages.store.messages import utcnow

STATUS = Path(sys.executable).parent / "usermessages-status"
USERMESSAGES = Path(sys.executable).parent / "usermessages"
ALL = ("Database schema", "Partitions", "Pack format", "Collector versions",
       "Deprecated options", "Policy File JSON to YAML Migration")
SUCCESS, WARNING, FAILURE = 0, 1, 2


def _status(conf: Path) -> tuple[int, dict[str, tuple[int, Any]]]:
    """Exit code, and each check's (result, details) from --json (details: a str, or None
    on success)."""
    env = {**os.environ}
    env.pop("USERMESSAGES_CONFIG", None)
    ran = subprocess.run([str(STATUS), "--config-file", str(conf), "upgrade", "check",
                          "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in ran.stderr, ran.stderr
    checks = json.loads(ran.stdout)["checks"]
    assert tuple(c["check"] for c in checks) == ALL
    return ran.returncode, {c["check"]: (c["result"], c["details"]) for c in checks}


def _conf(tmp_path: Path, url: str, extra: str = "") -> Path:
    conf = tmp_path / f"usermessages-{uuid.uuid4().hex[:6]}.conf"
    conf.write_text(f"[database]\nconnection = {url}\n{extra}")
    return conf


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    migrate.upgrade(store_engine.connect(url))
    return url


def _announce(url: str, **changes: Any) -> None:
    """A collector's announcement, as the collector writes it, with ``changes``."""
    now = utcnow()
    found = collectors.Announcement(f"other:{uuid.uuid4().hex[:6]}", "other",
                                    version("usermessages"), migrate.head(), envelope.READS,
                                    now, now)
    engine = store_engine.connect(url)
    with engine.begin() as conn:
        collectors.announce(conn, replace(found, **changes))
    engine.dispose()


def test_a_ready_deployment_passes_every_check_and_exits_0(
        tmp_path: Path, postgresql_url: str, rabbitmq_url: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('"message:export": "rule:context_is_admin"\n')
    conf = _conf(tmp_path, postgresql_url, f"[api]\npolicy_file = {policy}\n")
    # As an operator upgrades: db upgrade first (it makes the partitions ahead)...
    upgraded = subprocess.run([str(USERMESSAGES), "db", "upgrade", "--config", str(conf)],
                              capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    # ... then a collector of this release consumes, and says so.
    engine = store_engine.connect(postgresql_url)
    stop = threading.Event()
    collector = Collector(rabbitmq_url, engine, ttl=2592000)
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                if collectors.seen_since(conn, utcnow() - collectors.LIVE):
                    break
            assert time.monotonic() < deadline, "the collector never announced itself"
            time.sleep(0.1)
        code, checks = _status(conf)
    finally:
        stop.set()
        thread.join(30)
        engine.dispose()
    assert {name: result for name, (result, _) in checks.items()} == dict.fromkeys(ALL,
                                                                                   SUCCESS)
    assert code == 0
    assert checks["Database schema"][1] == f"at revision {migrate.head()}"
    assert checks["Pack format"][1] == f"1 live collector(s) read {envelope.PACK_FORMAT}"
    assert checks["Collector versions"][1] == f"1 live collector(s) run {version('usermessages')}"
    assert checks["Partitions"][1].endswith("those of the next days' inserts are made")


def test_the_schema_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    conf = _conf(tmp_path, url)
    code, checks = _status(conf)
    assert code == 2
    assert checks["Database schema"] == (
        FAILURE, "the database has no schema: run `usermessages db upgrade`")
    engine = store_engine.connect(url)
    migrate.upgrade(engine, "0006")
    result, details = _status(conf)[1]["Database schema"]
    assert (result, details) == (FAILURE, f"at revision 0006; this release needs "
                                          f"{migrate.head()}: run `usermessages db upgrade`")
    migrate.upgrade(engine)
    assert _status(conf)[1]["Database schema"] == (SUCCESS, f"at revision {migrate.head()}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    result, details = _status(conf)[1]["Database schema"]
    assert result == FAILURE and "0999, which this release does not know" in details
    engine.dispose()


def test_an_unreachable_database_fails_the_checks_that_read_it_in_one_line(
        tmp_path: Path) -> None:
    conf = _conf(tmp_path, "postgresql://usermessages@127.0.0.1:1/none")
    code, checks = _status(conf)
    assert code == 2
    for name in ("Database schema", "Partitions", "Pack format", "Collector versions"):
        result, details = checks[name]
        assert result == FAILURE and details.startswith(
            "cannot read the database at postgresql+psycopg://usermessages@127.0.0.1:1/none: "
            ), details
        assert "\n" not in details and "Connection refused" in details


def _restricted(admin_url: str, database_url: str) -> str:
    """A role that may read and write the tables but neither create nor attach tables."""
    role = f"limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public '
                     f'TO "{role}"')
    return database_url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)


def test_the_partitions_check(tmp_path: Path, postgresql_admin_url: str,
                              postgresql_url: str) -> None:
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)  # the schema alone: no partition made yet
    # The owner may make them on demand: a success that says so.
    owner = _conf(tmp_path, postgresql_url)
    result, details = _status(owner)[1]["Partitions"]
    assert (result, details) == (SUCCESS, "0 daily partition(s); those of the next days' "
                                          "inserts are made on demand by the first insert "
                                          "of the day")
    # A role that may not make them: inserts would fail.
    limited = _conf(tmp_path, _restricted(postgresql_admin_url, postgresql_url))
    result, details = _status(limited)[1]["Partitions"]
    assert result == FAILURE, details
    assert "inserts will fail" in details and "the database user may not make one" in details
    # The owner makes them ahead (what `usermessages db upgrade` does): the role is fine.
    partitions.make_ahead(engine, utcnow(), 2592000)
    assert _status(limited)[1]["Partitions"] == (
        SUCCESS, f"{partitions.AHEAD_DAYS + 1} daily partition(s); those of the next days' "
                 "inserts are made")
    # A day that expired whole is still there: no reaper has run.
    with engine.begin() as conn:
        partitions.create(conn, (utcnow() - dt.timedelta(days=3)).date())
    result, details = _status(owner)[1]["Partitions"]
    assert result == WARNING and "1 partition(s) hold only expired messages" in details
    engine.dispose()


def test_sqlite_has_no_partitions_to_check(tmp_path: Path) -> None:
    assert _status(_conf(tmp_path, _sqlite(tmp_path)))[1]["Partitions"] == (
        SUCCESS, "SQLite keeps one table: no partitions")


def test_the_pack_format_and_collector_version_checks(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    conf = _conf(tmp_path, url)
    # Nobody announced: nothing can be told.
    code, checks = _status(conf)
    assert code == 1
    for name in ("Pack format", "Collector versions"):
        assert checks[name][0] == WARNING and "no collector announced itself" in checks[name][1]
    # An older collector of the same schema: a warning about versions only.
    _announce(url, name="c1:1", version="0.0.9")
    checks = _status(conf)[1]
    assert checks["Pack format"][0] == SUCCESS
    assert checks["Collector versions"] == (
        WARNING, f"c1:1 (0.0.9) run 0.0.9; this release is {version('usermessages')}: "
                 "upgrade them")
    # One that reads no packs: producers of this release would be dead-lettered.
    _announce(url, name="c2:2", version="0.0.8", reads=(envelope.FORMAT,))
    code, checks = _status(conf)
    assert code == 2
    result, details = checks["Pack format"]
    assert result == FAILURE and details.startswith(
        f"c2:2 (0.0.8) read {envelope.FORMAT}, not {envelope.PACK_FORMAT}")
    # One built for another schema than the database's.
    _announce(url, name="c3:3", schema="0006")
    result, details = _status(conf)[1]["Collector versions"]
    assert result == FAILURE and "run a release built for schema 0006" in details
    # Announcements older than a few minutes are collectors that stopped.
    engine = store_engine.connect(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE collectors SET seen_at = :old"),
                     {"old": utcnow() - collectors.LIVE - dt.timedelta(seconds=5)})
    engine.dispose()
    assert _status(conf)[1]["Pack format"][0] == WARNING


def test_the_deprecated_options_check(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    assert _status(_conf(tmp_path, url))[1]["Deprecated options"] == (SUCCESS, None)
    conf = _conf(tmp_path, url, (
        f"[DEFAULT]\nlogfile = {tmp_path}/x.log\n"
        "[oslo_policy]\nenforce_scope = true\nenforce_new_defaults = false\n"
        "[keystone_authtoken]\nmemcache_servers = 127.0.0.1:11211\n"
        "[oslo_messaging_rabbit]\nkombu_reconnect_timeout = 30\ndirect_mandatory_flag = true\n"))
    code, checks = _status(conf)
    result, details = checks["Deprecated options"]
    assert result == WARNING
    for said in ("[DEFAULT] logfile is now log_file (oslo.log)",
                 "[oslo_policy] enforce_scope is ignored",
                 "[oslo_policy] enforce_new_defaults = false brings back Cinder's deprecated",
                 "[keystone_authtoken] memcache_servers is now memcached_servers",
                 "[oslo_messaging_rabbit] kombu_reconnect_timeout is now "
                 "kombu_missing_consumer_retry_timeout",
                 "[oslo_messaging_rabbit] direct_mandatory_flag is deprecated for removal"):
        assert said in details, details


def test_the_policy_file_check(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    as_json = tmp_path / "policy.json"
    as_json.write_text('{"message:export": "rule:context_is_admin"}')
    result, details = _status(_conf(tmp_path, url, f"[api]\npolicy_file = {as_json}\n"))[1][
        "Policy File JSON to YAML Migration"]
    assert result == FAILURE and "oslopolicy-convert-json-to-yaml" in details
    as_yaml = tmp_path / "policy.yaml"
    as_yaml.write_text('"message:export": "rule:context_is_admin"\n')
    assert _status(_conf(tmp_path, url, f"[api]\npolicy_file = {as_yaml}\n"))[1][
        "Policy File JSON to YAML Migration"] == (SUCCESS, None)


def test_a_config_that_does_not_load_is_255_in_one_line(tmp_path: Path) -> None:
    for text_, complaint in (("[database]\nconection = x\n", "unknown option [database] "
                                                              "conection"),
                             # oslo.config reads the file first, and says so.
                             ("no header\n", "No ':' or '=' found in assignment"),
                             ("[api]\nport = 0\n", "[api] port must be from 1 to 65535")):
        conf = tmp_path / "bad.conf"
        conf.write_text(text_)
        ran = subprocess.run([str(STATUS), "--config-file", str(conf), "upgrade", "check"],
                             capture_output=True, text=True, timeout=120)
        assert ran.returncode == 255, ran
        assert ran.stdout == "" and ran.stderr.count("\n") == 1, ran.stderr
        assert ran.stderr.startswith("Error: ") and complaint in ran.stderr, ran.stderr


def test_the_table_is_what_an_operator_reads(tmp_path: Path) -> None:
    conf = _conf(tmp_path, _sqlite(tmp_path))
    ran = subprocess.run([str(STATUS), "--config-file", str(conf), "upgrade", "check"],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 1
    assert "| Upgrade Check Results" in ran.stdout
    assert "| Check: Pack format" in ran.stdout and "| Result: Warning" in ran.stdout
