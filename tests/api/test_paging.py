"""Pagination and sorting (§2.2, §3.1, §3.4, §13 items 10-11) on SQLite and PostgreSQL.

The walk tests follow ``next`` links the way cinderclient does and check that
every message comes back exactly once, in the order Cinder's tie-breakers
give, for every sort key the API accepts and for mixed directions.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import headers, row
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.service import create_app
from usermessages.store.messages import SORT_KEYS

P, Q = "aaaa1111", "bbbb2222"


def _path(href: str) -> str:
    assert href.startswith("http://testserver/"), href
    return href.removeprefix("http://testserver")


def _walk(client: TestClient, url: str, who: tuple[str, str] = ("admin", P),
          version: str = "3.5") -> list[str]:
    """Follow next links to the end; return every id seen, in order."""
    ids: list[str] = []
    pages = 0
    while url:
        response = client.get(url, headers=headers(*who, version))
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [m["id"] for m in body["messages"]]
        links = body.get("messages_links", [])
        url = _path(links[0]["href"]) if links else ""
        pages += 1
        assert pages < 100, "the server does not honour marker"
    return ids


def _value(message: dict, key: str):
    # The store sorts a NULL (project of SERVICE rows, action of legacy rows) as "".
    value = message[key]
    return "" if value is None else value


def _reference(rows: list[dict], sort: list[tuple[str, str]]) -> list[str]:
    """Cinder's order: the given keys, then created_at and id in the first direction."""
    given = dict(sort)
    keys = sort + [(k, sort[0][1]) for k in ("created_at", "id") if k not in given]
    ordered = list(rows)
    for key, direction in reversed(keys):  # stable sorts, last key first
        ordered.sort(key=lambda r: _value(r, key), reverse=direction == "desc")
    return [r["id"] for r in ordered]


def _varied_rows() -> list[dict]:
    """23 messages in two projects with ties everywhere, plus admin-only and legacy rows."""
    rows = [row(P if i % 3 else Q, minutes=i // 4,  # four per minute: created_at ties
                resource_uuid=f"vol-{i % 5}" if i % 4 else "",
                action=[Action.ATTACH_VOLUME, Action.EXTEND_VOLUME][i % 2],
                resource=[Resource.VOLUME, Resource.VOLUME_SNAPSHOT][i % 2 if i % 7 else 0],
                level=["ERROR", "WARNING"][i % 3 == 0], request_id=f"req-{i % 6}")
            for i in range(20)]
    rows += [
        row(None, minutes=1, kind=Kind.SERVICE, resource=Resource.SERVICE,
            action=Action.SERVICE_STATUS, detail=Detail.SERVICE_DOWN),
        row(None, minutes=2, kind=Kind.SYSTEM, resource=Resource.SYSTEM,
            action=Action.MESSAGE_BUS, detail=Detail.BROKER_UNREACHABLE),
    ]
    legacy = row(P, minutes=3)
    legacy.update(action_id=None, detail_id=None, event_id="VOLUME_000002")
    return [*rows, legacy]


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_next_links_walk_every_message_once_for_every_sort_key(client, seed, key):
    rows = seed(*_varied_rows())
    for direction in ("asc", "desc"):
        sort = [(key, direction)]
        expected = _reference(rows, sort)
        assert _walk(client, f"/v3/{P}/messages?limit=4&sort={key}:{direction}") == expected
        # The deprecated form orders the same way.
        assert _walk(client, f"/v3/messages?limit=5&sort_key={key}&sort_dir={direction}"
                     ) == expected


MIXED = [
    [("event_id", "asc"), ("created_at", "desc")],
    [("created_at", "asc"), ("id", "desc")],
    [("resource_type", "desc"), ("id", "asc")],
    [("message_level", "asc"), ("project_id", "desc"), ("request_id", "asc")],
    [("action_id", "desc"), ("resource_uuid", "asc"), ("expires_at", "desc")],
]


def test_next_links_walk_every_message_once_with_mixed_directions(client, seed):
    rows = seed(*_varied_rows())
    for sort in MIXED:
        query = ",".join(f"{k}:{d}" for k, d in sort)
        assert _walk(client, f"/v3/{P}/messages?limit=3&sort={query}") == (
            _reference(rows, sort)), query


def test_a_project_user_walks_only_their_project(client, seed):
    rows = seed(*_varied_rows())
    mine = [r for r in rows if r["project_id"] == P and r["kind"] == "API"]
    for sort in ([("created_at", "desc")], [("event_id", "asc"), ("created_at", "desc")]):
        query = ",".join(f"{k}:{d}" for k, d in sort)
        assert _walk(client, f"/v3/{P}/messages?limit=2&sort={query}", who=("u", P)) == (
            _reference(mine, sort))


def test_default_order_is_newest_first_with_id_breaking_ties(client, seed):
    rows = seed(*[row(P, minutes=i // 2) for i in range(6)])
    listed = client.get(f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]
    assert [m["id"] for m in listed] == _reference(rows, [("created_at", "desc")])


def test_sort_forms(client, seed):
    rows = seed(row(P, minutes=0, action=Action.EXTEND_VOLUME), row(P, minutes=1))

    def ids(query: str) -> list[str]:
        response = client.get(f"/v3/{P}/messages{query}", headers=headers("u", P))
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]

    old, new = rows[0]["id"], rows[1]["id"]
    assert ids("") == [new, old]
    assert ids("?sort=created_at:asc") == [old, new]
    assert ids("?sort=created_at") == [new, old]  # desc unless told
    assert ids("?sort=event_id:asc") == [new, old]  # ..._002_ attach < ..._003_ extend
    assert ids("?sort=event_id") == [old, new]
    assert ids("?sort_key=event_id&sort_dir=asc") == [new, old]
    assert ids("?sort_key=event_id") == [old, new]
    assert ids("?sort_dir=asc") == [old, new]  # created_at by default


SORT_CONFLICT = ("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used "
                 "with the 'sort' parameter.")
BAD_DIRECTION = "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."
SORT_ERRORS = [
    ("sort=created_at&sort_key=id", SORT_CONFLICT),
    ("sort=created_at&sort_dir=asc", SORT_CONFLICT),
    ("sort=bogus", "Invalid input received: Invalid sort key"),
    ("sort=guaranteed_until", "Invalid input received: Invalid sort key"),  # not a column
    ("sort=event_id:asc,host:desc", "Invalid input received: Invalid sort key"),
    ("sort_key=user_message", "Invalid input received: Invalid sort key"),
    ("sort=event_id:up", BAD_DIRECTION),
    ("sort_dir=down", BAD_DIRECTION),
]


def test_sort_errors(client):
    for query, text in SORT_ERRORS:
        for who in ("u", "admin"):
            response = client.get(f"/v3/{P}/messages?{query}", headers=headers(who, P))
            assert response.status_code == 400, query
            assert response.json() == {"badRequest": {"code": 400, "message": text}}, query


def test_next_link_rules(client, seed):
    rows = seed(*[row(P, minutes=i) for i in range(4)])
    newest_first = [r["id"] for r in reversed(rows)]

    def get(query: str) -> dict:
        response = client.get(f"/v3/{P}/messages{query}", headers=headers("u", P))
        assert response.status_code == 200, response.text
        return response.json()

    body = get("?limit=2&message_level=ERROR&sort=created_at:desc")
    assert [m["id"] for m in body["messages"]] == newest_first[:2]
    # Original parameters in their original order, the marker last.
    assert body["messages_links"] == [{"rel": "next", "href": (
        f"http://testserver/v3/{P}/messages?limit=2&message_level=ERROR"
        f"&sort=created_at%3Adesc&marker={newest_first[1]}")}]
    # A marker already in the request is replaced, and still goes last.
    body = get(f"?marker={newest_first[0]}&limit=1")
    assert parse_qsl(urlsplit(body["messages_links"][0]["href"]).query) == [
        ("limit", "1"), ("marker", newest_first[1])]
    # Exactly full: Cinder still links, and the link leads to an empty page without one.
    full = get("?limit=4")
    assert len(full["messages"]) == 4 and "messages_links" in full
    assert get(_path(full["messages_links"][0]["href"]).split("messages", 1)[1]) == {
        "messages": []}
    assert "messages_links" not in get("?limit=5")
    assert "messages_links" not in get("")  # tempest: no links on an unpaginated list
    assert get("?limit=0") == {"messages": []}
    assert get(f"?limit=0&marker={newest_first[0]}") == {"messages": []}


def test_project_less_next_links_stay_project_less(client, seed):
    rows = seed(*[row(P, minutes=i) for i in range(3)])
    body = client.get("/v3/messages?limit=1", headers=headers("u", P)).json()
    assert body["messages_links"][0]["href"].startswith("http://testserver/v3/messages?")
    assert _walk(client, "/v3/messages?limit=1", who=("u", P)) == [
        r["id"] for r in reversed(rows)]


def test_marker_and_offset(client, seed):
    rows = seed(*[row(P, minutes=i) for i in range(5)])
    newest_first = [r["id"] for r in reversed(rows)]

    def ids(query: str) -> list[str]:
        response = client.get(f"/v3/{P}/messages?{query}", headers=headers("u", P))
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]

    assert ids(f"marker={newest_first[1]}") == newest_first[2:]
    assert ids(f"marker={newest_first[1]}&sort=created_at:asc") == newest_first[:1]
    assert ids("offset=1&limit=2") == newest_first[1:3]
    assert ids("offset=5") == []
    assert ids(f"marker={newest_first[0]}&offset=1") == newest_first[2:]
    # The offset is kept in the next link, and applied again after the marker (Cinder).
    body = client.get(f"/v3/{P}/messages?offset=1&limit=1", headers=headers("u", P)).json()
    href = body["messages_links"][0]["href"]
    assert parse_qsl(urlsplit(href).query) == [
        ("offset", "1"), ("limit", "1"), ("marker", newest_first[1])]
    assert ids(urlsplit(href).query) == [newest_first[3]]


def test_unknown_or_other_projects_marker_is_404(client, seed):
    [theirs] = seed(row(Q))
    for marker in ("nope", theirs["id"]):
        response = client.get(f"/v3/{P}/messages?marker={marker}", headers=headers("u", P))
        assert response.status_code == 404
        assert response.json() == {"itemNotFound": {
            "code": 404, "message": f"Message {marker} could not be found."}}
    # An admin may page from any project's message.
    assert client.get(f"/v3/{P}/messages?marker={theirs['id']}",
                      headers=headers("admin", P)).status_code == 200


@pytest.fixture
def capped_client(settings, engine):
    with TestClient(create_app(settings.replace(osapi_max_limit=3), engine=engine)) as c:
        yield c


def test_limit_defaults_to_and_is_capped_by_osapi_max_limit(capped_client, seed):
    rows = seed(*[row(P, minutes=i) for i in range(5)])
    newest_first = [r["id"] for r in reversed(rows)]
    body = capped_client.get(f"/v3/{P}/messages?limit=100", headers=headers("u", P)).json()
    assert [m["id"] for m in body["messages"]] == newest_first[:3]
    assert parse_qsl(urlsplit(body["messages_links"][0]["href"]).query) == [
        ("limit", "100"), ("marker", newest_first[2])]
    # No limit: the cap is the page size, and a full page links to the rest.
    body = capped_client.get(f"/v3/{P}/messages", headers=headers("u", P)).json()
    assert len(body["messages"]) == 3
    assert parse_qsl(urlsplit(body["messages_links"][0]["href"]).query) == [
        ("marker", newest_first[2])]
    assert _walk(capped_client, f"/v3/{P}/messages", who=("u", P)) == newest_first


def test_at_3_3_the_cap_still_links_to_the_rest(capped_client, seed):
    rows = seed(*[row(P, minutes=i) for i in range(5)])
    newest_first = [r["id"] for r in reversed(rows)]
    assert _walk(capped_client, f"/v3/{P}/messages", who=("u", P), version="3.3") == (
        newest_first)


def test_at_3_3_filters_sort_and_offset_are_ignored_but_paging_is_honoured(client, seed):
    rows = seed(*[row(P, minutes=i, level="WARNING" if i else "ERROR") for i in range(3)])
    newest_first = [r["id"] for r in reversed(rows)]
    body = client.get(
        f"/v3/{P}/messages?message_level=ERROR&sort=created_at:asc&offset=1&bogus=1&limit=2",
        headers=headers("u", P, "3.3")).json()
    assert [m["id"] for m in body["messages"]] == newest_first[:2]
    # Cinder links from the limit parameter at 3.3 too; we also honour the marker,
    # or openstacksdk (which sends both at 3.3) would page forever.
    rest = client.get(_path(body["messages_links"][0]["href"]),
                      headers=headers("u", P, "3.3")).json()
    assert [m["id"] for m in rest["messages"]] == newest_first[2:]
    assert "messages_links" not in client.get(
        f"/v3/{P}/messages", headers=headers("u", P, "3.3")).json()
