"""Config options declared once, as fields of a frozen settings dataclass.

A field whose default comes from ``option()`` is an option: the field gives its
Python name, type and default, ``option()`` its section and rule (``min``/``max``
inclusive, ``above`` exclusive, ``off``: one value outside them that turns the
feature off, ``choices``: the values allowed, each with what it means, ``secret``:
never logged, as oslo.config masks it), and the
string right below the field its help (an attribute docstring, as Sphinx and
editors read it; pydantic's ``use_attribute_docstrings`` reads it the same way)::

    collector_batch_size: int = option("collector", 2000, min=1)
    '''Most messages inserted in one transaction.'''

Everything else is derived here from that one declaration:

* ``oslo_groups``: the typed oslo.config options, for the ``oslo.config.opts``
  entry points (the sample, oslo-config-generator, oslo-config-validator) and
  for reading the file;
* ``validate``: every value of a settings object, from a file, a command-line
  flag or code alike, checked against its rule, in one line of our words;
* ``markdown``: the docs' tables.

The option's name in its section is the field's name without a ``<section>_``
prefix (``collector_batch_size`` is ``[collector] batch_size``). A field without
``option()`` (the sections passed through to other libraries, the backends) is
no option. The declarations stay importable without oslo.config, which comes
with the server extra: the producer SDK reads its defaults from them. The helps
are read from the class's source once, when its options are first needed.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from usermessages.errors import ConfigError

T = TypeVar("T")

_KEY = "usermessages.option"
# A section named "prefix:name" stands for every section "prefix:<a name>"
# (oslo-config-generator writes group names in lower case).
TEMPLATE = ":name"
_KINDS = {int: "integer", float: "number", bool: "boolean", str: "string", frozenset: "list"}
_MUST = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string",
         frozenset: "a list of strings"}


@dataclasses.dataclass(frozen=True)
class Rule:
    """What ``option()`` records on a field; the field and its docstring give the rest."""

    section: str
    min: float | None = None
    max: float | None = None
    above: float | None = None
    off: tuple[Any, str] | None = None
    choices: tuple[tuple[str, str], ...] = ()
    secret: bool = False


@dataclasses.dataclass(frozen=True)
class Declared:
    """One option: the settings class and attribute, its name in its section, type,
    default and rule; its help on demand."""

    owner: type
    attr: str
    name: str
    kind: type
    default: Any
    rule: Rule

    @property
    def section(self) -> str:
        return self.rule.section

    @property
    def help(self) -> str:
        """The string right below the field (read from the source when first asked:
        validating settings never needs it, so importing the SDK does not pay for it)."""
        helps = _docstrings(self.owner)
        if not helps.get(self.attr):
            raise TypeError(f"{self.owner.__name__}.{self.attr}: an option's help is the "
                            "string right below its field, and it has none")
        return helps[self.attr]

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.rule.choices)


def option(section: str, default: T, *, min: float | None = None,
           max: float | None = None, above: float | None = None,
           off: tuple[T, str] | None = None,
           choices: Sequence[str | tuple[str, str]] = (), secret: bool = False) -> T:
    """Declare the field it is the default of as the option ``[section] <name>``."""
    rule = Rule(section, min, max, above, off,
                tuple((c, "") if isinstance(c, str) else c for c in choices), secret)
    return dataclasses.field(default=default, metadata={_KEY: rule})


def declared(cls: type) -> tuple[Declared, ...]:
    """The options ``cls`` declares, in the order of its fields."""
    if cls not in _FOUND:  # read once a class: every Settings() validates with it
        hints = typing.get_type_hints(cls)
        _FOUND[cls] = tuple(
            Declared(cls, field.name, field.name.removeprefix(rule.section + "_"),
                     typing.get_origin(hints[field.name]) or hints[field.name],
                     field.default, rule)
            for field in dataclasses.fields(cls)
            if (rule := field.metadata.get(_KEY)) is not None)
    return _FOUND[cls]


_FOUND: dict[type, tuple[Declared, ...]] = {}


@functools.cache
def _docstrings(cls: type) -> dict[str, str]:
    """The string right below each field of ``cls``, by field, on one line."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(body, ast.ClassDef)
    found = {}
    for node, below in zip(body.body, body.body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(below, ast.Expr) and isinstance(below.value, ast.Constant)
                and isinstance(below.value.value, str)):
            found[node.target.id] = " ".join(below.value.value.split())
    return found


def declaration(cls: type, attr: str) -> Declared:
    """The option ``cls`` declares as its field ``attr``."""
    for option in declared(cls):
        if option.attr == attr:
            return option
    raise KeyError(f"{cls.__name__}.{attr} is not a declared option")


def allowed(option: Declared) -> str:
    """The option's rule in words ("" when any value of its type will do)."""
    rule = option.rule
    if rule.choices:
        return ("some of " if option.kind is frozenset else "one of ") + ", ".join(option.choices)
    if rule.min is not None and rule.max is not None:
        words = f"from {rule.min} to {rule.max}"
    elif rule.above == 0 or (rule.min == 1 and option.kind is int):
        words = "positive"
    elif rule.min is not None:
        words = f"at least {rule.min}"
    elif rule.above is not None:
        words = f"more than {rule.above}"
    elif rule.max is not None:
        words = f"at most {rule.max}"
    else:
        words = ""
    if rule.off is not None:
        words = f"{rule.off[0]} ({rule.off[1]}) or {words}"
    return words


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _of_kind(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:  # nan or inf would slip through every bound
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))
    if kind is frozenset:
        return isinstance(value, frozenset) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def check(option: Declared, value: Any, section: str | None = None) -> Any:
    """``value`` if ``option`` allows it; else ConfigError, one line naming the option.

    ``section`` names the section it came from when the declaration's is a
    template (``[backend:gold]`` for ``backend:name``).
    """
    where = f"[{section or option.section}] {option.name}"
    rule = option.rule
    if not _of_kind(option.kind, value):
        raise ConfigError(f"{where} must be {_MUST[option.kind]}, not {_shown(value)}")
    if rule.off is not None and value == rule.off[0]:
        return value
    if option.kind is frozenset:  # a list: each item is one of the choices
        unknown = sorted(value - set(option.choices)) if rule.choices else []
        refused, value_shown = bool(unknown), _shown(unknown)
    elif rule.choices:
        refused, value_shown = value not in option.choices, _shown(value)
    else:
        refused = option.kind in (int, float) and (
            (rule.min is not None and value < rule.min)
            or (rule.max is not None and value > rule.max)
            or (rule.above is not None and value <= rule.above))
        value_shown = _shown(value)
    if refused:
        raise ConfigError(f"{where} must be {allowed(option)}, not {value_shown}")
    return value


def validate(settings: object, section: str | None = None) -> None:
    """Check every option of a settings object (its ``__post_init__`` calls this)."""
    for option in declared(type(settings)):
        check(option, getattr(settings, option.attr), section)


def oslo() -> Any:
    """oslo.config, which comes with the [server] extra: the SDK alone runs on the
    defaults (``load(None)``, ``Settings(...)``) and does not pull it in."""
    try:
        import oslo_config.cfg
        import oslo_config.generator
    except ImportError as exc:
        raise ConfigError("reading a config file needs oslo.config: "
                          "pip install 'usermessages[server]'") from exc
    return oslo_config


def oslo_opt(option: Declared, *, reading: bool = False) -> Any:
    """The oslo.config option of a declaration: typed, with its default, help, and
    bounds and choices where oslo.config can say them exactly (else they end the
    help, in words).

    ``reading``: the bare typed option a file is read with. ``check`` then says
    what is wrong in our words, as it does for a command-line flag or a value set
    in code (oslo.config's own words name neither the rule nor the option).
    """
    cfg = oslo().cfg
    kinds = {bool: cfg.BoolOpt, int: cfg.IntOpt, float: cfg.FloatOpt, str: cfg.StrOpt,
             frozenset: cfg.ListOpt}
    default = sorted(option.default) if option.kind is frozenset else option.default
    if reading:
        return kinds[option.kind](option.name, default=default, secret=option.rule.secret)
    rule = option.rule
    extra: dict[str, Any] = {}
    help = option.help
    if allowed(option):
        if rule.choices and option.kind is str:
            extra["choices"] = [(value, meaning or None) for value, meaning in rule.choices]
        elif rule.off is None and rule.above is None and not rule.choices:
            extra.update({k: v for k, v in (("min", rule.min), ("max", rule.max))
                          if v is not None})
        else:
            help = f"{help} Must be {allowed(option)}."
    return kinds[option.kind](option.name, default=default, help=help,
                              secret=option.rule.secret, **extra)


def oslo_groups(options: Iterable[Declared], helps: Mapping[str, str] | None = None,
                *, reading: bool = False) -> list[tuple[Any, list[Any]]]:
    """The oslo.config options by section, in declaration order (``list_opts``'s shape);
    a section with a help in ``helps`` is an OptGroup carrying it."""
    groups: dict[str, list[Any]] = {}
    for option in options:
        groups.setdefault(option.section, []).append(oslo_opt(option, reading=reading))
    helps = helps or {}
    cfg = oslo().cfg
    return [(cfg.OptGroup(section, help=helps[section]) if section in helps else section, opts)
            for section, opts in groups.items()]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def shown_section(section: str) -> str:
    """A section as the docs write it: ``backend:name`` is ``backend:NAME``."""
    return section[:-len(TEMPLATE)] + ":NAME" if section.endswith(TEMPLATE) else section


def written(value: Any) -> str:
    """A value as the file writes it (``true``, ``a, b``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, frozenset):
        return ", ".join(sorted(value))
    return str(value)


def markdown(options: Iterable[Declared], heading: str = "##",
             helps: Mapping[str, str] | None = None) -> list[str]:
    """One table a section: option, type and rule, default, meaning."""
    lines: list[str] = []
    section = None
    for option in options:
        if option.section != section:
            section = option.section
            lines += ["", f"{heading} [{shown_section(section)}]", ""]
            if helps and section in helps:
                lines += [helps[section], ""]
            lines += ["| option | type | default | meaning |", "|---|---|---|---|"]
        default = written(option.default)
        shown = f"`{default}`" if default else "(empty)"
        kind = _KINDS[option.kind]
        if option.rule.choices:
            kind = ("list of " if option.kind is frozenset else "") + ", ".join(
                f"`{value}`" for value in option.choices)
        elif allowed(option):
            kind = f"{kind}: {allowed(option)}"
        meaning = option.help + "".join(
            f" `{value}`: {what}." for value, what in option.rule.choices if what)
        lines.append(f"| `{option.name}` | {_cell(kind)} | {_cell(shown)} | {_cell(meaning)} |")
    return lines
