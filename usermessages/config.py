"""Settings: one INI file, loaded once at an entry point and passed down.

Option names follow Cinder's where Cinder has them (``message_ttl``,
``message_reap_interval``, ``osapi_max_limit``...), so an operator can carry
values over from ``cinder.conf``. oslo.config reads the file, the sample is
oslo-config-generator's, and the rest of the code receives the frozen
``Settings``. On top of oslo.config we keep our strictness (an unknown section
or option is a start-up error) and one-line errors.

Each option is declared once, as a field of ``Settings`` followed by its help
(usermessages.options does the rest)::

    collector_batch_size: int = option("collector", 2000, min=1)
    '''Most messages inserted in one transaction.'''

To add one, put such a field in its section's block:

* the attribute is ``<section>_<name>`` (``[collector] batch_size``), except in
  [DEFAULT] and [api], whose options keep their bare names (``port``);
* its type is int, float, bool or str; ``option()`` takes the section and the
  default; the string below the field is the help (editors show it on hover);
* its rule, rather than a check written by hand: ``min``/``max`` (inclusive),
  ``above`` (exclusive: ``above=0`` is positive), ``off=(value, "what it
  means")`` for one value outside them that turns a feature off, or ``choices``
  (values, or (value, meaning) pairs). The help does not repeat them: the sample
  and the docs add them. ``secret=True`` for a value that may hold a password:
  oslo.config masks it where it logs options.

From that field come the oslo.config option (``list_opts``, the ``oslo.config.opts``
entry point of namespace ``usermessages``), the check of every value (from the
file, a command-line flag or code: ``Settings`` refuses what its rule refuses),
docs/configuration.md (``usermessages config docs``; a test keeps the page
equal) and the sample. Code that needs a default reads it from ``DEFAULTS``
rather than writing the value again.
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usermessages import options
from usermessages.errors import ConfigError
from usermessages.options import option

# 100 years: longer than any retention anyone asks for, and short enough that
# created_at + message_ttl stays a representable time (datetime ends in 9999).
MAX_MESSAGE_TTL = 100 * 366 * 86400
MAX_PORT = 65535

# The producer SDK's sinks (Messenger.from_url), offered by [sdk] sink and by the
# reference service's [blockstorage] message_sink.
SINK_CHOICES = (
    ("db", "insert into the store directly"),
    ("bus", "through the local spool and the bus, to a collector"),
    ("both", "db and bus; a message that takes both paths is stored once"),
    ("zaqar", "through the local spool to each project's Zaqar queue (see docs/zaqar.md)"),
    ("db+zaqar", "db and zaqar"),
)
SINKS = tuple(name for name, _ in SINK_CHOICES)


@dataclass(frozen=True)
class Settings:
    """Every option of usermessages, typed, at its default unless the file says otherwise."""

    # --- [DEFAULT] ---
    message_ttl: int = option("DEFAULT", 2592000, min=1, max=MAX_MESSAGE_TTL)
    """Seconds a message is kept; shown to users as guaranteed_until."""
    message_reap_interval: int = option("DEFAULT", 86400, min=1, off=(-1, "no reaper"))
    """Seconds between reaper passes in `usermessages serve`."""
    message_reap_batch_size: int = option("DEFAULT", 1000, min=1)
    """Expired rows deleted per transaction, so a reap never holds long locks."""
    osapi_max_limit: int = option("DEFAULT", 1000, min=1)
    """Largest page a list returns; also the default page size."""
    # --- [database] ---
    database_connection: str = option("database", "sqlite:///usermessages.sqlite",
                                      secret=True)
    """SQLAlchemy URL of the store: sqlite:///PATH, postgresql://USER@HOST:PORT/DB, or
    mysql+pymysql://USER:PASSWORD@HOST/DB?charset=utf8mb4 for MariaDB 10.11+ or a Galera
    cluster (see MariaDB and Galera below)."""
    database_timeout: float = option("database", 2.0, above=0)
    """PostgreSQL and MariaDB: seconds an API or viewer request may wait for a pooled
    connection, and then use it (a client-side deadline that holds even when the server is
    frozen; the server's statement_timeout, MariaDB's max_statement_time, is 3/4 of it).
    Past it the request answers 503 serviceUnavailable: within
    2 x timeout whatever the concurrency (timeout + 2 s if timeout is under 2 s: libpq's
    shortest connect), in milliseconds once the database is known down. The collector and
    reaper are not bounded by it."""
    # --- [api] ---
    host: str = option("api", "127.0.0.1")
    """Address `usermessages serve` listens on."""
    port: int = option("api", 8776, min=1, max=MAX_PORT)
    """Port `usermessages serve` listens on (Cinder's is 8776)."""
    workers: int = option("api", 0, min=1, off=(0, "one per core, as Cinder's "
                                                   "osapi_volume_workers"))
    """API processes `usermessages serve` runs on its one port, under a supervisor that starts
    again any that dies; the embedded collector, the reaper and the webhook deliverer then run
    once, in a process of their own. 1 runs everything in one process."""
    public_endpoint: str = option("api", "")
    """Base URL for links and the versions document, when behind a proxy; empty uses the request's
    own URL."""
    auth_strategy: str = option("api", "noauth", choices=(
        ("noauth", "Cinder's noauth token `user:project` (anyone can be anyone: the embedded "
                   "demo)"),
        ("keystone", "keystonemiddleware's auth_token validates every /v3 request against "
                     "Keystone, configured by the [keystone_authtoken] section of this file")))
    """Who the caller of the API and the viewer is."""
    metrics: str = option("api", "public", choices=(
        ("public", "anyone"), ("admin", "a caller the context_is_admin rule passes"),
        ("off", "nobody; serve it with `metrics_port`")))
    """Who may read /metrics on the API port."""
    metrics_port: int = option("api", 0, min=1, max=MAX_PORT, off=(0, "off"))
    """`usermessages serve` also serves /metrics alone on this port, on `metrics_host`, for a
    scraper on a private network."""
    metrics_host: str = option("api", "127.0.0.1")
    """Address of the /metrics listener."""
    admin_user: str = option("api", "admin")
    """In noauth mode, the user id whose token `user:project` makes an admin."""
    trust_roles_header: bool = option("api", False)
    """Take the caller's roles from an X-Roles header (comma-separated). Only for deployments behind
    a proxy that sets it; anyone can send headers."""
    policy_file: str = option("api", "")
    """oslo.policy YAML or JSON file overriding the message:get_all, message:get and message:delete
    rules; empty keeps Cinder's current defaults."""
    project_id_regex: str = option("api", r"[0-9a-f\-]+")
    """What a project id in a URL must look like (Cinder's project_id_regex)."""
    max_streams: int = option("api", 100, min=1)
    """Most event streams (GET .../messages-ext/stream and the viewer's live list) held open at
    once, counted in the store across every API process and node; beyond, 503 with
    Retry-After."""
    max_streams_per_project: int = option("api", 25, min=1)
    """Most of those streams one project holds open, so one tenant cannot take every slot; beyond,
    429 with Retry-After. Keep it below max_streams (a quarter of it)."""
    max_exports: int = option("api", 8, min=1)
    """Most exports (GET .../messages-ext/export and the viewer's downloads) running at once,
    counted in the store across every API process and node; beyond, 503 with Retry-After."""
    max_exports_per_project: int = option("api", 2, min=1)
    """Most of those exports one project runs at once; beyond, 429 with Retry-After. Keep it below
    max_exports (a quarter of it)."""
    # --- [catalog] ---
    catalog_overrides_file: str = option("catalog", "")
    """INI file with [action] and [detail] sections replacing catalog texts by id."""
    # --- [viewer] ---
    viewer_secret_key: str = option("viewer", "", secret=True)
    """Key of the Event Viewer's form tokens (and of noauth's signed session cookie). Empty makes a
    random one at each start of `usermessages serve`, shared by its workers: forms and noauth
    sign-ins then hold on that node until it restarts. Set the same key on every node behind a
    load balancer."""
    viewer_resource_url: str = option("viewer", "")
    """Where each row's resource links to: a URL template with {project_id}, {collection} (volumes,
    snapshots or backups) and {resource_uuid}, e.g.
    http://cinder:8776/v3/{project_id}/{collection}/{resource_uuid}. Empty links to the viewer's
    own list of that resource's messages."""
    viewer_secure_cookie: bool = option("viewer", False)
    """Mark the viewer's session cookie Secure (sent over HTTPS only). Turn on whenever the viewer
    is reached over HTTPS."""
    # --- [bus] ---
    bus_url: str = option("bus", "memory://", secret=True)
    """Broker URL: memory:// is in-process (the embedded default, for `serve` alone); RabbitMQ,
    for separate producers and collectors, as OpenStack's transport_url
    (rabbit://USER:PASS@HOST1:5672,USER:PASS@HOST2:5672/ for a cluster: each host is tried in
    turn) or as kombu's amqp://USER:PASS@HOST:5672// (alternates joined with ;)."""
    bus_queue_type: str = option("bus", "classic",
                                 choices=("classic", ("quorum", "for a RabbitMQ cluster")))
    """RabbitMQ queue type of our queues (messages, dead letters, notifications). Every
    producer and collector must say the same; RabbitMQ cannot change the type of an existing
    queue, so switching means deleting the queues once drained."""
    bus_timeout: float = option("bus", 2.0, above=0)
    """Seconds any one broker step (connect, publish confirm) may take before it fails."""
    # --- [sdk] ---
    sdk_sink: str = option("sdk", "bus", choices=SINK_CHOICES)
    """Where Messenger.from_settings sends messages."""
    sdk_spool_path: str = option("sdk", "")
    """SQLite file spooling messages while the broker is unreachable; empty keeps the spool in
    memory (lost if the producer dies). One file per producer process."""
    sdk_spool_max_messages: int = option("sdk", 100000, min=1)
    """Most messages the spool holds; when full, the oldest are dropped and counted."""
    # --- [collector] ---
    collector_batch_size: int = option("collector", 2000, min=1)
    """Most messages inserted in one transaction."""
    collector_flush_interval: float = option("collector", 0.2, above=0)
    """Seconds a partial batch may wait before it is inserted."""
    collector_series_exemplars: int = option("collector", 5, min=1)
    """Request ids a series keeps: the most recent ones (GET messages-ext/series)."""
    collector_storm_rows_per_project: int = option("collector", 0, min=1, off=(0, "no limit"))
    """Rows stored per project per storm_window; occurrences beyond are not stored but counted on
    their series and in /metrics."""
    collector_storm_rows_per_event: int = option("collector", 0, min=1, off=(0, "no limit"))
    """Rows stored per (project, event id) per storm_window, as above."""
    collector_storm_window: int = option("collector", 60, min=1)
    """Seconds of storm control's window."""
    collector_embedded: bool = option("collector", True)
    """Run a collector inside `usermessages serve` (the embedded shape). Turn off when separate
    `usermessages collector` processes consume the bus."""
    collector_notification_mapping_file: str = option("collector", "")
    """INI file mapping OpenStack error notification event types to catalog entries; set, the
    collector also reads the OpenStack notification bus (on [bus] url). Empty: off."""
    collector_notifications_exchanges: str = option("collector", "openstack")
    """Comma-separated exchanges whose notifications.error and .critical are read (the services'
    control_exchange: openstack, cinder, nova...). The collector never declares them: it binds to
    each once the service has created it."""
    collector_notifications_topics: str = option("collector", "notifications")
    """Comma-separated notification topics read on those exchanges (oslo.messaging's
    [oslo_messaging_notifications] topics); add versioned_notifications for Nova's versioned
    format. Read one of Nova's two formats, not both: each failure is announced in both."""
    collector_metrics_host: str = option("collector", "127.0.0.1")
    """Address of `usermessages collector`'s Prometheus listener."""
    collector_metrics_port: int = option("collector", 0, min=1, max=MAX_PORT, off=(0, "off"))
    """Port of `usermessages collector`'s Prometheus listener (GET /metrics)."""
    # --- [zaqar]: Zaqar as a store and a source (docs/zaqar.md) ---
    zaqar_url: str = option("zaqar", "http://127.0.0.1:8888")
    """Zaqar v2 endpoint, for the zaqar sinks, `usermessages zaqar-collector` and `usermessages
    zaqar subscription`."""
    zaqar_queue: str = option("zaqar", "user_messages")
    """Queue holding each project's user messages (one per project, in that project)."""
    zaqar_admin_project: str = option("zaqar", "admin")
    """Zaqar project of admin-only (service, system) messages and of the index queue."""
    zaqar_index_queue: str = option("zaqar", "user_messages_projects")
    """Queue in admin_project where producers announce each project they post to, so collectors find
    the project queues; empty turns the index off."""
    zaqar_projects: str = option("zaqar", "")
    """Comma-separated projects the Zaqar collector always reads, besides the index."""
    zaqar_dead_letter_queue: str = option("zaqar", "user_messages_dead")
    """Queue, in the same project, receiving envelopes the collector cannot accept."""
    zaqar_timeout: float = option("zaqar", 2.0, above=0)
    """Seconds any one Zaqar request may take."""
    zaqar_max_message_ttl: int = option("zaqar", 1209600, min=1)
    """Zaqar's max_message_ttl: message_ttl is capped to it (and raised to 60 s)."""
    zaqar_claim_ttl: int = option("zaqar", 60, min=1)
    """Seconds a collector's claim holds messages; a collector dying after its claim gets them
    redelivered after this (at least 60)."""
    zaqar_poll_interval: float = option("zaqar", 1.0, above=0)
    """Seconds the Zaqar collector waits when every project queue was empty."""
    zaqar_auth_token: str = option("zaqar", "", secret=True)
    """X-Auth-Token sent to a Keystone-protected Zaqar; empty for a Zaqar without auth."""
    # --- [webhooks]: signed webhooks (docs/webhooks.md) ---
    webhooks_embedded: bool = option("webhooks", True)
    """Run the webhook deliverer inside `usermessages serve`. Turn off when a separate `usermessages
    webhook-deliverer` runs (several deliverers share the work safely)."""
    webhooks_allow_private_targets: bool = option("webhooks", False)
    """Allow webhook URLs resolving to loopback, private, link-local or reserved addresses (SSRF
    guard off). Only for closed test deployments."""
    webhooks_allowed_cidrs: str = option("webhooks", "")
    """Comma-separated networks (e.g. 10.20.0.0/16) webhooks may target although private; public
    addresses are always allowed."""
    webhooks_timeout: float = option("webhooks", 5.0, above=0)
    """Seconds one delivery attempt (connect, send, answer) may take in all, whatever the
    receiver does; redirects are not followed."""
    webhooks_workers: int = option("webhooks", 8, min=1)
    """Deliveries one deliverer makes at once, each to a different subscription. Failing or
    slow subscriptions share at most half of them; the rest serve the others, so a slow
    receiver delays only its own webhook."""
    webhooks_retry_base: float = option("webhooks", 2.0, above=0)
    """Seconds before the first retry of a failed delivery; doubled at each failure."""
    webhooks_retry_max: float = option("webhooks", 600.0, above=0)
    """Longest wait between two attempts, in seconds."""
    webhooks_disable_after_failures: int = option("webhooks", 15, min=1)
    """A subscription is disabled after this many consecutive failed attempts..."""
    webhooks_disable_after_hours: float = option("webhooks", 24.0, above=0)
    """...or once it has been failing for this many hours, whichever comes first."""
    webhooks_poll_interval: float = option("webhooks", 1.0, above=0)
    """Seconds the deliverer waits when no subscription had anything to send."""
    # Passed through as they are: keystonemiddleware's and oslo.policy's own options.
    keystone_authtoken: tuple[tuple[str, str], ...] = ()
    oslo_policy: tuple[tuple[str, str], ...] = ()
    # The options of LIBRARIES the file sets, as (namespace, section, name, value as
    # written): checked when the file is read, handed to those libraries by oslo_conf.
    library_options: tuple[tuple[str, str, str, str], ...] = ()

    def __post_init__(self) -> None:
        options.validate(self)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (command-line flags win over the file)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# Every option at its declared default: what code reads when it needs one.
DEFAULTS = Settings()
# Sections read by the libraries they belong to, with their own option sets.
PASSTHROUGH = ("keystone_authtoken", "oslo_policy")
# The oslo libraries the service runs that read their options from the same file, by
# their oslo-config-generator namespace: oslo.log ([DEFAULT] debug, log_file...),
# oslo.messaging (the audit notifications: [oslo_messaging_notifications], [DEFAULT]
# transport_url...) and oslo.middleware's healthcheck ([healthcheck]). The file is
# checked against their declarations as strictly as against ours.
LIBRARIES = ("oslo.log", "oslo.messaging", "oslo.middleware.healthcheck")

def check_ttl(ttl: int) -> int:
    """``ttl`` if it is a usable ``message_ttl``; else ConfigError (for the SDK and the
    collectors, which take a ttl without a Settings)."""
    return options.check(options.declaration(Settings, "message_ttl"), ttl)


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
    cfg = options.oslo().cfg

    raw = read_ini(path)
    conf = cfg.ConfigOpts()
    for group, opts in groups.items():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
        if raw.has_section(group):
            known = {name for opt in opts for name in names_of(opt, group)}
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


def names_of(opt: Any, section: str) -> list[str]:
    """The names an oslo.config option is read under in ``section``: its own, then the
    deprecated ones it still accepts there (oslo.log's ``logfile`` for ``log_file``)."""
    old = [d.name.replace("-", "_") for d in opt.deprecated_opts
           if (d.group or section) == section]
    return [opt.dest, *old]


def value(conf: Any, path: str | Path, section: str, name: str, kind: str) -> Any:
    """One option's typed value; a value oslo.config refuses is one line naming it."""
    cfg = options.oslo().cfg

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
    return any(section == name or (name.endswith(options.TEMPLATE)
                                   and section.startswith(name[:-len(options.TEMPLATE)] + ":"))
               for name in shared)

# Always read: cheap to import. oslo.messaging takes seconds (and eventlet) to import, so
# it is read only for a file that may set its options (see namespaces_for).
ALWAYS = ("oslo.log", "oslo.middleware.healthcheck")
MESSAGING = "oslo.messaging"


@functools.cache
def library_groups(namespace: str) -> dict[str, tuple[Any, ...]]:
    """The options of one of LIBRARIES by section (oslo's ``None`` group is DEFAULT),
    from its ``oslo.config.opts`` entry point."""
    from importlib.metadata import entry_points

    found = entry_points(group="oslo.config.opts", name=namespace)
    try:
        with warnings.catch_warnings():  # oslo.messaging's import of eventlet says it is old
            warnings.simplefilter("ignore")
            listed = next(iter(found)).load()()
    except (StopIteration, ImportError, AttributeError) as exc:
        raise ConfigError(f"the {namespace} config options do not load: {exc}") from exc
    groups: dict[str, tuple[Any, ...]] = {}
    for group, opts in listed:
        section = getattr(group, "name", group) or "DEFAULT"
        groups[section] = (*groups.get(section, ()), *opts)
    return groups


def namespaces_for(raw: configparser.ConfigParser) -> tuple[str, ...]:
    """The LIBRARIES a file may set options of: oslo.messaging only if it has one of its
    sections, or a [DEFAULT] option that is neither ours nor oslo.log's."""
    if any(section.startswith("oslo_messaging_") for section in raw.sections()):
        return (*ALWAYS, MESSAGING)
    if raw.has_section("DEFAULT"):
        known = {o.name for o in options.declared(Settings) if o.section == "DEFAULT"}
        known |= {name for opt in library_groups("oslo.log")["DEFAULT"]
                  for name in names_of(opt, "DEFAULT")}
        if set(raw.options("DEFAULT")) - known:
            return (*ALWAYS, MESSAGING)
    return ALWAYS


def _library_values(conf: Any, raw: configparser.ConfigParser, path: str | Path,
                    namespaces: tuple[str, ...]) -> tuple[tuple[str, str, str, str], ...]:
    """What the file sets of the libraries' options, each checked by its type now (a
    bad value is a start-up error, in one line), kept as written under its current
    name: (namespace, section, name, value)."""
    cfg = options.oslo().cfg
    found = []
    for namespace in namespaces:
        for section, opts in library_groups(namespace).items():
            if not raw.has_section(section):
                continue
            written = set(raw.options(section))
            for opt in opts:
                name = next((n for n in names_of(opt, section) if n in written), None)
                if name is None:
                    continue
                try:
                    got = conf[opt.dest] if section == "DEFAULT" else conf[section][opt.dest]
                except (cfg.Error, ValueError) as exc:
                    reason = " ".join(str(exc).split())[:160]
                    raise ConfigError(f"{path}: [{section}] {name} is not valid ({reason})") \
                        from exc
                if got is None and not isinstance(opt, cfg.StrOpt):
                    raise ConfigError(f"{path}: [{section}] {name} is empty")
                found.append((namespace, section, opt.dest,
                              raw.get(section, name, raw=True).strip()))
    return tuple(found)


def oslo_conf(settings: Settings) -> Any:
    """A ConfigOpts holding ``settings``, ours and the libraries' options, for the oslo
    libraries that read one (oslo.log, oslo.messaging, oslo.middleware's healthcheck
    and its plugins); each caller gets its own. oslo.messaging's options are there
    when the file set some."""
    cfg = options.oslo().cfg
    conf = cfg.ConfigOpts()
    declared = options.declared(Settings)
    namespaces = dict.fromkeys([*ALWAYS, *(entry[0] for entry in settings.library_options)])
    groups = [*options.oslo_groups(declared, reading=True),
              *(item for namespace in namespaces for item in library_groups(namespace).items())]
    for section, opts in groups:
        conf.register_opts(opts, group=None if section == "DEFAULT" else section)
    conf(args=[], project="usermessages", default_config_files=[], default_config_dirs=[],
         use_env=False)
    for one in declared:
        got = getattr(settings, one.attr)
        got = sorted(got) if isinstance(got, frozenset) else got
        # A value of ours is final: a `$` in it is no reference to another option.
        got = got.replace("$", "$$") if isinstance(got, str) else got
        conf.set_override(one.name, got, group=None if one.section == "DEFAULT" else one.section)
    for namespace, section, name, written in settings.library_options:
        opt = next(o for o in library_groups(namespace)[section] if o.dest == name)
        try:
            conf.set_override(name, [written] if isinstance(opt, cfg.MultiOpt) else written,
                              group=None if section == "DEFAULT" else section)
        except (cfg.Error, ValueError) as exc:
            raise ConfigError(f"[{section}] {name}: {' '.join(str(exc).split())[:160]}") from exc
    return conf


def list_opts() -> list[tuple[Any, list[Any]]]:
    """Our options by section: the ``oslo.config.opts`` entry point of namespace
    ``usermessages`` (``oslo-config-generator --namespace usermessages``)."""
    return options.oslo_groups(options.declared(Settings))


def read(conf: Any, path: str | Path, declared: tuple[options.Declared, ...],
         section: str | None = None) -> dict[str, Any]:
    """The typed values of ``declared`` in a file ``parse`` read, by attribute
    (``section`` when the declarations' is a template)."""
    values = {}
    for one in declared:
        kind = "list" if one.kind is frozenset else one.kind.__name__
        got = value(conf, path, section or one.section, one.name, kind)
        if one.kind is frozenset:
            got = frozenset(item.strip() for item in got if item.strip())
        values[one.attr] = got
    return values


def load(path: str | Path | None = None) -> Settings:
    """Read settings from an INI file; no file gives the defaults.

    Unknown sections or options are errors, except the sections of the programs
    sharing the file (see ``_shared_sections``) and the Keystone libraries' own.
    """
    if path is None:
        return DEFAULTS
    declared = options.declared(Settings)
    groups = dict(options.oslo_groups(declared, reading=True))
    namespaces = namespaces_for(read_ini(path))
    for namespace in namespaces:
        for section, opts in library_groups(namespace).items():
            groups[section] = [*groups.get(section, []), *opts]
    conf, raw = parse(path, groups)
    shared = _shared_sections()
    for section in raw.sections():
        if section in groups or section in PASSTHROUGH or _is_shared(section, shared):
            continue
        first = next(iter(raw.options(section)), None)
        raise ConfigError(f"{path}: unknown option [{section}] {first}" if first
                          else f"{path}: unknown section [{section}]")
    values: dict[str, Any] = read(conf, path, declared)
    values["library_options"] = _library_values(conf, raw, path, namespaces)
    for section in PASSTHROUGH:
        if raw.has_section(section):
            values[section] = tuple((k, v.strip()) for k, v in raw.items(section, raw=True))
    try:
        settings = Settings(**values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if settings.auth_strategy == "keystone" and not settings.keystone_authtoken:
        raise ConfigError(f"{path}: [api] auth_strategy = keystone needs a "
                          "[keystone_authtoken] section")
    return settings


def sample() -> str:
    """A commented config file with every option at its default, made by
    oslo-config-generator's machinery from every namespace of this distribution
    (ours first, then the programs sharing the file)."""
    import io

    cfg, generator = options.oslo().cfg, options.oslo().generator

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
    """docs/configuration.md: every option, its type, default and meaning."""
    lines = [
        "# Configuration", "",
        "One INI file, passed as `--config FILE` (or `USERMESSAGES_CONFIG`) to every command;",
        "command-line flags (`--db`, `--host`, `--port`) win over it. Unknown sections or",
        "options are start-up errors, and so is a value its type refuses (the type column:",
        "a flag's value too); each says what is wrong in one line. The sections of programs",
        "sharing the file (the reference service's `[blockstorage]` and `[backend:NAME]`,",
        "see [reference-service.md](reference-service.md)) are theirs to check.",
        "`usermessages config sample` prints a commented file with every option at its",
        "default, theirs included (it is oslo-config-generator's: `oslo-config-generator",
        "--namespace usermessages --namespace blockstorage` prints the same); this page",
        "is `usermessages config docs`. Names follow Cinder's where Cinder has the option;",
        "the file is read by oslo.config, so its habits hold (`$name` substitutes another",
        "option's value: write `$$` for a literal `$`). The two files it may name,",
        "`[catalog] overrides_file` and `[collector] notification_mapping_file`, are data",
        "(their keys are catalog ids and event types, not options): plain INI, no `$`.",
        "",
        "The file also takes the options of the oslo libraries the service runs, checked",
        "as strictly against their own declarations: logging in `[DEFAULT]` (oslo.log), the",
        "audit notifications' `[oslo_messaging_notifications]` (oslo.messaging) and the",
        "`[healthcheck]` endpoint (oslo.middleware); see [operations.md](operations.md).",
        "`oslo-config-generator " + " ".join(f"--namespace {name}" for name in LIBRARIES)
        + "`",
        "prints them.",
    ]
    return "\n".join([*lines, *options.markdown(options.declared(Settings)), "",
                      DATABASE_GUIDE.strip()]) + "\n"


# The end of docs/configuration.md. Its sql and haproxy blocks run in tests as written
# (tests/test_mariadb_docs.py; the Galera drill runs behind this very HAProxy stanza).
DATABASE_GUIDE = """
## MariaDB and Galera

The store runs on MariaDB 10.11 or later, alone or as a Galera cluster (what kolla-ansible
and OpenStack-Ansible deploy), with the URL OpenStack services use (PyMySQL, oslo.db's
default driver); every command, the API and the viewer answer as on PostgreSQL:

```ini
[database]
connection = mysql+pymysql://usermessages:SECRET@192.0.2.10/usermessages?charset=utf8mb4
```

Make the database and its account once, as the server's administrator. The service needs
these grants on its own database and nothing more: the migrations create tables and
indexes, and at run time the writers and the reaper split and drop the daily partitions
of `messages` (`ALTER`, `DROP`) besides reading and changing rows:

```sql
CREATE DATABASE usermessages CHARACTER SET utf8mb4;
CREATE USER 'usermessages'@'%' IDENTIFIED BY 'SECRET';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX
  ON usermessages.* TO 'usermessages'@'%';
```

then `usermessages db upgrade --db URL` (once, and after each upgrade of the service).
On MariaDB the tables compare strings byte for byte (`utf8mb4_nopad_bin`: case and
trailing spaces count, as on PostgreSQL), times keep their microseconds, and sessions run
in READ COMMITTED with strict SQL whatever the server's defaults. `messages` is
partitioned by expiry day (RANGE COLUMNS, then a `messages_pmax` partition): writers split
new days off it a week ahead; a reaper pass takes every day that expired whole out of it
(`CONVERT PARTITION ... TO TABLE`, a rename: listings wait for nothing longer), drops that
table, and deletes the rest in batches. One node reaps at a time by a lease row
(Galera replicates neither `GET_LOCK()` nor table locks; it certifies row changes, so of
two nodes taking the lease at once exactly one gets it).

### A Galera cluster behind HAProxy

Give the service HAProxy's address. HAProxy sends every connection to one node and keeps
the others as backups, as kolla-ansible configures it; this is the stanza we recommend
(and the one the tests' Galera drill runs behind):

```haproxy
listen mariadb
    bind 192.0.2.10:3306
    mode tcp
    option tcpka
    option mysql-check user haproxy post-41
    timeout client 3600s
    timeout server 3600s
    server db1 192.0.2.11:3306 check inter 500 rise 2 fall 2 on-marked-up shutdown-backup-sessions
    server db2 192.0.2.12:3306 check inter 500 rise 2 fall 2 backup
    server db3 192.0.2.13:3306 check inter 500 rise 2 fall 2 backup
```

It needs `CREATE USER 'haproxy'@'HAPROXY_HOST';` (no password, no grant) for its check.
Unlike kolla's `inter 2000 rise 2 fall 5` (10 s to notice a dead node), `inter 500 fall 2`
takes a dead node out in about a second; `on-marked-up shutdown-backup-sessions` cuts the
sessions left on a backup when the first node is back, so writes return to one node
instead of staying split over two. The check sees an open port, not Galera's state (a
node cut off from the others still passes it): kolla-ansible's clustercheck probe is
better where you run it.

When the active node dies, what was in flight gets "lost connection" (2013), even during
COMMIT, when the commit may or may not have happened. The writers (collectors, the SDK's
database sink) run the batch again on the next node and find whatever did commit: ids are
idempotent and a batch's series are counted in its own transaction, so nothing is stored
or counted twice, and nothing is lost (a collector acknowledges after commit). API and
viewer requests answer 503 within 2 x `[database] timeout` until HAProxy has moved (about
`inter` x `fall`) and Galera has evicted the dead node (`evs.suspect_timeout` + 1 s: 6 s
by default, 3 s with `PT2S`), then 200 again. The stored order (`seq`) stays strictly
increasing in commit order: it comes from one counter row, not from `AUTO_INCREMENT`
(which Galera steps by the cluster size, in no commit order).

Load-balancing writes over all nodes (round robin, no backups) loses nothing either, but
costs: every batch bumps that one counter row, so two batches committed on two nodes at
once conflict at certification, and one of them gets a deadlock error (1213); the writer
runs it again after a short random pause (up to 8 times, then the collector backs off and
retries the batch). It is no faster than one node, and the retries grow with the number
of collectors. Keep one active node for writes; reads may go anywhere, but a node can lag
the writer by a few milliseconds (`wsrep_sync_wait=0`).
"""
