"""Settings: one INI file, loaded once at an entry point and passed down.

Option names follow Cinder's where Cinder has them (``message_ttl``,
``message_reap_interval``, ``osapi_max_limit``...), so an operator can carry
values over from ``cinder.conf``. Every option is declared once in OPTIONS,
which also feeds ``usermessages config sample`` and docs/configuration.md.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usermessages.errors import ConfigError

# 100 years: longer than any retention anyone asks for, and short enough that
# created_at + message_ttl stays a representable time (datetime ends in 9999).
MAX_MESSAGE_TTL = 100 * 366 * 86400


def check_ttl(ttl: int) -> int:
    """``ttl`` if it is a usable ``message_ttl`` (1 s to MAX_MESSAGE_TTL); else ConfigError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_MESSAGE_TTL:
        raise ConfigError(
            f"[DEFAULT] message_ttl must be a whole number of seconds from 1 to "
            f"{MAX_MESSAGE_TTL} (100 years), not {ttl!r}"
        )
    return ttl


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
           "Seconds a message is kept; shown to users as guaranteed_until. At most "
           "3162240000 (100 years)."),
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
    Option("api", "auth_strategy", "noauth",
           "noauth: Cinder's noauth token `user:project` (anyone can be anyone: the embedded "
           "demo). keystone: keystonemiddleware's auth_token validates every /v3 request "
           "against Keystone, configured by the [keystone_authtoken] section of this file."),
    Option("api", "metrics", "public",
           "Who may read /metrics on the API port: public (anyone), admin (a caller the "
           "context_is_admin rule passes), or off (then serve it with `metrics_port`)."),
    Option("api", "metrics_port", 0,
           "Non-zero: `usermessages serve` also serves /metrics alone on this port, on "
           "`metrics_host`, for a scraper on a private network."),
    Option("api", "metrics_host", "127.0.0.1", "Address of the /metrics listener."),
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
    Option("viewer", "secure_cookie", False,
           "Mark the viewer's session cookie Secure (sent over HTTPS only). Turn on whenever "
           "the viewer is reached over HTTPS."),
    Option("bus", "url", "memory://",
           "Broker URL: memory:// is in-process (the embedded default, for `serve` alone); "
           "amqp://USER:PASS@HOST:5672// is RabbitMQ, for separate producers and collectors."),
    Option("bus", "queue_type", "classic",
           "RabbitMQ queue type of the messages queue: classic, or quorum for a cluster."),
    Option("bus", "timeout", 2.0,
           "Seconds any one broker step (connect, publish confirm) may take before it fails."),
    Option("sdk", "sink", "bus",
           "Where Messenger.from_settings sends messages: db (insert directly), bus, both "
           "(db and bus), zaqar, or db+zaqar (see docs/zaqar.md)."),
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
           "(the services' control_exchange: openstack, cinder, nova...). The collector "
           "never declares them: it binds to each once the service has created it."),
    Option("collector", "notifications_topics", "notifications",
           "Comma-separated notification topics read on those exchanges (oslo.messaging's "
           "[oslo_messaging_notifications] topics); add versioned_notifications for Nova's "
           "versioned format. Read one of Nova's two formats, not both: each failure is "
           "announced in both."),
    Option("collector", "metrics_host", "127.0.0.1",
           "Address of `usermessages collector`'s Prometheus listener."),
    Option("collector", "metrics_port", 0,
           "Port of `usermessages collector`'s Prometheus listener (GET /metrics); 0: off."),
    # --- Zaqar as a store and a source (docs/zaqar.md) ---
    Option("zaqar", "url", "http://127.0.0.1:8888",
           "Zaqar v2 endpoint, for the zaqar sinks, `usermessages zaqar-collector` and "
           "`usermessages subscription`."),
    Option("zaqar", "queue", "user_messages",
           "Queue holding each project's user messages (one per project, in that project)."),
    Option("zaqar", "admin_project", "admin",
           "Zaqar project of admin-only (service, system) messages and of the index queue."),
    Option("zaqar", "index_queue", "user_messages_projects",
           "Queue in admin_project where producers announce each project they post to, "
           "so collectors find the project queues; empty turns the index off."),
    Option("zaqar", "projects", "",
           "Comma-separated projects the Zaqar collector always reads, besides the index."),
    Option("zaqar", "dead_letter_queue", "user_messages_dead",
           "Queue, in the same project, receiving envelopes the collector cannot accept."),
    Option("zaqar", "timeout", 2.0, "Seconds any one Zaqar request may take."),
    Option("zaqar", "max_message_ttl", 1209600,
           "Zaqar's max_message_ttl: message_ttl is capped to it (and raised to 60 s)."),
    Option("zaqar", "claim_ttl", 60,
           "Seconds a collector's claim holds messages; a collector dying after its claim "
           "gets them redelivered after this (at least 60)."),
    Option("zaqar", "poll_interval", 1.0,
           "Seconds the Zaqar collector waits when every project queue was empty."),
    Option("zaqar", "auth_token", "",
           "X-Auth-Token sent to a Keystone-protected Zaqar; empty for a Zaqar without auth."),
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
    auth_strategy: str = "noauth"
    metrics: str = "public"
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    admin_user: str = "admin"
    trust_roles_header: bool = False
    policy_file: str = ""
    project_id_regex: str = r"[0-9a-f\-]+"
    catalog_overrides_file: str = ""
    viewer_secret_key: str = ""
    viewer_secure_cookie: bool = False
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
    collector_notifications_topics: str = "notifications"
    collector_metrics_host: str = "127.0.0.1"
    collector_metrics_port: int = 0
    zaqar_url: str = "http://127.0.0.1:8888"
    zaqar_queue: str = "user_messages"
    zaqar_admin_project: str = "admin"
    zaqar_index_queue: str = "user_messages_projects"
    zaqar_projects: str = ""
    zaqar_dead_letter_queue: str = "user_messages_dead"
    zaqar_timeout: float = 2.0
    zaqar_max_message_ttl: int = 1209600
    zaqar_claim_ttl: int = 60
    zaqar_poll_interval: float = 1.0
    zaqar_auth_token: str = ""
    # Passed through as they are: keystonemiddleware's and oslo.policy's own options.
    keystone_authtoken: tuple[tuple[str, str], ...] = ()
    oslo_policy: tuple[tuple[str, str], ...] = ()

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (command-line flags win over the file)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def project_id_problem(settings: Settings, project_id: str) -> str | None:
    """Why a project id can never be in a URL of the API (None if it can).

    Every front end (API, viewer, CLI) gives this same reason, so a newcomer who
    picks ``demo`` learns the rule instead of meeting a bare 404.
    """
    if re.fullmatch(settings.project_id_regex, project_id):
        return None
    shown = project_id if len(project_id) <= 64 and project_id.isprintable() else "this one"
    return (f"a project id must match {settings.project_id_regex} "
            f"([api] project_id_regex, as Cinder's); {shown!r} does not")


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
    if option.name == "metrics_port" and not 0 <= value <= 65535:
        raise ConfigError(f"[{option.section}] {option.name} must be 0 (off) or a port number")
    if option.kind in (int, float) and option.name not in NON_NEGATIVE and value <= 0:
        raise ConfigError(f"[{option.section}] {option.name} must be positive")
    if option.name == "message_ttl":
        check_ttl(value)
    if option.name == "message_reap_interval" and value < 1 and value != -1:
        raise ConfigError("[DEFAULT] message_reap_interval must be at least 1, or -1 to disable")
    choices = CHOICES.get(option.name)
    if choices and value not in choices:
        raise ConfigError(f"[{option.section}] {option.name} must be one of {', '.join(choices)}")
    return value


CHOICES = {"sink": ("db", "bus", "both", "zaqar", "db+zaqar"),
           "queue_type": ("classic", "quorum"),
           "auth_strategy": ("noauth", "keystone"), "metrics": ("public", "admin", "off")}
NON_NEGATIVE = ("message_reap_interval", "metrics_port")
# Sections read by the libraries they belong to, with their own option sets.
PASSTHROUGH = ("keystone_authtoken", "oslo_policy")


def read_ini(path: str | Path, **parser_args: Any) -> configparser.ConfigParser:
    """Parse an INI file, turning configparser's multi-line errors into one clear line."""
    parser = configparser.ConfigParser(interpolation=None, **parser_args)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f"config file {path}, line {exc.lineno}: {exc.line.strip()[:80]!r} comes before "
            "any [section] header; options go under [DEFAULT], [database], [api]... "
            "(see `usermessages config sample`)") from exc
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors[:5])
        raise ConfigError(f"config file {path}: cannot parse line {lines}: "
                          "expected `name = value` or a [section] header") from exc
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
        duplicate_option = isinstance(exc, configparser.DuplicateOptionError)
        what = (f"[{exc.section}] {exc.option}"  # type: ignore[union-attr]
                if duplicate_option else f"section [{exc.section}]")
        raise ConfigError(f"config file {path}, line {exc.lineno}: {what} appears twice") from exc
    except configparser.Error as exc:
        raise ConfigError(f"cannot read config file {path}: {' '.join(str(exc).split())}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return parser


def _sharers() -> list[Any]:
    """Programs sharing the config file, registered under the ``usermessages.config``
    entry point group: each has ``owns(section) -> bool`` and ``sample() -> str``.
    (The reference block-storage service registers its ``[blockstorage]`` and
    ``[backend:NAME]`` sections there; usermessages never imports it by name.)"""
    from importlib.metadata import entry_points

    try:
        return [ep.load() for ep in entry_points(group="usermessages.config")]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"a usermessages.config entry point does not load: {exc}") from exc


def load(path: str | Path | None = None,
         foreign: Callable[[str], bool] | None = None) -> Settings:
    """Read settings from an INI file; no file gives the defaults.

    Unknown sections or options are errors: a misspelt option silently
    ignored is an outage waiting to happen. ``foreign`` names the sections
    that another program sharing the file reads (they are skipped here); by
    default, those registered under the ``usermessages.config`` entry points.
    """
    if path is None:
        return Settings()
    parser = read_ini(path)
    sharers = _sharers() if foreign is None else []  # looked up once per file
    is_foreign = foreign or (lambda section: any(sharer.owns(section) for sharer in sharers))
    known = {(o.section, o.name): o for o in OPTIONS}
    values: dict[str, Any] = {}
    for section in PASSTHROUGH:
        if parser.has_section(section):
            values[section] = tuple(
                (k, v.strip()) for k, v in parser.items(section, raw=True)
                if k not in parser.defaults())
    regular = [s for s in parser.sections() if not is_foreign(s) and s not in PASSTHROUGH]
    for section in ["DEFAULT", *regular]:
        items = parser.defaults() if section == "DEFAULT" else {
            k: v for k, v in parser.items(section, raw=True) if k not in parser.defaults()
        }
        for name, raw in items.items():
            option = known.get((section, name))
            if option is None:
                raise ConfigError(f"{path}: unknown option [{section}] {name}")
            values[_attr(option)] = _convert(option, raw)
    settings = Settings(**values)
    if settings.auth_strategy == "keystone" and not settings.keystone_authtoken:
        raise ConfigError(f"{path}: [api] auth_strategy = keystone needs a "
                          "[keystone_authtoken] section")
    return settings


def sample() -> str:
    """A commented config file with every option at its default, then the sections of
    the programs that share the file (the reference block-storage service)."""
    lines = ["# usermessages configuration. Every option is shown at its default."]
    section = None
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines += ["", f"[{section}]"]
        default = str(option.default).lower() if option.kind is bool else option.default
        lines += [f"# {option.help}", f"#{option.name} = {default}"]
    text = "\n".join(lines) + "\n"
    for sharer in _sharers():
        text += "\n" + sharer.sample()
    return text


def markdown() -> str:
    """docs/configuration.md: every option, its default and meaning."""
    lines = [
        "# Configuration", "",
        "One INI file, passed as `--config FILE` (or `USERMESSAGES_CONFIG`) to every command;",
        "command-line flags (`--db`, `--host`, `--port`) win over it. Unknown sections or",
        "options are start-up errors; the sections of programs sharing the file (the",
        "reference service's `[blockstorage]` and `[backend:NAME]`, see",
        "[reference-service.md](reference-service.md)) are theirs to check.",
        "`usermessages config sample` prints a commented file with every option at its",
        "default, theirs included; this page is `usermessages config docs`. Names",
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
