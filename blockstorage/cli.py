"""``blockstorage``: run the reference block-storage service, whole or in parts."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

import click

from blockstorage import config as storage_config
from usermessages import config as um_config
from usermessages.errors import UserMessagesError

if TYPE_CHECKING:
    from blockstorage.runtime import Runtime

try:
    from blockstorage import service
except ModuleNotFoundError as exc:  # an SDK-only install: say what is missing, once
    raise SystemExit(f"blockstorage needs the server extra ({exc.name} is not installed): "
                     "pip install 'usermessages[server]'") from exc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """A Cinder-compatible block-storage service that tells users why things failed."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--components", default=",".join(service.COMPONENTS), show_default=True,
              help="Comma-separated parts to run here: api, scheduler, volume, backup.")
@click.option("--host", default=None,
              help=f"API listen address (default {um_config.DEFAULTS.host}).")
@click.option("--port", type=int, default=None,
              help=f"API listen port (default {um_config.DEFAULTS.port}).")
@click.option("--db", default=None, envvar="USERMESSAGES_DB", help="Messages store URL.")
@click.option("--state-db", default=None, help="This service's own state store URL.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              envvar="USERMESSAGES_CONFIG", help="INI file (usermessages and [blockstorage]).")
def serve(components: str, host: str | None, port: int | None, db: str | None,
          state_db: str | None, config_file: str | None) -> None:
    """Run the chosen components; by default everything, embedded (the all-in-one)."""
    try:
        names = [n.strip() for n in components.split(",") if n.strip()]
        unknown = set(names) - set(service.COMPONENTS)
        if unknown:
            raise click.BadParameter(f"unknown components {sorted(unknown)}")
        settings = um_config.load(config_file).replace(
            database_connection=db, host=host, port=port)
        storage = storage_config.load(config_file)
        if state_db:
            storage = storage.__class__(**{**storage.__dict__, "connection": state_db})
        _run(settings, storage, names)
    except UserMessagesError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(settings: um_config.Settings, storage: storage_config.StorageSettings,
         names: list[str]) -> None:
    from usermessages.store import engine as store_engine

    # An unopenable store is an operator's mistake: one line that names it, no traceback.
    with store_engine.translated(f"cannot open the state store {_shown(storage.connection)}"):
        runtime = service.build_runtime(settings, storage)
    try:
        _run_parts(settings, runtime, names)
    finally:
        # Last, once every part has stopped creating messages: a bus or Zaqar sink
        # delivers what it spooled, or counts and logs it as lost.
        runtime.messenger.close()


def _run_parts(settings: um_config.Settings, runtime: Runtime,
               names: list[str]) -> None:
    from usermessages import service as um_service
    from usermessages.store import engine as store_engine
    from usermessages.store import migrate

    parts = service.components(runtime, settings, names)
    if "api" in names:
        engine = store_engine.connect(settings.database_connection)
        if engine.dialect.name == "sqlite":
            migrate.upgrade(engine)  # raises a one-line StoreError
        elif not migrate.is_at_head(engine):
            raise click.ClickException("the messages schema is not current: run "
                                       "`usermessages db upgrade` first")
        sock = um_service.listen(settings.host, settings.port)
        # Printed once the port is ours, never before an "address already in use".
        click.echo(f"block storage + messages API on http://{settings.host}:{settings.port}/v3 "
                   f"(components: {', '.join(names)})")
        um_service.serve(settings, engine, app=service.build_app(settings, engine, runtime),
                         background=parts, sock=sock)
        return
    # Workers only: run until SIGTERM or Ctrl-C.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threads = [threading.Thread(target=run, args=(stop,), name=name, daemon=True)
               for name, run in parts]
    for thread in threads:
        thread.start()
    click.echo(f"block storage components running: {', '.join(names)}")
    stop.wait()
    for thread in threads:
        thread.join(timeout=10)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL fails later with its own clear error
        return "(its URL is not valid)"


if __name__ == "__main__":
    main()
