"""Standard Webhooks (standardwebhooks.com) symmetric signatures: secrets, ids, headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # the spec's minimum: 192 bits


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def delivery_id(webhook_id: str, message_id: str) -> str:
    """Stable per (subscription, message): a receiver deduplicates retries and redeliveries.

    A UUID derived from both, so it never holds the '.' that delimits the signed content.
    """
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"{webhook_id}/{message_id}").hex


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
