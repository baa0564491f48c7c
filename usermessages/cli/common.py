"""What the ``usermessages`` commands share: the error edge, settings and common options.

Every command module imports this one; it imports no command module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from usermessages import config as config_module
from usermessages.errors import UserMessagesError

F = TypeVar("F", bound=Callable[..., Any])

# Banners and status lines of the long-running commands.
console = Console()
# Every process's log lines (serve's supervised workers log as the command does).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What the [server] extra brings; `pip install usermessages` alone is the SDK.
SERVER_MODULES = frozenset({"sqlalchemy", "alembic", "psycopg", "fastapi", "starlette",
                            "uvicorn", "oslo_policy", "oslo_config", "jinja2", "itsdangerous",
                            "multipart", "python_multipart", "oslo_log", "oslo_context",
                            "oslo_middleware", "oslo_messaging", "oslo_upgradecheck", "pycadf",
                            "a2wsgi", "cryptography"})


def edge(func: F) -> F:
    """Turn our errors into ClickException: a clear line, exit code 1, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # already a line and an exit code of its own (output.ColumnError: 2)
        except UserMessagesError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in SERVER_MODULES:
                raise
            raise click.ClickException(
                f"this command needs the server extra ({exc.name} is not installed): "
                "pip install 'usermessages[server]'") from exc

    return wrapper  # type: ignore[return-value]


def load_settings(config_file: str | None, db: str | None = None) -> config_module.Settings:
    """The config file's settings, with ``--db`` over ``[database] connection``."""
    return config_module.load(config_file).replace(database_connection=db)


def load_service_settings(config_file: str | None,
                          db: str | None = None) -> config_module.Settings:
    """A service command's settings (``load_settings``), its logging set up from them:
    oslo.log's options of the file, and ``-v`` (docs/operations.md)."""
    # oslo.log comes with the server extra, which every service command needs.
    from usermessages import logs

    settings = load_settings(config_file, db)
    context = click.get_current_context(silent=True)
    logs.setup(settings, verbose=bool(context and context.find_root().params.get("verbose")))
    return settings


def safe_url(url: str) -> str:
    """``url`` without its passwords, for banners and errors.

    Every host's, in a multi-host bus URL too (kombu's own sanitizer shows the
    second host's password of "amqp://...;amqp://...").
    """
    # kombu takes ~60 ms to import: only the commands that print a broker URL pay it.
    from usermessages.bus import redacted

    return redacted(url)


config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    envvar="USERMESSAGES_CONFIG", help="INI config file (see docs/configuration.md).",
)
db_option = click.option(
    "--db", default=None, envvar="USERMESSAGES_DB",
    help="Database URL; overrides [database] connection.",
)
