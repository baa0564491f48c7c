"""Where a volume may go: Cinder's capability and capacity filters and its capacity weigher.

Pure functions over a backend, what is already allocated on it, and a volume
type's extra specs, so the rules can be tested without a bus or a database.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blockstorage.config import Backend

_NUMERIC = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
    ">": operator.gt, "<": operator.lt,
}


def _spec_matches(requirement: str, capability: str) -> bool:
    """One extra spec against one reported capability, with Cinder's operators."""
    words = requirement.split(None, 1)
    if len(words) == 2 and words[0] == "<is>":
        return capability.strip().lower() == words[1].strip().lower()
    if len(words) == 2 and words[0] == "<in>":
        return words[1].strip() in capability
    if len(words) == 2 and words[0] == "<or>":
        return capability in [w.strip() for w in words[1].split("<or>")]
    if len(words) == 2 and words[0] in _NUMERIC:
        try:
            return _NUMERIC[words[0]](float(capability), float(words[1]))
        except ValueError:
            return False
    return requirement == capability


def capabilities_match(backend: Backend, extra_specs: Mapping[str, str]) -> bool:
    """Every capability-scoped or unscoped extra spec must match what the backend reports.

    Scoped keys other than ``capabilities:`` (``qos:``, ``volume:``...) are not
    the scheduler's business, as in Cinder's CapabilitiesFilter.
    """
    reported = backend.capabilities()
    for key, requirement in extra_specs.items():
        scope, _, name = key.rpartition(":")
        if scope and scope != "capabilities":
            continue
        if name not in reported or not _spec_matches(str(requirement), reported[name]):
            return False
    return True


@dataclass(frozen=True)
class PoolState:
    backend: Backend
    allocated_gb: int

    @property
    def reserved_gb(self) -> float:
        return self.backend.total_capacity_gb * self.backend.reserved_percentage / 100

    def virtual_free_gb(self) -> float:
        """What the pool can still promise: physical for thick, over-subscribed for thin."""
        backend = self.backend
        if backend.thin_provisioning:
            ceiling = backend.total_capacity_gb * backend.max_over_subscription_ratio
        else:
            ceiling = backend.total_capacity_gb
        return ceiling - self.reserved_gb - self.allocated_gb

    def fits(self, size_gb: int) -> bool:
        return size_gb <= self.virtual_free_gb()


def choose(pools: Sequence[PoolState], size_gb: int,
           extra_specs: Mapping[str, str]) -> PoolState | None:
    """The pool with the most free capacity among those that match and fit, or None."""
    candidates = [
        pool for pool in pools
        if capabilities_match(pool.backend, extra_specs) and pool.fits(size_gb)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda pool: (pool.virtual_free_gb(), pool.backend.name))
