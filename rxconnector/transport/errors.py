"""The one place where aiohttp client exceptions become rxconnector errors.

Callers wrap every aiohttp client call (HTTP requests, WebSocket connects and reads) in
:func:`translate_aiohttp_errors`, so nothing above the transport layer ever sees an
aiohttp type, and ``except rxconnector.TransportError`` catches every network failure.
The original exception stays reachable as ``__cause__``.

Mapping (most specific first)::

    any RxConnectorError                     re-raised untouched (already translated)
    TimeoutError, ServerTimeoutError         RequestTimeoutError
    ClientConnectionError (connector errors,
      ServerDisconnectedError, ClientOSError,
      connection resets)                     ConnectError
    any other aiohttp.ClientError            TransportError

Messages never carry a query string: a signed request's URL holds its signature, and
an error message is the kind of thing that ends up in a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from rxconnector.errors import (
    ConnectError,
    RequestTimeoutError,
    RxConnectorError,
    TransportError,
)

__all__ = ["failure_kind", "may_have_reached_server", "translate_aiohttp_errors"]

# "?..." up to the next whitespace or quote: the query part of any URL in a message.
_QUERY = re.compile(r"\?[^\s'\"]*")


def _describe(exc: BaseException) -> str:
    text = _QUERY.sub("?…", str(exc))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


@contextmanager
def translate_aiohttp_errors(what: str) -> Iterator[None]:
    """Re-raise aiohttp/asyncio failures inside the block as rxconnector errors.

    ``what`` names the operation for the message (e.g. ``"GET https://host/api/v3/time"``;
    pass it without the query string). Works around ``await`` expressions too::

        with translate_aiohttp_errors(f"GET {url}"):
            async with session.get(url) as response:
                body = await response.read()

    ``asyncio.CancelledError`` is a ``BaseException`` and passes through untouched, so
    disposal is never mistaken for a failure.
    """
    try:
        yield
    except RxConnectorError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise RequestTimeoutError(f"{what}: no answer in time ({_describe(exc)})") from exc
    except aiohttp.ClientConnectionError as exc:
        kind = failure_kind(exc)
        error = ConnectError(f"{what}: connection failed: {kind} ({_describe(exc)})")
        error.kind = kind
        raise error from exc
    except aiohttp.ClientError as exc:
        raise TransportError(f"{what}: {_describe(exc)}") from exc


def failure_kind(exc: BaseException) -> str:
    """Why a connection could not be made, in words a user acts on.

    ``DNS lookup failed`` (a wrong or unresolvable host name), ``connection refused``
    (nothing listens on that port), ``TLS handshake failed`` (``https``/``wss`` to a
    server that does not speak TLS, or a certificate problem), else ``connection
    failed`` / ``connection lost``.
    """
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "connection lost"
    return "connection failed"


def may_have_reached_server(exc: BaseException) -> bool:
    """False only when ``exc`` proves the request never left this machine.

    A non-idempotent call (placing an order) that failed with a connect error can be
    reported as a plain failure; any other transport failure (timeout while waiting for
    the answer, connection reset mid-request) leaves its outcome unknown.
    """
    cause = exc.__cause__ if isinstance(exc, RxConnectorError) else exc
    return not isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
