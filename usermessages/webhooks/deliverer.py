"""The webhook deliverer: each subscription's matching messages, in stored order, signed.

At least once, across restarts: a subscription's cursor (the last message seq
delivered) lives in the store and moves only once the receiver answered 2xx,
so a deliverer killed mid-delivery resends that message when it (or another)
starts again; the stable ``webhook-id`` lets the receiver drop the duplicate.
A subscription is served by one deliverer at a time (a lease in its row,
renewed at each attempt and lapsing after a crash), so several deliverers
share the work without sending a message twice in the normal case.

A slow receiver delays only its own webhook. Each attempt ends by its deadline
(``[webhooks] timeout`` in all, see ``sender``), well within the lease. Turns
run on a pool of ``[webhooks] workers`` threads: a turn delivers one
subscription's messages one at a time, in order, so no subscription holds more
than one worker. A turn ends at the first failed or slow attempt (the
subscription then backs off, or goes back in line), after BATCH messages or
after ``timeout`` seconds. Subscriptions out of good standing (failing, or slow
at their last delivery: the store says so to every deliverer) share at most
half the workers; the other half stays free for the rest, however many
receivers hang. Due subscriptions are taken least recently served first, across
deliverers (the store orders them by when their lease was let go).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine

from usermessages.catalog import Catalog
from usermessages.config import Settings
from usermessages.store import messages as store
from usermessages.store import webhooks as store_webhooks
from usermessages.store.messages import ListQuery, StoredMessage, utcnow
from usermessages.web.projections import webhook_payload
from usermessages.webhooks import signing
from usermessages.webhooks.sender import Sender
from usermessages.webhooks.targets import TargetRefused, Targets

log = logging.getLogger(__name__)

BATCH = 100
# Seconds after which a delivery is "slow": its subscription leaves good standing until
# a prompt one. Receivers are expected to answer at once and do their work afterwards.
SLOW = 1.0


class Deliverer:
    """Delivers every project's new messages to its webhooks, on a pool of workers."""

    def __init__(self, settings: Settings, engine: Engine, catalog: Catalog | None = None,
                 targets: Targets | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.catalog = catalog or Catalog.from_file(settings.catalog_overrides_file or None)
        self.targets = targets or Targets.from_settings(settings)
        self.base = (settings.public_endpoint.rstrip("/")
                     or f"http://{settings.host}:{settings.port}")
        self.timeout = settings.webhooks_timeout
        self.sender = Sender(self.timeout, settings.webhooks_workers)
        # Long enough for one attempt (over by its deadline) and its bookkeeping;
        # renewed before each attempt.
        self.lease = dt.timedelta(seconds=2 * self.timeout + 5)
        self.workers = settings.webhooks_workers
        self.failing_workers = max(1, self.workers // 2)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="webhook")
        self.lock = threading.Lock()
        self.running: dict[str, bool] = {}  # subscriptions in a turn here: in the failing lane?
        self.turn_ended = threading.Event()  # wakes the dispatcher

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the turns under way (each attempt ends by its deadline), then let go."""
        self.pool.shutdown(wait=True)
        self.sender.close()

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set (serve's background thread, or the command)."""
        log.info("webhook deliverer started (%d workers)", self.workers)
        # The dispatcher waits for a turn's end or the next poll; a stop must wake it too.
        threading.Thread(target=self._wake_on, args=(stop,), name="webhook-stop",
                         daemon=True).start()
        try:
            while not stop.is_set():
                try:
                    self.dispatch(stop)
                except Exception:  # the store is down, a bug: keep the thread, log the cause
                    log.exception("webhook dispatch failed")
                # A turn that ended may leave its subscription due again, or a worker free.
                self.turn_ended.wait(self.settings.webhooks_poll_interval)
                self.turn_ended.clear()
        finally:
            self.close()

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self.turn_ended.set()

    def pass_once(self, stop: threading.Event | None = None) -> bool:
        """Give every due subscription one turn (as many at once as there are workers);
        whether any message was attempted."""
        return any([turn.result() for turn in self.dispatch(stop)])

    def dispatch(self, stop: threading.Event | None = None) -> list[Future[bool]]:
        """Claim due subscriptions for the free workers and start their turns."""
        with self.engine.connect() as conn:
            # Only subscriptions behind the newest message can have anything to send.
            due = store_webhooks.due_all_projects(conn, utcnow(), store.last_seq(conn))
        turns = []
        for webhook in due:
            failing = not store_webhooks.in_good_standing(webhook)
            with self.lock:
                if len(self.running) >= self.workers:
                    break
                if webhook["id"] in self.running or (
                        failing and sum(self.running.values()) >= self.failing_workers):
                    continue
            claimed = self._claim(webhook["id"])
            if claimed is None:
                continue  # another deliverer took it
            with self.lock:
                self.running[webhook["id"]] = failing
            turn = self.pool.submit(self._turn, *claimed, stop)
            turn.add_done_callback(functools.partial(self._ended, webhook["id"]))
            turns.append(turn)
        return turns

    def _claim(self, webhook_id: str) -> tuple[dict, dt.datetime] | None:
        now = utcnow()
        held = now + self.lease
        with self.engine.begin() as conn:
            if not store_webhooks.claim(conn, webhook_id, now, held):
                return None
            # Read again once claimed: another deliverer may have moved it on meanwhile.
            return store_webhooks.claimed(conn, webhook_id), held

    def _ended(self, webhook_id: str, turn: Future[bool]) -> None:
        with self.lock:
            del self.running[webhook_id]
        if (error := turn.exception()) is not None:  # the store failed mid-turn, a bug
            log.error("webhook %s: turn failed", webhook_id, exc_info=error)
        self.turn_ended.set()

    def _turn(self, webhook: dict, held: dt.datetime, stop: threading.Event | None) -> bool:
        """Deliver one subscription's next messages in order; whether any was attempted."""
        began = time.monotonic()
        attempted = False
        try:
            with self.engine.connect() as conn:
                # The counter first: every row up to it is committed (see reader.after).
                newest = store.last_seq(conn)
                query = ListQuery(filters=store_webhooks.matching(webhook),
                                  after_seq=webhook["cursor"], limit=BATCH)
                rows = [row for row in store.list_messages(conn, webhook["project_id"], query)
                        if row.seq <= newest]
            for row in rows:
                if (stop is not None and stop.is_set()) or time.monotonic() - began > self.timeout:
                    return attempted  # back in line: others may be waiting for a worker
                until = utcnow() + self.lease
                with self.engine.begin() as conn:
                    if not store_webhooks.renew(conn, webhook["id"], held, until):
                        return attempted  # deleted, disabled, or lost to another deliverer
                held = until
                attempted = True
                if not self._attempt(webhook, row):
                    return attempted
            if len(rows) < BATCH and newest > webhook["cursor"]:
                # Nothing else matched up to ``newest``: skip those rows next time.
                with self.engine.begin() as conn:
                    store_webhooks.skipped(conn, webhook["id"], newest)
            return attempted
        finally:
            with self.engine.begin() as conn:
                store_webhooks.release(conn, webhook["id"], held, utcnow())

    def payload(self, webhook: dict, row: StoredMessage) -> bytes:
        """The Standard Webhooks payload: the message as GET /messages/{id} shows it
        to the project's users (``projections.webhook_payload``)."""
        return webhook_payload(row, self.base, webhook["project_id"], self.catalog)

    def _attempt(self, webhook: dict, row: StoredMessage) -> bool:
        """One attempt, recorded; True when the receiver took the message promptly (the
        turn may go on: after a failure or a slow answer, it goes back in line)."""
        body = self.payload(webhook, row)
        msg_id = signing.delivery_id(webhook["id"], row.id)
        attempt = webhook["failures"] + 1
        status: int | None = None
        error = ""
        began = time.monotonic()
        try:
            # The deadline counts the guard's name resolution too.
            target = self.targets.check(webhook["url"])
            headers = signing.headers(webhook["secret"], msg_id, int(time.time()), body)
            status = self.sender.post(target, body, headers, began + self.timeout)
        except TargetRefused:
            error = "TargetRefused"
        except Exception as exc:  # noqa: BLE001  any failure is this attempt's, recorded by class
            # (httpx's errors, an invalid URL, TLS): recorded, so the subscription backs
            # off and is eventually disabled instead of failing the same way forever.
            log.debug("webhook %s: attempt failed", webhook["id"], exc_info=True)
            error = type(exc).__name__
        now = utcnow()
        if status is not None and 200 <= status < 300:
            slow_at = now if time.monotonic() - began > SLOW else None
            with self.engine.begin() as conn:
                store_webhooks.record(conn, webhook["id"], row, attempt, status, "",
                                      "delivered", now)
                store_webhooks.delivered(conn, webhook["id"], row.seq, slow_at)
            webhook.update(cursor=row.seq, failures=0, failing_since=None,
                           next_attempt_at=slow_at)
            return slow_at is None
        failures = attempt
        failing_since = webhook["failing_since"] or now
        reason = self._disable_reason(failures, failing_since, now, status)
        delay = min(self.settings.webhooks_retry_base * 2 ** (failures - 1),
                    self.settings.webhooks_retry_max) * random.uniform(0.8, 1.0)
        with self.engine.begin() as conn:
            store_webhooks.record(conn, webhook["id"], row, attempt, status, error,
                                  "failed" if reason else "retry", now)
            store_webhooks.failed(conn, webhook["id"], failures, failing_since,
                                  None if reason else now + dt.timedelta(seconds=delay), reason)
        webhook.update(failures=failures, failing_since=failing_since)
        log.info("webhook %s: attempt %d for message %s failed (%s)%s", webhook["id"], attempt,
                 row.id, status or error, f"; disabled: {reason}" if reason else "")
        return False

    def _disable_reason(self, failures: int, since: dt.datetime, now: dt.datetime,
                        status: int | None) -> str:
        if status == 410:
            return "The receiver answered 410 Gone."
        if failures >= self.settings.webhooks_disable_after_failures:
            return f"{failures} consecutive failed deliveries."
        if now - since >= dt.timedelta(hours=self.settings.webhooks_disable_after_hours):
            return f"Failing for over {self.settings.webhooks_disable_after_hours:g} hours."
        return ""
