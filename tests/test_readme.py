"""The README's runnable example runs, and the two commands are what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate

ROOT = Path(__file__).resolve().parent.parent


def test_sdk_example_records_a_message(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    engine = store_engine.connect(f"sqlite:///{tmp_path}/usermessages.sqlite")
    migrate.upgrade(engine)
    out = subprocess.run([sys.executable, "-c", example], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with engine.connect() as conn:
        [row] = store.list_messages(conn, "aaaa1111", store.ListQuery())
    assert out.stdout.strip() == f"recorded {row['id']}"
    assert row["event_id"] == "VOLUME_VOLUME_001_003"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make serve" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
