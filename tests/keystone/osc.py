"""The real ``openstack`` command, our plugin in it, against the real Keystone and a live API.

The API is ``usermessages serve`` in keystone mode (one INI file with its
[keystone_authtoken]), the catalog's only block storage while a module runs.
``openstack`` is this venv's console script, run in a scratch HOME with only
the variables given: no clouds.yaml, OS_CLOUD or token of the machine leaks in.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import servers
from tests.harness.cloud import PASSWORD, Cloud
from tests.harness.peers import BIN, TIMEOUT
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource

VOLUME = "0e0e0e0e-0000-4000-8000-000000000001"
SNAPSHOT = "5a5a5a5a-0000-4000-8000-000000000001"
SCHEDULE_TEXT = "schedule allocate volume:Could not find any available weighted backend."


@dataclass
class Live:
    """A running API in keystone mode, its store, and the seeded messages' ids by project."""

    base: str
    messenger: Messenger
    cloud: Cloud
    ids: dict[str, list[str]] = field(default_factory=dict)

    def seed(self, project: str, action: Action = Action.SCHEDULE_ALLOCATE_VOLUME,
             resource: Resource = Resource.VOLUME, uuid: str = VOLUME,
             detail: Detail = Detail.NO_BACKEND_AVAILABLE, level: Level = Level.ERROR) -> str:
        """Store one message in ``project`` (by name); its id."""
        message_id = self.messenger.create(
            RequestContext(project_id=self.cloud.projects[project], user_id="u"), action,
            resource_type=resource, resource_uuid=uuid, detail=detail, level=level)
        assert message_id, "the messenger could not store the message"
        self.ids.setdefault(project, []).append(message_id)
        return message_id


@contextlib.contextmanager
def live_api(cloud: Cloud, root: Path, extra_config: str = "") -> Iterator[Live]:
    """Serve in keystone mode on a SQLite file, registered as the catalog's block storage;
    seed alpha with three failures of one volume (one series) and a snapshot warning, and
    beta with one failure of its own."""
    db_url = f"sqlite:///{root}/usermessages.sqlite"
    options = "\n".join(f"{k} = {v}" for k, v in cloud.authtoken_options().items())
    config = root / "usermessages.ini"
    config.write_text(f"[api]\nauth_strategy = keystone\n\n[keystone_authtoken]\n{options}\n\n"
                      f"{extra_config}")
    with servers.api_server(db_url, config_file=str(config)) as base, \
            cloud.only_endpoint(base):
        live = Live(base, Messenger.from_url(db_url), cloud)
        try:
            for _ in range(3):
                live.seed("alpha")
            live.seed("alpha", Action.SNAPSHOT_CREATE, Resource.VOLUME_SNAPSHOT, SNAPSHOT,
                      Detail.SNAPSHOT_CREATE_ERROR, Level.WARNING)
            live.seed("beta", Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
            yield live
        finally:
            live.messenger.close()


def os_variables(cloud: Cloud, user: str, project: str) -> dict[str, str]:
    """What a user's openrc exports: password auth on Keystone, scoped to a project."""
    return {"OS_AUTH_URL": cloud.auth_url, "OS_IDENTITY_API_VERSION": "3",
            "OS_USERNAME": user, "OS_PASSWORD": PASSWORD, "OS_USER_DOMAIN_ID": "default",
            "OS_PROJECT_NAME": project, "OS_PROJECT_DOMAIN_ID": "default",
            "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}


def base_env(home: Path) -> dict[str, str]:
    """A clean environment with this venv's commands first on PATH."""
    return {"PATH": f"{BIN}:{os.environ.get('PATH', '')}", "HOME": str(home),
            "LANG": "C.UTF-8"}


def openstack(home: Path, variables: dict[str, str], *args: str
              ) -> subprocess.CompletedProcess:
    """``openstack ARGS`` with ``variables`` as its only OS_* environment."""
    return subprocess.run([str(BIN / "openstack"), *args], env={**base_env(home), **variables},
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=home,
                          check=False)


def succeeded(result: subprocess.CompletedProcess) -> str:
    """Its stdout, once it is known the command exited 0 and complained of nothing."""
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def failed(result: subprocess.CompletedProcess) -> str:
    """The error as openstack prints it: exit 1, nothing on stdout, lines without a traceback;
    the last line of stderr (the command's own error)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
    return result.stderr.strip().splitlines()[-1]


def batch(home: Path, variables: dict[str, str], *commands: str) -> list:
    """Several commands in one ``openstack`` (its interactive mode reads them from stdin;
    each run costs seconds): the JSON documents they printed, in order."""
    result = subprocess.run([str(BIN / "openstack")], input="\n".join(commands) + "\n",
                            env={**base_env(home), **variables}, capture_output=True,
                            text=True, timeout=TIMEOUT, cwd=home, check=False)
    # Interactive mode exits 1 at the end of its input, whatever ran: the commands'
    # errors are on stderr.
    assert result.stderr == "", result.stderr
    decoder, documents, index = json.JSONDecoder(), [], 0
    text = result.stdout
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents
