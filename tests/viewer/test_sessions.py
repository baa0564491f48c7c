"""The server-side session layer: sessions in the store, shared by every process over it.

A switch (project or system) in one tab replaces the session's id; a page that
was in flight in another tab with the old id must neither clear the browser's
new cookie nor bring the old session back. Two apps over one store (two
workers, two nodes) serve the same browser; what the store holds opens nothing
without the cookie.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from usermessages.store.schema import viewer_sessions
from usermessages.viewer.sessions import LIVE, ServerSessionMiddleware, SessionStore

COOKIE = "usermessages_viewer"


async def _unavailable(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("unavailable", status_code=503)


def _site(engine: Engine) -> tuple[TestClient, SessionStore]:
    store = SessionStore(engine, 60)

    async def page(request: Request) -> PlainTextResponse:
        do = request.query_params["do"]
        if do == "sign-in":
            request.session.update(token="t1", names={"user": "alice"})
        elif do == "switch":
            request.session["token"] = "t2"
        elif do == "sign-out":
            request.session.clear()
        elif do == "show":
            live = request.scope[LIVE].current()
            return PlainTextResponse(f"{request.session.get('token')} {live and live['token']}")
        else:
            # What another tab's switch does meanwhile: the stored session is gone.
            store.drop(request.cookies[COOKIE])
            if do == "ended-elsewhere-then-refused":
                request.session.clear()  # its token was revoked by that switch
            else:
                request.session["flash"] = "something"
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/viewer/page", page)])
    return TestClient(ServerSessionMiddleware(app, store=store, cookie=COOKIE, secure=False,
                                              unavailable=_unavailable)), store


def test_sign_in_switch_and_sign_out(engine):
    client, store = _site(engine)
    anonymous = client.get("/viewer/page?do=show")
    assert anonymous.text == "None None" and len(store) == 0  # an id, and no row for it
    before = client.cookies[COOKIE]
    first = client.get("/viewer/page?do=sign-in").headers["set-cookie"]
    old = client.cookies[COOKIE]
    assert old != before and old in first and len(store) == 1  # signing in makes a new id
    switched = client.get("/viewer/page?do=switch").headers["set-cookie"]
    new = client.cookies[COOKIE]
    assert new != old and new in switched and len(store) == 1  # a new id, the old dropped
    assert client.get("/viewer/page?do=sign-out").status_code == 200
    assert len(store) == 0
    assert client.get("/viewer/page?do=show").text == "None None"


def test_a_request_whose_session_ended_elsewhere_leaves_the_cookie_alone(engine):
    client, store = _site(engine)
    client.get("/viewer/page?do=show")
    client.get("/viewer/page?do=sign-in")
    answer = client.get("/viewer/page?do=ended-elsewhere-then-refused")
    assert "set-cookie" not in answer.headers  # the browser's newer cookie survives
    assert len(store) == 0


def test_a_request_whose_session_ended_elsewhere_does_not_bring_it_back(engine):
    client, store = _site(engine)
    client.get("/viewer/page?do=show")
    client.get("/viewer/page?do=sign-in")
    answer = client.get("/viewer/page?do=ended-elsewhere-then-touched")
    assert "set-cookie" not in answer.headers
    assert len(store) == 0  # not saved again under the dropped id


def test_two_processes_over_one_store_serve_one_browser(engine):
    """Signed in through one, read and signed out through the other: it ends on both."""
    node_a, _ = _site(engine)
    node_b, _ = _site(engine)
    node_a.get("/viewer/page?do=show")
    node_a.get("/viewer/page?do=sign-in")
    node_b.cookies[COOKIE] = node_a.cookies[COOKIE]
    assert node_b.get("/viewer/page?do=show").text == "t1 t1"
    node_b.get("/viewer/page?do=sign-out")
    assert node_a.get("/viewer/page?do=show").text == "None None"


def test_the_store_holds_no_token_and_no_cookie(engine):
    client, _ = _site(engine)
    client.get("/viewer/page?do=show")
    client.get("/viewer/page?do=sign-in")
    sid = client.cookies[COOKIE]
    with engine.connect() as conn:
        ((key, data),) = conn.execute(select(viewer_sessions.c.id, viewer_sessions.c.data))
    assert sid not in key and sid not in data
    assert "t1" not in data and "alice" not in data
    # Another id (a guessed or stolen row key) does not open the row.
    stranger = SessionStore(engine, 60)
    assert stranger.load(key) is None and stranger.load(sid + "x") is None
    assert stranger.load(sid) == {"token": "t1", "names": {"user": "alice"}}
