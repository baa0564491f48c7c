"""The repository itself: nothing committed may point at the machine it was made on.

A symlink into /tmp once broke `make bench` on every fresh clone (`python -m venv`
stopped with "File exists"); this catches the next one before it lands.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_symlinks() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    return [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000 ")]


def test_no_committed_symlink_leaves_the_repository() -> None:
    escaping = []
    for name in _tracked_symlinks():
        target = os.readlink(ROOT / name)
        resolved = (ROOT / name).parent.joinpath(target).resolve()
        if os.path.isabs(target) or ROOT not in (resolved, *resolved.parents):
            escaping.append(f"{name} -> {target}")
    assert not escaping, f"committed symlinks pointing outside the repository: {escaping}"


def test_no_committed_file_names_a_machine_path() -> None:
    # Paths only this machine has (scratch dirs, worktrees) must not be baked in.
    suspicious = ("/tmp/cinder-venv", "/work/main", "/work/wt-")
    listing = subprocess.run(["git", "grep", "-l", "-I", "-F", *sum((["-e", s] for s in
                              suspicious), []), "--", ".", ":!tests/test_repository.py"],
                             cwd=ROOT, capture_output=True, text=True)
    assert listing.stdout == "", f"files naming machine paths: {listing.stdout}"
