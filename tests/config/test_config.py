"""Settings: every option declared once, documented, and strictly parsed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usermessages import config, options
from usermessages.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "configuration.md"
DECLARED = options.declared(config.Settings)


def test_every_option_is_documented():
    text = DOCS.read_text(encoding="utf-8")
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
        ("[DEFAULT]\nmessage_reap_interval = -5\n", "must be -1 (no reaper) or positive, not -5"),
        ("[collector]\nstorm_rows_per_event = -1\n", "storm_rows_per_event must be 0"),
        ("[collector]\nstorm_window = 0\n", "[collector] storm_window must be positive"),
        ("[collector]\nseries_exemplars = 0\n", "must be positive"),
        ("[nosuch]\nx = 1\n", "unknown option [nosuch] x"),
        ("[api]\nPort = 1234\n", "unknown option [api] Port"),
        ("garbage", "line 1: 'garbage' comes before any [section] header"),
        ("message_ttl = 5\n", "line 1: 'message_ttl = 5' comes before any [section] header"),
        ("[api]\nport = 1\nport = 2\n", "line 3: [api] port appears twice"),
        ("[api]\n[api]\n", "line 2: section [api] appears twice"),
        ("[api]\nauth_strategy = keystone\n", "needs a [keystone_authtoken] section"),
        ("[api]\nauth_strategy = ldap\n", "auth_strategy must be one of noauth, keystone"),
        ("[api]\nmetrics = everyone\n", "metrics must be one of public, admin, off"),
        ("[api]\nmetrics_port = 70000\n", "metrics_port must be 0 (off) or from 1 to 65535"),
    ],
)
def test_bad_files_fail_clearly(tmp_path, content, complaint):
    path = tmp_path / "bad.conf"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(complaint)) as caught:
        config.load(path)
    assert "\n" not in str(caught.value)


def test_flags_override_the_file():
    settings = config.Settings().replace(port=1234, host=None)
    assert settings.port == 1234 and settings.host == "127.0.0.1"


def test_config_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("message_ttl = 5\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert "\n" not in str(caught.value)


SHARED = """\
[DEFAULT]
message_ttl = 60
[database]
connection = sqlite:///{tmp}/um.sqlite
[blockstorage]
connection = sqlite:///{tmp}/bs.sqlite
operation_deadline = 30
[backend:gold]
total_capacity_gb = 10
fail_operations = attach_volume
"""


def test_one_file_for_every_component(tmp_path):
    """The reference service's sections are another program's: every usermessages
    command reads the same file, and still refuses a misspelt section of its own."""
    from blockstorage import config as storage_config

    path = tmp_path / "shared.conf"
    path.write_text(SHARED.format(tmp=tmp_path))
    assert config.load(path).message_ttl == 60
    assert storage_config.load(path).operation_deadline == 30
    path.write_text(SHARED.format(tmp=tmp_path) + "[databse]\nconnection = x\n")
    with pytest.raises(ConfigError, match=r"unknown option \[databse\] connection"):
        config.load(path)


@pytest.mark.parametrize("command", [["reap"], ["db", "upgrade"], ["catalog", "list"]])
def test_commands_accept_the_shared_file(tmp_path, command):
    from click.testing import CliRunner

    from usermessages.cli.main import main

    path = tmp_path / "shared.conf"
    path.write_text(SHARED.format(tmp=tmp_path))
    if command == ["reap"]:
        assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(path)]).exit_code == 0
    result = CliRunner().invoke(main, [*command, "--config", str(path)])
    assert result.exit_code == 0, result.output


def test_sample_shows_the_shared_sections_and_they_load(tmp_path):
    from blockstorage import config as storage_config

    sample = config.sample()
    assert "[blockstorage]" in sample and "[backend:name]" in sample
    assert "#operation_deadline = 120.0" in sample and "fail_operations" in sample
    path = tmp_path / "sample.conf"
    path.write_text("\n".join(
        line[1:] if line.startswith("#") and " = " in line else line
        for line in sample.splitlines()
    ))
    # The [backend:name] template, uncommented, is one pool named "name" at the defaults.
    assert storage_config.load(path) == storage_config.StorageSettings(
        backends=(storage_config.Backend("name"),))


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


def test_oslo_config_generator_prints_our_sample():
    """The sample is oslo-config-generator's, from our oslo.config.opts entry points."""
    import subprocess
    import sys

    generator = Path(sys.executable).parent / "oslo-config-generator"
    printed = subprocess.run(
        [str(generator), "--namespace", "usermessages", "--namespace", "blockstorage"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    assert printed == config.sample()
    assert "#message_ttl = 2592000" in printed and "#operation_deadline = 120.0" in printed


def test_values_are_read_with_oslo_config_habits(tmp_path):
    path = tmp_path / "u.conf"
    path.write_text("[database]\nconnection = sqlite:///a$$b.sqlite\n"
                    "[api]\nhost = 10.0.0.1\npublic_endpoint = http://$host:8776\n")
    settings = config.load(path)
    assert settings.database_connection == "sqlite:///a$b.sqlite"
    assert settings.public_endpoint == "http://10.0.0.1:8776"


@pytest.mark.parametrize(("text", "error"), [
    ("[backend:gold]\ntotal_capacity_gb = lots\n",
     "[backend:gold] total_capacity_gb is not a valid int"),
    ("[backend:gold]\ntotal_capasity_gb = 5\n", "unknown option [backend:gold] total_capasity_gb"),
    ("[blockstorage]\noperation_deadline = soon\n",
     "[blockstorage] operation_deadline is not a valid float"),
    ("[backend:gold]\nfail_operations = explode, attach_volume\n",
     "[backend:gold] fail_operations must be some of create_volume, delete_volume"),
    ("[backend:gold]\nreserved_percentage = 101\n",
     "[backend:gold] reserved_percentage must be from 0 to 100, not 101"),
    ("[blockstorage]\nmessage_sink = kafka\n",
     "[blockstorage] message_sink must be one of db, bus"),
    ("[blockstorage]\nwatchdog_interval = 0\n",
     "[blockstorage] watchdog_interval must be positive, not 0.0"),
    ("[backend:gold]\nreserved_percentage =\n", "[backend:gold] reserved_percentage is empty"),
])
def test_the_shared_sections_fail_clearly_in_one_line(tmp_path, text, error):
    from blockstorage import config as storage_config

    path = tmp_path / "bs.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(error)) as caught:
        storage_config.load(path)
    assert "\n" not in str(caught.value)
    config.load(path)  # not usermessages' sections: its own commands accept the file


def test_a_dollar_that_names_no_option_is_one_clear_line(tmp_path):
    # A password with a `$` (oslo.config substitutes `$name`): said, not a traceback.
    path = tmp_path / "u.conf"
    path.write_text("[database]\nconnection = postgresql://u:pa$word@db/um\n")
    with pytest.raises(ConfigError, match=r"\[database\] connection") as caught:
        config.load(path)
    assert "\n" not in str(caught.value) and "$$" in str(caught.value)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(DECLARED),
       raw=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30))
def test_any_value_of_any_option_loads_or_fails_in_one_line(tmp_path, option, raw):
    path = tmp_path / "fuzz.conf"
    path.write_text(f"[{option.section}]\n{option.name} = {raw}\n", encoding="utf-8")
    try:
        config.load(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)


# --- the oslo libraries' options in the same file -------------------------------------

def test_the_libraries_options_load_typed_and_reach_their_libraries(tmp_path):
    path = tmp_path / "u.conf"
    path.write_text("[DEFAULT]\ndebug = true\nlogfile = /var/log/um.log\nmessage_ttl = 60\n"
                    "[healthcheck]\ndetailed = true\nbackends = disable_by_file, "
                    "usermessages_database\n"
                    "[oslo_messaging_notifications]\ndriver = messagingv2\ntopics = audit\n")
    settings = config.load(path)
    assert settings.message_ttl == 60
    conf = config.oslo_conf(settings)
    # A deprecated name is read under its current one, as oslo.config reads it.
    assert (conf.debug, conf.log_file, conf.message_ttl) == (True, "/var/log/um.log", 60)
    assert conf.healthcheck.backends == ["disable_by_file", "usermessages_database"]
    assert conf.oslo_messaging_notifications.driver == ["messagingv2"]
    assert conf.oslo_messaging_notifications.topics == ["audit"]


@pytest.mark.parametrize(("content", "complaint"), [
    ("[healthcheck]\ndetailled = true\n", "unknown option [healthcheck] detailled"),
    ("[healthcheck]\ndetailed = very\n", "[healthcheck] detailed is not valid"),
    ("[DEFAULT]\nlog_rotate_interval = often\n", "[DEFAULT] log_rotate_interval is not valid"),
    ("[oslo_messaging_notifications]\nretry = never\n",
     "[oslo_messaging_notifications] retry is not valid"),
    ("[oslo_messaging_nofitications]\ndriver = log\n",
     "unknown option [oslo_messaging_nofitications] driver"),
    ("[DEFAULT]\ntransport_ur = rabbit://\n", "unknown option [DEFAULT] transport_ur"),
])
def test_the_libraries_options_fail_clearly_in_one_line(tmp_path, content, complaint):
    path = tmp_path / "bad.conf"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert complaint in str(caught.value) and "\n" not in str(caught.value)


def test_oslo_messaging_is_imported_only_for_a_file_that_may_set_its_options(tmp_path):
    """It takes seconds and brings eventlet: a file without its sections never pays."""
    import subprocess
    import sys

    path = tmp_path / "u.conf"
    check = ("import sys; from usermessages import config; config.load(sys.argv[1]); "
             "print('oslo_messaging' in sys.modules)")
    for content, imported in (("[DEFAULT]\ndebug = true\n[healthcheck]\ndetailed = true\n",
                               "False"),
                              ("[oslo_messaging_notifications]\ndriver = log\n", "True")):
        path.write_text(content)
        ran = subprocess.run([sys.executable, "-c", check, str(path)], capture_output=True,
                             text=True, timeout=60, check=True)
        assert ran.stdout.strip() == imported, content


def test_no_option_of_ours_is_also_a_library_s():
    ours = {(o.section, o.name) for o in DECLARED}
    for namespace in config.LIBRARIES:
        theirs = {(section, opt.dest) for section, opts in
                  config.library_groups(namespace).items() for opt in opts}
        assert not ours & theirs, namespace
