"""Every shell block of docs/reference-service.md's use cases, run as written.

The blocks run in one bash session (`set -e`: a command that fails stops it, so a
failure the docs expect is written `|| true`), in document order, against a live
all-in-one on the default configuration. Only the port is changed (127.0.0.1:8776 ->
a free port), and, when the tests run from a venv other than the checkout's `.venv`,
`$PWD/.venv/bin` -> that venv's bin. Each event id a block names must be in its output.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.blockstorage.conftest import blockstorage_server
from tests.harness import servers

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reference-service.md"
EVENT_ID = re.compile(r"VOLUME_[A-Z_]+?_\d{3}_\d{3}")


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def run_blocks(blocks: list[str], port: int, home: Path, timeout: float) -> list[str]:
    """Run the blocks in one bash session; return each block's output (stdout+stderr)."""
    bin_dir = Path(sys.executable).parent
    script = "set -e\n"
    for number, block in enumerate(blocks):
        block = block.replace("127.0.0.1:8776", f"127.0.0.1:{port}").replace(
            "--port 8776", f"--port {port}")
        if not (ROOT / ".venv" / "bin" / "cinder").exists():
            block = block.replace("$PWD/.venv/bin", str(bin_dir))
        script += f"echo '@@ block {number}'\n{block}\n"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    # Its own process group: servers the blocks start in the background go with it.
    process = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        stdout, _ = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
    outputs = re.split(r"^@@ block \d+\n", stdout, flags=re.M)[1:]
    assert process.returncode == 0 and len(outputs) == len(blocks), (
        f"exit {process.returncode} after block {len(outputs) - 1}:\n"
        f"{blocks[len(outputs) - 1] if outputs else ''}\n--- output:\n{stdout[-4000:]}")
    return outputs


def test_every_use_case_command_works_as_written(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Each use case, command by command", 1)[1].split("\n## ", 1)[0]
    blocks = shell_blocks(section)
    assert len(blocks) >= 8
    port = servers.free_port()
    with blockstorage_server("", workdir=tmp_path, port=port):
        outputs = run_blocks(blocks, port, tmp_path, timeout=280)
    for block, output in zip(blocks, outputs, strict=True):
        assert "Traceback" not in output and "usage: cinder" not in output, output
        for event_id in EVENT_ID.findall(block):
            assert event_id in output, f"{event_id} not in the output of\n{block}\n{output}"


def test_the_split_shapes_work_as_written(rabbitmq_url, tmp_path):
    """The split shapes start their own processes; the test gives them its broker and a
    free port (amqp://guest:guest@127.0.0.1:5672// and 8776 are the only changes)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The split shapes, command by command", 1)[1].split("\n## ", 1)[0]
    blocks = [b.replace("amqp://guest:guest@127.0.0.1:5672//", rabbitmq_url)
              for b in shell_blocks(section)]
    assert len(blocks) == 4
    outputs = run_blocks(blocks, servers.free_port(), tmp_path, timeout=200)
    for block, output in zip(blocks, outputs, strict=True):
        assert "Traceback" not in output and "usage: cinder" not in output, output
        for event_id in EVENT_ID.findall(block):
            assert event_id in output, f"{event_id} not in the output of\n{block}\n{output}"
