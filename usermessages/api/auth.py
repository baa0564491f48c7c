"""Who is calling: Cinder's noauth token, without Keystone.

``X-Auth-Token: <user>:<project>`` (what ``cinder --os-auth-type noauth``
sends) makes the caller a member and reader of that project; a token with no
colon names a user whose project has the same name, as in Cinder. The user
named by ``admin_user`` is an admin. Where ``trust_roles_header`` is on, an
``X-Roles`` header (comma-separated) replaces the roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from usermessages.errors import BadRequest, Unauthorized

MAX_ID = 255
USER_ROLES = ("member", "reader")
ADMIN_ROLES = ("admin", "member", "reader")


@dataclass(frozen=True)
class Caller:
    user_id: str
    project_id: str
    roles: tuple[str, ...]

    @property
    def credentials(self) -> dict:
        """What oslo.policy checks rules against."""
        return {"user_id": self.user_id, "project_id": self.project_id, "roles": list(self.roles)}


def authenticate(
    headers: Mapping[str, str], *, admin_user: str, trust_roles_header: bool
) -> Caller:
    token = headers.get("x-auth-token")
    if not token:
        raise Unauthorized("Authentication required: send X-Auth-Token: <user>:<project>.")
    user, _, project = token.partition(":")
    project = project or user
    if not user or len(user) > MAX_ID or len(project) > MAX_ID or not token.isprintable():
        raise Unauthorized("The X-Auth-Token is not a valid <user>:<project> token.")
    roles = ADMIN_ROLES if user == admin_user else USER_ROLES
    if trust_roles_header and "x-roles" in headers:
        roles = tuple(r.strip().lower() for r in headers["x-roles"].split(",") if r.strip())
        if any(len(r) > MAX_ID for r in roles):
            raise BadRequest("X-Roles holds a role that is too long.")
    return Caller(user_id=user, project_id=project, roles=tuple(roles))
