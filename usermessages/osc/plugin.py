"""The plugin module openstackclient loads (``openstack.cli.extension``).

openstackclient reads ``API_NAME``, ``API_VERSION_OPTION``, ``API_VERSIONS`` and
``DEFAULT_API_VERSION``, asks ``check_api_version`` about the version given,
adds ``build_option_parser``'s global options, and calls ``make_client`` the
first time a command uses ``client_manager.message``.

The commands speak to the service that serves Cinder's messages API: the
``block-storage`` endpoint of the catalog (or one of its aliases, ``volumev3``...),
where the ``messages-ext`` extensions live beside ``/messages``.
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib import utils

from usermessages.osc import client
from usermessages.osc.client import MessageClient, connect, is_version_3

API_NAME = client.API_NAME
# openstackclient reads the option's value from the parsed options and clouds.yaml
# under this name without its "os_" (clouds.yaml: `message_api_version: 3.5`).
API_VERSION_OPTION = "os_message_api_version"
# The command group is openstack.message.v<major>; every microversion is 3.x.
DEFAULT_API_VERSION = "3"
API_VERSIONS = ("3",)


def make_client(instance: Any) -> MessageClient:
    """The messages API's client for this invocation: endpoint found, version negotiated."""
    return connect(instance, instance._api_version[API_NAME])


def check_api_version(check_version: str) -> bool:
    """Called by openstackclient for every command, before any runs: a 3.x version
    skips its own check (which knows major versions only); anything else gets its
    warning, and only the message commands, which then fail, are concerned."""
    return is_version_3(check_version)


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--os-message-api-version``, as ``--os-volume-api-version`` is for volumes."""
    parser.add_argument(
        "--os-message-api-version",
        metavar="<message-api-version>",
        default=utils.env("OS_MESSAGE_API_VERSION"),
        help="Block-storage microversion for the message commands: 3.N (N >= 3), or 3 or "
             "3.latest for the highest the server and these commands share "
             f"(default: {DEFAULT_API_VERSION}) (Env: OS_MESSAGE_API_VERSION)",
    )
    return parser
