"""``usermessages webhook ...`` (through the API) and ``usermessages webhook-deliverer``."""

from __future__ import annotations

import contextlib
import signal
import threading

import click

from usermessages.cli.client import Client, api_group, pass_client
from usermessages.cli.common import (
    config_option,
    console,
    db_option,
    edge,
    load_service_settings,
)
from usermessages.cli.output import Column, Output, View, output_options

_COLUMNS = (
    Column("id", "ID", whole=True),
    Column("url", "URL"),
    Column("message_level", "Level"),
    Column("event_id", "Event ID", whole=True),
    Column("resource_type", "Resource Type", whole=True),
    Column("enabled", "Enabled"),
    Column("disabled_reason", "Disabled Reason"),
    Column("consecutive_failures", "Failures"),
    Column("created_at", "Created At", whole=True),
)
WEBHOOKS = View(
    "webhook list", _COLUMNS,
    shown=("id", "url", "message_level", "event_id", "resource_type", "enabled",
           "disabled_reason", "consecutive_failures"),
    priority=("id", "url", "enabled", "consecutive_failures", "event_id", "message_level",
              "resource_type", "disabled_reason"),
)
WEBHOOK = View("webhook show", _COLUMNS)
# What create answers: the webhook and, this once, its signing secret.
CREATED = View("webhook create", (*_COLUMNS, Column("secret", "Secret", whole=True)))
DELIVERIES = View(
    "webhook deliveries",
    (Column("created_at", "Time", whole=True),
     Column("message_id", "Message ID", whole=True),
     Column("attempt", "Attempt"),
     Column("status_code", "Status"),
     Column("error", "Error"),
     Column("outcome", "Outcome")),
    shown=("created_at", "message_id", "attempt", "status_code", "error", "outcome"),
    priority=("message_id", "outcome", "created_at", "status_code", "error", "attempt"),
)


@click.group()
@api_group
def webhook() -> None:
    """Manage the project's signed webhooks through a running API (docs/webhooks.md)."""


def _base(client: Client) -> str:
    return f"{client.base}/messages-ext/webhooks"


@webhook.command("create")
@click.argument("target", metavar="URL")
@click.option("--level", help="Only messages of this level (ERROR, WARNING, INFO).")
@click.option("--event-id", help="Only this event id, e.g. VOLUME_VOLUME_001_003.")
@click.option("--resource-type", help="Only messages about VOLUME, VOLUME_SNAPSHOT...")
@output_options(CREATED)
@pass_client
def create(client: Client, target: str, level: str | None, event_id: str | None,
           resource_type: str | None, output: Output) -> None:
    """Subscribe URL to the project's new messages; prints the signing secret, once."""
    fields = {"url": target, "message_level": level.upper() if level else None,
              "event_id": event_id,
              "resource_type": resource_type.upper() if resource_type else None}
    body = {"webhook": {k: v for k, v in fields.items() if v}}
    created = client.request("POST", _base(client), json=body).json()["webhook"]
    if output.fmt != "table":
        output.one(created)
        return
    output.one({k: v for k, v in created.items() if k != "secret"})
    click.echo(f"Signing secret (shown only now): {created['secret']}")


@webhook.command("list")
@output_options(WEBHOOKS)
@pass_client
def list_command(client: Client, output: Output) -> None:
    """The project's webhooks."""
    output.items(client.request("GET", _base(client)).json()["webhooks"])


@webhook.command("show")
@click.argument("webhook_id")
@output_options(WEBHOOK)
@pass_client
def show(client: Client, webhook_id: str, output: Output) -> None:
    """One webhook (never its secret)."""
    output.one(client.request("GET", f"{_base(client)}/{webhook_id}").json()["webhook"])


@webhook.command("delete")
@click.argument("webhook_id")
@pass_client
def delete(client: Client, webhook_id: str) -> None:
    """Stop and remove a webhook, with its delivery log."""
    client.request("DELETE", f"{_base(client)}/{webhook_id}")
    click.echo(f"deleted {webhook_id}")


@webhook.command("deliveries")
@click.argument("webhook_id")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@output_options(DELIVERIES)
@pass_client
def deliveries(client: Client, webhook_id: str, limit: int, output: Output) -> None:
    """A webhook's delivery attempts, newest first."""
    output.items(client.request("GET", f"{_base(client)}/{webhook_id}/deliveries",
                                params={"limit": limit}).json()["deliveries"])


@click.command("webhook-deliverer")
@db_option
@config_option
@edge
def webhook_deliverer(db: str | None, config_file: str | None) -> None:
    """Deliver new messages to the webhooks, until SIGTERM or Ctrl-C.

    For deployments that run it apart from `usermessages serve`
    ([webhooks] embedded = false); several may run at once.
    """
    # The server extra: loaded by the commands that need it, so the client installs alone.
    from usermessages.store import engine as store_engine
    from usermessages.store import migrate
    from usermessages.webhooks.deliverer import Deliverer

    settings = load_service_settings(config_file, db)
    engine = store_engine.connect(settings.database_connection)
    if not migrate.is_at_head(engine):
        raise click.ClickException(
            "the database schema is not current: run `usermessages db upgrade` first")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print("usermessages webhook deliverer on "
                  f"{engine.url.render_as_string(hide_password=True)}")
    with contextlib.suppress(KeyboardInterrupt):
        Deliverer(settings, engine).run(stop)
