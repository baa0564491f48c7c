"""The keystone viewer's system scope in Chromium: `usermessages serve` in keystone mode
(the README's INI), the real Keystone, Playwright.

An operator (a member of alpha with a system admin role) switches to the system
and back without signing in again; a system admin signs in to the system and new
messages of any project arrive live; a project admin is told why it may not.
Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.harness import servers
from tests.harness.cloud import PASSWORD, Cloud
from tests.viewer.conftest import ARGS, CHROMIUM
from tests.viewer.test_viewer import shot
from usermessages import Action, Detail, Messenger, RequestContext, catalog
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.viewer.signin import NO_SYSTEM_ROLE

# A project's columns; the tenant and the node are an admin's (web/projections.py).
HEADERS = ["Time", "Level", "Summary", "Resource", "Event ID", "Request ID"]


@pytest.fixture(scope="module")
def site(cloud: Cloud, tmp_path_factory) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`usermessages serve --config` in keystone mode, its store URL, and what it holds."""
    root = tmp_path_factory.mktemp("system-scope")
    db_url = f"sqlite:///{root}/usermessages.sqlite"
    with servers.api_server(db_url, config_file=str(cloud.config_file(root))) as base:
        messenger = Messenger.from_url(db_url, host="vol-node-3")
        seeded = {
            name: messenger.create(RequestContext(project_id=cloud.projects[name], user_id="u"),
                                   Action.SCHEDULE_ALLOCATE_VOLUME,
                                   resource_uuid=f"vol-{name}-1",
                                   exception=catalog.NoValidBackend())
            for name in ("alpha", "beta")}
        seeded["service"] = messenger.create_service_message(
            Action.SERVICE_STATUS, Detail.SERVICE_DOWN, host="backup@node-9")
        seeded["system"] = messenger.create_system_message(Action.MESSAGE_BUS,
                                                           Detail.BROKER_UNREACHABLE)
        assert all(seeded.values())
        yield base, db_url, seeded
        messenger.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def _page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page: Page, base: str, user: str, project: str = "", *,
            system: bool = False) -> None:
    """The keystone sign-in form, as a person fills it."""
    page.goto(f"{base}/viewer/")
    expect(page).to_have_url(re.compile(r"/viewer/login$"))
    page.get_by_label("User").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    if system:
        page.get_by_label("the system: every project").check()
    else:
        page.get_by_label("Project", exact=True).fill(project)
    page.get_by_role("button", name="Sign in").click()


def _ids(page: Page) -> set[str]:
    return set(page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)"))


def _stored(db_url: str) -> set[str]:
    """Every message in the store, whatever its project or kind."""
    engine = store_engine.connect(db_url)
    try:
        with engine.connect() as conn:
            return {r.id for r in store.list_messages_all_projects(conn, store.ListQuery())}
    finally:
        engine.dispose()


def test_an_operator_switches_to_every_project_and_back(site, browser, cloud):
    base, db_url, seeded = site
    page = _page(browser)
    sign_in(page, base, "operator", "alpha")
    expect(page).to_have_url(re.compile(r"/viewer/messages$"))
    expect(page.locator(".badge")).to_have_text("project")
    assert _ids(page) == {seeded["alpha"]}
    assert page.locator("thead th").all_inner_texts() == HEADERS

    page.get_by_role("button", name="System scope: every project").click()
    expect(page.locator(".badge")).to_have_text("system")
    expect(page.locator(".who")).to_contain_text("operator · System (all projects)")
    assert _ids(page) == _stored(db_url) and set(seeded.values()) <= _ids(page)
    assert page.locator("thead th").all_inner_texts() == [*HEADERS, "Tenant", "Node name"]
    service = page.locator(f'#rows tr[data-id="{seeded["service"]}"]')
    expect(service.locator('td[data-label="Node name"]')).to_have_text("backup@node-9")
    expect(service.locator('td[data-label="Tenant"]')).to_have_text("(service)")
    beta = page.locator(f'#rows tr[data-id="{seeded["beta"]}"]')
    expect(beta.locator('td[data-label="Tenant"]')).to_have_text(cloud.projects["beta"])
    expect(page.get_by_role("link", name="Webhooks")).to_have_count(0)
    expect(page.get_by_role("button", name="System scope: every project")).to_have_count(0)
    shot(page, "viewer-system-scope")

    page.locator("#switch-project").select_option(cloud.projects["alpha"])
    page.get_by_role("button", name="Switch").click()
    expect(page.locator(".badge")).to_have_text("project")
    assert _ids(page) == {seeded["alpha"]}
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/viewer/login$"))
    page.goto(f"{base}/viewer/messages")
    expect(page).to_have_url(re.compile(r"/viewer/login$"))


def test_a_system_admin_signs_in_to_the_system_and_sees_new_messages_live(site, browser,
                                                                         cloud):
    base, db_url, seeded = site
    page = _page(browser)
    sign_in(page, base, "system_admin", system=True)
    expect(page).to_have_url(re.compile(r"/viewer/messages$"))
    expect(page.locator(".badge")).to_have_text("system")
    assert _ids(page) == _stored(db_url)
    expect(page.locator("#live-status")).to_have_text(re.compile("^Live: "))
    messenger = Messenger.from_url(db_url, host="c-vol@node-7")
    try:
        fresh = {
            "beta": messenger.create(RequestContext(project_id=cloud.projects["beta"],
                                                    user_id="u"),
                                     Action.EXTEND_VOLUME, resource_uuid="vol-beta-2",
                                     detail=Detail.DRIVER_FAILED_EXTEND),
            "service": messenger.create_service_message(Action.SERVICE_STATUS,
                                                        Detail.SERVICE_DOWN, host="c-vol@node-7"),
        }
    finally:
        messenger.close()
    for message_id in fresh.values():
        expect(page.locator(f'#rows tr[data-id="{message_id}"]')).to_be_visible()
    row = page.locator(f'#rows tr[data-id="{fresh["service"]}"]')
    expect(row.locator('td[data-label="Node name"]')).to_have_text("c-vol@node-7")


def test_a_project_admin_is_told_why_and_stays_in_its_project(site, browser):
    base, _, seeded = site
    page = _page(browser)
    sign_in(page, base, "project_admin", system=True)
    expect(page).to_have_url(re.compile(r"/viewer/login$"))
    expect(page.get_by_role("alert")).to_have_text(NO_SYSTEM_ROLE)
    expect(page.get_by_label("the system: every project")).to_be_checked()
    results = Axe().run(page)
    assert len(results.response["passes"]) > 10  # axe ran on the page
    serious = [(v["id"], [n["target"] for n in v["nodes"]])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
    shot(page, "viewer-system-scope-refused")

    page.get_by_label("a project").check()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Project", exact=True).fill("alpha")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/viewer/messages$"))
    expect(page.locator(".badge")).to_have_text("project")
    assert _ids(page) == {seeded["alpha"]}
    assert "Node name" not in page.locator("thead").inner_text()
    expect(page.get_by_role("button", name="System scope: every project")).to_have_count(0)
