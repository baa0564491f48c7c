"""Every path of every section of etc/notification-mapping.ini, checked against the
notifications the real services build and send.

Cinder 29 and Nova 34 as released (PyPI, pinned in scripts/venv-openstack, installed
in a venv of their own once per machine) run their own failure paths in
tests/notifications/real_notifications/emit_cinder.py and emit_nova.py; their own Notifier puts each
ERROR notification on the wire as RabbitMQ would carry it, and those bytes are what is
checked here. A path that leads nowhere in what a service really sends fails, naming
the section, the key and the paths the payload does have; a section no real code path
sends fails too. Hand-written payloads (tests/notifications/openstack_payloads.py) agree with the
mapping by construction; these agree with Cinder and Nova or the test fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from usermessages.catalog import detail_for_name, event_id
from usermessages.collector import Accept, Reject
from usermessages.notifications import Rule, decide, load_mapping, lookup

# The first run on a machine installs Cinder and Nova (about a minute with pip's cache).
pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "etc" / "notification-mapping.ini"
EMITTERS = Path(__file__).resolve().parent / "real_notifications"
RULES = load_mapping(MAPPING)
TTL = 2592000
# The paths whose value the scenario knows (the exception's is checked through decide()).
KNOWN = ("resource_id", "project_id", "user_id")


@dataclass(frozen=True)
class Sent:
    """One notification a service's own code sent, and what the scenario knows of it."""

    caller: str
    body: bytes
    notification: dict[str, Any]
    expect: dict[str, str]

    @property
    def event_type(self) -> str:
        return str(self.notification["event_type"])

    def without_context(self) -> bytes:
        """The same notification as a sender without a RequestContext would send it."""
        inner = {k: v for k, v in self.notification.items() if not k.startswith("_context_")}
        return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


def openstack_venv() -> Path:
    """The OpenStack venv, created by scripts/venv-openstack on first use."""
    venv = Path(os.environ.get("OPENSTACK_VENV", ROOT / ".venv-openstack"))
    subprocess.run([str(ROOT / "scripts" / "venv-openstack")], check=True,
                   env={**os.environ, "OPENSTACK_VENV": str(venv)})
    return venv


@pytest.fixture(scope="session")
def sent() -> list[Sent]:
    python = openstack_venv() / "bin" / "python"
    captured = []
    for script in ("emit_cinder.py", "emit_nova.py"):
        run = subprocess.run([str(python), str(EMITTERS / script)], capture_output=True,
                             text=True, timeout=300, check=False)
        assert run.returncode == 0, f"{script} failed:\n{run.stderr[-4000:]}"
        for entry in json.loads(run.stdout):
            envelope = json.loads(entry["body"])
            captured.append(Sent(entry["caller"], entry["body"].encode(),
                                 json.loads(envelope["oslo.message"]), entry["expect"]))
    return captured


def leaves(document: Any, prefix: str = "") -> Iterator[str]:
    """The dotted paths to the strings of a notification (Nova's nova_object.data
    wrappers stepped through, as the mapping's paths step through them)."""
    if isinstance(document, dict):
        document = document.get("nova_object.data", document)
        for key, value in document.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(document, str):
        yield prefix


def of(sent: list[Sent], event_type: str) -> list[Sent]:
    found = [s for s in sent if s.event_type == event_type]
    assert found, f"[{event_type}] is mapped, but no real code path sent it"
    return found


def test_every_mapped_section_is_sent_by_the_real_services(sent):
    assert sorted(set(RULES) - {s.event_type for s in sent}) == []


@pytest.mark.parametrize("event_type", sorted(RULES))
def test_every_path_leads_to_what_the_service_sent(sent, event_type):
    rule: Rule = RULES[event_type]
    for one in of(sent, event_type):
        for key, path in rule.paths.items():
            dotted = ".".join(path)
            value = lookup(one.notification, path)
            assert value, (
                f"[{event_type}] {key} = {dotted}: nothing there in what {one.caller} "
                f"sends; its strings are at: "
                f"{', '.join(p for p in leaves(one.notification) if p.startswith('payload'))}")
            if key in KNOWN:
                assert value == one.expect[key], (
                    f"[{event_type}] {key} = {dotted} reads {value!r} in what {one.caller} "
                    f"sends, not the {key} {one.expect[key]!r}")


@pytest.mark.parametrize("event_type", sorted(RULES))
def test_what_the_services_send_becomes_the_right_message(sent, event_type):
    rule = RULES[event_type]
    for one in of(sent, event_type):
        decision = decide(one.body, RULES, TTL)
        assert isinstance(decision, Accept), (event_type, one.caller, decision)
        row = decision.message.to_row()
        # The class the service raised picks the detail, as the SDK would.
        exception = one.expect["exception"]
        detail = detail_for_name(exception) or rule.detail
        assert (row["event_id"], row["exception_class"], row["resource_uuid"],
                row["project_id"], row["user_id"]) == (
            event_id(rule.resource_type, rule.action, detail), exception,
            one.expect["resource_id"], one.expect["project_id"], one.expect["user_id"])
        assert "secret" not in json.dumps(row, default=str)


@pytest.mark.parametrize("event_type", sorted(RULES))
def test_without_the_request_context_only_the_payload_speaks(sent, event_type):
    """Cinder and Nova always send their RequestContext; a section whose payload names
    no project (scheduler.create_snapshot, compute_task.migrate_server*) cannot be read
    without it, and is dead-lettered rather than guessed."""
    rule = RULES[event_type]
    for one in of(sent, event_type):
        decision = decide(one.without_context(), RULES, TTL)
        if "project_id" in rule.paths:
            assert isinstance(decision, Accept), (event_type, one.caller, decision)
            assert (decision.message.project_id, decision.message.user_id) == (
                one.expect["project_id"], one.expect["user_id"])
        else:
            assert isinstance(decision, Reject), (event_type, one.caller, decision)


def test_the_documented_reads_are_the_mapping():
    """docs/notifications.md's "What each section reads" is the mapping, path for path."""
    text = (ROOT / "docs" / "notifications.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ([a-z_.]+) \| (.+) \|$", text, re.M))
    rows.pop("section")  # the header
    assert set(rows) == set(RULES)
    for event_type, rule in RULES.items():
        documented = set(re.findall(r"`([a-z_.]+)`", rows[event_type]))
        assert documented == {".".join(path) for path in rule.paths.values()}, event_type
        assert ("context only" in rows[event_type]) == ("project_id" not in rule.paths)
