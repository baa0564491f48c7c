"""``usermessages message export``: download a filtered view as NDJSON or CSV.

Streams the API's ``messages-ext/export`` to a file or stdout chunk by chunk,
so an export of any size never sits in memory here either.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import httpx

from usermessages.cli.client import (
    Client,
    fault_text,
    message_options,
    pass_client,
    resource_filters,
)


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv"]), default="ndjson",
              show_default=True)
@message_options
@click.option("--since", help="Created at or after this ISO 8601 time (UTC if no zone).")
@click.option("--until", help="Created before this ISO 8601 time.")
@click.option("--search", help="Only messages whose summary holds this text.")
@click.option("--sort", help="key[:asc|desc][,key...], e.g. created_at:desc.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
@pass_client
def export_command(client: Client, fmt: str, resource_uuid: str | None,
                   resource_type: str | None, event_id: str | None, request_id: str | None,
                   level: str | None, since: str | None, until: str | None,
                   search: str | None, sort: str | None, output: str | None) -> None:
    """Export every message matching the filters, as NDJSON (one JSON object a line) or CSV."""
    params = {
        "format": fmt,
        **resource_filters(resource_uuid, resource_type, event_id),
        "request_id": request_id,
        "message_level": level.upper() if level else None,
        "created_since": since,
        "created_before": until,
        "q": search,
        "sort": sort,
    }
    query = {k: v for k, v in params.items() if v is not None}
    target = Path(output) if output else None
    partial = target.with_name(target.name + ".part") if target else None
    try:
        with client.http.stream("GET", f"{client.base}/messages-ext/export",
                                params=query) as response:
            if response.status_code >= 400:
                response.read()
                raise click.ClickException(fault_text(response))
            if partial is None:
                out = sys.stdout.buffer
                for chunk in response.iter_bytes():
                    out.write(chunk)
                out.flush()
                return
            # Written aside and renamed when complete: a cut download leaves no
            # file that looks finished.
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
    except httpx.TransportError as exc:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise click.ClickException(
            f"cannot export from the API at {client.url}: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from exc
    assert target is not None and partial is not None
    partial.replace(target)
