"""Each row says how many times its failure occurred (issue 15: the series count on each
row), in Chromium: the list, the live stream, and the detail page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.api.conftest import row
from tests.harness import servers
from tests.viewer.test_viewer import _page, sign_in
from usermessages.store import engine as store_engine
from usermessages.store import writer

PROJECT = "cccc0003"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _failure(resource: str, minutes_ago: float) -> dict:
    message = row(PROJECT, resource_uuid=resource)
    when = _now() - dt.timedelta(minutes=minutes_ago)
    message.update(created_at=when, expires_at=when + dt.timedelta(days=30))
    return message


def _store(db_url: str, rows: list[dict]) -> None:
    engine = store_engine.connect(db_url)
    with engine.begin() as conn:
        writer.insert(conn, rows)
    engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, str]]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('repeats')}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        # vol-r failed three times (one series), vol-once once.
        _store(db_url, [_failure("vol-r", 30), _failure("vol-r", 20), _failure("vol-r", 10),
                        _failure("vol-once", 5)])
        yield base, db_url


def _row_of(page, resource: str):  # type: ignore[no-untyped-def]
    return page.locator("#rows tr", has=page.locator(f"code:text-is('{resource}')"))


def test_rows_show_their_failures_count(site, browser):
    base, db_url = site
    page = _page(browser)
    sign_in(page, base, "alice", PROJECT)
    repeated = _row_of(page, "vol-r")
    expect(repeated).to_have_count(3)
    for i in range(3):
        expect(repeated.nth(i).locator(".repeats")).to_have_text("×3")
    expect(_row_of(page, "vol-once").locator(".repeats")).to_have_count(0)
    # A fourth occurrence arrives on the live stream, counted with the others.
    _store(db_url, [_failure("vol-r", 0)])
    expect(_row_of(page, "vol-r")).to_have_count(4)
    expect(_row_of(page, "vol-r").first.locator(".repeats")).to_have_text("×4")
    # The detail page says it in words.
    _row_of(page, "vol-r").first.locator("a").first.click()
    expect(page.locator("dd.repeats")).to_contain_text("occurred 4 times")
