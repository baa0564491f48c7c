"""oslopolicy-checker on the policy in force and a real Keystone token, as a deployer
checks who may do what before rolling a policy file out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness.cloud import Cloud

BIN = Path(sys.executable).parent


def _token_body(cloud: Cloud, token: str) -> dict:
    """Keystone's answer to GET /v3/auth/tokens: the token as oslopolicy-checker reads it."""
    assert cloud.admin is not None
    answer = cloud.admin.session.get(f"{cloud.auth_url}/auth/tokens",
                                     headers={"X-Subject-Token": token})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_checker_says_who_may_with_the_policy_in_force(cloud: Cloud, tmp_path: Path) -> None:
    policy_file = tmp_path / "overrides.yaml"
    policy_file.write_text('"message:export": "rule:context_is_admin"\n')
    conf = tmp_path / "usermessages.conf"
    conf.write_text(f"[api]\npolicy_file = {policy_file}\n")
    in_force = tmp_path / "policy.yaml"
    generated = subprocess.run(
        [str(BIN / "oslopolicy-policy-generator"), "--namespace", "usermessages",
         "--config-file", str(conf), "--output-file", str(in_force)],
        capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stderr
    expected = {
        # user: the rules the checker passes, of these four
        "reader": {"message:get_all", "message:aggregates"},
        "member": {"message:get_all", "message:aggregates", "message:webhooks:create"},
        "project_admin": {"message:get_all", "message:aggregates", "message:webhooks:create",
                          "message:export"},
    }
    for user, passes in expected.items():
        access = tmp_path / f"{user}.json"
        access.write_text(json.dumps(_token_body(cloud, cloud.token(user, "alpha"))))
        for rule in ("message:get_all", "message:aggregates", "message:webhooks:create",
                     "message:export"):
            ran = subprocess.run(
                [str(BIN / "oslopolicy-checker"), "--policy", str(in_force), "--access",
                 str(access), "--rule", rule], capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, ran.stderr
            verdict = "passed" if rule in passes else "failed"
            assert ran.stdout.strip() == f"{verdict}: {rule}", (user, ran.stdout)
