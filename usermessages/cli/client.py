"""The HTTP client of the commands that go through a running API (message, series, webhook).

A thin client with cinderclient's options. The API's fault body becomes a
one-line error and a non-zero exit; so does an API that cannot be reached.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import click
import httpx

from usermessages.config import DEFAULTS

# Where `usermessages serve` listens by default.
API_URL = f"http://{DEFAULTS.host}:{DEFAULTS.port}"

API_VERSION = "volume 3.71"


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

    def pages(self, url: str, key: str, query: dict[str, Any] | None,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Every item of a paged list (``key``), following its ``next`` links, up to ``limit``."""
        found: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url and (limit is None or len(found) < limit):
            body = self.request("GET", next_url, params=query).json()
            found += body[key]
            links = [link["href"] for link in body.get(f"{key}_links", [])
                     if link["rel"] == "next"]
            next_url, query = (links[0], None) if links else (None, None)
        return found if limit is None else found[:limit]


def fault_text(response: httpx.Response) -> str:
    """The API's fault body as one line (its message, code and name)."""
    try:
        [(name, fault)] = response.json().items()
        return f"{fault['message']} (HTTP {fault['code']} {name})"
    except (ValueError, TypeError, KeyError, AttributeError):
        return f"HTTP {response.status_code} from the API"


def resource_options(func: Any) -> Any:
    """--resource-uuid, --resource-type and --event-id: what list, watch, export and series
    filter on (``resource_filters`` makes them the API's query)."""
    for option in reversed((
            click.option("--resource-uuid", help="Only those about this resource."),
            click.option("--resource-type", help="VOLUME, VOLUME_SNAPSHOT or VOLUME_BACKUP."),
            click.option("--event-id", help="Only this event id, e.g. VOLUME_VOLUME_001_003."))):
        func = option(func)
    return func


def message_options(func: Any) -> Any:
    """``resource_options``, --request-id and --level: what a message list filters on."""
    func = click.option("--level", help="ERROR, WARNING or INFO.")(func)
    func = click.option("--request-id", help="Only messages of this request.")(func)
    return resource_options(func)


def resource_filters(resource_uuid: str | None, resource_type: str | None,
                     event_id: str | None) -> dict[str, str]:
    """The resource and event filters as the API's query (the type upper-cased, as cinderclient)."""
    given = {"resource_uuid": resource_uuid,
             "resource_type": resource_type.upper() if resource_type else None,
             "event_id": event_id}
    return {k: v for k, v in given.items() if v is not None}


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
                 help="Base URL of the API (env USERMESSAGES_URL) "
                      f"[default: {API_URL}]."),
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


def api_group(func: Any) -> Any:
    """A group of API commands: its connection options are the default of each command's."""

    @connection_options
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, **options: Any) -> None:
        ctx.obj = options
        func()

    return wrapper
