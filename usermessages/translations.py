"""The catalog in the reader's language: shipped gettext catalogs, deployer texts, negotiation.

Only texts are translated; ids, event ids and every other field never change.
The shipped catalogs are ``locale/<language>/LC_MESSAGES/usermessages.po``,
compiled to the ``.mo`` beside them (``scripts/translations`` with Babel; the
server reads them with the standard library). Their msgids are the English
default texts of ``usermessages.catalog``.
"""

from __future__ import annotations

import gettext
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from usermessages.catalog import Catalog

__all__ = ["DEFAULT", "LANGUAGES", "LOCALE_DIR", "Translator", "content_language", "negotiate",
           "parse_accept_language"]

DEFAULT = "en"
DOMAIN = "usermessages"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# The languages whose translations ship in the package (besides English).
LANGUAGES: tuple[str, ...] = tuple(sorted(
    path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")))

# RFC 9110 §12.5.4: language-range [ OWS ";" OWS "q=" qvalue ], qvalue 0 to 1, 3 decimals.
# "_" is tolerated for "-", as people type gettext's names (zh_CN) too.
_RANGE = re.compile(r"(?:[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*|\*)")
_WEIGHT = re.compile(r"[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")
# A header longer than this is cut: a browser sends a few dozen characters.
MAX_HEADER = 1024
# Chinese written in simplified characters, whatever the range names (RFC 4647 lookup
# would only find zh_CN from "zh-CN"); zh-TW, zh-HK and zh-Hant are traditional.
_ALIASES = {"zh": "zh_CN", "zh_hans": "zh_CN", "zh_sg": "zh_CN", "zh_hans_cn": "zh_CN",
            "zh_hans_sg": "zh_CN", "zh_my": "zh_CN", "zh_hans_my": "zh_CN"}
# Lookup stops at these rather than shorten them to "zh" (simplified Chinese).
_TRADITIONAL = frozenset({"zh_hant", "zh_tw", "zh_hk", "zh_mo"})


def parse_accept_language(header: str | None) -> list[str]:
    """The header's language ranges, most preferred first (q=0 and malformed ones dropped).

    Equal weights keep the header's order, as RFC 9110 leaves it to the server.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "")[:MAX_HEADER].split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        if not _RANGE.fullmatch(tag):
            continue
        weight = 1.0
        for param in params:
            match = _WEIGHT.fullmatch(param)
            if match is None:
                weight = -1.0  # a malformed weight: the range is ignored, not guessed at
                break
            weight = float(match.group(1))
        if weight > 0:
            ranked.append((-weight, position, tag))
    return [tag for _w, _p, tag in sorted(ranked)]


def negotiate(header: str | None, available: Iterable[str]) -> str:
    """The best of ``available`` for an Accept-Language header; English when none fits.

    RFC 4647 lookup per range: the range itself, then shorter prefixes
    (``de-AT-1996`` → ``de-AT`` → ``de``); ``*`` means any, so English.
    """
    by_key = {name.lower(): name for name in available}
    by_key.setdefault(DEFAULT, DEFAULT)
    for tag in parse_accept_language(header):
        if tag == "*":
            return DEFAULT
        parts = tag.replace("-", "_").lower().split("_")
        while parts:
            key = "_".join(parts)
            found = by_key.get(key) or by_key.get(_ALIASES.get(key, "").lower())
            if found is not None:
                return found
            if key in _TRADITIONAL:
                break
            parts.pop()
    return DEFAULT


def content_language(language: str) -> str:
    """The language as an HTTP language tag (``zh_CN`` → ``zh-CN``)."""
    return language.replace("_", "-")


class Translator:
    """The English catalog and its versions in every language, composed once each."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.languages: tuple[str, ...] = tuple(
            sorted({DEFAULT, *LANGUAGES, *catalog.translations}))
        self._localized: dict[str, Catalog] = {DEFAULT: catalog}
        self._lock = threading.Lock()

    def negotiate(self, header: str | None) -> str:
        return negotiate(header, self.languages)

    def catalog_for(self, language: str) -> Catalog:
        """The catalog in ``language``; one this translator does not know is English."""
        found = self._localized.get(language)
        if found is None:
            if language not in self.languages:
                return self.catalog
            with self._lock:
                found = self._localized.setdefault(language, _localize(self.catalog, language))
        return found


def _localize(catalog: Catalog, language: str) -> Catalog:
    """A language's text is, in order: the deployer's text for that language, the
    deployer's English text (a shipped translation of a replaced text would say
    something else), the shipped translation, English."""
    shipped = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)
    deployer = catalog.translations.get(language, {})

    def pick(table: str, texts: Mapping[str, str], translate: bool = True) -> dict[str, str]:
        out = {}
        for key, text in texts.items():
            own = deployer.get(table, {}).get(key)
            if own is not None:
                out[key] = own
            elif translate and text and (table, key) not in catalog.overridden:
                out[key] = shipped.gettext(text)
            else:
                out[key] = text
        return out

    return replace(
        catalog, language=language,
        action_texts=pick("action", catalog.action_texts),
        detail_texts=pick("detail", catalog.detail_texts),
        remediation_texts=pick("remediation", catalog.remediation_texts),
        help_urls=pick("help_url", catalog.help_urls, translate=False),
        legacy_texts=pick("legacy", catalog.legacy_texts),
    )
