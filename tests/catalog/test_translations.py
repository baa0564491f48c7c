"""The shipped translations and the advice are data users rely on: complete, faithful, current.

Also the language negotiation (RFC 9110 weights, RFC 4647 lookup), with crafted headers.
"""

from __future__ import annotations

import re
import string
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from usermessages.catalog import ADVICE, LEGACY_EVENTS, Action, Catalog, CatalogError, Detail
from usermessages.translations import (
    LANGUAGES,
    LOCALE_DIR,
    Translator,
    negotiate,
    parse_accept_language,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "catalog.md"
REQUIRED = ("de", "fr", "ja", "zh_CN")


def _english_texts() -> set[str]:
    return ({a.default_text for a in Action} | {d.default_text for d in Detail}
            | {a.remediation for a in ADVICE.values()} | set(LEGACY_EVENTS.values()))


def _placeholders(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def test_the_required_languages_ship():
    assert set(REQUIRED) <= set(LANGUAGES)


@pytest.mark.parametrize("language", REQUIRED)
def test_every_text_has_a_faithful_translation(language):
    with (LOCALE_DIR / language / "LC_MESSAGES" / "usermessages.po").open("rb") as handle:
        po = read_po(handle, locale=language)
    translated = {m.id: m.string for m in po if m.id and not m.fuzzy}
    missing = sorted(t for t in _english_texts() if not translated.get(t, "").strip())
    assert missing == [], f"{language}: no translation for {missing}"
    for msgid, text in translated.items():
        assert _placeholders(text) == _placeholders(msgid), (language, msgid)
        assert text != msgid, (language, msgid)  # an untranslated copy is not a translation


def test_the_compiled_catalogs_are_current():
    # The .pot, each .po and each committed .mo are what scripts/translations.py writes.
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "translations.py"),
                             "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("language", REQUIRED)
def test_the_server_reads_every_translation(language):
    # Through the runtime path (stdlib gettext on the .mo), not Babel.
    english = Catalog()
    localized = Translator(english).catalog_for(language)
    assert localized.language == language
    for table in ("action_texts", "detail_texts", "remediation_texts", "legacy_texts"):
        for key, text in getattr(english, table).items():
            assert getattr(localized, table)[key] not in ("", text), (language, table, key)
    assert localized.help_urls == english.help_urls
    assert localized.action_required == english.action_required


def test_every_detail_has_advice():
    assert set(ADVICE) == set(Detail)
    for detail, advice in ADVICE.items():
        assert len(advice.remediation) > 20, detail
        assert advice.help_url == "" or advice.help_url.startswith("https://"), detail
    informational = {d for d, a in ADVICE.items() if not a.action_required}
    assert Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP in informational
    assert Detail.SERVICE_UP in informational and Detail.QUOTA_EXCEED not in informational


def test_every_advice_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    for detail_id, name, advice in Catalog().advice_rows():
        required = "yes" if advice.action_required else "no"
        assert (f"| {detail_id} | {name} | {required} | {advice.remediation} | "
                f"{advice.help_url} |") in text, detail_id


def test_the_documented_override_files_load(tmp_path):
    blocks = re.findall(r"```ini\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for body in blocks:
        path = tmp_path / "overrides.ini"
        path.write_text(body, encoding="utf-8")
        Catalog.from_file(path)


def test_a_deployers_english_text_outranks_a_translation_of_the_text_it_replaced(tmp_path):
    path = tmp_path / "overrides.ini"
    path.write_text("[detail]\n021 = Ask the desk.\n[detail:fr]\n022 = Détachement raté.\n"
                    "[remediation:ja]\n021 = 窓口へ。\n", encoding="utf-8")
    translator = Translator(Catalog.from_file(path))
    german, french, japanese = (translator.catalog_for(x) for x in ("de", "fr", "ja"))
    assert german.user_message("002", "021", "") == "Volume anhängen:Ask the desk."
    assert german.user_message("105", "022", "") == (
        "Volume abhängen:Das Volume konnte nicht abgehängt werden.")
    assert french.user_message("105", "022", "") == "détacher le volume:Détachement raté."
    assert japanese.advice("021").remediation == "窓口へ。"
    # An unknown language answers English rather than failing.
    assert translator.catalog_for("tlh") is translator.catalog


def test_each_language_is_composed_once_under_concurrency():
    translator = Translator(Catalog())
    seen: list[Catalog] = []
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        seen.append(translator.catalog_for("ja"))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(found is seen[0] for found in seen)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[detail:de-DE-x]\n003 = nope\n", "is not a language name"),
        ("[action_required:de]\n003 = true\n", "unknown section"),
        ("[detail:]\n003 = empty language\n", "is not a language name"),
        ("[action_required]\n003 = maybe\n", "is not true or false"),
        ("[help_url]\n003 = javascript:alert(1)\n", "is not an http(s) URL"),
        ("[help_url:fr]\n003 = https://x.example/{resource_uuid}\n", "is not an http(s) URL"),
        ("[remediation]\n999 = nope\n", "no id '999'"),
        ("[remediation:ja]\n003 = leaks {host}\n", "unknown placeholder {host}"),
        ("[remediation]\n003 =\n", "is empty"),
    ],
)
def test_bad_language_and_advice_overrides_fail_clearly(tmp_path, content, complaint):
    path = tmp_path / "overrides.ini"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError, match=re.escape(complaint)):
        Catalog.from_file(path)


AVAILABLE = ("en", "de", "fr", "ja", "zh_CN")


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"),
    ("", "en"),
    ("de", "de"),
    ("DE-at", "de"),
    ("de-AT-1996", "de"),
    ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
    ("en;q=0.1, ja", "ja"),
    ("ja;q=0.500, fr;q=0.5", "ja"),  # equal weights: the header's order
    ("zh", "zh_CN"), ("zh-CN", "zh_CN"), ("zh-Hans", "zh_CN"), ("zh-SG", "zh_CN"),
    ("zh_CN", "zh_CN"),
    ("zh-TW", "en"), ("zh-Hant-HK, ja;q=0.2", "ja"),
    ("de;q=0", "en"), ("de;q=0.000, fr;q=0.001", "fr"),
    ("de;q=1.5, fr;q=0.2", "fr"), ("de;q=abc", "en"), ("de;level=1, ja;q=0.1", "ja"),
    ("*", "en"), ("*, de", "en"),
    ("x-klingon, i-default", "en"),
])
def test_negotiation(header, expected):
    assert negotiate(header, AVAILABLE) == expected


@given(st.text(max_size=300))
def test_negotiation_never_fails_and_answers_an_available_language(header):
    assert negotiate(header, AVAILABLE) in AVAILABLE


@given(st.lists(st.tuples(st.sampled_from(["de", "fr", "ja", "zh-CN", "pt", "tlh", "en"]),
                          st.integers(0, 1000)), min_size=1, max_size=6, unique_by=lambda t: t[0]))
def test_the_heaviest_available_language_wins(ranges):
    header = ", ".join(f"{tag};q={weight / 1000:.3f}" for tag, weight in ranges)
    parsed = parse_accept_language(header)
    assert parsed == [tag for tag, weight in sorted(
        (r for r in ranges if r[1] > 0), key=lambda r: -r[1])]
    served = [tag for tag in parsed if tag in ("de", "fr", "ja", "zh-CN", "en")]
    assert negotiate(header, AVAILABLE) == (served[0].replace("-", "_") if served else "en")


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                       blacklist_characters="{}[]\\n\\r;#="),
                min_size=1, max_size=40).filter(lambda s: s.strip() == s and s.strip())


@given(english=_TEXT, german=_TEXT,
       field=st.sampled_from(sorted(["resource_type", "resource_uuid", "request_id",
                                     "message_level"])),
       language=st.sampled_from(["de", "fr", "pt_BR", "sr_Latn"]))
def test_any_override_text_lands_in_its_language_only(tmp_path_factory, english, german, field,
                                                      language):
    path = tmp_path_factory.mktemp("overrides") / "overrides.ini"
    path.write_text(f"[remediation]\n021 = {english}\n"
                    f"[remediation:{language}]\n021 = {german} {{{field}}}\n", encoding="utf-8")
    translator = Translator(Catalog.from_file(path))
    fields = {field: "X-1"}
    assert translator.catalog.advice("021", fields).remediation == english
    assert translator.catalog_for(language).advice("021", fields).remediation == f"{german} X-1"
    other = "ja" if language != "ja" else "de"
    assert translator.catalog_for(other).advice("021", fields).remediation == english
    assert language in translator.languages
