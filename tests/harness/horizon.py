"""A real Horizon 27 for the Event Viewer plugin's tests (own venv, Django's runserver).

Horizon's wheel has no manage.py: ours sits in a temp dir beside ``local/local_settings.py``
(Python puts manage.py's directory first on sys.path, so this ``local`` package shadows
Horizon's own) and beside a link to the plugin package; the plugin's ``enabled/`` files
are copied into an ``enabled/`` folder that local_settings adds to Horizon's. Static files
are collected and compressed offline once (online compression costs about a second a page).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.harness.servers import free_port, stop_process

REPO = Path(__file__).resolve().parent.parent.parent
PLUGIN = REPO / "usermessages_dashboard"

MANAGE = """import os, sys
if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openstack_dashboard.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"""
LOCAL_SETTINGS = """import os
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
SECRET_KEY = 'horizon-test-only'
OPENSTACK_HOST = '127.0.0.1'
OPENSTACK_KEYSTONE_URL = '{keystone}'
CACHES = {{'default': {{'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}}}
SESSION_ENGINE = 'django.contrib.sessions.backends.signed_cookies'
COMPRESS_OFFLINE = True
STATIC_ROOT = os.path.join(_HERE, 'static')
LOGGING = {{'version': 1, 'disable_existing_loggers': False,
           'handlers': {{'console': {{'class': 'logging.StreamHandler'}}}},
           'loggers': {{n: {{'handlers': ['console'], 'level': 'WARNING', 'propagate': False}}
                       for n in ('django.request', 'horizon', 'openstack_dashboard',
                                 'openstack_auth', 'usermessages_dashboard')}}}}
# Land on the Event Viewer after sign-in: the default landing, the Overview, needs compute
# and network in the catalog (stubs), and this cloud has only identity and block storage.
LOGIN_REDIRECT_URL = '/project/event_viewer/'
from openstack_dashboard.local import enabled as _local_enabled
_local_enabled.__path__.append(os.path.join(_HERE, 'enabled'))
"""
def horizon_venv() -> Path:
    """The Horizon venv, created by scripts/venv-horizon on first use."""
    venv = Path(os.environ.get("HORIZON_VENV", REPO / ".venv-horizon"))
    subprocess.run([str(REPO / "scripts" / "venv-horizon")], check=True,
                   env={**os.environ, "HORIZON_VENV": str(venv)})
    return venv


class Horizon:
    """Horizon with the plugin enabled, served by ``manage.py runserver`` on 127.0.0.1."""

    def __init__(self, venv: Path, keystone_url: str) -> None:
        self.python = str(venv / "bin" / "python")
        self.root = Path(tempfile.mkdtemp(prefix="um-hz-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        (self.root / "manage.py").write_text(MANAGE)
        (self.root / "local").mkdir()
        (self.root / "local" / "__init__.py").write_text("")
        (self.root / "local" / "local_settings.py").write_text(
            LOCAL_SETTINGS.format(keystone=keystone_url))
        (self.root / "usermessages_dashboard").symlink_to(PLUGIN)
        enabled = self.root / "enabled"
        enabled.mkdir()
        for path in (PLUGIN / "enabled").glob("_*.py"):
            shutil.copy(path, enabled / path.name)

    def _manage(self, *args: str) -> None:
        result = subprocess.run([self.python, "manage.py", *args], cwd=self.root,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-3000:]}")

    def prepare(self) -> None:
        self._manage("collectstatic", "--noinput", "-v0")
        self._manage("compress", "--force", "-v0")

    def start(self, timeout: float = 60) -> None:
        with open(self.root / "run.log", "wb") as log:
            self.process = subprocess.Popen(
                [self.python, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--insecure",
                 "--noreload"], cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"horizon exited: {self.logs()}")
            try:
                if httpx.get(self.url + "/auth/login/", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"horizon did not start: {self.logs()}")
            time.sleep(0.1)

    def logs(self) -> str:
        path = self.root / "run.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def remove(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def horizon_server(keystone_url: str) -> Iterator[Horizon]:
    """Prepare and serve a throwaway Horizon; yield its handle; stop and remove it."""
    horizon = Horizon(horizon_venv(), keystone_url)
    try:
        horizon.prepare()
        horizon.start()
        yield horizon
    finally:
        horizon.remove()
