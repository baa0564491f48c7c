"""``openstack message webhook create|list|show|delete`` and ``webhook delivery list``.

A project's signed webhooks (``messages-ext/webhooks``, docs/webhooks.md). The
signing secret is in create's answer only, as an application credential's is.
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command
from osc_lib.exceptions import CommandError

from usermessages.osc import client
from usermessages.osc.v3.display import listing, one
from usermessages.osc.v3.filters import positive_int

BASE = "messages-ext/webhooks"
FIELDS = ("id", "url", "message_level", "event_id", "resource_type", "enabled",
          "disabled_reason", "consecutive_failures")
LONG = ("created_at",)
DELIVERY_FIELDS = ("created_at", "message_id", "seq", "attempt", "status_code", "error",
                   "outcome")


class CreateWebhook(command.ShowOne):
    """Subscribe a URL to the project's new messages (prints the signing secret, once)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("url", metavar="<url>",
                            help="Where to POST each message (http or https)")
        parser.add_argument("--level", metavar="<level>",
                            help="Only messages of this level (ERROR, WARNING, INFO)")
        parser.add_argument("--event-id", metavar="<event-id>",
                            help="Only this event, e.g. VOLUME_VOLUME_001_003")
        parser.add_argument("--resource-type", metavar="<type>",
                            help="Only messages about VOLUME, VOLUME_SNAPSHOT or VOLUME_BACKUP")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        fields = {"url": parsed_args.url,
                  "message_level": parsed_args.level.upper() if parsed_args.level else None,
                  "event_id": parsed_args.event_id,
                  "resource_type": (parsed_args.resource_type.upper()
                                    if parsed_args.resource_type else None)}
        body = {"webhook": {key: value for key, value in fields.items() if value}}
        return one(client.of(self.app).post(BASE, body)["webhook"])


class ListWebhooks(command.Lister):
    """List the project's webhooks"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--long", action="store_true", default=False,
                            help="List additional fields in output")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        found = client.of(self.app).get(BASE)["webhooks"]
        return listing(found, FIELDS + LONG if parsed_args.long else FIELDS)


class ShowWebhook(command.ShowOne):
    """Show a webhook (never its secret)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("webhook", metavar="<webhook-id>", help="Webhook to show (ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        api = client.of(self.app)
        return one(api.get(f"{BASE}/{parsed_args.webhook}")["webhook"])


class DeleteWebhook(command.Command):
    """Delete webhook(s), with their delivery logs"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("webhooks", metavar="<webhook-id>", nargs="+",
                            help="Webhook(s) to delete (ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> None:
        # As openstackclient's deletes: try each, say which failed, then fail once.
        api = client.of(self.app)
        failed = 0
        for webhook_id in parsed_args.webhooks:
            try:
                api.delete(f"{BASE}/{webhook_id}")
            except CommandError as exc:
                failed += 1
                self.log.error("Failed to delete webhook %s: %s", webhook_id, exc)
        if failed:
            raise CommandError(
                f"Failed to delete {failed} of {len(parsed_args.webhooks)} webhooks.")


class ListDeliveries(command.Lister):
    """List a webhook's delivery attempts, newest first"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("webhook", metavar="<webhook-id>", help="Webhook (ID)")
        parser.add_argument("--limit", metavar="<num-deliveries>", type=positive_int,
                            help="At most this many, up to 500 (default: 50)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        api = client.of(self.app)
        params = {"limit": parsed_args.limit} if parsed_args.limit else None
        found = api.get(f"{BASE}/{parsed_args.webhook}/deliveries", params)["deliveries"]
        return listing(found, DELIVERY_FIELDS)
