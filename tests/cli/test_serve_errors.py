"""Start-up errors of `usermessages serve` and `blockstorage serve`: one line, no banner
that was never true, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

BANNERS = ("usermessages API on", "block storage + messages API on")


def run(args: list[str], cwd) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("command", [["usermessages.cli.main"], ["blockstorage.cli"]])
def test_a_port_in_use_fails_before_any_banner(tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run([*command, "serve", "--port", str(port),
                   "--db", f"sqlite:///{tmp_path}/um.sqlite"], tmp_path)
    assert out.returncode == 1, out
    assert out.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(is another server running? choose another with --port)")
    assert not any(banner in out.stdout for banner in BANNERS), out.stdout


def test_an_unwritable_state_store_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = run(["blockstorage.cli", "serve", "--port", "1",
               "--db", f"sqlite:///{tmp_path}/um.sqlite",
               "--state-db", f"sqlite:///{locked}/state/bs.sqlite"], tmp_path)
    assert out.returncode == 1, out
    assert out.stderr.strip() == (
        f"Error: cannot open the state store sqlite:///{locked}/state/bs.sqlite: "
        "unable to open database file")
    assert "Traceback" not in out.stderr


def test_a_config_file_without_a_section_header_is_one_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port = 9000\n")
    for command in (["usermessages.cli.main", "reap"], ["blockstorage.cli", "serve"]):
        out = run([*command, "--config", str(conf)], tmp_path)
        assert out.returncode == 1, out
        assert out.stderr.strip() == (
            f"Error: config file {conf}, line 1: 'port = 9000' comes before any [section] "
            "header; options go under [DEFAULT], [database], [api]... "
            "(see `usermessages config sample`)")
