"""``openstack message export``: a filtered view as NDJSON or CSV (``messages-ext/export``).

Streamed chunk by chunk to stdout or ``--file``; a file is written beside as
``FILE.part`` and renamed once complete, so a cut download never looks finished.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from osc_lib.command import command
from osc_lib.exceptions import CommandError

from usermessages.osc import client
from usermessages.osc.v3.filters import add_view_filters, query


class ExportMessages(command.Command):
    """Download every message matching the filters, as NDJSON or CSV"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        # Not cliff's -f: this is the file's format, a download, not a listing.
        parser.add_argument("--format", dest="export_format", choices=("ndjson", "csv"),
                            default="ndjson",
                            help="ndjson: one JSON object a line (default); csv: a header "
                                 "row, then one message a row")
        parser.add_argument("--file", metavar="<file>",
                            help="Write to this file instead of stdout")
        parser.add_argument("--sort", metavar="<key>[:<direction>]",
                            help="e.g. created_at:asc (default: created_at:desc)")
        add_view_filters(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> None:
        api = client.of(self.app)
        params = {"format": parsed_args.export_format, **query(parsed_args)}
        if parsed_args.sort:
            params["sort"] = parsed_args.sort
        chunks = api.download("messages-ext/export", params)
        if not parsed_args.file:
            out = sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            return
        target = Path(parsed_args.file)
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from exc
        except CommandError:
            partial.unlink(missing_ok=True)
            raise
