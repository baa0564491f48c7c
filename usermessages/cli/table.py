"""Tables that fit the terminal without ever cutting an id.

A column is *whole* (an id, an event id: never wrapped, never cut) or *text*
(wraps between words; a word longer than the column folds onto the next line,
nothing is hidden). To fit a width, the table leaves out columns, lowest
priority first, until the rest fit at their narrowest: a whole column at its
longest value, a text column at ``TEXT_MIN`` cells. The room left widens the
text columns, highest priority first. When even the columns that must stay do
not fit, the table is wider than the terminal rather than break an id. Without
a width (stdout is not a terminal and COLUMNS is unset), nothing is left out and
nothing wraps: a pipe gets whole rows, one line each.

Cells are shown as text, never as markup, and control characters are shown
escaped (``\\x1b``): a value cannot drive the terminal.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The narrowest a text column gets before the table leaves out a column instead.
TEXT_MIN = 16
# Cells between two columns (rich's right padding and the separator).
GAP = 2

# C0 and C1 controls but the newline, and the bidirectional overrides that
# would reorder what the terminal shows.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\t":
        return " "
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(value: str) -> str:
    """``value`` with its control characters escaped (a tab becomes a space)."""
    return _CONTROL.sub(_escape, value)


@dataclass(frozen=True)
class TableColumn:
    """One column as the table shows it: a heading and its cells, as printable text."""

    header: str
    cells: tuple[str, ...]
    whole: bool = False
    # The narrowest this column may be (a show table's value column: its longest id).
    min_width: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", printable(self.header))
        object.__setattr__(self, "cells", tuple(printable(cell) for cell in self.cells))


def _longest_line(texts: Sequence[str]) -> int:
    return max((cell_len(line) for text in texts for line in text.splitlines()), default=0)


def _natural(column: TableColumn) -> int:
    """The width that shows every cell and the heading on one line each."""
    return _longest_line((column.header, *column.cells))


def _narrowest(column: TableColumn) -> int:
    if column.whole:  # its heading does not wrap either
        return max(_natural(column), column.min_width)
    # Text wraps, its heading too (between words): "Action Required" over "true" takes 8.
    header_word = max((cell_len(word) for word in column.header.split()), default=0)
    return max(min(_longest_line(column.cells), TEXT_MIN), header_word, column.min_width)


@dataclass(frozen=True)
class Layout:
    """Which columns a table keeps (display order) and the width of each."""

    kept: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.widths) + GAP * max(len(self.widths) - 1, 0)


def layout(columns: Sequence[TableColumn], width: int | None,
           priority: Sequence[int], keep: int = 1) -> Layout:
    """Fit ``columns`` to ``width`` cells (None: no limit).

    ``priority`` lists column indexes, most important first; the first ``keep``
    of them are never left out, the others go from the last while the rest do
    not fit.
    """
    if width is None:
        return Layout(tuple(range(len(columns))), tuple(_natural(c) for c in columns))
    ranked = list(priority)
    narrowest = {i: _narrowest(columns[i]) for i in ranked}

    def total(indexes: Sequence[int]) -> int:
        return sum(narrowest[i] for i in indexes) + GAP * max(len(indexes) - 1, 0)

    while len(ranked) > keep and total(ranked) > width:
        ranked.pop()
    widths = dict(narrowest)
    room = width - total(ranked)
    for i in ranked:  # highest priority first
        if room <= 0:
            break
        grow = min(room, _natural(columns[i]) - widths[i])
        if grow > 0 and not columns[i].whole:
            widths[i] += grow
            room -= grow
    kept = tuple(sorted(ranked))
    return Layout(kept, tuple(widths[i] for i in kept))


def terminal_width() -> int | None:
    """The width to fit: COLUMNS if set, else the terminal's, else None (not a terminal)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def render(columns: Sequence[TableColumn], fitted: Layout) -> str:
    """The table as plain text, lines without trailing blanks."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for index, width in zip(fitted.kept, fitted.widths, strict=True):
        column = columns[index]
        table.add_column(column.header, width=width, no_wrap=column.whole, overflow="fold")
    rows = len(columns[0].cells) if columns else 0
    for row in range(rows):
        table.add_row(*(Text(columns[i].cells[row]) for i in fitted.kept))
    out = io.StringIO()
    # Exactly as wide as the layout: rich never has to narrow a column itself.
    Console(file=out, width=max(fitted.total, 1), color_system=None, highlight=False,
            emoji=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())
