"""A live `usermessages serve` with known messages, and how to run the real clients at it.

The clients are the released ones, unchanged: python-cinderclient 9.10.0 (`cinder`),
python-openstackclient 10.5.0 on openstacksdk 4.22.0 (`openstack`), tempest.lib 47.
No Keystone: Cinder's noauth token ``user:project``; the user ``admin`` is an admin.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness import servers
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource

# Project ids as Keystone makes them (hex), so they pass the server's project_id_regex.
P = "7d1c4e5a9b2f4c3d8e6f0a1b2c3d4e5f"
Q = "0f9e8d7c6b5a49382716a5b4c3d2e1f0"
R = "c0ffee00c0ffee00c0ffee00c0ffee00"  # for messages a test creates and deletes
ALICE, BOB, CAROL, ADMIN = "alice", "bob", "carol", "admin"  # in P, Q, R; admin is admin
BIN = Path(sys.executable).parent
TIMEOUT = 60

SCHEDULE_TEXT = "schedule allocate volume:Could not find any available weighted backend."


@dataclass(frozen=True)
class Seed:
    """One message to create, and what every client should show for it."""

    name: str
    project: str
    action: Action
    resource: Resource
    resource_uuid: str | None
    detail: Detail
    level: Level
    request_id: str
    event_id: str
    user_message: str


def _volume(i: int) -> Seed:
    return Seed(f"vol-{i}", P, Action.SCHEDULE_ALLOCATE_VOLUME, Resource.VOLUME,
                f"0e0e0e0e-0000-4000-8000-00000000000{i}", Detail.NO_BACKEND_AVAILABLE,
                Level.ERROR, f"req-00000000-0000-4000-8000-00000000000{i}",
                "VOLUME_VOLUME_001_003", SCHEDULE_TEXT)


# In creation order, so created_at ascends in this order.
SEEDS = (
    *(_volume(i) for i in range(5)),
    Seed("snap", P, Action.SNAPSHOT_CREATE, Resource.VOLUME_SNAPSHOT,
         "5a5a5a5a-0000-4000-8000-000000000001", Detail.SNAPSHOT_CREATE_ERROR, Level.ERROR,
         "req-5a5a5a5a-0000-4000-8000-000000000001", "VOLUME_VOLUME_SNAPSHOT_009_013",
         "create snapshot:Snapshot failed to create."),
    Seed("backup", P, Action.BACKUP_CREATE, Resource.VOLUME_BACKUP,
         "bbbbbbbb-0000-4000-8000-000000000001", Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP,
         Level.WARNING, "req-bbbbbbbb-0000-4000-8000-000000000001",
         "VOLUME_VOLUME_BACKUP_013_030",
         "create backup:Incremental backup not possible, forcing full backup."),
    Seed("other", Q, Action.ATTACH_VOLUME, Resource.VOLUME,
         "0a0a0a0a-0000-4000-8000-000000000001", Detail.ATTACH_ERROR, Level.ERROR,
         "req-0a0a0a0a-0000-4000-8000-000000000001", "VOLUME_VOLUME_002_021",
         "attach volume:Failed to attach volume."),
)
BY_NAME = {seed.name: seed for seed in SEEDS}
OWN = [seed.name for seed in SEEDS if seed.project == P]  # alice's, oldest first


@dataclass
class Live:
    """A running server, its store, and the ids of the seeded messages by seed name."""

    base: str
    db_url: str
    messenger: Messenger
    ids: dict[str, str]

    def seed(self, seed: Seed, project: str | None = None) -> str:
        """Store ``seed`` (in ``project`` instead of its own, if given); return its id."""
        project = project or seed.project
        user = {P: ALICE, Q: BOB, R: CAROL}[project]
        message_id = self.messenger.create(
            RequestContext(project_id=project, user_id=user, request_id=seed.request_id),
            seed.action, resource_type=seed.resource, resource_uuid=seed.resource_uuid,
            detail=seed.detail, level=seed.level)
        assert message_id, "the messenger could not store the message"
        return message_id


@contextlib.contextmanager
def live_server(root: Path, *, osapi_max_limit: int | None = None) -> Iterator[Live]:
    """Start `usermessages serve` on a SQLite file, then seed SEEDS and one service message.

    The server migrates the SQLite store as it starts, so it starts first.
    """
    db_url = f"sqlite:///{root}/usermessages.sqlite"
    config = None
    if osapi_max_limit is not None:
        config = root / "usermessages.ini"
        config.write_text(f"[DEFAULT]\nosapi_max_limit = {osapi_max_limit}\n")
    with servers.api_server(db_url, config_file=str(config) if config else None) as base:
        messenger = Messenger.from_url(db_url)
        live = Live(base, db_url, messenger, {})
        try:
            for seed in SEEDS:
                live.ids[seed.name] = live.seed(seed)
            # Admin-only: no project, so no project user may see it.
            service = messenger.create_service_message(
                Action.SERVICE_STATUS, Detail.SERVICE_DOWN, host="cinder-volume@lvm")
            assert service, "the messenger could not store the message"
            live.ids["service"] = service
            yield live
        finally:
            messenger.close()


def run(tool: str, args: list[str], home: Path) -> subprocess.CompletedProcess:
    """Run a client console script from this venv with a clean environment.

    HOME is a scratch directory and no OS_* variable is passed, so no clouds.yaml,
    OS_CLOUD or saved token of the machine can leak in.
    """
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run([str(BIN / tool), *args], check=False, capture_output=True, text=True,
                          env=env, timeout=TIMEOUT, cwd=home)


def parse_table(stdout: str) -> list[dict[str, str]]:
    """The rows of a prettytable (what `cinder` and `openstack` print), as dicts."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    if not lines:
        return []
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    header, rows = cells[0], cells[1:]
    return [dict(zip(header, row, strict=True)) for row in rows]


def parse_properties(stdout: str) -> dict[str, str]:
    """A two-column Property/Value (or Field/Value) table as a dict."""
    return {row[key]: row["Value"] for row in parse_table(stdout)
            for key in ("Property", "Field") if key in row}
