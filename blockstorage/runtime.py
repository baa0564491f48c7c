"""What every component of the service shares: settings, state, the SDK, the bus."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from blockstorage import db
from blockstorage.config import Backend, StorageSettings
from blockstorage.rpc import Caster
from usermessages import Action, Detail, Messenger, RequestContext, Resource
from usermessages.errors import UserMessagesError


class DriverFailure(UserMessagesError):
    """Raised by a simulated backend when a fault is injected for an operation."""


@dataclass
class Runtime:
    settings: StorageSettings
    engine: Engine
    messenger: Messenger
    caster: Caster

    def backend(self, name: str) -> Backend | None:
        return next((b for b in self.settings.backends if b.name == name), None)

    def backend_of_host(self, host: str | None) -> Backend | None:
        if not host:
            return None
        return self.backend(host.split("@", 1)[-1].split("#", 1)[0])

    def check_fault(self, backend: str, operation: str) -> None:
        """Fail like a broken driver when a fault is configured or injected."""
        configured = self.backend(backend)
        if configured is not None and operation in configured.fail_operations:
            raise DriverFailure(f"{operation} fails on {backend} (configured)")
        with self.engine.connect() as conn:
            hit = conn.execute(select(db.faults.c.id).where(
                db.faults.c.backend == backend, db.faults.c.operation == operation
            )).first()
        if hit is not None:
            raise DriverFailure(f"{operation} fails on {backend} (injected)")

    def deadline(self) -> tuple[dt.datetime, float]:
        """When a task started now must be over: as a stored time and as an epoch."""
        seconds = self.settings.operation_deadline
        return db.utcnow() + dt.timedelta(seconds=seconds), time.time() + seconds

    def tell_user(
        self,
        ctx: dict[str, Any],
        action: Action,
        *,
        resource_type: Resource = Resource.VOLUME,
        resource_uuid: str | None = None,
        exception: BaseException | None = None,
        detail: Detail | None = None,
    ) -> None:
        """Record a user message for the request behind ``ctx`` (never raises)."""
        self.messenger.create(
            RequestContext(project_id=ctx["project_id"], user_id=ctx.get("user_id"),
                           request_id=ctx["request_id"]),
            action, resource_type=resource_type, resource_uuid=resource_uuid,
            exception=exception, detail=detail,
        )
