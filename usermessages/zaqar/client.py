"""A small, bounded client of Zaqar's v2 HTTP API (only what usermessages needs).

Every call has a timeout. Every request names its project in X-Project-ID
(Zaqar without Keystone trusts it; with Keystone an X-Auth-Token scoped to
that project is sent too), so the same client serves every project queue.
Zaqar's own limits shape the API here: at most 20 messages per claim and per
delete, TTLs and claim graces of at least 60 seconds, 256 KiB per post.

Lists in a query (``ids=a,b,c``) are written by hand: Zaqar splits them on
literal commas before it percent-decodes, so the ``%2C`` an encoder writes
makes one unknown id of the whole list, and Zaqar answers 204 to a delete of
an unknown id. Every other value is percent-encoded as usual.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from usermessages.config import DEFAULTS
from usermessages.errors import UserMessagesError

MAX_PER_CALL = 20  # Zaqar's limit on claim ``limit`` and on ``ids`` in one delete
MIN_TTL = 60  # Zaqar refuses message TTLs, claim TTLs and graces below this
MAX_POST_BYTES = 262_144  # Zaqar's default max_messages_post_size: one post's whole body
MAX_PROJECT = 256  # Zaqar's PROJECT_ID_MAX_LEN


class ZaqarError(UserMessagesError):
    """Zaqar is unreachable (``status`` None), or refused a request with ``status``.

    A request that cannot be made at all (a project id no header can carry) is
    refused as Zaqar would refuse it: 400.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """Zaqar refused this request itself (4xx): sending it again cannot help.

        Except a 401: the credentials were refused (a token expired), not the
        request; it succeeds once the operator renews them, so what it carried is
        kept and sent again rather than dropped. Like 408 and 429, it is retried.
        """
        return self.status is not None and 400 <= self.status < 500 and self.status not in (
            401, 408, 429)


@dataclass(frozen=True)
class QueuedMessage:
    """A message read or claimed from a queue."""

    id: str
    body: Any
    age: int
    ttl: int


@dataclass(frozen=True)
class Claim:
    id: str
    messages: list[QueuedMessage]


class ZaqarClient:
    """Zaqar v2 over one pooled HTTP connection; thread-safe (httpx.Client is)."""

    def __init__(self, url: str, *, timeout: float = DEFAULTS.zaqar_timeout,
                 auth_token: str = "") -> None:
        self._base = url.rstrip("/")
        headers = {"Client-ID": str(uuid.uuid4()), "Accept": "application/json"}
        if auth_token:
            headers["X-Auth-Token"] = auth_token
        self._http = httpx.Client(base_url=self._base, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ZaqarClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------

    def _call(self, method: str, path: str, project: str, *, expect: tuple[int, ...],
              json: Any = None, params: dict[str, Any] | None = None,
              content: bytes | None = None) -> httpx.Response:
        if not carries_project(project):
            raise ZaqarError(f"not sent: Zaqar cannot carry the project id {project[:300]!r}",
                             400)
        headers = {"X-Project-ID": project}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(method, path, json=json, params=params,
                                          content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ZaqarError(f"Zaqar at {self._base} unreachable: "
                             f"{type(exc).__name__}: {exc}") from exc
        if response.status_code not in expect:
            raise ZaqarError(f"Zaqar refused {method} {path} for project {project}: "
                             f"{response.status_code} {_description(response)}",
                             response.status_code)
        return response

    # --- health -----------------------------------------------------------------

    def ping(self) -> bool:
        """True when Zaqar and its storage answer (``/v2/ping`` checks Redis)."""
        try:
            self._call("GET", "/v2/ping", "ping", expect=(204,))
        except ZaqarError:
            return False
        return True

    # --- queues and messages ----------------------------------------------------

    def queues(self, project: str) -> list[str]:
        """The queue names a project has (v2 queues are lazy: only the listing is reliable)."""
        names: list[str] = []
        params: dict[str, Any] = {"limit": MAX_PER_CALL}
        while True:
            page = self._call("GET", "/v2/queues", project, expect=(200, 204),
                              params=params)
            queues = page.json().get("queues", []) if page.status_code == 200 else []
            names += [q["name"] for q in queues]
            if len(queues) < params["limit"]:
                return names
            params["marker"] = queues[-1]["name"]

    def post(self, project: str, queue: str, messages: list[dict[str, Any]]) -> list[str]:
        """Post messages ({"ttl", "body"}) in one request; returns their Zaqar ids."""
        response = self._call("POST", f"/v2/queues/{queue}/messages", project,
                              expect=(201,), json={"messages": messages})
        return [href.rsplit("/", 1)[-1] for href in response.json()["resources"]]

    def post_encoded(self, project: str, queue: str, bodies: Sequence[bytes],
                     ttl: int) -> None:
        """Post bodies that are JSON already (the SDK's envelopes) in one request.

        The request is written around them, not decoded and encoded again: the
        forwarder that calls this shares the GIL with the SDK's callers.
        """
        self._call("POST", f"/v2/queues/{queue}/messages", project, expect=(201,),
                   content=encoded_post(bodies, ttl))

    def list(self, project: str, queue: str, *, limit: int = 20,
             marker: str | None = None) -> tuple[list[QueuedMessage], str | None]:
        """One page of a queue's unclaimed messages (every client's) and the next marker.

        (``include_claimed`` is not offered: Zaqar's Redis driver fails on it.)
        """
        params: dict[str, Any] = {"echo": "true", "limit": limit}
        if marker:
            params["marker"] = marker
        response = self._call("GET", f"/v2/queues/{queue}/messages", project,
                              expect=(200, 204), params=params)
        if response.status_code == 204:
            return [], None
        document = response.json()
        messages = [_message(m) for m in document.get("messages", [])]
        following = None
        for link in document.get("links", []):
            if link.get("rel") == "next" and "marker=" in link.get("href", ""):
                following = httpx.URL(link["href"]).params.get("marker")
        return messages, following if messages else None

    # builtins.list: inside this class, ``list`` is the method above.
    def read_all(self, project: str, queue: str, *,
                 most: int = 10_000) -> builtins.list[QueuedMessage]:
        """Every unclaimed message of a queue (up to ``most``), without consuming them.

        Stops when a page brings nothing new: Zaqar's Redis driver answers the
        same page again for a marker at the head of the queue.
        """
        found: dict[str, QueuedMessage] = {}
        marker = None
        while len(found) < most:
            page, marker = self.list(project, queue, marker=marker)
            fresh = [m for m in page if m.id not in found]
            found.update((m.id, m) for m in fresh)
            if not fresh or marker is None:
                break
        return list(found.values())

    def claim(self, project: str, queue: str, *, ttl: int, grace: int,
              limit: int = MAX_PER_CALL) -> Claim | None:
        """Claim up to ``limit`` free messages, or None when there are none."""
        response = self._call("POST", f"/v2/queues/{queue}/claims", project,
                              expect=(201, 204), params={"limit": min(limit, MAX_PER_CALL)},
                              json={"ttl": max(ttl, MIN_TTL), "grace": max(grace, MIN_TTL)})
        if response.status_code == 204:
            return None
        claim_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        return Claim(claim_id, [_message(m) for m in response.json()["messages"]])

    def release(self, project: str, queue: str, claim_id: str) -> None:
        """Give a claim's messages back to the queue at once (instead of at its expiry)."""
        self._call("DELETE", f"/v2/queues/{queue}/claims/{claim_id}", project,
                   expect=(204, 404))

    def delete(self, project: str, queue: str, ids: builtins.list[str],
               claim_id: str | None) -> None:
        """Delete messages by id, 20 per request (Zaqar's limit).

        ``claim_id`` names the claim they were taken under; Zaqar checks it only
        with its ``message_delete_with_claim_id`` option on.
        """
        for start in range(0, len(ids), MAX_PER_CALL):
            query = f"ids={_csv(ids[start:start + MAX_PER_CALL])}"
            if claim_id:
                query += f"&claim_ids={_csv([claim_id])}"
            self._call("DELETE", f"/v2/queues/{queue}/messages?{query}", project,
                       expect=(204,))

    # --- subscriptions ----------------------------------------------------------

    def subscribe(self, project: str, queue: str, subscriber: str, *, ttl: int,
                  options: dict[str, Any] | None = None) -> str:
        """Create (or find: Zaqar answers the same id again) a subscription; its id."""
        response = self._call("POST", f"/v2/queues/{queue}/subscriptions", project,
                              expect=(201,), json={"subscriber": subscriber,
                                                   "ttl": max(ttl, MIN_TTL),
                                                   "options": options or {}})
        return str(response.json()["subscription_id"])

    def subscriptions(self, project: str, queue: str) -> builtins.list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": MAX_PER_CALL}
        while True:
            response = self._call("GET", f"/v2/queues/{queue}/subscriptions", project,
                                  expect=(200, 204), params=params)
            page = response.json().get("subscriptions", []) if response.status_code == 200 else []
            found += page
            if len(page) < params["limit"]:
                return found
            params["marker"] = page[-1]["id"]

    def unsubscribe(self, project: str, queue: str, subscription_id: str) -> None:
        self._call("DELETE", f"/v2/queues/{queue}/subscriptions/{subscription_id}", project,
                   expect=(204,))


def carries_project(project: str) -> bool:
    """Whether a project id can name a Zaqar project: it travels as a header value.

    Printable ASCII only (httpx cannot encode the rest, h11 refuses control
    characters), no surrounding blanks (HTTP strips them: another project's
    queue), at most Zaqar's 256 characters.
    """
    return (0 < len(project) <= MAX_PROJECT and project.isascii() and project.isprintable()
            and project == project.strip())


def encoded_post(bodies: Sequence[bytes], ttl: int) -> bytes:
    """The body of a post of ``bodies`` (each one JSON document), each with ``ttl``."""
    head = b'{"ttl":%d,"body":' % ttl
    return b'{"messages":[' + b",".join(head + body + b"}" for body in bodies) + b"]}"


def _csv(values: Sequence[str]) -> str:
    """A query list as Zaqar reads it: literal commas between percent-encoded values."""
    return ",".join(quote(value, safe="") for value in values)


def _message(raw: dict[str, Any]) -> QueuedMessage:
    return QueuedMessage(id=raw["id"], body=raw.get("body"), age=int(raw.get("age", 0)),
                         ttl=int(raw.get("ttl", 0)))


def _description(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(document, dict):
        return str(document.get("description") or document.get("title") or document)[:200]
    return str(document)[:200]
