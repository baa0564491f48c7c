"""``usermessages``: run the service, manage its store, and read messages.

A thin layer over the same objects the server uses; domain errors become a
one-line message and a non-zero exit here, and only here.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from usermessages import config as config_module
from usermessages.catalog import Catalog
from usermessages.errors import UserMessagesError
from usermessages.translations import Translator

console = Console()


# What the [server] extra brings; `pip install usermessages` alone is the SDK.
SERVER_MODULES = frozenset({"sqlalchemy", "alembic", "psycopg", "fastapi", "starlette",
                            "uvicorn", "oslo_policy", "oslo_config", "jinja2", "itsdangerous",
                            "multipart", "python_multipart"})


def _edge(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into ClickException: a clear line, exit code 1, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserMessagesError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in SERVER_MODULES:
                raise
            raise click.ClickException(
                f"this command needs the server extra ({exc.name} is not installed): "
                "pip install 'usermessages[server]'") from exc

    return wrapper


def _settings(config_file: str | None, db: str | None = None) -> config_module.Settings:
    settings = config_module.load(config_file)
    return settings.replace(database_connection=db)


config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    envvar="USERMESSAGES_CONFIG", help="INI config file (see docs/configuration.md).",
)
db_option = click.option(
    "--db", default=None, envvar="USERMESSAGES_DB",
    help="Database URL; overrides [database] connection.",
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """Tell cloud users why their asynchronous operations failed."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option("--host", default=None,
              help=f"Listen address (default {config_module.DEFAULTS.host}).")
@click.option("--port", type=int, default=None,
              help=f"Listen port (default {config_module.DEFAULTS.port}).")
@db_option
@config_option
@_edge
def serve(host: str | None, port: int | None, db: str | None, config_file: str | None) -> None:
    """Run the API, the reaper and (embedded) a collector, on the configured store."""
    from usermessages import service
    from usermessages.store import engine as store_engine
    from usermessages.store import migrate

    settings = _settings(config_file, db).replace(host=host, port=port)
    engine = store_engine.connect(settings.database_connection, timeout=settings.database_timeout)
    if engine.dialect.name == "sqlite":
        # The embedded default sets itself up; a shared server is upgraded on purpose.
        migrate.upgrade(engine)
    elif not migrate.is_at_head(engine):
        raise click.ClickException(
            "the database schema is not current: run `usermessages db upgrade` first"
        )
    sock = service.listen(settings.host, settings.port)
    # Printed once the port is ours: a second server fails above, before any banner.
    collector = ("embedded on " + _safe_url(settings.bus_url) if settings.collector_embedded
                 else "off")
    console.print(
        f"usermessages API on http://{settings.host}:{settings.port}/v3 "
        f"(store: {engine.url.render_as_string(hide_password=True)}; "
        f"collector: {collector})"
    )
    service.serve(settings, engine, sock=sock)


def _safe_url(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


@main.command()
@click.option("--bus", "bus_url", default=None, envvar="USERMESSAGES_BUS",
              help="Broker URL; overrides [bus] url.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics on this port (0: off); overrides "
                   "[collector] metrics_port.")
@db_option
@config_option
@_edge
def collector(bus_url: str | None, metrics_port: int | None, db: str | None,
              config_file: str | None) -> None:
    """Consume messages from the bus and store them, until SIGTERM or Ctrl-C.

    With a metrics port, GET /metrics on it serves this process's counters
    (stored, dead-lettered, unmapped notifications...) in Prometheus' format.
    """
    import signal
    import threading

    from usermessages.collector import Collector
    from usermessages.notifications import sources_from_settings
    from usermessages.store import engine as store_engine

    settings = _settings(config_file, db).replace(bus_url=bus_url,
                                                  collector_metrics_port=metrics_port)
    extra = sources_from_settings(settings)
    engine = store_engine.connect(settings.database_connection)
    if settings.collector_metrics_port:
        _serve_metrics(settings.collector_metrics_host, settings.collector_metrics_port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"collector: {_safe_url(settings.bus_url)} -> "
                  f"{engine.url.render_as_string(hide_password=True)}")
    Collector.from_settings(settings, engine, extra).run(stop)


def _serve_metrics(host: str, port: int) -> None:
    """Prometheus' own listener, in a daemon thread: it dies with the collector."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise click.ClickException(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    console.print(f"collector metrics on http://{host}:{port}/metrics")


@main.group("dead-letters")
def dead_letters() -> None:
    """Envelopes the collector could not accept."""


@dead_letters.command("list")
@click.option("--bus", "bus_url", default=None, envvar="USERMESSAGES_BUS",
              help="Broker URL; overrides [bus] url.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@config_option
@_edge
def dead_letters_list(bus_url: str | None, limit: int, fmt: str, config_file: str | None) -> None:
    """Show dead letters with the reason each was refused (they stay in the queue)."""
    from usermessages.collector import list_dead_letters

    settings = _settings(config_file).replace(bus_url=bus_url)
    try:
        letters = list_dead_letters(settings.bus_url, limit, settings.bus_timeout)
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach the broker at {_safe_url(settings.bus_url)}: {exc}"
        ) from exc
    if fmt == "json":
        click.echo(json.dumps(letters, indent=2))
        return
    table = Table("Source", "Reason", "Envelope (first 500 bytes)")
    for letter in letters:
        table.add_row(letter["source"], letter["reason"], letter["body"])
    console.print(table)
    click.echo(f"{len(letters)} dead letter(s)")


@main.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@db_option
@config_option
@_edge
def db_upgrade(db: str | None, config_file: str | None) -> None:
    """Create or upgrade the messages table to the current schema."""
    from usermessages.store import engine as store_engine
    from usermessages.store import migrate

    engine = store_engine.connect(_settings(config_file, db).database_connection)
    migrate.upgrade(engine)
    click.echo(f"database at revision {migrate.current(engine)}")


@main.command()
@db_option
@config_option
@_edge
def reap(db: str | None, config_file: str | None) -> None:
    """Run one reaper pass and print how many expired messages it deleted."""
    from usermessages.reaper import reap as reap_once
    from usermessages.store import engine as store_engine

    settings = _settings(config_file, db)
    engine = store_engine.connect(settings.database_connection)
    result = reap_once(engine, settings.message_reap_batch_size, ttl=settings.message_ttl)
    if result.skipped:
        click.echo("another node is reaping now; nothing deleted")
    else:
        click.echo(f"deleted {result.deleted} expired messages")


@main.group()
def catalog() -> None:
    """The sanctioned catalog of resources, actions and details."""


def _catalog(config_file: str | None, lang: str) -> Catalog:
    """The catalog in force (overrides applied), in ``lang``; an unknown language is an error."""
    translator = Translator(Catalog.from_file(_settings(config_file).catalog_overrides_file
                                              or None))
    if lang not in translator.languages:
        raise click.BadParameter(f"{lang!r} is none of {', '.join(translator.languages)}",
                                 param_hint="'--lang'")
    return translator.catalog_for(lang)


lang_option = click.option("--lang", default="en", show_default=True,
                           help="Language of the texts: en, a shipped one (de, fr, ja, zh_CN) "
                                "or one the overrides file gives.")


@catalog.command("list")
@config_option
@lang_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table")
@_edge
def catalog_list(config_file: str | None, lang: str, fmt: str) -> None:
    """Print every catalog entry with its id and text (deployer overrides applied)."""
    entries = list(_catalog(config_file, lang).rows())
    if fmt == "markdown":
        click.echo("| table | id | name | text |\n|---|---|---|---|")
        for row in entries:
            click.echo("| " + " | ".join(row) + " |")
        return
    if fmt == "json":
        click.echo(json.dumps(
            [{"table": t, "id": i, "name": n, "text": x} for t, i, n, x in entries], indent=2,
            ensure_ascii=False))
        return
    table = Table("Table", "Id", "Name", "Text")
    for row in entries:
        table.add_row(*row)
    console.print(table)


@catalog.command("advice")
@config_option
@lang_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table")
@_edge
def catalog_advice(config_file: str | None, lang: str, fmt: str) -> None:
    """Print each detail's remediation, whether action is required, and its help link."""
    entries = list(_catalog(config_file, lang).advice_rows())
    if fmt == "markdown":
        click.echo("| detail | name | action required | remediation | help |\n"
                   "|---|---|---|---|---|")
        for detail_id, name, advice in entries:
            required = "yes" if advice.action_required else "no"
            click.echo(f"| {detail_id} | {name} | {required} | {advice.remediation} | "
                       f"{advice.help_url} |")
        return
    if fmt == "json":
        click.echo(json.dumps([
            {"detail": i, "name": n, "remediation": a.remediation,
             "action_required": a.action_required, "help_url": a.help_url or None}
            for i, n, a in entries], indent=2, ensure_ascii=False))
        return
    table = Table("Detail", "Name", "Action required", "Remediation", "Help")
    for detail_id, name, advice in entries:
        table.add_row(detail_id, name, "yes" if advice.action_required else "no",
                      advice.remediation, advice.help_url)
    console.print(table)


@main.group("config")
def config_group() -> None:
    """Configuration helpers."""


@config_group.command("sample")
def config_sample() -> None:
    """Print a config file with every option documented at its default."""
    click.echo(config_module.sample(), nl=False)


@config_group.command("docs")
def config_docs() -> None:
    """Print docs/configuration.md: every option, its default and meaning."""
    click.echo(config_module.markdown(), nl=False)


def _register_client() -> None:
    from usermessages.cli import export  # noqa: F401  (adds `message export`)
    from usermessages.cli.client import message

    main.add_command(message)


_register_client()
from usermessages.cli import zaqar as _zaqar_cli  # noqa: E402  (zaqar-collector, subscription)

_zaqar_cli.register(main)
from usermessages.cli import webhooks as _webhooks_cli  # noqa: E402  (webhook, webhook-deliverer)

_webhooks_cli.register(main)


if __name__ == "__main__":
    main()
