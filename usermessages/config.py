"""Settings: one INI file, loaded once at an entry point and passed down.

Option names follow Cinder's where Cinder has them (``message_ttl``,
``message_reap_interval``, ``osapi_max_limit``...), so an operator can carry
values over from ``cinder.conf``. Every option is declared once in OPTIONS,
and becomes a typed oslo.config option (``list_opts``, the ``oslo.config.opts``
entry point of namespace ``usermessages``): oslo.config reads the file, the
sample is oslo-config-generator's, and the rest of the code receives the frozen
``Settings`` built from it. On top of oslo.config we keep our strictness (an
unknown section or option is a start-up error) and one-line errors.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
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
    Option("viewer", "resource_url", "",
           "Where each row's resource links to: a URL template with {project_id}, "
           "{collection} (volumes, snapshots or backups) and {resource_uuid}, e.g. "
           "http://cinder:8776/v3/{project_id}/{collection}/{resource_uuid}. Empty links to "
           "the viewer's own list of that resource's messages."),
    Option("viewer", "secure_cookie", False,
           "Mark the viewer's session cookie Secure (sent over HTTPS only). Turn on whenever "
           "the viewer is reached over HTTPS."),
    Option("bus", "url", "memory://",
           "Broker URL: memory:// is in-process (the embedded default, for `serve` alone); "
           "RabbitMQ, for separate producers and collectors, as OpenStack's transport_url "
           "(rabbit://USER:PASS@HOST1:5672,USER:PASS@HOST2:5672/ for a cluster: each host is "
           "tried in turn) or as kombu's amqp://USER:PASS@HOST:5672// (alternates joined "
           "with ;)."),
    Option("bus", "queue_type", "classic",
           "RabbitMQ queue type of our queues (messages, dead letters, notifications): "
           "classic, or quorum for a cluster (replicated: no node takes a queue down with it). "
           "Every producer and collector must say the same; RabbitMQ cannot change the type "
           "of an existing queue, so switching means deleting the queues once drained."),
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
    Option("collector", "batch_size", 2000, "Most messages inserted in one transaction."),
    Option("collector", "flush_interval", 0.2,
           "Seconds a partial batch may wait before it is inserted."),
    Option("collector", "series_exemplars", 5,
           "Request ids a series keeps: the most recent ones (GET messages-ext/series)."),
    Option("collector", "storm_rows_per_project", 0,
           "Rows stored per project per storm_window; occurrences beyond are not stored "
           "but counted on their series and in /metrics. 0: no limit."),
    Option("collector", "storm_rows_per_event", 0,
           "Rows stored per (project, event id) per storm_window, as above. 0: no limit."),
    Option("collector", "storm_window", 60, "Seconds of storm control's window."),
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
           "`usermessages zaqar subscription`."),
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
    # --- Signed webhooks and the API's event stream (docs/webhooks.md) ---
    Option("webhooks", "embedded", True,
           "Run the webhook deliverer inside `usermessages serve`. Turn off when a separate "
           "`usermessages webhook-deliverer` runs (several deliverers share the work safely)."),
    Option("webhooks", "allow_private_targets", False,
           "Allow webhook URLs resolving to loopback, private, link-local or reserved "
           "addresses (SSRF guard off). Only for closed test deployments."),
    Option("webhooks", "allowed_cidrs", "",
           "Comma-separated networks (e.g. 10.20.0.0/16) webhooks may target although "
           "private; public addresses are always allowed."),
    Option("webhooks", "timeout", 5.0,
           "Seconds one delivery attempt (connect, send, answer) may take in all, whatever the "
           "receiver does; redirects are not followed."),
    Option("webhooks", "workers", 8,
           "Deliveries one deliverer makes at once, each to a different subscription. "
           "Failing or slow subscriptions share at most half of them; the rest serve the "
           "others, so a slow receiver delays only its own webhook."),
    Option("webhooks", "retry_base", 2.0,
           "Seconds before the first retry of a failed delivery; doubled at each failure."),
    Option("webhooks", "retry_max", 600.0, "Longest wait between two attempts, in seconds."),
    Option("webhooks", "disable_after_failures", 15,
           "A subscription is disabled after this many consecutive failed attempts..."),
    Option("webhooks", "disable_after_hours", 24.0,
           "...or once it has been failing for this many hours, whichever comes first."),
    Option("webhooks", "poll_interval", 1.0,
           "Seconds the deliverer waits when no subscription had anything to send."),
    Option("api", "max_streams", 100,
           "Most event streams (GET .../messages-ext/stream) one API process holds open; "
           "beyond, 503 with Retry-After."),
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
    viewer_resource_url: str = ""
    bus_url: str = "memory://"
    bus_queue_type: str = "classic"
    bus_timeout: float = 2.0
    sdk_sink: str = "bus"
    sdk_spool_path: str = ""
    sdk_spool_max_messages: int = 100000
    collector_batch_size: int = 2000
    collector_flush_interval: float = 0.2
    collector_series_exemplars: int = 5
    collector_storm_rows_per_project: int = 0
    collector_storm_rows_per_event: int = 0
    collector_storm_window: int = 60
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
    webhooks_embedded: bool = True
    webhooks_allow_private_targets: bool = False
    webhooks_allowed_cidrs: str = ""
    webhooks_timeout: float = 5.0
    webhooks_workers: int = 8
    webhooks_retry_base: float = 2.0
    webhooks_retry_max: float = 600.0
    webhooks_disable_after_failures: int = 15
    webhooks_disable_after_hours: float = 24.0
    webhooks_poll_interval: float = 1.0
    max_streams: int = 100
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


CHOICES = {"sink": ("db", "bus", "both", "zaqar", "db+zaqar"),
           "queue_type": ("classic", "quorum"),
           "auth_strategy": ("noauth", "keystone"), "metrics": ("public", "admin", "off")}
NON_NEGATIVE = ("message_reap_interval", "metrics_port", "storm_rows_per_project",
                "storm_rows_per_event")
# Sections read by the libraries they belong to, with their own option sets.
PASSTHROUGH = ("keystone_authtoken", "oslo_policy")
# A group named "prefix:name" in list_opts stands for every section "prefix:<a name>"
# (oslo-config-generator writes group names in lower case).
TEMPLATE = ":name"


def _check(option: Option, value: Any) -> Any:
    """Our rules beyond the type oslo.config checks, each in one clear sentence."""
    if option.name == "metrics_port" and not 0 <= value <= 65535:
        raise ConfigError(f"[{option.section}] {option.name} must be 0 (off) or a port number")
    if option.kind in (int, float) and option.name not in NON_NEGATIVE and value <= 0:
        raise ConfigError(f"[{option.section}] {option.name} must be positive")
    if option.name.startswith("storm_rows_") and value < 0:
        raise ConfigError(f"[{option.section}] {option.name} must be 0 (no limit) or positive")
    if option.name == "message_ttl":
        check_ttl(value)
    if option.name == "message_reap_interval" and value < 1 and value != -1:
        raise ConfigError("[DEFAULT] message_reap_interval must be at least 1, or -1 to disable")
    choices = CHOICES.get(option.name)
    if choices and value not in choices:
        raise ConfigError(f"[{option.section}] {option.name} must be one of {', '.join(choices)}")
    return value


def _oslo() -> Any:
    """oslo.config, which comes with the [server] extra: the SDK alone runs on the
    defaults (``load(None)``, ``Settings(...)``) and does not pull it in."""
    try:
        import oslo_config.cfg
        import oslo_config.generator
    except ImportError as exc:
        raise ConfigError("reading a config file needs oslo.config: "
                          "pip install 'usermessages[server]'") from exc
    return oslo_config


def _oslo_opt(option: Option) -> Any:
    """The oslo.config option of one of ours: typed, with its default, help and choices."""
    cfg = _oslo().cfg

    # Choices and ranges are checked by _check, in our words; the help names them.
    kinds = {bool: cfg.BoolOpt, int: cfg.IntOpt, float: cfg.FloatOpt, str: cfg.StrOpt}
    return kinds[option.kind](option.name, default=option.default, help=option.help)


def list_opts() -> list[tuple[str, list[Any]]]:
    """Our options by section: the ``oslo.config.opts`` entry point of namespace
    ``usermessages`` (``oslo-config-generator --namespace usermessages``)."""
    groups: dict[str, list[Any]] = {}
    for option in OPTIONS:
        groups.setdefault(option.section, []).append(_oslo_opt(option))
    return list(groups.items())


def read_ini(path: str | Path, **parser_args: Any) -> configparser.ConfigParser:
    """Parse an INI file, turning configparser's multi-line errors into one clear line.

    Only the syntax and the section and option names are read here (oslo.config
    reads the values); DEFAULT is a section like the others, as in oslo.config.
    """
    parser_args.setdefault("default_section", "__none__")
    parser = configparser.ConfigParser(interpolation=None, **parser_args)
    # Names keep their case, as oslo.config reads them: `Port` is not `port`, so it
    # is refused as unknown instead of silently ignored.
    parser.optionxform = str  # type: ignore[assignment,method-assign]
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


def parse(path: str | Path, groups: dict[str, list[Any]]) -> tuple[Any, configparser.ConfigParser]:
    """The file read by oslo.config with ``groups`` registered, and its raw sections.

    oslo.config ignores options nobody registered; we do not: an option of one of
    ``groups`` that is not registered is a start-up error (a misspelt option silently
    ignored is an outage waiting to happen). Environment variables do not override.
    """
    cfg = _oslo().cfg

    raw = read_ini(path)
    conf = cfg.ConfigOpts()
    for group, opts in groups.items():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
        if raw.has_section(group):
            known = {opt.dest for opt in opts}
            for name in raw.options(group):
                if name not in known:
                    raise ConfigError(f"{path}: unknown option [{group}] {name}")
    try:
        conf(args=[], project="usermessages", default_config_files=[str(path)],
             default_config_dirs=[], use_env=False)
    except cfg.Error as exc:
        raise ConfigError(f"cannot read config file {path}: {' '.join(str(exc).split())}") \
            from exc
    return conf, raw


def value(conf: Any, path: str | Path, section: str, name: str, kind: str) -> Any:
    """One option's typed value; a value oslo.config refuses is one line naming it."""
    cfg = _oslo().cfg

    try:
        got = conf[name] if section == "DEFAULT" else conf[section][name]
        if got is None:  # `name =` with nothing after it
            if kind != "str":
                raise ConfigError(f"{path}: [{section}] {name} is empty: it needs a {kind}")
            return ""
        return got
    except (cfg.NoSuchOptError, cfg.TemplateSubstitutionError) as exc:
        raise ConfigError(f"{path}: [{section}] {name}: a `$` substitutes another option's "
                          f"value ({' '.join(str(exc).split())[:120]}); write `$$` for a "
                          "literal `$`") from exc
    except (cfg.Error, ValueError) as exc:
        reason = str(exc).rsplit("is not valid: ", 1)[-1]
        raise ConfigError(f"{path}: [{section}] {name} is not a valid {kind} "
                          f"({' '.join(reason.split())[:120]})") from exc


def _shared_sections() -> list[str]:
    """Sections of the programs sharing the file: the groups of every other
    ``oslo.config.opts`` namespace this distribution declares (the reference
    block-storage service's ``[blockstorage]`` and ``[backend:NAME]``). Each program
    checks its own sections; usermessages never imports them by name."""
    names = []
    for entry in _namespaces():
        if entry.name == "usermessages":
            continue
        try:
            groups = entry.load()()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"the {entry.name} config options do not load: {exc}") from exc
        names += [getattr(group, "name", group) for group, _ in groups]
    return names


def _namespaces() -> list[Any]:
    from importlib.metadata import entry_points

    return [entry for entry in entry_points(group="oslo.config.opts")
            if entry.dist is not None and entry.dist.name == "usermessages"]


def _is_shared(section: str, shared: list[str]) -> bool:
    return any(section == name or (name.endswith(TEMPLATE)
                                   and section.startswith(name[:-len(TEMPLATE)] + ":"))
               for name in shared)


def load(path: str | Path | None = None) -> Settings:
    """Read settings from an INI file; no file gives the defaults.

    Unknown sections or options are errors, except the sections of the programs
    sharing the file (see ``_shared_sections``) and the Keystone libraries' own.
    """
    if path is None:
        return Settings()
    groups = dict(list_opts())
    conf, raw = parse(path, groups)
    shared = _shared_sections()
    for section in raw.sections():
        if section in groups or section in PASSTHROUGH or _is_shared(section, shared):
            continue
        first = next(iter(raw.options(section)), None)
        raise ConfigError(f"{path}: unknown option [{section}] {first}" if first
                          else f"{path}: unknown section [{section}]")
    values: dict[str, Any] = {}
    for section in PASSTHROUGH:
        if raw.has_section(section):
            values[section] = tuple((k, v.strip()) for k, v in raw.items(section, raw=True))
    for option in OPTIONS:
        got = value(conf, path, option.section, option.name, option.kind.__name__)
        values[_attr(option)] = _check(option, got)
    settings = Settings(**values)
    if settings.auth_strategy == "keystone" and not settings.keystone_authtoken:
        raise ConfigError(f"{path}: [api] auth_strategy = keystone needs a "
                          "[keystone_authtoken] section")
    return settings


def sample() -> str:
    """A commented config file with every option at its default, made by
    oslo-config-generator's machinery from every namespace of this distribution
    (ours first, then the programs sharing the file)."""
    import io

    cfg, generator = _oslo().cfg, _oslo().generator

    names = sorted(entry.name for entry in _namespaces())
    names.sort(key=lambda name: name != "usermessages")
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    args = [arg for name in names for arg in ("--namespace", name)]
    conf(args=args, default_config_files=[], default_config_dirs=[],
         use_env=False)
    out = io.StringIO()
    generator.generate(conf, output_file=out)
    return out.getvalue()


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
        "default, theirs included (it is oslo-config-generator's: `oslo-config-generator",
        "--namespace usermessages --namespace blockstorage` prints the same); this page",
        "is `usermessages config docs`. Names follow Cinder's where Cinder has the option;",
        "the file is read by oslo.config, so its habits hold (`$name` substitutes another",
        "option's value: write `$$` for a literal `$`). The two files it may name,",
        "`[catalog] overrides_file` and `[collector] notification_mapping_file`, are data",
        "(their keys are catalog ids and event types, not options): plain INI, no `$`.",
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
