"""Authorization with oslo.policy, using Cinder's rule names and current defaults.

A deployer's Cinder policy file for ``message:*`` works here unchanged.
"""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from usermessages.api.auth import Caller
from usermessages.errors import ConfigError, Forbidden

GET_ALL = "message:get_all"
GET = "message:get"
DELETE = "message:delete"

_READER = "(role:admin) or (role:reader and project_id:%(project_id)s)"
_MEMBER = "(role:admin) or (role:member and project_id:%(project_id)s)"

DEFAULT_RULES = (
    policy.RuleDefault("context_is_admin", "role:admin", "Decides who is an admin."),
    policy.RuleDefault("admin_api", "rule:context_is_admin"),
    policy.RuleDefault("xena_system_admin_or_project_reader", _READER),
    policy.RuleDefault("xena_system_admin_or_project_member", _MEMBER),
    policy.RuleDefault(GET_ALL, "rule:xena_system_admin_or_project_reader", "List messages."),
    policy.RuleDefault(GET, "rule:xena_system_admin_or_project_reader", "Show a message."),
    policy.RuleDefault(DELETE, "rule:xena_system_admin_or_project_member", "Delete a message."),
)


class Policy:
    """Checks a caller against the rules; a denial raises Forbidden with Cinder's text."""

    def __init__(self, policy_file: str = "") -> None:
        if policy_file and not Path(policy_file).is_file():
            raise ConfigError(f"policy file {policy_file} does not exist")
        conf = cfg.ConfigOpts()
        conf([], project="usermessages", default_config_files=[], default_config_dirs=[])
        self._enforcer = policy.Enforcer(
            conf, policy_file=policy_file or "/nonexistent/usermessages-policy.yaml"
        )
        self._enforcer.register_defaults(DEFAULT_RULES)
        try:
            self._enforcer.load_rules()
        except Exception as exc:  # oslo.policy raises a variety for broken files
            raise ConfigError(f"cannot load policy file {policy_file}: {exc}") from exc

    def is_admin(self, caller: Caller) -> bool:
        return bool(self._enforcer.enforce("context_is_admin", {}, caller.credentials))

    def authorize(self, rule: str, caller: Caller, target_project: str | None) -> None:
        target = {"project_id": target_project, "user_id": caller.user_id}
        if not self._enforcer.enforce(rule, target, caller.credentials):
            raise Forbidden(f"Policy doesn't allow {rule} to be performed.")
