"""The Event Viewer in a real browser: Debian's Chromium driven by Playwright.

Screenshots of the main pages are saved under artifacts/screenshots/ as test artifacts.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import servers
from tests.web import sse
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource, catalog
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.web.limits import RETRY_PROJECT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PROJECT_A, PROJECT_B = "aaaa0001", "bbbb0002"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A live `usermessages serve` and its SQLite URL, seeded for project A and B."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('viewer')}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        messenger = Messenger.from_url(db_url, host="vol-node-3")
        a = RequestContext(project_id=PROJECT_A, user_id="alice", request_id="req-shared-1")
        messenger.create(a, Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid="vol-a-1",
                         exception=catalog.NoValidBackend())
        messenger.create(a, Action.ATTACH_VOLUME, resource_uuid="vol-a-1",
                         detail=Detail.ATTACH_ERROR)
        messenger.create(RequestContext(project_id=PROJECT_A, user_id="alice"),
                         Action.BACKUP_CREATE, resource_type=Resource.VOLUME_BACKUP,
                         resource_uuid="bk-a-1", detail=Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP,
                         level=Level.WARNING)
        for i in range(120):
            messenger.create(RequestContext(project_id=PROJECT_A, user_id="alice"),
                             Action.EXTEND_VOLUME, resource_uuid=f"vol-bulk-{i:03d}",
                             detail=Detail.DRIVER_FAILED_EXTEND)
        messenger.create(RequestContext(project_id=PROJECT_B, user_id="bob"),
                         Action.SNAPSHOT_CREATE, resource_type=Resource.VOLUME_SNAPSHOT,
                         resource_uuid="snap-b-secret", detail=Detail.SNAPSHOT_CREATE_ERROR)
        messenger.create_service_message(Action.SERVICE_STATUS, Detail.SERVICE_DOWN,
                                         host="backup@node-9")
        yield base, db_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def _page(browser: Browser, **options) -> Page:
    context = browser.new_context(**{"timezone_id": "Asia/Tokyo", **options})
    context.set_default_timeout(10_000)
    return context.new_page()


def sign_in(page: Page, base: str, user: str, project: str) -> None:
    page.goto(f"{base}/viewer/")
    expect(page).to_have_url(re.compile(r"/viewer/login$"))
    page.get_by_label("User").fill(user)
    page.get_by_label("Project").fill(project)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/viewer/messages$"))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _row_ids(page: Page) -> list[str]:
    return page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


def _message_ids(db_url: str, project: str) -> list[str]:
    engine = store_engine.connect(db_url)
    with engine.connect() as conn:
        return [r.id for r in store.list_messages(conn, project, store.ListQuery())]


def test_list_shows_the_spec_columns_in_local_time(site, browser):
    base, _ = site
    page = _page(browser, viewport={"width": 1400, "height": 900})
    sign_in(page, base, "alice", PROJECT_A)
    headers = page.locator("thead th").all_inner_texts()
    # The tenant and node name are an admin's columns (see web.projections).
    assert headers == ["Time", "Level", "Summary", "Resource", "Event ID", "Request ID"]
    assert page.locator("#rows tr").count() == 50
    first_time = page.locator("#rows tr time").first
    utc = first_time.get_attribute("title")
    assert utc.endswith(" UTC")
    # Shown in the viewer's zone (Tokyo, UTC+9), with UTC on hover.
    stamp = dt.datetime.fromisoformat(first_time.get_attribute("datetime").rstrip("Z"))
    tokyo = stamp + dt.timedelta(hours=9)
    assert tokyo.strftime("%-d") in first_time.inner_text()
    assert "UTC" not in first_time.inner_text()
    assert page.get_by_text("extend volume:Volume Driver failed to extend volume.").count() >= 1
    shot(page, "list-wide")


def test_a_user_never_sees_another_projects_messages(site, browser):
    base, db_url = site
    page = _page(browser)
    sign_in(page, base, "bob", PROJECT_B)
    assert _row_ids(page) == _message_ids(db_url, PROJECT_B)
    body = page.content()
    assert "vol-a-1" not in body and "backup@node-9" not in body and "Node name" not in body
    a_message = _message_ids(db_url, PROJECT_A)[0]
    response = page.goto(f"{base}/viewer/messages/{a_message}")
    assert response.status == 404
    expect(page.get_by_role("alert")).to_contain_text(f"Message {a_message} could not be found.")
    response = page.goto(f"{base}/viewer/messages/{a_message}/delete")
    assert response.status == 404
    # Filters cannot widen the scope either.
    page.goto(f"{base}/viewer/messages?project_id={PROJECT_A}&resource_uuid=vol-a-1")
    assert page.locator("#rows tr").count() == 0
    # A forged delete with bob's own form token is refused too, and nothing is deleted.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    result = page.request.post(f"{base}/viewer/messages/{a_message}/delete",
                               form={"csrf": csrf}, max_redirects=0)
    assert result.status == 404
    assert a_message in _message_ids(db_url, PROJECT_A)


def test_admin_sees_every_project_and_service_messages(site, browser):
    base, _ = site
    page = _page(browser, viewport={"width": 1400, "height": 900})
    sign_in(page, base, "admin", "adad0000")
    assert page.locator("thead th").all_inner_texts()[-2:] == ["Tenant", "Node name"]
    page.goto(f"{base}/viewer/messages?kind=SERVICE")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("backup@node-9")
    expect(page.locator("#rows")).to_contain_text("report service status:The service stopped")
    page.goto(f"{base}/viewer/messages?project_id={PROJECT_B}")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("snap-b-secret")


def test_filters_live_in_the_url_and_can_be_bookmarked(site, browser):
    base, _ = site
    page = _page(browser)
    sign_in(page, base, "alice", PROJECT_A)
    page.get_by_label("Level").select_option("WARNING")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"message_level=WARNING"))
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("Incremental backup not possible")
    bookmark = page.url

    other = _page(browser)
    sign_in(other, base, "alice", PROJECT_A)
    other.goto(bookmark)
    expect(other.get_by_label("Level")).to_have_value("WARNING")
    expect(other.locator("#rows tr")).to_have_count(1)

    page.goto(f"{base}/viewer/messages?resource_type=VOLUME_BACKUP")
    expect(page.locator("#rows tr")).to_have_count(1)
    page.goto(f"{base}/viewer/messages?request_id=req-shared-1")
    expect(page.locator("#rows tr")).to_have_count(2)
    page.goto(f"{base}/viewer/messages?event_id=VOLUME_VOLUME_002_021")
    expect(page.locator("#rows tr")).to_have_count(1)
    # A time range in the future holds nothing; one around now holds everything.
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.goto(f"{base}/viewer/messages?since={future}")
    expect(page.get_by_text("No messages match.")).to_be_visible()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.goto(f"{base}/viewer/messages?since={past}&until={future}&resource_uuid=vol-a-1")
    expect(page.locator("#rows tr")).to_have_count(2)
    # Bad input is a clear error page, not a crash.
    response = page.goto(f"{base}/viewer/messages?since=yesterday")
    assert response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("created_since must be an ISO 8601 time")
    shot(page, "error")


def test_marker_pagination_walks_every_message_once(site, browser):
    base, db_url = site
    page = _page(browser)
    sign_in(page, base, "alice", PROJECT_A)
    seen: list[str] = []
    while True:
        seen += _row_ids(page)
        following = page.get_by_role("link", name="Next page »")
        if following.count() == 0:
            break
        following.click()
        expect(page).to_have_url(re.compile(r"marker="))
    assert seen == _message_ids(db_url, PROJECT_A)
    assert len(seen) == len(set(seen)) == 123
    page.goto(f"{base}/viewer/messages?sort=created_at:asc")
    assert _row_ids(page) == list(reversed(_message_ids(db_url, PROJECT_A)))[:50]


def test_detail_shows_related_messages_and_delete_asks_first(site, browser):
    base, db_url = site
    page = _page(browser)
    sign_in(page, base, "alice", PROJECT_A)
    page.goto(f"{base}/viewer/messages?request_id=req-shared-1")
    page.get_by_role("link", name=re.compile("^attach volume:")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "attach volume:Failed to attach volume.")
    same_request = page.locator("section", has=page.get_by_role("heading", name="Same request"))
    expect(same_request).to_contain_text("schedule allocate volume:Could not find")
    same_resource = page.locator("section", has=page.get_by_role("heading", name="Same resource"))
    expect(same_resource).to_contain_text("schedule allocate volume:")
    assert "vol-node-3" not in page.content()  # the node is for admins only
    shot(page, "detail")
    message_id = page.url.rsplit("/", 1)[1]

    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete this message?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    assert message_id in _message_ids(db_url, PROJECT_A)
    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Message {message_id} deleted.")
    assert message_id not in _message_ids(db_url, PROJECT_A)
    assert page.goto(f"{base}/viewer/messages/{message_id}").status == 404


def test_keyboard_only_use(site, browser):
    base, _ = site
    page = _page(browser)
    page.goto(f"{base}/viewer/login")
    page.keyboard.type("alice")  # the user field has focus
    page.keyboard.press("Tab")
    page.keyboard.type(PROJECT_A)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/viewer/messages$"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Event ID").focus()
    page.keyboard.type("VOLUME_VOLUME_BACKUP_013_030")
    page.keyboard.press("Enter")
    expect(page.locator("#rows tr")).to_have_count(1)


def test_readable_on_a_phone(site, browser):
    base, _ = site
    page = _page(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                 has_touch=True)
    sign_in(page, base, "alice", PROJECT_A)
    # Rows become labelled cards: no horizontal scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#rows tr").first.locator("td[data-label=Summary]")).to_be_visible()
    shot(page, "list-phone")


def test_new_messages_appear_live_and_a_lost_connection_is_said(browser, tmp_path):
    db_url = f"sqlite:///{tmp_path}/live.sqlite"
    with servers.api_server(db_url) as base:
        page = _page(browser)
        sign_in(page, base, "carol", "cccc0003")
        expect(page.locator("#live-status")).to_contain_text("Live:", timeout=10_000)
        messenger = Messenger.from_url(db_url)
        unique = f"vol-live-{uuid.uuid4().hex[:8]}"
        messenger.create(RequestContext(project_id="cccc0003"), Action.ATTACH_VOLUME,
                         resource_uuid=unique, detail=Detail.ATTACH_ERROR)
        # Another project's message must not reach this page's stream.
        messenger.create(RequestContext(project_id="dddd0004"), Action.ATTACH_VOLUME,
                         resource_uuid="vol-other-project", detail=Detail.ATTACH_ERROR)
        expect(page.locator("#rows")).to_contain_text(unique, timeout=10_000)
        time.sleep(1.5)
        assert "vol-other-project" not in page.locator("#rows").inner_text()
        assert page.locator("#rows tr").count() == 1
        shot(page, "live")
    # The server is gone: the page says so.
    expect(page.locator("#live-status")).to_contain_text("Live updates lost", timeout=15_000)


def test_a_live_list_refused_its_slot_says_why_then_goes_live(browser, tmp_path):
    """The project holds its one stream (the API's): the page says why it is not live,
    and goes live by itself once that stream closes (EventSource retries)."""
    config = tmp_path / "usermessages.conf"
    config.write_text("[api]\nmax_streams_per_project = 1\n")
    db_url = f"sqlite:///{tmp_path}/busy.sqlite"
    with servers.api_server(db_url, config_file=str(config)) as base:
        held = sse.api_stream(base, "cccc0003", user="carol")
        assert held.response().status_code == 200
        page = _page(browser)
        sign_in(page, base, "carol", "cccc0003")
        status = page.locator("#live-status")
        expect(status).to_contain_text(
            "Live updates paused: Your project already holds its share of the service's "
            "event streams (1)", timeout=10_000)
        shot(page, "live-busy")
        held.close()
        expect(status).to_contain_text("Live:", timeout=(RETRY_PROJECT + 10) * 1000)
        messenger = Messenger.from_url(db_url)
        messenger.create(RequestContext(project_id="cccc0003"), Action.ATTACH_VOLUME,
                         resource_uuid="vol-after-busy", detail=Detail.ATTACH_ERROR)
        expect(page.locator("#rows")).to_contain_text("vol-after-busy", timeout=10_000)
