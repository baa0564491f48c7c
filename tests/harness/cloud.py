"""A small cloud in a real Keystone: projects, users with each persona, this service's catalog.

Created in-process with openstacksdk (one connection, no CLI call per object).
Every user's password is PASSWORD; tokens come from keystoneauth password auth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openstack
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.harness.servers import KEYSTONE_ADMIN_PASSWORD, Keystone

PASSWORD = "a-user-password"
SERVICE_PASSWORD = "a-service-password"
# user name -> (project name or "system", role) assignments
PERSONAS: dict[str, list[tuple[str, str]]] = {
    "reader": [("alpha", "reader")],
    "member": [("alpha", "member")],
    "project_admin": [("alpha", "admin")],
    "system_reader": [("system", "reader")],
    "system_admin": [("system", "admin")],
    "other": [("beta", "member")],
    "norole": [("alpha", "observer")],  # a role no rule knows
    "multi": [("alpha", "reader"), ("beta", "member")],
    # works in a project, and administers the cloud (system scope) when it switches
    "operator": [("alpha", "member"), ("system", "admin")],
}
# Cinder's two service types (and names) in the catalog, as README registers this service.
BLOCK_STORAGE = (("block-storage", "cinder"), ("volumev3", "cinderv3"))


@dataclass
class Cloud:
    keystone: Keystone
    projects: dict[str, str] = field(default_factory=dict)  # name -> id
    users: dict[str, str] = field(default_factory=dict)  # name -> id
    admin: openstack.connection.Connection | None = None

    @property
    def auth_url(self) -> str:
        return self.keystone.url

    def auth(self, user: str, project: str | None = None, *, system: bool = False) -> v3.Password:
        scope: dict = {"system_scope": "all"} if system else {
            "project_name": project, "project_domain_id": "default"}
        return v3.Password(auth_url=self.auth_url, username=user, password=PASSWORD,
                           user_domain_id="default", **scope)

    def token(self, user: str, project: str | None = None, *, system: bool = False) -> str:
        token = ks_session.Session(auth=self.auth(user, project, system=system)).get_token()
        assert token, f"Keystone gave {user} no token"
        return token

    def revoke(self, token: str) -> None:
        assert self.admin is not None
        self.admin.session.delete(f"{self.auth_url}/auth/tokens",
                                  headers={"X-Subject-Token": token})

    def is_valid(self, token: str) -> bool:
        """Whether Keystone still vouches for a token (any scope, unscoped too)."""
        assert self.admin is not None
        answer = self.admin.session.head(f"{self.auth_url}/auth/tokens", raise_exc=False,
                                         headers={"X-Subject-Token": token})
        assert answer.status_code in (200, 404), answer.status_code
        return answer.status_code == 200

    def authtoken_options(self, **extra: str) -> dict[str, str]:
        """[keystone_authtoken] for this cloud: the cinder service user, no token cache."""
        return {
            "www_authenticate_uri": self.auth_url, "auth_url": self.auth_url,
            "auth_type": "password", "username": "cinder", "password": SERVICE_PASSWORD,
            "user_domain_name": "Default", "project_name": "service",
            "project_domain_name": "Default", "service_type": "block-storage",
            # The in-process cache would hide a revocation for 300 s.
            "token_cache_time": "-1", "http_connect_timeout": "3",
            "http_request_max_retries": "0",
            **extra,
        }

    def config_file(self, directory: Path, **extra: str) -> Path:
        """A usermessages INI in keystone mode for this cloud (README's, with its values)."""
        path = directory / "usermessages.conf"
        path.write_text("[api]\nauth_strategy = keystone\n\n[keystone_authtoken]\n" + "".join(
            f"{name} = {value}\n" for name, value in self.authtoken_options(**extra).items()))
        return path

    def register_endpoint(self, base: str) -> None:
        """This service in the catalog, under both of Cinder's service types."""
        assert self.admin is not None
        for kind, name in BLOCK_STORAGE:
            service = self.admin.identity.create_service(name=name, type=kind)
            for interface in ("public", "internal"):
                self.admin.identity.create_endpoint(
                    service_id=service.id, interface=interface, region_id="RegionOne",
                    url=f"{base}/v3/%(project_id)s")

    def unregister_endpoints(self) -> None:
        """No block storage in the catalog (a service's endpoints go with it)."""
        assert self.admin is not None
        kinds = {kind for kind, _ in BLOCK_STORAGE}
        for service in list(self.admin.identity.services()):
            if service.type in kinds:
                self.admin.identity.delete_service(service)

    @contextlib.contextmanager
    def only_endpoint(self, base: str) -> Iterator[None]:
        """``base`` as the catalog's only block storage while the block runs, none after:
        clients take the first block-storage endpoint they find, and the Keystone is the
        session's."""
        self.unregister_endpoints()
        self.register_endpoint(base)
        try:
            yield
        finally:
            self.unregister_endpoints()


def provision(keystone: Keystone) -> Cloud:
    admin = openstack.connect(
        auth_url=keystone.url, username="admin", password=KEYSTONE_ADMIN_PASSWORD,
        project_name="admin", user_domain_id="default", project_domain_id="default",
        region_name="RegionOne", identity_interface="public")
    cloud = Cloud(keystone, admin=admin)
    identity = admin.identity
    roles = {role.name: role.id for role in identity.roles()}
    roles["observer"] = identity.create_role(name="observer").id
    for name in ("alpha", "beta", "service"):
        cloud.projects[name] = identity.create_project(name=name, domain_id="default").id
    for name, assignments in PERSONAS.items():
        user = identity.create_user(name=name, password=PASSWORD, domain_id="default")
        cloud.users[name] = user.id
        for target, role in assignments:
            if target == "system":
                identity.assign_system_role_to_user(user.id, roles[role], "all")
            else:
                identity.assign_project_role_to_user(cloud.projects[target], user.id,
                                                     roles[role])
    # auth_token's own user: the `service` role lets it validate others' tokens.
    cinder = identity.create_user(name="cinder", password=SERVICE_PASSWORD, domain_id="default")
    identity.assign_project_role_to_user(cloud.projects["service"], cinder.id, roles["service"])
    return cloud
