"""What a service's notifier put on the wire, read back: shared by emit_cinder.py and
emit_nova.py, which run in the OpenStack venv (scripts/venv-openstack), not in ours.

The services' own ``rpc.init`` builds their Notifier; ``transport_url =
kombu+memory:////`` makes oslo.messaging's rabbit driver (the one a cloud runs)
publish through kombu's in-process broker, so each body here is byte for byte what
RabbitMQ would carry: the ``messagingv2`` envelope, the serialized payload and the
``_context_*`` keys. The driver also declares the queue ``<topic>.error`` it publishes
to, which is where these are read from.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kombu import Connection

CONFIG = """\
[DEFAULT]
state_path = {work}
host = {host}
transport_url = fake:/
[database]
connection = sqlite:///{work}/{service}.sqlite
[oslo_messaging_notifications]
driver = messagingv2
transport_url = kombu+memory:////
[oslo_concurrency]
lock_path = {work}
"""


def drain(topics: tuple[str, ...], event_types: set[str],
          timeout: float = 30.0) -> list[str]:
    """The ERROR notifications of ``topics`` until each of ``event_types`` was seen
    (the services' RPC server runs in a thread of its own: wait for it, with a deadline)."""
    bodies: list[str] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    with Connection("memory://") as connection:
        queues = [connection.SimpleQueue(f"{topic}.error") for topic in topics]
        while not event_types <= seen:
            if time.monotonic() > deadline:
                raise SystemExit(f"no {sorted(event_types - seen)} in {timeout}s")
            for queue in queues:
                try:
                    message = queue.get(timeout=0.05)
                except queue.Empty:
                    continue
                body = message.body if isinstance(message.body, str) else message.body.decode()
                message.ack()
                bodies.append(body)
                inner = json.loads(json.loads(body)["oslo.message"])
                seen.add(inner["event_type"])
    return bodies


def record(out: list[dict[str, Any]], caller: str, bodies: list[str],
           expect: dict[str, str]) -> None:
    """One captured body per entry, with what the scenario knows to be true."""
    for body in bodies:
        out.append({"caller": caller, "body": body, "expect": expect})


def dump(out: list[dict[str, Any]]) -> None:
    json.dump(out, sys.stdout)
