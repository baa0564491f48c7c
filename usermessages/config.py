"""Settings: one INI file, loaded once at an entry point and passed down.

Option names follow Cinder's where Cinder has them (``message_ttl``,
``message_reap_interval``, ``osapi_max_limit``...), so an operator can carry
values over from ``cinder.conf``. Every option is declared once in OPTIONS,
which also feeds ``usermessages config sample`` and docs/configuration.md.
"""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usermessages.errors import ConfigError


@dataclass(frozen=True)
class Option:
    section: str
    name: str
    default: Any
    help: str

    @property
    def kind(self) -> type:
        return type(self.default)


OPTIONS: tuple[Option, ...] = (
    Option("DEFAULT", "message_ttl", 2592000,
           "Seconds a message is kept; shown to users as guaranteed_until."),
    Option("DEFAULT", "message_reap_interval", 86400,
           "Seconds between reaper passes in `usermessages serve`; -1 disables the reaper."),
    Option("DEFAULT", "message_reap_batch_size", 1000,
           "Expired rows deleted per transaction, so a reap never holds long locks."),
    Option("DEFAULT", "osapi_max_limit", 1000,
           "Largest page a list returns; also the default page size."),
    Option("database", "connection", "sqlite:///usermessages.sqlite",
           "SQLAlchemy URL of the store: sqlite:///PATH or postgresql://USER@HOST:PORT/DB."),
    Option("database", "timeout", 2.0,
           "PostgreSQL: seconds an API or viewer request may wait for a pooled connection, "
           "and then use it (a client-side deadline that holds even when the server is "
           "frozen; the server's statement_timeout is 3/4 of it). Past it the request answers 503 "
           "serviceUnavailable: within 2 x timeout whatever the concurrency (timeout + 2 s "
           "if timeout is under 2 s: libpq's shortest connect), in milliseconds once the "
           "database is known down. The collector and reaper are not bounded by it."),
    Option("api", "host", "127.0.0.1", "Address `usermessages serve` listens on."),
    Option("api", "port", 8776, "Port `usermessages serve` listens on (Cinder's is 8776)."),
    Option("api", "public_endpoint", "",
           "Base URL for links and the versions document, when behind a proxy; "
           "empty uses the request's own URL."),
    Option("api", "admin_user", "admin",
           "In noauth mode, the user id whose token `user:project` makes an admin."),
    Option("api", "trust_roles_header", False,
           "Take the caller's roles from an X-Roles header (comma-separated). Only for "
           "deployments behind a proxy that sets it; anyone can send headers."),
    Option("api", "policy_file", "",
           "oslo.policy YAML or JSON file overriding the message:get_all, message:get and "
           "message:delete rules; empty keeps Cinder's current defaults."),
    Option("api", "project_id_regex", r"[0-9a-f\-]+",
           "What a project id in a URL must look like (Cinder's project_id_regex)."),
    Option("catalog", "overrides_file", "",
           "INI file with [action] and [detail] sections replacing catalog texts by id."),
    Option("viewer", "secret_key", "",
           "Key signing the Event Viewer's session cookie; empty makes a random one at each "
           "start (sign-ins then end with the process). Set it when several API processes "
           "serve the viewer."),
    Option("bus", "url", "memory://",
           "Broker URL: memory:// is in-process (the embedded default, for `serve` alone); "
           "amqp://USER:PASS@HOST:5672// is RabbitMQ, for separate producers and collectors."),
    Option("bus", "queue_type", "classic",
           "RabbitMQ queue type of the messages queue: classic, or quorum for a cluster."),
    Option("bus", "timeout", 2.0,
           "Seconds any one broker step (connect, publish confirm) may take before it fails."),
    Option("sdk", "sink", "bus",
           "Where Messenger.from_settings sends messages: db (insert directly), bus, or both."),
    Option("sdk", "spool_path", "",
           "SQLite file spooling messages while the broker is unreachable; empty keeps the "
           "spool in memory (lost if the producer dies). One file per producer process."),
    Option("sdk", "spool_max_messages", 100000,
           "Most messages the spool holds; when full, the oldest are dropped and counted."),
    Option("collector", "batch_size", 500, "Most messages inserted in one transaction."),
    Option("collector", "flush_interval", 0.2,
           "Seconds a partial batch may wait before it is inserted."),
    Option("collector", "embedded", True,
           "Run a collector inside `usermessages serve` (the embedded shape). Turn off when "
           "separate `usermessages collector` processes consume the bus."),
    Option("collector", "notification_mapping_file", "",
           "INI file mapping OpenStack error notification event types to catalog entries; "
           "set, the collector also reads the OpenStack notification bus (on [bus] url). "
           "Empty: off."),
    Option("collector", "notifications_exchanges", "openstack",
           "Comma-separated exchanges whose notifications.error and .critical are read "
           "(the services' control_exchange: openstack, cinder, nova...)."),
)


def _attr(option: Option) -> str:
    if option.section in ("DEFAULT", "api"):
        return option.name
    return f"{option.section}_{option.name}"


@dataclass(frozen=True)
class Settings:
    message_ttl: int = 2592000
    message_reap_interval: int = 86400
    message_reap_batch_size: int = 1000
    osapi_max_limit: int = 1000
    database_connection: str = "sqlite:///usermessages.sqlite"
    database_timeout: float = 2.0
    host: str = "127.0.0.1"
    port: int = 8776
    public_endpoint: str = ""
    admin_user: str = "admin"
    trust_roles_header: bool = False
    policy_file: str = ""
    project_id_regex: str = r"[0-9a-f\-]+"
    catalog_overrides_file: str = ""
    viewer_secret_key: str = ""
    bus_url: str = "memory://"
    bus_queue_type: str = "classic"
    bus_timeout: float = 2.0
    sdk_sink: str = "bus"
    sdk_spool_path: str = ""
    sdk_spool_max_messages: int = 100000
    collector_batch_size: int = 500
    collector_flush_interval: float = 0.2
    collector_embedded: bool = True
    collector_notification_mapping_file: str = ""
    collector_notifications_exchanges: str = "openstack"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (command-line flags win over the file)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_BOOLS = {"true": True, "yes": True, "1": True, "on": True,
          "false": False, "no": False, "0": False, "off": False}


def _convert(option: Option, raw: str) -> Any:
    converters: dict[type, Callable[[str], Any]] = {
        int: int,
        float: float,
        bool: lambda v: _BOOLS[v.strip().lower()],
        str: lambda v: v.strip(),
    }
    try:
        value = converters[option.kind](raw)
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"[{option.section}] {option.name}: {raw!r} is not a valid {option.kind.__name__}"
        ) from exc
    if option.kind in (int, float) and option.name != "message_reap_interval" and value <= 0:
        raise ConfigError(f"[{option.section}] {option.name} must be positive")
    if option.name == "message_reap_interval" and value < 1 and value != -1:
        raise ConfigError("[DEFAULT] message_reap_interval must be at least 1, or -1 to disable")
    choices = CHOICES.get(option.name)
    if choices and value not in choices:
        raise ConfigError(f"[{option.section}] {option.name} must be one of {', '.join(choices)}")
    return value


CHOICES = {"sink": ("db", "bus", "both"), "queue_type": ("classic", "quorum")}


def load(path: str | Path | None = None, foreign: Callable[[str], bool] = lambda _: False) -> Settings:
    """Read settings from an INI file; no file gives the defaults.

    Unknown sections or options are errors: a misspelt option silently
    ignored is an outage waiting to happen. ``foreign`` names the sections
    that another program sharing the file reads (they are skipped here).
    """
    if path is None:
        return Settings()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    known = {(o.section, o.name): o for o in OPTIONS}
    values: dict[str, Any] = {}
    for section in ["DEFAULT", *[s for s in parser.sections() if not foreign(s)]]:
        items = parser.defaults() if section == "DEFAULT" else {
            k: v for k, v in parser.items(section, raw=True) if k not in parser.defaults()
        }
        for name, raw in items.items():
            option = known.get((section, name))
            if option is None:
                raise ConfigError(f"{path}: unknown option [{section}] {name}")
            values[_attr(option)] = _convert(option, raw)
    return Settings(**values)


def sample() -> str:
    """A commented config file with every option at its default."""
    lines = ["# usermessages configuration. Every option is shown at its default."]
    section = None
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines += ["", f"[{section}]"]
        default = str(option.default).lower() if option.kind is bool else option.default
        lines += [f"# {option.help}", f"#{option.name} = {default}"]
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """docs/configuration.md: every option, its default and meaning."""
    lines = [
        "# Configuration", "",
        "One INI file, passed as `--config FILE` (or `USERMESSAGES_CONFIG`) to every command;",
        "command-line flags (`--db`, `--host`, `--port`) win over it. Unknown sections or",
        "options are start-up errors. `usermessages config sample` prints a commented file",
        "with every option at its default; this page is `usermessages config docs`. Names",
        "follow Cinder's where Cinder has the option.",
    ]
    section = None
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines += ["", f"## [{section}]", "", "| option | default | meaning |", "|---|---|---|"]
        default = str(option.default).lower() if option.kind is bool else str(option.default)
        shown = f"`{default}`" if default else "(empty)"
        lines.append(f"| `{option.name}` | {shown} | {option.help} |")
    return "\n".join(lines) + "\n"
