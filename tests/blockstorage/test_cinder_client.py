"""The README's demo, with the real python-cinderclient: a too-large volume fails and
`cinder create --poll` prints the user message it finds by the create call's request id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _cinder(base: str, project: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    cinder = Path(sys.executable).with_name("cinder")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "OS_AUTH_TYPE": "noauth", "OS_USER_ID": "alice", "OS_PROJECT_ID": project,
           "CINDER_ENDPOINT": f"{base}/v3/{project}"}
    return subprocess.run([str(cinder), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_create_poll_prints_the_user_message(aio, tmp_path):
    project = "c1c1c1c1"
    result = _cinder(aio, project, "create", "5000", "--poll", home=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("ERROR: 'Volume' resource is in the error state due to 'schedule allocate "
            "volume:Could not find any available weighted backend.'.") in result.stderr
    listing = _cinder(aio, project, "--os-volume-api-version", "3.5", "message-list",
                      home=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "VOLUME_VOLUME_001_003" in listing.stdout


def test_a_volume_that_fits_becomes_available(aio, tmp_path):
    result = _cinder(aio, "c2c2c2c2", "create", "1", "--poll", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "available" in result.stdout


def test_a_project_that_is_not_a_project_id_gets_the_reason(aio, tmp_path):
    result = _cinder(aio, "demo", "create", "1", home=tmp_path)
    assert result.returncode == 1
    assert ("ERROR: The resource could not be found. A project id must match [0-9a-f\\-]+ "
            "([api] project_id_regex, as Cinder's); 'demo' does not. (HTTP 404)") in result.stderr


def test_listings_and_lookup_by_name(aio, tmp_path):
    """What `cinder snapshot-list`, `backup-list`, `group-list` and `group-show <name>`
    call (/detail routes, GET /groups, ?name=)."""
    project = "c3c3c3c3"
    assert _cinder(aio, project, "create", "1", "--name", "v", "--poll",
                   home=tmp_path).returncode == 0
    for command in (["snapshot-list"], ["backup-list"],
                    ["--os-volume-api-version", "3.13", "group-list"]):
        result = _cinder(aio, project, *command, home=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith("+"), result.stdout
    result = _cinder(aio, project, "--os-volume-api-version", "3.13", "group-show", "nope",
                     home=tmp_path)
    assert result.returncode == 1
    assert "No group with a name or ID of 'nope' exists." in result.stderr, result.stderr
