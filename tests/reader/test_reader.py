"""The one reader: scope decides what a caller sees, on every front end alike."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from tests.api.conftest import row
from usermessages.config import Settings
from usermessages.errors import BadRequest, Forbidden, MessageNotFound, NotFound, Unauthorized
from usermessages.reader import Caller, Reader
from usermessages.store import writer

P, Q = "aaaa1111", "bbbb2222"


@pytest.fixture
def reader(settings: Settings, engine: Engine) -> Reader:
    return Reader.from_settings(settings, engine=engine)


@pytest.fixture
def rows(engine: Engine) -> dict[str, dict]:
    seeded = {"p": row(P), "q": row(Q, minutes=1)}
    with engine.begin() as conn:
        writer.insert(conn, list(seeded.values()))
    return seeded


def _token(user: str, project: str) -> dict[str, str]:
    return {"x-auth-token": f"{user}:{project}"}


def test_a_project_scope_sees_its_project_and_nothing_else(reader: Reader, rows: dict) -> None:
    scope = reader.authenticate(_token("alice", P), object(), P)
    assert (scope.all_projects, scope.project_id) == (False, P)
    listed, _ = reader.list_messages(scope, {}, legacy=False, max_limit=100)
    assert [r.id for r in listed] == [rows["p"]["id"]]
    assert reader.get(scope, rows["p"]["id"]).id == rows["p"]["id"]
    # Another project's message is not found, never forbidden: its existence is not told.
    with pytest.raises(MessageNotFound):
        reader.get(scope, rows["q"]["id"])
    with pytest.raises(MessageNotFound):
        reader.delete(scope, rows["q"]["id"])
    # Cross-project filters are an admin's: a project user's is Cinder's 400.
    with pytest.raises(BadRequest):
        reader.list_messages(scope, {"project_id": Q}, legacy=False, max_limit=100)


def test_the_admin_scope_reads_across_projects(reader: Reader, rows: dict) -> None:
    scope = reader.authenticate(_token("admin", P), object(), P)
    assert (scope.all_projects, scope.project_id) == (True, None)
    listed, _ = reader.list_messages(scope, {}, legacy=False, max_limit=100)
    assert {r.id for r in listed} == {rows["p"]["id"], rows["q"]["id"]}
    assert reader.get(scope, rows["q"]["id"]).project_id == Q


def test_the_url_project_must_be_the_token_s(reader: Reader) -> None:
    with pytest.raises(BadRequest, match="Malformed request url"):
        reader.authenticate(_token("alice", P), object(), Q)
    with pytest.raises(NotFound):
        reader.authenticate(_token("alice", "demo"), object(), "demo")
    with pytest.raises(Unauthorized):
        reader.authenticate({}, object(), P)


def test_policy_is_checked_on_the_found_row(settings: Settings, engine: Engine, rows: dict,
                                            tmp_path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:delete": "!"\n')
    reader = Reader.from_settings(settings.replace(policy_file=str(policy_file)), engine=engine)
    scope = reader.scope(Caller("alice", P, ("member", "reader")))
    assert reader.get(scope, rows["p"]["id"]).id == rows["p"]["id"]
    with pytest.raises(Forbidden):
        reader.delete(scope, rows["p"]["id"])


def test_concurrent_deletes_delete_once(reader: Reader, rows: dict) -> None:
    scope = reader.scope(Caller("alice", P, ("member", "reader")))
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def delete() -> None:
        start.wait()
        try:
            reader.delete(scope, rows["p"]["id"])
            outcomes.append("deleted")
        except MessageNotFound:
            outcomes.append("not found")

    threads = [threading.Thread(target=delete) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["deleted"] + ["not found"] * 7
    with pytest.raises(MessageNotFound):
        reader.get(scope, rows["p"]["id"])
