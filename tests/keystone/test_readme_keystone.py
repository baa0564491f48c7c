"""README's Keystone set-up commands, run as written against the suite's real Keystone.

The only change is the service user's name (``cinder`` -> ``readme-cinder``): the suite's
cloud already has a ``cinder`` user, and Keystone refuses a second one of the same name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import openstack
import pytest
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ks_session

from tests.harness.cloud import PASSWORD, Cloud
from tests.harness.servers import KEYSTONE_ADMIN_PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def _keystone_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", readme, flags=re.S)
               if lang == "sh" and "openstack endpoint create" in body]
    return block.replace("SERVICE_PASSWORD cinder", "SERVICE_PASSWORD readme-cinder").replace(
        "--user cinder ", "--user readme-cinder ")


def _admin_env(cloud: Cloud) -> dict[str, str]:
    """The `openstack` command as Keystone's bootstrap admin."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "OS_AUTH_URL": cloud.auth_url, "OS_USERNAME": "admin",
            "OS_PASSWORD": KEYSTONE_ADMIN_PASSWORD, "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"}


def test_readme_keystone_commands_register_the_service(cloud: Cloud) -> None:
    env = _admin_env(cloud)
    admin = openstack.connect(auth_url=cloud.auth_url, username="admin",
                              password=KEYSTONE_ADMIN_PASSWORD, project_name="admin",
                              user_domain_name="Default", project_domain_name="Default",
                              region_name="RegionOne")
    before = {s.id for s in admin.identity.services()}
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", _keystone_block()], env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        user = admin.identity.find_user("readme-cinder", ignore_missing=False)
        service_project = admin.identity.find_project("service", ignore_missing=False)
        roles = {admin.identity.get_role(a.role["id"]).name for a in
                 admin.identity.role_assignments(user_id=user.id,
                                                 project_id=service_project.id)}
        assert roles == {"service"}
        registered = {(s.type, e.interface) for s in admin.identity.services()
                      for e in admin.identity.endpoints(service_id=s.id)
                      if e.url == "http://messages.example:8776/v3/%(project_id)s"}
        assert registered == {(t, i) for t in ("block-storage", "volumev3")
                              for i in ("public", "internal")}
    finally:
        # The Keystone is the session's: leave its catalog as the other tests expect it
        # (clients pick the first block-storage endpoint they find).
        for service in admin.identity.services():
            if service.id not in before:
                for endpoint in admin.identity.endpoints(service_id=service.id):
                    admin.identity.delete_endpoint(endpoint)
                admin.identity.delete_service(service)
        service_user = admin.identity.find_user("readme-cinder")
        if service_user is not None:
            admin.identity.delete_user(service_user.id)


def test_readme_system_role_commands_give_an_operator_the_system_scope(cloud: Cloud) -> None:
    """The viewer section's block, as written: its user (alice) is made here first."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", readme, flags=re.S)
               if lang == "sh" and "--system all" in body]
    assert cloud.admin is not None
    identity = cloud.admin.identity
    alice = identity.create_user(name="alice", password=PASSWORD, domain_id="default")
    try:
        before = cloud.auth("alice", system=True)
        with pytest.raises(ksa_exceptions.Unauthorized):
            ks_session.Session(auth=before).get_token()
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=_admin_env(cloud),
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert "admin" in done.stdout and "alice@Default" in done.stdout, done.stdout
        # Now Keystone gives alice a system-scoped token.
        assert ks_session.Session(auth=cloud.auth("alice", system=True)).get_token()
    finally:
        identity.delete_user(alice.id)
