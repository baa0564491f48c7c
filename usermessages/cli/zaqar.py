"""``usermessages zaqar-collector`` and ``usermessages subscription ...`` (docs/zaqar.md).

Registered on the main group by ``register``; our errors become one line and
exit code 1 through main's ``_edge``, as for every other command.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from usermessages.zaqar.client import MIN_TTL
from usermessages.zaqar.subscriptions import DEFAULT_TTL

zaqar_option = click.option("--zaqar", "zaqar_url", default=None, envvar="USERMESSAGES_ZAQAR",
                            help="Zaqar v2 endpoint; overrides [zaqar] url.")
project_option = click.option("--project", required=True, envvar="OS_PROJECT_ID",
                              help="Project whose queue it is (default $OS_PROJECT_ID).")


def register(main: click.Group) -> None:
    from usermessages.cli.main import _edge, _safe_url, _settings, config_option, console, db_option

    @main.command("zaqar-collector")
    @zaqar_option
    @click.option("--project", "projects", multiple=True,
                  help="A project to read besides [zaqar] projects and the index (repeatable).")
    @db_option
    @config_option
    @_edge
    def zaqar_collector(zaqar_url: str | None, projects: tuple[str, ...], db: str | None,
                        config_file: str | None) -> None:
        """Claim messages from the projects' Zaqar queues and store them, until SIGTERM."""
        import signal
        import threading

        from usermessages.store import engine as store_engine
        from usermessages.zaqar.source import ZaqarCollector

        settings = _settings(config_file, db).replace(zaqar_url=zaqar_url)
        if projects:
            extra = ",".join(p for p in (settings.zaqar_projects, *projects) if p)
            settings = settings.replace(zaqar_projects=extra)
        engine = store_engine.connect(settings.database_connection)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        console.print(f"zaqar collector: {_safe_url(settings.zaqar_url)} -> "
                      f"{engine.url.render_as_string(hide_password=True)}")
        collector = ZaqarCollector.from_settings(settings, engine)
        try:
            collector.run(stop)
        finally:
            collector.close()

    @main.group()
    def subscription() -> None:
        """Webhooks receiving a project's user messages from Zaqar."""

    def _tools(config_file: str | None, zaqar_url: str | None):  # type: ignore[no-untyped-def]
        from usermessages.zaqar.client import ZaqarClient
        from usermessages.zaqar.sink import layout_from_settings

        settings = _settings(config_file).replace(zaqar_url=zaqar_url)
        client = ZaqarClient(settings.zaqar_url, timeout=settings.zaqar_timeout,
                             auth_token=settings.zaqar_auth_token)
        return client, layout_from_settings(settings)

    @subscription.command("create")
    @project_option
    @click.option("--subscriber", required=True, help="Webhook URL (http:// or https://).")
    @click.option("--ttl", type=int, default=DEFAULT_TTL, show_default=True,
                  help=f"Seconds before Zaqar drops the subscription (at least {MIN_TTL}).")
    @zaqar_option
    @config_option
    @_edge
    def subscription_create(project: str, subscriber: str, ttl: int, zaqar_url: str | None,
                            config_file: str | None) -> None:
        """Subscribe a webhook to the project's user messages; prints its id."""
        from usermessages.zaqar import subscriptions

        client, layout = _tools(config_file, zaqar_url)
        with client:
            click.echo(subscriptions.create(client, layout, project, subscriber, ttl))

    @subscription.command("list")
    @project_option
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @zaqar_option
    @config_option
    @_edge
    def subscription_list(project: str, fmt: str, zaqar_url: str | None,
                          config_file: str | None) -> None:
        """The project's subscriptions."""
        from usermessages.zaqar import subscriptions

        client, layout = _tools(config_file, zaqar_url)
        with client:
            found = subscriptions.list_(client, layout, project)
        if fmt == "json":
            click.echo(json.dumps(found, indent=2))
            return
        table = Table("Id", "Subscriber", "TTL", "Age")
        for item in found:
            table.add_row(item["id"], item["subscriber"], str(item["ttl"]), str(item["age"]))
        console.print(table)

    @subscription.command("delete")
    @project_option
    @click.argument("subscription_id")
    @zaqar_option
    @config_option
    @_edge
    def subscription_delete(project: str, subscription_id: str, zaqar_url: str | None,
                            config_file: str | None) -> None:
        """Delete one of the project's subscriptions."""
        from usermessages.zaqar import subscriptions

        client, layout = _tools(config_file, zaqar_url)
        with client:
            subscriptions.delete(client, layout, project, subscription_id)
        click.echo(f"deleted subscription {subscription_id}")
