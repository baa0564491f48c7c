"""``-f/--format`` and ``-c/--column``: what a command prints, as openstack commands do.

Formats behave as cliff's (openstackclient's) formatters: ``table``; ``json``
and ``yaml``, a list of objects or one object; ``csv``, a header row then one row
per item, non-numeric values quoted; ``value``, the values alone, space-separated,
one row per line (one value per line for a single item). Keys and CSV headings
are the API's field names. Without ``-c``, ``json`` and ``yaml`` print the API's
objects whole (as ``--format json`` always did); ``table``, ``csv`` and ``value``
print the command's default columns. ``-c COLUMN`` (repeatable) chooses the
columns, in the order given, for every format; a column the command does not
have is a one-line error (exit 2). Two differences from cliff, on purpose: ``-c``
orders as well as selects, and an unknown column is an error rather than
ignored.

Written here rather than borrowed: cliff's formatter classes take argparse
namespaces and bring cmd2, stevedore and prettytable into the SDK's install
(this client is part of it), and cliff's table, fitted to the terminal, wraps
ids: the table is ``usermessages.cli.table``'s.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import yaml
from rich.cells import cell_len

from usermessages.cli import table
from usermessages.errors import UserMessagesError

FORMATS = ("table", "json", "yaml", "csv", "value")

F = TypeVar("F", bound=Callable[..., Any])


class ColumnError(UserMessagesError, click.ClickException):
    """Raised when ``-c`` names a column the command does not have: one line, exit 2."""

    exit_code = 2


def _normal(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class Column:
    """A field of the API's objects: its key, its table heading, and whether it is an id."""

    field: str
    header: str
    # An id, an event id: never wrapped, never cut, in any format.
    whole: bool = False


@dataclass(frozen=True)
class View:
    """What one command prints.

    ``columns`` are every column ``-c`` may name, in display order. A list view
    shows ``shown`` by default and, when its table does not fit, leaves out the
    last of ``priority`` first (the first is never left out). A single-item
    view (``shown`` empty) shows every field the API returned, sorted, as
    ``Field | Value`` rows.
    """

    command: str
    columns: tuple[Column, ...]
    shown: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        fields = {c.field for c in self.columns}
        if not set(self.shown) <= fields or set(self.priority) != set(self.shown):
            raise ValueError(f"{self.command}: shown and priority name the same known columns")

    def column(self, name: str) -> Column:
        """The column ``name`` (a field or a heading, any case) stands for."""
        wanted = _normal(name)
        for column in self.columns:
            if wanted in (_normal(column.field), _normal(column.header)):
                return column
        raise ColumnError(f"unknown column {name!r} for `usermessages {self.command}`; "
                          f"its columns: {', '.join(c.field for c in self.columns)}")

    @property
    def leaves_out(self) -> tuple[str, ...]:
        """The columns a narrow table leaves out, first to go first."""
        return tuple(reversed(self.priority[1:]))

    def column_help(self) -> str:
        names = ", ".join(c.field for c in self.columns)
        text = f"Show this column (repeat for more, shown in the order given): {names}."
        if self.leaves_out:
            text += (" A table too wide for the terminal leaves out, first to last: "
                     f"{', '.join(self.leaves_out)} (never {self.priority[0]}); no id is "
                     "ever cut.")
        return text


def _emit(text: str) -> None:
    """Print ``text`` as it is into a pipe or a file (what scripts parse); on a terminal,
    with its control characters escaped, so a value cannot drive the terminal."""
    if sys.stdout.isatty():
        text = table.printable(text)
    # color=True: click would otherwise drop what looks like an ANSI sequence from the data.
    click.echo(text, nl=False, color=True)


def _flat(value: Any) -> Any:
    """A value as csv and value print it (cliff's: str() of it), lists joined by commas."""
    if isinstance(value, list | tuple):
        return ",".join(str(_flat(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def human(value: Any) -> str:
    """A value as a table cell: blank for null, true/false, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass(frozen=True)
class Output:
    """A command's chosen format and columns; prints its items."""

    view: View
    fmt: str
    chosen: tuple[Column, ...] = ()

    @classmethod
    def choose(cls, view: View, fmt: str, names: Sequence[str]) -> Output:
        chosen: list[Column] = []
        for name in names:
            column = view.column(name)
            if column not in chosen:
                chosen.append(column)
        return cls(view, fmt, tuple(chosen))

    def _pick(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        return {c.field: item.get(c.field) for c in self.chosen} if self.chosen else item

    def items(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Print a list."""
        if self.fmt in ("json", "yaml"):
            self._dump([self._pick(item) for item in items])
            return
        by_field = {c.field: c for c in self.view.columns}
        columns = self.chosen or tuple(by_field[f] for f in self.view.shown)
        rows = [[item.get(c.field) for c in columns] for item in items]
        if self.fmt == "csv":
            self._csv([c.field for c in columns], rows)
        elif self.fmt == "value":
            for row in rows:
                _emit(" ".join(str(_flat(v)) for v in row) + "\n")
        else:
            cells = [table.TableColumn(c.header, tuple(human(row[i]) for row in rows), c.whole)
                     for i, c in enumerate(columns)]
            if self.chosen:  # what was asked for all shows
                priority, keep = list(range(len(cells))), len(cells)
            else:
                priority, keep = [self.view.shown.index(f) for f in self.view.priority], 1
            width = table.terminal_width()
            fitted = table.layout(cells, width, priority, keep)
            click.echo(table.render(cells, fitted))
            left_out = [cells[i].header for i in range(len(cells)) if i not in fitted.kept]
            if left_out:
                click.echo(f"Left out to fit {width} columns: {', '.join(left_out)} "
                           "(choose columns with -c, or -f value).", err=True)

    def one(self, item: Mapping[str, Any]) -> None:
        """Print one item."""
        if self.fmt in ("json", "yaml"):
            self._dump(self._pick(item))
            return
        fields = [c.field for c in self.chosen] or sorted(item)
        if self.fmt == "csv":
            self._csv(fields, [[item.get(f) for f in fields]])
        elif self.fmt == "value":
            for field in fields:
                _emit(str(_flat(item.get(field))) + "\n")
        else:
            whole = {c.field for c in self.view.columns if c.whole}
            values = [human(item.get(f)) for f in fields]
            longest_id = max((cell_len(table.printable(v)) for f, v in
                              zip(fields, values, strict=True) if f in whole), default=0)
            cells = [table.TableColumn("Field", tuple(fields), whole=True),
                     table.TableColumn("Value", tuple(values), min_width=longest_id)]
            fitted = table.layout(cells, table.terminal_width(), [0, 1], keep=2)
            click.echo(table.render(cells, fitted))

    def _dump(self, data: Any) -> None:
        if self.fmt == "json":
            _emit(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        else:
            _emit(yaml.safe_dump(data, default_flow_style=False, allow_unicode=True,
                                 sort_keys=False))

    @staticmethod
    def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # cliff's CSV: quote non-numeric values, the platform's line ending.
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator=os.linesep,
                            escapechar="\\")
        writer.writerow(header)
        writer.writerows([[_flat(v) for v in row] for row in rows])
        _emit(out.getvalue())


def output_options(view: View, *, formats: Sequence[str] = FORMATS,
                   when: Mapping[str, View] | None = None) -> Callable[[F], F]:
    """Add ``-f/--format`` and ``-c/--column`` to a command; it receives ``output``.

    ``when`` maps a flag of the command to the view it shows instead (``message
    list --series``). Columns are checked before the command runs: a wrong one
    fails before any request.
    """
    others = when or {}

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, fmt: str, columns: tuple[str, ...], **kwargs: Any) -> Any:
            shown = next((v for flag, v in others.items() if kwargs.get(flag)), view)
            return func(*args, output=Output.choose(shown, fmt, columns), **kwargs)

        help_text = view.column_help()
        for flag, other in others.items():
            help_text += f" With --{flag}: {', '.join(c.field for c in other.columns)}."
        wrapper = click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN",
                               help=help_text)(wrapper)
        wrapper = click.option("-f", "--format", "fmt", type=click.Choice(list(formats)),
                               default="table", show_default=True,
                               help="Output format.")(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate
