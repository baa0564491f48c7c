"""``openstack message aggregate list``: counts of a filtered view (``messages-ext/aggregates``).

One row per counted value: by event id, level and resource type (most frequent
first), and by time bucket (oldest first, empty buckets counted 0).
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command

from usermessages.osc import client
from usermessages.osc.v3.display import listing
from usermessages.osc.v3.filters import add_view_filters, query

# The API's dimensions, in the order the rows are listed.
DIMENSIONS = ("event_id", "message_level", "resource_type", "time")


class ListAggregates(command.Lister):
    """Count the project's messages by event, level, resource type and time"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--by", metavar="<dimension>", choices=DIMENSIONS, action="append",
            help="Only these counts (repeat for several): " + ", ".join(DIMENSIONS)
                 + " (default: all)")
        parser.add_argument(
            "--bucket", choices=("hour", "day"),
            help="Size of the time buckets (default: hour): the range is --since to "
                 "--until, by default the last day (hourly) or 30 days (daily)")
        add_view_filters(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], Any]:
        api = client.of(self.app)
        params = query(parsed_args)
        if parsed_args.bucket:
            params["bucket"] = parsed_args.bucket
        counts = api.get("messages-ext/aggregates", params)["aggregates"]
        chosen = dict.fromkeys(parsed_args.by or DIMENSIONS)  # in order, once each
        rows = [{"dimension": name, "value": item["start" if name == "time" else "value"],
                 "count": item["count"]}
                for name in chosen for item in counts[f"by_{name}"]]
        return listing(rows, ("dimension", "value", "count"))
