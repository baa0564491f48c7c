"""tempest.lib without Keystone: a fixed Cinder noauth token and base URL."""

from __future__ import annotations

from tempest.lib import auth


class NoAuthProvider(auth.AuthProvider):
    """Answers tempest's auth questions with a ``user:project`` token and a fixed endpoint."""

    def __init__(self, base_url: str, token: str) -> None:
        self._base, self._token = base_url.rstrip("/"), token
        super().__init__(auth.Credentials())

    @classmethod
    def check_credentials(cls, credentials):  # noqa: D102
        return True

    def _get_auth(self):
        return self._token, {}

    def _fill_credentials(self, auth_data_body):
        pass

    def is_expired(self, auth_data):
        return False

    def base_url(self, filters, auth_data=None):
        return self._base

    def _decorate_request(self, filters, method, url, headers=None, body=None, auth_data=None):
        headers = dict(headers or {})
        headers["X-Auth-Token"] = self._token
        return f"{self._base}/{url.lstrip('/')}" if url else self._base, headers, body
