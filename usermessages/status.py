"""``usermessages-status upgrade check``: is this deployment ready for this release?

oslo.upgradecheck's command, as every OpenStack service has one (``nova-status``,
``cinder-status``). Run it with the new release installed, after ``usermessages
db upgrade`` and before restarting the services on it. It reads the service's
config file (``--config-file``, else ``USERMESSAGES_CONFIG``, else oslo.config's
default places) and prints a table, or JSON with ``--json``. Its exit code is
the community goal's: 0 every check passed, 1 a warning (read it, then go on),
2 a failure (do not go on), 255 the checks could not run (a config file that
does not load, an unexpected error), said in one line.

The checks (docs/operations.md says what to do about each result):

* Database schema: at this release's head; failure when behind, unknown or empty.
* Partitions: PostgreSQL's daily partitions; failure when the next days' inserts
  have none and the database user cannot make them; warning when days that
  expired whole are still there (no reaper is running).
* Pack format: every live collector reads the packs this release's producers
  send (failure if one does not: it would dead-letter them); warning when no
  collector announced itself lately, so nothing can be told.
* Collector versions: every live collector runs this release (warning if not);
  failure when one was built for another schema than the database is at.
* Deprecated options: options the file sets that are deprecated, renamed or
  ignored (warning; they still work).
* Policy File JSON to YAML Migration: oslo.upgradecheck's own check.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_upgradecheck import common_checks, upgradecheck
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from usermessages import config, envelope, logs
from usermessages.errors import UserMessagesError
from usermessages.reader.policy import IGNORED_OPTIONS
from usermessages.store import collectors, deadline, migrate, partitions
from usermessages.store import engine as store_engine
from usermessages.store.messages import utcnow

Code = upgradecheck.Code
Result = upgradecheck.Result
PROJECT = "usermessages"
# Seconds any one query of the checks may take: a frozen server fails the check.
QUERY_TIMEOUT = 30.0
# The sections passed through to the libraries that own them, by their namespace.
PASSTHROUGH_NAMESPACES = {"keystone_authtoken": "keystonemiddleware.auth_token",
                          "oslo_policy": "oslo.policy"}


def _store(check: Callable[[Checks, Engine], Result]) -> Callable[[Checks], Result]:
    """A check that reads the store: a store that cannot be read fails it, in one line."""
    def run(self: Checks) -> Result:
        try:
            deadline.begin(QUERY_TIMEOUT)
            return check(self, self.engine)
        except (DBAPIError, UserMessagesError) as exc:  # down, refused, no such table...
            reason = exc.orig if isinstance(exc, DBAPIError) else exc
            lines = str(reason).strip().splitlines()
            return Result(Code.FAILURE, f"cannot read the database at {self.where()}: "
                                        f"{lines[0] if lines else type(reason).__name__}")

    run.__doc__ = check.__doc__
    return run


class Checks(upgradecheck.UpgradeCommands):
    """The checks, over the settings of the config file the command was given."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self._conf = conf
        self._settings: config.Settings | None = None
        self._path: str | None = None
        self._engine: Engine | None = None

    # --- what the checks read ------------------------------------------------

    def load(self) -> None:
        """Read the config file (raises ConfigError) and set logging up from it."""
        files = list(self._conf.config_file or [])
        self._path = files[-1] if files else os.environ.get("USERMESSAGES_CONFIG") or None
        self._settings = config.load(self._path)
        logs.setup(self._settings)

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self.load()
        assert self._settings is not None
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = store_engine.connect(self.settings.database_connection,
                                                timeout=QUERY_TIMEOUT)
        return self._engine

    def where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # --- the checks ------------------------------------------------------------

    @_store
    def _schema(self, engine: Engine) -> Result:
        """The database schema is this release's."""
        current, head = migrate.current(engine), migrate.head()
        if current == head:
            return Result(Code.SUCCESS, f"at revision {head}")
        if current is None:
            return Result(Code.FAILURE, "the database has no schema: run `usermessages db "
                                        "upgrade`")
        if migrate.is_known(current):
            return Result(Code.FAILURE, f"at revision {current}; this release needs {head}: "
                                        "run `usermessages db upgrade`")
        return Result(Code.FAILURE, f"at revision {current}, which this release does not know "
                                    f"(its head is {head}): is the database a newer release's?")

    @_store
    def _partitions(self, engine: Engine) -> Result:
        """The days inserts need have their partition, or can get one."""
        if engine.dialect.name != "postgresql":
            return Result(Code.SUCCESS, "SQLite keeps one table: no partitions")
        now = utcnow()
        with engine.connect() as conn:
            if not partitions.is_partitioned(conn):
                return Result(Code.FAILURE, "the messages table is not partitioned (migration "
                                            "0004): run `usermessages db upgrade`")
            days = {d for d in map(partitions.day_of_name, partitions.attached(conn)) if d}
            able = partitions.can_make(conn)
        # Today's and tomorrow's inserts.
        missing = [d for d in partitions.expiry_days(now, self.settings.message_ttl, 1)
                   if d not in days]
        if missing and not able:
            return Result(Code.FAILURE, (
                f"no partition for messages expiring on {_days(missing)}, and the database "
                "user may not make one (it needs CREATE on the schema and the messages "
                "table's owner's role): inserts will fail. Run `usermessages db upgrade` as "
                f"the owner: it makes the next {partitions.AHEAD_DAYS} days ahead"))
        expired = sorted(d for d in days if dt.datetime.combine(d, dt.time()) +
                         dt.timedelta(days=1) <= now)
        if expired:
            return Result(Code.WARNING, (
                f"{len(expired)} partition(s) hold only expired messages (from {expired[0]}): "
                "no reaper has run since; is [DEFAULT] message_reap_interval -1 on every "
                "node running `usermessages serve`?"))
        made = "made" if not missing else "made on demand by the first insert of the day"
        return Result(Code.SUCCESS, f"{len(days)} daily partition(s); those of the next "
                                    f"days' inserts are {made}")

    def _live(self, engine: Engine) -> list[collectors.Announcement]:
        with engine.connect() as conn:
            return collectors.seen_since(conn, utcnow() - collectors.LIVE)

    def _none_live(self) -> Result:
        return Result(Code.WARNING, (
            f"no collector announced itself in the last {collectors.LIVE.seconds // 60} "
            "minutes (a consuming collector does every minute): none is running, or they "
            "run a release from before announcements, so nothing can be told"))

    @_store
    def _pack_format(self, engine: Engine) -> Result:
        """Every live collector reads what this release's producers send."""
        live = self._live(engine)
        if not live:
            return self._none_live()
        unable = [c for c in live if envelope.PACK_FORMAT not in c.reads]
        if unable:
            return Result(Code.FAILURE, (
                f"{_names(unable)} read {', '.join(sorted({' '.join(c.reads) for c in unable}))}"
                f", not {envelope.PACK_FORMAT}, which this release's producers send: they "
                "would dead-letter every pack. Upgrade the collectors first"))
        return Result(Code.SUCCESS, f"{len(live)} live collector(s) read {envelope.PACK_FORMAT}")

    @_store
    def _collector_versions(self, engine: Engine) -> Result:
        """Every live collector runs this release, on the database's schema."""
        live = self._live(engine)
        if not live:
            return self._none_live()
        schema = migrate.current(engine)
        strangers = [c for c in live if c.schema != schema]
        if strangers:
            return Result(Code.FAILURE, (
                f"{_names(strangers)} run a release built for schema "
                f"{', '.join(sorted({c.schema for c in strangers}))}, the database is at "
                f"{schema}: restart them on this release"))
        mine = version("usermessages")
        older = [c for c in live if c.version != mine]
        if older:
            return Result(Code.WARNING, (
                f"{_names(older)} run {', '.join(sorted({c.version for c in older}))}; this "
                f"release is {mine}: upgrade them"))
        return Result(Code.SUCCESS, f"{len(live)} live collector(s) run {mine}")

    def _deprecated(self) -> Result:
        """The file sets no deprecated, renamed or ignored option."""
        found = deprecations(self._path) if self._path else []
        if not found:
            return Result(Code.SUCCESS)
        return Result(Code.WARNING, "; ".join(found))

    def _policy_json(self) -> Result:
        """oslo.upgradecheck's: a JSON policy file is deprecated."""
        if not self.settings.policy_file:
            return Result(Code.SUCCESS, "no policy file: the defaults")
        conf = cfg.ConfigOpts()
        conf([], project=PROJECT, default_config_files=[], default_config_dirs=[])
        policy_opts.set_defaults(conf, policy_file=str(Path(self.settings.policy_file)
                                                       .resolve()))
        return common_checks.check_policy_json(self, conf)

    _upgrade_checks = (
        ("Database schema", _schema),
        ("Partitions", _partitions),
        ("Pack format", _pack_format),
        ("Collector versions", _collector_versions),
        ("Deprecated options", _deprecated),
        ("Policy File JSON to YAML Migration", _policy_json),
    )


def _days(days: list[dt.date]) -> str:
    return ", ".join(day.isoformat() for day in days)


def _names(found: list[collectors.Announcement]) -> str:
    shown = ", ".join(f"{c.name} ({c.version})" for c in found[:5])
    return shown + (f" and {len(found) - 5} more" if len(found) > 5 else "")


def deprecations(path: str | Path) -> list[str]:
    """What a config file sets that its owner deprecated: renamed options (read under
    their new name), options deprecated for removal, oslo.policy options we ignore,
    and Cinder's deprecated policy defaults switched back on."""
    raw = config.read_ini(path)
    found = []
    namespaces = {section: [namespace] for section, namespace in PASSTHROUGH_NAMESPACES.items()}
    for namespace in config.namespaces_for(raw):
        for section in config.library_groups(namespace):
            namespaces.setdefault(section, []).append(namespace)
    for section in raw.sections():
        written = set(raw.options(section))
        for namespace in namespaces.get(section, []):
            for opt in config.library_groups(namespace).get(section, ()):
                current, *old = config.names_of(opt, section)
                for name in old:
                    if name in written:
                        found.append(f"[{section}] {name} is now {current} ({namespace})")
                if opt.deprecated_for_removal and written & {current, *old}:
                    reason = opt.deprecated_reason or "it will be removed"
                    found.append(f"[{section}] {current} is deprecated for removal "
                                 f"({namespace}): {' '.join(reason.split())}")
    if raw.has_section("oslo_policy"):
        for name in IGNORED_OPTIONS:
            if raw.has_option("oslo_policy", name):
                found.append(f"[oslo_policy] {name} is ignored: oslo.policy 6 always enforces "
                             "scopes")
        if raw.get("oslo_policy", "enforce_new_defaults", fallback="true").strip().lower() in (
                "false", "0", "no", "off"):
            found.append("[oslo_policy] enforce_new_defaults = false brings back Cinder's "
                         "deprecated rule:admin_or_owner, which a future release drops")
    return found


def main(argv: list[str] | None = None) -> int:
    """``usermessages-status``: oslo.upgradecheck's command line, our errors in one line."""
    conf = cfg.ConfigOpts()
    checks = Checks(conf)
    upgradecheck.register_cli_options(conf, checks)
    from_env = os.environ.get("USERMESSAGES_CONFIG")
    try:
        conf(args=sys.argv[1:] if argv is None else argv, project=PROJECT,
             default_config_files=[from_env] if from_env else None)
    except cfg.Error as exc:  # a file oslo.config cannot even parse
        print(f"Error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 255
    # oslo.upgradecheck's own main keeps the parsed options here (its --json reads them).
    upgradecheck.CONF = conf
    try:
        checks.load()
        return int(conf.command.action_fn())
    except UserMessagesError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 255
    except Exception as exc:  # the goal's 255: the checks could not run
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"Error: the checks could not run: {type(exc).__name__}: {first}",
              file=sys.stderr)
        return 255


if __name__ == "__main__":
    sys.exit(main())
