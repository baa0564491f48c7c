"""``usermessages``: run the service, manage its store, and read messages.

The one place the command tree is assembled: each module defines its commands
and imports ``common`` and ``output``; this module adds them to the root group.
Domain errors become a one-line message and a non-zero exit (``common.edge``).
"""

from __future__ import annotations

import logging

import click

from usermessages.cli import catalog, messages, policy, series, server, webhooks, zaqar
from usermessages.cli.common import LOG_FORMAT


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """Tell cloud users why their asynchronous operations failed."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=LOG_FORMAT,
    )


for command in (
    # The service and its store.
    server.serve, server.collector, server.dead_letters, server.db, server.reap,
    server.config_group, policy.policy_group, webhooks.webhook_deliverer, zaqar.zaqar_collector,
    # The catalog, and the clients of a running API or of Zaqar.
    catalog.catalog, messages.message, series.series, webhooks.webhook, zaqar.zaqar,
    zaqar.deprecated_subscription,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
