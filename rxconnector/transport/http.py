"""HTTP transport: one request in, one fully read :class:`HttpResponse` out.

This is the only module that drives aiohttp's HTTP client. It does no retries, no
rate limiting and no interpretation of the body: those are policies, and policies live
in :mod:`rxconnector.rest`. Keeping this layer dumb makes it trivial to replace in tests
(anything with the :class:`Transport` shape will do).

The query string is sent exactly as given (``encoded=True``): a signed request is
signed over its exact bytes, so nothing may re-quote it on the way out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import attrs
import yarl

from rxconnector.errors import TransportError
from rxconnector.transport.errors import translate_aiohttp_errors

__all__ = ["HttpResponse", "HttpTransport", "Transport"]

_FORM = "application/x-www-form-urlencoded"


@attrs.frozen
class HttpResponse:
    """A complete HTTP answer.

    ``headers`` has lower-case names (HTTP header names are case-insensitive);
    ``elapsed`` is seconds from sending to having read the body; ``received_at`` is the
    local wall clock (epoch ms) when the body was read, used as the models' receive time.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float
    received_at: float

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None``."""
        return self.headers.get(name.lower())


class Transport(Protocol):
    """What the REST pipeline needs from a transport (``HttpTransport`` or a test fake)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: str | None = None,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse: ...


class HttpTransport:
    """Sends requests through an aiohttp session someone else owns.

    The session belongs to the connector (it is created on the running loop and closed
    on stop); the transport never closes it. ``timeout`` bounds the whole exchange,
    connect to last body byte, in seconds (``Config.connection.rest_timeout``).
    """

    def __init__(self, session: aiohttp.ClientSession, *, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout!r}")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: str | None = None,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole answer, whatever its status.

        ``params`` is an already-encoded query string, sent byte for byte. A ``body``
        without a ``Content-Type`` header is sent as a url-encoded form (Binance's
        format for POST/DELETE parameters).

        Raises :class:`~rxconnector.errors.RequestTimeoutError`,
        :class:`~rxconnector.errors.ConnectError` or
        :class:`~rxconnector.errors.TransportError`; never an aiohttp exception.
        """
        what = f"{method} {url}"
        if self._session.closed:
            raise TransportError(f"{what}: the HTTP session is closed (connector stopped?)")
        target = yarl.URL(f"{url}?{params}" if params else url, encoded=True)
        send_headers = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in send_headers):
            send_headers["Content-Type"] = _FORM
        loop = asyncio.get_running_loop()
        started = loop.time()
        with translate_aiohttp_errors(what):
            async with self._session.request(
                method,
                target,
                data=body,
                headers=send_headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                status = response.status
                received = {k.lower(): v for k, v in response.headers.items()}
        return HttpResponse(
            status=status,
            headers=received,
            body=payload,
            elapsed=loop.time() - started,
            received_at=time.time() * 1000.0,
        )
