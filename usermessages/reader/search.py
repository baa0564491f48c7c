"""Free-text search on the summary: a term resolved to the catalog ids that render it.

A row stores ids, and its summary (``"<action>:<detail>"``) is composed at
read time from the catalog in force (deployer overrides included). So the
term is matched, case-insensitively, against the catalog's texts here, and
the store filters on the matching ids: the search finds exactly what the
page shows, old rows too, and stays an indexable ``IN`` in SQL. Placeholders
in an overridden text (``{resource_uuid}``...) are matched as rendered empty:
a search finds the catalog's words, not a row's own values.
"""

from __future__ import annotations

from usermessages.catalog import LEGACY_EVENTS, PLACEHOLDERS, Catalog
from usermessages.errors import BadRequest
from usermessages.store.messages import SummaryMatch

MAX_TERM = 255  # as any query value (reader.params.MAX_VALUE): a whole summary fits
_EMPTY = {name: "" for name in PLACEHOLDERS}


def _plain(text: str) -> str:
    return text.format_map(_EMPTY).casefold() if "{" in text else text.casefold()


def resolve(catalog: Catalog, term: str) -> SummaryMatch:
    """The ids whose rendered summary holds ``term``; BadRequest for an empty or long one."""
    needle = term.strip().casefold()
    if not needle:
        raise BadRequest("Invalid input received: the search term is empty.")
    if len(needle) > MAX_TERM:
        raise BadRequest(f"Invalid input received: the search term is longer than "
                         f"{MAX_TERM} characters.")
    actions = {key: _plain(text) for key, text in catalog.action_texts.items()}
    details = {key: _plain(text) for key, text in catalog.detail_texts.items()}
    action_ids = frozenset(key for key, text in actions.items() if needle in text)
    detail_ids = frozenset(key for key, text in details.items() if needle in text)
    pairs: frozenset[tuple[str, str]] = frozenset()
    if ":" in needle:
        # Only a term holding the seam can match a pair neither half matches alone.
        pairs = frozenset(
            (a, d) for a, a_text in actions.items() if a not in action_ids
            for d, d_text in details.items()
            if d not in detail_ids and needle in f"{a_text}:{d_text}")
    return SummaryMatch(
        action_ids=action_ids, detail_ids=detail_ids, pairs=pairs,
        null_detail_actions=frozenset(
            a for a, a_text in actions.items()
            if a not in action_ids and needle in f"{a_text}:{details['001']}"),
        legacy_event_ids=frozenset(
            event for event, text in LEGACY_EVENTS.items() if needle in text.casefold()))
