"""The ASGI application: routes, error rendering, and what lives for the app's lifetime."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from usermessages.api import messages
from usermessages.api.faults import NOT_FOUND_TEXT, fault_body
from usermessages.api.keystone import KeystoneMiddleware, TokenValidator
from usermessages.api.metrics import keystone_protected, metrics_route
from usermessages.api.middleware import OpenStackMiddleware
from usermessages.api.policy import Policy
from usermessages.api.security import SecurityHeaders
from usermessages.api.versions import version_document
from usermessages.catalog import Catalog
from usermessages.config import Settings
from usermessages.errors import HTTPError
from usermessages.store import engine as store_engine


def _fault(status: int, message: str) -> Response:
    return Response(fault_body(status, message), status_code=status, media_type="application/json")


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return _fault(exc.status, exc.message)


async def _routing_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # Cinder answers unknown routes and unsupported methods (POST/PUT on
    # messages) with 404 itemNotFound.
    if exc.status_code in (404, 405):
        return _fault(404, NOT_FOUND_TEXT)
    return _fault(exc.status_code, str(exc.detail))


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    catalog: Catalog | None = None,
) -> FastAPI:
    """Build the app. Loading the catalog and policy here makes a bad file a start-up error."""
    engine = engine or store_engine.connect(settings.database_connection,
                                            timeout=settings.database_timeout)
    catalog = catalog or Catalog.from_file(settings.catalog_overrides_file or None)
    app = FastAPI(
        title="usermessages",
        summary="Why did my operation fail? Cinder-compatible user messages.",
        version="3.71",
        redirect_slashes=False,
        docs_url="/api-docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.catalog = catalog
    app.state.policy = Policy(settings.policy_file, settings.oslo_policy)
    app.add_exception_handler(HTTPError, _http_error)
    app.add_exception_handler(StarletteHTTPException, _routing_error)
    if settings.auth_strategy == "keystone":
        # Inside OpenStackMiddleware, so auth_token's 401/503 carry request ids too.
        app.state.token_validator = TokenValidator(dict(settings.keystone_authtoken))
        app.add_middleware(KeystoneMiddleware, validator=app.state.token_validator,
                           protected=keystone_protected(settings))
    app.add_middleware(OpenStackMiddleware, store_timeout=settings.database_timeout)
    app.add_middleware(SecurityHeaders)

    @app.get("/", status_code=300, include_in_schema=False)
    def root(request: Request) -> JSONResponse:
        return JSONResponse(version_document(messages.base_url(request, settings)), status_code=300)

    # Answered without a token, so keystoneauth (openstack CLI) can discover the API.
    @app.get("/v3", include_in_schema=False)
    @app.get("/v3/", include_in_schema=False)
    def v3(request: Request) -> JSONResponse:
        return JSONResponse(version_document(messages.base_url(request, settings)))

    if settings.metrics != "off":
        app.add_api_route("/metrics", metrics_route(settings), include_in_schema=False)

    app.include_router(messages.router)
    # Imported here: the viewer is a skin for a browser, the API does not need it.
    from usermessages.viewer import create_viewer

    app.mount("/viewer", create_viewer(app.state, settings.viewer_secret_key))
    return app
