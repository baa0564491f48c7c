"""The Event Viewer in a real Horizon 27, signed in through a real Keystone, in Chromium.

The cloud: Keystone, the reference block-storage service with the messages API in
keystone mode (registered in the catalog as block-storage and volumev3), and Horizon
with the plugin. Failures are caused as a user causes them: a volume too large for any
backend, asked for with the user's own Keystone token.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.harness.cloud import PASSWORD
from tests.harness.servers import KEYSTONE_ADMIN_PASSWORD
from tests.horizon.conftest import Deployment
from usermessages import Action, Detail, Messenger

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SUMMARY = "schedule allocate volume:Could not find any available weighted backend."


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def sign_in(browser: Browser, deployment: Deployment, user: str, password: str = PASSWORD,
            page_size: int | None = None) -> Page:
    """A fresh browser session signed in to Horizon (its own cookies)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    if page_size:
        # Horizon's per-user page size ("User Settings"), kept in this cookie.
        context.add_cookies([{"name": "API_RESULT_PAGE_SIZE", "value": str(page_size),
                              "url": deployment.horizon.url}])
    page = context.new_page()
    page.goto(deployment.horizon.url + "/auth/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".user-menu, #profile_editor_switcher, .fa-user").first).to_be_visible()
    return page


def fail_volume(deployment: Deployment, user: str, project: str) -> tuple[str, dict]:
    """Ask for a volume no backend can hold; return its id and the message it left."""
    cloud = deployment.cloud
    project_id = cloud.projects[project]
    http = httpx.Client(base_url=f"{deployment.base}/v3/{project_id}", timeout=20, headers={
        "X-Auth-Token": cloud.token(user, project), "OpenStack-API-Version": "volume 3.5"})
    response = http.post("/volumes", json={"volume": {"size": 5000, "name": "too-large"}})
    assert response.status_code == 202, response.text
    volume_id = response.json()["volume"]["id"]
    deadline = time.monotonic() + 30
    while True:
        found = http.get("/messages", params={"resource_uuid": volume_id}).json()["messages"]
        if found:
            return volume_id, found[0]
        assert time.monotonic() < deadline, "no message for the too-large volume"
        time.sleep(0.1)


def api_get(deployment: Deployment, user: str, project: str, message_id: str) -> int:
    cloud = deployment.cloud
    return httpx.get(f"{deployment.base}/v3/{cloud.projects[project]}/messages/{message_id}",
                     headers={"X-Auth-Token": cloud.token(user, project),
                              "OpenStack-API-Version": "volume 3.5"}, timeout=20).status_code


def row(page: Page, text: str):
    return page.locator("table#messages tbody tr", has_text=text)


def filter_by(page: Page, field_label: str, value: str) -> None:
    page.locator(".table_search .dropdown-toggle, .themable-select .dropdown-toggle").first.click()
    page.locator(".dropdown-menu a, .dropdown-menu li", has_text=field_label).first.click()
    page.fill("input[name='messages__filter__q']", value)
    page.locator("button#messages__action_filter").click()
    page.wait_for_load_state("networkidle")


# Scoped to the panel's content (Horizon's own sidebar and header fail html-has-lang, list
# and tabindex). Left out, as Horizon's and the same on every Horizon table: the table
# actions bar (its filter box has no label) and the default theme's colours (links
# #428bca: 3.45-3.63:1, btn-danger 3.96:1, under WCAG AA's 4.5:1).
AXE_CONTEXT = {"include": [["#content_body"]], "exclude": [[".table_actions"]]}
AXE_OPTIONS = {"rules": {"color-contrast": {"enabled": False}}}


def serious(page: Page) -> list:
    results = Axe().run(page, context=AXE_CONTEXT, options=AXE_OPTIONS)
    return [(v["id"], [n["target"] for n in v["nodes"]]) for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")]


def test_member_sees_the_failure_in_event_viewer_and_on_the_volume_page(
        deployment: Deployment, browser: Browser) -> None:
    volume_id, message = fail_volume(deployment, "member", "alpha")
    page = sign_in(browser, deployment, "member")
    # The landing page (this harness's LOGIN_REDIRECT_URL) is Project > Volumes > Event Viewer.
    expect(page).to_have_url(re.compile(r"/project/event_viewer/$"))
    expect(page.locator("h1")).to_have_text(re.compile("Event Viewer"))
    line = row(page, message["request_id"])
    expect(line).to_have_count(1)
    for text in ("alpha", message["event_id"], "ERROR", "VOLUME", volume_id, SUMMARY):
        expect(line).to_contain_text(text)
    assert serious(page) == []
    # Summary -> the message's detail page.
    line.get_by_role("link", name=re.compile("schedule allocate volume")).click()
    expect(page.locator("#message-summary")).to_have_text(SUMMARY)
    expect(page.locator(".detail")).to_contain_text(message["request_id"])
    assert serious(page) == []
    # Resource -> Horizon's own volume page, whose Messages tab lists the failure.
    page.get_by_role("link", name=volume_id).click()
    expect(page).to_have_url(re.compile(f"/project/volumes/{volume_id}/"))
    page.locator(".nav-tabs a", has_text="Messages").click()
    tab = page.locator("table#volume_messages")
    expect(tab).to_contain_text(message["id"])
    expect(tab).to_contain_text(SUMMARY)


def test_filter_and_page_both_ways(deployment: Deployment, browser: Browser) -> None:
    made = [fail_volume(deployment, "member", "alpha") for _ in range(3)]
    page = sign_in(browser, deployment, "member", page_size=2)
    table = page.locator("table#messages tbody tr")
    expect(table).to_have_count(2)
    first_page = table.all_inner_texts()
    # The newest first: the last volume made is on the first page.
    assert made[-1][1]["request_id"] in "".join(first_page)
    page.get_by_role("link", name=re.compile("Next")).first.click()
    expect(page).to_have_url(re.compile(r"marker="))
    expect(table).to_have_count(2)
    second_page = table.all_inner_texts()
    assert not set(first_page) & set(second_page)
    page.get_by_role("link", name=re.compile("Prev")).first.click()
    expect(page).to_have_url(re.compile(r"prev_marker="))
    expect(table).to_have_count(2)
    assert table.all_inner_texts() == first_page

    wanted = made[0][1]
    for label, value in (("Request ID", wanted["request_id"]),
                         ("Resource ID", made[0][0])):
        filter_by(page, label, value)
        expect(table).to_have_count(1)
        expect(table.first).to_contain_text(wanted["request_id"])
    filter_by(page, "Level", "warning")  # the service matches exactly; the plugin upper-cases
    expect(page.locator("table#messages")).to_contain_text("No items to display")
    filter_by(page, "Level", "error")
    expect(table).to_have_count(2)
    filter_by(page, "Time range", "2000-01-01T00:00:00/2000-01-02T00:00:00")
    expect(page.locator("table#messages")).to_contain_text("No items to display")
    created = wanted["created_at"]
    filter_by(page, "Time range", f"{created}/")
    expect(table).to_have_count(2)  # this one and newer, paged by 2
    filter_by(page, "Event ID", "VOLUME_VOLUME_001_003")
    expect(table).to_have_count(2)


def test_delete_one_and_a_batch_with_confirmation(deployment: Deployment,
                                                  browser: Browser) -> None:
    gone = [fail_volume(deployment, "member", "alpha")[1] for _ in range(3)]
    page = sign_in(browser, deployment, "member")
    single = row(page, gone[0]["request_id"])
    single.get_by_role("button", name="Delete Message").click()
    modal = page.locator(".modal-dialog")
    expect(modal).to_contain_text("Confirm Delete Message")
    modal.locator(".btn-danger", has_text="Delete Message").click()
    expect(page.locator(".alert-success")).to_contain_text("Deleted Message")
    expect(row(page, gone[0]["request_id"])).to_have_count(0)
    for message in gone[1:]:
        # Horizon's themed checkbox: the input is hidden behind its label.
        row(page, message["request_id"]).locator("td.multi_select_column label").click()
    page.locator("#messages__action_delete").click()
    expect(modal).to_contain_text("Confirm Delete Messages")
    modal.locator(".btn-danger", has_text="Delete Messages").click()
    expect(page.locator(".alert-success")).to_contain_text("Deleted Messages")
    for message in gone:
        expect(row(page, message["request_id"])).to_have_count(0)
        assert api_get(deployment, "member", "alpha", message["id"]) == 404


def test_another_projects_member_sees_none_of_it(deployment: Deployment,
                                                 browser: Browser) -> None:
    _, theirs = fail_volume(deployment, "member", "alpha")
    page = sign_in(browser, deployment, "other")
    expect(page.locator("h1")).to_have_text(re.compile("Event Viewer"))
    expect(page.locator("table#messages")).to_contain_text("No items to display")
    page.goto(f"{deployment.horizon.url}/project/event_viewer/{theirs['id']}/")
    # The service answers 404 for another project's message: back to the index, an error.
    expect(page.locator(".alert-danger")).to_contain_text("Unable to retrieve the message")
    expect(page.locator("table#messages")).to_contain_text("No items to display")
    expect(page.locator("body")).not_to_contain_text(theirs["request_id"])


def test_admin_sees_every_project_service_messages_and_nodes(
        deployment: Deployment, browser: Browser) -> None:
    _, alphas = fail_volume(deployment, "member", "alpha")
    _, betas = fail_volume(deployment, "other", "beta")
    node = "node-" + uuid.uuid4().hex[:6]
    # What a service's heartbeat watchdog records (the SDK straight into the store).
    messenger = Messenger.from_url(f"sqlite:///{deployment.root}/usermessages.sqlite")
    try:
        service_id = messenger.create_service_message(Action.SERVICE_STATUS,
                                                      Detail.SERVICE_DOWN, host=node)
    finally:
        messenger.close()
    page = sign_in(browser, deployment, "admin", KEYSTONE_ADMIN_PASSWORD)
    page.goto(deployment.horizon.url + "/admin/event_viewer/")
    expect(page.locator("h1")).to_have_text(re.compile("Event Viewer"))
    headers = page.locator("table#messages thead").inner_text()
    assert "Node name" in headers and "Tenant" in headers
    cloud = deployment.cloud
    expect(row(page, alphas["request_id"])).to_contain_text(cloud.projects["alpha"])
    expect(row(page, betas["request_id"])).to_contain_text(cloud.projects["beta"])
    service = page.locator("table#messages tbody tr", has_text="SERVICE")
    expect(service.first).to_contain_text("(none: a service message)")
    expect(page.locator("table#messages tbody tr", has_text=node)).to_have_count(1)
    assert serious(page) == []
    filter_by(page, "Project ID", cloud.projects["beta"])
    expect(row(page, betas["request_id"])).to_have_count(1)
    expect(row(page, alphas["request_id"])).to_have_count(0)
    filter_by(page, "Node", node)
    expect(page.locator("table#messages tbody tr")).to_have_count(1)
    expect(page.locator("table#messages tbody tr").first).to_contain_text("SERVICE")
    page.goto(f"{deployment.horizon.url}/admin/event_viewer/{service_id}/")
    expect(page.locator("#message-summary")).to_contain_text("service")
    # A project member has no Admin dashboard at all.
    member = sign_in(browser, deployment, "member")
    member.goto(deployment.horizon.url + "/admin/event_viewer/")
    expect(member.locator("table#messages")).to_have_count(0)


TAB_CHECK = """
import json
from importlib import import_module
from usermessages_dashboard import tabs
out = {}
for path, *_ in tabs.GROUPS:
    module, _sep, name = ("openstack_dashboard.dashboards." + path).rpartition(".")
    group = getattr(import_module(module), name)
    [tab] = [t for t in group.tabs if t.slug == tabs.MESSAGES_SLUG]
    out[path] = getattr(tab, "usermessages", False)
print(json.dumps(out))
"""


def test_every_resource_messages_tab_is_replaced(deployment: Deployment) -> None:
    # The volume's tab is exercised in the browser above; the snapshot's and backup's, in
    # the project and admin dashboards, go through the same swap in this Horizon's Django.
    result = subprocess.run([deployment.horizon.python, "manage.py", "shell", "-c", TAB_CHECK],
                            cwd=deployment.horizon.root, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    swapped = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(swapped) == 6 and all(swapped.values()), swapped
