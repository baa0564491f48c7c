"""Every extension operation has its documented rule, the routes enforce it, the old
message:webhooks rule still governs its five successors, docs/policy.md is the
registered rules, and oslo.policy's tools know them (their commands, as a deployer
runs them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from oslo_policy import policy as oslo_policy
from sqlalchemy import Engine, select

from tests.api.conftest import headers, row
from usermessages.config import Settings
from usermessages.reader import policy, policy_docs
from usermessages.service import create_app
from usermessages.store import writer
from usermessages.store.schema import message_series as series_table

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECT = "aaaa1111"
# Each extension rule, and a request only it (with message:get_all) decides.
BASE = f"/v3/{PROJECT}/messages-ext"
RULE_CALLS = {
    policy.SERIES_GET_ALL: ("GET", f"{BASE}/series"),
    # A series is looked up before its rule (another project's is a 404): a real one.
    policy.SERIES_GET: ("GET", f"{BASE}/series/{{series}}"),
    policy.EXPORT: ("GET", f"{BASE}/export"),
    policy.AGGREGATES: ("GET", f"{BASE}/aggregates"),
    policy.STREAM: ("GET", f"{BASE}/stream"),
    policy.WEBHOOKS_CREATE: ("POST", f"{BASE}/webhooks"),
    policy.WEBHOOKS_GET_ALL: ("GET", f"{BASE}/webhooks"),
    policy.WEBHOOKS_GET: ("GET", f"{BASE}/webhooks/0123"),
    policy.WEBHOOKS_DELETE: ("DELETE", f"{BASE}/webhooks/0123"),
    policy.WEBHOOKS_DELIVERIES: ("GET", f"{BASE}/webhooks/0123/deliveries"),
}
WEBHOOK = {"webhook": {"url": "https://hooks.example/x"}}


def _extension_rules() -> list[oslo_policy.RuleDefault]:
    return [r for r in policy.DEFAULT_RULES
            if r not in policy.BASE_RULES and r not in policy.MESSAGE_RULES]


def test_every_extension_rule_is_documented_with_its_operations() -> None:
    rules = _extension_rules()
    assert {rule.name for rule in rules} == set(RULE_CALLS)
    for rule in rules:
        assert isinstance(rule, oslo_policy.DocumentedRuleDefault), rule.name
        assert rule.description and rule.operations, rule.name
        # The defaults are made of Cinder's persona rules, nothing written anew.
        assert rule.check_str in ("rule:xena_system_admin_or_project_reader",
                                  "rule:xena_system_admin_or_project_member"), rule.name


def test_every_extension_route_is_an_operation_of_a_rule() -> None:
    app = create_app(Settings(database_connection="sqlite://"))
    operations = {(op["method"], op["path"]) for rule in policy.DEFAULT_RULES
                  if isinstance(rule, oslo_policy.DocumentedRuleDefault)
                  for op in rule.operations}
    routes = {(method.upper(), path) for path, methods in app.openapi()["paths"].items()
              if "/messages-ext/" in path and "/messages-ext/messages/" not in path
              for method in methods}
    assert routes and routes <= operations, routes - operations


def test_docs_policy_md_is_the_registered_rules() -> None:
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    assert text == policy_docs.markdown(), "regenerate: usermessages policy docs > docs/policy.md"


@pytest.fixture
def client_with(settings: Settings, engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        writer.insert(conn, [row(PROJECT)])  # a message, and so its series
    opened = []

    def make(policy_text: str = "", **changes: object) -> TestClient:
        if policy_text:
            policy_file = tmp_path / f"policy{len(opened)}.yaml"
            policy_file.write_text(policy_text)
            changes["policy_file"] = str(policy_file)
        client = TestClient(create_app(settings.replace(trust_roles_header=True, **changes),
                                       engine=engine))
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _call(client: TestClient, rule: str, roles: str = "reader,member") -> int:
    method, path = RULE_CALLS[rule]
    if "{series}" in path:
        # TestClient types its app as any ASGI app; this one is ours (FastAPI).
        with client.app.state.reader.engine.connect() as conn:  # type: ignore[attr-defined]
            path = path.replace("{series}", conn.execute(select(series_table.c.id)).scalar())
    kwargs = {"json": WEBHOOK} if method == "POST" else {}
    with client.stream(method, path, headers=headers("alice", PROJECT, **{"X-Roles": roles}),
                       **kwargs) as answer:
        return answer.status_code


@pytest.mark.parametrize("rule", sorted(RULE_CALLS))
def test_each_route_is_decided_by_its_own_rule(client_with, rule: str) -> None:  # type: ignore[no-untyped-def]
    """Its rule set to nobody ("!") refuses that operation, and only that one."""
    closed = client_with(f'"{rule}": "!"\n')
    assert _call(closed, rule) == 403
    others = [other for other in RULE_CALLS if other != rule]
    assert all(_call(closed, other) != 403 for other in others)
    assert closed.get(f"/v3/{PROJECT}/messages",
                      headers=headers("alice", PROJECT)).status_code == 200


def test_the_defaults_let_readers_read_and_members_manage_webhooks(client_with) -> None:  # type: ignore[no-untyped-def]
    client = client_with()
    for rule in RULE_CALLS:
        member = rule.startswith("message:webhooks:")
        assert (_call(client, rule, "reader") == 403) is member, rule
        assert _call(client, rule, "member,reader") != 403, rule


def test_a_policy_file_setting_the_old_webhooks_rule_still_governs_all_five(client_with) -> None:  # type: ignore[no-untyped-def]
    client = client_with('"message:webhooks": "role:admin"\n')
    for rule in (r for r in RULE_CALLS if r.startswith("message:webhooks:")):
        assert _call(client, rule) == 403, rule
        assert _call(client, rule, "admin,member,reader") != 403, rule


def test_lists_in_another_shape_also_need_message_get_all(client_with) -> None:  # type: ignore[no-untyped-def]
    client = client_with('"message:get_all": "!"\n')
    for rule in (policy.EXPORT, policy.AGGREGATES, policy.STREAM):
        assert _call(client, rule) == 403, rule


# --- oslo.policy's tools ---------------------------------------------------------------


def _tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_the_sample_generator_lists_every_rule_with_its_description(tmp_path: Path) -> None:
    ran = _tool("oslopolicy-sample-generator", "--namespace", "usermessages", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    for rule in policy.list_rules():
        assert f'#"{rule.name}": "{rule.check_str}"' in ran.stdout, rule.name
    for rule in _extension_rules():
        assert isinstance(rule, oslo_policy.DocumentedRuleDefault)
        for operation in rule.operations:
            assert f"# {operation['method']}  {operation['path']}\n" in ran.stdout
    # The old rule, named as each of its successors' deprecated one.
    assert '# "message:webhooks": "rule:message:webhooks:create"\n' in ran.stdout


def test_the_policy_generator_the_validator_and_list_redundant_read_the_service_s_file(
        tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:export": "rule:context_is_admin"\n'
                           '"message:stream": "rule:xena_system_admin_or_project_reader"\n')
    conf = tmp_path / "usermessages.conf"
    conf.write_text(f"[api]\npolicy_file = {policy_file}\n")
    ran = _tool("oslopolicy-policy-generator", "--namespace", "usermessages", "--config-file",
                str(conf), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    effective = yaml.safe_load(ran.stdout)
    assert effective["message:export"] == "rule:context_is_admin"
    assert effective["message:aggregates"] == "rule:xena_system_admin_or_project_reader"
    assert set(effective) == {rule.name for rule in policy.list_rules()}
    redundant = _tool("oslopolicy-list-redundant", "--namespace", "usermessages",
                      "--config-file", str(conf), cwd=tmp_path)
    assert redundant.returncode == 0, redundant.stderr
    assert re.findall(r'"(message:[a-z_:]+)"', redundant.stdout) == ["message:stream"]
    valid = _tool("oslopolicy-validator", "--namespace", "usermessages", "--config-file",
                  str(conf), cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    policy_file.write_text('"message:exprot": "rule:context_is_admin"\n')
    typo = _tool("oslopolicy-validator", "--namespace", "usermessages", "--config-file",
                 str(conf), cwd=tmp_path)
    assert typo.returncode == 1
    assert "Unknown rule found in policy file: message:exprot" in typo.stdout
