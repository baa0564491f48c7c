"""``usermessages message ...``: a client of a running API (placeholder, filled in below)."""

import click


@click.group()
def message() -> None:
    """Read and delete messages through a running API."""
