"""messages-ext/webhooks: registration, the secret shown once, isolation, bad input, SSRF."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import headers
from usermessages.webhooks.targets import TargetRefused, Targets

P1, P2 = "a1a1", "b2b2"
BASE = "/v3/{}/messages-ext/webhooks"
PUBLIC = "http://93.184.215.14/hook"  # a global address: accepted (never called here)


def _post(client: TestClient, project: str, body: object, user: str = "u") -> httpx.Response:
    return client.post(BASE.format(project), json=body, headers=headers(user, project))


def test_create_shows_the_secret_once_and_only_the_project_sees_it(client: TestClient) -> None:
    created = _post(client, P1, {"webhook": {"url": PUBLIC, "event_id": "VOLUME_VOLUME_001_002"}})
    assert created.status_code == 201
    webhook = created.json()["webhook"]
    assert webhook["secret"].startswith("whsec_") and len(webhook["secret"]) >= 6 + 32
    listed = client.get(BASE.format(P1), headers=headers("u", P1)).json()["webhooks"]
    shown = client.get(f"{BASE.format(P1)}/{webhook['id']}", headers=headers("u", P1)).json()
    assert listed == [shown["webhook"]]
    assert "secret" not in shown["webhook"] and webhook["secret"] not in str(listed)
    assert shown["webhook"]["event_id"] == "VOLUME_VOLUME_001_002"
    # Another project: nothing listed, the id is unknown, it cannot delete it.
    assert client.get(BASE.format(P2), headers=headers("u", P2)).json() == {"webhooks": []}
    for method in ("GET", "DELETE"):
        answer = client.request(method, f"{BASE.format(P2)}/{webhook['id']}",
                                headers=headers("u", P2))
        assert answer.status_code == 404 and "itemNotFound" in answer.json()
    # A token of P2 on P1's URL is refused as for the messages.
    assert client.get(BASE.format(P1), headers=headers("u", P2)).status_code == 400
    gone = client.delete(f"{BASE.format(P1)}/{webhook['id']}", headers=headers("u", P1))
    assert gone.status_code == 204
    assert client.get(BASE.format(P1), headers=headers("u", P1)).json() == {"webhooks": []}
    # Each subscription its own secret.
    secrets = {_post(client, P1, {"webhook": {"url": PUBLIC}}).json()["webhook"]["secret"]
               for _ in range(3)}
    assert len(secrets) == 3


@pytest.mark.parametrize("body", [
    None, [], "x", {"url": PUBLIC}, {"webhook": {"url": PUBLIC, "extra": "1"}},
    {"webhook": {}}, {"webhook": {"url": 5}}, {"webhook": {"url": PUBLIC, "message_level": "BAD"}},
    {"webhook": {"url": PUBLIC, "resource_type": "NOPE"}},
    {"webhook": {"url": PUBLIC, "event_id": "x" * 300}},
    {"webhook": {"url": "ftp://example.com/"}}, {"webhook": {"url": "file:///etc/passwd"}},
    {"webhook": {"url": "http://user:pw@93.184.215.14/"}}, {"webhook": {"url": "not a url"}},
    {"webhook": {"url": "http://127.0.0.1:8776/v3"}}, {"webhook": {"url": "http://[::1]/"}},
    {"webhook": {"url": "http://169.254.169.254/latest/meta-data/"}},
    {"webhook": {"url": "http://10.0.0.8/"}}, {"webhook": {"url": "http://localhost/"}},
    {"webhook": {"url": "http://[::ffff:127.0.0.1]/"}}, {"webhook": {"url": "http://0.0.0.0/"}},
    {"webhook": {"url": "http://224.0.0.1/"}},
    {"webhook": {"url": "http://" + "a" * 3000 + ".com/"}},
])
def test_bad_registrations_are_400_with_a_fault_body(client: TestClient, body: object) -> None:
    answer = _post(client, P1, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["badRequest"]["code"] == 400
    assert client.get(BASE.format(P1), headers=headers("u", P1)).json() == {"webhooks": []}


def test_bodies_that_are_not_json_and_bad_limits(client: TestClient) -> None:
    answer = client.post(BASE.format(P1), content=b"{nope", headers=headers("u", P1))
    assert answer.status_code == 400 and "badRequest" in answer.json()
    created = _post(client, P1, {"webhook": {"url": PUBLIC}}).json()["webhook"]
    for limit in ("0", "x", "501", "-1"):
        answer = client.get(f"{BASE.format(P1)}/{created['id']}/deliveries?limit={limit}",
                            headers=headers("u", P1))
        assert answer.status_code == 400


def test_a_project_has_a_bounded_number_of_webhooks(client: TestClient) -> None:
    for _ in range(20):
        assert _post(client, P1, {"webhook": {"url": PUBLIC}}).status_code == 201
    answer = _post(client, P1, {"webhook": {"url": PUBLIC}})
    assert answer.status_code == 413 and "overLimit" in answer.json()


def _v4() -> st.SearchStrategy[ipaddress.IPv4Address]:
    return st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))


def _v6() -> st.SearchStrategy[ipaddress.IPv6Address]:
    return st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Independently of the guard: every network an SSRF could reach inside."""
    nets = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
            "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3",
            "::/127", "fc00::/7", "fe80::/10", "ff00::/8"]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _internal(address.ipv4_mapped)
    return any(address in ipaddress.ip_network(net) for net in nets
               if ipaddress.ip_network(net).version == address.version)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(_v4(), _v6(), _v4().map(lambda a: ipaddress.IPv6Address(f"::ffff:{a}"))))
def test_no_internal_address_is_ever_a_target(address: ipaddress.IPv4Address
                                              | ipaddress.IPv6Address) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    guard = Targets()
    if _internal(address):
        with pytest.raises(TargetRefused):
            guard.check(f"http://{host}:8080/hook")
    # The deployer's opt-ins let them through.
    assert Targets(allow_private=True).check(f"https://{host}/").address == str(address)
    network = ipaddress.ip_network(f"{address}/{address.max_prefixlen}")
    assert Targets(allowed=(network,)).check(f"http://{host}/").port == 80


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_url_text_is_accepted_or_refused_cleanly(text: str) -> None:
    try:
        target = Targets().check(text)
    except TargetRefused as exc:
        assert exc.status == 400 and exc.message
    else:
        assert target.scheme in ("http", "https")


def test_crafted_ids_are_404_not_500(client: TestClient) -> None:
    for crafted in ("%00", "a%00b", "x" * 300, "..%2F..", "%E2%80%AE"):
        for suffix in ("", "/deliveries"):
            answer = client.get(f"{BASE.format(P1)}/{crafted}{suffix}", headers=headers("u", P1))
            assert answer.status_code == 404 and "itemNotFound" in answer.json(), crafted
        answer = client.delete(f"{BASE.format(P1)}/{crafted}", headers=headers("u", P1))
        assert answer.status_code == 404, crafted


def test_a_reader_may_not_manage_webhooks_a_member_may(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Behind a proxy that sets X-Roles: the policy rules message:webhooks:* (members)."""
    from usermessages.service import create_app

    with TestClient(create_app(settings.replace(trust_roles_header=True), engine=engine)) as c:
        reader = headers("r", P1, **{"X-Roles": "reader"})
        member = headers("m", P1, **{"X-Roles": "member"})
        for method, suffix in (("POST", ""), ("GET", ""), ("GET", "/x"), ("DELETE", "/x")):
            answer = c.request(method, BASE.format(P1) + suffix, headers=reader,
                               json={"webhook": {"url": PUBLIC}})
            assert answer.status_code == 403, (method, suffix)
            assert "message:webhooks" in answer.json()["forbidden"]["message"]
        made = c.post(BASE.format(P1), json={"webhook": {"url": PUBLIC}}, headers=member)
        assert made.status_code == 201
