"""Signing in to the viewer with Keystone: password, scope (a project or the system),
switches, revocation.

As Horizon does: the password buys an *unscoped* token, kept in the session and
never used to read; every token that reads (the first, and each switch) is
rescoped from it, to a project or to the system. From a scoped token Keystone
refuses some of these (a system token is never rescoped to a project, and
``[token] allow_rescope_scoped_token = false`` refuses every rescope of a scoped
token); from the unscoped one all of them work. Only keystoneauth talks to
Keystone here; the token it returns is then checked on every page by the same
auth_token validator as the API.

A session holds two live tokens: the unscoped one and the scoped one in use. A
switch revokes the token it replaces (rescoped from the unscoped token, it has
no descendants to take with it) once the new session is set; sign-out revokes both.
"""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from keystoneauth1 import access as ks_access
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from usermessages.config import Settings
from usermessages.errors import Forbidden, HTTPError, KeystoneUnavailable, Unauthorized
from usermessages.reader import GET_ALL, Reader

TIMEOUT = 10.0
# The one system Keystone has; a session's scope is "system:all" or "project:<id>".
SYSTEM_SCOPE = "system:all"
SYSTEM_LABEL = "System (all projects)"
SIGN_IN_FAILED = "Sign-in failed: check the user, password and domain."
NO_SYSTEM_ROLE = ("You have no role on the system scope, so you cannot see every project: "
                  "ask for a system role assignment, or sign in to one of your projects.")
# A system role that the policy does not let list messages (a system reader under
# Cinder's defaults): refused when it asks, rather than an error on every page.
SYSTEM_CANNOT_READ = ("Your system role does not let you read messages here (the policy's "
                      "message:get_all): sign in to one of your projects.")


@dataclass(frozen=True)
class Account:
    """A password sign-in before any scope: who, and where they may go."""

    token: str  # unscoped: rescoped from, never read with
    user_name: str
    projects: list[tuple[str, str]]  # (id, name) of the projects with a role
    system: bool  # whether the user has a role on the system (GET /v3/auth/system)


@dataclass(frozen=True)
class SignIn:
    """A token that reads, and the scope it holds."""

    token: str
    scope: str  # SYSTEM_SCOPE or "project:<id>"
    label: str  # what the page shows: the project's name, or SYSTEM_LABEL


def auth_url(settings: Settings) -> str:
    options = dict(settings.keystone_authtoken)
    url = (options.get("www_authenticate_uri") or options.get("auth_url", "")).rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def scope_of(system_scope: str | None, project_id: str) -> str:
    """The session's name for a token's scope (a validated Caller's or a new token's)."""
    return SYSTEM_SCOPE if system_scope == "all" else f"project:{project_id}"


def _access(auth: v3.BaseAuth, refused: Exception) -> tuple[str, ks_access.AccessInfoV3]:
    """The token Keystone issues for ``auth``, and what it says of it; ``refused`` is
    raised when it says no."""
    session = ks_session.Session(auth=auth, timeout=TIMEOUT)
    try:
        access = auth.get_access(session)
    except (ksa_exceptions.ConnectionError, ksa_exceptions.DiscoveryFailure) as exc:
        raise KeystoneUnavailable("Keystone cannot be reached; try again later.") from exc
    except ksa_exceptions.HttpError as exc:
        if (exc.http_status or 0) >= 500:
            raise KeystoneUnavailable("Keystone cannot answer now; try again later.") from exc
        raise refused from exc
    except ksa_exceptions.ClientException as exc:
        raise refused from exc
    assert access.auth_token is not None  # a successful sign-in always carries one
    assert isinstance(access, ks_access.AccessInfoV3)  # v3 plugins answer v3
    return access.auth_token, access


def authenticate(settings: Settings, user: str, password: str, domain: str) -> Account:
    """An unscoped token for the user (even one with a default project), and its choices."""
    token, access = _access(v3.Password(auth_url=auth_url(settings), username=user,
                                        password=password, user_domain_name=domain,
                                        unscoped=True),
                            Unauthorized(SIGN_IN_FAILED))
    return Account(token, access.username or "", projects(settings, token),
                   system_access(settings, token))


def to_project(settings: Settings, unscoped: str, *, project_id: str | None = None,
               name: str | None = None, domain: str | None = None) -> SignIn:
    """A token for one of the user's projects (by id, or by name in ``domain``)."""
    what = f"project {name} in domain {domain}" if name else f"project {project_id}"
    auth = v3.Token(auth_url=auth_url(settings), token=unscoped, project_id=project_id,
                    project_name=name, project_domain_name=domain if name else None)
    token, access = _access(auth, Forbidden(
        f"You have no role on {what[:160]}, or it does not exist: sign in to one of your "
        f"projects."))
    return SignIn(token, scope_of(None, access.project_id or ""), access.project_name or "")


def to_system(reader: Reader, unscoped: str) -> SignIn:
    """A system-scoped token, if Keystone gives one (only to a user with a system role)
    and the policy lets it list messages; a refused one is revoked at once."""
    settings = reader.settings
    token, _ = _access(v3.Token(auth_url=auth_url(settings), token=unscoped,
                                system_scope="all"), Forbidden(NO_SYSTEM_ROLE))
    try:
        reader.policy.authorize(GET_ALL, reader.session_caller(token), None)
    except HTTPError as exc:
        revoke(settings, token)
        if isinstance(exc, Forbidden):
            raise Forbidden(SYSTEM_CANNOT_READ) from exc
        raise
    return SignIn(token, SYSTEM_SCOPE, SYSTEM_LABEL)


def _get(settings: Settings, token: str, path: str) -> dict[str, Any] | None:
    """GET an identity path with the token; None when Keystone says no or cannot say."""
    session = ks_session.Session(timeout=TIMEOUT)
    try:
        response = session.get(f"{auth_url(settings)}{path}",
                               headers={"X-Auth-Token": token}, raise_exc=False)
    except ksa_exceptions.ClientException:
        return None
    return response.json() if response.status_code == 200 else None


def projects(settings: Settings, token: str) -> list[tuple[str, str]]:
    """(id, name) of the projects the token's user may switch to."""
    found = _get(settings, token, "/auth/projects") or {}
    return sorted(((p["id"], p["name"]) for p in found.get("projects", [])
                   if p.get("enabled", True)), key=lambda p: p[1])


def system_access(settings: Settings, token: str) -> bool:
    """Whether the token's user has a role on the system (as Horizon's is_system_user)."""
    found = _get(settings, token, "/auth/system") or {}
    return any(entry.get("all") for entry in found.get("system", []))


Session = MutableMapping[str, Any]


def sign_in(reader: Reader, session: Session, user: str, password: str, domain: str,
            project: str | None) -> None:
    """The password, then a token for the project (by name, in the user's domain) or,
    when ``project`` is None, for the system; kept in ``session``."""
    settings = reader.settings
    account = authenticate(settings, user, password, domain)
    try:
        signed = (to_project(settings, account.token, name=project, domain=domain)
                  if project is not None else to_system(reader, account.token))
    except HTTPError:
        revoke(settings, account.token)  # nothing holds it: it would only linger
        raise
    session["root_token"] = account.token
    session["projects"] = account.projects
    session["system"] = account.system
    session["user_name"] = account.user_name
    _hold(session, signed)


def switch(session: Session, signed: SignIn) -> str | None:
    """Hold ``signed`` from now on; the token it replaces, for the caller to revoke."""
    replaced = _hold(session, signed)
    return replaced if replaced != signed.token else None


def _hold(session: Session, signed: SignIn) -> str | None:
    """The token that reads and the scope it holds; the token it replaces, if any."""
    replaced = session.get("token")
    session["token"] = signed.token
    session["scope"] = signed.scope
    session["names"] = {"user": session.get("user_name", ""), "project": signed.label}
    return replaced


def sign_out(settings: Settings, session: Session) -> None:
    """End the session and revoke its live tokens, the one in use first."""
    tokens = [t for t in (session.get("token"), session.get("root_token")) if t]
    session.clear()
    for token in tokens:
        revoke(settings, token)


def revoke(settings: Settings, token: str) -> None:
    """Revoke the token in Keystone (a user may revoke its own); best effort."""
    session = ks_session.Session(timeout=TIMEOUT)
    # Best effort: the session is gone anyway, the cookie no longer works here.
    with contextlib.suppress(ksa_exceptions.ClientException):
        session.delete(f"{auth_url(settings)}/auth/tokens",
                       headers={"X-Auth-Token": token, "X-Subject-Token": token},
                       raise_exc=False)
