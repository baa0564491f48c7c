"""Options declared once: each rule holds wherever a value comes from, and is shown.

The cases are derived from the declarations themselves, so an option added
tomorrow is tested by the same rules (usermessages/options.py).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from blockstorage import config as storage_config
from usermessages import config, options
from usermessages.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
OURS = options.declared(config.Settings)
THEIRS = options.declared(storage_config.StorageSettings) + options.declared(
    storage_config.Backend)


def _edges(option: options.Declared) -> tuple[list[Any], list[Any]]:
    """Values the option's rule takes, and values just beyond it."""
    rule = option.rule
    good: list[Any] = [option.default]
    bad: list[Any] = []
    step = 1 if option.kind is int else 0.5
    if option.kind is frozenset:
        good.append(frozenset(option.choices))
        bad.append(frozenset({"no_such_" + option.choices[0]}))
    elif rule.choices:
        good += list(option.choices)
        bad += ["x" + option.choices[0], option.choices[0].upper() + "!"]
    if rule.off is not None:
        good.append(rule.off[0])
    if rule.min is not None:
        good.append(rule.min)
        if rule.off is None or rule.off[0] != rule.min - step:
            bad.append(rule.min - step)
        else:
            bad.append(rule.min - 2 * step)
    if rule.max is not None:
        good.append(rule.max)
        bad.append(rule.max + step)
    if rule.above is not None:
        good.append(rule.above + 0.001)
        bad += [rule.above, rule.above - 1]
    return good, bad


def _text(value: Any) -> str:
    return options.written(value)


def _load(option: options.Declared, value: Any, tmp_path: Path) -> Any:
    """Write ``value`` as the option's line in a file, load it as its program does."""
    section = "backend:gold" if option.section == storage_config.POOL else option.section
    path = tmp_path / "edge.conf"
    # [keystone_authtoken] passes through: there, auth_strategy = keystone may load.
    path.write_text(f"[{section}]\n{option.name} = {_text(value)}\n"
                    "[keystone_authtoken]\nauth_type = password\n")
    if option in OURS:
        return getattr(config.load(path), option.attr)
    loaded = storage_config.load(path)
    target = loaded.backends[0] if section == "backend:gold" else loaded
    return getattr(target, option.attr)


RULED = [o for o in OURS + THEIRS if _edges(o)[1]]


@pytest.mark.parametrize("option", RULED, ids=[f"{o.section}.{o.name}" for o in RULED])
def test_each_rule_holds_at_its_edges_in_a_file(tmp_path, option):
    good, bad = _edges(option)
    for value in good:
        assert _load(option, value, tmp_path) == value
    for value in bad:
        with pytest.raises(ConfigError) as caught:
            _load(option, value, tmp_path)
        message = str(caught.value)
        assert f"{option.name} must be {options.allowed(option)}, not " in message, message
        assert "\n" not in message


def test_the_rules_are_the_ones_written_in_the_declarations():
    # Guards the derivation above: a rule that says nothing would test nothing.
    ruled = {f"{o.section}.{o.name}": options.allowed(o) for o in RULED}
    assert ruled["DEFAULT.message_ttl"] == f"from 1 to {config.MAX_MESSAGE_TTL}"
    assert ruled["DEFAULT.message_reap_interval"] == "-1 (no reaper) or positive"
    assert ruled["api.metrics_port"] == "0 (off) or from 1 to 65535"
    assert ruled["sdk.sink"] == "one of " + ", ".join(config.SINKS)
    assert ruled["blockstorage.message_sink"] == ruled["sdk.sink"]
    assert ruled["backend:name.reserved_percentage"] == "from 0 to 100"
    assert len(RULED) >= 40


@pytest.mark.parametrize(("build", "complaint"), [
    (lambda: config.Settings(port=0), "[api] port must be from 1 to 65535, not 0"),
    (lambda: config.DEFAULTS.replace(port=70000), "[api] port must be from 1 to 65535"),
    (lambda: config.Settings(database_timeout=math.nan),
     "[database] timeout must be a finite number, not nan"),
    (lambda: config.Settings(webhooks_timeout=math.inf), "must be a finite number, not inf"),
    (lambda: config.Settings(message_ttl=True), "[DEFAULT] message_ttl must be an integer"),
    # A str where an int belongs, on purpose: the check is the point.
    (lambda: config.Settings(port="8776"),  # type: ignore[arg-type]
     "[api] port must be an integer, not '8776'"),
    (lambda: config.Settings(sdk_sink="kafka"), "[sdk] sink must be one of db, bus, both"),
    (lambda: config.Settings(collector_storm_rows_per_event=-1),
     "[collector] storm_rows_per_event must be 0 (no limit) or positive, not -1"),
    (lambda: storage_config.Backend("silver", reserved_percentage=-1),
     "[backend:silver] reserved_percentage must be from 0 to 100, not -1"),
    (lambda: storage_config.StorageSettings(report_interval=0),
     "[blockstorage] report_interval must be positive, not 0"),
])
def test_settings_refuse_what_the_rule_refuses_however_they_are_built(build, complaint):
    """From code and from command-line flags (``replace``), not only from files."""
    with pytest.raises(ConfigError) as caught:
        build()
    assert complaint in str(caught.value)


@pytest.mark.parametrize(("args", "complaint"), [
    (["serve", "--port", "70000"], "[api] port must be from 1 to 65535, not 70000"),
    (["collector", "--metrics-port", "70000"],
     "[collector] metrics_port must be 0 (off) or from 1 to 65535, not 70000"),
])
def test_a_flag_beyond_its_option_s_rule_is_one_line_and_exit_1(args, complaint):
    from usermessages.cli.main import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {complaint}\n"


@settings(max_examples=300, deadline=None)
@given(option=st.sampled_from(OURS),
       value=st.one_of(st.integers(-2**70, 2**70), st.floats(), st.booleans(),
                       st.text(max_size=20), st.frozensets(st.text(max_size=5), max_size=3)))
def test_any_value_in_code_builds_or_fails_in_one_line(option, value):
    try:
        built = config.Settings(**{option.attr: value})
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"[{option.section}] {option.name} ")
    else:
        assert getattr(built, option.attr) == value
        options.check(option, value)  # what was accepted passes its rule again


def test_every_field_of_settings_is_a_declared_option_named_for_its_section():
    fields = {field.name for field in dataclasses.fields(config.Settings)}
    assert fields - {o.attr for o in OURS} == {*config.PASSTHROUGH, "library_options"}
    for option in OURS:
        if option.section not in ("DEFAULT", "api"):
            assert option.attr == f"{option.section}_{option.name}", option
    assert len({(o.section, o.name) for o in OURS}) == len(OURS)


def _opts() -> dict[tuple[str, str], Any]:
    found = {}
    for group, opts in config.list_opts() + storage_config.list_opts():
        for opt in opts:
            found[(getattr(group, "name", group), opt.name)] = opt
    return found


def test_the_oslo_options_and_the_sample_carry_each_declaration():
    """oslo-config-generator (and oslo-config-validator) see what we declared."""
    opts = _opts()
    assert len(opts) == len(OURS + THEIRS)
    for option in OURS + THEIRS:
        opt = opts[(option.section, option.name)]
        assert opt.help.startswith(option.help)
        default = sorted(option.default) if option.kind is frozenset else option.default
        assert opt.default == default
        rule = option.rule
        if option.kind is str and rule.choices:
            assert list(opt.type.choices) == list(option.choices)
        elif rule.min is not None and rule.off is None:
            assert (opt.type.min, opt.type.max) == (rule.min, rule.max), option
        elif options.allowed(option):
            assert opt.help.endswith(f" Must be {options.allowed(option)}."), option
    sample = config.sample()
    assert "# Minimum value: 1\n# Maximum value: 3162240000\n#message_ttl = 2592000" in sample
    assert "# Possible values:\n# db - insert into the store directly\n" in sample
    assert "#metrics_port = 0" in sample and "Must be 0 (off) or from 1 to 65535." in sample


def test_the_reference_service_page_shows_its_options_as_declared():
    text = (ROOT / "docs" / "reference-service.md").read_text(encoding="utf-8")
    assert storage_config.markdown() in text, (
        "paste python -c 'from blockstorage import config; print(config.markdown())' into "
        "docs/reference-service.md")


def test_every_option_has_its_help_and_one_without_is_refused():
    assert all(option.help for option in OURS + THEIRS)

    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        documented: int = options.option("x", 1)
        """Said."""
        forgotten: int = options.option("x", 2)

    first, second = options.declared(Undocumented)
    assert first.help == "Said."
    with pytest.raises(TypeError, match="Undocumented.forgotten: an option's help is the "):
        second.help  # noqa: B018 (the property raises)
