"""The README's runnable example runs, and the two commands are what CI runs."""

from __future__ import annotations

import os
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
    assert out.stdout.strip() == f"recorded {row.id}"
    assert row.event_id == "VOLUME_VOLUME_001_003"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make serve" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _commands(block: str) -> list[str]:
    """A shell block's commands, continuation lines joined."""
    return [c for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def _shell(command: str, home: Path, port: int) -> subprocess.CompletedProcess:
    command = command.replace("127.0.0.1:8776", f"127.0.0.1:{port}")
    if not (ROOT / ".venv" / "bin" / "cinder").exists():
        command = command.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    # USERMESSAGES_URL: our CLI's default URL, on the test's port.
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "COLUMNS": "400",
           "LANG": "C.UTF-8", "USERMESSAGES_URL": f"http://127.0.0.1:{port}"}
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_readme_shell_blocks_work_as_written(tmp_path):
    """README's shell blocks against a live all-in-one (what `make serve` runs, started
    here on a free port: the only change to the commands is 8776 -> that port (also in
    USERMESSAGES_URL, our CLI's default), and `.venv/bin/` -> this venv's bin when the
    tests run from another venv). The block
    of the two `make` commands is what CI runs, so it is not run again here."""
    from tests.blockstorage.conftest import blockstorage_server
    from tests.harness import servers

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", readme, flags=re.S)
    shell = [body for lang, body in blocks if lang == "sh"]
    # The Keystone block runs against a real Keystone (tests/keystone/test_readme_keystone.py).
    [demo] = [body for body in shell if "cinder create 5000" in body]
    [read] = [body for body in shell if "message list" in body]
    # The demo's expected output is README's plain block right after it.
    expected = blocks[[b for _, b in blocks].index(demo) + 1][1].strip()
    [example] = [body for lang, body in blocks if lang == "python"]
    port = servers.free_port()
    with blockstorage_server("", workdir=tmp_path, port=port):
        out = _shell(demo, tmp_path, port)
        assert out.returncode == 1, out  # the volume goes to error, as README says
        assert expected in out.stderr, out.stderr
        # The SDK example, where the server keeps its store (its cwd).
        recorded = subprocess.run([sys.executable, "-c", example], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=60)
        assert recorded.returncode == 0, recorded.stderr
        message_id = recorded.stdout.split()[-1]
        commands = _commands(read)
        assert len(commands) == 3
        for command in commands:
            out = _shell(command, tmp_path, port)
            assert out.returncode == 0, (command, out)
            assert message_id in out.stdout and "VOLUME_VOLUME_001_003" in out.stdout, (
                command, out.stdout)
