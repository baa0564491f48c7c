"""The server-side session layer when a session ends elsewhere while a request runs.

A switch (project or system) in one tab replaces the session's id; a page that
was in flight in another tab with the old id must neither clear the browser's
new cookie nor bring the old session back.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from usermessages.viewer.sessions import ServerSessionMiddleware, SessionStore

COOKIE = "usermessages_viewer"


def _site() -> tuple[TestClient, SessionStore]:
    store = SessionStore(60)

    async def page(request: Request) -> PlainTextResponse:
        do = request.query_params["do"]
        if do == "sign-in":
            request.session.update(token="t1", csrf="c1")
        elif do == "switch":
            request.session["token"] = "t2"
        elif do == "sign-out":
            request.session.clear()
        else:
            # What another tab's switch does meanwhile: the stored session is gone.
            store.drop(request.cookies[COOKIE])
            if do == "ended-elsewhere-then-refused":
                request.session.clear()  # its token was revoked by that switch
            else:
                request.session["flash"] = "something"
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/viewer/page", page)])
    return TestClient(ServerSessionMiddleware(app, store=store, cookie=COOKIE,
                                              secure=False)), store


def test_sign_in_switch_and_sign_out_set_and_clear_the_cookie():
    client, store = _site()
    first = client.get("/viewer/page?do=sign-in").headers["set-cookie"]
    old = client.cookies[COOKIE]
    assert old in first and len(store) == 1
    switched = client.get("/viewer/page?do=switch").headers["set-cookie"]
    new = client.cookies[COOKIE]
    assert new != old and new in switched and len(store) == 1  # a new id, the old dropped
    out = client.get("/viewer/page?do=sign-out").headers["set-cookie"]
    assert "max-age=0" in out.lower() and len(store) == 0


def test_a_request_whose_session_ended_elsewhere_leaves_the_cookie_alone():
    client, store = _site()
    client.get("/viewer/page?do=sign-in")
    answer = client.get("/viewer/page?do=ended-elsewhere-then-refused")
    assert "set-cookie" not in answer.headers  # the browser's newer cookie survives
    assert len(store) == 0


def test_a_request_whose_session_ended_elsewhere_does_not_bring_it_back():
    client, store = _site()
    client.get("/viewer/page?do=sign-in")
    answer = client.get("/viewer/page?do=ended-elsewhere-then-touched")
    assert "set-cookie" not in answer.headers
    assert len(store) == 0  # not saved again under the dropped id
