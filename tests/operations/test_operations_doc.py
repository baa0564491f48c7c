"""docs/operations.md runs as written: its config file, then its commands against a
live `usermessages serve` started on that file (the only changes: 8776 -> the test's
port, `.venv/bin/` -> this venv's bin), with the outputs it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import servers
from usermessages.store import collectors
from usermessages.store import engine as store_engine
from usermessages.store.messages import utcnow

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
BIN = Path(sys.executable).parent


def _commands(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()
            if line.strip()]


def _run(command: str, cwd: Path, port: int) -> subprocess.CompletedProcess:
    command = command.replace("127.0.0.1:8776", f"127.0.0.1:{port}").replace(".venv/bin/",
                                                                             f"{BIN}/")
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_operations_page_runs_as_written(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    conf = re.search(r"```ini\n(.*?)```", text, flags=re.S)
    assert conf
    (tmp_path / "usermessages.conf").write_text(conf.group(1))
    upgrade, *commands = _commands(text)
    port = servers.free_port()
    assert _run(upgrade, tmp_path, port).returncode == 0
    process = subprocess.Popen([str(BIN / "usermessages"), "serve", "--config",
                                "usermessages.conf", "--port", str(port)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        servers.wait_serving(f"http://127.0.0.1:{port}", process, tmp_path / "none")
        engine = store_engine.connect(f"sqlite:///{tmp_path}/usermessages.sqlite")
        deadline = time.monotonic() + 30
        while True:  # the embedded collector says it consumes
            with engine.connect() as db:
                if collectors.seen_since(db, utcnow() - collectors.LIVE):
                    break
            assert time.monotonic() < deadline, "the embedded collector never announced"
            time.sleep(0.1)
        engine.dispose()
        outputs = {}
        for command in commands:
            ran = _run(command, tmp_path, port)
            assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
            outputs[command] = ran.stdout
    finally:
        servers.stop_process(process)
    said = list(outputs.values())
    assert said[0] == "OK\ndatabase: OK\nbus: OK"  # curl prints no newline after it
    assert '"detailed": false' in said[1] and '"detailed": true' in said[2]
    assert "at revision" in said[2] and "Path 'usermessages.disabled' was not found" in said[2]
    assert said[4] == "503\n"
    status = next(out for command, out in outputs.items() if "upgrade check" in command)
    assert status.count("Result: Success") == 6
    grep = next(out for command, out in outputs.items() if command.startswith("grep"))
    lines = grep.splitlines()
    assert len(lines) == 2 and "audit: delete message" in lines[0]
    assert all(" alice aaaa1111 " in line for line in lines)
