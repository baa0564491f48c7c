"""docs/deployment.md as written: its INI loads with the values it promises, HAProxy
accepts its stanza, and its commands upgrade a real PostgreSQL and serve on it (with
the same file, only the database and the port pointed at the test's). The whole layout,
under load and losing a node of each tier, is tests/reliability/test_cloud_drill.py."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.harness import servers
from tests.harness.deployment import CONF, blocks, commands
from tests.harness.haproxy_http import HAPROXY
from usermessages import config


def test_the_ini_is_the_layout(tmp_path):
    [ini] = blocks("ini")
    path = tmp_path / "usermessages.conf"
    path.write_text(ini)
    settings = config.load(path)
    assert settings.workers == 0  # one per core
    assert settings.auth_strategy == "keystone" and settings.bus_queue_type == "quorum"
    assert settings.viewer_secret_key  # one key for every node
    assert settings.bus_url.count("@") == 3  # the three brokers
    assert not settings.collector_embedded  # `usermessages collector` runs apart


def test_haproxy_accepts_the_stanza(tmp_path):
    [stanza] = blocks("haproxy")
    assert "cookie" not in stanza and "stick" not in stanza  # no affinity
    path = tmp_path / "haproxy.cfg"
    path.write_text(stanza)
    checked = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_commands_upgrade_and_serve(tmp_path, postgresql_url):
    [ini] = blocks("ini")
    port = servers.free_port()
    ini = re.sub(r"(?m)^connection = .*$", f"connection = {postgresql_url}", ini)
    path = tmp_path / "usermessages.conf"
    path.write_text(re.sub(r"(?m)^port = 8776$", f"port = {port}", ini))
    upgrade_command, serve_command, collector_command = (
        [str(path) if arg == CONF else arg for arg in command] for command in commands())
    assert upgrade_command[:3] == ["usermessages", "db", "upgrade"]
    assert serve_command[:3] == ["usermessages", "serve", "--config"]
    assert collector_command[:3] == ["usermessages", "collector", "--config"]  # the drill's
    bin_dir = Path(sys.executable).parent
    upgrade = subprocess.run([str(bin_dir / "usermessages"), *upgrade_command[1:]],
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([str(bin_dir / "usermessages"), *serve_command[1:]],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        # One worker per core, each a fresh interpreter: slow to start on a busy machine.
        servers.wait_serving(f"http://127.0.0.1:{port}", serve, log, timeout=120)
        # What the HAProxy stanza's health check expects is what a node answers.
        [stanza] = blocks("haproxy")
        expected = re.search(r"http-check expect status (\d+)", stanza)
        assert expected is not None
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == int(
            expected.group(1))
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(45) == 0, log.read_text()
    finally:
        servers.stop_process(serve)
    assert "Traceback" not in log.read_text()
