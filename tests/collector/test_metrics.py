"""`usermessages collector` serves its own counters when asked: the unmapped
notification counter lives in the collector process, so it must be scrapeable there."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

from oslo_context.context import RequestContext

from tests.notifications.notifier import notifier, wait_for
from tests.notifications.openstack_payloads import RequestContextSerializer

MAPPING = Path(__file__).resolve().parents[2] / "etc" / "notification-mapping.ini"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


def test_the_collector_command_serves_its_metrics(rabbitmq_url, tmp_path):
    exchange = f"cinder-{uuid.uuid4().hex[:8]}"
    topic = f"notifications-{exchange}"
    port = _free_port()
    config = tmp_path / "usermessages.conf"
    config.write_text(
        f"[database]\nconnection = sqlite:///{tmp_path}/um.sqlite\n"
        f"[bus]\nurl = {rabbitmq_url}\n"
        f"[collector]\nnotification_mapping_file = {MAPPING}\n"
        f"notifications_exchanges = {exchange}\nnotifications_topics = {topic}\n")
    subprocess.run([sys.executable, "-m", "usermessages", "db", "upgrade", "--config",
                    str(config)], check=True, capture_output=True)
    with notifier(rabbitmq_url, tmp_path, exchange, topic=topic, publisher_id="api.h",
                  serializer=RequestContextSerializer()) as cinder:
        context = RequestContext(project_id="p1")
        cinder.error(context, "qos_specs.create", {})  # the service creates its exchange
        process = subprocess.Popen(
            [sys.executable, "-m", "usermessages", "collector", "--config", str(config),
             "--metrics-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            line = ("usermessages_collector_unmapped_notifications_total"
                    '{event_type="qos_specs.create"}')

            def counted() -> bool:
                # Until the collector has bound its queue, a notification reaches only
                # the service's own queue: send one per poll.
                cinder.error(context, "qos_specs.create", {})
                return line in _scrape(port)

            wait_for(counted, timeout=30, what="the unmapped counter on /metrics")
            assert "usermessages_collector_stored_total" in _scrape(port)
        finally:
            process.terminate()
            output = process.communicate(timeout=20)[0].decode()
    assert f"collector metrics on http://127.0.0.1:{port}/metrics" in output
    assert process.returncode in (0, -15), output


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "usermessages", "collector", "--db",
             f"sqlite:///{tmp_path}/um.sqlite", "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
