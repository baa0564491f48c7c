"""``openstack message show``: one message, with what to do about it (``--remediation``).

``openstack volume message list|show|delete`` stay openstackclient's own; this
command adds what Cinder's API has not: the catalog's advice for the failure
(``messages-ext/messages/{id}``).
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command

from usermessages.osc import client
from usermessages.osc.v3.display import one


class ShowMessage(command.ShowOne):
    """Show a message, and with --remediation what you can do about it"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("message", metavar="<message-id>", help="Message to show (ID)")
        parser.add_argument(
            "--remediation", action="store_true",
            help="Add the advice for this failure: remediation, action required, "
                 "help URL and the language of the texts")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        api = client.of(self.app)
        route = "messages-ext/messages" if parsed_args.remediation else "messages"
        return one(api.get(f"{route}/{parsed_args.message}")["message"])
