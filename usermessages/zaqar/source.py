"""The Zaqar collector (phase 3): claim from the project queues, store, then delete.

Each round claims up to ``batch_size`` messages across the project queues
(20 per claim, Zaqar's limit; a few projects at a time in parallel, each
round starting where the last one stopped, so busy projects do not starve
the others), decodes them with ``Message.from_wire``, inserts them
in one transaction with "on conflict do nothing" on the producer's id, and
only then deletes the claimed messages. So:

* a collector killed after its claim, before or after the insert, loses
  nothing: Zaqar hands the messages out again when the claim expires
  (``[zaqar] claim_ttl``), and the insert stores nothing twice;
* while the store is down the claims are released at once and the round is
  retried with capped back-off; Zaqar keeps the messages;
* an envelope that cannot be accepted goes, with the reason, to the
  dead-letter queue of the same project (``[zaqar] dead_letter_queue``),
  and is then deleted from the messages queue. This includes an envelope
  naming another project than the queue it came from: a project's members
  can post to their own queue, so the queue, not the envelope, says whose
  message it is, and admin-only kinds are only taken from the admin project.

Which projects (Zaqar v2 cannot list queues across projects): the
``[zaqar] projects`` list, the admin project, every project that has messages
in the store (shared by all collectors), and the projects producers announce
on the index queue. Every ``refresh_interval`` seconds a collector claims the
announcements, and deletes them once it has drained the project's queue in a
successful round (a collector dying before that leaves them to be claimed
again), so the index stays small. See docs/zaqar.md.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from usermessages import envelope, metrics
from usermessages.catalog import Kind
from usermessages.config import DEFAULTS, Settings
from usermessages.errors import StoreUnavailable
from usermessages.message import Message
from usermessages.retry import Backoff
from usermessages.store import messages as store
from usermessages.store import series
from usermessages.store.writer import Writer, Written, policy_of
from usermessages.zaqar.client import MAX_PER_CALL, Claim, QueuedMessage, ZaqarClient, ZaqarError
from usermessages.zaqar.sink import Layout, layout_from_settings

LOG = logging.getLogger(__name__)

MAX_PROJECT = 255
MAX_INDEX_CLAIMS = 50  # announcements claimed per refresh: 1,000

@dataclass
class ZaqarCollectorStats:
    stored: int = 0
    duplicates: int = 0
    suppressed: int = 0
    dead_lettered: int = 0
    db_retries: int = 0
    zaqar_errors: int = 0
    rounds: int = 0


@dataclass
class _Round:
    """What one round claimed: the claims to delete, the rows to insert."""

    claims: list[tuple[str, Claim]] = field(default_factory=list)
    rows: list[Message] = field(default_factory=list)
    origins: list[tuple[str, QueuedMessage]] = field(default_factory=list)  # per row
    # Dead-lettered while decoding: done with, whatever the store does.
    rejected: set[str] = field(default_factory=set)
    visited: list[str] = field(default_factory=list)  # projects whose queue was read


def check_origin(message: Message, project: str, admin_project: str) -> None:
    """Refuse an envelope whose project is not the queue's own (see the module doc)."""
    if message.kind is Kind.API:
        if message.project_id != project:
            raise envelope.InvalidEnvelope(
                f"envelope names project {message.project_id!r} but came from the queue of "
                f"project {project!r}")
    elif project != admin_project:
        raise envelope.InvalidEnvelope(
            f"a {message.kind.value} message may only come from the admin project's queue")


class ZaqarCollector:
    """Moves user messages from the projects' Zaqar queues into the store."""

    def __init__(
        self,
        url: str,
        engine: Engine,
        *,
        ttl: int,
        layout: Layout = Layout(),
        projects: tuple[str, ...] = (),
        batch_size: int = 500,
        claim_ttl: int = DEFAULTS.zaqar_claim_ttl,
        poll_interval: float = DEFAULTS.zaqar_poll_interval,
        refresh_interval: float = 30.0,
        timeout: float = DEFAULTS.zaqar_timeout,
        max_backoff: float = 30.0,
        dead_letter_ttl: int = DEFAULTS.zaqar_max_message_ttl,
        auth_token: str = "",
        concurrency: int = 4,
        policy: series.Policy = series.DEFAULT_POLICY,
    ) -> None:
        self._client = ZaqarClient(url, timeout=timeout, auth_token=auth_token)
        self._engine = engine
        self._writer = Writer(engine, policy)
        self._ttl = ttl
        self._layout = layout
        self._static = tuple(dict.fromkeys((*projects, layout.admin_project)))
        self._known: tuple[str, ...] = self._static
        self._stored: set[str] = set()  # projects with messages in the store
        self._announced: set[str] = set()  # projects learnt from the index
        # Index announcements claimed and not yet deleted: project -> [(claim, message)].
        self._index_claims: dict[str, list[tuple[str, str]]] = {}
        self._refreshed = float("-inf")
        self._refresh_interval = refresh_interval
        self._batch_size = batch_size
        self._claim_ttl = claim_ttl
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._dead_letter_ttl = dead_letter_ttl
        self._turn = 0
        self._concurrency = concurrency
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="usermessages-zaqar")
        self.stats = ZaqarCollectorStats()
        self.ready = threading.Event()  # a round has completed (for tests and health checks)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> ZaqarCollector:
        projects = tuple(p.strip() for p in settings.zaqar_projects.split(",") if p.strip())
        return cls(
            settings.zaqar_url, engine, ttl=settings.message_ttl,
            layout=layout_from_settings(settings), projects=projects,
            batch_size=settings.collector_batch_size, claim_ttl=settings.zaqar_claim_ttl,
            poll_interval=settings.zaqar_poll_interval, timeout=settings.zaqar_timeout,
            dead_letter_ttl=settings.zaqar_max_message_ttl,
            auth_token=settings.zaqar_auth_token,
            policy=policy_of(settings),
        )

    def close(self) -> None:
        self._pool.shutdown()
        self._client.close()

    # --- the loop ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Collect until ``stop`` is set; Zaqar or store trouble backs off and retries."""
        backoff = Backoff(self._max_backoff, stop)
        while not stop.is_set():
            try:
                handled = self.collect_once()
            except (ZaqarError, StoreUnavailable) as exc:
                self.stats.zaqar_errors += isinstance(exc, ZaqarError)
                LOG.error("Zaqar collector round failed (%s); retrying in %.1fs", exc,
                          backoff.delay)
                backoff.wait()
                continue
            backoff.reset()
            self.ready.set()
            if handled < self._batch_size:
                stop.wait(self._poll_interval if handled == 0 else 0)

    def collect_once(self) -> int:
        """One round: claim, store, delete. Returns how many messages it took off the queues."""
        self.stats.rounds += 1
        work = self._claim_round()
        if work.claims:
            self._store(work)
            self._delete(work.claims)
        self._forget_announcements(work.visited)
        return sum(len(claim.messages) for _, claim in work.claims)

    # --- the steps --------------------------------------------------------------

    def projects(self) -> tuple[str, ...]:
        """The projects whose queues are read: configured, admin, stored, announced."""
        now = time.monotonic()
        if now - self._refreshed >= self._refresh_interval:
            self._refresh_stored()
            if self._layout.index_queue:
                self._claim_announcements()
            self._known = tuple(dict.fromkeys(
                (*self._static, *sorted(self._stored | self._announced))))
            self._refreshed = now
        return self._known

    def _refresh_stored(self) -> None:
        try:
            with self._engine.connect() as conn:
                self._stored = set(store.stored_projects_all_projects(conn))
        except DBAPIError as exc:  # keep the last known set; the store's trouble shows later
            LOG.warning("could not read the store's projects: %s", type(exc.orig).__name__)

    def _claim_announcements(self) -> None:
        for _ in range(MAX_INDEX_CLAIMS):
            claim = self._client.claim(self._layout.admin_project, self._layout.index_queue,
                                       ttl=self._claim_ttl, grace=self._claim_ttl)
            if claim is None:
                return
            for item in claim.messages:
                name = item.body.get("project") if isinstance(item.body, dict) else None
                if isinstance(name, str) and 0 < len(name) <= MAX_PROJECT:
                    self._announced.add(name)
                    self._index_claims.setdefault(name, []).append((claim.id, item.id))
                else:  # not an announcement: delete it with the others
                    self._index_claims.setdefault("", []).append((claim.id, item.id))
            if len(claim.messages) < MAX_PER_CALL:
                return

    def _forget_announcements(self, visited: list[str]) -> None:
        """Delete the announcements of projects whose queue a successful round has read."""
        done = [(claim_id, item_id) for project in ("", *visited)
                for claim_id, item_id in self._index_claims.pop(project, [])]
        by_claim: dict[str, list[str]] = {}
        for claim_id, item_id in done:
            by_claim.setdefault(claim_id, []).append(item_id)
        for claim_id, ids in by_claim.items():
            try:
                self._client.delete(self._layout.admin_project, self._layout.index_queue, ids,
                                    claim_id)
            except ZaqarError:  # the claim expired: they are claimed again, harmlessly
                LOG.debug("could not delete announcements", exc_info=True)

    def _claim_round(self) -> _Round:
        work = _Round()
        projects = self.projects()
        # Start where the last round stopped, so every project gets its turn.
        first = self._turn % len(projects)
        order = projects[first:] + projects[:first]
        # Claims are HTTP round trips: a few projects at a time, in parallel.
        want = max(MAX_PER_CALL, self._batch_size // self._concurrency)
        for start in range(0, len(order), self._concurrency):
            window = order[start:start + self._concurrency]
            work.visited += window
            self._turn = first + start + len(window)
            for project, claims in zip(window, self._pool.map(
                    lambda p: self._claim_project(p, want), window), strict=False):
                for claim in claims:
                    work.claims.append((project, claim))
                    for message in claim.messages:
                        self._decide(project, message, work)
            if len(work.rows) >= self._batch_size:
                break
        return work

    def _claim_project(self, project: str, want: int) -> list[Claim]:
        claims: list[Claim] = []
        got = 0
        while got < want:
            claim = self._client.claim(project, self._layout.queue, ttl=self._claim_ttl,
                                       grace=self._claim_ttl, limit=MAX_PER_CALL)
            if claim is None:
                break
            claims.append(claim)
            got += len(claim.messages)
            if len(claim.messages) < MAX_PER_CALL:
                break
        return claims

    def _decide(self, project: str, message: QueuedMessage, work: _Round) -> None:
        raw = json.dumps(message.body, separators=(",", ":"))
        try:
            decoded = Message.from_wire(raw, self._ttl)
            check_origin(decoded, project, self._layout.admin_project)
        except envelope.InvalidEnvelope as exc:
            self._dead_letter(project, message, str(exc))
            work.rejected.add(message.id)
            return
        work.rows.append(decoded)
        work.origins.append((project, message))

    def _store(self, work: _Round) -> None:
        """Write the round's rows; after an outage, give back what was not settled.

        A refused row is dead-lettered alone. When the store fails, the
        messages settled so far (stored, refused, dead-lettered) are deleted
        and the claims released, so Zaqar hands out only the rest again.
        """
        written = self._writer.write(work.rows)
        self._count(written)
        for refusal in written.refused:
            project, message = work.origins[refusal.index]
            self._dead_letter(project, message, refusal.reason)
        if written.outage is None:
            return
        settled = work.rejected | {message.id for _, message in work.origins[:written.settled]}
        self._delete(work.claims, settled)
        self._release(work.claims)
        raise written.outage

    def _delete(self, claims: list[tuple[str, Claim]], only: set[str] | None = None) -> None:
        """Only now, with the rows committed, take the messages off their queues."""
        def delete(item: tuple[str, Claim]) -> None:
            project, claim = item
            ids = [m.id for m in claim.messages if only is None or m.id in only]
            if ids:
                self._client.delete(project, self._layout.queue, ids, claim.id)

        list(self._pool.map(delete, claims))

    def _release(self, claims: list[tuple[str, Claim]]) -> None:
        for project, claim in claims:
            try:
                self._client.release(project, self._layout.queue, claim.id)
            except ZaqarError:  # it expires by itself after claim_ttl
                LOG.debug("could not release claim %s", claim.id, exc_info=True)

    def _dead_letter(self, project: str, message: QueuedMessage, reason: str) -> None:
        """Keep the refused envelope, with why, in the project's dead-letter queue."""
        self._client.post(project, self._layout.dead_letter_queue, [{
            "ttl": self._dead_letter_ttl,
            "body": {"reason": reason[:1000], "queue": self._layout.queue,
                     "envelope": message.body},
        }])
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERED.labels(source="zaqar").inc()
        LOG.warning("dead-lettered an envelope from project %s: %s", project, reason)

    def _count(self, written: Written) -> None:
        self.stats.stored += written.new
        self.stats.duplicates += written.duplicates
        self.stats.suppressed += written.suppressed
        self.stats.db_retries += written.outage is not None
