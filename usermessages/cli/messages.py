"""``usermessages message list|show|delete|watch|export``: messages through a running API."""

from __future__ import annotations

import signal
import threading

import click

from usermessages.cli import series as series_cli
from usermessages.cli import watch as watch_cli
from usermessages.cli.client import (
    Client,
    api_group,
    message_options,
    pass_client,
    resource_filters,
    resource_options,
)
from usermessages.cli.export import export_command
from usermessages.cli.output import Column, Output, View, output_options

_COLUMNS = (
    Column("id", "ID", whole=True),
    Column("resource_type", "Resource Type", whole=True),
    Column("resource_uuid", "Resource UUID", whole=True),
    Column("event_id", "Event ID", whole=True),
    Column("message_level", "Level"),
    Column("user_message", "User Message"),
    Column("created_at", "Created At", whole=True),
    Column("guaranteed_until", "Guaranteed Until", whole=True),
    Column("request_id", "Request ID", whole=True),
)
# Cinder's columns (`cinder message-list`), in its order.
MESSAGES = View(
    "message list", _COLUMNS,
    shown=("id", "resource_type", "resource_uuid", "event_id", "message_level",
           "user_message", "created_at"),
    priority=("id", "user_message", "event_id", "message_level", "created_at",
              "resource_uuid", "resource_type"),
)
# messages-ext's show adds what to do about it.
MESSAGE = View("message show", (*_COLUMNS,
                                Column("remediation", "Remediation"),
                                Column("action_required", "Action Required"),
                                Column("help_url", "Help URL"),
                                Column("language", "Language")))


@click.group()
@api_group
def message() -> None:
    """Read and delete messages through a running API.

    The connection options may come before or after the command name.
    """


message.add_command(export_command)


@message.command("list")
@message_options
@click.option("--marker", help="Start after this message id.")
@click.option("--limit", type=click.IntRange(1), help="At most this many messages.")
@click.option("--sort", help="key[:asc|desc][,key...], e.g. created_at:desc.")
@click.option("--series", is_flag=True,
              help="List series of repeats instead (as `usermessages series list`).")
@output_options(MESSAGES, when={"series": series_cli.SERIES})
@pass_client
def list_command(client: Client, resource_uuid: str | None, resource_type: str | None,
                 event_id: str | None, request_id: str | None, level: str | None,
                 marker: str | None, limit: int | None, sort: str | None, series: bool,
                 output: Output) -> None:
    """List messages, newest first, following the API's pages."""
    if series:
        series_cli.check_series_options(request_id=request_id, level=level, marker=marker,
                                        sort=sort)
        series_cli.list_series(client, resource_filters(resource_uuid, resource_type,
                                                          event_id), limit, output)
        return
    params = {
        **resource_filters(resource_uuid, resource_type, event_id),
        "request_id": request_id,
        "message_level": level.upper() if level else None,
        "marker": marker,
        "limit": str(limit) if limit is not None else None,
        "sort": sort,
    }
    query = {k: v for k, v in params.items() if v is not None}
    output.items(client.pages(f"{client.base}/messages", "messages", query, limit))


@message.command("watch")
@resource_options
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="Seconds between polls.")
@click.option("--count", type=click.IntRange(1), help="Exit after printing this many.")
@click.option("--for", "duration", type=click.FloatRange(0), help="Exit after this many seconds.")
@click.option("--format", "fmt", type=click.Choice(["line", "json"]), default="line",
              help="One line per message, or one JSON object per line.")
@pass_client
def watch_command(client: Client, resource_uuid: str | None, resource_type: str | None,
                  event_id: str | None, interval: float, count: int | None,
                  duration: float | None, fmt: str) -> None:
    """Print messages as they are stored, each once, until Ctrl-C (exit 0)."""
    # Ctrl-C and SIGTERM end the watch at its next pause, never mid-request or mid-line.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    watch_cli.watch(client, resource_filters(resource_uuid, resource_type, event_id),
                    interval, count, duration, fmt, stop)


@message.command("show")
@click.argument("message_id")
@output_options(MESSAGE)
@pass_client
def show_command(client: Client, message_id: str, output: Output) -> None:
    """Show one message, with what you can do about it (remediation, action required, help).

    The advice comes from the API's messages-ext extension; against an API
    without it (a real Cinder), the message alone.
    """
    answer = client.get_if_served(f"{client.base}/messages-ext/messages/{message_id}")
    if answer is None:
        answer = client.request("GET", f"{client.base}/messages/{message_id}")
    body = answer.json()["message"]
    body.pop("links", None)
    output.one(body)


@message.command("delete")
@click.argument("message_ids", nargs=-1, required=True)
@pass_client
def delete_command(client: Client, message_ids: tuple[str, ...]) -> None:
    """Delete messages; exits non-zero if any could not be deleted."""
    failed = 0
    for message_id in message_ids:
        try:
            client.request("DELETE", f"{client.base}/messages/{message_id}")
        except click.ClickException as exc:
            failed += 1
            click.echo(f"Delete for message {message_id} failed: {exc.message}", err=True)
        else:
            click.echo(f"deleted {message_id}")
    if failed:
        raise click.ClickException(f"{failed} of {len(message_ids)} messages not deleted")
