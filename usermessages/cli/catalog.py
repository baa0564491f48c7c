"""``usermessages catalog list|advice``: the catalog in force (overrides applied), in a language."""

from __future__ import annotations

import click

from usermessages.catalog import Catalog
from usermessages.cli.common import config_option, edge, load_settings
from usermessages.cli.output import FORMATS, Column, Output, View, output_options
from usermessages.translations import Translator


@click.group()
def catalog() -> None:
    """The sanctioned catalog of resources, actions and details."""


def _catalog(config_file: str | None, lang: str) -> Catalog:
    """The catalog in force (overrides applied), in ``lang``; an unknown language is an error."""
    translator = Translator(Catalog.from_file(load_settings(config_file).catalog_overrides_file
                                              or None))
    if lang not in translator.languages:
        raise click.BadParameter(f"{lang!r} is none of {', '.join(translator.languages)}",
                                 param_hint="'--lang'")
    return translator.catalog_for(lang)


lang_option = click.option("--lang", default="en", show_default=True,
                           help="Language of the texts: en, a shipped one (de, fr, ja, zh_CN) "
                                "or one the overrides file gives.")


ENTRIES = View(
    "catalog list",
    (Column("table", "Table"), Column("id", "Id", whole=True), Column("name", "Name", whole=True),
     Column("text", "Text")),
    shown=("table", "id", "name", "text"),
    priority=("id", "text", "name", "table"),
)
ADVICE = View(
    "catalog advice",
    (Column("detail", "Detail", whole=True), Column("name", "Name", whole=True),
     Column("remediation", "Remediation"), Column("action_required", "Action Required"),
     Column("help_url", "Help")),
    shown=("detail", "name", "action_required", "remediation", "help_url"),
    priority=("detail", "remediation", "action_required", "help_url", "name"),
)
# Markdown besides: docs/catalog.md's tables are this command's output.
_FORMATS = (*FORMATS, "markdown")


@catalog.command("list")
@config_option
@lang_option
@output_options(ENTRIES, formats=_FORMATS)
@edge
def catalog_list(config_file: str | None, lang: str, output: Output) -> None:
    """Print every catalog entry with its id and text (deployer overrides applied)."""
    entries = list(_catalog(config_file, lang).rows())
    if output.fmt == "markdown":
        click.echo("| table | id | name | text |\n|---|---|---|---|")
        for row in entries:
            click.echo("| " + " | ".join(row) + " |")
        return
    output.items([{"table": t, "id": i, "name": n, "text": x} for t, i, n, x in entries])


@catalog.command("advice")
@config_option
@lang_option
@output_options(ADVICE, formats=_FORMATS)
@edge
def catalog_advice(config_file: str | None, lang: str, output: Output) -> None:
    """Print each detail's remediation, whether action is required, and its help link."""
    entries = list(_catalog(config_file, lang).advice_rows())
    if output.fmt == "markdown":
        click.echo("| detail | name | action required | remediation | help |\n"
                   "|---|---|---|---|---|")
        for detail_id, name, advice in entries:
            required = "yes" if advice.action_required else "no"
            click.echo(f"| {detail_id} | {name} | {required} | {advice.remediation} | "
                       f"{advice.help_url} |")
        return
    output.items([{"detail": i, "name": n, "remediation": a.remediation,
                   "action_required": a.action_required, "help_url": a.help_url or None}
                  for i, n, a in entries])
