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

import configparser
from dataclasses import dataclass, field
from pathlib import Path

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
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
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
