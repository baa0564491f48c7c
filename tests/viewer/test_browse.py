"""The list page's browsing aids in Chromium: the total, pages both ways, time presets in
the rows' zone, the summary search, resource links, the histogram, the export button,
and a phone's first screen.

The histogram's screenshot is saved in artifacts/screenshots/; with UPDATE_DOCS_IMAGES=1
it also replaces docs/img/histogram.png, the one the README shows:
``UPDATE_DOCS_IMAGES=1 .venv/bin/python -m pytest tests/viewer/test_browse.py -k histogram``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page, expect

from tests.api.conftest import row, summary
from tests.harness import servers
from tests.viewer.test_viewer import _page, sign_in
from tests.viewer_session import sign_in as viewer_sign_in
from usermessages.catalog import Action, Catalog, Detail, Resource
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import writer
from usermessages.viewer import browse

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
PROJECT, OTHER = "aaaa0001", "bbbb0002"
TOKYO = dt.timedelta(hours=9)  # the browser's zone in _page (no DST in Japan)
RESOURCE_URL = "http://volumes.example:8776/v3/{project_id}/{collection}/{resource_uuid}"
# A summary with a word longer than any screen: it must wrap, not widen the page.
LONG_DETAIL = "The backend refused: " + "x" * 180 + " (see your administrator)."


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _at(project: str, when: dt.datetime, **fields) -> dict:
    r = row(project, **fields)
    r.update(created_at=when, expires_at=when + dt.timedelta(days=30))
    return r


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, str, list[dict]]]:
    """A live server (catalog override, resource links configured) and 62 of A's messages
    over the last day."""
    home = tmp_path_factory.mktemp("browse")
    overrides = home / "catalog.ini"
    overrides.write_text(f"[detail]\n{Detail.NOT_ENOUGH_SPACE_FOR_IMAGE.id} = {LONG_DETAIL}\n")
    config = home / "usermessages.conf"
    config.write_text(f"[catalog]\noverrides_file = {overrides}\n\n"
                      f"[viewer]\nresource_url = {RESOURCE_URL}\n")
    db_url = f"sqlite:///{home}/usermessages.sqlite"
    with servers.api_server(db_url, config_file=str(config)) as base:
        now = _now()
        # Spread over the day, with a burst about six hours ago (as a failing backend makes).
        minutes = [1 + (i * 47) % 1400 if i < 40 else 360 + 2 * (i - 40) for i in range(60)]
        rows = [_at(PROJECT, now - dt.timedelta(minutes=minutes[i]),
                    action=(Action.ATTACH_VOLUME, Action.EXTEND_VOLUME)[i % 2],
                    detail=(Detail.ATTACH_ERROR, Detail.DRIVER_FAILED_EXTEND)[i % 2],
                    resource_uuid=f"vol-{i:03d}")
                for i in range(60)]
        rows.append(_at(PROJECT, now - dt.timedelta(minutes=3), action=Action.SNAPSHOT_CREATE,
                        detail=Detail.SNAPSHOT_CREATE_ERROR, resource=Resource.VOLUME_SNAPSHOT,
                        resource_uuid="snap-7", level="WARNING"))
        rows.append(_at(PROJECT, now - dt.timedelta(minutes=7),
                        action=Action.COPY_IMAGE_TO_VOLUME,
                        detail=Detail.NOT_ENOUGH_SPACE_FOR_IMAGE, resource_uuid="vol-long"))
        rows.append(_at(OTHER, now - dt.timedelta(minutes=2), resource_uuid="vol-secret"))
        engine = store_engine.connect(db_url)
        with engine.begin() as conn:
            writer.insert(conn, rows)
        engine.dispose()
        yield base, db_url, rows


def _listed(db_url: str, **query) -> list[store.StoredMessage]:
    engine = store_engine.connect(db_url)
    try:
        with engine.connect() as conn:
            return store.list_messages(conn, PROJECT, store.ListQuery(**query))
    finally:
        engine.dispose()


def _ids(page: Page) -> list[str]:
    return page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


def _signed_in(browser: Browser, base: str, **options) -> Page:
    page = _page(browser, **options)
    sign_in(page, base, "alice", PROJECT)
    return page


def test_the_total_of_matching_messages_is_shown(site, browser):
    base, db_url, _ = site
    page = _signed_in(browser, base)
    expect(page.locator("#total")).to_have_text("62 messages match")
    page.goto(f"{base}/viewer/messages?message_level=WARNING")
    expect(page.locator("#total")).to_have_text("1 message matches")
    page.goto(f"{base}/viewer/messages?resource_type=VOLUME_BACKUP")
    expect(page.locator("#total")).to_have_text("0 messages match")
    # The total counts every page, not the one shown.
    page.goto(f"{base}/viewer/messages")
    assert page.locator("#rows tr").count() == 50
    assert len(_listed(db_url)) == 62


@pytest.mark.parametrize("sort", ["created_at:desc", "created_at:asc", "event_id:asc"])
def test_previous_and_next_pages_walk_the_same_rows_both_ways(site, browser, sort):
    base, db_url, _ = site
    page = _signed_in(browser, base)
    page.goto(f"{base}/viewer/messages?sort={sort}")
    expect(page.get_by_role("link", name="‹ Previous page")).to_have_count(0)
    pages = [_ids(page)]
    while page.get_by_role("link", name="Next page »").count():
        page.get_by_role("link", name="Next page »").click()
        pages.append(_ids(page))
    key, _, direction = sort.partition(":")
    expected = [r.id for r in _listed(db_url, sort=[(key, direction)])]
    assert [i for p in pages for i in p] == expected and len(pages) == 2
    # And back: each page as it was, and no previous link on the first.
    for earlier in reversed(pages[:-1]):
        page.get_by_role("link", name="‹ Previous page").click()
        expect(page).to_have_url(re.compile(r"before="))
        assert _ids(page) == earlier
    expect(page.get_by_role("link", name="‹ Previous page")).to_have_count(0)
    expect(page.get_by_role("link", name="Next page »")).to_have_count(1)


def _field_time(page: Page, label: str) -> dt.datetime:
    return dt.datetime.fromisoformat(page.get_by_label(label, exact=True).input_value())


def test_time_presets_fill_the_range_in_the_rows_zone(site, browser):
    base, db_url, _ = site
    page = _signed_in(browser, base, viewport={"width": 1400, "height": 900})
    group = page.get_by_role("group", name="Time presets")
    expect(group.get_by_role("link")).to_have_text(["Last hour", "Last day", "Last week"])
    group.get_by_role("link", name="Last hour").click()
    expect(page).to_have_url(re.compile(r"last=1h"))
    # The From field is in the browser's zone (Tokyo), as the rows' times are.
    expect(page.locator(".zone-label").first).to_have_text("From (Asia/Tokyo)")
    shown = _field_time(page, "From")
    assert abs(shown - (_now() - dt.timedelta(hours=1) + TOKYO)) < dt.timedelta(minutes=2)
    within = _listed(db_url, created_since=_now() - dt.timedelta(hours=1))
    expect(page.locator("#total")).to_have_text(f"{len(within)} messages match")
    assert _ids(page) == [r.id for r in within]
    first = page.locator("#rows tr time").first
    stamp = dt.datetime.fromisoformat(first.get_attribute("datetime").rstrip("Z"))
    assert (stamp + TOKYO).strftime("%-I:%M:%S") in first.inner_text()  # en-US, 12-hour
    # Applying the form sends the range back in UTC: the same rows.
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"since=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d"))
    sent = dt.datetime.fromisoformat(
        re.search(r"since=([^&]+)", page.url).group(1).replace("%3A", ":"))
    assert abs(sent - (_now() - dt.timedelta(hours=1))) < dt.timedelta(minutes=2)
    assert _field_time(page, "From") == sent + TOKYO
    page.get_by_role("group", name="Time presets").get_by_role("link", name="Last day").click()
    within = _listed(db_url, created_since=_now() - dt.timedelta(days=1))
    expect(page.locator("#total")).to_have_text(f"{len(within)} messages match")


@pytest.mark.parametrize("since", ["2026-11-30T01:02:03", "2026-11-30T01:02:03Z",
                                   "2026-11-30T10:02:03%2B09:00"])
def test_a_since_in_the_url_shows_in_the_from_field(site, browser, since):
    base, _, _ = site
    page = _signed_in(browser, base)
    page.goto(f"{base}/viewer/messages?since={since}")
    assert _field_time(page, "From") == dt.datetime(2026, 11, 30, 1, 2, 3) + TOKYO
    assert page.get_by_label("Until", exact=True).input_value() == ""


def test_search_on_the_summary_matches_the_text_shown(site, browser):
    base, _, rows = site
    page = _signed_in(browser, base)
    page.get_by_role("searchbox", name="Search summary").fill("snapshot")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"q=snapshot"))
    expect(page.locator("#total")).to_have_text("1 message matches")
    expect(page.locator("#rows")).to_contain_text("snap-7")
    # Case-insensitive, on the composed text (an overridden one too).
    page.goto(f"{base}/viewer/messages?q=SEE+YOUR+ADMINISTRATOR")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("vol-long")
    catalog = Catalog(detail_texts={**Catalog().detail_texts,
                                    Detail.NOT_ENOUGH_SPACE_FOR_IMAGE.id: LONG_DETAIL})
    attach = sum("attach volume" in summary(r, catalog).lower() for r in rows
                 if r["project_id"] == PROJECT)
    page.goto(f"{base}/viewer/messages?q=attach+volume")
    expect(page.locator("#total")).to_have_text(f"{attach} messages match")
    page.goto(f"{base}/viewer/messages?q=" + "x" * 256)
    expect(page.get_by_role("alert")).to_contain_text("longer than 255 characters")


def test_each_row_links_to_its_resource(site, browser):
    base, _, _ = site
    page = _signed_in(browser, base)
    snapshot = page.get_by_role("link", name="volume snapshot snap-7")
    expect(snapshot).to_have_attribute(
        "href", f"http://volumes.example:8776/v3/{PROJECT}/snapshots/snap-7")
    volume = page.get_by_role("link", name="volume vol-000")
    expect(volume).to_have_attribute(
        "href", f"http://volumes.example:8776/v3/{PROJECT}/volumes/vol-000")


def test_without_a_template_the_link_is_the_resources_messages_here():
    backup = (Resource.VOLUME_BACKUP.value, "bk 1/2", PROJECT)
    assert browse.resource_url("", *backup) == "/viewer/messages?resource_uuid=bk+1%2F2"
    assert browse.resource_url("http://x/{nope}", *backup) == (
        "/viewer/messages?resource_uuid=bk+1%2F2")
    assert browse.resource_url("http://x/{project_id}/{collection}/{resource_uuid}", *backup) == (
        f"http://x/{PROJECT}/backups/bk%201%2F2")
    assert browse.resource_url("http://x/", Resource.VOLUME.value, "", PROJECT) is None


def test_long_summaries_wrap_instead_of_widening_the_page(site, browser):
    base, _, _ = site
    for width in (1280, 390):
        page = _signed_in(browser, base, viewport={"width": width, "height": 900})
        cell = page.locator("#rows tr", has_text="vol-long").locator("td.summary")
        expect(cell).to_contain_text("xxxx")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = cell.bounding_box()
        assert box["x"] + box["width"] <= width
        line = float(cell.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
        assert box["height"] > 2 * line  # wrapped onto several lines


def test_on_a_phone_the_first_message_is_on_the_first_screen(site, browser):
    base, _, _ = site
    page = _signed_in(browser, base, viewport={"width": 390, "height": 844}, is_mobile=True,
                      has_touch=True)
    filters = page.locator("details#filters")
    expect(filters).not_to_have_attribute("open", "")
    first = page.locator("#rows tr").first
    assert first.bounding_box()["y"] < 844
    # The resource id sits in the value column, beside its label, like the other values.
    resource = first.locator("td[data-label=Resource]")
    value = resource.locator(".value").bounding_box()
    code = resource.locator("code").bounding_box()
    time_value = first.locator("td[data-label=Time] time").bounding_box()
    assert abs(value["x"] - time_value["x"]) < 2 and code["x"] >= value["x"] - 1
    assert code["x"] + code["width"] <= 390
    # Unfolded on demand, and the filters still work.
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Level").select_option("WARNING")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#total")).to_have_text("1 message matches")
    page.screenshot(path=str(servers_shots() / "list-phone-folded.png"))


def servers_shots() -> Path:
    shots = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def test_the_histogram_draws_the_selected_range(site, browser):
    base, db_url, _ = site
    page = _page(browser, viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    sign_in(page, base, "alice", PROJECT)
    figure = page.get_by_role("figure")
    expect(figure).to_contain_text("Messages per hour")
    chart = figure.get_by_role("img")
    # Accessible: the chart is named by its caption and described in words.
    expect(chart).to_have_accessible_name(re.compile(r"^Messages per hour, .* to .*"))
    day = len(_listed(db_url, created_since=_now() - dt.timedelta(days=1)))
    expect(chart).to_have_accessible_description(re.compile(
        rf"^{day} messages in 2[45] hours; the busiest: \d+ messages in the hour from "))
    bars = chart.locator("rect.bar")
    counts = bars.evaluate_all("bars => bars.map(b => Number(b.dataset.count))")
    assert sum(counts) == day and max(counts) >= 3
    expect(bars.first.locator("title")).to_have_text(re.compile(r"^\d+ messages? in the hour "
                                                                r"from \d{4}-"))
    # The tallest bar fills the frame; the others in proportion.
    heights = bars.evaluate_all("bars => bars.map(b => Number(b.getAttribute('height')))")
    assert max(heights) == browse.HEIGHT
    # The page's top: filters, the histogram, the total and the first rows.
    picture = page.screenshot(path=str(servers_shots() / "histogram.png"),
                              clip={"x": 0, "y": 0, "width": 1280, "height": 720})
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        (DOCS_IMG / "histogram.png").write_bytes(picture)
    # A week's range is drawn by day; a search narrows the bars as it does the rows.
    page.goto(f"{base}/viewer/messages?last=1w&q=snapshot")
    expect(figure).to_contain_text("Messages per day")
    counts = bars.evaluate_all("bars => bars.map(b => Number(b.dataset.count))")
    assert counts == [1]
    assert violations == []
    # A range too long for daily bars: the page says so, and the rows still show.
    page.goto(f"{base}/viewer/messages?since=2020-01-01T00:00:00")
    expect(figure).to_contain_text("at most 400 buckets are counted")
    expect(page.locator("#total")).to_have_text("62 messages match")


def test_the_export_button_downloads_the_filtered_view(site, browser, tmp_path):
    base, db_url, _ = site
    page = _signed_in(browser, base)
    page.goto(f"{base}/viewer/messages?message_level=ERROR&sort=created_at:asc")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    saved = tmp_path / "view.csv"
    download.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text(), newline="")))
    expected = _listed(db_url, filters={"message_level": "ERROR"}, sort=[("created_at", "asc")])
    # Every page of the view, not the 50 rows shown.
    assert [r["id"] for r in table] == [r.id for r in expected] and len(table) == 61
    assert "vol-secret" not in saved.read_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="NDJSON").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [r.id for r in expected]
    # Without a session, the download is a sign-in redirect, not data.
    stranger = browser.new_context()
    response = stranger.request.get(f"{base}/viewer/export?format=csv", max_redirects=0)
    assert response.status == 303 and response.headers["location"] == "/viewer/login"
    stranger.close()
    # Bad input is the viewer's error page, before any byte of a download.
    response = page.context.request.get(f"{base}/viewer/export?format=xlsx")
    assert response.status == 400 and "format must be" in response.text()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900},
                                      {"width": 390, "height": 844}])
def test_the_list_page_has_no_serious_accessibility_violations(site, browser, viewport):
    base, _, _ = site
    page = _signed_in(browser, base, viewport=viewport)
    page.goto(f"{base}/viewer/messages?last=1d&q=volume")
    results = Axe().run(page)
    assert len(results.response["passes"]) > 10  # axe ran on the page
    serious = [(v["id"], [n["target"] for n in v["nodes"]])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


@settings(max_examples=60, deadline=None)
@given(params=st.dictionaries(
    st.sampled_from(["q", "since", "until", "last", "before", "marker", "sort", "format",
                     "resource_uuid", "message_level"]),
    st.one_of(st.text(max_size=120), st.sampled_from(["1h", "1w", "2026-11-30T01:02:03Z",
                                                      "created_at:asc", "csv", "ndjson"])),
    max_size=4),
    path=st.sampled_from(["/viewer/messages", "/viewer/export"]))
def test_no_query_makes_a_viewer_page_fail(viewer_client, params, path):
    response = viewer_client.get(path, params=params)
    assert response.status_code in (200, 400, 404), (params, response.text[:300])
    assert "Traceback" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.fixture(scope="module")
def viewer_client(site) -> Iterator[httpx.Client]:
    base, _, _ = site
    with httpx.Client(base_url=base, timeout=30) as client:
        assert viewer_sign_in(client, "alice", PROJECT).status_code == 303
        yield client
