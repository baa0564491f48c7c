"""The Cinder v3 subset this service answers, beside the messages API on one endpoint.

Every request that starts asynchronous work returns 202 at once and casts
the work over the bus (``common.start``). When the bus cannot take the cast
(broker down or silent), the request fails within the bus timeout with a 503
fault, the resource is left in a state the user can act on, and a user
message tied to the request id says why.

One module per resource; this package puts their routes on one router.
"""

from __future__ import annotations

from fastapi import APIRouter

from blockstorage.api import (
    admin,
    attachments,
    backups,
    groups,
    snapshots,
    volume_actions,
    volume_types,
    volumes,
)

router = APIRouter()
for _module in (volume_types, volumes, volume_actions, snapshots, backups, groups, admin,
                attachments):
    router.include_router(_module.router)

__all__ = ["router"]
