"""docs/deployment.md's blocks as written, and its configuration pointed at this machine.

The page documents one controller's file with reserved addresses (192.0.2.0/24) and
placeholder passwords; the tests that run it replace exactly those, and fail when one is
left over, so the file they run is the file the page shows.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
CONF = "/etc/usermessages/usermessages.conf"  # where the page's commands read the file


def blocks(kind: str) -> list[str]:
    """The page's fenced blocks of ``kind`` (ini, sh, haproxy), in order."""
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def commands() -> list[list[str]]:
    """The page's commands that read the configuration file, split into arguments."""
    return [block.strip().split() for block in blocks("sh") if CONF in block]


def configuration(*, port: int, database: str, brokers: list[str], endpoint: str) -> str:
    """The INI block for a controller of this machine: listening on 127.0.0.1:``port``,
    the store at ``database``, the brokers' ``host:port`` in the documented order (guest's
    credentials), ``endpoint`` for the balancer's address."""
    [ini] = blocks("ini")
    replaced = {
        "host = 0.0.0.0": "host = 127.0.0.1",
        "port = 8776": f"port = {port}",
        "http://192.0.2.10:8776": endpoint,
    }
    for documented, local in replaced.items():
        assert documented in ini, f"the page no longer says {documented!r}"
        ini = ini.replace(documented, local)
    ini = re.sub(r"(?m)^connection = .*$", lambda _: f"connection = {database}", ini)
    for n, broker in enumerate(brokers, start=1):
        ini = ini.replace(f"usermessages:BUS_PASSWORD@192.0.2.1{n}:5672",
                          f"guest:guest@{broker}")
    left = re.findall(r"^(?!www_authenticate_uri|auth_url).*192\.0\.2\..*$", ini, flags=re.M)
    assert not left, f"an address of the page was left as documented: {left}"
    return ini
