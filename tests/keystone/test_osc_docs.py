"""docs/openstackclient.md's blocks, run as written against the real Keystone and a live API.

Each ``sh`` block runs whole in bash (``-euo pipefail``) with the OS_* variables of a
project member, or, for the clouds.yaml one, with the page's clouds.yaml only: its
Keystone URL, user, password and project become the test cloud's. The deliverer is off
([webhooks] embedded = false): the page's webhook target is never sent anything.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.harness.cloud import PASSWORD, Cloud
from tests.harness.peers import TIMEOUT
from tests.keystone.osc import Live, base_env, live_api, os_variables

# Each `openstack` is a fresh process loading every openstackclient plugin (1-2 s idle,
# ten times that on a loaded 2-core machine), and a test runs several.
pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "openstackclient.md"


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def _sh(containing: str) -> str:
    [block] = [body for lang, body in _blocks() if lang == "sh" and containing in body]
    return block


def _after(block: str) -> str:
    """The plain block right after ``block``: the output the page shows for it."""
    blocks = _blocks()
    return blocks[[body for _, body in blocks].index(block) + 1][1]


@pytest.fixture(scope="module")
def live(cloud: Cloud, tmp_path_factory) -> Iterator[Live]:
    with live_api(cloud, tmp_path_factory.mktemp("osc-docs"),
                  "[webhooks]\nallowed_cidrs = 10.20.0.0/16\nembedded = false\n") as server:
        yield server


def _bash(block: str, cwd: Path, variables: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd,
                          env={**base_env(cwd), **variables}, capture_output=True, text=True,
                          timeout=TIMEOUT * 4, check=False)


def _clean(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "rror" not in result.stderr, result.stderr
    return result.stdout


def test_every_sh_block_is_run_here() -> None:
    assert len([1 for lang, _ in _blocks() if lang == "sh"]) == 4


def test_the_reading_commands(live: Live, tmp_path: Path) -> None:
    out = _clean(_bash(_sh("message series list\n"), tmp_path,
                       os_variables(live.cloud, "member", "alpha")))
    series = httpx.get(f"{live.base}/v3/{live.cloud.projects['alpha']}/messages-ext/series",
                       timeout=10, headers={"X-Auth-Token": live.cloud.token("member", "alpha"),
                                            "OpenStack-API-Version": "volume 3.5"}).json()
    assert {s["id"] for s in series["series"]} <= set(re.findall(r"[0-9a-f-]{36}", out))
    # show --remediation, of the newest message (the snapshot's warning).
    assert re.search(r"^\| Remediation +\| \w", out, flags=re.M), out
    assert re.search(r"^\| Event ID +\| VOLUME_VOLUME_SNAPSHOT_009_013 ", out, flags=re.M)
    assert '"Dimension","Value","Count"' in out  # aggregate list -f csv
    with (tmp_path / "errors.csv").open() as handle:
        assert sorted(row["id"] for row in csv.DictReader(handle)) == sorted(
            live.ids["alpha"][:3])


def test_the_clouds_yaml(live: Live, tmp_path: Path) -> None:
    [page_yaml] = [body for lang, body in _blocks() if lang == "yaml"]
    clouds = yaml.safe_load(page_yaml)
    auth = clouds["clouds"]["mycloud"]["auth"]
    assert (auth["auth_url"], auth["username"], auth["project_name"]) == (
        "https://keystone.example:5000/v3", "alice", "demo")
    auth.update(auth_url=live.cloud.auth_url, username="member", password=PASSWORD,
                project_name="alpha")
    config = tmp_path / ".config" / "openstack" / "clouds.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump(clouds))
    rows = json.loads(_clean(_bash(_sh("--os-cloud mycloud"), tmp_path, {})))
    assert sorted(row["Count"] for row in rows) == [1, 3]


def test_a_version_the_server_does_not_offer(live: Live, tmp_path: Path) -> None:
    block = _sh("--os-message-api-version 3.80")
    result = _bash(block, tmp_path, os_variables(live.cloud, "member", "alpha"))
    shown_error, shown_exit = _after(block).strip().splitlines()
    endpoint = f"{live.base}/v3/{live.cloud.projects['alpha']}"
    assert result.returncode == 0 and result.stdout == shown_exit + "\n"
    assert result.stderr.strip() == re.sub(r"https://cloud\.example:8776/v3/\S+", endpoint,
                                           shown_error)


def test_the_webhook_commands(live: Live, tmp_path: Path) -> None:
    block = _sh("message webhook create")
    out = _clean(_bash(block, tmp_path, os_variables(live.cloud, "member", "alpha")))
    saved = dict(line.split("=", 1) for line in (tmp_path / "webhook.env").read_text().split())
    webhook_id = json.loads(saved["webhook_id"])
    assert json.loads(saved["webhook_secret"]).startswith("whsec_")
    assert out.count(webhook_id) == 2 and "http://10.20.0.5:8080/hooks/cinder" in out
    listed = httpx.get(f"{live.base}/v3/{live.cloud.projects['alpha']}/messages-ext/webhooks",
                       timeout=10, headers={"X-Auth-Token": live.cloud.token("member", "alpha"),
                                            "OpenStack-API-Version": "volume 3.5"})
    assert listed.json() == {"webhooks": []}  # the block deleted it
