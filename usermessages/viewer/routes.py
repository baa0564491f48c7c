"""The Event Viewer: web pages over the same queries and authorization as the API.

A second skin on the store, not a second system: every page reads through the
same ``Reader`` as the API (same filter whitelist and errors, same
project-scoped queries, same oslo.policy rules). The session holds
only the noauth token the API would receive; nothing of another project is
ever rendered, in a page, a fragment or the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from usermessages.errors import BadRequest, HTTPError, NotFound, Unauthorized, UserMessagesError
from usermessages.reader import DELETE, Caller, Reader, Scope
from usermessages.reader.identity import KeystoneUnavailable, project_id_problem
from usermessages.store import deadline
from usermessages.store.engine import UNAVAILABLE, is_unavailable
from usermessages.store.messages import ListQuery, StoredMessage, utcnow
from usermessages.translations import content_language
from usermessages.viewer import browse, language, signin
from usermessages.viewer.sessions import LIVE, LiveSession
from usermessages.web import export
from usermessages.web.faults import UNAVAILABLE_TEXT
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
STREAM_POLL_SECONDS = 1.0
STREAM_BATCH = 100
STREAM_MAX_SECONDS = 300  # the browser reconnects; no request lives forever
# An open stream re-validates its token this often (a call to Keystone; the session
# itself, in memory, is checked on every poll): a revoked token stops it this soon.
STREAM_RECHECK_SECONDS = 3.0
# The stream's cursor is a stored-order number (seq): digits only, so it is safe
# in a URL and in a bookmark; at most 18 digits, so it always fits a BIGINT.
CURSOR = re.compile(r"[0-9]{1,18}")


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
    context.setdefault("csrf", request.session.get("csrf", ""))
    context.setdefault("auth_mode", settings.auth_strategy)
    context.setdefault("names", request.session.get("names", {}))
    context.setdefault("projects", request.session.get("projects", []))
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


def _poll(request: Request, scope: Scope, query: ListQuery,
          cursor: int) -> tuple[list[StoredMessage], int]:
    """The stream's next rows after ``cursor``, and the cursor to poll from next."""
    deadline.begin(deadline.budget.get())  # each poll is new store work, as a request is
    return _reader(request).poll(scope, query, cursor)


def _last_seq(request: Request, scope: Scope) -> int:
    return _reader(request).newest(scope)


def _cursor(request: Request) -> int | None:
    """Where the stream resumes: the browser's Last-Event-ID on a reconnect, else ``after``.

    Both are seqs the server handed out; anything else is a 400, never a 500.
    """
    for name, value in (("Last-Event-ID", request.headers.get("last-event-id")),
                        ("after", request.query_params.get("after"))):
        if value is None or value == "":
            continue
        if not CURSOR.fullmatch(value):
            raise BadRequest(f"{name} must be a message sequence number (digits), "
                             f"as the list page gives.")
        return int(value)
    return None


def _guard(request: Request) -> Scope:
    return _reader(request).scope(_caller(request))


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/viewer/messages", status_code=303)


def _form_token(request: Request) -> str:
    # Issued before sign-in too: the login form is CSRF-protected like every other.
    if not request.session.get("csrf"):
        request.session["csrf"] = secrets.token_urlsafe(24)
    return request.session["csrf"]


def _check_form_token(request: Request, csrf: str) -> None:
    if not csrf or not secrets.compare_digest(csrf, request.session.get("csrf", "")):
        raise BadRequest("The form expired; reload the page and try again.")


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _render(request, "login.html", csrf=_form_token(request))


@router.post("/login")
def login(request: Request, user: str = Form(""), project: str = Form(""),
          password: str = Form(""), domain: str = Form("Default"),
          csrf: str = Form("")) -> Response:
    _check_form_token(request, csrf)
    user, project, domain = user.strip(), project.strip(), domain.strip() or "Default"
    settings = _reader(request).settings
    keystone = settings.auth_strategy == "keystone"
    fields = [("User", user), ("Project", project)] + ([("Domain", domain)] if keystone else [])
    problems = [f"{name} is required" for name, value in fields if not value]
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
    if problems:
        return _render(request, "login.html", status=400, problems=problems,
                       user=user[:64], project=project[:64], domain=domain[:64])
    request.session.clear()
    if keystone:
        try:
            signed = signin.sign_in(settings, user, password, domain, project)
        except HTTPError as exc:
            request.session["csrf"] = secrets.token_urlsafe(24)
            return _render(request, "login.html", status=exc.status, problems=[exc.message],
                           user=user[:64], project=project[:64], domain=domain[:64],
                           csrf=request.session["csrf"])
        _keep(request, signed)
        request.session["root_token"] = signed.token
    else:
        request.session["token"] = f"{user}:{project}"
    request.session["csrf"] = secrets.token_urlsafe(24)
    return RedirectResponse("/viewer/messages", status_code=303)


def _keep(request: Request, signed: signin.SignIn) -> None:
    """The session of a Keystone sign-in: its token, names to show, projects to switch to."""
    request.session["token"] = signed.token
    request.session["names"] = {"user": signed.user_name, "project": signed.project_name}
    request.session["projects"] = signin.projects(_reader(request).settings, signed.token)


@router.post("/language")
def choose_language(request: Request, choice: str = Form(""), csrf: str = Form(""),
                    back: str = Form("")) -> Response:
    """Keep the reader's language in a cookie; "auto" goes back to the browser's."""
    _check_form_token(request, csrf)
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


@router.post("/project")
def switch_project(request: Request, project_id: str = Form(""), csrf: str = Form("")) -> Response:
    """Keystone: a token for another of the user's projects, rescoped from the current one.

    The old token is not revoked here: Keystone revokes every token rescoped from
    a revoked one, so that would end the new token too. Sign-out revokes the
    token signed in with, and with it every token of the session.
    """
    _caller(request)
    _check_form_token(request, csrf)
    settings = _reader(request).settings
    if settings.auth_strategy != "keystone":
        raise NotFound("The resource could not be found.")
    if project_id not in {pid for pid, _ in request.session.get("projects", [])}:
        raise BadRequest("Choose one of your projects.")
    signed = signin.switch_project(settings, request.session["token"], project_id)
    _keep(request, signed)
    return RedirectResponse("/viewer/messages", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    if csrf and secrets.compare_digest(csrf, request.session.get("csrf", "")):
        session = request.session
        tokens = {t for t in (session.get("root_token"), session.get("token")) if t is not None}
        settings = _reader(request).settings
        request.session.clear()
        if settings.auth_strategy == "keystone":
            for token in tokens:
                signin.revoke(settings, token)
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
    query = _reader(request).parse_view(scope, _list_params(state), max_limit=PAGE_SIZE,
                                        paged=False)
    rows = _reader(request).walk(scope, query, EXPORT_PAGE)
    body = export.lines(fmt, rows, _reader(request).catalog, Audience.of(scope.all_projects))
    return StreamingResponse(body, media_type=export.FORMATS[fmt],
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
def delete(request: Request, message_id: str, csrf: str = Form("")) -> Response:
    scope = _guard(request)
    if not secrets.compare_digest(csrf, request.session.get("csrf", "")):
        raise BadRequest("The form expired; reload the page and try again.")
    row = _reader(request).delete(scope, message_id)
    request.session["flash"] = f"Message {row.id} deleted."
    return RedirectResponse("/viewer/messages", status_code=303)


def _open_stream(request: Request) -> tuple[Scope, ListQuery, int]:
    """Blocking (Keystone, the store): the stream's scope, query and first cursor."""
    scope = _guard(request)
    state = _filters(request, scope.all_projects)
    state.pop("marker", None)
    query = _parse(request, scope, _list_params(state), STREAM_BATCH)
    requested = _cursor(request)
    newest = _last_seq(request, scope)
    # A cursor past the newest seq (a store restored from a backup) would hide
    # the next rows: start from the newest instead.
    return scope, query, newest if requested is None else min(requested, newest)


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
    if not revalidate:
        return True
    try:
        again = _reader(request).session_caller(token)
    except Unauthorized:
        if isinstance(live, LiveSession):
            live.end()  # as a page would: the copied cookie stops everywhere
        return False
    return again == caller


@router.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    """Server-sent events: rows stored after the cursor that match the page's filters.

    The cursor is the stored order (seq), not created_at: a row a producer
    stamped earlier but the store received later (a spool replayed after an
    outage, a slower collector) still comes, in the order rows became visible.
    Each event carries its seq as the SSE id, so a reconnecting browser
    resumes where it was (Last-Event-ID) instead of where the page started.
    The session is checked on every poll and its token re-validated every
    STREAM_RECHECK_SECONDS: once signed out or revoked, an ``event: signedout``
    ends the stream.
    """
    scope, query, cursor = await run_in_threadpool(_open_stream, request)
    token = request.session["token"]  # _guard passed: the session holds one
    is_admin = scope.all_projects

    async def events():  # type: ignore[no-untyped-def]
        nonlocal cursor
        yield "retry: 2000\n\n"
        loop = asyncio.get_running_loop()
        started = loop.time()
        recheck_at = started + STREAM_RECHECK_SECONDS
        while loop.time() - started < STREAM_MAX_SECONDS:
            if await request.is_disconnected():
                return
            now = loop.time()
            try:
                signed_in = await run_in_threadpool(_still_signed_in, request, token,
                                                    scope.caller, now >= recheck_at)
            except KeystoneUnavailable:
                # Keystone cannot vouch for the token: no rows until it can (checked
                # again at the next poll), but keep the stream, as for the store.
                yield "event: unavailable\ndata: Keystone is not answering.\n\n"
                await asyncio.sleep(STREAM_POLL_SECONDS)
                continue
            if not signed_in:
                yield "event: signedout\ndata: Signed out.\n\n"
                return
            if now >= recheck_at:
                recheck_at = now + STREAM_RECHECK_SECONDS
            try:
                rows, cursor = await run_in_threadpool(_poll, request, scope, query, cursor)
            except UNAVAILABLE:
                # Keep the stream (a browser does not reopen one that answered 503):
                # say so, and poll again; the cursor has not moved, nothing is lost.
                yield "event: unavailable\ndata: The database is not answering.\n\n"
                await asyncio.sleep(STREAM_POLL_SECONDS)
                continue
            counts = await run_in_threadpool(_reader(request).repeats, scope, rows)
            for row in rows:
                html = templates.get_template("_row.html").render(
                    row=_row(request, scope, row, counts.get(row.id, 0)), is_admin=is_admin,
                    text_lang=content_language(language.chosen(request)))
                data = "\n".join(f"data: {line}" for line in html.splitlines())
                yield f"id: {row.seq}\nevent: message\n{data}\n\n"
            # An id with no data moves the browser's Last-Event-ID without an event.
            yield f"id: {cursor}\n\n"
            await asyncio.sleep(STREAM_POLL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})


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
    return _render(request, "error.html", status=exc.status, status_code=exc.status,
                   message=exc.message)
