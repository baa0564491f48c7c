"""docs/policy.md, written from the registered rules (``usermessages policy docs``).

A test keeps the page equal to what this prints. The personas table is not
written by hand either: each cell is the real enforcer's answer, with the
default rules, for a token of that persona (Keystone's roles, admin implying
member implying reader) on a message of its own project, or of any project for
a system-scoped token.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

from usermessages.reader.identity import Caller
from usermessages.reader.policy import (
    BASE_RULES,
    DEFAULT_RULES,
    MESSAGE_RULES,
    Policy,
)

PROJECT = "0000aaaa"
PERSONAS = (
    ("project reader", Caller("reader", PROJECT, ("reader",))),
    ("project member", Caller("member", PROJECT, ("member", "reader"))),
    ("project admin", Caller("project-admin", PROJECT, ("admin", "member", "reader"))),
    ("system reader", Caller("system-reader", "", ("reader",), system_scope="all")),
    ("system admin", Caller("system-admin", "", ("admin", "member", "reader"),
                            system_scope="all")),
)
INTRO = """\
# Policy

Who may do what is decided by oslo.policy, with Cinder 29's rules for Cinder's own
`message:*` operations (unchanged: see README's tables) and one rule per operation of
the extensions. A deployer overrides any rule in a YAML file named by `[api] policy_file`
(oslo.policy's `[oslo_policy]` options apply too, e.g. `enforce_new_defaults = false`).
This page is `usermessages policy docs`; a test keeps it equal to the registered rules.

oslo.policy's tools know the rules (entry points `oslo.policy.policies` and
`oslo.policy.enforcer`, namespace `usermessages`); `--config-file` is the service's
config file, whose `[api] policy_file` they read:

```sh
oslopolicy-sample-generator --namespace usermessages --output-file policy.yaml.sample
oslopolicy-policy-generator --namespace usermessages --config-file usermessages.conf \\
    --output-file policy.yaml
oslopolicy-checker --policy policy.yaml --access token.json --rule message:export
oslopolicy-list-redundant --namespace usermessages --config-file usermessages.conf
```

The sample lists every rule with its default, description and operations, commented
out; the policy generator writes the policy in force (the file's overrides and the
other defaults), which `oslopolicy-checker` evaluates for a token (`token.json`:
Keystone's answer to `GET /v3/auth/tokens`, `{"token": {...}}`); `list-redundant`
names the overrides equal to their default.
"""


def _mark(allowed: bool) -> str:
    return "yes" if allowed else "-"


def personas_table(policy: Policy) -> list[str]:
    lines = ["| rule | " + " | ".join(name for name, _ in PERSONAS) + " |",
             "|---|" + "---|" * len(PERSONAS)]
    for rule in (*MESSAGE_RULES, *[r for r in DEFAULT_RULES if r not in BASE_RULES
                                   and r not in MESSAGE_RULES]):
        cells = [_mark(policy.allows(rule.name, caller, PROJECT)) for _, caller in PERSONAS]
        lines.append(f"| `{rule.name}` | " + " | ".join(cells) + " |")
    return lines


def _operations(rule: oslo_policy.RuleDefault) -> str:
    if not isinstance(rule, oslo_policy.DocumentedRuleDefault):
        return ""
    return "<br>".join(f"`{op['method']} {op['path']}`" for op in rule.operations)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The page: the personas' answers, then every rule and every base rule."""
    policy = Policy()
    lines = [INTRO, "## Who may, with the default rules", "",
             "Each rule alone, for a token of each persona on a message of its project "
             "(a system token: of any project). With Keystone, only a system-scoped token "
             "reads across projects (`/v3/messages...`); a project token, even an admin's, "
             "stays in its project.", "", *personas_table(policy), "",
             "## The rules", "",
             "| rule | default | operations | description |", "|---|---|---|---|"]
    for rule in DEFAULT_RULES:
        if rule in BASE_RULES:
            continue
        description = rule.description or ""
        if rule.deprecated_rule is not None and rule.deprecated_rule.name != rule.name:
            description += (f" Replaces `{rule.deprecated_rule.name}`: a policy file that "
                            "sets it still sets this rule.")
        lines.append(f"| `{rule.name}` | `{_cell(rule.check_str)}` | {_operations(rule)} | "
                     f"{_cell(description)} |")
    lines += ["", "## The rules they are made of", "",
              "Cinder 29's base rules, named in the defaults above and usable in a policy "
              "file.", "", "| rule | default |", "|---|---|"]
    lines += [f"| `{rule.name}` | `{_cell(rule.check_str)}` |" for rule in BASE_RULES]
    return "\n".join(lines) + "\n"
