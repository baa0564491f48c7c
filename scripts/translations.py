"""Keep the shipped gettext catalogs in step with usermessages.catalog (uses Babel).

    .venv/bin/python scripts/translations.py          # write .pot, update each .po, compile .mo
    .venv/bin/python scripts/translations.py --check  # exit 1 if any of them is not current

The msgids are the catalog's English default texts (actions, details, remediations,
legacy events). A text that changes leaves its old translation behind as fuzzy, so
it no longer counts: tests/catalog/test_translations.py then names what to translate again.
The compiled .mo files are committed, so a fresh clone serves translations
without compiling anything; the test checks they match their .po.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from usermessages.catalog import ADVICE, LEGACY_EVENTS, Action, Detail  # noqa: E402
from usermessages.translations import DOMAIN, LOCALE_DIR  # noqa: E402


def msgids() -> dict[str, str]:
    """Every translatable English text, with where it comes from (the first place)."""
    found: dict[str, str] = {}
    for action in Action:
        found.setdefault(action.default_text, f"action {action.id} {action.name}")
    for detail in Detail:
        found.setdefault(detail.default_text, f"detail {detail.id} {detail.name}")
    for detail, advice in ADVICE.items():
        found.setdefault(advice.remediation, f"remediation {detail.id} {detail.name}")
    for event, text in LEGACY_EVENTS.items():
        found.setdefault(text, f"legacy {event}")
    return found


def template() -> PoCatalog:
    pot = PoCatalog(project="usermessages", domain=DOMAIN, fuzzy=False,
                    msgid_bugs_address="", copyright_holder="usermessages")
    for text, origin in msgids().items():
        pot.add(text, auto_comments=[origin])
    return pot


def _po_bytes(catalog: PoCatalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=100, omit_header=False, sort_output=False,
             ignore_obsolete=True, include_previous=True)
    return out.getvalue()


def _mo_bytes(catalog: PoCatalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def read(path: Path, locale: str | None = None) -> PoCatalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def outputs() -> dict[Path, bytes]:
    """What every generated file should hold: the .pot, each updated .po and its .mo."""
    pot = template()
    pot.creation_date = pot.revision_date = _fixed_date()
    files = {LOCALE_DIR / f"{DOMAIN}.pot": _po_bytes(pot)}
    for po_path in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = po_path.parent.parent.name
        po = read(po_path, language)
        po.update(pot, update_header_comment=False, no_fuzzy_matching=True)
        files[po_path] = _po_bytes(po)
        files[po_path.with_suffix(".mo")] = _mo_bytes(po)
    return files


def _fixed_date() -> dt.datetime:
    # A fixed date keeps the generated files reproducible (and --check meaningful).
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def main(argv: list[str]) -> int:
    stale = [path for path, content in outputs().items()
             if not path.exists() or path.read_bytes() != content]
    if "--check" in argv:
        for path in stale:
            print(f"not current: {path.relative_to(ROOT)} (run scripts/translations.py)")
        return 1 if stale else 0
    for path, content in outputs().items():
        if path in stale:
            path.write_bytes(content)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
