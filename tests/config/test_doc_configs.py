"""Every config block README.md and docs/ show for usermessages loads as written.

A deployer copies these blocks; an inline comment (oslo.config has none) or a misspelt
option would only surface at their start-up.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from usermessages import config

ROOT = Path(__file__).resolve().parents[2]
OURS = ("[api]", "[database]", "[bus]", "[collector]", "[sdk]", "[zaqar]", "[viewer]")


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"```ini\n(.*?)```", text, flags=re.S):
            body = textwrap.dedent(match.group(1))
            if any(line.strip() in OURS for line in body.splitlines()):
                found.append((f"{path.name}:{text[:match.start()].count(chr(10)) + 1}", body))
    return found


@pytest.mark.parametrize(("where", "body"), _blocks(), ids=[w for w, _ in _blocks()])
def test_config_blocks_in_the_docs_load(tmp_path, where, body):
    path = tmp_path / "shown.conf"
    path.write_text(body)
    config.load(path)  # raises ConfigError naming the problem
