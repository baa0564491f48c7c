"""The Event Viewer: web pages over the same queries and authorization as the API.

A second skin on the store, not a second system: every page reads through the
same ``Reader`` as the API (same filter whitelist and errors, same
project-scoped queries, same oslo.policy rules). The session holds
only the noauth token the API would receive; nothing of another project is
ever rendered, in a page, a fragment or the live stream.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from usermessages.errors import (
    BadRequest,
    HTTPError,
    LimitReached,
    NotFound,
    Unauthorized,
    UserMessagesError,
)
from usermessages.reader import DELETE, STREAM, Caller, Reader, Scope
from usermessages.reader.identity import project_id_problem
from usermessages.store.engine import is_unavailable
from usermessages.store.messages import ListQuery, StoredMessage, utcnow
from usermessages.translations import content_language
from usermessages.viewer import browse, csrf, language, signin
from usermessages.viewer.sessions import LIVE, LiveSession
from usermessages.web import events, export
from usermessages.web.faults import UNAVAILABLE_TEXT
from usermessages.web.limits import LeasedResponse, Limits, holder
from usermessages.web.projections import Audience, advice, visible

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# The filters the form offers; the project and host ones only to admins.
USER_FIELDS = ("resource_type", "resource_uuid", "message_level", "event_id", "request_id")
ADMIN_FIELDS = ("project_id", "host", "kind")
SORTS = {
    "created_at:desc": "Newest first",
    "created_at:asc": "Oldest first",
    "event_id:asc": "Event ID",
    "message_level:asc": "Level",
    "resource_type:asc": "Resource type",
}
# Rows read per keyset page while streaming a download.
EXPORT_PAGE = 500
STREAM_BATCH = 100


class SignedOut(UserMessagesError):
    """Raised when a page needs a signed-in viewer."""


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def _caller(request: Request) -> Caller:
    """Every page re-validates the session's token: a revoked or expired one signs out."""
    cached = getattr(request.state, "viewer_caller", None)
    if cached is not None:
        return cached
    token = request.session.get("token")
    if not token:
        raise SignedOut()
    try:
        caller = _reader(request).session_caller(token)
    except Unauthorized as exc:
        request.session.clear()
        raise SignedOut() from exc
    if (_reader(request).settings.auth_strategy == "keystone"
            and request.session.get("scope") != signin.scope_of(caller.system_scope,
                                                                 caller.project_id)):
        # The session says which scope it holds; a token holding another fails closed.
        request.session.clear()
        raise SignedOut()
    request.state.viewer_caller = caller
    return caller


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    caller = None
    with contextlib.suppress(SignedOut, HTTPError):
        caller = _caller(request)
    settings = _reader(request).settings
    context.setdefault("caller", caller)
    context.setdefault("is_admin",
                       caller is not None and _reader(request).scope(caller).all_projects)
    context.setdefault("csrf", csrf.token(request))
    context.setdefault("auth_mode", settings.auth_strategy)
    context.setdefault("names", request.session.get("names", {}))
    context.setdefault("projects", request.session.get("projects", []))
    context.setdefault("system_access", bool(request.session.get("system")))
    context.setdefault("system_scoped", caller is not None and caller.system_scope == "all")
    context.setdefault("language", language.chosen(request))
    context.setdefault("languages", language.choices(request))
    context.setdefault("text_lang", content_language(language.chosen(request)))
    context.setdefault("back", request.url.path + (f"?{request.url.query}" if request.url.query
                                                   else ""))
    return templates.TemplateResponse(request, template, context, status_code=status)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _row(request: Request, scope: Scope, row: StoredMessage, count: int = 0) -> dict[str, Any]:
    """A row as pages show it: what the scope's audience may see of it (its
    internals, tenant and node included, to admins only; see web.projections).

    ``count`` is how many times this failure occurred (its series' count).
    """
    reader = _reader(request)
    shown = visible(row, Audience.of(scope.all_projects),
                    reader.translator.catalog_for(language.chosen(request)))
    internals = shown.internals
    return {
        "repeats": count,
        "id": shown.id,
        "tenant": internals.tenant if internals is not None else None,
        "event_id": shown.event_id,
        "node": internals.host if internals is not None else None,
        "exception_class": internals.exception_class if internals is not None else None,
        "global_request_id": internals.global_request_id if internals is not None else None,
        "request_id": shown.request_id,
        "level": shown.message_level,
        "resource_type": shown.resource_type,
        "resource_uuid": shown.resource_uuid,
        "created_at": _iso(shown.created_at),
        "expires_at": _iso(shown.expires_at),
        "summary": shown.user_message,
        # A resource's link names its project: the row's for an admin, the caller's own
        # (the only one they read) for a project user.
        "resource_url": browse.resource_url(
            reader.settings.viewer_resource_url, shown.resource_type, shown.resource_uuid,
            internals.project_id if internals is not None else scope.caller.project_id),
    }


def _rows(request: Request, scope: Scope, rows: list[StoredMessage]) -> list[dict[str, Any]]:
    """Rows as pages show them, each with its failure's repeat count (one query)."""
    counts = _reader(request).repeats(scope, rows)
    return [_row(request, scope, r, counts.get(r.id, 0)) for r in rows]


def _filters(request: Request, is_admin: bool) -> dict[str, str]:
    """The filter state from the URL (bookmarkable), limited to what this viewer may use."""
    fields = USER_FIELDS + (ADMIN_FIELDS if is_admin else ())
    query = request.query_params
    state = {k: query[k].strip() for k in fields if query.get(k, "").strip()}
    for name in ("since", "until", "sort", "marker", "before", "q", "last"):
        if query.get(name, "").strip():
            state[name] = query[name].strip()
    return browse.apply_preset(state, utcnow())


def _list_params(state: dict[str, str]) -> dict[str, str]:
    params = {k: v for k, v in state.items()
              if k not in ("since", "until", "sort", "before", "last")}
    if "since" in state:
        params["created_since"] = state["since"]
    if "until" in state:
        params["created_before"] = state["until"]
    params["sort"] = state.get("sort", "created_at:desc")
    if params["sort"] not in SORTS:
        raise BadRequest("Unknown sort order.")
    return params


def _parse(request: Request, scope: Scope, params: dict[str, str], limit: int) -> ListQuery:
    return _reader(request).parse_view(scope, {**params, "limit": str(limit)}, max_limit=limit)


def _query(request: Request, scope: Scope, params: dict[str, str],
           limit: int = PAGE_SIZE) -> list[StoredMessage]:
    return _reader(request).query(scope, _parse(request, scope, params, limit))


def _last_seq(request: Request, scope: Scope) -> int:
    return _reader(request).newest(scope)


def _limits(request: Request) -> Limits:
    return request.app.state.limits


def _guard(request: Request) -> Scope:
    return _reader(request).scope(_caller(request))


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/viewer/messages", status_code=303)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    # The sign-in form is CSRF-protected like every other (its token is in every page).
    return _render(request, "login.html")


@router.post("/login")
def login(request: Request, user: str = Form(""), project: str = Form(""),
          password: str = Form(""), domain: str = Form("Default"),
          scope: str = Form("project"), form_token: str = Form("", alias="csrf")) -> Response:
    csrf.check(request, form_token)
    user, project, domain = user.strip(), project.strip(), domain.strip() or "Default"
    settings = _reader(request).settings
    keystone = settings.auth_strategy == "keystone"
    system = scope == "system"
    if system:
        project = ""  # the system scope has no project: whatever the field held is unused
    fields = ([("User", user)] + ([] if system else [("Project", project)])
              + ([("Domain", domain)] if keystone else []))
    problems = [f"{name} is required" for name, value in fields if not value]
    if scope not in ("project", "system"):
        problems.append("Sign in to a project or to the system")
    elif system and not keystone:
        problems.append("The system scope needs Keystone: without it, the admin user "
                        "sees every project")
    for name, value in fields:
        if len(value) > 64 or not value.isprintable() or ":" in value:
            problems.append(f"{name} must be up to 64 printable characters, without ':'")
    # Refuse what the API would refuse, with the same reason (noauth: the project is
    # an id in the URL; Keystone resolves names itself).
    problem = not keystone and project and project_id_problem(settings, project)
    if problem and not problems:
        problems.append(f"Project: {problem}")
    if keystone and not password:
        problems.append("Password is required")
    if len(password) > 4096:
        problems.append("Password is too long")
    shown = {"user": user[:64], "project": project[:64], "domain": domain[:64],
             "scope": "system" if system else "project"}
    if problems:
        return _render(request, "login.html", status=400, problems=problems, **shown)
    request.session.clear()
    if keystone:
        try:
            signin.sign_in(_reader(request), request.session, user, password, domain,
                           None if system else project)
        except HTTPError as exc:
            request.session.clear()
            return _render(request, "login.html", status=exc.status, problems=[exc.message],
                           **shown)
    else:
        request.session["token"] = f"{user}:{project}"
    return RedirectResponse("/viewer/messages", status_code=303)


@router.post("/language")
def choose_language(request: Request, choice: str = Form(""),
                    form_token: str = Form("", alias="csrf"), back: str = Form("")) -> Response:
    """Keep the reader's language in a cookie; "auto" goes back to the browser's."""
    csrf.check(request, form_token)
    languages = _reader(request).translator.languages
    if choice not in (*languages, "auto"):
        raise BadRequest("Choose one of the languages offered.")
    response = RedirectResponse(language.safe_back(back), status_code=303)
    if choice == "auto":
        response.delete_cookie(language.COOKIE, path="/viewer")
    else:
        response.set_cookie(language.COOKIE, choice, max_age=language.COOKIE_SECONDS,
                            path="/viewer", samesite="lax", httponly=True,
                            secure=_reader(request).settings.viewer_secure_cookie)
    return response


def _keystone_switch(request: Request, form_token: str) -> str:
    """A switch's checks: signed in, the form's token, Keystone; the unscoped token."""
    _caller(request)
    csrf.check(request, form_token)
    if _reader(request).settings.auth_strategy != "keystone":
        raise NotFound("The resource could not be found.")
    return request.session["root_token"]


@router.post("/project")
def switch_project(request: Request, project_id: str = Form(""),
                   form_token: str = Form("", alias="csrf")) -> Response:
    """Keystone: a token for another of the user's projects, without signing in again."""
    unscoped = _keystone_switch(request, form_token)
    if project_id not in {pid for pid, _ in request.session.get("projects", [])}:
        raise BadRequest("Choose one of your projects.")
    return _switched(request, signin.to_project(_reader(request).settings, unscoped,
                                                project_id=project_id))


@router.post("/system")
def switch_system(request: Request, form_token: str = Form("", alias="csrf")) -> Response:
    """Keystone: the system scope (every project), without signing in again, as Horizon's
    admin panel does; refused with the reason to a user without a system role."""
    unscoped = _keystone_switch(request, form_token)
    return _switched(request, signin.to_system(_reader(request), unscoped))


def _switched(request: Request, signed: signin.SignIn) -> Response:
    """Hold the new token; the one it replaces is revoked once this answer has set the
    new session (sooner, a page in flight in another tab would find its token revoked
    and sign the browser out)."""
    replaced = signin.switch(request.session, signed)
    response = RedirectResponse("/viewer/messages", status_code=303)
    if replaced:
        response.background = BackgroundTask(signin.revoke, _reader(request).settings, replaced)
    return response


@router.post("/logout")
def logout(request: Request, form_token: str = Form("", alias="csrf")) -> Response:
    if csrf.valid(request, form_token):
        settings = _reader(request).settings
        if settings.auth_strategy == "keystone":
            signin.sign_out(settings, request.session)
        request.session.clear()
    return RedirectResponse("/viewer/login", status_code=303)


@router.get("/messages")
def list_page(request: Request) -> HTMLResponse:
    scope = _guard(request)
    is_admin = scope.all_projects
    state = _filters(request, is_admin)
    first_page = "marker" not in state and "before" not in state
    live = first_page and state.get("sort", "created_at:desc") == "created_at:desc"
    # The stream starts after the newest seq read *before* the rows: a row stored
    # in between shows on the page and again on the stream (the page skips the
    # same id), rather than on neither.
    newest = _last_seq(request, scope) if live else 0
    params = _list_params(state)
    rows, next_url, previous_url = _page_rows(request, scope, state, params)
    stream_state = {k: v for k, v in state.items() if k not in ("marker", "before")}
    # The time fields show the range in force (a preset's too), as a field can hold it.
    fields: dict[str, str] = {**state, **{k: browse.field_time(state[k])
                                          for k in ("since", "until") if k in state}}
    view = _parse(request, scope, params, PAGE_SIZE)
    return _render(
        request, "list.html",
        rows=_rows(request, scope, rows), state=fields, sorts=SORTS,
        user_fields=USER_FIELDS, admin_fields=ADMIN_FIELDS, next_url=next_url,
        previous_url=previous_url,
        first_url=None if first_page else "/viewer/messages?" + urlencode(stream_state),
        live=live, stream_query=urlencode(stream_state),
        newest=newest, total=_reader(request).count(scope, view),
        presets=browse.preset_links(state), histogram=_histogram(request, scope, view),
        export_query=urlencode(stream_state),
        flash=request.session.pop("flash", None),
    )


def _page_rows(request: Request, scope: Scope, state: dict[str, str],
               params: dict[str, str]) -> tuple[list[StoredMessage], str | None, str | None]:
    """One page, after ``marker`` or before ``before``, and links to its neighbours.

    Both ways are keyset pages: the page before is read in reverse order
    after its first row, one row more than shown to know whether it is the first.
    """
    base = {k: v for k, v in state.items() if k not in ("marker", "before")}
    if "before" in state:
        backwards = {**params, "marker": state["before"],
                     "sort": browse.reversed_sort(params["sort"])}
        found = _query(request, scope, backwards, limit=PAGE_SIZE + 1)
        rows = list(reversed(found[:PAGE_SIZE]))
        more_before = len(found) > PAGE_SIZE
        more_after = True  # the row we came back from
    else:
        rows = _query(request, scope, params)
        more_before = "marker" in state
        more_after = len(rows) == PAGE_SIZE
    if not rows:
        return rows, None, None
    next_url = ("/viewer/messages?" + urlencode({**base, "marker": rows[-1].id})
                if more_after else None)
    previous_url = ("/viewer/messages?" + urlencode({**base, "before": rows[0].id})
                    if more_before else None)
    return rows, next_url, previous_url


def _histogram(request: Request, scope: Scope, view: ListQuery) -> dict[str, Any] | None:
    """The bars over the view's time range (the last day when none is chosen)."""
    bucket = browse.choose_bucket(view.created_since, view.created_before, utcnow())
    try:
        shape, times = _reader(request).histogram(scope, view, bucket)
    except BadRequest as exc:
        return {"bars": [], "problem": exc.message}  # the rows still show; the page says why
    return {"bars": browse.bars(times, shape.bucket), "bucket": shape.bucket, "problem": None,
            "since": _iso(shape.since), "until": _iso(shape.until),
            "width": browse.WIDTH, "height": browse.HEIGHT}


@router.get("/export")
def export_view(request: Request) -> StreamingResponse:
    """The page's filtered view as a download (the button): every row, not one page."""
    scope = _guard(request)
    fmt = request.query_params.get("format", "csv")
    if fmt not in export.FORMATS:
        raise BadRequest("format must be 'ndjson' or 'csv'.")
    state = _filters(request, scope.all_projects)
    for name in ("marker", "before"):
        state.pop(name, None)
    # The slot is taken last: a refused download (an error page saying why) took none.
    slots = _limits(request).exports
    rows, lease = _reader(request).export(
        scope, _list_params(state), fmt, max_limit=PAGE_SIZE, page_size=EXPORT_PAGE,
        admit=lambda: slots.acquire(holder(scope.caller.project_id)))
    body = export.lines(fmt, rows, _reader(request).catalog, Audience.of(scope.all_projects))
    return LeasedResponse(lease, body, media_type=export.FORMATS[fmt],
                          headers={"Content-Disposition":
                                   f'attachment; filename="messages.{fmt}"'})


@router.get("/messages/{message_id}")
def detail_page(request: Request, message_id: str) -> HTMLResponse:
    scope = _guard(request)
    reader = _reader(request)
    row = reader.get(scope, message_id)
    same_request = [r for r in _query(request, scope, {"request_id": row.request_id},
                                      limit=20)
                    if r.id != row.id] if row.request_id else []
    same_resource = [r for r in _query(request, scope, {"resource_uuid": row.resource_uuid},
                                       limit=20)
                     if r.id != row.id] if row.resource_uuid else []
    advised = advice(row, reader.translator.catalog_for(language.chosen(request)))
    return _render(
        request, "detail.html", message=_rows(request, scope, [row])[0], advice=advised,
        same_request=_rows(request, scope, same_request),
        same_resource=_rows(request, scope, same_resource),
    )


@router.get("/messages/{message_id}/delete")
def confirm_delete(request: Request, message_id: str) -> HTMLResponse:
    scope = _guard(request)
    row = _reader(request).get(scope, message_id, DELETE)
    return _render(request, "confirm_delete.html", message=_row(request, scope, row))


@router.post("/messages/{message_id}/delete")
def delete(request: Request, message_id: str,
           form_token: str = Form("", alias="csrf")) -> Response:
    scope = _guard(request)
    csrf.check(request, form_token)
    row = _reader(request).delete(scope, message_id)
    request.session["flash"] = f"Message {row.id} deleted."
    return RedirectResponse("/viewer/messages", status_code=303)


def _open_stream(request: Request) -> tuple[Scope, events.Feed[tuple[StoredMessage, int]], int]:
    """Blocking (Keystone, the store): the stream's scope, feed and first cursor."""
    scope = _guard(request)
    _reader(request).authorize_list(scope, STREAM)
    state = _filters(request, scope.all_projects)
    state.pop("marker", None)
    query = _parse(request, scope, _list_params(state), STREAM_BATCH)
    cursor = events.first_cursor(events.requested_cursor(request, "after"),
                                 _last_seq(request, scope))
    token = request.session["token"]  # _guard passed: the session holds one
    reader = _reader(request)

    def poll(after: int) -> tuple[list[tuple[StoredMessage, int]], int]:
        """The rows after ``after``, each with its failure's repeat count (one query)."""
        rows, following = reader.poll(scope, query, after)
        counts = reader.repeats(scope, rows)
        return [(row, counts.get(row.id, 0)) for row in rows], following

    def render(item: tuple[StoredMessage, int]) -> events.Event:
        row, count = item
        html = templates.get_template("_row.html").render(
            row=_row(request, scope, row, count), is_admin=scope.all_projects,
            text_lang=content_language(language.chosen(request)))
        return events.Event(row.seq, html)

    def signed_in(revalidate: bool) -> bool:
        return _still_signed_in(request, token, scope.caller, revalidate)

    return scope, events.Feed(poll=poll, render=render, signed_in=signed_in), cursor


def _still_signed_in(request: Request, token: str, caller: Caller, revalidate: bool) -> bool:
    """Blocking: whether an open stream's session is still the one it began with.

    Its stored entry must still hold the token (sign-out drops it; a project
    switch replaces it) and, when ``revalidate``, the token must still name
    the same caller (a revoked one is refused). Raises KeystoneUnavailable
    when Keystone cannot say.
    """
    live = request.scope.get(LIVE)
    if isinstance(live, LiveSession):
        data = live.current()
        if data is None or data.get("token") != token:
            return False
    if not revalidate or _reader(request).still_valid(token, caller):
        return True
    if isinstance(live, LiveSession):
        live.end()  # as a page would: the copied cookie stops everywhere
    return False


@router.get("/stream")
async def stream(request: Request) -> Response:
    """Server-sent events: rows stored after the cursor that match the page's filters.

    The cursor is the stored order (seq), not created_at: a row a producer
    stamped earlier but the store received later (a spool replayed after an
    outage, a slower collector) still comes, in the order rows became visible.
    A reconnecting browser resumes from its Last-Event-ID instead of where the
    page started (``after``). The loop, its heartbeats, its ``unavailable`` and
    ``signedout`` events and its slot are the API stream's: ``web.events``. A
    stream refused a slot says why in a ``busy`` event, which the page shows.
    """
    scope, feed, cursor = await run_in_threadpool(_open_stream, request)
    try:
        return await events.stream(request, _limits(request), holder(scope.caller.project_id),
                                   feed, cursor)
    except LimitReached as exc:
        return events.refusal(exc)


async def signed_out(request: Request, exc: Exception) -> Response:
    if request.url.path.endswith("/stream"):
        return Response(status_code=401)
    return RedirectResponse("/viewer/login", status_code=303)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """The database did not answer in time: a page saying so (the stream: a bare 503)."""
    if not is_unavailable(exc):
        raise exc  # a bug, not an outage: the 500 path, logged with its cause
    if request.url.path.endswith("/stream"):
        return Response(status_code=503)
    return _render(request, "error.html", status=503, status_code=503,
                   message=UNAVAILABLE_TEXT + " (The message store is not answering.)")


async def http_error(request: Request, exc: Exception) -> Response:
    """Errors on viewer pages render as an error page; API paths keep their faults."""
    assert isinstance(exc, HTTPError)
    page = _render(request, "error.html", status=exc.status, status_code=exc.status,
                   message=exc.message)
    if isinstance(exc, LimitReached):
        page.headers["Retry-After"] = str(exc.retry_after)
    return page
