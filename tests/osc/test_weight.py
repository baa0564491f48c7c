"""The plugin weighs on neither side: the SDK does not load it, and `openstack` loading it
(at every command, whichever) loads no server library and nothing of our own CLI."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER = ["fastapi", "starlette", "uvicorn", "sqlalchemy", "oslo_policy", "click", "rich",
          "usermessages.api", "usermessages.cli", "usermessages.store", "usermessages.reader"]
PLUGIN = ["usermessages.osc", "osc_lib", "cliff", "keystoneauth1", "openstackclient"]


def _loaded(code: str, names: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys\n"
                          f"print(json.dumps(sorted(set({names!r}) & set(sys.modules))))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_the_sdk_loads_nothing_of_the_plugin() -> None:
    assert _loaded("import usermessages\nfrom usermessages import Messenger", PLUGIN) == []


def test_the_plugin_loads_nothing_of_the_server_or_the_cli() -> None:
    code = ("import usermessages.osc.plugin, usermessages.osc.v3.series, "
            "usermessages.osc.v3.webhooks, usermessages.osc.v3.export, "
            "usermessages.osc.v3.aggregates, usermessages.osc.v3.messages")
    assert _loaded(code, SERVER) == []
    # What it does load: openstackclient's own libraries, already in `openstack`.
    assert _loaded(code, PLUGIN) == sorted(PLUGIN[:4])
