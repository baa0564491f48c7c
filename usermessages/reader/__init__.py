"""Reading messages: identity (noauth | Keystone) -> policy -> scope -> list/get/delete.

Below every front end: the API, the Event Viewer and the reference service
import it; it imports none of them, nor the web toolkit that renders what it
reads (``usermessages.web``). It returns the store's typed rows
(``StoredMessage``, ``StoredSeries``), and every read checks its caller itself.
"""

from usermessages.errors import KeystoneUnavailable
from usermessages.reader.identity import Caller
from usermessages.reader.policy import (
    AGGREGATES,
    DELETE,
    EXPORT,
    GET,
    GET_ALL,
    STREAM,
    WEBHOOKS_CREATE,
    WEBHOOKS_DELETE,
    WEBHOOKS_DELIVERIES,
    WEBHOOKS_GET,
    WEBHOOKS_GET_ALL,
    Policy,
)
from usermessages.reader.reader import Reader, Scope

__all__ = [
    "AGGREGATES", "Caller", "DELETE", "EXPORT", "GET", "GET_ALL", "KeystoneUnavailable",
    "Policy", "Reader", "STREAM", "Scope", "WEBHOOKS_CREATE", "WEBHOOKS_DELETE",
    "WEBHOOKS_DELIVERIES", "WEBHOOKS_GET", "WEBHOOKS_GET_ALL",
]
