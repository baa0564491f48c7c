"""Keystone identity: a token validated by keystonemiddleware's ``auth_token``.

``auth_token`` is a WSGI middleware. Rather than re-implement token validation,
each request's headers are handed to the real ``AuthProtocol`` as a WSGI
environ (blocking: it calls Keystone). If it lets the request through, the
identity headers it wrote (after stripping every one the caller sent) become
the request's Caller; if it answers itself (401 for a bad token), that answer
is a ``Refusal`` the front end passes on unchanged, as Cinder does; when
Keystone cannot be asked, a ``Refusal`` with a 5xx status and no body, which
the front end answers with its own fault (``usermessages.api.keystone``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import anyio
from keystoneauth1 import exceptions as ksa_exceptions
from keystonemiddleware import auth_token

from usermessages.reader.identity import Caller

LOG = logging.getLogger(__name__)

# What keystonemiddleware puts in the environ after a successful validation.
_USER, _PROJECT, _ROLES = "HTTP_X_USER_ID", "HTTP_X_PROJECT_ID", "HTTP_X_ROLES"
_SYSTEM, _DOMAIN = "HTTP_OPENSTACK_SYSTEM_SCOPE", "HTTP_X_DOMAIN_ID"
_PASSED = "usermessages.keystone.passed"
# Without a bound, a Keystone that accepts connections but never answers would
# hold every API request (and a worker thread) forever.
DEFAULT_HTTP_TIMEOUT = "5"
MAX_TOKEN_BYTES = 16384  # fernet tokens are ~200 bytes; refuse junk before Keystone sees it


@dataclass(frozen=True)
class Refusal:
    """auth_token's own answer, to pass on as it is (its 401, as Cinder's); or, with a
    5xx status and no body, Keystone could not vouch for the token (503: not reached)."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


UNAVAILABLE = Refusal(503)


def _value(environ: Mapping[str, object], key: str) -> str | None:
    # keystonemiddleware writes the literal None for headers that do not apply.
    value = environ.get(key)
    return str(value) if value not in (None, "", "None") else None


def caller_from_environ(environ: Mapping[str, object]) -> Caller:
    """The Caller from the headers auth_token set on a validated request."""
    roles = tuple(r.strip().lower() for r in (_value(environ, _ROLES) or "").split(",")
                  if r.strip())
    return Caller(
        user_id=_value(environ, _USER) or "",
        project_id=_value(environ, _PROJECT) or "",
        roles=roles,
        system_scope=_value(environ, _SYSTEM),
        domain_id=_value(environ, _DOMAIN),
    )


def _passed(environ: dict, start_response: Callable) -> Iterable[bytes]:
    environ[_PASSED] = True
    start_response("204 No Content", [])
    return [b""]


class TokenValidator:
    """Validates an X-Auth-Token through a real keystonemiddleware AuthProtocol."""

    def __init__(self, options: Mapping[str, str]) -> None:
        conf = {"http_connect_timeout": DEFAULT_HTTP_TIMEOUT, **options}
        # delay_auth_decision would let unauthenticated requests through: never here.
        conf["delay_auth_decision"] = "false"
        self._protocol = auth_token.AuthProtocol(_passed, conf)

    def validate(self, headers: Iterable[tuple[bytes, bytes]]) -> Caller | Refusal:
        """Blocking: run auth_token on these request headers."""
        environ: dict = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "",
            "SERVER_NAME": "usermessages", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None,
        }
        for raw_name, raw_value in headers:
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue
            key = f"HTTP_{name}"
            value = raw_value.decode("latin-1")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        token = environ.get("HTTP_X_AUTH_TOKEN", "")
        if len(token) > MAX_TOKEN_BYTES or not token.isprintable():
            environ.pop("HTTP_X_AUTH_TOKEN", None)  # answered as "no token": 401
        status: list[str] = []
        response_headers: list[tuple[str, str]] = []

        def start_response(line: str, out_headers: list, exc_info: object = None) -> None:
            status.append(line)
            response_headers.extend(out_headers)

        try:
            body = b"".join(self._protocol(environ, start_response))
        except ksa_exceptions.ConnectionError as exc:
            # auth_token 13.0.1 turns a refused connection into 503 but lets a
            # timed-out one (a hung Keystone) escape as a 500: answer it the same way.
            LOG.critical("Unable to validate token: %s", exc)
            return UNAVAILABLE
        if environ.get(_PASSED):
            return caller_from_environ(environ)
        code = int(status[0].split(" ", 1)[0]) if status else 500
        if code >= 500:
            # auth_token's own 5xx is a webob HTML page: the front end's fault instead.
            return Refusal(code)
        headers_out = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                       for k, v in response_headers]
        return Refusal(code, headers_out, body)

    async def validate_async(self, headers: Iterable[tuple[bytes, bytes]]) -> Caller | Refusal:
        return await anyio.to_thread.run_sync(self.validate, list(headers))
