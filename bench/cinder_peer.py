"""Cinder 29, the benchmarks' peer: its own virtualenv, its config, its schema.

Installed from PyPI into bench/.cinder-venv (a benchmark peer, never a project
dependency); `cinder-manage db sync` makes its tables exactly as a deployment has them.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

CINDER_VERSION = "29.0.0"
CINDER_VENV = Path(__file__).resolve().parent / ".cinder-venv"


# The database drivers Cinder's oslo.db uses here: psycopg2 for PostgreSQL, PyMySQL
# (oslo.db's default) for MariaDB.
DRIVERS = ("psycopg2-binary", "PyMySQL")


def ensure_cinder() -> Path:
    python = CINDER_VENV / "bin" / "python"
    if not (CINDER_VENV / "bin" / "cinder-api").exists():
        print(f"installing cinder=={CINDER_VERSION} into {CINDER_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(CINDER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-U", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"cinder=={CINDER_VERSION}",
                        *DRIVERS], check=True)
    elif subprocess.run([str(python), "-c", "import pymysql"], capture_output=True).returncode:
        # A venv made before the MariaDB benchmarks: add its driver.
        subprocess.run([str(python), "-m", "pip", "install", "-q", *DRIVERS[1:]], check=True)
    return python


def cinder_url(url: str) -> str:
    """A store URL as Cinder's oslo.db takes it (its psycopg2 for PostgreSQL)."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def cinder_conf(workdir: Path, db_url: str, port: int | None = None) -> Path:
    conf = workdir / f"cinder-{uuid.uuid4().hex[:6]}.conf"
    etc = next(CINDER_VENV.glob("etc/cinder"), CINDER_VENV / "etc" / "cinder")
    conf.write_text(f"""[DEFAULT]
auth_strategy = noauth
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = {port or 0}
osapi_volume_workers = 1
api_paste_config = {etc}/api-paste.ini
resource_query_filters_file = {etc}/resource_filters.json
transport_url = fake:/
state_path = {workdir}
log_file = {workdir}/cinder-api.log
[database]
connection = {db_url}
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = {workdir}
""")
    return conf


def cinder_db_sync(conf: Path) -> None:
    subprocess.run([str(CINDER_VENV / "bin" / "cinder-manage"), "--config-file", str(conf),
                    "db", "sync"], check=True, capture_output=True)
