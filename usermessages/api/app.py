"""The REST API's ASGI application: routes, error rendering, the middlewares in front.

It reads through the ``Reader`` it is given; ``usermessages.service`` builds
the reader and mounts the Event Viewer beside this app.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from usermessages.api import explanations, health, messages, series, stream, views_ext, webhooks
from usermessages.api.keystone import KeystoneMiddleware
from usermessages.api.metrics import keystone_protected, metrics_route
from usermessages.api.middleware import OpenStackMiddleware
from usermessages.api.security import SecurityHeaders
from usermessages.api.versions import version_document
from usermessages.errors import NOT_FOUND_TEXT, HTTPError, LimitReached
from usermessages.reader import Reader
from usermessages.web import base_url
from usermessages.web.faults import fault_body
from usermessages.web.limits import Limits


def _fault(status: int, message: str) -> Response:
    return Response(fault_body(status, message), status_code=status, media_type="application/json")


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    response = _fault(exc.status, exc.message)
    if isinstance(exc, LimitReached):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _routing_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # Cinder answers unknown routes and unsupported methods (POST/PUT on
    # messages) with 404 itemNotFound.
    if exc.status_code in (404, 405):
        return _fault(404, NOT_FOUND_TEXT)
    return _fault(exc.status_code, str(exc.detail))


def create_api(reader: Reader, limits: Limits | None = None) -> FastAPI:
    """The messages API over ``reader`` (its settings, store, catalog, policy, Keystone).

    ``limits``: the stream and export slots, shared with the viewer when one is
    mounted beside; by default the API's own.
    """
    settings = reader.settings
    app = FastAPI(
        title="usermessages",
        summary="Why did my operation fail? Cinder-compatible user messages.",
        version="3.71",
        redirect_slashes=False,
        docs_url="/api-docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.reader = reader
    app.state.limits = limits or Limits.from_settings(settings, reader.engine)
    app.add_exception_handler(HTTPError, _http_error)
    app.add_exception_handler(StarletteHTTPException, _routing_error)
    if reader.token_validator is not None:
        # Inside OpenStackMiddleware, so auth_token's 401/503 carry request ids too.
        app.add_middleware(KeystoneMiddleware, validator=reader.token_validator,
                           protected=keystone_protected(settings))
    app.add_middleware(OpenStackMiddleware, store_timeout=settings.database_timeout)
    app.add_middleware(SecurityHeaders)

    @app.get("/", status_code=300, include_in_schema=False)
    def root(request: Request) -> JSONResponse:
        return JSONResponse(version_document(base_url(request, settings)), status_code=300)

    # Answered without a token, so keystoneauth (openstack CLI) can discover the API.
    @app.get("/v3", include_in_schema=False)
    @app.get("/v3/", include_in_schema=False)
    def v3(request: Request) -> JSONResponse:
        return JSONResponse(version_document(base_url(request, settings)))

    if settings.metrics != "off":
        app.add_api_route("/metrics", metrics_route(settings), include_in_schema=False)
    # No token needed: what load balancers probe (details for admins only).
    app.router.routes.append(Route(health.PATH, health.Healthcheck(reader),
                                   methods=["GET", "HEAD"], include_in_schema=False))

    app.include_router(explanations.router)
    app.include_router(messages.router)
    app.include_router(series.router)
    app.include_router(views_ext.router)
    app.include_router(stream.router)
    app.include_router(webhooks.router)
    return app
