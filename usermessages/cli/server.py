"""The server side of ``usermessages``: serve, collector, dead-letters, db, reap, config.

The server extra's modules are imported by the command that runs them, so the
client and the catalog commands work on a `pip install usermessages` alone.
"""

from __future__ import annotations

import logging
import signal
import threading

import click

from usermessages import config as config_module
from usermessages.cli.common import (
    LOG_FORMAT,
    config_option,
    console,
    db_option,
    edge,
    load_service_settings,
    load_settings,
    safe_url,
)
from usermessages.cli.output import Column, Output, View, output_options

DEAD_LETTERS = View(
    "dead-letters list",
    (Column("source", "Source"), Column("reason", "Reason"),
     Column("body", "Envelope (first 500 bytes)")),
    shown=("source", "reason", "body"),
    priority=("reason", "body", "source"),
)


@click.command()
@click.option("--host", default=None,
              help=f"Listen address (default {config_module.DEFAULTS.host}).")
@click.option("--port", type=int, default=None,
              help=f"Listen port (default {config_module.DEFAULTS.port}).")
@click.option("--workers", type=int, default=None,
              help="API processes on the port; overrides [api] workers (0: one per core).")
@db_option
@config_option
@edge
def serve(host: str | None, port: int | None, workers: int | None, db: str | None,
          config_file: str | None) -> None:
    """Run the API and the viewer, the reaper and (embedded) a collector and the webhook
    deliverer, on the configured store; with several workers, under a supervisor."""
    from usermessages import service
    from usermessages.store import engine as store_engine
    from usermessages.store import migrate
    from usermessages.supervisor import cores

    settings = load_service_settings(config_file, db).replace(host=host, port=port,
                                                              workers=workers)
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
    collector = ("embedded on " + safe_url(settings.bus_url) if settings.collector_embedded
                 else "off")
    count = settings.workers or cores()
    console.print(
        f"usermessages API on http://{settings.host}:{settings.port}/v3 "
        f"(store: {engine.url.render_as_string(hide_password=True)}; "
        f"collector: {collector}; workers: {count})"
    )
    if count == 1:
        service.serve(settings, engine, sock=sock)
    else:
        service.serve_workers(settings, engine, sock, count,
                              log_level=logging.getLogger().level, log_format=LOG_FORMAT)


@click.command()
@click.option("--bus", "bus_url", default=None, envvar="USERMESSAGES_BUS",
              help="Broker URL; overrides [bus] url.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics on this port (0: off); overrides "
                   "[collector] metrics_port.")
@db_option
@config_option
@edge
def collector(bus_url: str | None, metrics_port: int | None, db: str | None,
              config_file: str | None) -> None:
    """Consume messages from the bus and store them, until SIGTERM or Ctrl-C.

    With a metrics port, GET /metrics on it serves this process's counters
    (stored, dead-lettered, unmapped notifications...) in Prometheus' format.
    """
    from usermessages.collector import Collector
    from usermessages.notifications import sources_from_settings
    from usermessages.store import engine as store_engine

    settings = load_service_settings(config_file, db).replace(
        bus_url=bus_url, collector_metrics_port=metrics_port)
    extra = sources_from_settings(settings)
    engine = store_engine.connect(settings.database_connection)
    if settings.collector_metrics_port:
        _serve_metrics(settings.collector_metrics_host, settings.collector_metrics_port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"collector: {safe_url(settings.bus_url)} -> "
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


@click.group("dead-letters")
def dead_letters() -> None:
    """Envelopes the collector could not accept."""


@dead_letters.command("list")
@click.option("--bus", "bus_url", default=None, envvar="USERMESSAGES_BUS",
              help="Broker URL; overrides [bus] url.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100)
@output_options(DEAD_LETTERS)
@config_option
@edge
def dead_letters_list(bus_url: str | None, limit: int, config_file: str | None,
                      output: Output) -> None:
    """Show dead letters with the reason each was refused (they stay in the queue)."""
    from usermessages.collector import list_dead_letters

    settings = load_settings(config_file).replace(bus_url=bus_url)
    try:
        letters = list_dead_letters(settings.bus_url, limit, settings.bus_timeout,
                                    settings.bus_queue_type)
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach the broker at {safe_url(settings.bus_url)}: {exc}"
        ) from exc
    output.items(letters)
    if output.fmt == "table":
        click.echo(f"{len(letters)} dead letter(s)")


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@db_option
@config_option
@edge
def db_upgrade(db: str | None, config_file: str | None) -> None:
    """Create or upgrade the messages table to the current schema.

    On PostgreSQL it also makes the partitions of the next days of inserts ahead."""
    from usermessages.store import engine as store_engine
    from usermessages.store import migrate, partitions
    from usermessages.store.messages import utcnow

    settings = load_service_settings(config_file, db)
    engine = store_engine.connect(settings.database_connection)
    migrate.upgrade(engine)
    partitions.make_ahead(engine, utcnow(), settings.message_ttl)
    click.echo(f"database at revision {migrate.current(engine)}")


@click.command()
@db_option
@config_option
@edge
def reap(db: str | None, config_file: str | None) -> None:
    """Run one reaper pass and print how many expired messages it deleted."""
    from usermessages.reaper import reap as reap_once
    from usermessages.store import engine as store_engine

    settings = load_service_settings(config_file, db)
    engine = store_engine.connect(settings.database_connection)
    result = reap_once(engine, settings.message_reap_batch_size, ttl=settings.message_ttl)
    if result.skipped:
        click.echo("another node is reaping now; nothing deleted")
    else:
        click.echo(f"deleted {result.deleted} expired messages")


@click.group("config")
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
