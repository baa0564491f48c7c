"""Keystone stopped or hung: the API answers 503 within a bound, never hangs, leaks nothing."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.api.conftest import row
from tests.harness.cloud import Cloud
from usermessages.store import writer

V = {"OpenStack-API-Version": "volume 3.5"}
# [keystone_authtoken] http_connect_timeout is 3 s in these tests; the rest is margin
# for a loaded CI machine.
BOUND = 10.0


@pytest.fixture
def alpha_message(cloud: Cloud, engine) -> str:
    message = row(cloud.projects["alpha"])
    with engine.begin() as conn:
        writer.insert(conn, [message])
    return message["id"]


UNAVAILABLE = {"serviceUnavailable": {
    "code": 503, "message": "The Keystone service is temporarily unavailable."}}


def _timed_get(client, token: str) -> tuple[int, float, str]:
    started = time.monotonic()
    response = client.get("/v3/messages", headers={"X-Auth-Token": token, **V})
    took = time.monotonic() - started
    if response.status_code == 503:
        assert response.json() == UNAVAILABLE
    return response.status_code, took, response.text


def test_keystone_stopped_gives_503_at_once(ks_client, cloud, alpha_message):
    token = cloud.token("member", "alpha")
    assert _timed_get(ks_client, token)[0] == 200
    cloud.keystone.stop()
    try:
        status, took, body = _timed_get(ks_client, token)
        assert status == 503 and took < BOUND and alpha_message not in body
    finally:
        cloud.keystone.start()
    assert _timed_get(ks_client, token)[0] == 200


def test_keystone_hung_gives_503_within_the_timeout(ks_client, cloud, alpha_message):
    token = cloud.token("member", "alpha")
    assert _timed_get(ks_client, token)[0] == 200
    assert cloud.keystone.process is not None
    group = cloud.keystone.process.pid
    os.killpg(group, signal.SIGSTOP)  # accepts connections (the kernel does), never answers
    try:
        status, took, body = _timed_get(ks_client, token)
        assert status == 503 and took < BOUND and alpha_message not in body
    finally:
        os.killpg(group, signal.SIGCONT)
    assert _timed_get(ks_client, token)[0] == 200
