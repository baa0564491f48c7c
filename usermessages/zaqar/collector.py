"""The Zaqar collector (phase 3): claim from the project queues, store, then delete.

Each round claims up to ``batch_size`` messages across the project queues
(20 per claim, Zaqar's limit; ``concurrency`` claims in flight, one per
project in turn from where the last round stopped, then more from the
projects that had more, so busy projects do not starve the others),
decodes them with ``Message.from_wire``, inserts them in one transaction
with "on conflict do nothing" on the producer's id, and only then deletes
the claimed messages. The deletes of one round run while
the next round claims (one round's deletes in flight at most; ``close``
waits for them): a delete is a round trip as long as a claim, and nothing
in the next round depends on it. So:

* a collector killed after its claim, before or after the insert, loses
  nothing: Zaqar hands the messages out again when the claim expires
  (``[zaqar] claim_ttl``), and the insert stores nothing twice;
* while the store is down the claims are released at once and the round is
  retried with capped back-off; Zaqar keeps the messages;
* an envelope that cannot be accepted goes, with the reason, to the
  dead-letter queue of the same project (``[zaqar] dead_letter_queue``),
  and is then deleted from the messages queue, even when the store is down:
  one dead letter per envelope, however often the round is retried (only a
  Zaqar failure between the two posts it again). This includes an envelope
  naming another project than the queue it came from: a project's members
  can post to their own queue, so the queue, not the envelope, says whose
  message it is, and admin-only kinds are only taken from the admin project.
  An envelope too large to travel in a dead letter (Zaqar's 256 KiB) is
  described there by its size and first 4 KiB.

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
import random
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

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
from usermessages.zaqar.client import (
    MAX_PER_CALL,
    MAX_POST_BYTES,
    Claim,
    QueuedMessage,
    ZaqarClient,
    ZaqarError,
    carries_project,
    encoded_post,
)
from usermessages.zaqar.layout import Layout, layout_from_settings

LOG = logging.getLogger(__name__)

MAX_PROJECT = 255
MAX_INDEX_CLAIMS = 50  # announcements claimed per refresh: 1,000
ENVELOPE_HEAD = 4096  # characters of an envelope too large for its dead letter
ROUND_SECONDS = 1.0  # a round claims for this long at most, then stores what it has


@dataclass
class ZaqarCollectorStats:
    stored: int = 0
    duplicates: int = 0
    suppressed: int = 0
    dead_lettered: int = 0
    dropped: int = 0  # refused envelopes Zaqar would not take even a short dead letter for
    deleted: int = 0  # ids Zaqar answered 204 to deleting (it does for unknown ids too)
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
    kept: set[str] = field(default_factory=set)  # their dead letter failed: left to come back


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
        # Collectors start at different projects, so they seldom claim the same queue
        # at once (each claim scans past the messages claimed ahead of it).
        self._turn = random.randrange(1 << 30)
        self._concurrency = concurrency
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="usermessages-zaqar")
        # The deletes have their own threads: in flight, they must not hold up the claims.
        self._deleter = ThreadPoolExecutor(concurrency,
                                           thread_name_prefix="usermessages-zaqar-delete")
        self._deleting: list[Future[int]] = []  # the last round's deletes
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
        """Wait for the deletes in flight, then let go of the threads and the connection."""
        self._settle_deletes()
        self._pool.shutdown()
        self._deleter.shutdown()
        self._client.close()

    # --- the loop ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Collect until ``stop`` is set; Zaqar or store trouble backs off and retries."""
        try:
            self._collect(stop)
        finally:
            self._settle_deletes()

    def _collect(self, stop: threading.Event) -> None:
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
            self._delete(work)
        else:
            self._settle_deletes()
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
            known = dict.fromkeys((*self._static, *sorted(self._stored | self._announced)))
            # A project id Zaqar cannot be asked about has no queue there (the sink
            # could not post to it either): asking would only fail every round.
            self._known = tuple(p for p in known if carries_project(p))
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
        """Claim up to a batch, ``concurrency`` claims in flight.

        Every project gets one claim in turn, starting where the last round
        stopped; then the projects whose claim came back full (there may be
        more) get further claims, several at once, in rotation. So a busy
        project is drained in parallel and still cannot starve the others.
        The round stops asking once its batch is claimed or ROUND_SECONDS have
        passed: the claims must be stored and deleted well within claim_ttl,
        and the first rows need not wait for the last of a thousand queues.
        """
        work = _Round()
        projects = self.projects()
        if not projects:
            return work
        first = self._turn % len(projects)
        line = deque(projects[first:] + projects[:first])  # one claim each, in turn
        busy: deque[str] = deque()  # full last time: more, in rotation
        deadline = time.monotonic() + ROUND_SECONDS
        asked: dict[Future[Claim | None], str] = {}
        claimed = 0
        failure: ZaqarError | None = None
        while True:
            while (len(asked) < self._concurrency and (line or busy) and failure is None
                   and claimed < self._batch_size
                   and time.monotonic() < deadline):
                if line:
                    project = line.popleft()
                    work.visited.append(project)
                else:
                    project = busy[0]
                    busy.rotate(-1)
                asked[self._pool.submit(self._claim, project)] = project
            if not asked:
                break
            done, _ = wait(asked, return_when=FIRST_COMPLETED)
            for future in done:
                project = asked.pop(future)
                try:
                    claim = future.result()
                except ZaqarError as exc:
                    if exc.permanent:  # this project's: the others go on
                        LOG.warning("Zaqar refused a claim in project %s: %s", project, exc)
                    else:  # Zaqar's trouble: ask no more; the claims in flight are kept
                        failure = failure or exc
                    continue
                full = claim is not None and len(claim.messages) == MAX_PER_CALL
                if full and project not in busy:
                    busy.append(project)
                elif not full and project in busy:
                    busy.remove(project)
                if claim is not None:
                    work.claims.append((project, claim))
                    claimed += len(claim.messages)
                    for message in claim.messages:
                        self._decide(project, message, work)
        self._turn = first + len(work.visited)
        if failure is not None:
            if not work.claims:
                raise failure
            LOG.warning("some claims failed this round (%s); storing the others", failure)
        return work

    def _claim(self, project: str) -> Claim | None:
        return self._client.claim(project, self._layout.queue, ttl=self._claim_ttl,
                                  grace=self._claim_ttl, limit=MAX_PER_CALL)

    def _decide(self, project: str, message: QueuedMessage, work: _Round) -> None:
        raw = json.dumps(message.body, separators=(",", ":"))
        try:
            decoded = Message.from_wire(raw, self._ttl)
            check_origin(decoded, project, self._layout.admin_project)
        except envelope.InvalidEnvelope as exc:
            if self._dead_letter(project, message, str(exc), raw):
                work.rejected.add(message.id)
            else:
                work.kept.add(message.id)
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
            if not self._dead_letter(project, message, refusal.reason,
                                     json.dumps(message.body, separators=(",", ":"))):
                work.kept.add(message.id)  # its letter failed: it comes back
        if written.outage is None:
            return
        settled = work.rejected | {message.id for _, message in work.origins[:written.settled]}
        self._delete_now(work.claims, settled - work.kept)  # before their claims go back
        self._release(work.claims)
        raise written.outage

    def _delete(self, work: _Round) -> None:
        """Only now, with the rows committed, take the messages off their queues.

        The deletes are started, not awaited: the next round claims meanwhile,
        and waits for them before it starts its own.
        """
        self._settle_deletes()
        for project, claim in work.claims:
            ids = [m.id for m in claim.messages if m.id not in work.kept]
            if ids:
                self._deleting.append(self._deleter.submit(self._delete_claimed, project, ids,
                                                           claim.id))

    def _delete_now(self, claims: list[tuple[str, Claim]], only: set[str]) -> None:
        """Delete these messages of the claims, and wait (an outage releases the rest)."""
        for project, claim in claims:
            ids = [m.id for m in claim.messages if m.id in only]
            if ids:
                self._deleting.append(self._deleter.submit(self._delete_claimed, project, ids,
                                                           claim.id))
        self._settle_deletes()

    def _delete_claimed(self, project: str, ids: list[str], claim_id: str) -> int:
        self._client.delete(project, self._layout.queue, ids, claim_id)
        return len(ids)

    def _settle_deletes(self) -> None:
        """Wait for the deletes in flight; a failed one is retried by the claim's expiry."""
        done, _ = wait(self._deleting)
        self._deleting = []
        for future in done:
            try:
                self.stats.deleted += future.result()
            except ZaqarError as exc:
                # Claimed again once the claim expires, stored again (a no-op), deleted then.
                self.stats.zaqar_errors += 1
                LOG.warning("could not delete stored messages (they come back after "
                            "claim_ttl and are deleted then): %s", exc)

    def _release(self, claims: list[tuple[str, Claim]]) -> None:
        for project, claim in claims:
            try:
                self._client.release(project, self._layout.queue, claim.id)
            except ZaqarError:  # it expires by itself after claim_ttl
                LOG.debug("could not release claim %s", claim.id, exc_info=True)

    def _dead_letter(self, project: str, message: QueuedMessage, reason: str,
                     raw: str) -> bool:
        """Keep the refused envelope, with why, in the project's dead-letter queue.

        True when the message may go: its letter is posted, or Zaqar refuses
        any letter for it for good (logged). False when Zaqar failed for now:
        the message stays claimed and comes back at the claim's expiry.
        """
        about = {"reason": reason[:1000], "queue": self._layout.queue}
        # The envelope itself when the letter fits in a post; else (a member may post
        # a body just under Zaqar's limit to their own queue) its size and head. Not
        # sent to be refused: Zaqar may close the connection on a post it refuses for
        # its size before reading it, which looks like an outage.
        letters = [letter for letter in (
            _encoded(about | {"envelope": message.body}),
            _encoded(about | {"envelope_bytes": len(raw.encode()),
                              "envelope_head": raw[:ENVELOPE_HEAD]}),
        ) if len(encoded_post([letter], self._dead_letter_ttl)) <= MAX_POST_BYTES]
        refusal: ZaqarError | str = "no letter fits in a post"
        for letter in letters:
            try:
                self._client.post_encoded(project, self._layout.dead_letter_queue, [letter],
                                          self._dead_letter_ttl)
                break
            except ZaqarError as exc:
                if not exc.permanent:
                    self.stats.zaqar_errors += 1
                    LOG.warning("could not dead-letter an envelope from project %s (%s); it "
                                "comes back when its claim expires", project, exc)
                    return False
                refusal = exc  # the queue's own limit is lower: try the shorter letter
        else:
            self.stats.dropped += 1
            LOG.error("Zaqar refuses dead letters in project %s (%s); dropped an envelope "
                      "refused for: %s", project, refusal, reason)
            return True
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERED.labels(source="zaqar").inc()
        LOG.warning("dead-lettered an envelope from project %s: %s", project, reason)
        return True

    def _count(self, written: Written) -> None:
        self.stats.stored += written.new
        self.stats.duplicates += written.duplicates
        self.stats.suppressed += written.suppressed
        self.stats.db_retries += written.outage is not None


def _encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
