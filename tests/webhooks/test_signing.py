"""Our signatures against an independent Standard Webhooks implementation, over any input."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from usermessages.webhooks import signing


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2048), secret_bytes=st.binary(min_size=24, max_size=64),
       webhook_id=st.uuids(), message_id=st.uuids())
def test_the_reference_library_verifies_what_we_sign(body: bytes, secret_bytes: bytes,
                                                     webhook_id: object,
                                                     message_id: object) -> None:
    secret = "whsec_" + base64.b64encode(secret_bytes).decode()
    msg_id = signing.delivery_id(str(webhook_id), str(message_id))
    assert "." not in msg_id  # the signed content's delimiter
    now = int(time.time())
    sent = signing.headers(secret, msg_id, now, body)
    assert Webhook(secret).verify(body, sent, json_parse=False) is None  # verified: no raise
    # Another secret, another id or another timestamp does not verify.
    other = "whsec_" + base64.b64encode(bytes(reversed(secret_bytes)) + b"x").decode()
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(other).verify(body, sent)
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(secret).verify(body, {**sent, "webhook-id": msg_id + "x"})


def test_ids_are_stable_per_pair_and_secrets_fresh() -> None:
    assert signing.delivery_id("w", "m") == signing.delivery_id("w", "m")
    assert signing.delivery_id("w", "m") != signing.delivery_id("w", "n")
    assert signing.delivery_id("w", "m") != signing.delivery_id("v", "m")
    secrets = {signing.new_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(len(base64.b64decode(s.removeprefix("whsec_"))) == 24 for s in secrets)
