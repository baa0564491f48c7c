"""One webhook attempt over HTTP: a total deadline, a capped answer, the checked address.

httpx's ``timeout`` bounds each network operation, not the request: a receiver
that sends one byte every half second never trips it (encode/httpx#1450). Its
maintainers' answer is a deadline from the async library (encode/httpx#776), which
cancels the request wherever it is: connecting, the TLS handshake, sending,
waiting for the answer or reading it. So attempts run as coroutines on one event
loop in a thread of its own, and a caller (a deliverer's worker) blocks on its
attempt's result. The answer's body is read up to MAX_ANSWER bytes, then dropped
with its connection: we only need the status (h11 already caps the headers).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from usermessages.webhooks.targets import Target

MAX_ANSWER = 64 * 1024  # bytes of an answer's body read at most (one network read)

# The httpx error a deadline is reported as, by the phase it cut (httpcore's trace names).
PHASES: tuple[tuple[str, type[httpx.TimeoutException]], ...] = (
    ("connection.", httpx.ConnectTimeout),
    ("http11.send_", httpx.WriteTimeout),
    ("http11.receive_", httpx.ReadTimeout),
)


class Sender:
    """POSTs to checked targets, each attempt over by its deadline whatever the receiver does.

    Thread-safe: any number of threads may ``post`` at once (up to ``connections``
    connections are opened, then attempts wait for one, within their deadline).
    """

    def __init__(self, timeout: float, connections: int) -> None:
        self.timeout = timeout
        self.limits = httpx.Limits(max_connections=connections,
                                   max_keepalive_connections=connections)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    def post(self, target: Target, body: bytes, headers: dict[str, str],
             deadline: float) -> int:
        """POST ``body`` to the address the guard checked; the answer's status.

        ``deadline`` is a ``time.monotonic()`` instant: past it, the attempt is
        cancelled and raises httpx's ConnectTimeout, WriteTimeout or ReadTimeout
        (the phase it was in). Other failures raise httpx's errors as they are.
        """
        future = asyncio.run_coroutine_threadsafe(self._post(target, body, headers, deadline),
                                                  self._running_loop())
        return future.result()

    def close(self) -> None:
        """Close the connections and stop the loop (a later ``post`` starts them again)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_client(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever,
                                                name="webhook-http", daemon=True)
                self._thread.start()
            return self._loop

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, target: Target, body: bytes, headers: dict[str, str],
                    deadline: float) -> int:
        if self._client is None:
            # No proxies from the environment (the guard checked the address we connect
            # to), no redirects (the guard never saw their target).
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=self.limits,
                                             follow_redirects=False, trust_env=False)
        url, headers, extensions = _addressed(target, headers)
        phase = "connection.waiting"  # for a connection of the pool, before any trace

        async def trace(event: str, info: dict[str, Any]) -> None:
            nonlocal phase
            phase = event

        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                async with self._client.stream("POST", url, content=body, headers=headers,
                                               extensions={**extensions, "trace": trace}
                                               ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_ANSWER:
                            break
                    return response.status_code
        except TimeoutError as exc:
            error = next((kind for prefix, kind in PHASES if phase.startswith(prefix)),
                         httpx.ReadTimeout)
            raise error(f"no complete answer within {self.timeout:g} s ({phase})") from exc


def _addressed(target: Target, headers: dict[str, str]) -> tuple[str, dict[str, str],
                                                                 dict[str, Any]]:
    """The URL to the checked address, with the name in Host (and TLS's SNI and checks)."""
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if ":" not in target.host else f"[{target.host}]"
    url = urlunsplit((target.scheme, f"{address}:{target.port}", parts.path or "/",
                      parts.query, ""))
    headers = {**headers, "host": host if target.port == default_port
               else f"{host}:{target.port}"}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, headers, extensions
