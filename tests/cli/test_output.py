"""The table that never cuts an id, and the formats next to cliff's own formatters."""

from __future__ import annotations

import argparse
import csv
import io
import json
import string

import click
import pytest
import yaml
from click.testing import CliRunner
from cliff.formatters.commaseparated import CSVLister
from cliff.formatters.json_format import JSONFormatter
from cliff.formatters.value import ValueFormatter
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from usermessages.cli import table
from usermessages.cli.output import Column, Output, View, output_options

# --- the table, fuzzed -------------------------------------------------------------------

ID_CHARS = string.ascii_letters + string.digits + "-_.:/"
ids = st.text(ID_CHARS, min_size=1, max_size=60)
# Words of any script, markup-looking brackets, control characters, wide characters.
words = st.one_of(
    st.text(string.ascii_letters + string.digits + "[]/=:.,'\"", min_size=1, max_size=30),
    st.text("调度分配卷找不到任何可用的加权后端。", min_size=1, max_size=12),
    st.sampled_from(["[bold]", "[/]", "[red]x[/red]", "\x1b[2J", "\u202e", "a\tb", "\x00",
                     "é", "😀"]),
)
texts = st.lists(words, max_size=12).map(" ".join)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[table.TableColumn], list[int], int | None]:
    rows = draw(st.integers(0, 5))
    count = draw(st.integers(1, 6))
    columns = []
    for index in range(count):
        whole = index == 0 or draw(st.booleans())
        cells = draw(st.lists(ids if whole else texts, min_size=rows, max_size=rows))
        columns.append(table.TableColumn(f"Column {index}", tuple(cells), whole))
    priority = draw(st.permutations(range(count)))
    width = draw(st.one_of(st.none(), st.integers(10, 260)))
    return columns, list(priority), width


def _ink(text: str) -> str:
    """What a table shows, without the blanks and the heading's rule."""
    return "".join(ch for ch in text if not ch.isspace() and ch != "─")


@settings(max_examples=400, deadline=None)
@given(tables())
def test_a_fitted_table_cuts_no_id_and_hides_nothing(drawn):
    columns, priority, width = drawn
    fitted = table.layout(columns, width, priority)
    out = table.render(columns, fitted)
    lines = out.splitlines()
    kept = [columns[i] for i in fitted.kept]
    # Columns go lowest priority first; the first is never left out.
    assert priority[0] in fitted.kept
    assert set(fitted.kept) == set(priority[:len(fitted.kept)])
    # Every id is on one line, whole.
    for column in kept:
        if column.whole:
            for cell in column.cells:
                assert any(cell in line for line in lines), (cell, out)
    # Nothing is cut or replaced by an ellipsis: every character of what is kept shows.
    expected = "".join(_ink(table.printable(c.header)) + "".join(
        _ink(table.printable(cell)) for cell in c.cells) for c in kept)
    assert sorted(_ink(out)) == sorted(expected), out
    # It fits, unless the columns that must stay are wider than the terminal.
    if width is not None:
        must = fitted.total if len(fitted.kept) == 1 else width
        assert all(cell_len(line) <= max(width, must) for line in lines), out
        if len(fitted.kept) > 1:
            assert fitted.total <= width
    else:
        assert len(fitted.kept) == len(columns)
    # A value can neither style the terminal nor move its cursor.
    assert "\x1b" not in out and "\u202e" not in out


def test_a_narrow_terminal_leaves_out_columns_lowest_priority_first():
    uuid = "a2ceac89-2b09-4d27-ad3b-deb063e814e3"
    columns = [table.TableColumn("ID", (uuid,), True),
               table.TableColumn("Event ID", ("VOLUME_VOLUME_001_003",), True),
               table.TableColumn("Level", ("ERROR",)),
               table.TableColumn("User Message", ("schedule allocate volume:Could not find "
                                                  "any available weighted backend.",))]
    priority = [0, 1, 3, 2]
    assert table.layout(columns, 80, priority).kept == (0, 1, 3)
    assert table.layout(columns, 40, priority).kept == (0,)
    # Narrower than the id itself: the id stays whole and the line is longer.
    narrow = table.layout(columns, 20, priority)
    assert narrow.kept == (0,) and narrow.widths == (36,)
    assert table.render(columns, narrow).splitlines()[-1] == uuid
    assert table.layout(columns, None, priority).kept == (0, 1, 2, 3)


# --- the formats, beside cliff's -----------------------------------------------------------

VIEW = View("thing list", (Column("id", "ID", whole=True), Column("name", "Name"),
                           Column("size", "Size"), Column("tags", "Tags"),
                           Column("note", "Note")),
            shown=("id", "name", "size"), priority=("id", "name", "size"))
ITEMS = [
    {"id": "1c8a0d2e-0000-4000-8000-000000000001", "name": 'a "quoted", name', "size": 5,
     "tags": ["x", "y"], "note": None, "extra": {"k": 1}},
    {"id": "1c8a0d2e-0000-4000-8000-000000000002", "name": "two\nlines", "size": 2.5,
     "tags": [], "note": "ünïcödé 调度", "extra": None},
]


@click.command()
@output_options(VIEW)
def things(output: Output) -> None:
    output.items(ITEMS)


@click.command()
@output_options(View("thing show", VIEW.columns))
def thing(output: Output) -> None:
    output.one(ITEMS[0])


def run(command: click.Command, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(command, list(args))
    return result.exit_code, result.stdout, result.stderr


def _cliff(formatter: object, columns: list[str], rows: list[list[object]], **args: object
           ) -> str:
    out = io.StringIO()
    formatter.emit_list(columns, rows, out, argparse.Namespace(**args))  # type: ignore[attr-defined]
    return out.getvalue()


def test_csv_and_value_are_what_cliffs_formatters_print():
    fields = ["id", "name", "size", "note"]
    rows = [[item[f] for f in fields] for item in ITEMS]
    args = [arg for f in fields for arg in ("-c", f)]
    assert run(things, "-f", "csv", *args)[1] == _cliff(CSVLister(), fields, rows,
                                                        quote_mode="nonnumeric")
    assert run(things, "-f", "value", *args)[1] == _cliff(ValueFormatter(), fields, rows)
    ours = json.loads(run(things, "-f", "json", *args)[1])
    assert ours == json.loads(_cliff(JSONFormatter(), fields, rows, noindent=False))


def test_json_and_yaml_without_columns_are_the_items_whole():
    assert json.loads(run(things, "-f", "json")[1]) == ITEMS
    assert yaml.safe_load(run(things, "-f", "yaml")[1]) == ITEMS
    assert json.loads(run(thing, "-f", "json")[1]) == ITEMS[0]
    assert yaml.safe_load(run(thing, "-f", "yaml")[1]) == ITEMS[0]


def test_columns_select_and_order_in_every_format():
    args = ("-c", "Size", "-c", "id", "-c", "TAGS", "-c", "id")
    code, out, _ = run(things, "-f", "json", *args)
    assert code == 0 and [list(row) for row in json.loads(out)] == [["size", "id", "tags"]] * 2
    assert [list(row) for row in yaml.safe_load(run(things, "-f", "yaml", *args)[1])] == [
        ["size", "id", "tags"]] * 2
    reader = csv.reader(io.StringIO(run(things, "-f", "csv", *args)[1]))
    assert list(reader) == [["size", "id", "tags"], ["5", ITEMS[0]["id"], "x,y"],
                            ["2.5", ITEMS[1]["id"], ""]]
    assert run(things, "-f", "value", *args)[1].splitlines() == [
        f"5 {ITEMS[0]['id']} x,y", f"2.5 {ITEMS[1]['id']} "]
    header = run(things, *args)[1].splitlines()[0].split()
    assert header == ["Size", "ID", "Tags"]
    # One item: one row per column, in the order asked.
    assert run(thing, "-f", "value", "-c", "size", "-c", "note")[1] == "5\nNone\n"
    assert [line.split()[0] for line in run(thing, "-c", "size", "-c", "id")[1].splitlines()
            ][2:] == ["size", "id"]


def test_an_unknown_column_is_one_line_and_exit_2():
    for command in (things, thing):
        code, out, err = run(command, "-c", "id", "-c", "bogus")
        assert code == 2 and out == ""
        assert err == ("Error: unknown column 'bogus' for `usermessages thing "
                       f"{'list' if command is things else 'show'}`; its columns: id, name, "
                       "size, tags, note\n")


@pytest.mark.parametrize("width", [40, 56])
def test_the_table_says_on_stderr_which_columns_it_left_out(width):
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(things, [])
    assert result.exit_code == 0
    assert ITEMS[0]["id"] in result.stdout and "Size" not in result.stdout
    left = "Name, Size" if width == 40 else "Size"
    assert result.stderr == (f"Left out to fit {width} columns: {left} "
                             "(choose columns with -c, or -f value).\n")


def test_the_help_says_which_columns_go_first():
    result = CliRunner().invoke(things, ["--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert ("Show this column (repeat for more, shown in the order given): id, name, size, "
            "tags, note. A table too wide for the terminal leaves out, first to last: size, "
            "name (never id); no id is ever cut.") in text
