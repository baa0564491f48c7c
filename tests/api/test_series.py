"""GET /v3[/{project_id}]/messages-ext/series on the real app and store: counts and
exemplars, tenant isolation, admin reach, filters, paging, bad input as Cinder faults,
and Cinder's /messages body left exactly as it was."""

from __future__ import annotations

import pytest

from tests.api.conftest import headers, row
from usermessages.catalog import Detail
from usermessages.store import series

VOLUME = "0f6f1b59-3c43-4b9e-9d5f-8a3d0c2e7a10"
P1, P2 = "a" * 32, "b" * 32
MESSAGE_KEYS = {"id", "event_id", "user_message", "message_level", "created_at",
                "guaranteed_until", "request_id", "links", "resource_type", "resource_uuid"}


@pytest.fixture
def storm(seed):
    seed(*[row(P1, minutes=i, resource_uuid=VOLUME, request_id=f"req-{i}") for i in range(7)],
         row(P1, minutes=3, detail=Detail.QUOTA_EXCEED),
         row(P2, minutes=1, resource_uuid=VOLUME))


def test_a_project_sees_its_series_with_counts_and_recent_request_ids(client, storm):
    response = client.get(f"/v3/{P1}/messages-ext/series", headers=headers("u", P1))
    assert response.status_code == 200, response.text
    first, second = response.json()["series"]
    assert first["count"] == 7 and first["suppressed"] == 0
    assert first["request_ids"] == [f"req-{i}" for i in range(6, 1, -1)]
    assert first["resource_uuid"] == VOLUME and first["resource_type"] == "VOLUME"
    assert first["first_seen"] < first["last_seen"]
    assert first["user_message"].startswith("attach volume:")
    assert "project_id" not in first
    assert second["count"] == 1 and second["resource_uuid"] is None
    assert set(first) == {"id", "event_id", "resource_type", "resource_uuid", "message_level",
                          "user_message", "count", "suppressed", "first_seen", "last_seen",
                          "request_ids", "links"}
    shown = client.get(first["links"][0]["href"], headers=headers("u", P1))
    assert shown.status_code == 200 and shown.json()["series"] == first


def test_another_projects_series_is_not_found_and_not_listed(client, storm):
    theirs = client.get(f"/v3/{P2}/messages-ext/series", headers=headers("u", P2)).json()
    (only,) = theirs["series"]
    missing = client.get(f"/v3/{P1}/messages-ext/series/{only['id']}", headers=headers("u", P1))
    assert missing.status_code == 404
    assert missing.json() == {"itemNotFound": {
        "code": 404, "message": f"Series {only['id']} could not be found."}}
    foreign_url = client.get(f"/v3/{P2}/messages-ext/series", headers=headers("u", P1))
    assert foreign_url.status_code == 400 and "badRequest" in foreign_url.json()


def test_admins_read_across_projects_and_filter_by_project(client, storm):
    admin = headers("admin", P1)
    everything = client.get("/v3/messages-ext/series", headers=admin).json()["series"]
    assert sorted((s["project_id"], s["count"]) for s in everything) == [(P1, 1), (P1, 7), (P2, 1)]
    only_p2 = client.get(f"/v3/messages-ext/series?project_id={P2}&all_tenants=1",
                         headers=admin).json()["series"]
    assert [(s["project_id"], s["count"]) for s in only_p2] == [(P2, 1)]
    # A project user may not filter on the project.
    refused = client.get(f"/v3/{P1}/messages-ext/series?project_id={P2}", headers=headers("u", P1))
    assert refused.status_code == 400


def test_filters_and_paging_with_a_next_link(client, seed):
    seed(*[row(P1, minutes=i, resource_uuid=f"vol-{i}") for i in range(5)])
    url = f"/v3/{P1}/messages-ext/series?limit=2"
    seen: list[str] = []
    while url:
        body = client.get(url, headers=headers("u", P1)).json()
        seen += [s["resource_uuid"] for s in body["series"]]
        links = body.get("series_links")
        url = links[0]["href"].split("testserver", 1)[-1] if links else ""
    assert seen == [f"vol-{i}" for i in range(4, -1, -1)]
    filtered = client.get(f"/v3/{P1}/messages-ext/series?resource_uuid=vol-3",
                          headers=headers("u", P1)).json()["series"]
    assert [s["resource_uuid"] for s in filtered] == ["vol-3"]


@pytest.mark.parametrize(("query", "status"), [
    ("limit=x", 400), ("limit=-1", 400), ("sort=count", 400), ("marker=nope", 404),
    ("event_id=" + "e" * 300, 400), ("marker=a%00b", 400), ("event_id=a&event_id=b", 400),
])
def test_bad_input_is_a_cinder_fault(client, storm, query, status):
    response = client.get(f"/v3/{P1}/messages-ext/series?{query}", headers=headers("u", P1))
    assert response.status_code == status, response.text
    (fault,) = response.json().values()
    assert fault["code"] == status and "Traceback" not in fault["message"]


def test_the_series_id_is_stable_and_a_long_one_is_a_404(client, storm):
    expected = series.series_id("API", P1, row(P1)["event_id"], VOLUME)
    assert client.get(f"/v3/{P1}/messages-ext/series/{expected}",
                      headers=headers("u", P1)).json()["series"]["count"] == 7
    long_id = client.get(f"/v3/{P1}/messages-ext/series/{'x' * 400}", headers=headers("u", P1))
    assert long_id.status_code == 404


def test_cinders_message_body_is_unchanged(client, storm):
    messages = client.get(f"/v3/{P1}/messages", headers=headers("u", P1)).json()["messages"]
    assert len(messages) == 8  # every occurrence is still a message
    for message in messages:
        assert set(message) <= MESSAGE_KEYS
