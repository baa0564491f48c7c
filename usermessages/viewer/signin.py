"""Signing in to the viewer with Keystone: password auth, project switch, revocation.

Only keystoneauth talks to Keystone here; the token it returns is then
checked on every page by the same auth_token validator as the API.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from usermessages.config import Settings
from usermessages.errors import KeystoneUnavailable, Unauthorized

TIMEOUT = 10.0


@dataclass(frozen=True)
class SignIn:
    token: str
    user_name: str
    project_id: str
    project_name: str


def auth_url(settings: Settings) -> str:
    options = dict(settings.keystone_authtoken)
    url = (options.get("www_authenticate_uri") or options.get("auth_url", "")).rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def _signed_in(auth: v3.BaseAuth) -> SignIn:
    session = ks_session.Session(auth=auth, timeout=TIMEOUT)
    try:
        access = auth.get_access(session)
    except ksa_exceptions.Unauthorized as exc:
        raise Unauthorized("Sign-in failed: check the user, password, domain and project.") \
            from exc
    except (ksa_exceptions.ConnectionError, ksa_exceptions.DiscoveryFailure) as exc:
        raise KeystoneUnavailable("Keystone cannot be reached; try again later.") from exc
    except ksa_exceptions.ClientException as exc:
        raise Unauthorized("Sign-in failed: check the user, password, domain and project.") \
            from exc
    assert access.auth_token is not None  # a successful sign-in always carries one
    return SignIn(access.auth_token, access.username or "", access.project_id or "",
                  access.project_name or "")


def sign_in(settings: Settings, user: str, password: str, domain: str,
            project: str) -> SignIn:
    """A project-scoped token for the user (project and user in the same domain)."""
    return _signed_in(v3.Password(
        auth_url=auth_url(settings), username=user, password=password,
        user_domain_name=domain, project_name=project, project_domain_name=domain))


def switch_project(settings: Settings, token: str, project_id: str) -> SignIn:
    """A token for another project of the same user, from the current token."""
    return _signed_in(v3.Token(auth_url=auth_url(settings), token=token,
                               project_id=project_id))


def projects(settings: Settings, token: str) -> list[tuple[str, str]]:
    """(id, name) of the projects the token's user may switch to."""
    session = ks_session.Session(timeout=TIMEOUT)
    try:
        response = session.get(f"{auth_url(settings)}/auth/projects",
                               headers={"X-Auth-Token": token}, raise_exc=False)
    except ksa_exceptions.ClientException:
        return []
    if response.status_code != 200:
        return []
    return sorted(((p["id"], p["name"]) for p in response.json().get("projects", [])
                   if p.get("enabled", True)), key=lambda p: p[1])


def revoke(settings: Settings, token: str) -> None:
    """Revoke the token in Keystone (a user may revoke its own); best effort."""
    session = ks_session.Session(timeout=TIMEOUT)
    # Best effort: the session is gone anyway, the cookie no longer works here.
    with contextlib.suppress(ksa_exceptions.ClientException):
        session.delete(f"{auth_url(settings)}/auth/tokens",
                       headers={"X-Auth-Token": token, "X-Subject-Token": token},
                       raise_exc=False)
