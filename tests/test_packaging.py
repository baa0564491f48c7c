"""`pip install usermessages` alone is the SDK: a real install into a fresh venv."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import importlib.util, sys
from usermessages import Action, Detail, Messenger, RequestContext, Resource
server = ["fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "jinja2",
          "oslo_policy", "oslo_config"]
print("installed:", [m for m in server if importlib.util.find_spec(m)])
messenger = Messenger.from_url("memory://", timeout=1)
mid = messenger.create(RequestContext(project_id="aaaa1111", user_id="alice"),
                       Action.SCHEDULE_ALLOCATE_VOLUME, resource_type=Resource.VOLUME,
                       detail=Detail.NO_BACKEND_AVAILABLE)
print("created:", messenger.stats.created, len(mid))
try:
    Messenger.from_url("sqlite:///x.sqlite")
except Exception as exc:
    print("db:", type(exc).__name__, exc)
"""


def test_the_sdk_installs_alone_without_server_code(tmp_path):
    # A copy of what the build reads, so it leaves nothing in the worktree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("usermessages", "blockstorage"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "--progress-bar", "off", str(src)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    out = subprocess.run([python, "-c", CHECK], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "installed: []"
    assert lines[1] == "created: 1 36"
    assert lines[2] == ("db: ConfigError a database URL needs the server extra (sqlalchemy is "
                        "not installed): pip install 'usermessages[server]', or give a bus URL")
    # The server commands say what is missing, in one line.
    for command, args in (("usermessages", ["serve"]), ("blockstorage", ["serve"])):
        ran = subprocess.run([env_dir / "bin" / command, *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 1, ran
        assert "needs the server extra" in ran.stderr and "Traceback" not in ran.stderr
    # The client and the catalog work without the server extra.
    ran = subprocess.run([env_dir / "bin" / "usermessages", "catalog", "list", "--format",
                          "json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    # The compiled translations ship in the package: no Babel, no build step.
    ran = subprocess.run([env_dir / "bin" / "usermessages", "catalog", "advice", "--lang", "ja",
                          "--format", "json"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "より小さいサイズか別のボリュームタイプを選ぶか" in ran.stdout
