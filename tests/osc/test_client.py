"""The plugin's client without openstackclient: versions asked for, negotiation, and a
crafted server (a page linking back to itself, a body that is not a fault, a download cut
short) over a real keystoneauth session and a real HTTP server."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keystoneauth1 import adapter, session, token_endpoint
from osc_lib.exceptions import CommandError

from usermessages.osc.client import (
    HIGHEST,
    MESSAGES,
    MessageClient,
    negotiate,
    requested_version,
)


@given(st.text(max_size=30))
def test_any_text_is_a_version_or_a_one_line_refusal(text: str) -> None:
    try:
        version = requested_version(text)
    except CommandError as exc:
        assert "\n" not in str(exc) and "--os-message-api-version" in str(exc)
        return
    assert version is None or (version[0] == 3 and version >= MESSAGES)


@pytest.mark.parametrize(("text", "expected"), [
    ("3", None), ("3.latest", None), ("3.3", (3, 3)), ("3.71", (3, 71)), (" 3.5 ", (3, 5))])
def test_versions_asked_for(text: str, expected: tuple[int, int] | None) -> None:
    assert requested_version(text) == expected


versions = st.tuples(st.just(3), st.integers(0, 120))


@given(versions, versions, st.none() | versions)
def test_negotiation_speaks_only_what_both_sides_offer(low, high, requested) -> None:
    try:
        chosen = negotiate(requested, low, high, "http://api.example/v3")
    except CommandError as exc:
        assert "\n" not in str(exc)
        assert (requested is not None and not low <= requested <= high) or (
            requested is None and min(high, HIGHEST) < max(low, MESSAGES))
        return
    assert low <= chosen <= high
    assert chosen == (requested if requested is not None else min(high, HIGHEST))


def test_a_server_without_microversions_has_no_messages() -> None:
    with pytest.raises(CommandError, match="announces no microversions"):
        negotiate(None, None, None, "http://api.example/v3")


@contextlib.contextmanager
def crafted(answers: dict[str, tuple[int, bytes, bool]]) -> Iterator[MessageClient]:
    """A real HTTP server answering each path with (status, body, cut short?), and the
    plugin's client on it through a keystoneauth session with a token."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status, body, cut = answers[self.path.split("?")[0]]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            # A cut answer promises twice what it sends; every answer closes its
            # connection (and says so, so the client never reuses a closed one).
            self.send_header("Content-Length", str(len(body) * (2 if cut else 1)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}/v3/p1"
    auth = token_endpoint.Token(base, "a-token")
    try:
        yield MessageClient(adapter.Adapter(session.Session(auth=auth),
                                            service_type="block-storage",
                                            default_microversion="3.5"), base)
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_that_links_back_stops_the_walk() -> None:
    page = json.dumps({"series": [{"id": "s1"}], "series_links": [
        {"rel": "next", "href": "PLACEHOLDER"}]})
    answers: dict[str, tuple[int, bytes, bool]] = {}
    with crafted(answers) as client:
        looping = page.replace("PLACEHOLDER", f"{client.endpoint}/messages-ext/series")
        answers["/v3/p1/messages-ext/series"] = (200, looping.encode(), False)
        with pytest.raises(CommandError, match="links to a page it already gave"):
            client.pages("messages-ext/series", "series", {}, None)
        # With a limit the walk stops there.
        assert client.pages("messages-ext/series", "series", {}, 1) == [{"id": "s1"}]


def test_errors_that_are_not_fault_bodies_and_cut_downloads() -> None:
    answers = {"/v3/p1/html": (502, b"<html>Bad Gateway</html>", False),
               "/v3/p1/fault": (404, b'{"itemNotFound": {"code": 404, "message": "No."}}',
                                False),
               "/v3/p1/cut": (200, b'{"id": "m1"}\n' * 100, True)}
    with crafted(answers) as client:
        with pytest.raises(CommandError) as html:
            client.get("html")
        assert str(html.value) == "The messages API answered without a fault body. (HTTP 502)"
        with pytest.raises(CommandError, match=r"^No\. \(HTTP 404\)$"):
            client.get("fault")
        chunks: list[bytes] = []
        with pytest.raises(CommandError, match="was cut short"):
            chunks.extend(client.download("cut", {}))
        assert answers["/v3/p1/cut"][1].startswith(b"".join(chunks))
