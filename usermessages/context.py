"""The request context a service passes to the SDK, shaped like Cinder's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from usermessages.catalog import Action, Resource


def new_request_id() -> str:
    """A request id in the ``req-<uuid4>`` form OpenStack services use."""
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    """Who asked for the operation that failed.

    ``request_id`` must be the ``X-OpenStack-Request-Id`` the user got back
    from the originating API call: ``cinder create --poll`` finds the message
    by it. The ``message_*`` fields serve ``create_from_request_context``,
    for code (like Cinder's backup manager) that sets them early and reports
    later, possibly in another process.
    """

    project_id: str
    user_id: str | None = None
    request_id: str = field(default_factory=new_request_id)
    message_action: Action | None = None
    message_resource_type: Resource | None = None
    message_resource_id: str | None = None
