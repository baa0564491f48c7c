"""Microversion negotiation on the ``OpenStack-API-Version: volume X.Y`` header."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from usermessages.errors import BadRequest, NotAcceptable

HEADER = "openstack-api-version"
SERVICE_TYPE = "volume"
_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@total_ordering
@dataclass(frozen=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _FORMAT.match(text)
        if not match:
            raise BadRequest(
                f"API Version String {text} is of invalid format. Must be of format "
                "MajorNum.MinorNum."
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: APIVersion) -> bool:
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


class VersionNotAcceptable(NotAcceptable):
    """A well-formed version out of range; Cinder echoes it on the 406."""

    def __init__(self, message: str, requested: APIVersion) -> None:
        super().__init__(message)
        self.requested = requested


MIN_VERSION = APIVersion(3, 0)
MAX_VERSION = APIVersion(3, 71)
# The versions at which message features appear (cinder/api/microversions.py).
MESSAGES = APIVersion(3, 3)
MESSAGES_PAGINATION = APIVersion(3, 5)
RESOURCE_FILTER = APIVersion(3, 31)
RESOURCE_FILTER_CONFIG = APIVersion(3, 33)
LIKE_FILTER = APIVersion(3, 34)
UPDATED = "2023-08-31T00:00:00Z"


def negotiate(header: str | None) -> APIVersion:
    """The version a request asks for; no header means the minimum, as in Cinder.

    Raises BadRequest for a malformed header (Cinder then echoes no version),
    VersionNotAcceptable for one out of range (Cinder echoes the one asked for).
    """
    if header is None:
        return MIN_VERSION
    wanted = None
    for item in header.split(","):
        item = item.strip()
        if SERVICE_TYPE in item.lower():
            wanted = item.split(None, 1)[1].strip() if " " in item else ""
            break
    if wanted is None:
        raise BadRequest(
            "The server could not comply with the request since it is either malformed "
            "or otherwise incorrect."
        )
    if wanted.lower() == "latest":
        return MAX_VERSION
    version = APIVersion.parse(wanted)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotAcceptable(
            f"Version {version} is not supported by the API. Minimum is {MIN_VERSION} "
            f"and maximum is {MAX_VERSION}.",
            version,
        )
    return version
