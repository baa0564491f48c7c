"""``usermessages webhook ...`` (through the API) and ``usermessages webhook-deliverer``.

Registered on the main group by ``register``; errors are one line and exit 1.
"""

from __future__ import annotations

import contextlib
import json

import click
from rich.table import Table

from usermessages.cli.client import Client, connection_options, console, pass_client


@click.group()
@connection_options
@click.pass_context
def webhook(ctx: click.Context, **options: object) -> None:
    """Manage the project's signed webhooks through a running API (docs/webhooks.md)."""
    ctx.obj = options


def _base(client: Client) -> str:
    return f"{client.base}/messages-ext/webhooks"


def _table(items: list[dict]) -> Table:
    table = Table("ID", "URL", "Level", "Event ID", "Resource Type", "Enabled", "Failures")
    for item in items:
        table.add_row(item["id"], item["url"], item["message_level"] or "",
                      item["event_id"] or "", item["resource_type"] or "",
                      "yes" if item["enabled"] else f"no: {item['disabled_reason']}",
                      str(item["consecutive_failures"]))
    return table


format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table")


@webhook.command("create")
@click.argument("target", metavar="URL")
@click.option("--level", help="Only messages of this level (ERROR, WARNING, INFO).")
@click.option("--event-id", help="Only this event id, e.g. VOLUME_VOLUME_001_003.")
@click.option("--resource-type", help="Only messages about VOLUME, VOLUME_SNAPSHOT...")
@format_option
@pass_client
def create(client: Client, target: str, level: str | None, event_id: str | None,
           resource_type: str | None, fmt: str) -> None:
    """Subscribe URL to the project's new messages; prints the signing secret, once."""
    fields = {"url": target, "message_level": level.upper() if level else None,
              "event_id": event_id,
              "resource_type": resource_type.upper() if resource_type else None}
    body = {"webhook": {k: v for k, v in fields.items() if v}}
    created = client.request("POST", _base(client), json=body).json()["webhook"]
    if fmt == "json":
        click.echo(json.dumps(created, indent=2))
        return
    console.print(_table([created]))
    click.echo(f"Signing secret (shown only now): {created['secret']}")


@webhook.command("list")
@format_option
@pass_client
def list_command(client: Client, fmt: str) -> None:
    """The project's webhooks."""
    items = client.request("GET", _base(client)).json()["webhooks"]
    if fmt == "json":
        click.echo(json.dumps(items, indent=2))
        return
    console.print(_table(items))


@webhook.command("show")
@click.argument("webhook_id")
@format_option
@pass_client
def show(client: Client, webhook_id: str, fmt: str) -> None:
    """One webhook (never its secret)."""
    item = client.request("GET", f"{_base(client)}/{webhook_id}").json()["webhook"]
    if fmt == "json":
        click.echo(json.dumps(item, indent=2))
        return
    table = Table("Property", "Value")
    for key in sorted(item):
        table.add_row(key, "" if item[key] is None else str(item[key]))
    console.print(table)


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
@format_option
@pass_client
def deliveries(client: Client, webhook_id: str, limit: int, fmt: str) -> None:
    """A webhook's delivery attempts, newest first."""
    items = client.request("GET", f"{_base(client)}/{webhook_id}/deliveries",
                           params={"limit": limit}).json()["deliveries"]
    if fmt == "json":
        click.echo(json.dumps(items, indent=2))
        return
    table = Table("Time", "Message", "Attempt", "Status", "Error", "Outcome")
    for item in items:
        table.add_row(item["created_at"], item["message_id"], str(item["attempt"]),
                      str(item["status_code"] or ""), item["error"] or "", item["outcome"])
    console.print(table)


def register(main: click.Group) -> None:
    from usermessages.cli.main import _edge, _settings, config_option, db_option

    main.add_command(webhook)

    @main.command("webhook-deliverer")
    @db_option
    @config_option
    @_edge
    def webhook_deliverer(db: str | None, config_file: str | None) -> None:
        """Deliver new messages to the webhooks, until SIGTERM or Ctrl-C.

        For deployments that run it apart from `usermessages serve`
        ([webhooks] embedded = false); several may run at once.
        """
        import signal
        import threading

        from usermessages.store import engine as store_engine
        from usermessages.store import migrate
        from usermessages.webhooks.deliverer import Deliverer

        settings = _settings(config_file, db)
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
