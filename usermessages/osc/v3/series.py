"""``openstack message series list|show``: repeats of one failure (``messages-ext/series``)."""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command

from usermessages.osc import client
from usermessages.osc.v3.display import listing, one
from usermessages.osc.v3.filters import add_resource_filters, positive_int, query

FIELDS = ("id", "event_id", "resource_type", "resource_uuid", "message_level", "count",
          "suppressed", "first_seen", "last_seen", "user_message")
# --long adds the latest occurrences' request ids (and, for an admin, the project).
LONG = ("request_ids",)


class ListSeries(command.Lister):
    """List the project's series of repeated failures, last seen first"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_resource_filters(parser)
        parser.add_argument("--limit", metavar="<num-series>", type=positive_int,
                            help="At most this many series")
        parser.add_argument("--marker", metavar="<series-id>",
                            help="The last series of the previous page")
        parser.add_argument("--long", action="store_true", default=False,
                            help="List additional fields in output")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        api = client.of(self.app)
        params = query(parsed_args)
        if parsed_args.marker:
            params["marker"] = parsed_args.marker
        if parsed_args.limit:
            params["limit"] = parsed_args.limit
        found = api.pages("messages-ext/series", "series", params, parsed_args.limit)
        fields: tuple[str, ...] = FIELDS + LONG if parsed_args.long else FIELDS
        if parsed_args.long and any("project_id" in item for item in found):
            fields += ("project_id",)
        return listing(found, fields)


class ShowSeries(command.ShowOne):
    """Show a series, with the request ids of its latest occurrences"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("series", metavar="<series-id>", help="Series to show (ID)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        api = client.of(self.app)
        return one(api.get(f"messages-ext/series/{parsed_args.series}")["series"])
