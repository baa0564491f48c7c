"""User messages through python-cinderclient, as Horizon reaches Cinder.

The endpoint is the block-storage entry of the signed-in user's Keystone catalog and
the credential is the user's own token. The admin panel reads across projects, which
the service grants only to a system-scoped token: it rescopes the user's token to the
system through Keystone (the user needs a system role assignment) and calls the
project-less URL, asking for each message's project and node.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from cinderclient import api_versions
from cinderclient.v3 import client as cinder_client
from django.conf import settings
from keystoneauth1 import token_endpoint
from openstack_auth import utils as auth_utils
from openstack_dashboard.api import base

# Horizon's own order of block-storage service types (openstack_dashboard.api.cinder).
SERVICE_TYPES = ("block-storage", "block-store", "volumev3", "volume")
# 3.5: filters, sort, limit and marker on the message list.
VERSION = api_versions.APIVersion("3.5")
OWNER_FIELDS_HEADER = "X-Usermessages-Owner-Fields"
NEWEST_FIRST = "created_at:desc,id:desc"
OLDEST_FIRST = "created_at:asc,id:asc"


@dataclass
class Page:
    """One page of messages and whether there are pages on either side."""

    messages: list[Any]
    has_more: bool
    has_prev: bool


def endpoint(request: Any) -> str:
    """The block-storage URL of the user's catalog (…/v3/<project id>)."""
    last: Exception | None = None
    for service_type in SERVICE_TYPES:
        try:
            return base.url_for(request, service_type)
        except Exception as exc:  # ServiceCatalogException for a missing type
            last = exc
    raise last  # type: ignore[misc]


# A user's token is rescoped once per process, not on every page.
@functools.lru_cache(maxsize=256)
def _system_token(auth_url: str, token: str) -> str:
    plugin = auth_utils.get_token_auth_plugin(auth_url=auth_url, token=token,
                                              system_scope="all")
    return plugin.get_access(auth_utils.get_session()).auth_token


def _client(request: Any, *, all_projects: bool) -> Any:
    url = endpoint(request).rstrip("/")
    token = request.user.token.id
    headers = {}
    if all_projects:
        auth_url = getattr(request.user, "endpoint", None) or settings.OPENSTACK_KEYSTONE_URL
        token = _system_token(auth_url, token)
        headers[OWNER_FIELDS_HEADER] = "true"
        project = request.user.project_id
        if project and url.endswith("/" + project):
            url = url[: -len(project) - 1]
    # The user's token at the catalog's URL, as Horizon's own cinderclient is set up.
    return cinder_client.Client(
        api_version=VERSION, session=auth_utils.get_session(),
        auth=token_endpoint.Token(url, token), os_endpoint=url,
        additional_headers=headers, service_type="block-storage")


def message_list_paged(request: Any, *, search_opts: dict[str, str], marker: str | None,
                       sort_dir: str, page_size: int, all_projects: bool = False) -> Page:
    """A page of messages after ``marker`` (newest first), or before it when going back."""
    client = _client(request, all_projects=all_projects)
    sort = OLDEST_FIRST if sort_dir == "asc" else NEWEST_FIRST
    # One more than a page tells whether another page follows (Horizon's way).
    items = list(client.messages.list(search_opts=search_opts or None, marker=marker,
                                      limit=page_size + 1, sort=sort))
    has_more = has_prev = False
    if len(items) > page_size:
        has_more = True
        items.pop()
        has_prev = marker is not None
    elif sort_dir == "asc" and marker is not None:
        has_more = True  # came back from a later page
    elif marker is not None:
        has_prev = True
    if sort_dir == "asc":
        items.reverse()
    return Page(items, has_more, has_prev)


def message_list(request: Any, search_opts: dict[str, str], *,
                 all_projects: bool = False) -> list[Any]:
    """Every message matching the filters (cinderclient follows the next links)."""
    return list(_client(request, all_projects=all_projects).messages.list(
        search_opts=search_opts, sort=NEWEST_FIRST))


def message_get(request: Any, message_id: str, *, all_projects: bool = False) -> Any:
    return _client(request, all_projects=all_projects).messages.get(message_id)


def message_delete(request: Any, message_id: str, *, all_projects: bool = False) -> None:
    _client(request, all_projects=all_projects).messages.delete(message_id)
