"""docs/cli.md is true: its table of columns is the commands' own, its commands run."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import usermessages.cli
from tests.harness import servers
from usermessages import Action, Detail, Messenger, RequestContext, Resource
from usermessages.cli.messages import MESSAGES
from usermessages.cli.output import View

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"
BEGIN, END = "<!-- columns: begin -->\n", "<!-- columns: end -->\n"


def views() -> list[View]:
    """Every View the command modules declare."""
    found: list[View] = []
    for info in pkgutil.iter_modules(usermessages.cli.__path__):
        module = importlib.import_module(f"usermessages.cli.{info.name}")
        found += [v for v in vars(module).values() if isinstance(v, View) and v not in found]
    return sorted(found, key=lambda view: view.command)


def columns_table() -> str:
    lines = ["| command | shown by default | more with `-c` | a narrow table leaves out, "
             "first to last |", "|---|---|---|---|"]
    for view in views():
        default = ", ".join(view.shown) if view.shown else "every field, one row each"
        more = ", ".join(c.field for c in view.columns if c.field not in view.shown)
        left = (f"{', '.join(view.leaves_out)}; never {view.priority[0]}" if view.shown
                else "nothing")
        lines.append(f"| `{view.command}` | {default} | {more or '-'} | {left} |")
    return "\n".join(lines) + "\n"


def test_the_columns_table_is_the_commands_own():
    text = DOC.read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    assert generated == columns_table(), "docs/cli.md's table is now:\n" + columns_table()


def test_readme_says_which_columns_message_list_leaves_out_first():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    *first, last = [f"`{field}`" for field in MESSAGES.leaves_out]
    assert (f"(`message list`: {', '.join(first)}, then {last}; never `{MESSAGES.priority[0]}`)"
            in readme)


def test_the_commands_run_as_written(tmp_path):
    """docs/cli.md's shell blocks against a live API, the only change being its address."""
    db_url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        message_id = Messenger.from_url(db_url).create(
            RequestContext(project_id="aaaa1111", user_id="alice", request_id="req-doc"),
            Action.SCHEDULE_ALLOCATE_VOLUME, resource_type=Resource.VOLUME,
            resource_uuid="0e0e0e0e-0000-4000-8000-000000000001",
            detail=Detail.NO_BACKEND_AVAILABLE)
        blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
        commands = [c for block in blocks for c in block.replace("\\\n", " ").splitlines()
                    if c.strip() and not c.startswith("#")]
        assert len(commands) >= 5
        env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "LANG": "C.UTF-8",
               "HOME": str(tmp_path), "USERMESSAGES_URL": base, "COLUMNS": "80"}
        for command in commands:
            ran = subprocess.run(["bash", "-c", command], env=env, capture_output=True,
                                 text=True, timeout=60, cwd=tmp_path)
            assert ran.returncode == 0, (command, ran.stderr)
            assert message_id in ran.stdout or "VOLUME_VOLUME_001_003" in ran.stdout, (
                command, ran.stdout)
