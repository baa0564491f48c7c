"""Three `usermessages serve` nodes on one PostgreSQL, in keystone mode, behind a real
HAProxy with no affinity: nothing a browser or the background parts need lives in one
node.

- A browser signed in through node A works when the balancer sends it to node B (the
  session is in the store; form tokens derive from it and the shared secret_key), and
  signing out through B ends the live stream it holds open on A within the documented
  bound ("within about a second": the stream checks its session every poll).
- Every node runs the webhook deliverer: each message reaches its receiver once, in
  order, while several nodes deliver at once.
- Every node runs the reaper: one pass at a time (the others skip while it runs), each
  expired row deleted once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright
from sqlalchemy import Engine, func, select

from tests import servers
from tests.api.conftest import row
from tests.harness.haproxy_http import balancer
from tests.keystone.cloud import PASSWORD, Cloud
from tests.viewer.test_viewer import ARGS, CHROMIUM
from tests.webhooks.receiver import receiver
from usermessages.config import Settings
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer
from usermessages.store.messages import utcnow
from usermessages.store.schema import messages
from usermessages.web.events import POLL_SECONDS
from usermessages.webhooks import subscriptions

NODES = ("a", "b", "c")
LOCAL = "127.0.0.0/8"  # the receiver is local: allowed explicitly, as a deployer would
# Sign-out ends a stream at its next session check (every POLL_SECONDS); the rest is
# margin for a loaded machine (the page also reloads). The nodes cache token
# validations for TOKEN_CACHE seconds, so the token that sign-out revokes would end the
# stream only that much later: within the bound, only the shared session can.
SIGN_OUT_BOUND = POLL_SECONDS + 4
TOKEN_CACHE = 300
# Expired rows for the reaper, deleted REAP_BATCH per transaction: a pass long enough
# (seconds) that every other node wakes up (every second) while it runs.
EXPIRED, REAP_BATCH = 12_000, 5
DELETED = re.compile(r"Deleted (\d+) expired messages\.")
SKIPPED = "another node is reaping; skipping this pass"


@dataclass
class Site:
    nodes: dict[str, servers.Served]
    base: str  # the balancer
    engine: Engine


@pytest.fixture(scope="module")
def site(cloud: Cloud, postgresql_admin_url: str, tmp_path_factory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("nodes")
    db_url = servers.create_database(postgresql_admin_url, f"nodes_{secrets.token_hex(4)}")
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    config = cloud.config_file(root, token_cache_time=str(TOKEN_CACHE))
    # One key on every node, as docs/configuration.md asks; the reaper and the
    # deliverer on every node, waking up often.
    config.write_text(config.read_text() + (
        f"\n[DEFAULT]\nmessage_reap_interval = 1\nmessage_reap_batch_size = {REAP_BATCH}\n"
        f"[viewer]\nsecret_key = {secrets.token_hex(32)}\n"
        f"[webhooks]\nallowed_cidrs = {LOCAL}\nworkers = 1\npoll_interval = 0.1\n"))
    with contextlib.ExitStack() as stack, concurrent.futures.ThreadPoolExecutor(3) as pool:
        started = {name: pool.submit(stack.enter_context,
                                     servers.serve(db_url, config_file=str(config), verbose=True))
                   for name in NODES}
        nodes = {name: future.result() for name, future in started.items()}
        base = stack.enter_context(balancer({name: n.base for name, n in nodes.items()}))
        yield Site(nodes, base, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def _route(context: BrowserContext, base: str, node: str) -> None:
    """What the balancer does next for this browser: send it to ``node``."""
    context.add_cookies([{"name": "node", "value": node, "url": base}])


def test_a_browser_moves_between_nodes_and_signs_out_everywhere(site, browser, cloud):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        _route(context, site.base, "a")
        live = context.new_page()
        live.goto(f"{site.base}/viewer/")
        expect(live).to_have_url(re.compile(r"/viewer/login$"))
        live.get_by_label("User").fill("member")
        live.get_by_label("Password").fill(PASSWORD)
        live.get_by_label("Project", exact=True).fill("alpha")
        live.get_by_role("button", name="Sign in").click()
        expect(live).to_have_url(re.compile(r"/viewer/messages$"))
        expect(live.locator("#live-status")).to_have_class(re.compile(r"\bon\b"))
        # A second tab, its sign-out form rendered by node A.
        other = context.new_page()
        answer = other.goto(f"{site.base}/viewer/messages")
        assert answer is not None and answer.headers["x-served-by"] == "a"
        form_token = other.locator('input[name="csrf"]').first.input_value()

        # The balancer now sends this browser to B: still signed in, the same form token.
        _route(context, site.base, "b")
        moved = context.new_page()
        answer = moved.goto(f"{site.base}/viewer/messages")
        assert answer is not None and answer.headers["x-served-by"] == "b"
        expect(moved).to_have_url(re.compile(r"/viewer/messages$"))
        expect(moved.locator(".who")).to_contain_text("member")
        assert moved.locator('input[name="csrf"]').first.input_value() == form_token
        moved.close()

        # Sign out with A's form; the post goes to B; the stream A holds ends.
        with other.expect_response(lambda r: r.request.method == "POST") as posted:
            other.get_by_role("button", name="Sign out").click()
            signed_out_at = time.monotonic()
        assert posted.value.headers["x-served-by"] == "b"
        assert posted.value.status == 303, posted.value.status
        expect(other).to_have_url(re.compile(r"/viewer/login$"))
        expect(live).to_have_url(re.compile(r"/viewer/login$"),
                                 timeout=SIGN_OUT_BOUND * 1000)
        took = time.monotonic() - signed_out_at
        print(f"\nsigned out through node B; the stream on node A ended and its page showed "
              f"the sign-in form {took:.2f} s later")
        assert took < SIGN_OUT_BOUND
        # And node C, which served nothing of it, knows too.
        _route(context, site.base, "c")
        answer = other.goto(f"{site.base}/viewer/messages")
        assert answer is not None
        expect(other).to_have_url(re.compile(r"/viewer/login$"))
    finally:
        context.close()


def test_every_node_delivers_and_each_message_arrives_once_in_order(site):
    projects = [f"d{index}d{index}" for index in range(6)]
    settings = Settings(webhooks_allowed_cidrs=LOCAL)
    with receiver() as hook:
        hook.delay = 0.1  # long enough for the nodes' turns to overlap
        for project in projects:
            subscriptions.register(settings, site.engine, project, "u",
                                   {"url": f"{hook.url}?p={project}"})
        stored: list[dict] = []
        for minute in range(5):  # stored while the nodes deliver
            batch = [row(p, minutes=minute, expires_in=dt.timedelta(days=3650))
                     for p in projects]
            with site.engine.begin() as conn:
                writer.insert(conn, batch)
            stored += batch
        hook.wait_for(lambda got: len(got) >= len(stored))
        # A last message each, after the rest: once it is in, nothing earlier is owed.
        last = [row(p, minutes=9, expires_in=dt.timedelta(days=3650)) for p in projects]
        with site.engine.begin() as conn:
            writer.insert(conn, last)
        stored += last
        hook.wait_for(lambda got: {json.loads(g.body)["data"]["message"]["id"] for g in got}
                      >= {r["id"] for r in last})
    got: dict[str, list[str]] = {p: [] for p in projects}
    for received in hook.received:
        message = json.loads(received.body)["data"]["message"]
        href = message["links"][0]["href"]
        got[next(p for p in projects if f"/{p}/" in href)].append(message["id"])
    for project in projects:
        assert got[project] == [r["id"] for r in stored if r["project_id"] == project]
    print(f"\n{len(hook.received)} deliveries, at most {hook.peak} at once "
          f"(each node delivers one at a time)")
    assert hook.peak_per_path == 1, "a subscription was served twice at once"
    assert hook.peak >= 2, "only one node delivered"


def test_one_reaper_pass_at_a_time_across_the_nodes(site):
    since = {name: len(served.output()) for name, served in site.nodes.items()}
    # Expired moments ago: today's partition is not dropped whole, the rows go in batches.
    now = utcnow()
    rows = [{**row("reap", minutes=i % 60), "expires_at": now - dt.timedelta(seconds=1 + i % 30)}
            for i in range(EXPIRED)]
    with site.engine.begin() as conn:
        writer.insert(conn, rows)
    inserted_at = time.monotonic()
    deadline = inserted_at + 120
    while True:
        with site.engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(messages)
                                .where(messages.c.project_id == "reap")).scalar_one()
        if not left:
            break
        assert time.monotonic() < deadline, f"{left} expired rows left"
        time.sleep(0.1)
    print(f"\n{EXPIRED} expired rows reaped {time.monotonic() - inserted_at:.1f} s after "
          "they were stored")
    logs = {name: served.output()[since[name]:] for name, served in site.nodes.items()}
    deleted = {name: [int(n) for n in DELETED.findall(log) if n != "0"]
               for name, log in logs.items()}
    skipped = {name: log.count(SKIPPED) for name, log in logs.items()}
    print(f"passes that deleted rows, by node: {deleted}; passes skipped: {skipped}")
    # One pass took them all; the other nodes tried meanwhile and stood aside.
    assert sorted(n for counts in deleted.values() for n in counts) == [EXPIRED]
    reaper = next(name for name, counts in deleted.items() if counts)
    assert all(skipped[name] for name in NODES if name != reaper), skipped
