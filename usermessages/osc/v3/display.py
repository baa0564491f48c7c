"""API objects as cliff's columns: headings as openstackclient writes them, lists kept lists.

Headings derive from the API's field names (``event_id`` -> ``Event ID``), as
``openstack volume message list`` heads Cinder's; ``-c`` and the keys of
``-f json|yaml`` are these headings, as in every openstack command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from osc_lib.cli.format_columns import ListColumn

_WORDS = {"id": "ID", "ids": "IDs", "uuid": "UUID", "url": "URL"}


def heading(field: str) -> str:
    return " ".join(_WORDS.get(word, word.capitalize()) for word in field.split("_"))


def _cell(value: Any) -> Any:
    # A list stays a list in json and yaml, and reads "a, b" in a table or csv.
    return ListColumn(value) if isinstance(value, list) else value


def listing(items: Iterable[Mapping[str, Any]], fields: Sequence[str]
            ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """A Lister's answer: the headings of ``fields`` and one row per item."""
    return (tuple(heading(field) for field in fields),
            [tuple(_cell(item.get(field)) for field in fields) for item in items])


def one(item: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A ShowOne's answer: every field but the links, sorted by heading."""
    pairs = sorted((heading(field), _cell(value)) for field, value in item.items()
                   if field != "links")
    return tuple(h for h, _ in pairs), tuple(v for _, v in pairs)
