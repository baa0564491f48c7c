"""Users subscribe: a webhook on their project's queue receives their messages.

A thin, validating layer over Zaqar's subscriptions. Zaqar does the delivery
(one POST per message, body ``{"body": <envelope>, "ttl", "queue_name",
"Message_Type": "Notification"}``) only when its ``[storage]
message_pipeline`` includes ``zaqar.notification.notifier``; without that
line subscriptions are stored and never delivered (docs/zaqar.md).
Subscriptions are per project: Zaqar scopes them by X-Project-ID (with
Keystone, by the caller's token), so a user can only subscribe to their own
project's queue.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from usermessages.errors import UserMessagesError
from usermessages.zaqar.client import MIN_TTL, ZaqarClient
from usermessages.zaqar.layout import Layout

DEFAULT_TTL = 30 * 86400  # 30 days; Zaqar drops the subscription after it
MAX_PROJECT = 255


class InvalidSubscription(UserMessagesError):
    """A subscription request we refuse before asking Zaqar (the text says why)."""


def _check_project(project: str) -> None:
    if not project or len(project) > MAX_PROJECT:
        raise InvalidSubscription("a project id of 1 to 255 characters is required")


def _check_subscriber(subscriber: str) -> None:
    parts = urlsplit(subscriber)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSubscription(
            f"the subscriber must be an http:// or https:// webhook URL, not {subscriber!r}")


def create(client: ZaqarClient, layout: Layout, project: str, subscriber: str,
           ttl: int = DEFAULT_TTL) -> str:
    """Subscribe ``subscriber`` to ``project``'s user messages; returns the subscription id.

    Subscribing the same URL again returns the same id (Zaqar's behaviour).
    """
    _check_project(project)
    _check_subscriber(subscriber)
    if ttl < MIN_TTL:
        raise InvalidSubscription(f"ttl must be at least {MIN_TTL} seconds")
    return client.subscribe(project, layout.queue, subscriber, ttl=ttl)


def list_(client: ZaqarClient, layout: Layout, project: str) -> list[dict[str, Any]]:
    _check_project(project)
    return [
        {"id": s["id"], "subscriber": s["subscriber"], "ttl": s["ttl"], "age": s.get("age", 0)}
        for s in client.subscriptions(project, layout.queue)
    ]


def delete(client: ZaqarClient, layout: Layout, project: str, subscription_id: str) -> None:
    """Delete a subscription of ``project`` (one of another project is not found)."""
    _check_project(project)
    if subscription_id not in {s["id"] for s in client.subscriptions(project, layout.queue)}:
        raise InvalidSubscription(
            f"subscription {subscription_id} not found in project {project}")
    client.unsubscribe(project, layout.queue, subscription_id)
