"""The webhook deliverer: each subscription's matching messages, in stored order, signed.

At least once, across restarts: a subscription's cursor (the last message seq
delivered) lives in the store and moves only once the receiver answered 2xx,
so a deliverer killed mid-delivery resends that message when it (or another)
starts again; the stable ``webhook-id`` lets the receiver drop the duplicate.
A subscription is served by one deliverer at a time (a lease in its row,
renewed at each attempt and lapsing after a crash), so several deliverers
share the work without sending a message twice in the normal case.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Engine

from usermessages.catalog import Catalog
from usermessages.config import Settings
from usermessages.store import messages as store
from usermessages.store import webhooks as store_webhooks
from usermessages.store.messages import ListQuery, utcnow
from usermessages.web.views import MessageView, timestamp
from usermessages.webhooks import signing
from usermessages.webhooks.targets import Target, TargetRefused, Targets

log = logging.getLogger(__name__)

BATCH = 100
EVENT_TYPE = "message.created"


class Deliverer:
    def __init__(self, settings: Settings, engine: Engine, catalog: Catalog | None = None,
                 targets: Targets | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.catalog = catalog or Catalog.from_file(settings.catalog_overrides_file or None)
        self.targets = targets or Targets.from_settings(settings)
        self.base = (settings.public_endpoint.rstrip("/")
                     or f"http://{settings.host}:{settings.port}")
        # No proxies from the environment (the guard checked the address we connect to),
        # no redirects (the guard never saw their target).
        self.http = httpx.Client(timeout=settings.webhooks_timeout, follow_redirects=False,
                                 trust_env=False)
        # Long enough for one attempt and its bookkeeping; renewed before each attempt.
        self.lease = dt.timedelta(seconds=2 * settings.webhooks_timeout + 5)

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set (serve's background thread, or the command)."""
        log.info("webhook deliverer started")
        while not stop.is_set():
            try:
                busy = self.pass_once(stop)
            except Exception:  # the store is down, a bug: keep the thread, log the cause
                log.exception("webhook delivery pass failed")
                busy = False
            if not busy:
                stop.wait(self.settings.webhooks_poll_interval)
        self.http.close()

    def pass_once(self, stop: threading.Event | None = None) -> bool:
        """Serve every due subscription once; whether any message was attempted."""
        with self.engine.connect() as conn:
            due = store_webhooks.due_all_projects(conn, utcnow())
        busy = False
        for webhook in due:
            if stop is not None and stop.is_set():
                break
            busy |= self._serve(webhook, stop)
        return busy

    def _serve(self, webhook: dict, stop: threading.Event | None) -> bool:
        now = utcnow()
        held = now + self.lease
        with self.engine.begin() as conn:
            if not store_webhooks.claim(conn, webhook["id"], now, held):
                return False
            webhook = store_webhooks.claimed(conn, webhook["id"])
        attempted = False
        try:
            with self.engine.connect() as conn:
                # The counter first: every row up to it is committed (see reader.after).
                newest = store.last_seq(conn)
                query = ListQuery(filters=store_webhooks.matching(webhook),
                                  after_seq=webhook["cursor"], limit=BATCH)
                rows = [row for row in store.list_messages(conn, webhook["project_id"], query)
                        if row["seq"] <= newest]
            for row in rows:
                if stop is not None and stop.is_set():
                    return attempted
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
                    store_webhooks.delivered(conn, webhook["id"], newest)
            return attempted
        finally:
            with self.engine.begin() as conn:
                store_webhooks.release(conn, webhook["id"])

    def payload(self, webhook: dict, row: dict) -> bytes:
        """The Standard Webhooks payload: the message as GET /messages/{id} shows it."""
        view = MessageView(self.base, webhook["project_id"], self.catalog)
        body = {"type": EVENT_TYPE, "timestamp": timestamp(row["created_at"]),
                "data": {"message": view.detail(row)}}
        return json.dumps(body, separators=(",", ":")).encode()

    def _attempt(self, webhook: dict, row: dict) -> bool:
        """One attempt, recorded; True when the receiver took the message."""
        body = self.payload(webhook, row)
        msg_id = signing.delivery_id(webhook["id"], row["id"])
        attempt = webhook["failures"] + 1
        status: int | None = None
        error = ""
        try:
            target = self.targets.check(webhook["url"])
            headers = signing.headers(webhook["secret"], msg_id, int(time.time()), body)
            status = self._post(target, body, headers)
        except TargetRefused:
            error = "TargetRefused"
        except Exception as exc:  # noqa: BLE001  any failure is this attempt's, recorded by class
            # (httpx's errors, an invalid URL, TLS): recorded, so the subscription backs
            # off and is eventually disabled instead of failing the same way forever.
            log.debug("webhook %s: attempt failed", webhook["id"], exc_info=True)
            error = type(exc).__name__
        now = utcnow()
        if status is not None and 200 <= status < 300:
            with self.engine.begin() as conn:
                store_webhooks.record(conn, webhook["id"], row, attempt, status, "",
                                      "delivered", now)
                store_webhooks.delivered(conn, webhook["id"], row["seq"])
            webhook.update(cursor=row["seq"], failures=0, failing_since=None)
            return True
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
                 row["id"], status or error, f"; disabled: {reason}" if reason else "")
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

    def _post(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        """POST to the address the guard checked (not a new resolution); the status only.

        The receiver's body is never read nor kept.
        """
        parts = urlsplit(target.url)
        address = f"[{target.address}]" if ":" in target.address else target.address
        default_port = 443 if target.scheme == "https" else 80
        host = target.host if ":" not in target.host else f"[{target.host}]"
        url = urlunsplit((target.scheme, f"{address}:{target.port}", parts.path or "/",
                          parts.query, ""))
        headers = {**headers, "host": host if target.port == default_port
                   else f"{host}:{target.port}"}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        with self.http.stream("POST", url, content=body, headers=headers,
                              extensions=extensions) as response:
            return response.status_code
