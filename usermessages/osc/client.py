"""The messages API as the ``openstack message`` commands see it.

One keystoneauth ``Adapter`` on the session openstackclient authenticated
(``OS_*`` variables, ``clouds.yaml``, or a token and endpoint), pointed at the
``block-storage`` endpoint of the catalog, sending the negotiated
``OpenStack-API-Version: volume 3.N`` on every request. Every failure leaves
here as osc-lib's ``CommandError``: openstackclient prints its text on one
line and exits 1, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import requests
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from osc_lib.exceptions import CommandError

# openstackclient's name for this API: `client_manager.message`, the `message_api_version`
# of clouds.yaml, the command group openstack.message.v3.
API_NAME = "message"
# Where Cinder registers its API; keystoneauth also matches the aliases
# (volumev3, volume, block-store...) of the Service Types Authority.
SERVICE_TYPE = "block-storage"
# Cinder's messages (and so every extension of them) start at 3.3.
MESSAGES = (3, 3)
# The highest microversion whose bodies these commands were written against
# (Cinder 29's maximum): what `3` and `3.latest` ask for when the server offers it.
HIGHEST = (3, 71)
_VERSION = re.compile(r"3(?:\.(latest|0|[1-9][0-9]{0,3}))?")


def version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def is_version_3(text: str) -> bool:
    """Whether ``text`` is a 3.x version (well-formed, minimum or not)."""
    return _VERSION.fullmatch(text.strip()) is not None


def requested_version(text: str) -> tuple[int, int] | None:
    """The microversion asked for: ``3.N``, or None for ``3``/``3.latest`` (negotiate)."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise CommandError(
            f"--os-message-api-version {text[:40]!r} is not a block-storage microversion: "
            "give 3.N (N at least 3), or 3 or 3.latest for the highest both sides offer.")
    if match.group(1) in (None, "latest"):
        return None
    version = (3, int(match.group(1)))
    if version < MESSAGES:
        raise CommandError(
            f"--os-message-api-version {version_text(version)} is too old: messages exist "
            f"from volume {version_text(MESSAGES)} on.")
    return version


def negotiate(requested: tuple[int, int] | None, low: tuple[int, int] | None,
              high: tuple[int, int] | None, where: str) -> tuple[int, int]:
    """The version to speak: the one asked for if the server offers it, else the highest
    both offer. ``low`` and ``high`` are the server's, from its versions document."""
    if low is None or high is None:
        # A versions document without microversions: an API older than 3.0's
        # microversions, so without messages.
        raise CommandError(f"the block-storage API at {where} announces no microversions: "
                           f"the message commands need volume {version_text(MESSAGES)} "
                           "or later.")
    span = f"volume {version_text(low)} to {version_text(high)}"
    if requested is not None:
        if not low <= requested <= high:
            raise CommandError(
                f"the block-storage API at {where} offers {span}; "
                f"--os-message-api-version {version_text(requested)} is not among them.")
        return requested
    chosen = min(high, HIGHEST)
    if chosen < max(low, MESSAGES):
        raise CommandError(f"the block-storage API at {where} offers {span}; the message "
                           f"commands need volume {version_text(MESSAGES)} or later.")
    return chosen


def fault_text(response: requests.Response) -> str:
    """The API's fault body (Cinder's ``{"name": {"code", "message"}}``) as one line."""
    message = "The messages API answered without a fault body."
    try:
        [(_name, fault)] = response.json().items()
        message = str(fault["message"])
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    text = f"{message} (HTTP {response.status_code})"
    request_id = response.headers.get("X-OpenStack-Request-Id")
    return f"{text} (Request-ID: {request_id})" if request_id else text


class MessageClient:
    """Requests to ``<endpoint>/messages...`` and ``<endpoint>/messages-ext/...``."""

    def __init__(self, adapter: ks_adapter.Adapter, endpoint: str) -> None:
        self.adapter = adapter
        self.endpoint = endpoint.rstrip("/")

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else f"{self.endpoint}/{path}"
        try:
            response = self.adapter.request(url, method, raise_exc=False, **kwargs)
        except ks_exc.ConnectionError as exc:
            raise CommandError(f"cannot reach the messages API at {self.endpoint}: "
                               f"{type(exc).__name__}") from exc
        if response.status_code >= 400:
            text = fault_text(response)  # reads the (small) fault body, streamed or not
            response.close()
            raise CommandError(text)
        return response

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._send("GET", path, params=params).json()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._send("POST", path, json=body).json()

    def delete(self, path: str) -> None:
        self._send("DELETE", path)

    def pages(self, path: str, key: str, params: dict[str, Any],
              limit: int | None) -> list[dict[str, Any]]:
        """Every item of a paged list, following its ``<key>_links`` next links, up to limit."""
        found: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        seen: set[str] = set()
        while url is not None and (limit is None or len(found) < limit):
            if url in seen:  # a server linking back would page forever
                raise CommandError(f"the messages API at {self.endpoint} links to a page "
                                   "it already gave; stopped.")
            seen.add(url)
            body = self.get(url, query)
            found += body[key]
            links = [link["href"] for link in body.get(f"{key}_links", ())
                     if link.get("rel") == "next"]
            url, query = (links[0], None) if links else (None, None)
        return found if limit is None else found[:limit]

    def download(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        """The body of a streamed answer, chunk by chunk; a cut stream is a CommandError."""
        response = self._send("GET", path, params=params, stream=True)
        try:
            yield from response.iter_content(chunk_size=65536)
        except requests.RequestException as exc:
            raise CommandError(f"the download from {self.endpoint} was cut short: "
                               f"{type(exc).__name__}") from exc
        finally:
            response.close()


def _pair(version: tuple[int | float, ...] | None) -> tuple[int, int] | None:
    # keystoneauth's parsed "3.71" is (3, 71); "latest" would be infinity, no bound at all.
    if version is None or len(version) < 2 or not all(v < float("inf") for v in version[:2]):
        return None
    return int(version[0]), int(version[1])


def of(app: Any) -> MessageClient:
    """The invocation's client: openstackclient makes it with ``make_client`` on first use."""
    client: MessageClient = getattr(app.client_manager, API_NAME)
    return client


def connect(instance: Any, requested_text: str) -> MessageClient:
    """The client for openstackclient's ``ClientManager`` ``instance``.

    The endpoint is osc-lib's choice for ``block-storage`` (an endpoint override,
    the token endpoint of ``--os-endpoint``, else the catalog's); the version is
    negotiated against the endpoint's versions document (no token needed there).
    """
    requested = requested_version(requested_text)
    where = f"region {instance.region_name or '(any)'}, interface {instance.interface}"
    try:
        endpoint = instance.get_endpoint_for_service_type(
            SERVICE_TYPE, region_name=instance.region_name, interface=instance.interface)
    except (ks_exc.EndpointNotFound, ValueError):
        # keystoneauth 5.18 raises ValueError ("Programming error choosing an endpoint.")
        # when the catalog has several aliases (block-storage, volumev3) and none of them
        # in the region asked for.
        endpoint = None
    except ks_exc.ConnectionError as exc:
        raise CommandError(f"cannot reach Keystone: {type(exc).__name__}") from exc
    if not endpoint:
        raise CommandError(
            f"no block-storage endpoint in the service catalog ({where}): the messages API "
            "is registered as block-storage (or volumev3), or give its URL as "
            "block_storage_endpoint_override in clouds.yaml.")
    adapter = ks_adapter.Adapter(
        session=instance.session, service_type=SERVICE_TYPE, interface=instance.interface,
        region_name=instance.region_name, endpoint_override=endpoint,
        client_name="usermessages-osc")
    try:
        data = adapter.get_endpoint_data()
    except ks_exc.ConnectionError as exc:
        raise CommandError(f"cannot reach the messages API at {endpoint}: "
                           f"{type(exc).__name__}") from exc
    except ks_exc.DiscoveryFailure as exc:
        raise CommandError(f"the service at {endpoint} answers no block-storage versions "
                           "document: is it the messages API?") from exc
    if data is None:
        raise CommandError(f"the service at {endpoint} answers no block-storage versions "
                           "document: is it the messages API?")
    low, high = _pair(data.min_microversion), _pair(data.max_microversion)
    if low is None or high is None:
        # keystoneauth falls back to the bare URL when discovery cannot connect: ask once
        # more, to tell an API that is not there from one without microversions.
        try:
            adapter.get(endpoint, authenticated=False, raise_exc=False)
        except ks_exc.ConnectionError as exc:
            raise CommandError(f"cannot reach the messages API at {endpoint}: "
                               f"{type(exc).__name__}") from exc
    version = negotiate(requested, low, high, endpoint)
    adapter.default_microversion = version_text(version)
    return MessageClient(adapter, endpoint)
