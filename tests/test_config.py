"""Settings: every option declared once, documented, and strictly parsed."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from usermessages import config
from usermessages.errors import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_option_has_a_settings_field_with_the_same_default():
    defaults = {f.name: f.default for f in dataclasses.fields(config.Settings)
                if f.name not in config.PASSTHROUGH}
    declared = {config._attr(o): o.default for o in config.OPTIONS}
    assert declared == defaults


def test_every_option_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    for option in config.OPTIONS:
        assert text == config.markdown(), "regenerate: usermessages config docs > docs/configuration.md"


def test_sample_round_trips_to_the_defaults(tmp_path):
    sample = config.sample()
    path = tmp_path / "sample.conf"
    # Uncomment every option: the sample's values are the defaults.
    path.write_text("\n".join(
        line[1:] if line.startswith("#") and " = " in line else line
        for line in sample.splitlines()
    ))
    assert config.load(path) == config.Settings()


def test_file_values_are_typed(tmp_path):
    path = tmp_path / "u.conf"
    path.write_text(
        "[DEFAULT]\nmessage_ttl = 60\nmessage_reap_interval = -1\n"
        "[database]\nconnection = sqlite:///x.sqlite\n"
        "[api]\nport = 9999\ntrust_roles_header = yes\n"
    )
    settings = config.load(path)
    assert (settings.message_ttl, settings.message_reap_interval) == (60, -1)
    assert settings.database_connection == "sqlite:///x.sqlite"
    assert (settings.port, settings.trust_roles_header) == (9999, True)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[DEFAULT]\nmessage_tll = 5\n", "unknown option [DEFAULT] message_tll"),
        ("[api]\nport = eighty\n", "is not a valid int"),
        ("[api]\ntrust_roles_header = maybe\n", "is not a valid bool"),
        ("[DEFAULT]\nmessage_reap_batch_size = 0\n", "must be positive"),
        ("[sdk]\nsink = kafka\n", "must be one of db, bus, both"),
        ("[DEFAULT]\nmessage_reap_interval = -5\n", "or -1 to disable"),
        ("[nosuch]\nx = 1\n", "unknown option [nosuch] x"),
        ("garbage", "cannot read config file"),
    ],
)
def test_bad_files_fail_clearly(tmp_path, content, complaint):
    path = tmp_path / "bad.conf"
    path.write_text(content)
    with pytest.raises(ConfigError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        config.load(path)


def test_flags_override_the_file():
    settings = config.Settings().replace(port=1234, host=None)
    assert settings.port == 1234 and settings.host == "127.0.0.1"


def test_keystone_sections_pass_through_to_their_libraries(tmp_path):
    path = tmp_path / "u.conf"
    path.write_text("[api]\nauth_strategy = keystone\n\n[keystone_authtoken]\n"
                    "www_authenticate_uri = http://ks:5000/v3\nauth_type = password\n"
                    "token_cache_time = -1\n\n[oslo_policy]\nenforce_new_defaults = false\n\n"
                    "[viewer]\nsecure_cookie = true\n")
    settings = config.load(path)
    assert settings.auth_strategy == "keystone" and settings.viewer_secure_cookie is True
    assert dict(settings.keystone_authtoken) == {
        "www_authenticate_uri": "http://ks:5000/v3", "auth_type": "password",
        "token_cache_time": "-1"}
    assert settings.oslo_policy == (("enforce_new_defaults", "false"),)


@pytest.mark.parametrize(("text", "error"), [
    ("[api]\nauth_strategy = keystone\n", "needs a [keystone_authtoken] section"),
    ("[api]\nauth_strategy = ldap\n", "auth_strategy must be one of noauth, keystone"),
    ("[api]\nmetrics = everyone\n", "metrics must be one of public, admin, off"),
    ("[api]\nmetrics_port = 70000\n", "metrics_port must be 0"),
])
def test_bad_auth_and_metrics_options(tmp_path, text, error):
    path = tmp_path / "u.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(error)):
        config.load(path)
