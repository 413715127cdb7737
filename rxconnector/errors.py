"""The one exception tree of rxconnector.

Every error the library raises or emits on an Observable's ``on_error`` (or on
``Connector.errors``) is a :class:`RxConnectorError`. Leaves also inherit the builtin
they resemble, so ``except TimeoutError`` or ``except ValueError`` keep working without
importing anything from here::

    RxConnectorError
    ├── ConfigError (ValueError)               a Config field broke a rule
    ├── TransportError                         the network, not the exchange, failed
    │   ├── ConnectError (ConnectionError)     could not connect / connection reset
    │   ├── RequestTimeoutError (TimeoutError) no answer within the timeout
    │   ├── WebSocketClosedError (ConnectionError) the server closed the socket
    │   └── StaleConnectionError (TimeoutError)  no data on a subscribed socket
    ├── ExchangeError                          the exchange answered with an error
    │   ├── RateLimitError                     429 / 418 / Bybit 10006 / 403: wait retry_after
    │   ├── OrderStatusUnknownError            a non-idempotent call may or may not have happened
    │   └── OrderRejectedError (ValueError)    an order failed a symbol filter before sending
    ├── CircuitOpenError                       the breaker refuses calls for retry_after seconds
    ├── ConnectorStoppedError                  the connector stopped while the call was in flight
    ├── ClockSyncError                         local clock is further off than allowed
    ├── SubscriptionError                      the exchange rejected a subscription
    ├── ParseError (ValueError)                a frame or body could not be understood
    ├── FeedGapError                           a book resync or a trade gap (reported, not fatal)
    ├── NotSupportedError (NotImplementedError) this venue does not have that feed/call
    ├── NotScriptedError (LookupError)         a FakeConnector test did not set up a feed/answer
    └── RecordingError (ValueError)            a recording is unreadable or lacks what replay needs

aiohttp exceptions are translated in exactly one place (``rxconnector.transport.errors``)
with ``raise ... from`` so the original stays reachable as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

__all__ = [
    "CircuitOpenError",
    "ClockSyncError",
    "ConfigError",
    "ConnectError",
    "ConnectorStoppedError",
    "ExchangeError",
    "FeedGapError",
    "NotScriptedError",
    "NotSupportedError",
    "OrderRejectedError",
    "OrderStatusUnknownError",
    "ParseError",
    "RateLimitError",
    "RecordingError",
    "RequestTimeoutError",
    "RxConnectorError",
    "StaleConnectionError",
    "SubscriptionError",
    "TransportError",
    "WebSocketClosedError",
    "excerpt",
]

#: How many characters of a payload an error message may quote.
MAX_EXCERPT: Final = 200
#: Integers with more bits than this are named, not printed (``str`` of a 5,000-digit
#: int raises ``ValueError`` and costs quadratic time).
_MAX_INT_BITS: Final = 256


class _Text(str):
    """Literal punctuation inside :func:`excerpt` (not a JSON string to quote)."""

    __slots__ = ()


_END: Final = object()


def _scalar(value: object, limit: int) -> str:
    if isinstance(value, str):
        return repr(value[:limit])
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            return f"<int of {value.bit_length()} bits>"
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value[:limit]))
    try:
        return repr(value)[:limit]
    except Exception:  # a broken or deeply recursive __repr__: name the type only
        return f"<{type(value).__name__}>"


def _mapping_parts(value: dict[object, object]) -> Iterator[object]:
    yield _Text("{")
    first = True
    for key, item in value.items():
        if not first:
            yield _Text(", ")
        first = False
        yield key
        yield _Text(": ")
        yield item
    yield _Text("}")


def _sequence_parts(value: list[object] | tuple[object, ...]) -> Iterator[object]:
    yield _Text("[")
    first = True
    for item in value:
        if not first:
            yield _Text(", ")
        first = False
        yield item
    yield _Text("]")


def excerpt(value: object, limit: int = MAX_EXCERPT) -> str:
    """At most ``limit`` characters describing ``value`` (a raw frame or decoded JSON).

    Why not ``repr(value)[:limit]``: a hostile frame of 1,000 nested arrays makes
    ``repr`` raise ``RecursionError`` (so building the error would kill the feed it
    reports on), and a 10 MB payload would be rendered whole before being cut. This
    walks containers with an explicit stack of iterators (no recursion, any depth) and
    stops as soon as ``limit`` characters are written. ``str``/``bytes`` (raw frames)
    are cut, not quoted.
    """
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, bytes | bytearray | memoryview):
        # 4 bytes per character at most: enough bytes for ``limit`` characters.
        return bytes(value[: limit * 4]).decode("utf-8", "replace")[:limit]
    out: list[str] = []
    size = 0
    stack: list[Iterator[object]] = [iter((value,))]
    while stack and size < limit:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        if type(item) is _Text:
            text: str = item
        elif isinstance(item, dict):
            stack.append(_mapping_parts(item))
            continue
        elif isinstance(item, list | tuple):
            stack.append(_sequence_parts(item))
            continue
        else:
            text = _scalar(item, limit)
        out.append(text)
        size += len(text)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RxConnectorError(Exception):
    """Root of every rxconnector error; catch this to catch them all."""


class _NoValue:
    """Marks a ConfigError about a setting that is missing, not one with a bad value."""

    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE = _NoValue()


class ConfigError(RxConnectorError, ValueError):
    """A configuration value broke a rule; ``field`` names it, ``rule`` says what was expected.

    ``value`` is the offending value (``None`` when the rule is about a missing setting);
    the message quotes it only when one was given, so a missing setting does not read
    ``..., got None``.
    """

    def __init__(self, field: str, rule: str, value: object = _NO_VALUE) -> None:
        self.field = field
        self.rule = rule
        self.value = None if value is _NO_VALUE else value
        message = f"{field} {rule}" if value is _NO_VALUE else f"{field} {rule}, got {value!r}"
        super().__init__(message)


class TransportError(RxConnectorError):
    """The network failed before the exchange could answer (retrying may help)."""

    retryable = True


class ConnectError(TransportError, ConnectionError):
    """A connection could not be opened or was reset.

    ``kind`` says why when it is known: ``DNS lookup failed``, ``connection refused``,
    ``TLS handshake failed``, ``connection lost`` (empty when not classified).
    """

    kind: str = ""


class RequestTimeoutError(TransportError, TimeoutError):
    """No answer arrived within the configured timeout."""


class WebSocketClosedError(TransportError, ConnectionError):
    """The server closed a WebSocket; ``close_code`` is the WebSocket close code if known."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        self.close_code = close_code
        super().__init__(message)


class ExchangeError(RxConnectorError):
    """The exchange answered with an error.

    ``status`` is the HTTP status (0 for WebSocket answers), ``code`` the exchange's own
    error code if it sent one, ``retryable`` whether trying again later can succeed
    (5xx, overload) as opposed to a request that will always fail (unknown symbol).
    """

    def __init__(
        self,
        message: str,
        *,
        exchange: str = "",
        status: int = 0,
        code: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.message = message
        self.exchange = exchange
        self.status = status
        self.code = code
        self.retryable = retryable
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [p for p in (self.exchange, f"HTTP {self.status}" if self.status else "") if p]
        if self.code is not None:
            parts.append(f"code {self.code}")
        prefix = f"[{', '.join(parts)}] " if parts else ""
        return f"{prefix}{self.message}"


class RateLimitError(ExchangeError):
    """A rate limit was hit or an IP ban is in force; nothing is sent for ``retry_after`` s."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        exchange: str = "",
        status: int = 429,
        code: int | None = None,
        banned: bool = False,
    ) -> None:
        self.retry_after = retry_after
        self.banned = banned
        super().__init__(message, exchange=exchange, status=status, code=code, retryable=True)


class OrderStatusUnknownError(ExchangeError):
    """A non-idempotent call (placing an order) timed out or met a 5xx: it may have happened.

    It is never retried blindly. Look the order up with ``get_order(symbol,
    client_order_id=err.client_order_id)`` to learn what the exchange did.
    """

    def __init__(
        self, message: str, *, client_order_id: str, exchange: str = "", status: int = 0
    ) -> None:
        self.client_order_id = client_order_id
        super().__init__(
            f"{message}; the order may or may not exist: reconcile with "
            f"get_order(client_order_id={client_order_id!r})",
            exchange=exchange,
            status=status,
            retryable=False,
        )


class OrderRejectedError(ExchangeError, ValueError):
    """An order broke one of the symbol's filters and was not sent.

    ``filter`` names the filter (``PRICE_FILTER``, ``LOT_SIZE``, ``MIN_NOTIONAL`` ...),
    ``nearest_valid`` is the closest value that would pass, when there is one.
    """

    def __init__(
        self, message: str, *, filter: str, nearest_valid: object = None, exchange: str = ""
    ) -> None:
        self.filter = filter
        self.nearest_valid = nearest_valid
        super().__init__(message, exchange=exchange, retryable=False)


class CircuitOpenError(RxConnectorError):
    """The circuit breaker ``breaker`` is open: calls fail fast for ``retry_after`` seconds."""

    def __init__(self, breaker: str, retry_after: float) -> None:
        self.breaker = breaker
        self.retry_after = retry_after
        super().__init__(f"circuit {breaker!r} is open; retry after {retry_after:.3f}s")


class ConnectorStoppedError(RxConnectorError):
    """The connector was stopped while this call was in flight (or before it started).

    Not a failure of the exchange: the circuit breaker does not count it, and retrying
    on a stopped connector cannot help. ``what`` names the call.
    """

    def __init__(self, what: str = "") -> None:
        self.what = what
        super().__init__(f"{what}: connector stopped" if what else "connector stopped")


class ClockSyncError(RxConnectorError):
    """The local clock is ``offset_ms`` off the exchange's, more than ``limit_ms`` allows.

    Signed requests keep working (they use the corrected time); this is a warning that
    the machine's clock needs attention.
    """

    def __init__(self, offset_ms: float, limit_ms: float) -> None:
        self.offset_ms = offset_ms
        self.limit_ms = limit_ms
        super().__init__(
            f"local clock is off by {offset_ms:+.1f} ms, more than the {limit_ms:.0f} ms allowed"
        )


class SubscriptionError(RxConnectorError):
    """The exchange rejected a subscription to ``topic`` (for instance an unknown symbol)."""

    def __init__(self, topic: str, message: str, code: int | None = None) -> None:
        self.topic = topic
        self.code = code
        super().__init__(f"subscription to {topic!r} rejected: {message}")


class ParseError(RxConnectorError, ValueError):
    """A frame or response body could not be understood; ``excerpt`` holds at most 200 chars.

    ``raw`` may be the raw frame or the decoded payload, of any size and nesting depth:
    the excerpt is built by :func:`excerpt`, bounded and without recursion, so reporting
    a hostile payload can never fail itself.
    """

    MAX_EXCERPT = MAX_EXCERPT

    def __init__(self, message: str, raw: str | bytes | object = "") -> None:
        self.excerpt = excerpt(raw, self.MAX_EXCERPT)
        super().__init__(f"{message}: {self.excerpt!r}" if self.excerpt else message)


class FeedGapError(RxConnectorError):
    """A feed noticed missing data: a book resync, or a trade id range that was lost.

    Reported on ``Connector.errors``; the feed itself keeps running. For trades
    ``first_missing``/``last_missing`` give the exact id range that could not be recovered.
    """

    def __init__(
        self,
        topic: str,
        message: str,
        *,
        first_missing: int | None = None,
        last_missing: int | None = None,
    ) -> None:
        self.topic = topic
        self.first_missing = first_missing
        self.last_missing = last_missing
        super().__init__(f"{topic}: {message}")


class NotSupportedError(RxConnectorError, NotImplementedError):
    """The venue ``venue`` does not offer ``feature``; ``instead`` says what to use
    (``"agg_trades"``, another venue), when there is something."""

    def __init__(self, venue: str, feature: str, instead: str = "") -> None:
        self.venue = venue
        self.feature = feature
        self.instead = instead
        message = f"{venue} does not support {feature}"
        super().__init__(f"{message}; use {instead}" if instead else message)


class StaleConnectionError(TransportError, TimeoutError):
    """A WebSocket delivered no data for ``stale_after`` seconds while topics were
    subscribed: alive at the socket level perhaps, but useless. It is reconnected."""

    def __init__(self, message: str, stale_after: float) -> None:
        self.stale_after = stale_after
        super().__init__(message)


class NotScriptedError(RxConnectorError, LookupError):
    """A ``FakeConnector`` was asked for a feed or a REST answer the test did not set up.

    ``method`` is the connector method, ``hint`` the call that would set it up.
    """

    def __init__(self, method: str, message: str, hint: str) -> None:
        self.method = method
        self.hint = hint
        super().__init__(f"{message}; set it up with {hint}")


class RecordingError(RxConnectorError, ValueError):
    """A recording file cannot be replayed: ``path`` is not a recording, has an unknown
    format version, is truncated or corrupt at ``line`` (1-based; 0 when unknown)."""

    def __init__(self, path: str, message: str, line: int = 0) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
