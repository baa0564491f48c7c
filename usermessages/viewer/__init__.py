"""The Event Viewer: the spec's web tab, mounted at /viewer beside the API."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State
from starlette.middleware.sessions import SessionMiddleware

from usermessages.errors import HTTPError
from usermessages.store.engine import UNAVAILABLE
from usermessages.viewer import routes


def create_viewer(state: State, secret_key: str) -> FastAPI:
    """A sub-application sharing the API's state (store, catalog, policy, settings)."""
    viewer = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    viewer.state = state
    # Without a configured key, sessions last as long as the process.
    viewer.add_middleware(SessionMiddleware, secret_key=secret_key or secrets.token_hex(32),
                          session_cookie="usermessages_viewer", same_site="strict",
                          https_only=False, max_age=8 * 3600)
    viewer.add_exception_handler(routes.SignedOut, routes.signed_out)
    viewer.add_exception_handler(HTTPError, routes.http_error)
    for error in UNAVAILABLE:
        viewer.add_exception_handler(error, routes.store_unavailable)
    viewer.mount("/static", StaticFiles(directory=routes.HERE / "static"), name="static")
    viewer.include_router(routes.router)
    return viewer
