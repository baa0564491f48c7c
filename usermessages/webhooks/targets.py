"""The SSRF guard: which webhook URLs this deployment may call.

Checked at registration and again at each delivery, on the addresses the name
resolves to then (a name may be re-pointed at an internal address after it
was registered); the delivery then connects to the address checked, not to a
second resolution.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from usermessages.config import Settings
from usermessages.errors import BadRequest, ConfigError

MAX_URL = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(BadRequest):
    """A webhook URL this deployment will not call (400 at registration)."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _public(address.ipv4_mapped)
    return address.is_global and not (address.is_multicast or address.is_reserved
                                      or address.is_loopback or address.is_link_local
                                      or address.is_private or address.is_unspecified)


class Targets:
    """The deployer's rule ([webhooks] allow_private_targets, allowed_cidrs)."""

    def __init__(self, allow_private: bool = False, allowed: tuple[Network, ...] = ()) -> None:
        self.allow_private = allow_private
        self.allowed = allowed

    @classmethod
    def from_settings(cls, settings: Settings) -> Targets:
        networks = []
        for item in filter(None, (s.strip() for s in settings.webhooks_allowed_cidrs.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ConfigError(
                    f"[webhooks] allowed_cidrs: {item[:64]} is not a network") from exc
        return cls(settings.webhooks_allow_private_targets, tuple(networks))

    def allows(self, address: Address) -> bool:
        return (self.allow_private or _public(address)
                or any(address in network for network in self.allowed))

    @staticmethod
    def parse(url: str) -> tuple[str, str, int]:
        """Scheme, host and port of an http(s) URL; TargetRefused for anything else."""
        if len(url) > MAX_URL or not url.isprintable() or any(c.isspace() for c in url):
            raise TargetRefused(f"The webhook URL must be a printable http(s) URL of at most "
                                f"{MAX_URL} characters.")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise TargetRefused("The webhook URL is malformed.") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefused("The webhook URL must be an http:// or https:// URL with a host.")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("The webhook URL must not carry credentials; "
                                "the signature authenticates deliveries.")
        return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)

    def check(self, url: str) -> Target:
        """Resolve the URL's host now; every address it resolves to must be allowed."""
        scheme, host, port = self.parse(url)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise TargetRefused(f"The webhook host {host[:64]} does not resolve.") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        refused = [a for a in addresses if not self.allows(a)]
        if refused or not addresses:
            raise TargetRefused(
                f"The webhook host {host[:64]} resolves to {refused[0] if refused else 'nothing'}"
                f", a loopback, private, link-local, multicast or reserved address this "
                f"deployment does not deliver to.")
        return Target(url, scheme, host, port, str(addresses[0]))
