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

from dataclasses import dataclass, field
from pathlib import Path

from usermessages.config import read_ini
from usermessages.errors import ConfigError

OPERATIONS = (
    "create_volume", "delete_volume", "extend_volume", "retype_volume", "attach_volume",
    "detach_volume", "create_snapshot", "delete_snapshot", "create_backup", "delete_backup",
    "add_to_group",
)


@dataclass(frozen=True)
class Backend:
    """One simulated pool and the capabilities it reports to the scheduler."""

    name: str
    storage_protocol: str = "iSCSI"
    vendor_name: str = "Open Source"
    total_capacity_gb: int = 100
    thin_provisioning: bool = False
    max_over_subscription_ratio: float = 20.0
    reserved_percentage: int = 0
    fail_operations: frozenset[str] = frozenset()

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
    Backend("gold", storage_protocol="iSCSI", vendor_name="Open Source",
            total_capacity_gb=100),
    Backend("silver", storage_protocol="NFS", vendor_name="Open Source",
            total_capacity_gb=1000, thin_provisioning=True, max_over_subscription_ratio=2.0),
)


@dataclass(frozen=True)
class StorageSettings:
    """The ``[blockstorage]`` section and the backends."""

    connection: str = "sqlite:///blockstorage.sqlite"
    report_interval: float = 10.0
    service_down_time: float = 60.0
    operation_deadline: float = 120.0
    watchdog_interval: float = 5.0
    # "both": straight into the messages store, so a user who sees ``error``
    # finds the message at once (Cinder's order), and over the bus as well,
    # which still delivers while the store is down. "bus" or "db" also work.
    message_sink: str = "both"
    backends: tuple[Backend, ...] = field(default=DEFAULT_BACKENDS)


_SETTINGS_TYPES = {
    "connection": str, "report_interval": float, "service_down_time": float,
    "operation_deadline": float, "watchdog_interval": float, "message_sink": str,
}
_BACKEND_TYPES = {
    "storage_protocol": str, "vendor_name": str, "total_capacity_gb": int,
    "thin_provisioning": bool, "max_over_subscription_ratio": float,
    "reserved_percentage": int, "fail_operations": frozenset,
}


_HELP = {
    "connection": "SQLAlchemy URL of the service's own state (types, volumes, ...); "
                  "created on start. Shared (e.g. PostgreSQL) when components run apart.",
    "report_interval": "Seconds between a service's heartbeats.",
    "service_down_time": "A service silent this long is down (an admin-only message).",
    "operation_deadline": "Seconds an operation may stay in a transient state before the "
                          "watchdog fails it.",
    "watchdog_interval": "Seconds between watchdog (and heartbeat monitor) passes.",
    "message_sink": "How the service records messages: db, bus or both.",
    "storage_protocol": "Capability matched against volume-type extra specs.",
    "vendor_name": "Capability matched against volume-type extra specs.",
    "total_capacity_gb": "Pool size in GiB.",
    "thin_provisioning": "Thin pools promise up to total x max_over_subscription_ratio.",
    "max_over_subscription_ratio": "Over-subscription allowed on a thin pool.",
    "reserved_percentage": "Percentage of the pool kept free.",
    "fail_operations": "Fault injection: operations this backend always fails, from "
                       + ", ".join(OPERATIONS) + ".",
}


def _sample_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, frozenset):
        return ", ".join(sorted(value))
    return str(value)


def sample() -> str:
    """The ``[blockstorage]`` section and the backends' options, commented, for
    ``usermessages config sample`` (which finds this through an entry point)."""
    defaults = StorageSettings()
    lines = ["# The reference block-storage service (`blockstorage serve`, `make serve`).",
             "", "[blockstorage]"]
    for key in _SETTINGS_TYPES:
        lines += [f"# {_HELP[key]}", f"#{key} = {_sample_value(getattr(defaults, key))}"]
    lines += ["", "# One [backend:NAME] section per simulated pool, with these options:"]
    lines += [f"#   {key}: {_HELP[key]}" for key in _BACKEND_TYPES]
    lines.append("# Without any [backend:NAME] section, these two pools are used:")
    for backend in DEFAULT_BACKENDS:
        values = " ".join(f"{key}={_sample_value(getattr(backend, key))}"
                          for key in _BACKEND_TYPES if key != "fail_operations")
        lines.append(f"#   [backend:{backend.name}] {values}")
    return "\n".join(lines) + "\n"


def owns(section: str) -> bool:
    """The sections of a shared config file that belong to this service."""
    return section == "blockstorage" or section.startswith("backend:")


def _value(where: str, kind: type, raw: str):  # type: ignore[no-untyped-def]
    try:
        if kind is bool:
            return {"true": True, "false": False, "yes": True, "no": False}[raw.strip().lower()]
        if kind is frozenset:
            ops = frozenset(op.strip() for op in raw.split(",") if op.strip())
            unknown = ops - set(OPERATIONS)
            if unknown:
                raise ConfigError(f"{where}: unknown operations {sorted(unknown)}; "
                                  f"known: {', '.join(OPERATIONS)}")
            return ops
        return kind(raw.strip())
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{where}: {raw!r} is not a valid {kind.__name__}") from exc


def load(path: str | Path | None) -> StorageSettings:
    """Read ``[blockstorage]`` and ``[backend:NAME]`` sections; other sections are ignored
    (they belong to usermessages' own settings in the same file)."""
    if path is None:
        return StorageSettings()
    # DEFAULT is usermessages' section here, not one whose values every section inherits.
    parser = read_ini(path, default_section="__none__")
    values: dict = {}
    if parser.has_section("blockstorage"):
        for key, raw in parser.items("blockstorage"):
            if key not in _SETTINGS_TYPES:
                raise ConfigError(f"{path}: unknown option [blockstorage] {key}")
            values[key] = _value(f"[blockstorage] {key}", _SETTINGS_TYPES[key], raw)
        if values.get("message_sink", "both") not in ("db", "bus", "both"):
            raise ConfigError(f"{path}: [blockstorage] message_sink must be db, bus or both")
    backends = []
    for section in parser.sections():
        if not section.startswith("backend:"):
            continue
        name = section.split(":", 1)[1].strip()
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{path}: [{section}]: a backend name is letters, digits, - and _")
        options = {}
        for key, raw in parser.items(section):
            if key not in _BACKEND_TYPES:
                raise ConfigError(f"{path}: unknown option [{section}] {key}")
            options[key] = _value(f"[{section}] {key}", _BACKEND_TYPES[key], raw)
        backends.append(Backend(name, **options))
    if backends:
        values["backends"] = tuple(backends)
    return StorageSettings(**values)
