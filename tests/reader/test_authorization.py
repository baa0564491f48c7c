"""Every public read of the Reader authorizes itself: no front end has to remember to.

The methods are enumerated from the class (``inspect``), so a read added
without a policy check fails here, as does one this test cannot call (teach
``_arguments`` its parameter). Each is called with a caller the policy denies
(a caller with no role under Cinder's rules; a member, and an admin, under a
policy file that denies every message rule), must raise Forbidden when called
(a generator that would check at its first row is too late: a download's
status is sent before its rows) and must change nothing; the same call by an
allowed caller succeeds, so it is the policy that refuses, not the arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, false, func, select

from tests.api.conftest import row
from usermessages.config import Settings
from usermessages.errors import Forbidden
from usermessages.reader import Caller, Reader, Scope
from usermessages.reader.policy import DEFAULT_RULES
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate, writer
from usermessages.store import series as store_series
from usermessages.store.schema import messages

P = "aaaa1111"
# What decides who asks; none reads a message, a series or a count.
IDENTITY = {"from_settings", "scope", "authenticate", "session_caller", "still_valid"}
# Webhook management writes subscriptions, not messages: its rules are enforced and
# tested with the rest of the extensions' (tests/reader/test_policy_rules.py).
WEBHOOKS = {"create_webhook", "delete_webhook"}
READER = ("alice", P, ("member", "reader"))


def _public_methods() -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(Reader, inspect.isfunction)
                  if not name.startswith("_") and name not in IDENTITY | WEBHOOKS)


def test_the_enumeration_sees_the_reads() -> None:
    # Guards the test itself: an enumeration that found nothing would pass everything.
    assert {"query", "count", "walk", "poll", "histogram", "aggregates", "get", "delete",
            "list_series", "repeats"} <= set(_public_methods())


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A real store holding one message of P (and so its series)."""
    eng = store_engine.connect(f"sqlite:///{tmp_path_factory.mktemp('authz')}/um.sqlite")
    migrate.upgrade(eng)
    with eng.begin() as conn:
        writer.insert(conn, [row(P, resource_uuid="vol-1")])
    yield eng
    eng.dispose()


def _call(reader: Reader, name: str, scope: Scope) -> Any:
    """Call a read with real arguments for each parameter it takes (defaults left as
    they are)."""
    with reader.engine.connect() as conn:
        [message] = store.list_messages(conn, P, store.ListQuery())
        [series] = store_series.list_series(conn, P, store_series.SeriesQuery({}, limit=10))
    values: dict[str, Any] = {
        "scope": scope, "params": {}, "query": store.ListQuery(limit=10), "cursor": 0,
        "message_id": message.id, "series_id": series.id, "rows": [message],
        "legacy": False, "max_limit": 10, "page_size": 10, "bucket": None,
        "fmt": "csv", "admit": lambda: None,
    }
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    method = getattr(reader, name)
    for parameter in inspect.signature(method).parameters.values():
        if parameter.default is not inspect.Parameter.empty:
            continue
        assert parameter.name in values, (
            f"teach this test to call Reader.{name}({parameter.name}=...)")
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[parameter.name] = values[parameter.name]
        else:
            positional.append(values[parameter.name])
    return method(*positional, **keywords)


def _deny_all(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text("".join(f'"{rule.name}": "!"\n' for rule in DEFAULT_RULES
                            if rule.name.startswith("message:")))
    return str(path)


DENIED = {
    # Cinder's default rules: a reader or member of the project, or an admin.
    "no-role-default-rules": (("mallory", P, ()), False),
    "member-under-a-deny-all-policy": (READER, True),
    "admin-under-a-deny-all-policy": (("admin", P, ("admin", "member", "reader")), True),
}


@pytest.mark.parametrize("denied", DENIED, ids=list(DENIED))
@pytest.mark.parametrize("name", _public_methods())
def test_every_public_read_refuses_a_caller_the_policy_denies(
        engine: Engine, tmp_path_factory: pytest.TempPathFactory, name: str, denied: str) -> None:
    caller, deny_all = DENIED[denied]
    settings = Settings(database_connection=str(engine.url))
    allowed_reader = Reader.from_settings(settings, engine=engine)
    reader = (Reader.from_settings(settings.replace(policy_file=_deny_all(tmp_path_factory)),
                                   engine=engine) if deny_all else allowed_reader)
    scope = reader.scope(Caller(*caller))
    before = _visible(engine)
    with pytest.raises(Forbidden):
        _call(reader, name, scope)
    assert _visible(engine) == before  # a refused delete deleted nothing
    # The same call, allowed: the arguments are good, the policy refused.
    result = _call(allowed_reader, name, allowed_reader.scope(Caller(*READER)))
    if inspect.isgenerator(result):
        assert list(result)
    if name == "export":  # (rows, what admit returned)
        assert list(result[0])
    if name == "delete":  # put it back for the next method
        with engine.begin() as conn:
            conn.execute(messages.update().values(deleted=False, deleted_at=None))


def _visible(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)
                            .where(messages.c.deleted == false())).scalar_one()
