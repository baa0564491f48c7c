"""Cinder's newer personas in a policy file, its deprecated rules, a Cinder policy.yaml."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.api.conftest import row
from tests.harness.cloud import Cloud
from usermessages.errors import ConfigError
from usermessages.service import create_app
from usermessages.store import writer

V = {"OpenStack-API-Version": "volume 3.5"}
PERSONAS = """\
"message:get_all": "rule:system_reader_or_project_reader"
"message:get": "rule:system_reader_or_project_reader"
"message:delete": "rule:system_admin_or_project_member"
"""


@pytest.fixture
def seeded(cloud: Cloud, engine: Engine) -> dict[str, str]:
    rows = {"alpha": row(cloud.projects["alpha"]), "beta": row(cloud.projects["beta"])}
    with engine.begin() as conn:
        writer.insert(conn, list(rows.values()))
    return {name: r["id"] for name, r in rows.items()}


def _call(client, method: str, path: str, token: str):
    return client.request(method, path, headers={"X-Auth-Token": token, **V})


def test_the_yoga_personas_from_a_policy_file(make_client, cloud, seeded, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(PERSONAS)
    client = make_client(policy_file=str(policy_file))
    system_reader = cloud.token("system_reader", system=True)
    listed = _call(client, "GET", "/v3/messages", system_reader)
    assert listed.status_code == 200
    assert {m["id"] for m in listed.json()["messages"]} == set(seeded.values())
    assert _call(client, "GET", f"/v3/messages/{seeded['beta']}", system_reader).status_code == 200
    assert _call(client, "DELETE", f"/v3/messages/{seeded['beta']}",
                 system_reader).status_code == 403
    # A project admin is no system admin under the personas, but still a project member.
    project_admin = cloud.token("project_admin", "alpha")
    assert {m["id"] for m in _call(client, "GET", "/v3/messages", project_admin)
            .json()["messages"]} == {seeded["alpha"]}
    norole = cloud.token("norole", "alpha")
    assert _call(client, "GET", "/v3/messages", norole).status_code == 403
    system_admin = cloud.token("system_admin", system=True)
    assert _call(client, "DELETE", f"/v3/messages/{seeded['beta']}",
                 system_admin).status_code == 204


def test_enforce_new_defaults_off_brings_back_cinders_deprecated_rule(make_client, cloud, seeded):
    """rule:admin_or_owner ORed in: any role in the project reads it, as in Cinder."""
    norole = cloud.token("norole", "alpha")
    strict = make_client()
    assert _call(strict, "GET", "/v3/messages", norole).status_code == 403
    legacy = make_client(oslo_policy=(("enforce_new_defaults", "false"),
                                      ("enforce_scope", "false")))
    listed = _call(legacy, "GET", "/v3/messages", norole)
    assert listed.status_code == 200
    assert {m["id"] for m in listed.json()["messages"]} == {seeded["alpha"]}
    # Still no system reader: the legacy owner check needs a project.
    system_reader = cloud.token("system_reader", system=True)
    assert _call(legacy, "GET", "/v3/messages", system_reader).status_code == 403


def test_a_cinder_policy_yaml_for_messages_keeps_working(make_client, cloud, seeded, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:delete": "rule:context_is_admin"\n'
                           '"message:get_all": "role:member and project_id:%(project_id)s"\n')
    client = make_client(policy_file=str(policy_file))
    member = cloud.token("member", "alpha")
    assert _call(client, "GET", "/v3/messages", member).status_code == 200
    assert _call(client, "GET", "/v3/messages", cloud.token("reader", "alpha")).status_code == 403
    path = f"/v3/messages/{seeded['alpha']}"
    assert _call(client, "DELETE", path, member).status_code == 403
    assert _call(client, "DELETE", path, cloud.token("project_admin", "alpha")).status_code == 204


def test_an_unknown_oslo_policy_option_is_a_start_up_error(keystone_settings, engine):
    with pytest.raises(ConfigError, match=r"\[oslo_policy\] enforce_everything"):
        create_app(keystone_settings.replace(oslo_policy=(("enforce_everything", "1"),)),
                   engine=engine)
