"""Reading messages: identity (noauth | Keystone) -> policy -> scope -> list/get/delete.

Below every front end: the API, the Event Viewer and the reference service
import it; it imports none of them.
"""

from usermessages.errors import KeystoneUnavailable
from usermessages.reader.identity import Caller
from usermessages.reader.policy import DELETE, GET, GET_ALL, WEBHOOKS, Policy
from usermessages.reader.reader import Reader, Scope

__all__ = [
    "Caller", "DELETE", "GET", "GET_ALL", "KeystoneUnavailable", "Policy", "Reader", "Scope",
    "WEBHOOKS",
]
