"""``usermessages message ...``: read and delete messages through a running API.

A thin HTTP client with cinderclient's options. The API's fault body becomes a
one-line error and a non-zero exit; so does an API that cannot be reached.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

from usermessages.config import DEFAULTS

API_VERSION = "volume 3.71"
# Where `usermessages serve` listens by default.
API_URL = f"http://{DEFAULTS.host}:{DEFAULTS.port}"
console = Console()


class Client:
    """Calls /v3/{project}/messages as one user, with Cinder's noauth token."""

    def __init__(self, url: str, project: str, user: str, token: str | None,
                 timeout: float, lang: str | None = None) -> None:
        self.base = f"{url.rstrip('/')}/v3/{project}"
        self.url = url
        headers = {
            "X-Auth-Token": token or f"{user}:{project}",
            "OpenStack-API-Version": API_VERSION,
            "Accept": "application/json",
        }
        if lang:
            headers["Accept-Language"] = lang
        self.http = httpx.Client(timeout=timeout, headers=headers)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise click.ClickException(fault_text(response))
        return response

    def get_if_served(self, url: str) -> httpx.Response | None:
        """GET, or None on a 404 (a route this API may not have, e.g. a real Cinder's)."""
        try:
            response = self.http.request("GET", url)
        except httpx.TransportError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise click.ClickException(fault_text(response))
        return response


def fault_text(response: httpx.Response) -> str:
    """The API's fault body as one line (its message, code and name)."""
    try:
        [(name, fault)] = response.json().items()
        return f"{fault['message']} (HTTP {fault['code']} {name})"
    except (ValueError, TypeError, KeyError, AttributeError):
        return f"HTTP {response.status_code} from the API"


def _check_lang(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # An Accept-Language value: language tags, weights, commas; nothing a header cannot carry.
    if value is not None and not re.fullmatch(r"[A-Za-z0-9*;=.,_ \t-]{1,200}", value):
        raise click.BadParameter("give language tags such as de, zh-CN or 'fr, en;q=0.5'")
    return value


# The connection options are accepted on the group (`message --project P list`)
# and on each command (`message list --project P`), where users type them; the
# command's value wins. None is required at parse time, so `--help` always works.
_OPTIONS = (
    click.option("--url", envvar="USERMESSAGES_URL", default=None,
                 help=f"Base URL of the API (env USERMESSAGES_URL) [default: {API_URL}]."),
    click.option("--project", envvar="OS_PROJECT_ID", default=None,
                 help="Project id, hex digits and dashes (env OS_PROJECT_ID); required."),
    click.option("--user", envvar="OS_USER_ID", default=None,
                 help="User id (env OS_USER_ID) [default: user]; `admin` is the admin "
                      "in noauth mode."),
    click.option("--token", envvar="OS_AUTH_TOKEN", default=None,
                 help="Token to send (env OS_AUTH_TOKEN); default `<user>:<project>`."),
    click.option("--timeout", type=click.FloatRange(0.1, 300), default=None,
                 help="Seconds to wait for each answer [default: 10]."),
    click.option("--lang", envvar="USERMESSAGES_LANG", default=None, callback=_check_lang,
                 help="Language of the message texts, sent as Accept-Language, e.g. de, "
                      "zh-CN or 'fr, en;q=0.5' (env USERMESSAGES_LANG) [default: the API's, "
                      "English]."),
)
_DEFAULTS = {"url": API_URL, "user": "user", "timeout": 10.0}
_NAMES = ("url", "project", "user", "token", "timeout", "lang")


def connection_options(func: Any) -> Any:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def pass_client(func: Any) -> Any:
    """Build the Client from the command's options, falling back to the group's."""

    @connection_options
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _NAMES}
        group = ctx.find_object(dict) or {}
        values: dict[str, Any] = {
            name: given[name] if given[name] is not None else group.get(name) for name in _NAMES}
        values = {k: v if v is not None else _DEFAULTS.get(k) for k, v in values.items()}
        if not values["project"]:
            raise click.UsageError(
                "Missing option '--project' (or set OS_PROJECT_ID).", ctx)
        client = Client(values["url"], values["project"], values["user"], values["token"],
                        values["timeout"], values["lang"])
        return func(client, *args, **kwargs)

    return wrapper


@click.group()
@connection_options
@click.pass_context
def message(ctx: click.Context, **options: Any) -> None:
    """Read and delete messages through a running API.

    The connection options may come before or after the command name.
    """
    ctx.obj = options


@message.command("list")
@click.option("--resource-uuid", help="Only messages about this resource.")
@click.option("--resource-type", help="VOLUME, VOLUME_SNAPSHOT or VOLUME_BACKUP.")
@click.option("--event-id", help="Only this event id, e.g. VOLUME_VOLUME_001_003.")
@click.option("--request-id", help="Only messages of this request.")
@click.option("--level", help="ERROR, WARNING or INFO.")
@click.option("--marker", help="Start after this message id.")
@click.option("--limit", type=click.IntRange(1), help="At most this many messages.")
@click.option("--sort", help="key[:asc|desc][,key...], e.g. created_at:desc.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--series", is_flag=True,
              help="List series of repeats instead: count, first and last seen.")
@pass_client
def list_command(client: Client, resource_uuid: str | None, resource_type: str | None,
                 event_id: str | None, request_id: str | None, level: str | None,
                 marker: str | None, limit: int | None, sort: str | None, fmt: str,
                 series: bool) -> None:
    """List messages, newest first, following the API's pages."""
    if series:
        from usermessages.cli import series as series_cli

        series_cli.check_series_options(request_id=request_id, level=level, marker=marker,
                                        sort=sort)
        series_cli.list_series(client, _filters(resource_uuid, resource_type, event_id),
                               limit, fmt)
        return
    params = {
        "resource_uuid": resource_uuid,
        # Upper-cased, as cinderclient does.
        "resource_type": resource_type.upper() if resource_type else None,
        "event_id": event_id,
        "request_id": request_id,
        "message_level": level.upper() if level else None,
        "marker": marker,
        "limit": limit,
        "sort": sort,
    }
    url: str | None = f"{client.base}/messages"
    query: dict | None = {k: v for k, v in params.items() if v is not None}
    found: list[dict] = []
    while url and (limit is None or len(found) < limit):
        body = client.request("GET", url, params=query).json()
        found += body["messages"]
        links = [link["href"] for link in body.get("messages_links", []) if link["rel"] == "next"]
        url, query = (links[0], None) if links else (None, None)
    if limit is not None:
        found = found[:limit]
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    table = Table("ID", "Resource Type", "Resource UUID", "Event ID", "Level", "User Message",
                  "Created At")
    for item in found:
        table.add_row(item["id"], item.get("resource_type", ""), item.get("resource_uuid", ""),
                      item["event_id"], item["message_level"], item["user_message"],
                      item["created_at"])
    console.print(table)


def _filters(resource_uuid: str | None, resource_type: str | None,
             event_id: str | None) -> dict[str, str]:
    given = {"resource_uuid": resource_uuid,
             "resource_type": resource_type.upper() if resource_type else None,
             "event_id": event_id}
    return {k: v for k, v in given.items() if v is not None}


@message.command("watch")
@click.option("--resource-uuid", help="Only messages about this resource.")
@click.option("--resource-type", help="VOLUME, VOLUME_SNAPSHOT or VOLUME_BACKUP.")
@click.option("--event-id", help="Only this event id.")
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
    import signal
    import threading

    from usermessages.cli import series as series_cli

    # Ctrl-C and SIGTERM end the watch at its next pause, never mid-request or mid-line.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    series_cli.watch(client, _filters(resource_uuid, resource_type, event_id), interval, count,
                     duration, fmt, stop)


@message.command("show")
@click.argument("message_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_client
def show_command(client: Client, message_id: str, fmt: str) -> None:
    """Show one message, with what you can do about it (remediation, action required, help).

    The advice comes from the API's messages-ext extension; against an API
    without it (a real Cinder), the message alone.
    """
    answer = client.get_if_served(f"{client.base}/messages-ext/messages/{message_id}")
    if answer is None:
        answer = client.request("GET", f"{client.base}/messages/{message_id}")
    body = answer.json()["message"]
    body.pop("links", None)
    if fmt == "json":
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    table = Table("Property", "Value")
    for key in sorted(body):
        value = body[key]
        table.add_row(key, "" if value is None else str(value).lower()
                      if isinstance(value, bool) else str(value))
    console.print(table)


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
