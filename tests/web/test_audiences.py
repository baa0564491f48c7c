"""Internals are for admins only, on every front end: one test over all of them.

One live all-in-one (``blockstorage serve``: the reference service, the messages
API and the Event Viewer in one process, its deliverer sending webhooks) on a
store holding a message of project P whose internals are distinctive texts: its
node, exception class and cross-service request id. Every front end is read as
P's user and as the admin, as a client reads it (HTTP, the CLI in a subprocess,
a webhook receiver), and what each answer reveals is compared with what is
documented: a project user never learns a message's node, exception class,
global request id nor owner (its project and kind); an admin does where the
front end says so (the API's owner-fields opt-in, the export's project and
kind, the viewer's Tenant and Node columns and detail page, Cinder's volume
host).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.blockstorage.conftest import FAST, Cloud, blockstorage_server
from tests.viewer_session import sign_in
from tests.webhooks.receiver import Receiver, receiver
from usermessages.catalog import Action, Detail, Kind, Resource, event_id
from usermessages.store import engine as store_engine
from usermessages.store import writer

P = "a0d1e2c3"
HOST = "node-internal-7f3a"
EXCEPTION = "internal.module.SecretBoom"
GLOBAL_REQUEST = "req-global-5e1f0c1e-9a7b-4c3d-8e2f-000000000abc"
# Each internal, and the text that gives it away wherever it appears in an answer.
INTERNAL_TEXTS = {"host": HOST, "exception_class": EXCEPTION,
                  "global_request_id": GLOBAL_REQUEST}
# Keys that name a message's owner in a JSON answer (a message, a series, a record).
OWNER_KEYS = {"project_id", "kind", "tenant"}
OWNER_FIELDS = {"X-Usermessages-Owner-Fields": "true"}
CONFIG = FAST + """
[webhooks]
allowed_cidrs = 127.0.0.0/8
poll_interval = 0.2
retry_base = 0.2
"""


def message(**changes: object) -> dict:
    """A row of P with every internal set, far from expiry (the server's reaper runs)."""
    created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = {
        "id": str(uuid.uuid4()), "kind": Kind.API.value, "project_id": P, "user_id": "alice",
        "request_id": f"req-{uuid.uuid4()}", "resource_type": Resource.VOLUME.value,
        "resource_uuid": "vol-audience-1",
        "event_id": event_id(Resource.VOLUME, Action.ATTACH_VOLUME, Detail.ATTACH_ERROR),
        "message_level": "ERROR", "action_id": Action.ATTACH_VOLUME.id,
        "detail_id": Detail.ATTACH_ERROR.id, "host": HOST, "exception_class": EXCEPTION,
        "global_request_id": GLOBAL_REQUEST, "created_at": created,
        "expires_at": created + dt.timedelta(days=3650), "deleted": False,
    }
    return {**row, **changes}


@dataclass
class Site:
    base: str
    db_url: str
    message_id: str
    volume_id: str
    hooks: Receiver

    def store(self, *rows: dict) -> None:
        engine = store_engine.connect(self.db_url)
        try:
            with engine.begin() as conn:
                writer.insert(conn, list(rows))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("audiences")
    with blockstorage_server(CONFIG, workdir=workdir) as base, receiver() as hooks:
        alice = Cloud(base, "alice", P)
        volume_id, _ = alice.create_volume(1)
        alice.wait(f"/volumes/{volume_id}", "volume", "available")
        seeded = message()
        built = Site(base, f"sqlite:///{workdir}/usermessages.sqlite", seeded["id"], volume_id,
                     hooks)
        built.store(seeded)
        # A message of another project, which P's user must not see at all.
        built.store(message(project_id="b9b9b9b9", resource_uuid="vol-other"))
        yield built


# --- reading each front end as a client does -------------------------------------------

Who = str  # "user": a member and reader of P; "admin": the cloud's admin


def _token(who: Who) -> str:
    return f"alice:{P}" if who == "user" else f"admin:{P}"


def _api(site: Site, who: Who, path: str, version: str = "3.71",
         **headers: str) -> httpx.Response:
    answer = httpx.get(f"{site.base}/v3/{P}{path}", timeout=30, headers={
        "X-Auth-Token": _token(who), "OpenStack-API-Version": f"volume {version}", **headers})
    assert answer.status_code == 200, answer.text
    return answer


def _first_event(site: Site, url: str, client: httpx.Client | None = None,
                 headers: dict[str, str] | None = None) -> str:
    """The first ``event: message`` of a server-sent-event stream, its data lines joined."""
    http = client or httpx.Client(timeout=30)
    with http.stream("GET", url, headers=headers or {}) as answer:
        assert answer.status_code == 200
        event, data = "", []
        for line in answer.iter_lines():
            if line == "":  # the end of an event
                if event == "message" and data:
                    return "\n".join(data)
                event, data = "", []
            elif line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].removeprefix(" "))
    raise AssertionError(f"{url} ended without a message")


def _viewer(site: Site, who: Who) -> httpx.Client:
    client = httpx.Client(base_url=site.base, timeout=30)
    assert sign_in(client, "alice" if who == "user" else "admin", P).status_code == 303
    return client


def _owner_in_json(*objects: dict) -> bool:
    return any(OWNER_KEYS & obj.keys() for obj in objects)


def _owner_in_html(text: str) -> bool:
    # The viewer names a message's owner in its Tenant column (list, stream) or fact (detail).
    return "Tenant" in text


def _reveals(text: str, owner: bool) -> set[str]:
    """Which internals an answer gives away: any internal's text anywhere in it, and
    whether it names the message's owner."""
    found = {name for name, value in INTERNAL_TEXTS.items() if value in text}
    return found | ({"tenant"} if owner else set())


def api_list(version: str, **headers: str) -> Callable[[Site, Who], set[str]]:
    def read(site: Site, who: Who) -> set[str]:
        answer = _api(site, who, "/messages", version, **headers)
        listed = answer.json()["messages"]
        assert site.message_id in {m["id"] for m in listed}
        return _reveals(answer.text, _owner_in_json(*listed))
    return read


def api_show(version: str, path: str = "/messages/{id}") -> Callable[[Site, Who], set[str]]:
    def read(site: Site, who: Who) -> set[str]:
        answer = _api(site, who, path.format(id=site.message_id), version, **OWNER_FIELDS)
        return _reveals(answer.text, _owner_in_json(answer.json()["message"]))
    return read


def api_stream(version: str) -> Callable[[Site, Who], set[str]]:
    def read(site: Site, who: Who) -> set[str]:
        data = _first_event(site, f"{site.base}/v3/{P}/messages-ext/stream?last_event_id=0",
                            headers={"X-Auth-Token": _token(who),
                                     "OpenStack-API-Version": f"volume {version}",
                                     **OWNER_FIELDS})
        return _reveals(data, _owner_in_json(json.loads(data)["message"]))
    return read


def api_export(fmt: str) -> Callable[[Site, Who], set[str]]:
    def read(site: Site, who: Who) -> set[str]:
        text = _api(site, who, f"/messages-ext/export?format={fmt}", **OWNER_FIELDS).text
        return _reveals(text, _export_owner(fmt, text))
    return read


def _export_owner(fmt: str, text: str) -> bool:
    if fmt == "csv":
        header = next(csv.reader(io.StringIO(text)))
        return bool(OWNER_KEYS & set(header))
    return _owner_in_json(*(json.loads(line) for line in text.splitlines()))


def api_series(site: Site, who: Who) -> set[str]:
    answer = _api(site, who, "/messages-ext/series", **OWNER_FIELDS)
    listed = answer.json()["series"]
    assert any(s["resource_uuid"] == "vol-audience-1" for s in listed)
    return _reveals(answer.text, _owner_in_json(*listed))


def viewer_list(site: Site, who: Who) -> set[str]:
    page = _viewer(site, who).get("/viewer/messages")
    assert page.status_code == 200 and site.message_id in page.text
    return _reveals(page.text, _owner_in_html(page.text))


def viewer_detail(site: Site, who: Who) -> set[str]:
    page = _viewer(site, who).get(f"/viewer/messages/{site.message_id}")
    assert page.status_code == 200
    return _reveals(page.text, _owner_in_html(page.text))


def viewer_stream(site: Site, who: Who) -> set[str]:
    html = _first_event(site, f"{site.base}/viewer/stream?after=0", _viewer(site, who))
    return _reveals(html, _owner_in_html(html))


def viewer_export(fmt: str) -> Callable[[Site, Who], set[str]]:
    def read(site: Site, who: Who) -> set[str]:
        answer = _viewer(site, who).get(f"/viewer/export?format={fmt}")
        assert answer.status_code == 200
        return _reveals(answer.text, _export_owner(fmt, answer.text))
    return read


def cli(*command: str) -> Callable[[Site, Who], set[str]]:
    def read(site: Site, who: Who) -> set[str]:
        args = [arg.format(id=site.message_id) for arg in command]
        done = subprocess.run(
            [sys.executable, "-m", "usermessages.cli.main", "message", *args, "--format", "json",
             "--url", site.base, "--project", P, "--user", "alice" if who == "user" else "admin"],
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        return _reveals(done.stdout, _owner_in_json(*(body if isinstance(body, list) else [body])))
    return read


def webhook(site: Site, who: Who) -> set[str]:
    """A subscription's receiver, subscribed by P's member or by the admin: the payload
    of a message stored after it, as the server's deliverer sends it."""
    collection = f"{site.base}/v3/{P}/messages-ext/webhooks"
    auth = {"X-Auth-Token": _token(who), "OpenStack-API-Version": "volume 3.71"}
    created = httpx.post(collection, timeout=30, headers=auth, json={
        "webhook": {"url": site.hooks.url, "resource_type": "VOLUME"}})
    assert created.status_code == 201, created.text
    fresh = message(resource_uuid=f"vol-hook-{who}")
    site.store(fresh)
    site.hooks.wait_for(lambda got: any(fresh["id"].encode() in r.body for r in got))
    # Gone before the next reader subscribes: each payload comes from one subscription.
    gone = httpx.delete(f"{collection}/{created.json()['webhook']['id']}", timeout=30,
                        headers=auth)
    assert gone.status_code == 204
    [body] = [r.body for r in site.hooks.received if fresh["id"].encode() in r.body]
    text = body.decode()
    return _reveals(text, _owner_in_json(json.loads(text)["data"]["message"]))


def volume(site: Site, who: Who) -> set[str]:
    """The reference service's volume, as Cinder shows it: its placement to admins only
    (its owner, ``os-vol-tenant-attr:tenant_id``, to the owner too, as Cinder does)."""
    answer = _api(site, who, f"/volumes/{site.volume_id}", "3.5")
    return {"host"} if "os-vol-host-attr:host" in answer.json()["volume"] else set()


ADMIN_API = {"host", "tenant"}  # the owner-fields opt-in: project_id and host
FRONT_ENDS: list[tuple[str, Callable[[Site, Who], set[str]], set[str]]] = [
    *((f"api-list-{v}", api_list(v, **OWNER_FIELDS), ADMIN_API) for v in ("3.3", "3.5", "3.71")),
    ("api-list-not-opted-in", api_list("3.71"), set()),
    *((f"api-show-{v}", api_show(v), ADMIN_API) for v in ("3.3", "3.5", "3.71")),
    ("api-explained", api_show("3.71", "/messages-ext/messages/{id}"), ADMIN_API),
    *((f"api-stream-{v}", api_stream(v), ADMIN_API) for v in ("3.3", "3.71")),
    ("api-export-ndjson", api_export("ndjson"), {"tenant"}),
    ("api-export-csv", api_export("csv"), {"tenant"}),
    ("api-series", api_series, {"tenant"}),
    ("viewer-list", viewer_list, {"host", "tenant"}),
    ("viewer-detail", viewer_detail, {"host", "tenant", "exception_class", "global_request_id"}),
    ("viewer-stream", viewer_stream, {"host", "tenant"}),
    ("viewer-export-csv", viewer_export("csv"), {"tenant"}),
    ("viewer-export-ndjson", viewer_export("ndjson"), {"tenant"}),
    ("webhook-payload", webhook, set()),  # a subscription's payload leaves the cloud: never
    ("blockstorage-volume", volume, {"host"}),
    ("cli-list-json", cli("list"), set()),  # the CLI does not opt into owner fields
    ("cli-show-json", cli("show", "{id}"), set()),
]


@pytest.mark.parametrize(("read", "for_admins"), [(read, admins) for _, read, admins in FRONT_ENDS],
                         ids=[name for name, _, _ in FRONT_ENDS])
def test_project_users_never_see_internals_and_admins_see_what_is_documented(
        site: Site, read: Callable[[Site, Who], set[str]], for_admins: set[str]) -> None:
    assert read(site, "user") == set()
    assert read(site, "admin") == for_admins
