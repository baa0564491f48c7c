"""The Event Viewer: the spec's web tab, mounted at /viewer beside the API."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from usermessages.errors import HTTPError
from usermessages.reader import Reader
from usermessages.store.engine import UNAVAILABLE
from usermessages.viewer import routes, webhooks
from usermessages.viewer.origin import SameOriginPosts
from usermessages.viewer.sessions import ServerSessionMiddleware, SessionStore
from usermessages.web.limits import Limits

SESSION_SECONDS = 8 * 3600


def create_viewer(reader: Reader, secret_key: str, limits: Limits | None = None) -> FastAPI:
    """A sub-application reading through the same reader as the API.

    ``limits``: the stream and export slots, the API's when mounted beside it.
    """
    viewer = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    viewer.state.reader = reader
    viewer.state.limits = limits or Limits.from_settings(reader.settings, reader.engine)
    # Keys the form tokens (csrf.py) and signs noauth's cookie. Without a configured
    # key, sign-ins and forms are only good on this process (`serve` gives its
    # workers one key: then on this node).
    secret_key = secret_key or secrets.token_hex(32)
    viewer.state.secret_key = secret_key.encode()
    settings = reader.settings
    if settings.auth_strategy == "keystone":
        # A Keystone token never leaves the server: the cookie is a random id.
        viewer.add_middleware(ServerSessionMiddleware,
                              store=SessionStore(reader.engine, SESSION_SECONDS),
                              cookie="usermessages_viewer",
                              secure=settings.viewer_secure_cookie,
                              unavailable=routes.store_unavailable)
    else:
        # noauth holds nothing secret: the session is the signed cookie itself.
        viewer.add_middleware(SessionMiddleware, secret_key=secret_key,
                              session_cookie="usermessages_viewer", same_site="strict",
                              https_only=settings.viewer_secure_cookie,
                              max_age=SESSION_SECONDS)
    viewer.add_middleware(SameOriginPosts)
    viewer.add_exception_handler(routes.SignedOut, routes.signed_out)
    viewer.add_exception_handler(HTTPError, routes.http_error)
    for error in UNAVAILABLE:
        viewer.add_exception_handler(error, routes.store_unavailable)
    viewer.mount("/static", StaticFiles(directory=routes.HERE / "static"), name="static")
    viewer.include_router(routes.router)
    viewer.include_router(webhooks.router)
    return viewer
