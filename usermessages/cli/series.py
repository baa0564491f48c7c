"""``usermessages series list|show``: repeats of one failure, counted (``messages-ext/series``).

``usermessages message list --series`` prints the same list.
"""

from __future__ import annotations

import click

from usermessages.cli.client import (
    Client,
    api_group,
    pass_client,
    resource_filters,
    resource_options,
)
from usermessages.cli.output import Column, Output, View, output_options

_COLUMNS = (
    Column("id", "ID", whole=True),
    Column("resource_type", "Resource Type"),
    Column("resource_uuid", "Resource UUID", whole=True),
    Column("event_id", "Event ID", whole=True),
    Column("message_level", "Level"),
    Column("count", "Count"),
    Column("suppressed", "Suppressed"),
    Column("first_seen", "First Seen", whole=True),
    Column("last_seen", "Last Seen", whole=True),
    Column("user_message", "User Message"),
    Column("request_ids", "Request IDs"),
    Column("project_id", "Project ID", whole=True),
)
SERIES = View(
    "series list", _COLUMNS,
    shown=("id", "resource_uuid", "event_id", "message_level", "count", "suppressed",
           "first_seen", "last_seen", "user_message"),
    priority=("id", "user_message", "count", "event_id", "last_seen", "message_level",
              "resource_uuid", "first_seen", "suppressed"),
)
ONE_SERIES = View("series show", _COLUMNS)


def list_series(client: Client, query: dict[str, str], limit: int | None,
                output: Output) -> None:
    """Print the project's series, last seen first, following the API's pages."""
    found = client.pages(f"{client.base}/messages-ext/series", "series",
                         {**query, **({"limit": str(limit)} if limit else {})}, limit)
    output.items(found)


@click.group()
@api_group
def series() -> None:
    """Series of repeated failures through a running API: count, first and last seen."""


@series.command("list")
@resource_options
@click.option("--limit", type=click.IntRange(1), help="At most this many series.")
@output_options(SERIES)
@pass_client
def list_command(client: Client, resource_uuid: str | None, resource_type: str | None,
                 event_id: str | None, limit: int | None, output: Output) -> None:
    """List the project's series, last seen first."""
    list_series(client, resource_filters(resource_uuid, resource_type, event_id), limit, output)


@series.command("show")
@click.argument("series_id")
@output_options(ONE_SERIES)
@pass_client
def show_command(client: Client, series_id: str, output: Output) -> None:
    """Show one series, with the request ids of its latest occurrences."""
    body = client.request("GET", f"{client.base}/messages-ext/series/{series_id}").json()
    item = body["series"]
    item.pop("links", None)
    output.one(item)


def check_series_options(**given: str | None) -> None:
    """Series have no request id, level filter, marker or sort: say so instead of ignoring."""
    unused = [name for name, value in given.items() if value is not None]
    if unused:
        raise click.UsageError(f"--series does not take --{unused[0].replace('_', '-')}")
