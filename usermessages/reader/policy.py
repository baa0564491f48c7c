"""Authorization with oslo.policy: Cinder 29's rule names, defaults and deprecations.

The defaults are copied from Cinder 29's ``cinder/policies/base.py`` and
``messages.py``: the active rules are the "Xena" ones (the ``admin`` role in
any scope, or a reader/member of the target project), each with its deprecated
``rule:admin_or_owner`` that oslo.policy ORs in only when a deployer sets
``[oslo_policy] enforce_new_defaults = false``. Cinder's newer "Yoga" personas
(``system_reader_or_project_reader``...) are registered too, so a policy file
that switches ``message:*`` to them works; a deployer's Cinder policy file for
``message:*`` works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from usermessages import config
from usermessages.errors import ConfigError, Forbidden
from usermessages.reader.identity import Caller

GET_ALL = "message:get_all"
GET = "message:get"
DELETE = "message:delete"

# cinder/policies/base.py, Cinder 29.
_SYSTEM_ADMIN = "role:admin and system_scope:all"
_LEGACY_SYSTEM_ADMIN = "role:admin"
_SYSTEM_READER = "role:reader and system_scope:all"
_PROJECT_ADMIN = "role:admin and project_id:%(project_id)s"
_PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
_PROJECT_READER = "role:reader and project_id:%(project_id)s"
RULE_ADMIN_OR_OWNER = "rule:admin_or_owner"

BASE_RULES = (
    # legacy_rule_defaults
    policy.RuleDefault("admin_or_owner",
                       "is_admin:True or (role:admin and is_admin_project:True) or "
                       "project_id:%(project_id)s"),
    policy.RuleDefault("system_or_domain_or_project_admin",
                       "(role:admin and system_scope:all) or "
                       "(role:admin and domain_id:%(domain_id)s) or "
                       "(role:admin and project_id:%(project_id)s)"),
    # xena_rule_defaults
    policy.RuleDefault("context_is_admin", "role:admin", "Decides who is an admin."),
    policy.RuleDefault("admin_api", "is_admin:True or (role:admin and is_admin_project:True)"),
    policy.RuleDefault("xena_system_admin_or_project_reader",
                       f"({_LEGACY_SYSTEM_ADMIN}) or ({_PROJECT_READER})"),
    policy.RuleDefault("xena_system_admin_or_project_member",
                       f"({_LEGACY_SYSTEM_ADMIN}) or ({_PROJECT_MEMBER})"),
    # yoga_rule_defaults: not used by Cinder 29's defaults, there for policy files.
    policy.RuleDefault("system_reader_or_project_reader",
                       f"({_SYSTEM_READER}) or ({_PROJECT_READER})"),
    policy.RuleDefault("system_admin_or_project_member",
                       f"({_SYSTEM_ADMIN}) or ({_PROJECT_MEMBER})"),
    policy.RuleDefault("system_admin_or_project_admin",
                       f"({_SYSTEM_ADMIN}) or ({_PROJECT_ADMIN})"),
    policy.RuleDefault("system_admin_only", f"({_SYSTEM_ADMIN})"),
)


def _deprecated(name: str) -> policy.DeprecatedRule:
    return policy.DeprecatedRule(name, RULE_ADMIN_OR_OWNER, deprecated_reason=(
        "Default policies now support the three Keystone default roles."),
        deprecated_since="X")


MESSAGE_RULES = (
    policy.DocumentedRuleDefault(GET_ALL, "rule:xena_system_admin_or_project_reader",
                                 "List messages.", [{"method": "GET", "path": "/messages"}],
                                 deprecated_rule=_deprecated(GET_ALL)),
    policy.DocumentedRuleDefault(GET, "rule:xena_system_admin_or_project_reader",
                                 "Show message.",
                                 [{"method": "GET", "path": "/messages/{message_id}"}],
                                 deprecated_rule=_deprecated(GET)),
    policy.DocumentedRuleDefault(DELETE, "rule:xena_system_admin_or_project_member",
                                 "Delete message.",
                                 [{"method": "DELETE", "path": "/messages/{message_id}"}],
                                 deprecated_rule=_deprecated(DELETE)),
)
# Beyond Cinder: the extensions' rules, each operation its own, read as messages are read
# (a project's readers, admins) and changed as they are deleted (a project's members,
# admins). Lists in another shape (export, aggregates, the stream) also need
# message:get_all, so a deployer who restricts listing restricts them too.
_READ = "rule:xena_system_admin_or_project_reader"
_CHANGE = "rule:xena_system_admin_or_project_member"
_ALSO_LIST = " The caller also needs message:get_all."


def _paths(method: str, tail: str, *, project_less: bool = True) -> list[policy.Operation]:
    """An operation at ``/v3/{project_id}<tail>`` and, for an admin reading across
    projects, at ``/v3<tail>``."""
    found = [policy.Operation(method=method, path=f"/v3/{{project_id}}{tail}")]
    if project_less:
        found.append(policy.Operation(method=method, path=f"/v3{tail}"))
    return found


SERIES_GET_ALL = "message:series:get_all"
SERIES_GET = "message:series:get"
EXPORT = "message:export"
AGGREGATES = "message:aggregates"
STREAM = "message:stream"
WEBHOOKS_CREATE = "message:webhooks:create"
WEBHOOKS_GET_ALL = "message:webhooks:get_all"
WEBHOOKS_GET = "message:webhooks:get"
WEBHOOKS_DELETE = "message:webhooks:delete"
WEBHOOKS_DELIVERIES = "message:webhooks:deliveries"
# The one rule the webhook operations had before each had its own: a policy file that
# still sets it sets all five.
_WEBHOOKS_BEFORE = policy.DeprecatedRule(
    "message:webhooks", _CHANGE, deprecated_reason="Each webhook operation has its own rule.",
    deprecated_since="0.1.0")
SERIES_RULES = (
    policy.DocumentedRuleDefault(SERIES_GET_ALL, _READ,
                                 "List series of repeated messages.",
                                 _paths("GET", "/messages-ext/series")),
    policy.DocumentedRuleDefault(SERIES_GET, _READ, "Show a series of repeated messages.",
                                 _paths("GET", "/messages-ext/series/{series_id}")),
)
EXTENSION_RULES = (
    policy.DocumentedRuleDefault(
        EXPORT, _READ, "Download a filtered view of messages as NDJSON or CSV (also the "
        "Event Viewer's download buttons)." + _ALSO_LIST,
        _paths("GET", "/messages-ext/export")),
    policy.DocumentedRuleDefault(
        AGGREGATES, _READ, "Count messages by event, level, resource type and time."
        + _ALSO_LIST,
        _paths("GET", "/messages-ext/aggregates")),
    policy.DocumentedRuleDefault(
        STREAM, _READ, "Receive new messages as server-sent events (also the Event "
        "Viewer's live list)." + _ALSO_LIST,
        _paths("GET", "/messages-ext/stream")),
    # Members only, reading included: a webhook URL often carries its receiver's secret.
    policy.DocumentedRuleDefault(
        WEBHOOKS_CREATE, _CHANGE, "Subscribe a URL to the project's new messages (a signed "
        "webhook).", _paths("POST", "/messages-ext/webhooks", project_less=False),
        deprecated_rule=_WEBHOOKS_BEFORE),
    policy.DocumentedRuleDefault(
        WEBHOOKS_GET_ALL, _CHANGE, "List the project's webhooks (their URLs may hold "
        "secrets).", _paths("GET", "/messages-ext/webhooks", project_less=False),
        deprecated_rule=_WEBHOOKS_BEFORE),
    policy.DocumentedRuleDefault(
        WEBHOOKS_GET, _CHANGE, "Show a webhook.",
        _paths("GET", "/messages-ext/webhooks/{webhook_id}", project_less=False),
        deprecated_rule=_WEBHOOKS_BEFORE),
    policy.DocumentedRuleDefault(
        WEBHOOKS_DELETE, _CHANGE, "Delete a webhook.",
        _paths("DELETE", "/messages-ext/webhooks/{webhook_id}", project_less=False),
        deprecated_rule=_WEBHOOKS_BEFORE),
    policy.DocumentedRuleDefault(
        WEBHOOKS_DELIVERIES, _CHANGE, "Read a webhook's delivery log.",
        _paths("GET", "/messages-ext/webhooks/{webhook_id}/deliveries", project_less=False),
        deprecated_rule=_WEBHOOKS_BEFORE),
)
DEFAULT_RULES = BASE_RULES + MESSAGE_RULES + SERIES_RULES + EXTENSION_RULES
# oslo.policy 6 dropped enforce_scope (scope_types are always enforced, and
# Cinder's message rules have none); accepted so a Cinder [oslo_policy] carries over.
IGNORED_OPTIONS = ("enforce_scope",)
# Without a policy file, none is read (not a stray policy.yaml found in a config dir).
NO_FILE = "/nonexistent/usermessages-policy.yaml"


def list_rules() -> list[policy.RuleDefault]:
    """Every rule, with its default: the ``oslo.policy.policies`` entry point
    (``oslopolicy-sample-generator --namespace usermessages``)."""
    return list(DEFAULT_RULES)


def get_enforcer() -> policy.Enforcer:
    """The enforcer the service builds, for oslo.policy's tools (the
    ``oslo.policy.enforcer`` entry point): from the config file they were given
    (``--config-file``: its ``[api] policy_file`` and ``[oslo_policy]``), else the
    defaults. The tools parse their arguments into oslo.config's global CONF first,
    and some read the policy file's path back from it."""
    files = list(cfg.CONF.config_file or [])
    settings = config.load(files[-1]) if files else config.DEFAULTS
    return Policy(settings.policy_file, settings.oslo_policy, conf=cfg.CONF).enforcer


def _target(project_id: str | None, caller: Caller) -> dict:
    # No project means no project key: oslo.policy would otherwise compare the
    # string "None" with a system-scoped caller's project (None) and match.
    target: dict = {"user_id": caller.user_id}
    if project_id:
        target["project_id"] = project_id
    return target


class Policy:
    """Checks a caller against the rules; a denial raises Forbidden with Cinder's text."""

    def __init__(self, policy_file: str = "", options: Iterable[tuple[str, str]] = (),
                 conf: cfg.ConfigOpts | None = None) -> None:
        """``conf``: the ConfigOpts the enforcer reads (a fresh one unless given)."""
        if policy_file and not Path(policy_file).is_file():
            raise ConfigError(f"policy file {policy_file} does not exist")
        if conf is None:
            conf = cfg.ConfigOpts()
            conf([], project="usermessages", default_config_files=[], default_config_dirs=[])
        self._enforcer = policy.Enforcer(conf, policy_file=policy_file or NO_FILE)
        # [api] policy_file is [oslo_policy] policy_file, for whoever reads it from there.
        conf.set_override("policy_file", policy_file or NO_FILE, group="oslo_policy")
        for name, value in options:
            if name in IGNORED_OPTIONS:
                continue
            try:
                conf.set_override(name, value, group="oslo_policy")
            except (cfg.NoSuchOptError, ValueError) as exc:
                raise ConfigError(f"[oslo_policy] {name}: {exc}") from exc
        self._enforcer.suppress_deprecation_warnings = True
        self._enforcer.register_defaults(DEFAULT_RULES)
        try:
            self._enforcer.load_rules()
        except Exception as exc:  # oslo.policy raises a variety for broken files
            raise ConfigError(f"cannot load policy file {policy_file}: {exc}") from exc

    @property
    def enforcer(self) -> policy.Enforcer:
        return self._enforcer

    def is_admin(self, caller: Caller) -> bool:
        return bool(self._enforcer.enforce("context_is_admin", {}, caller.credentials))

    def sees_all_projects(self, caller: Caller, auth_strategy: str) -> bool:
        """Who reads across projects (the rules still decide whether they read at all).

        With Keystone, only a system-scoped token: a project token, even an
        admin's, stays in its project. With noauth, Cinder's admin.
        """
        if auth_strategy == "keystone":
            return caller.system_scope == "all"
        return self.is_admin(caller)

    def allows(self, rule: str, caller: Caller, target_project: str | None) -> bool:
        return bool(self._enforcer.enforce(rule, _target(target_project, caller),
                                           caller.credentials))

    def authorize(self, rule: str, caller: Caller, target_project: str | None) -> None:
        if not self.allows(rule, caller, target_project):
            raise Forbidden(f"Policy doesn't allow {rule} to be performed.")
