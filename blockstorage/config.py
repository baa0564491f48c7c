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
from typing import Any

from usermessages.config import parse, read_ini, value
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


SINKS = ("db", "bus", "both")
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
    return str(value).lower() if isinstance(value, bool) else str(value)


def _opt(key: str, default: Any) -> Any:
    """The oslo.config option for one of our keys, typed by its default."""
    from oslo_config import cfg

    if isinstance(default, frozenset):
        return cfg.ListOpt(key, default=sorted(default), help=_HELP[key])
    kinds = {bool: cfg.BoolOpt, int: cfg.IntOpt, float: cfg.FloatOpt, str: cfg.StrOpt}
    return kinds[type(default)](key, default=default, help=_HELP[key])


def _settings_opts() -> list[Any]:
    defaults = StorageSettings()
    return [_opt(key, getattr(defaults, key)) for key in _SETTINGS_TYPES]


def _backend_opts() -> list[Any]:
    defaults = Backend("name")
    return [_opt(key, getattr(defaults, key)) for key in _BACKEND_TYPES]


def list_opts() -> list[tuple[Any, list[Any]]]:
    """The ``blockstorage`` namespace of ``oslo.config.opts``: ``[blockstorage]`` and
    the template of the ``[backend:NAME]`` sections (``usermessages config sample``
    and ``oslo-config-generator --namespace blockstorage`` show them)."""
    from oslo_config import cfg

    pools = "; ".join(
        f"[backend:{b.name}] " + " ".join(f"{key}={_sample_value(getattr(b, key))}"
                                          for key in ("storage_protocol", "total_capacity_gb",
                                                      "thin_provisioning"))
        for b in DEFAULT_BACKENDS)
    return [
        (cfg.OptGroup("blockstorage", help="The reference block-storage service "
                      "(`blockstorage serve`, `make serve`)."), _settings_opts()),
        (cfg.OptGroup("backend:name", help="One [backend:NAME] section per simulated pool "
                      "(NAME: letters, digits, - and _). "
                      f"Without any, these two pools are used: {pools}."), _backend_opts()),
    ]


def _kind(key: str) -> str:
    kind = {**_SETTINGS_TYPES, **_BACKEND_TYPES}[key]
    return "list" if kind is frozenset else kind.__name__


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
    groups = {"blockstorage": _settings_opts(), **{s: _backend_opts() for s in sections}}
    conf, _ = parse(path, groups)
    values: dict[str, Any] = {}
    if raw.has_section("blockstorage"):
        for key in raw.options("blockstorage"):
            values[key] = value(conf, path, "blockstorage", key, _kind(key))
        if values.get("message_sink", "both") not in SINKS:
            raise ConfigError(f"{path}: [blockstorage] message_sink must be db, bus or both")
    backends = []
    for section in sections:
        options: dict[str, Any] = {}
        for key in raw.options(section):
            got = value(conf, path, section, key, _kind(key))
            if key == "fail_operations":
                got = frozenset(op.strip() for op in got if op.strip())
                unknown = got - set(OPERATIONS)
                if unknown:
                    raise ConfigError(f"[{section}] {key}: unknown operations "
                                      f"{sorted(unknown)}; known: {', '.join(OPERATIONS)}")
            options[key] = got
        backends.append(Backend(section.split(":", 1)[1].strip(), **options))
    if backends:
        values["backends"] = tuple(backends)
    return StorageSettings(**values)
