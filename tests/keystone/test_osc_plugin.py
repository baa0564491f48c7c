"""``openstack message ...``: our openstackclient plugin, run as a user runs it.

The real ``openstack`` (python-openstackclient 10.5.0) finds the plugin through
its entry points, authenticates against the real Keystone (from OS_* variables
or a clouds.yaml), takes the API's endpoint from the catalog and talks to a live
``usermessages serve`` in keystone mode. Every ``openstack`` run costs 1-2 s.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.harness import servers
from tests.harness.cloud import PASSWORD, Cloud
from tests.harness.peers import parse_properties, parse_table
from tests.keystone.osc import (
    SCHEDULE_TEXT,
    SNAPSHOT,
    VOLUME,
    Live,
    batch,
    failed,
    live_api,
    openstack,
    os_variables,
    succeeded,
)
from tests.webhooks.receiver import Receiver, receiver
from usermessages import Action, Detail, Resource

# Each `openstack` is a fresh process loading every openstackclient plugin (1-2 s idle,
# ten times that on a loaded 2-core machine), and a test runs several.
pytestmark = pytest.mark.timeout(600)
SERIES_HEADINGS = ["ID", "Event ID", "Resource Type", "Resource UUID", "Message Level", "Count",
                   "Suppressed", "First Seen", "Last Seen", "User Message"]


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture(scope="module")
def live(cloud: Cloud, hook: Receiver, tmp_path_factory) -> Iterator[Live]:
    # The local receiver is a webhook target this deployment opens (loopback).
    with live_api(cloud, tmp_path_factory.mktemp("osc-live"),
                  "[webhooks]\nallowed_cidrs = 127.0.0.0/8\npoll_interval = 0.1\n") as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("osc-home")


def member(live: Live, home: Path, *args: str, user: str = "member", project: str = "alpha",
           **extra: str):
    return openstack(home, {**os_variables(live.cloud, user, project), **extra}, *args)


def members(live: Live, home: Path, *commands: str, user: str = "member",
            project: str = "alpha") -> list:
    return batch(home, os_variables(live.cloud, user, project), *commands)


def test_the_commands_come_from_our_entry_points_and_clash_with_none(home: Path) -> None:
    # No credentials needed to list commands: what the installed entry points declare.
    groups = {row["Command Group"]: row["Commands"] for row in
              json.loads(succeeded(openstack(home, {}, "command", "list", "-f", "json")))}
    declared = {ep.name.replace("_", " ") for ep in
                importlib.metadata.entry_points(group="openstack.message.v3")}
    assert set(groups["openstack.message.v3"]) == declared == {
        "message show", "message series list", "message series show", "message aggregate list",
        "message export", "message webhook create", "message webhook list",
        "message webhook show", "message webhook delete", "message webhook delivery list"}
    others = {name for group, names in groups.items() if group != "openstack.message.v3"
              for name in names}
    assert declared.isdisjoint(others)
    # OSC's own commands on Cinder's messages are still its own.
    assert {"volume message list", "volume message show", "volume message delete"} <= set(
        groups["openstack.volume.v3"])
    plugin = [ep for ep in importlib.metadata.entry_points(group="openstack.cli.extension")
              if ep.name == "message"]
    assert [ep.value for ep in plugin] == ["usermessages.osc.plugin"]
    helped = succeeded(openstack(home, {}, "--help"))
    assert "--os-message-api-version" in helped and "message series list" in helped


def _series(rows: list[dict]) -> dict:
    [row] = [r for r in rows if r["Event ID"] == "VOLUME_VOLUME_001_003"]
    return row


def test_series_list_in_every_format_from_os_variables(live: Live, home: Path) -> None:
    as_json, long, _ = members(live, home, "message series list -f json",
                               "message series list --long --resource-type volume -f json",
                               "message series list --limit 1 -f json")
    assert [list(row) for row in as_json] == [SERIES_HEADINGS] * 2
    series = _series(as_json)
    assert series["Count"] == 3 and series["Resource UUID"] == VOLUME
    assert series["User Message"] == SCHEDULE_TEXT and series["Message Level"] == "ERROR"
    assert {row["Resource UUID"] for row in as_json} == {VOLUME, SNAPSHOT}
    # --long adds the request ids (the project only for an admin reading across).
    assert [row["ID"] for row in long] == [series["ID"]]
    assert len(long[0]["Request IDs"]) == 3 and "Project ID" not in long[0]
    [shown, first] = members(live, home, f"message series show {series['ID']} -f json",
                             "message series list --limit 1 -f json")
    assert shown["Count"] == 3 and shown["Request IDs"] == long[0]["Request IDs"]
    assert list(shown) == sorted(shown) and "Links" not in shown
    assert first == as_json[:1]
    as_yaml = yaml.safe_load(succeeded(member(live, home, "message", "series", "list",
                                              "-f", "yaml")))
    assert as_yaml == as_json
    as_csv = list(csv.DictReader(io.StringIO(succeeded(
        member(live, home, "message", "series", "list", "-f", "csv")))))
    assert _series(as_csv) == {k: str(v) for k, v in series.items()}
    table = parse_table(succeeded(member(live, home, "message", "series", "list")))
    assert list(table[0]) == SERIES_HEADINGS
    assert _series(table) == {k: str(v) for k, v in series.items()}
    # -c chooses columns, -f value prints them bare.
    value = succeeded(member(live, home, "message", "series", "list", "--event-id",
                             "VOLUME_VOLUME_001_003", "-f", "value", "-c", "ID", "-c", "Count"))
    assert value == f"{series['ID']} 3\n"
    # The other project's member sees its own series only.
    [other] = members(live, home, "message series list -f json", user="other", project="beta")
    assert [row["Event ID"] for row in other] == ["VOLUME_VOLUME_002_021"]
    assert "could not be found" in failed(member(
        live, home, "message", "series", "show", series["ID"], user="other", project="beta"))


def test_show_with_remediation_in_every_format(live: Live, home: Path) -> None:
    message_id = live.ids["alpha"][0]
    args = ("message", "show", message_id, "--remediation")
    # Without --remediation, Cinder's fields alone, whole (unlike `volume message show`).
    shown, plain = members(live, home, f"message show {message_id} --remediation -f json",
                           f"message show {message_id} -f json")
    assert shown["ID"] == message_id and shown["User Message"] == SCHEDULE_TEXT
    assert shown["Remediation"].startswith("Choose a smaller size")
    assert shown["Action Required"] is True and shown["Language"] == "en"
    assert yaml.safe_load(succeeded(member(live, home, *args, "-f", "yaml"))) == shown
    table = parse_properties(succeeded(member(live, home, *args)))
    assert table == {k: str(v) for k, v in shown.items()}
    # A single item has no csv in cliff; its shell format is the one for scripts.
    shell = dict(line.split("=", 1) for line in succeeded(
        member(live, home, *args, "-f", "shell", "--prefix", "m_")).splitlines())
    assert shell == {f"m_{k.lower().replace(' ', '_')}": json.dumps(str(v))
                     for k, v in shown.items()}
    value = succeeded(member(live, home, *args, "-f", "value", "-c", "Remediation"))
    assert value == shown["Remediation"] + "\n"
    assert {k: v for k, v in shown.items() if k in plain} == plain
    assert "Remediation" not in plain and plain["Request ID"].startswith("req-")
    assert "could not be found" in failed(member(live, home, "message", "show", message_id,
                                                 user="other", project="beta"))


def test_aggregates_and_export(live: Live, home: Path, tmp_path: Path) -> None:
    rows = json.loads(succeeded(member(live, home, "message", "aggregate", "list", "-f",
                                       "json")))
    counts = {(r["Dimension"], r["Value"]): r["Count"] for r in rows}
    alpha = {("event_id", "VOLUME_VOLUME_001_003"): 3,
             ("event_id", "VOLUME_VOLUME_SNAPSHOT_009_013"): 1,
             ("message_level", "ERROR"): 3, ("message_level", "WARNING"): 1,
             ("resource_type", "VOLUME"): 3, ("resource_type", "VOLUME_SNAPSHOT"): 1}
    assert {k: v for k, v in counts.items() if k[0] != "time"} == alpha
    hours = [r for r in rows if r["Dimension"] == "time"]
    assert len(hours) in (24, 25) and sum(r["Count"] for r in hours) == 4
    by_day = list(csv.DictReader(io.StringIO(succeeded(member(
        live, home, "message", "aggregate", "list", "--by", "time", "--bucket", "day",
        "--level", "warning", "-f", "csv")))))
    assert {r["Dimension"] for r in by_day} == {"time"} and len(by_day) in (30, 31)
    assert sum(int(r["Count"]) for r in by_day) == 1
    # Export: CSV to a file (renamed from .part when complete), NDJSON to stdout.
    target = tmp_path / "errors.csv"
    assert succeeded(member(live, home, "message", "export", "--format", "csv", "--level",
                            "error", "--file", str(target))) == ""
    exported = list(csv.DictReader(io.StringIO(target.read_text())))
    assert sorted(r["id"] for r in exported) == sorted(live.ids["alpha"][:3])
    assert list(tmp_path.iterdir()) == [target]
    lines = succeeded(member(live, home, "message", "export", "--search", "snapshot"))
    [snapshot] = [json.loads(line) for line in lines.splitlines()]
    assert snapshot["id"] == live.ids["alpha"][3] and "project_id" not in snapshot
    assert live.ids["beta"][0] not in lines


def _clouds_yaml(live: Live, home: Path, **extra: str) -> None:
    """alpha's member as a cloud in ~/.config/openstack/clouds.yaml (and ``extra`` options)."""
    cloud = {"auth": {"auth_url": live.cloud.auth_url, "username": "member",
                      "password": PASSWORD, "user_domain_id": "default",
                      "project_name": "alpha", "project_domain_id": "default"},
             "region_name": "RegionOne", "identity_api_version": 3, **extra}
    path = home / ".config" / "openstack" / "clouds.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"clouds": {"alpha": cloud}}))


def _sent_version(result) -> list[str]:
    """The OpenStack-API-Version of each request --debug logged to our endpoint."""
    return [line.split('"OpenStack-API-Version: ')[1].split('"')[0]
            for line in result.stderr.splitlines()
            if line.startswith("REQ: curl") and "messages-ext" in line]


def test_clouds_yaml_and_the_microversion(live: Live, home: Path, tmp_path: Path) -> None:
    cloud_home = tmp_path / "cloud-home"
    _clouds_yaml(live, cloud_home)
    # Negotiated: the highest both offer (3.71), sent on every request.
    negotiated = openstack(cloud_home, {"OS_CLOUD": "alpha"}, "--debug", "message",
                           "series", "list", "-f", "json")
    assert negotiated.returncode == 0, negotiated.stderr
    assert {row["Count"] for row in json.loads(negotiated.stdout)} == {3, 1}
    assert _sent_version(negotiated) == ["volume 3.71"]
    # clouds.yaml's message_api_version, then the option over it.
    _clouds_yaml(live, cloud_home, message_api_version="3.5")
    asked = openstack(cloud_home, {"OS_CLOUD": "alpha"}, "--debug", "message", "series",
                      "list")
    assert asked.returncode == 0 and _sent_version(asked) == ["volume 3.5"]
    option = openstack(cloud_home, {"OS_CLOUD": "alpha"}, "--debug",
                       "--os-message-api-version", "3.40", "message", "series", "list")
    assert option.returncode == 0 and _sent_version(option) == ["volume 3.40"]
    # Versions the server does not offer, or that are not versions: refused, one line.
    assert failed(openstack(cloud_home, {"OS_CLOUD": "alpha", "OS_MESSAGE_API_VERSION": "3.72"},
                            "message", "webhook", "list")) == (
        f"the block-storage API at {live.base}/v3/{live.cloud.projects['alpha']} offers "
        "volume 3.0 to 3.71; --os-message-api-version 3.72 is not among them.")
    assert failed(member(live, home, "--os-message-api-version", "3.2", "message", "series",
                         "list")) == ("--os-message-api-version 3.2 is too old: messages "
                                      "exist from volume 3.3 on.")
    assert "is not a block-storage microversion" in failed(member(
        live, home, "--os-message-api-version", "3.x", "message", "series", "list"))


def test_errors_are_one_line_without_a_traceback(live: Live, home: Path, tmp_path: Path
                                                 ) -> None:
    assert failed(member(live, home, "message", "series", "show", "nope")).startswith(
        "Series nope could not be found. (HTTP 404) (Request-ID: req-")
    assert "created_since" in failed(member(live, home, "message", "aggregate", "list",
                                            "--since", "yesterday"))
    # A region without this service: said so, with what to do.
    assert failed(member(live, home, "message", "webhook", "list",
                         OS_REGION_NAME="Elsewhere")).startswith(
        "no block-storage endpoint in the service catalog (region Elsewhere, interface public)")
    # clouds.yaml's endpoint override, on a port nothing listens on.
    down = tmp_path / "down-home"
    _clouds_yaml(live, down,
                 block_storage_endpoint_override=f"http://127.0.0.1:{servers.free_port()}/v3")
    assert "cannot reach the messages API at http://127.0.0.1:" in failed(
        openstack(down, {"OS_CLOUD": "alpha"}, "message", "series", "list"))
    # A reader may not manage webhooks (message:webhooks: members).
    assert failed(member(live, home, "message", "webhook", "create", "http://127.0.0.1:9/x",
                         user="reader")).startswith(
        "Policy doesn't allow message:webhooks:create to be performed. (HTTP 403)")
    # An export that fails leaves no file, not even its .part.
    target = tmp_path / "out.csv"
    assert "Invalid" in failed(member(live, home, "message", "export", "--format", "csv",
                                      "--sort", "bogus", "--file", str(target)))
    assert not target.exists() and not target.with_name("out.csv.part").exists()


def _delivered(live: Live, webhook_id: str, token: str) -> list[dict]:
    response = httpx.get(f"{live.base}/v3/{live.cloud.projects['alpha']}/messages-ext/webhooks/"
                         f"{webhook_id}/deliveries", timeout=10, headers={
                             "X-Auth-Token": token, "OpenStack-API-Version": "volume 3.5"})
    response.raise_for_status()
    return response.json()["deliveries"]


def test_webhooks_are_the_projects_own(live: Live, home: Path, hook: Receiver) -> None:
    created = json.loads(succeeded(member(live, home, "message", "webhook", "create", hook.url,
                                          "--level", "error", "-f", "json")))
    webhook_id, secret = created["ID"], created["Secret"]
    assert secret.startswith("whsec_") and created["Message Level"] == "ERROR"
    listed, shown = members(live, home, "message webhook list -f json",
                            f"message webhook show {webhook_id} -f json")
    assert [row["ID"] for row in listed] == [webhook_id] and secret not in json.dumps(listed)
    assert shown["URL"] == hook.url and shown["Enabled"] is True and "Secret" not in shown
    # A new failure in alpha is delivered; the delivery log shows it.
    message_id = live.seed("alpha", Action.ATTACH_VOLUME, Resource.VOLUME,
                           detail=Detail.ATTACH_ERROR)
    hook.wait_for(lambda got: any(message_id.encode() in r.body for r in got))
    token = live.cloud.token("member", "alpha")
    deadline = time.monotonic() + 30
    while not _delivered(live, webhook_id, token):  # logged just after the receiver's 2xx
        assert time.monotonic() < deadline, "no delivery logged"
        time.sleep(0.05)
    [delivery] = json.loads(succeeded(member(live, home, "message", "webhook", "delivery",
                                             "list", webhook_id, "-f", "json")))
    assert delivery["Message ID"] == message_id and delivery["Outcome"] == "delivered"
    assert delivery["Status Code"] == 204 and delivery["Attempt"] == 1
    # Another project's member neither sees nor touches it.
    assert members(live, home, "message webhook list -f json", user="other",
                   project="beta") == [[]]
    assert failed(member(live, home, "message", "webhook", "show", webhook_id, user="other",
                         project="beta")).startswith(f"Webhook {webhook_id} could not be found.")
    refused = member(live, home, "message", "webhook", "delete", webhook_id, user="other",
                     project="beta")
    assert failed(refused) == "Failed to delete 1 of 1 webhooks."
    assert f"Failed to delete webhook {webhook_id}: Webhook {webhook_id} could not be found." \
        in refused.stderr
    # Its member deletes it.
    assert members(live, home, f"message webhook delete {webhook_id}",
                   "message webhook list -f json") == [[]]
