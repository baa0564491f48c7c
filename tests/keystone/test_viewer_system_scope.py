"""The keystone viewer's system scope, at the HTTP level, against the real Keystone.

An admin with a system role signs in to the system, or switches to it without
signing in again (Keystone's token-to-token rescope, as Horizon's admin panel),
and sees what the API shows a system admin: every project, SERVICE and SYSTEM
messages, tenant and node. A user without a system role is refused with the
reason; a project admin stays in its project. The session says which scope it
holds; a switch revokes the token it replaces, sign-out the rest.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests import servers
from tests.api.conftest import row
from tests.keystone.cloud import Cloud
from tests.keystone.test_policy_modes import PERSONAS as PERSONAS_POLICY
from tests.keystone.viewer_client import (
    API,
    COOKIE,
    api_status,
    csrf,
    session_store,
    sign_in,
    stored,
)
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.store import writer
from usermessages.viewer import signin
from usermessages.viewer.signin import NO_SYSTEM_ROLE, SYSTEM_CANNOT_READ, SYSTEM_SCOPE

ROW = re.compile(r'<tr data-id="([^"]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'<td data-label="([^"]+)">(.*?)</td>', re.S)
TAG = re.compile(r"<[^>]+>")
OWNER = {"X-Usermessages-Owner-Fields": "true", **API}


@pytest.fixture
def seeded(cloud: Cloud, engine: Engine) -> dict[str, str]:
    """A message in alpha and in beta, a SERVICE and a SYSTEM one: name -> id.

    They live ten years: a served app's reaper, at start, must leave them be.
    """
    life = dt.timedelta(days=3650)
    rows = {
        "alpha": row(cloud.projects["alpha"], resource_uuid="vol-alpha-1", host="node-a",
                     expires_in=life),
        "beta": row(cloud.projects["beta"], resource_uuid="vol-beta-1", host="node-b",
                    expires_in=life),
        "service": row(None, kind=Kind.SERVICE, resource=Resource.SERVICE,
                       action=Action.SERVICE_STATUS, detail=Detail.SERVICE_DOWN,
                       host="backup@node-9", expires_in=life),
        "system": row(None, kind=Kind.SYSTEM, resource=Resource.SYSTEM,
                      action=Action.MESSAGE_BUS, detail=Detail.BROKER_UNREACHABLE,
                      host="api@node-1", expires_in=life),
    }
    with engine.begin() as conn:
        writer.insert(conn, list(rows.values()))
    return {name: r["id"] for name, r in rows.items()}


def shown(page: str) -> dict[str, dict[str, str]]:
    """The list page's rows: id -> {column label: text}."""
    return {message_id: {label: html.unescape(TAG.sub("", cell)).strip()
                         for label, cell in CELL.findall(body)}
            for message_id, body in ROW.findall(page)}


def api_rows(client, token: str) -> dict[str, dict[str, str]]:  # noqa: ANN001 - TestClient
    """What the API shows the same token, as the viewer's tenant and node columns."""
    listed = client.get("/v3/messages", headers={"X-Auth-Token": token, **OWNER})
    assert listed.status_code == 200, listed.text
    return {m["id"]: {"Tenant": m["project_id"] or f"({m['resource_type'].lower()})",
                      "Node name": m["host"]} for m in listed.json()["messages"]}


def held(client) -> dict:  # noqa: ANN001 - TestClient
    """The one signed-in session's stored data."""
    data = stored(client)
    assert data is not None and "token" in data
    return data


def test_a_system_admin_signs_in_to_the_system_and_sees_what_the_api_shows_it(
        ks_client, cloud, seeded):
    signed = sign_in(ks_client, "system_admin", system=True)
    assert signed.status_code == 303 and signed.headers["location"] == "/viewer/messages"
    session = held(ks_client)
    assert session["scope"] == SYSTEM_SCOPE
    assert session["root_token"] != session["token"]
    page = ks_client.get("/viewer/messages")
    assert page.status_code == 200
    assert '<span class="badge">system</span>' in page.text
    assert "system_admin · System (all projects)" in page.text
    assert '<th scope="col">Node name</th>' in page.text and 'name="kind"' in page.text
    rows = shown(page.text)
    # Exactly the API's answer to the same token: every row, its tenant and its node.
    assert rows.keys() == set(seeded.values())
    assert {k: {c: v[c] for c in ("Tenant", "Node name")} for k, v in rows.items()} == \
        api_rows(ks_client, session["token"])
    assert rows[seeded["service"]]["Tenant"] == "(service)"
    assert rows[seeded["system"]]["Node name"] == "api@node-1"
    detail = ks_client.get(f"/viewer/messages/{seeded['beta']}")
    assert detail.status_code == 200 and "node-b" in detail.text
    # Webhooks belong to a project: the link is gone, the page says why.
    assert 'href="/viewer/webhooks"' not in page.text
    webhooks = ks_client.get("/viewer/webhooks")
    assert webhooks.status_code == 403 and "Webhooks belong to a project" in webhooks.text
    # A system admin deletes across projects, as on the API.
    delete = ks_client.post(f"/viewer/messages/{seeded['service']}/delete",
                            data={"csrf": csrf(page.text)}, follow_redirects=False)
    assert delete.status_code == 303
    assert seeded["service"] not in api_rows(ks_client, session["token"])


def test_an_operator_switches_to_the_system_and_back_without_signing_in_again(
        ks_client, cloud, seeded):
    assert sign_in(ks_client, "operator", "alpha").status_code == 303
    first = held(ks_client)
    assert first["scope"] == f"project:{cloud.projects['alpha']}" and first["system"] is True
    page = ks_client.get("/viewer/messages")
    assert shown(page.text).keys() == {seeded["alpha"]}
    assert "Node name" not in page.text
    assert 'action="/viewer/system"' in page.text  # offered: the user has a system role

    switched = ks_client.post("/viewer/system", data={"csrf": csrf(page.text)},
                              follow_redirects=False)
    assert switched.status_code == 303 and "usermessages_viewer=" in switched.headers["set-cookie"]
    system = held(ks_client)
    assert system["scope"] == SYSTEM_SCOPE and system["root_token"] == first["root_token"]
    page = ks_client.get("/viewer/messages")
    assert shown(page.text).keys() == set(seeded.values())
    assert shown(page.text).keys() == api_rows(ks_client, system["token"]).keys()
    assert 'action="/viewer/system"' not in page.text
    # The switch revoked the project token it replaced; the unscoped one lives on.
    assert api_status(ks_client, first["token"]) == 401
    assert cloud.is_valid(first["root_token"])

    # Back to the project: rescoped from the unscoped token (Keystone never
    # rescopes a system token to a project).
    back = ks_client.post("/viewer/project", data={
        "project_id": cloud.projects["alpha"], "csrf": csrf(page.text)}, follow_redirects=False)
    assert back.status_code == 303
    again = held(ks_client)
    assert again["scope"] == first["scope"]
    page = ks_client.get("/viewer/messages")
    assert shown(page.text).keys() == {seeded["alpha"]} and "Node name" not in page.text
    assert api_status(ks_client, system["token"]) == 401

    # Sign-out revokes what the session still holds: the token in use and the unscoped one.
    ks_client.post("/viewer/logout", data={"csrf": csrf(page.text)})
    assert api_status(ks_client, again["token"]) == 401
    assert not cloud.is_valid(again["root_token"])
    assert ks_client.get("/viewer/messages", follow_redirects=False).status_code == 303


def test_a_switch_revokes_the_replaced_token_once_no_session_holds_it(ks_client, cloud, seeded,
                                                                      monkeypatch):
    # Revoked while the old session is still stored, a page in flight in another tab
    # would find its token refused and sign the browser out.
    assert sign_in(ks_client, "operator", "alpha").status_code == 303
    old = held(ks_client)["token"]
    old_session = dict(ks_client.cookies)
    store = session_store(ks_client.app)
    page = ks_client.get("/viewer/messages")
    # At each revocation: the token, how many sessions are stored, and the old one's data.
    stored_at_revocation: list[tuple[str, int, dict | None]] = []
    revoke = signin.revoke

    def watched(settings: object, token: str) -> None:
        old_data = stored(SimpleNamespace(cookies=old_session), store)
        stored_at_revocation.append((token, len(store), old_data))
        revoke(settings, token)

    monkeypatch.setattr(signin, "revoke", watched)
    assert ks_client.post("/viewer/system", data={"csrf": csrf(page.text)},
                          follow_redirects=False).status_code == 303
    new = held(ks_client)["token"]
    # Revoked once only the new session (holding the new token) was stored.
    assert stored_at_revocation == [(old, 1, None)]
    assert api_status(ks_client, old) == 401 and api_status(ks_client, new) == 200


@pytest.mark.parametrize("user", ["project_admin", "member"])
def test_without_a_system_role_the_system_scope_is_refused_with_the_reason(
        ks_client, cloud, seeded, user):
    refused = sign_in(ks_client, user, system=True)
    assert refused.status_code == 403
    assert NO_SYSTEM_ROLE in html.unescape(refused.text)
    assert 'value="system" checked' in refused.text  # the form keeps the choice
    assert stored(ks_client) is None and len(session_store(ks_client.app)) == 0
    assert ks_client.get("/viewer/messages", follow_redirects=False).status_code == 303


def test_a_project_admin_stays_in_its_project(ks_client, cloud, seeded):
    assert sign_in(ks_client, "project_admin", "alpha").status_code == 303
    session = held(ks_client)
    assert session["system"] is False
    page = ks_client.get("/viewer/messages")
    assert shown(page.text).keys() == {seeded["alpha"]}
    assert "Node name" not in page.text and 'action="/viewer/system"' not in page.text
    # Forged, the switch is refused by Keystone, with the reason; the session is unchanged.
    forged = ks_client.post("/viewer/system", data={"csrf": csrf(page.text)},
                            follow_redirects=False)
    assert forged.status_code == 403
    assert NO_SYSTEM_ROLE in html.unescape(forged.text)
    assert held(ks_client) == session
    assert api_status(ks_client, session["token"]) == 200
    assert shown(ks_client.get("/viewer/messages").text).keys() == {seeded["alpha"]}


def test_a_system_reader_follows_the_policy_as_on_the_api(make_client, cloud, seeded, tmp_path):
    # Cinder's defaults: the API answers a system reader 403; the viewer says so at sign-in.
    default = make_client()
    refused = sign_in(default, "system_reader", system=True)
    assert refused.status_code == 403
    assert SYSTEM_CANNOT_READ in html.unescape(refused.text)
    assert stored(default) is None and len(session_store(default.app)) == 0
    # Cinder's personas in a policy file: it reads every project and deletes nothing.
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(PERSONAS_POLICY)
    personas = make_client(policy_file=str(policy_file))
    assert sign_in(personas, "system_reader", system=True).status_code == 303
    page = personas.get("/viewer/messages")
    assert shown(page.text).keys() == set(seeded.values())
    denied = personas.post(f"/viewer/messages/{seeded['beta']}/delete",
                           data={"csrf": csrf(page.text)})
    assert denied.status_code == 403


def test_a_session_whose_token_holds_another_scope_than_it_says_is_signed_out(
        ks_client, cloud, seeded):
    assert sign_in(ks_client, "system_admin", system=True).status_code == 303
    assert ks_client.get("/viewer/messages", follow_redirects=False).status_code == 200
    data = held(ks_client)
    data["scope"] = f"project:{cloud.projects['alpha']}"  # the token is still the system's
    session_store(ks_client.app).update(ks_client.cookies[COOKIE], data)
    page = ks_client.get("/viewer/messages", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/viewer/login"
    assert stored(ks_client) is None and len(session_store(ks_client.app)) == 0


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# An empty field is no choice: the form's default, a project.
@given(scope=st.text(max_size=80).filter(lambda s: s not in ("", "project", "system")))
def test_a_crafted_scope_gets_a_clear_400(ks_client, cloud, scope):
    form = ks_client.get("/viewer/login")
    answer = ks_client.post("/viewer/login", data={
        "user": "system_admin", "password": "x", "domain": "Default", "project": "alpha",
        "scope": scope, "csrf": csrf(form.text)}, follow_redirects=False)
    assert answer.status_code == 400
    assert "Sign in to a project or to the system" in answer.text


def test_concurrent_pages_each_show_one_scope_while_a_session_switches(cloud, seeded, db_url,
                                                                       tmp_path):
    """`usermessages serve` in keystone mode; four browsers load pages at once while one
    of them switches between alpha and the system: every page is one scope, whole."""
    everything = set(seeded.values())
    # One Keystone worker answers every validation: give it time under the load.
    config = cloud.config_file(tmp_path, http_connect_timeout="30")
    with servers.api_server(db_url, config_file=str(config)) as base:
        def browser(user: str, project: str = "", system: bool = False) -> httpx.Client:
            client = httpx.Client(base_url=base, timeout=60)
            assert sign_in(client, user, project, system=system).status_code == 303
            return client

        def load(client: httpx.Client) -> tuple[str, set[str]] | None:
            """The badge and the rows of one list page; None when it was sent with a
            cookie a concurrent switch had just replaced (the next one has the new id)."""
            page = client.get("/viewer/messages", follow_redirects=False)
            if page.status_code == 303:
                return None
            assert page.status_code == 200, page.text
            badge = re.search(r'<span class="badge">(\w+)</span>', page.text)
            assert badge
            return badge.group(1), set(shown(page.text))

        steady = [(browser("system_admin", system=True), ("system", everything)),
                  (browser("other", "beta"), ("project", {seeded["beta"]})),
                  (browser("project_admin", "alpha"), ("project", {seeded["alpha"]}))]
        operator = browser("operator", "alpha")
        views = {"system": everything, "project": {seeded["alpha"]}}
        switching = threading.Event()
        switching.set()
        seen: Counter[str] = Counter()
        took: dict[str, list[float]] = {"/viewer/system": [], "/viewer/project": []}

        def steady_reader(client: httpx.Client, expected: tuple[str, set[str]]) -> None:
            for _ in range(6):
                assert load(client) == expected

        def operator_reader() -> None:
            while switching.is_set():
                got = load(operator)
                if got is None:
                    # Only a request that left with the old cookie; the browser keeps
                    # its session (a page in flight must not sign it out).
                    assert operator.cookies.get("usermessages_viewer"), "signed out"
                    seen["replaced"] += 1
                    continue
                badge, ids = got
                assert ids == views[badge], (badge, ids)  # never a mix of two scopes
                seen[badge] += 1

        def switcher() -> None:
            try:
                token = csrf(operator.get("/viewer/messages").text)
                for _ in range(3):
                    for path, data in (("/viewer/system", {}),
                                       ("/viewer/project",
                                        {"project_id": cloud.projects["alpha"]})):
                        started = time.monotonic()
                        switched = operator.post(path, data={"csrf": token, **data})
                        took[path].append(time.monotonic() - started)
                        assert switched.status_code == 303
                        assert switched.headers["location"] == "/viewer/messages"  # not signed out
                        # A switch gives the session a new id, and its forms a new token.
                        token = csrf(operator.get("/viewer/messages").text)
            finally:
                switching.clear()

        with ThreadPoolExecutor(9) as pool:
            jobs = [pool.submit(steady_reader, client, expected)
                    for client, expected in steady for _ in range(2)]
            jobs += [pool.submit(operator_reader) for _ in range(2)]
            jobs.append(pool.submit(switcher))
            for job in jobs:
                job.result(timeout=300)
        # The operator is still signed in, in the scope it switched to last.
        assert load(operator) == ("project", {seeded["alpha"]})
        assert seen["project"] and seen["system"], seen
        print(f"\noperator pages during the switches: {dict(seen)}; switch answered in "
              + ", ".join(f"{path} {min(t):.2f}-{max(t):.2f} s" for path, t in took.items()))
