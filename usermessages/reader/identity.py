"""Who is calling: Cinder's noauth token, or (reader/keystone.py) a Keystone token.

``X-Auth-Token: <user>:<project>`` (what ``cinder --os-auth-type noauth``
sends) makes the caller a member and reader of that project; a token with no
colon names a user whose project has the same name, as in Cinder. The user
named by ``admin_user`` is an admin. Where ``trust_roles_header`` is on, an
``X-Roles`` header (comma-separated) replaces the roles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from usermessages.config import Settings
from usermessages.errors import NOT_FOUND_TEXT, BadRequest, NotFound, Unauthorized

MAX_ID = 255
USER_ROLES = ("member", "reader")
ADMIN_ROLES = ("admin", "member", "reader")


@dataclass(frozen=True)
class Caller:
    user_id: str
    project_id: str
    roles: tuple[str, ...]
    # Keystone only: "all" for a system-scoped token; a domain-scoped token's domain.
    system_scope: str | None = None
    domain_id: str | None = None

    @property
    def credentials(self) -> dict:
        """What oslo.policy checks rules against (oslo.context's names)."""
        return {"user_id": self.user_id, "project_id": self.project_id or None,
                "roles": list(self.roles), "system_scope": self.system_scope,
                "domain_id": self.domain_id}


def identify(headers: Mapping[str, str], state: object, settings: Settings) -> Caller:
    """The caller of a request: Keystone's validated identity, or the noauth token."""
    if settings.auth_strategy == "keystone":
        caller = getattr(state, "caller", None)
        if not isinstance(caller, Caller):
            # Only reachable if a route escaped the Keystone middleware: fail closed.
            raise Unauthorized("Authentication required.")
        return caller
    return authenticate(headers, admin_user=settings.admin_user,
                        trust_roles_header=settings.trust_roles_header)


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
    roles: tuple[str, ...] = ADMIN_ROLES if user == admin_user else USER_ROLES
    if trust_roles_header and "x-roles" in headers:
        roles = tuple(r.strip().lower() for r in headers["x-roles"].split(",") if r.strip())
        if any(len(r) > MAX_ID for r in roles):
            raise BadRequest("X-Roles holds a role that is too long.")
    return Caller(user_id=user, project_id=project, roles=tuple(roles))


def project_id_problem(settings: Settings, project_id: str) -> str | None:
    """Why a project id can never be in a URL of the API (None if it can).

    Every front end (API, viewer, CLI) gives this same reason, so a newcomer who
    picks ``demo`` learns the rule instead of meeting a bare 404.
    """
    if re.fullmatch(settings.project_id_regex, project_id):
        return None
    shown = project_id if len(project_id) <= 64 and project_id.isprintable() else "this one"
    return (f"a project id must match {settings.project_id_regex} "
            f"([api] project_id_regex, as Cinder's); {shown!r} does not")


def check_url_project(settings: Settings, url_project: str, caller: Caller) -> None:
    """The project a URL names must be a project id, and the caller's (Cinder's rules)."""
    problem = project_id_problem(settings, url_project)
    if problem:
        # Cinder's text first (clients may match it), then the reason.
        raise NotFound(f"{NOT_FOUND_TEXT} {problem[0].upper()}{problem[1:]}.")
    if url_project != caller.project_id:
        raise BadRequest(
            f"Malformed request url: the project in the URL ({url_project[:64]}) is "
            f"not the token's ({caller.project_id[:64]})")
