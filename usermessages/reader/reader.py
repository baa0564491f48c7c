"""The one reader of messages: who asks, what they may do, what they see.

Every front end (the REST API, the Event Viewer, the reference service's
routes) reads through this class, so the admin-versus-project branching is
written once: a ``Scope`` says whether a caller reads across projects, and
every query below takes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from usermessages import audit, logs
from usermessages.catalog import LEGACY_DETAILS, PLACEHOLDERS, Advice, Catalog
from usermessages.config import Settings, project_id_problem
from usermessages.errors import (
    BadRequest,
    KeystoneUnavailable,
    MessageNotFound,
    NotFound,
    Unauthorized,
)
from usermessages.reader import filtered_view, policy
from usermessages.reader.identity import Caller, authenticate, identify
from usermessages.reader.keystone import Refusal, TokenValidator
from usermessages.reader.params import parse_list_query
from usermessages.store import aggregates as store_aggregates
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import webhooks as store_webhooks
from usermessages.translations import Translator
from usermessages.web.faults import NOT_FOUND_TEXT
from usermessages.web.microversion import APIVersion
from usermessages.web.views import user_message
from usermessages.webhooks import subscriptions

T = TypeVar("T")
MAX_ID = 255
ADVICE_FIELDS = tuple(sorted(PLACEHOLDERS))


@dataclass(frozen=True)
class Scope:
    """A verified caller and whether they read across projects."""

    caller: Caller
    all_projects: bool

    @property
    def project_id(self) -> str | None:
        """The project every query is limited to; None for a cross-project reader."""
        return None if self.all_projects else self.caller.project_id


class Reader:
    """Identity, policy and scope, and the list/get/delete queries behind them."""

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

    # --- identity and scope -------------------------------------------------

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
            problem = project_id_problem(self.settings, url_project)
            if problem:
                # Cinder's text first (clients may match it), then the reason.
                raise NotFound(f"{NOT_FOUND_TEXT} {problem[0].upper()}{problem[1:]}.")
            if url_project != caller.project_id:
                raise BadRequest(
                    f"Malformed request url: the project in the URL ({url_project[:64]}) is "
                    f"not the token's ({caller.project_id[:64]})")
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

    def authorize_list(self, scope: Scope, rule: str | None = None) -> None:
        """May the caller list messages and, for a list in another shape (an export, the
        aggregates, a stream), read that shape (its own ``rule``) too?"""
        self.policy.authorize(policy.GET_ALL, scope.caller, scope.caller.project_id)
        if rule is not None:
            self.policy.authorize(rule, scope.caller, scope.caller.project_id)

    # --- reading ------------------------------------------------------------

    def parse(self, scope: Scope, params: Mapping[str, str], version: APIVersion,
              *, max_limit: int) -> tuple[store.ListQuery, int | None]:
        """A list request's parameters, with the filters this scope may use."""
        return parse_list_query(dict(params), version, is_admin=scope.all_projects,
                                max_limit=max_limit)

    def list_messages(self, scope: Scope, params: Mapping[str, str], version: APIVersion,
             *, max_limit: int) -> tuple[list[dict], int | None]:
        """Authorize, parse, query: the rows of one page and the limit a next link keeps."""
        self.authorize_list(scope)
        query, link_limit = self.parse(scope, params, version, max_limit=max_limit)
        return self.query(scope, query), link_limit

    def query(self, scope: Scope, query: store.ListQuery) -> list[dict]:
        """Rows in the scope; the caller has authorized the list already."""
        with self.engine.connect() as conn:
            return self._rows(conn, scope, query)

    def after(self, scope: Scope, query: store.ListQuery,
              cursor: int) -> tuple[list[dict], int]:
        """Rows stored after ``cursor`` (the stored order), and the newest seq read first.

        The counter is read before the rows, in one connection: every row up to
        it is committed, so a poller may move its cursor there.
        """
        with self.engine.connect() as conn:
            newest = store.last_seq(conn)
            return self._rows(conn, scope, replace(query, after_seq=cursor)), newest

    def poll(self, scope: Scope, query: store.ListQuery, cursor: int) -> tuple[list[dict], int]:
        """A stream's next rows after ``cursor`` and the cursor to poll from next.

        Shared by the viewer's and the API's streams. Rows past the counter read
        first are left for the next poll; once its value V is committed every row
        up to V is (inserters commit in seq order), so when the page was not full
        the cursor moves to V even if no row matched the filters, and the next
        poll never rescans those rows. ``query.limit`` is the page size.
        """
        rows, newest = self.after(scope, query, cursor)
        shown = [row for row in rows if row["seq"] <= newest]
        if query.limit is None or len(rows) < query.limit:
            return shown, max(cursor, newest)
        return shown, shown[-1]["seq"] if shown else cursor

    def newest(self) -> int:
        with self.engine.connect() as conn:
            return store.last_seq(conn)

    def get(self, scope: Scope, message_id: str, rule: str = policy.GET) -> dict:
        """One message, looked up before the policy check: another project's id is a 404."""
        if len(message_id) > MAX_ID:
            raise MessageNotFound(message_id[:MAX_ID] + "...")
        with self.engine.connect() as conn:
            if scope.all_projects:
                row = store.get_message_all_projects(conn, message_id)
            else:
                row = store.get_message(conn, message_id, scope.caller.project_id)
        self.policy.authorize(rule, scope.caller, row["project_id"])
        return row

    def delete(self, scope: Scope, message_id: str) -> dict:
        """Soft-delete one message (audited); a concurrent delete makes this one a 404."""
        with self._audited(audit.DELETE, scope, audit.message(message_id[:MAX_ID]), 204):
            row = self.get(scope, message_id, policy.DELETE)
            with self.engine.begin() as conn:
                if not store.soft_delete_message(conn, row["id"]):
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
        """A filtered view's query: the list's filters plus ``q``, a summary search."""
        return filtered_view.parse_view(dict(params), self.catalog, is_admin=scope.all_projects,
                                        max_limit=max_limit, paged=paged)

    def count(self, scope: Scope, query: store.ListQuery) -> int:
        """How many messages in the scope match (authorized as a list)."""
        with self.engine.connect() as conn:
            if scope.project_id is None:
                return store.count_messages_all_projects(conn, query)
            return store.count_messages(conn, scope.project_id, query)

    def aggregates(self, scope: Scope, query: store.ListQuery,
                   bucket: str | None) -> dict[str, Any]:
        """Counts by each dimension and by time bucket (see histogram), in one connection."""
        shape = filtered_view.histogram(query, bucket)
        with self.engine.connect() as conn:
            by = {dimension: store_aggregates.count_by(conn, scope.project_id, query, dimension)
                  for dimension in store_aggregates.DIMENSIONS}
            times = store_aggregates.count_by_time(conn, scope.project_id, shape.query,
                                                   shape.bucket)
        return {"bucket": shape.bucket, "since": shape.since, "until": shape.until,
                "by": by, "times": times}

    def histogram(self, scope: Scope, query: store.ListQuery, bucket: str | None
                  ) -> tuple[filtered_view.Histogram, list[tuple[dt.datetime, int]]]:
        """The view counted by time bucket only: its bounded range, and (start, count)s."""
        shape = filtered_view.histogram(query, bucket)
        with self.engine.connect() as conn:
            return shape, store_aggregates.count_by_time(conn, scope.project_id, shape.query,
                                                         shape.bucket)

    def export(self, scope: Scope, params: Mapping[str, str], fmt: str, *, max_limit: int,
               page_size: int, admit: Callable[[], T]) -> tuple[Iterator[dict], T]:
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

    def walk(self, scope: Scope, query: store.ListQuery, page_size: int) -> Iterator[dict]:
        """Every row of the view, read ``page_size`` at a time by keyset.

        Each page is its own short read: a long download holds no transaction
        (or partition lock) open, and memory holds one page, never the result.
        """
        page = replace(query, limit=page_size, marker=None, offset=0, after_row=None)
        while True:
            with self.engine.connect() as conn:
                rows = self._rows(conn, scope, page)
            yield from rows
            if len(rows) < page_size:
                return
            page = replace(page, after_row=rows[-1])

    def text(self, row: dict, language: str = "en") -> str:
        """The user-facing text, composed now from the stored ids (overrides apply)."""
        return user_message(row, self.translator.catalog_for(language))

    def advice(self, row: dict, language: str = "en") -> Advice:
        """What the catalog advises for a row's detail (a legacy row's by its event)."""
        legacy = LEGACY_DETAILS.get(row["event_id"])
        detail_id = row["detail_id"] or (legacy.id if legacy is not None else None)
        return self.translator.catalog_for(language).advice(
            detail_id, {k: row[k] or "" for k in ADVICE_FIELDS})

    @staticmethod
    def _rows(conn: Connection, scope: Scope, query: store.ListQuery) -> list[dict]:
        if scope.project_id is None:
            return store.list_messages_all_projects(conn, query)
        return store.list_messages(conn, scope.project_id, query)
