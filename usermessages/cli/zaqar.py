"""``usermessages zaqar-collector`` and ``usermessages zaqar subscription ...`` (docs/zaqar.md).

A Zaqar subscription (Zaqar pushes a project's queue to a URL, unsigned) is not
one of our signed webhooks (``usermessages webhook``): the commands say Zaqar
in their name, as ``openstack messaging subscription`` does. The old
``usermessages subscription ...`` still works, with a note on stderr.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import click

from usermessages.cli.common import (
    config_option,
    console,
    db_option,
    edge,
    load_service_settings,
    load_settings,
    safe_url,
)
from usermessages.cli.output import Column, Output, View, output_options
from usermessages.zaqar.client import MIN_TTL
from usermessages.zaqar.subscriptions import DEFAULT_TTL

zaqar_option = click.option("--zaqar", "zaqar_url", default=None, envvar="USERMESSAGES_ZAQAR",
                            help="Zaqar v2 endpoint; overrides [zaqar] url.")
project_option = click.option("--project", required=True, envvar="OS_PROJECT_ID",
                              help="Project whose queue it is (default $OS_PROJECT_ID).")

SUBSCRIPTIONS = View(
    "zaqar subscription list",
    (Column("id", "ID", whole=True), Column("subscriber", "Subscriber"),
     Column("ttl", "TTL"), Column("age", "Age")),
    shown=("id", "subscriber", "ttl", "age"),
    priority=("id", "subscriber", "ttl", "age"),
)


@click.command("zaqar-collector")
@zaqar_option
@click.option("--project", "projects", multiple=True,
              help="A project to read besides [zaqar] projects and the index (repeatable).")
@db_option
@config_option
@edge
def zaqar_collector(zaqar_url: str | None, projects: tuple[str, ...], db: str | None,
                    config_file: str | None) -> None:
    """Claim messages from the projects' Zaqar queues and store them, until SIGTERM."""
    # The server extra: loaded by the commands that need it, so the client installs alone.
    from usermessages.store import engine as store_engine
    from usermessages.zaqar.collector import ZaqarCollector

    settings = load_service_settings(config_file, db).replace(zaqar_url=zaqar_url)
    if projects:
        extra = ",".join(p for p in (settings.zaqar_projects, *projects) if p)
        settings = settings.replace(zaqar_projects=extra)
    engine = store_engine.connect(settings.database_connection)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"zaqar collector: {safe_url(settings.zaqar_url)} -> "
                  f"{engine.url.render_as_string(hide_password=True)}")
    collector = ZaqarCollector.from_settings(settings, engine)
    try:
        collector.run(stop)
    finally:
        collector.close()


@click.group()
def zaqar() -> None:
    """Zaqar, OpenStack's queuing service: the projects' queue subscriptions (docs/zaqar.md)."""


@zaqar.group()
def subscription() -> None:
    """URLs Zaqar pushes a project's user messages to (unsigned; see `webhook` for signed)."""


@contextlib.contextmanager
def _subscriptions(config_file: str | None,
                   zaqar_url: str | None) -> Iterator[tuple[Any, Any]]:
    """The Zaqar client and queue layout of the settings, closed after use."""
    # Loaded by the three commands that use them, not by every `usermessages` start.
    from usermessages.zaqar.client import ZaqarClient
    from usermessages.zaqar.layout import layout_from_settings

    settings = load_settings(config_file).replace(zaqar_url=zaqar_url)
    client = ZaqarClient(settings.zaqar_url, timeout=settings.zaqar_timeout,
                         auth_token=settings.zaqar_auth_token)
    with client:
        yield client, layout_from_settings(settings)


@subscription.command("create")
@project_option
@click.option("--subscriber", required=True, help="Webhook URL (http:// or https://).")
@click.option("--ttl", type=int, default=DEFAULT_TTL, show_default=True,
              help=f"Seconds before Zaqar drops the subscription (at least {MIN_TTL}).")
@zaqar_option
@config_option
@edge
def subscription_create(project: str, subscriber: str, ttl: int, zaqar_url: str | None,
                        config_file: str | None) -> None:
    """Subscribe a URL to the project's user messages; prints the subscription's id."""
    from usermessages.zaqar import subscriptions

    with _subscriptions(config_file, zaqar_url) as (client, layout):
        click.echo(subscriptions.create(client, layout, project, subscriber, ttl))


@subscription.command("list")
@project_option
@zaqar_option
@config_option
@output_options(SUBSCRIPTIONS)
@edge
def subscription_list(project: str, zaqar_url: str | None, config_file: str | None,
                      output: Output) -> None:
    """The project's subscriptions."""
    from usermessages.zaqar import subscriptions

    with _subscriptions(config_file, zaqar_url) as (client, layout):
        found = subscriptions.list_(client, layout, project)
    output.items(found)


@subscription.command("delete")
@project_option
@click.argument("subscription_id")
@zaqar_option
@config_option
@edge
def subscription_delete(project: str, subscription_id: str, zaqar_url: str | None,
                        config_file: str | None) -> None:
    """Delete one of the project's subscriptions."""
    from usermessages.zaqar import subscriptions

    with _subscriptions(config_file, zaqar_url) as (client, layout):
        subscriptions.delete(client, layout, project, subscription_id)
    click.echo(f"deleted subscription {subscription_id}")


# The name before Zaqar's subscriptions were told apart from our webhooks: the same
# commands, and click's one-line deprecation note on stderr.
deprecated_subscription = click.Group(
    "subscription", commands=dict(subscription.commands),
    help="The old name of `usermessages zaqar subscription`.", hidden=True,
    deprecated="Use `usermessages zaqar subscription` (same options and output).")
