"""The keystone viewer's live stream ends when its session does: sign-out in another
request, or the token revoked in Keystone; the API's stream (the same loop) ends when
its token is revoked. The real app served by uvicorn in this process (real HTTP
streaming; the test can read the token its session holds), a real Keystone."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from tests import servers
from tests.api.conftest import row
from tests.keystone.viewer_client import csrf, session_store, sign_in, stored
from tests.viewer.test_stream import Stream
from tests.web import sse
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import writer
from usermessages.viewer.sessions import SessionStore
from usermessages.web.events import RECHECK_SECONDS

# The stream re-checks its session every poll (1 s) and its token every
# RECHECK_SECONDS; the rest is margin for a loaded machine. Without the
# checks a stream runs for MAX_SECONDS (300 s).
BOUND = RECHECK_SECONDS + 12


@pytest.fixture
def site(keystone_settings: Settings, engine: Engine) -> Iterator[tuple[str, SessionStore]]:
    """The app in keystone mode on a free port; its viewer's session store."""
    app = create_app(keystone_settings, engine=engine)
    with servers.in_process(app) as served:
        yield served.base, session_store(app)


def _open(site: str, user: str) -> tuple[httpx.Client, Stream]:
    """A signed-in browser with the live stream open (and validated: it answered 200)."""
    client = httpx.Client(base_url=site, timeout=10)
    assert sign_in(client, user, "alpha").status_code == 303
    stream = Stream(client, "/viewer/stream")
    assert stream.status.get(timeout=10) == 200
    return client, stream


def _ends_signed_out(stream: Stream, since: float) -> float:
    """The stream says signedout, then closes; how long after ``since`` it said so."""
    try:
        notice = stream.notices.get(timeout=BOUND)
    except queue.Empty:
        raise AssertionError(f"the stream was still open {BOUND} s later") from None
    assert notice == "signedout"
    took = time.monotonic() - since
    stream._thread.join(5)
    assert not stream._thread.is_alive(), "the stream stayed open after signedout"
    return took


def test_sign_out_in_another_request_ends_an_open_stream(site):
    base, _ = site
    client, stream = _open(base, "member")
    # Another browser holding a copy of the cookie streams too.
    copy = httpx.Client(base_url=base, timeout=10, cookies=client.cookies)
    copied = Stream(copy, "/viewer/stream")
    assert copied.status.get(timeout=10) == 200
    page = client.get("/viewer/messages")
    signed_out_at = time.monotonic()
    assert client.post("/viewer/logout", data={"csrf": csrf(page.text)}).status_code in (
        200, 303)
    for open_stream in (stream, copied):
        _ends_signed_out(open_stream, signed_out_at)
    # And neither can open another one.
    assert copy.get("/viewer/stream").status_code == 401


def test_a_token_revoked_in_keystone_ends_an_open_stream(site, cloud):
    base, sessions = site
    client, stream = _open(base, "reader")
    data = stored(client, sessions)
    assert data is not None
    revoked_at = time.monotonic()
    cloud.revoke(data["token"])
    _ends_signed_out(stream, revoked_at)
    # The stream dropped the session: the cookie signs nobody in any more.
    assert len(sessions) == 0
    page = client.get("/viewer/messages", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/viewer/login"


def test_while_keystone_cannot_vouch_for_the_token_no_row_is_streamed(site, cloud, engine):
    base, _ = site
    client, stream = _open(base, "reader")
    cloud.keystone.stop()
    try:
        try:
            notice = stream.notices.get(timeout=BOUND)
        except queue.Empty:
            raise AssertionError(f"no word from the stream {BOUND} s after Keystone stopped"
                                 ) from None
        assert notice == "unavailable"
        message = row(cloud.projects["alpha"])
        with engine.begin() as conn:
            writer.insert(conn, [message])
        # Fail closed: the row waits for Keystone (the stream polls every second).
        with pytest.raises(queue.Empty):
            stream.events.get(timeout=3)
    finally:
        cloud.keystone.start()
    assert stream.next_event(timeout=BOUND + 20)[1] == message["id"]


def test_a_token_revoked_in_keystone_ends_an_open_api_stream(site, cloud):
    base, _ = site
    token = cloud.token("reader", "alpha")
    project = cloud.projects["alpha"]
    stream = sse.Stream(httpx.Client(timeout=10), sse.api_url(base, project),
                        {"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.5"})
    assert stream.response().status_code == 200
    revoked_at = time.monotonic()
    cloud.revoke(token)
    event = stream.next_event("signedout", timeout=BOUND)
    assert event.fields["data"] == "Signed out."
    print(f"\nthe API stream said signedout {time.monotonic() - revoked_at:.1f} s after the "
          f"revocation")
    assert stream.next_block() is None, "the stream stayed open after signedout"
