"""The viewer in the reader's language, in a real Chromium: the browser's Accept-Language
first, then the reader's own choice, kept in a cookie across pages and sign-outs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.harness import servers
from tests.viewer.test_viewer import _page, shot, sign_in
from usermessages import Action, Messenger, RequestContext, catalog

PROJECT = "cccc0003"
GERMAN = "Volume zuteilen (Planung):Es wurde kein verfügbares gewichtetes Backend gefunden."
JAPANESE = "ボリューム割り当てのスケジュール:利用可能な重み付けバックエンドが見つかりませんでした。"
ENGLISH = "schedule allocate volume:Could not find any available weighted backend."


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, str, Messenger]]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('viewer-lang')}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        messenger = Messenger.from_url(db_url, host="vol-node-1")
        message_id = messenger.create(
            RequestContext(project_id=PROJECT, user_id="carol"),
            Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid="vol-c-1",
            exception=catalog.NoValidBackend())
        yield base, message_id, messenger


def test_the_browsers_language_then_the_readers_choice(site, browser: Browser):  # noqa: F811
    base, message_id, _ = site
    page = _page(browser, locale="de-DE", viewport={"width": 1400, "height": 900})
    sign_in(page, base, "carol", PROJECT)
    summary = page.locator(f"#rows tr[data-id='{message_id}'] td.summary a")
    # Chromium sends Accept-Language: de-DE,de: the summary is German, the ids are not.
    expect(summary).to_have_text(GERMAN)
    expect(summary).to_have_attribute("lang", "de")
    expect(page.locator(f"#rows tr[data-id='{message_id}']")).to_contain_text(
        "VOLUME_VOLUME_001_003")
    # The reader picks Japanese; it holds on every page and after signing out and in.
    page.get_by_label("Messages in").select_option(label="日本語")
    page.get_by_role("button", name="Set language").click()
    expect(page).to_have_url(re.compile(r"/viewer/messages$"))
    expect(summary).to_have_text(JAPANESE)
    summary.click()
    expect(page).to_have_url(re.compile(rf"/viewer/messages/{message_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(JAPANESE)
    advice = page.locator(".advice")
    expect(advice).to_contain_text("より小さいサイズか別のボリュームタイプを選ぶか")
    expect(advice).to_contain_text("Action required.")
    shot(page, "detail-ja")
    # A choice made on a page comes back to that page.
    page.get_by_label("Messages in").select_option(label="Français")
    page.get_by_role("button", name="Set language").click()
    expect(page).to_have_url(re.compile(rf"/viewer/messages/{message_id}$"))
    expect(advice).to_contain_text("Choisissez une taille plus petite")
    page.get_by_label("Messages in").select_option(label="日本語")
    page.get_by_role("button", name="Set language").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "carol", PROJECT)
    expect(summary).to_have_text(JAPANESE)
    # Back to the browser's language.
    page.get_by_label("Messages in").select_option(label="browser's language")
    page.get_by_role("button", name="Set language").click()
    expect(summary).to_have_text(GERMAN)


def test_an_unknown_browser_language_reads_english_and_bad_choices_are_refused(
        site, browser: Browser):  # noqa: F811
    base, message_id, _ = site
    page = _page(browser, locale="tlh")
    sign_in(page, base, "carol", PROJECT)
    expect(page.locator(f"#rows tr[data-id='{message_id}'] td.summary a")).to_have_text(ENGLISH)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    refused = page.request.post(f"{base}/viewer/language", max_redirects=0,
                                form={"csrf": csrf, "choice": "xx", "back": "/viewer/messages"})
    assert refused.status == 400
    # A return address off the viewer is ignored, never followed.
    answer = page.request.post(f"{base}/viewer/language", max_redirects=0,
                               form={"csrf": csrf, "choice": "fr",
                                     "back": "//evil.example/x"})
    assert answer.status == 303 and answer.headers["location"] == "/viewer/messages"
    forged = page.request.post(f"{base}/viewer/language", max_redirects=0,
                               form={"csrf": "forged", "choice": "fr", "back": ""})
    assert forged.status == 400


def test_the_live_stream_speaks_the_chosen_language(site, browser: Browser):  # noqa: F811
    base, _, messenger = site
    page = _page(browser, locale="en-US")
    sign_in(page, base, "carol", PROJECT)
    page.get_by_label("Messages in").select_option(label="简体中文")
    page.get_by_role("button", name="Set language").click()
    expect(page.locator("#live-status")).not_to_contain_text("Connecting")
    new_id = messenger.create(RequestContext(project_id=PROJECT, user_id="carol"),
                              Action.ATTACH_VOLUME, resource_uuid="vol-c-2",
                              detail=catalog.Detail.ATTACH_ERROR)
    row = page.locator(f"#rows tr[data-id='{new_id}'] td.summary a")
    expect(row).to_have_text("挂载卷:挂载卷失败。", timeout=20_000)
    expect(row).to_have_attribute("lang", "zh-CN")


@pytest.mark.parametrize("cookie", ["../../locale/de", "zz_ZZ", "de%00", "JA", "x" * 3000])
def test_a_forged_language_cookie_falls_back_to_the_browsers(site, browser: Browser,  # noqa: F811
                                                            cookie):
    base, message_id, _ = site
    page = _page(browser, locale="fr-FR")
    page.context.add_cookies([{"name": "usermessages_language", "value": cookie,
                               "url": f"{base}/viewer/"}])
    sign_in(page, base, "carol", PROJECT)
    expect(page.locator(f"#rows tr[data-id='{message_id}'] td.summary a")).to_have_text(
        "planifier l'allocation du volume:Aucun backend pondéré disponible n'a été trouvé.")
