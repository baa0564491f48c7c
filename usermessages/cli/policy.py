"""``usermessages policy``: the authorization rules, as docs/policy.md shows them."""

from __future__ import annotations

import click

from usermessages.cli.common import edge


@click.group("policy")
def policy_group() -> None:
    """The policy rules (oslo.policy's tools know them too: docs/policy.md)."""


@policy_group.command("docs")
@edge
def policy_docs() -> None:
    """Print docs/policy.md: every rule, its default, operations and who it lets in."""
    # oslo.policy comes with the server extra.
    from usermessages.reader import policy_docs as docs

    click.echo(docs.markdown(), nl=False)
