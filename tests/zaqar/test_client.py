"""ZaqarClient against a real Zaqar 23: every call as Zaqar reads it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.zaqar.conftest import in_zaqar, read_queue
from usermessages.sinks.zaqar import split_posts
from usermessages.zaqar.client import MAX_PER_CALL, MAX_POST_BYTES, ZaqarError, encoded_post


def test_delete_takes_claimed_and_free_messages_off_by_id(zaqar, zaqar_client, new_project):
    """The ids go as Zaqar splits them (literal commas): an encoded list is one unknown
    id, which Zaqar answers with 204 and deletes nothing."""
    project, queue = new_project(), "um_client"
    posted = zaqar_client.post(project, queue, [{"ttl": 600, "body": {"n": n}} for n in range(45)])
    claims = []
    while claim := zaqar_client.claim(project, queue, ttl=60, grace=60, limit=MAX_PER_CALL):
        claims.append(claim)
    assert sorted(len(c.messages) for c in claims) == [5, 20, 20]
    # One delete of more than Zaqar's 20 ids per request, under its claim.
    first, second = claims[0], claims[1]
    zaqar_client.delete(project, queue, [m.id for m in first.messages + second.messages],
                        first.id)
    gone = {m.id for m in first.messages + second.messages}
    assert in_zaqar(zaqar.url, project, queue, posted) == [i for i in posted if i not in gone]
    zaqar_client.release(project, queue, claims[2].id)  # back to the queue, free
    free = [m.id for m in read_queue(zaqar_client, project, queue)]
    assert sorted(free) == sorted(m.id for m in claims[2].messages)
    zaqar_client.delete(project, queue, free, None)
    assert in_zaqar(zaqar.url, project, queue, posted) == []


def test_post_encoded_posts_each_body_as_it_is(zaqar, zaqar_client, new_project):
    project, queue = new_project(), "um_client"
    bodies = [json.dumps({"n": n, "text": "é\"\\,&?"}).encode() for n in range(3)]
    zaqar_client.post_encoded(project, queue, bodies, 120)
    read = read_queue(zaqar_client, project, queue)
    assert sorted(m.body["n"] for m in read) == [0, 1, 2]
    assert {m.body["text"] for m in read} == {"é\"\\,&?"} and {m.ttl for m in read} == {120}


@given(st.lists(st.integers(min_value=2, max_value=MAX_POST_BYTES + 10), max_size=60),
       st.integers(min_value=60, max_value=1209600))
def test_posts_stay_within_zaqar_limit_in_order(sizes, ttl):
    """How the sink cuts a project's envelopes into posts (no server needed)."""
    items = [(seq, b'"' + b"x" * (size - 2) + b'"') for seq, size in enumerate(sizes)]
    posts = split_posts(items, ttl)
    assert [item for post in posts for item in post] == items  # all of them, in order
    for post in posts:
        assert post  # none empty
        body = encoded_post([body for _, body in post], ttl)
        json.loads(body)
        assert len(body) <= MAX_POST_BYTES or len(post) == 1  # alone only when too large


@pytest.mark.parametrize(("status", "permanent"), [
    (400, True), (403, True), (404, True), (413, True),
    # Retried, the message kept: the credentials (an expired token), a timeout, a rate limit.
    (401, False), (408, False), (429, False), (500, False), (503, False), (None, False),
])
def test_only_what_zaqar_refuses_for_good_is_permanent(status, permanent):
    assert ZaqarError("refused", status).permanent is permanent
