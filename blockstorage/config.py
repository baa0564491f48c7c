"""Settings of the reference block-storage service: its store, timings and backends.

Backends are simulated pools described in the same INI file as usermessages'
own settings, one ``[backend:NAME]`` section each::

    [backend:gold]
    storage_protocol = iSCSI
    vendor_name = Open Source
    total_capacity_gb = 100
    thin_provisioning = false
    max_over_subscription_ratio = 20.0
    reserved_percentage = 0
    fail_operations = attach_volume, extend_volume

``fail_operations`` is the configured fault injection: the backend fails
those operations every time (the admin API ``/v3/{project}/os-faults`` adds
and removes faults at run time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usermessages import options
from usermessages.config import SINK_CHOICES, parse, read, read_ini
from usermessages.errors import ConfigError
from usermessages.options import option

OPERATIONS = (
    "create_volume", "delete_volume", "extend_volume", "retype_volume", "attach_volume",
    "detach_volume", "create_snapshot", "delete_snapshot", "create_backup", "delete_backup",
    "add_to_group",
)
# The template of the [backend:NAME] sections (see usermessages.options.TEMPLATE).
POOL = "backend" + options.TEMPLATE


@dataclass(frozen=True)
class Backend:
    """One simulated pool (a ``[backend:NAME]`` section) and the capabilities it
    reports to the scheduler; each option declared once (see usermessages.config)."""

    name: str
    storage_protocol: str = option(POOL, "iSCSI")
    """Capability matched against volume-type extra specs."""
    vendor_name: str = option(POOL, "Open Source")
    """Capability matched against volume-type extra specs."""
    total_capacity_gb: int = option(POOL, 100, min=1)
    """Pool size in GiB."""
    thin_provisioning: bool = option(POOL, False)
    """Cinder's capacity rules: a thick pool promises at most its free space, a thin one up to
    total x max_over_subscription_ratio."""
    max_over_subscription_ratio: float = option(POOL, 20.0, min=1.0)
    """Over-subscription allowed on a thin pool."""
    reserved_percentage: int = option(POOL, 0, min=0, max=100)
    """Percentage of the pool kept free."""
    fail_operations: frozenset[str] = option(POOL, frozenset(), choices=OPERATIONS)
    """Fault injection by configuration: operations this backend always fails (the admin API
    /v3/{project}/os-faults changes them at run time)."""

    def __post_init__(self) -> None:
        options.validate(self, section=f"backend:{self.name}")

    @property
    def host(self) -> str:
        """Cinder's ``host@backend#pool`` form (tempest checks the pattern)."""
        return f"blockstorage@{self.name}#{self.name}"

    def capabilities(self) -> dict[str, str]:
        return {
            "volume_backend_name": self.name,
            "storage_protocol": self.storage_protocol,
            "vendor_name": self.vendor_name,
            "thin_provisioning_support": str(self.thin_provisioning),
            "thick_provisioning_support": str(not self.thin_provisioning),
        }


DEFAULT_BACKENDS = (
    Backend("gold"),
    Backend("silver", storage_protocol="NFS", total_capacity_gb=1000, thin_provisioning=True,
            max_over_subscription_ratio=2.0),
)


@dataclass(frozen=True)
class StorageSettings:
    """The ``[blockstorage]`` section and the backends."""

    connection: str = option("blockstorage", "sqlite:///blockstorage.sqlite")
    """SQLAlchemy URL of the service's own state (types, volumes, ...); created on start. Shared
    (e.g. PostgreSQL) when components run apart."""
    report_interval: float = option("blockstorage", 10.0, above=0)
    """Seconds between a service's heartbeats."""
    service_down_time: float = option("blockstorage", 60.0, above=0)
    """A service silent this long is down (an admin-only message)."""
    operation_deadline: float = option("blockstorage", 120.0, above=0)
    """Seconds an operation may stay in a transient state (`creating`, `extending`, ...) before the
    watchdog fails it."""
    watchdog_interval: float = option("blockstorage", 5.0, above=0)
    """Seconds between watchdog (and heartbeat monitor) passes."""
    message_sink: str = option("blockstorage", "both", choices=SINK_CHOICES)
    """How the service records messages ([sdk] sink, for this service). The default writes the store
    directly, so a user who sees `error` finds the message at once (Cinder's order), and also
    goes over the bus, which still delivers while the store is down. On SIGTERM or Ctrl-C the
    service closes its messenger last, so what a spooling sink holds is delivered or logged and
    counted as lost (`usermessages_sdk_lost`)."""
    backends: tuple[Backend, ...] = DEFAULT_BACKENDS

    def __post_init__(self) -> None:
        options.validate(self)


def _pools() -> str:
    """The default pools, in words (the [backend:NAME] section's help)."""
    shown = ("storage_protocol", "total_capacity_gb", "thin_provisioning")
    return "; ".join(
        f"[backend:{pool.name}] "
        + " ".join(f"{key}={options.written(getattr(pool, key))}" for key in shown)
        for pool in DEFAULT_BACKENDS)


def _helps() -> dict[str, str]:
    return {"blockstorage": "The reference block-storage service (`blockstorage serve`, "
                            "`make serve`).",
            POOL: "One [backend:NAME] section per simulated pool (NAME: letters, digits, - and "
                  f"_). Without any, these two pools are used: {_pools()}."}


def _declared() -> tuple[options.Declared, ...]:
    return options.declared(StorageSettings) + options.declared(Backend)


def list_opts() -> list[tuple[Any, list[Any]]]:
    """The ``blockstorage`` namespace of ``oslo.config.opts``: ``[blockstorage]`` and
    the template of the ``[backend:NAME]`` sections (``usermessages config sample``
    and ``oslo-config-generator --namespace blockstorage`` show them)."""
    return options.oslo_groups(_declared(), _helps())


def markdown() -> str:
    """The options' tables of docs/reference-service.md (a test keeps the page equal)."""
    return "\n".join(options.markdown(_declared(), "###", _helps())).strip() + "\n"


def _read_opts(cls: type) -> list[Any]:
    return [options.oslo_opt(o, reading=True) for o in options.declared(cls)]


def load(path: str | Path | None) -> StorageSettings:
    """Read ``[blockstorage]`` and ``[backend:NAME]`` sections with oslo.config; other
    sections are usermessages' own settings in the same file."""
    if path is None:
        return StorageSettings()
    raw = read_ini(path)
    sections = [s for s in raw.sections() if s.startswith("backend:")]
    for section in sections:
        name = section.split(":", 1)[1].strip()
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{path}: [{section}]: a backend name is letters, digits, - and _")
    conf, _ = parse(path, {"blockstorage": _read_opts(StorageSettings),
                           **{section: _read_opts(Backend) for section in sections}})
    try:
        backends = tuple(
            Backend(section.split(":", 1)[1].strip(),
                    **read(conf, path, options.declared(Backend), section))
            for section in sections)
        settings = StorageSettings(**read(conf, path, options.declared(StorageSettings)))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return dataclasses.replace(settings, backends=backends) if backends else settings
