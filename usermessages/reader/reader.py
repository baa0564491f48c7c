"""The one reader of messages: who asks, what they may do, what they see.

Every front end (the REST API, the Event Viewer, the reference service's
routes) reads through this class, so the admin-versus-project branching is
written once: a ``Scope`` says whether a caller reads across projects, and
every query below takes it.

Every public read authorizes itself: it checks its caller against the policy
before it returns anything (a list's rule before the query; a single
message's rule on the row it found, so another project's id stays a 404).
No front end calls the policy for a read; tests/reader/test_authorization.py
calls every public method with a caller the policy denies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from usermessages import audit, logs
from usermessages.catalog import Catalog
from usermessages.config import Settings
from usermessages.errors import KeystoneUnavailable, MessageNotFound, SeriesNotFound, Unauthorized
from usermessages.reader import filtered_view, policy
from usermessages.reader import series as series_params
from usermessages.reader.identity import (
    Caller,
    authenticate,
    check_url_project,
    identify,
)
from usermessages.reader.keystone import Refusal, TokenValidator
from usermessages.reader.params import parse_list_query
from usermessages.store import aggregates as store_aggregates
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import series as store_series
from usermessages.store import webhooks as store_webhooks
from usermessages.store.messages import StoredMessage
from usermessages.store.series import StoredSeries
from usermessages.translations import Translator
from usermessages.webhooks import subscriptions

T = TypeVar("T")
MAX_ID = 255


@dataclass(frozen=True)
class Scope:
    """A verified caller and whether they read across projects."""

    caller: Caller
    all_projects: bool

    @property
    def project_id(self) -> str | None:
        """The project every query is limited to; None for a cross-project reader."""
        return None if self.all_projects else self.caller.project_id


@dataclass(frozen=True)
class Aggregates:
    """A view counted by each dimension and by time bucket (see ``Reader.aggregates``)."""

    bucket: str
    since: dt.datetime
    until: dt.datetime
    by: Mapping[str, list[tuple[str, int]]]
    times: list[tuple[dt.datetime, int]]


class Reader:
    """Identity, policy and scope, and the queries behind them, each authorized here."""

    def __init__(self, settings: Settings, engine: Engine, catalog: Catalog,
                 policy_: policy.Policy, token_validator: TokenValidator | None = None,
                 auditor: audit.Auditor | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.catalog = catalog
        # The catalog in each language a reader may ask for (Accept-Language, the viewer's choice).
        self.translator = Translator(catalog)
        self.policy = policy_
        self.token_validator = token_validator
        # Deletes, webhook changes and exports are audited here, for every front end.
        self.auditor = auditor or audit.Auditor()

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine | None = None,
                      catalog: Catalog | None = None) -> Reader:
        """Load the catalog, policy and Keystone options now: a bad file is a start-up error."""
        engine = engine or store_engine.connect(settings.database_connection,
                                                timeout=settings.database_timeout)
        catalog = catalog or Catalog.from_file(settings.catalog_overrides_file or None)
        validator = (TokenValidator(dict(settings.keystone_authtoken))
                     if settings.auth_strategy == "keystone" else None)
        return cls(settings, engine, catalog,
                   policy.Policy(settings.policy_file, settings.oslo_policy), validator,
                   audit.Auditor.from_settings(settings))

    # --- identity and scope (who asks; nothing is read) ---------------------

    def scope(self, caller: Caller) -> Scope:
        return Scope(caller, self.policy.sees_all_projects(caller, self.settings.auth_strategy))

    @staticmethod
    def _known(caller: Caller) -> Caller:
        """The verified caller, named in the request's log context from now on."""
        logs.identify(caller.user_id, caller.project_id, caller.roles,
                      system_scope=caller.system_scope, domain_id=caller.domain_id)
        return caller

    def authenticate(self, headers: Mapping[str, str], state: object,
                     url_project: str | None = None) -> Scope:
        """A request's caller (noauth token or Keystone's validated identity), checked
        against the project its URL names."""
        caller = self._known(identify(headers, state, self.settings))
        if url_project is not None:
            check_url_project(self.settings, url_project, caller)
        return self.scope(caller)

    def session_caller(self, token: str) -> Caller:
        """The caller a session's stored token names (the viewer's sign-in).

        Raises Unauthorized when the token is refused (the session is over) and
        KeystoneUnavailable when Keystone cannot say.
        """
        if self.token_validator is None:
            return self._known(authenticate({"x-auth-token": token},
                                            admin_user=self.settings.admin_user,
                                            trust_roles_header=False))
        result = self.token_validator.validate([(b"x-auth-token", token.encode())])
        if isinstance(result, Refusal):
            if result.status == 401:
                raise Unauthorized("The session's token is no longer valid.")
            raise KeystoneUnavailable("Keystone cannot be reached; try again later.")
        return self._known(result)

    def still_valid(self, token: str, caller: Caller) -> bool:
        """Whether ``token`` still names ``caller`` (a live stream re-checks its token).

        False once the token is refused (revoked, expired); raises
        KeystoneUnavailable when Keystone cannot say.
        """
        try:
            return self.session_caller(token) == caller
        except Unauthorized:
            return False

    def _authorize(self, scope: Scope, rule: str) -> None:
        """A read of the caller's project (or, across projects, of none in particular)."""
        self.policy.authorize(rule, scope.caller, scope.caller.project_id)

    def authorize_list(self, scope: Scope, rule: str | None = None) -> None:
        """May the caller list messages and, for a list in another shape (an export, the
        aggregates, a stream), read that shape (its own ``rule``) too?"""
        self._authorize(scope, policy.GET_ALL)
        if rule is not None:
            self._authorize(scope, rule)

    # --- messages -----------------------------------------------------------

    def parse(self, scope: Scope, params: Mapping[str, str], *, legacy: bool,
              max_limit: int) -> tuple[store.ListQuery, int]:
        """A list request's parameters, with the filters this scope may use (a list's
        rule: a caller who may not list has nothing to parse), and the limit a
        next link is judged on. ``legacy``: a microversion below 3.5."""
        self._authorize(scope, policy.GET_ALL)
        return parse_list_query(dict(params), legacy=legacy, is_admin=scope.all_projects,
                                max_limit=max_limit)

    def list_messages(self, scope: Scope, params: Mapping[str, str], *, legacy: bool,
                      max_limit: int) -> tuple[list[StoredMessage], int]:
        """Parse, query: the rows of one page and the limit a next link keeps."""
        query, link_limit = self.parse(scope, params, legacy=legacy, max_limit=max_limit)
        return self.query(scope, query), link_limit

    def query(self, scope: Scope, query: store.ListQuery) -> list[StoredMessage]:
        """Rows in the scope, authorized as a list."""
        self._authorize(scope, policy.GET_ALL)
        with self.engine.connect() as conn:
            return self._rows(conn, scope, query)

    def after(self, scope: Scope, query: store.ListQuery,
              cursor: int) -> tuple[list[StoredMessage], int]:
        """Rows stored after ``cursor`` (the stored order), and the newest seq read first.

        The counter is read before the rows, in one connection: every row up to
        it is committed, so a poller may move its cursor there.
        """
        self._authorize(scope, policy.GET_ALL)
        with self.engine.connect() as conn:
            newest = store.last_seq(conn)
            return self._rows(conn, scope, replace(query, after_seq=cursor)), newest

    def poll(self, scope: Scope, query: store.ListQuery,
             cursor: int) -> tuple[list[StoredMessage], int]:
        """A stream's next rows after ``cursor`` and the cursor to poll from next.

        Shared by the viewer's and the API's streams. Rows past the counter read
        first are left for the next poll; once its value V is committed every row
        up to V is (inserters commit in seq order), so when the page was not full
        the cursor moves to V even if no row matched the filters, and the next
        poll never rescans those rows. ``query.limit`` is the page size.
        """
        rows, newest = self.after(scope, query, cursor)
        shown = [row for row in rows if row.seq <= newest]
        if query.limit is None or len(rows) < query.limit:
            return shown, max(cursor, newest)
        return shown, shown[-1].seq if shown else cursor

    def newest(self, scope: Scope) -> int:
        """The newest stored-order number: where a live list starts (authorized as a list)."""
        self._authorize(scope, policy.GET_ALL)
        with self.engine.connect() as conn:
            return store.last_seq(conn)

    def get(self, scope: Scope, message_id: str, rule: str = policy.GET) -> StoredMessage:
        """One message, looked up before the policy check: another project's id is a 404."""
        if len(message_id) > MAX_ID:
            raise MessageNotFound(message_id[:MAX_ID] + "...")
        with self.engine.connect() as conn:
            if scope.all_projects:
                row = store.get_message_all_projects(conn, message_id)
            else:
                row = store.get_message(conn, message_id, scope.caller.project_id)
        self.policy.authorize(rule, scope.caller, row.project_id)
        return row

    def delete(self, scope: Scope, message_id: str) -> StoredMessage:
        """Soft-delete one message (audited); a concurrent delete makes this one a 404."""
        with self._audited(audit.DELETE, scope, audit.message(message_id[:MAX_ID]), 204):
            row = self.get(scope, message_id, policy.DELETE)
            with self.engine.begin() as conn:
                if not store.soft_delete_message(conn, row.id):
                    raise MessageNotFound(message_id)
        return row

    def _audited(self, action: str, scope: Scope, target: audit.Target, status: int,
                 attachments: dict[str, Any] | None = None
                 ) -> contextlib.AbstractContextManager[audit.Audit]:
        caller = scope.caller
        return self.auditor.audited(action, caller.user_id, caller.project_id, target,
                                    status=status, attachments=attachments)

    # --- webhooks: a project's members manage them --------------------------

    def create_webhook(self, scope: Scope, project_id: str,
                       fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """Register a webhook for ``project_id`` (audited): its row and its secret."""
        with self._audited(audit.CREATE, scope, audit.webhooks(project_id), 201) as done:
            self.policy.authorize(policy.WEBHOOKS_CREATE, scope.caller, project_id)
            row, secret = subscriptions.register(self.settings, self.engine, project_id,
                                                 scope.caller.user_id, fields)
            done.target = audit.webhook(row["id"])
        return row, secret

    def delete_webhook(self, scope: Scope, project_id: str, webhook_id: str) -> None:
        """Delete one of ``project_id``'s webhooks (audited)."""
        with self._audited(audit.DELETE, scope, audit.webhook(webhook_id[:MAX_ID]), 204):
            self.policy.authorize(policy.WEBHOOKS_DELETE, scope.caller, project_id)
            with self.engine.begin() as conn:
                store_webhooks.remove(conn, project_id, webhook_id)

    # --- the extension: views, counts, export -------------------------------

    def parse_view(self, scope: Scope, params: Mapping[str, str], *, max_limit: int,
                   paged: bool = True) -> store.ListQuery:
        """A filtered view's query: the list's filters plus ``q``, a summary search
        (a list's rule, as ``parse``)."""
        self._authorize(scope, policy.GET_ALL)
        return filtered_view.parse_view(dict(params), self.catalog, is_admin=scope.all_projects,
                                        max_limit=max_limit, paged=paged)

    def count(self, scope: Scope, query: store.ListQuery) -> int:
        """How many messages in the scope match (authorized as a list)."""
        self._authorize(scope, policy.GET_ALL)
        with self.engine.connect() as conn:
            if scope.project_id is None:
                return store.count_messages_all_projects(conn, query)
            return store.count_messages(conn, scope.project_id, query)

    def aggregates(self, scope: Scope, query: store.ListQuery,
                   bucket: str | None) -> Aggregates:
        """Counts by each dimension and by time bucket (see histogram), in one connection
        (a list in another shape: authorized as a list and as aggregates)."""
        self.authorize_list(scope, policy.AGGREGATES)
        shape = filtered_view.histogram(query, bucket)
        with self.engine.connect() as conn:
            by = {dimension: store_aggregates.count_by(conn, scope.project_id, query, dimension)
                  for dimension in store_aggregates.DIMENSIONS}
            times = store_aggregates.count_by_time(conn, scope.project_id, shape.query,
                                                   shape.bucket)
        return Aggregates(shape.bucket, shape.since, shape.until, by, times)

    def histogram(self, scope: Scope, query: store.ListQuery, bucket: str | None
                  ) -> tuple[filtered_view.Histogram, list[tuple[dt.datetime, int]]]:
        """The view counted by time bucket only: its bounded range, and (start, count)s."""
        self._authorize(scope, policy.GET_ALL)
        shape = filtered_view.histogram(query, bucket)
        with self.engine.connect() as conn:
            return shape, store_aggregates.count_by_time(conn, scope.project_id, shape.query,
                                                         shape.bucket)

    def export(self, scope: Scope, params: Mapping[str, str], fmt: str, *, max_limit: int,
               page_size: int, admit: Callable[[], T]) -> tuple[Iterator[StoredMessage], T]:
        """Every row of a filtered view (``parse_view``'s params), for a download in
        ``fmt``: authorized, parsed, admitted and audited now, before the first row (once
        a download streams, its status is sent). ``admit`` takes the download's slot,
        last, so only a download that would start holds one; a refusal (429, 503) is
        audited as the failure it is. Returns the rows and what ``admit`` returned."""
        attachment = {"query": {"format": fmt, **params}}
        with self._audited(audit.EXPORT, scope, audit.export(scope.project_id), 200,
                           attachment):
            self.authorize_list(scope, policy.EXPORT)
            query = self.parse_view(scope, params, max_limit=max_limit, paged=False)
            admitted = admit()
        return self.walk(scope, query, page_size), admitted

    def walk(self, scope: Scope, query: store.ListQuery,
             page_size: int) -> Iterator[StoredMessage]:
        """Every row of the view, read ``page_size`` at a time by keyset.

        Authorized now, when called, not at the first row: a download's status
        is sent before its rows. Each page is its own short read: a long
        download holds no transaction (or partition lock) open, and memory
        holds one page, never the result.
        """
        self._authorize(scope, policy.GET_ALL)
        return self._pages(scope, replace(query, limit=page_size, marker=None, offset=0,
                                          after_row=None), page_size)

    def _pages(self, scope: Scope, page: store.ListQuery,
               page_size: int) -> Iterator[StoredMessage]:
        while True:
            with self.engine.connect() as conn:
                rows = self._rows(conn, scope, page)
            yield from rows
            if len(rows) < page_size:
                return
            page = replace(page, after_row=rows[-1])

    @staticmethod
    def _rows(conn: Connection, scope: Scope, query: store.ListQuery) -> list[StoredMessage]:
        if scope.project_id is None:
            return store.list_messages_all_projects(conn, query)
        return store.list_messages(conn, scope.project_id, query)

    # --- series (repeats of one failure) ------------------------------------

    def list_series(self, scope: Scope, params: Sequence[tuple[str, str]],
                    max_limit: int) -> tuple[list[StoredSeries], int]:
        """One page of series and the limit a next link is judged on."""
        self._authorize(scope, policy.SERIES_GET_ALL)
        query = series_params.parse(params, is_admin=scope.all_projects, max_limit=max_limit)
        with self.engine.connect() as conn:
            if scope.project_id is None:
                return store_series.list_series_all_projects(conn, query), query.limit
            return store_series.list_series(conn, scope.project_id, query), query.limit

    def get_series(self, scope: Scope, series_id: str) -> StoredSeries:
        """One series, looked up before the policy check: another project's id is a 404."""
        if len(series_id) > MAX_ID:
            raise SeriesNotFound(series_id[:MAX_ID] + "...")
        with self.engine.connect() as conn:
            if scope.project_id is None:
                row = store_series.get_series_all_projects(conn, series_id)
            else:
                row = store_series.get_series(conn, series_id, scope.project_id)
        self.policy.authorize(policy.SERIES_GET, scope.caller, row.project_id)
        return row

    def repeats(self, scope: Scope, rows: Sequence[StoredMessage]) -> dict[str, int]:
        """How many times each row's failure occurred (its series' count), by message id.

        Shown beside rows listed or looked up in this scope, under the list's
        rule; only the scope's own rows are counted (a row of another project,
        however it was obtained, gets no count).
        """
        self._authorize(scope, policy.GET_ALL)
        keys = {row.id: store_series.series_id(row.kind, row.project_id, row.event_id,
                                               row.resource_uuid or "")
                for row in rows if scope.project_id in (None, row.project_id)}
        if not keys:
            return {}
        with self.engine.connect() as conn:
            found = store_series.counts(conn, sorted(set(keys.values())))
        return {message_id: found[sid] for message_id, sid in keys.items() if sid in found}
