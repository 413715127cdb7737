"""Binance Spot and USD-M futures market-stream protocols for the subscription hub.

Pure knowledge (see :class:`~rxconnector.exchanges.base.WsProtocol`), no I/O. Facts from
PROTOCOL.md §A1 (Spot, ``web-socket-streams.md``) and §B (USD-M); each constant says
where it comes from, or why we chose it where Binance documents nothing.

Both venues are used on their *combined* endpoint (``/stream``) with live
``SUBSCRIBE``/``UNSUBSCRIBE`` requests, so every data event arrives wrapped as
``{"stream": <name>, "data": <payload>}`` and the hub routes it with one dict lookup.
Acks are ``{"result": null, "id": n}``; errors ``{"code": c, "msg": "...", "id": n}``
(documented) or ``{"error": {"code": c, "msg": "..."}, "id": n}`` (seen in the wild;
accepted too). ``serverShutdown`` comes raw (``{"e": "serverShutdown"}``) or combined
(``{"stream": "!serverShutdown", "data": {...}}``): neither is data, both mean "rotate".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from rxconnector.errors import excerpt
from rxconnector.exchanges.base import Control, ControlKind

if TYPE_CHECKING:
    from rxconnector.exchanges.base import WsProtocol

__all__ = [
    "BinanceFuturesWsProtocol",
    "BinanceSpotWsProtocol",
    "FUTURES_LINK_STALE_AFTER",
    "FUTURES_MAX_MESSAGES_PER_SECOND",
    "FUTURES_MAX_STREAMS_PER_CONNECTION",
    "MAX_TOPICS_PER_REQUEST",
    "FUTURES_QUIET_MARKERS",
    "SERVER_SHUTDOWN_STREAM",
    "SPOT_LINK_STALE_AFTER",
    "SPOT_CONNECTION_ATTEMPT_WINDOW",
    "SPOT_MAX_CONNECTION_ATTEMPTS",
    "SPOT_MAX_MESSAGES_PER_SECOND",
    "SPOT_MAX_STREAMS_PER_CONNECTION",
    "STALE_AFTER",
]

#: §A1.1: "5 incoming messages per second per connection"; PING, PONG and JSON control
#: messages all count. Over the limit → disconnected (repeat offenders are banned).
SPOT_MAX_MESSAGES_PER_SECOND: Final = 5.0
#: §A1.1: "A single connection can listen to a maximum of 1024 streams".
SPOT_MAX_STREAMS_PER_CONNECTION: Final = 1024
#: §A1.1: 300 connection attempts every 5 minutes per IP.
SPOT_MAX_CONNECTION_ATTEMPTS: Final = 300
SPOT_CONNECTION_ATTEMPT_WINDOW: Final = 300.0

#: §B: USD-M allows 10 incoming messages per second per connection.
FUTURES_MAX_MESSAGES_PER_SECOND: Final = 10.0
#: §B and PEERS.md §3.4 (nautilus, ccxt): USD-M is used with at most 200 streams per
#: connection. The current futures page says 1024; we keep the stricter, widely used 200
#: (a few more connections cost nothing; an over-full one is refused).
FUTURES_MAX_STREAMS_PER_CONNECTION: Final = 200

#: NOT documented: Binance gives no cap on ``params`` per SUBSCRIBE. 200 stream names
#: (~4 KB of JSON) per request keeps every frame small while a full 1024-stream
#: connection still subscribes in 6 requests (5 at once, the 6th one pacing window later).
MAX_TOPICS_PER_REQUEST: Final = 200

#: Not documented. The slowest streams we subscribe push at least every 2 s (klines,
#: §A1.3), but a trade stream of an illiquid symbol can be silent for minutes: a
#: connection carrying only such streams is judged on all of them together, and 60 s of
#: silence on a whole connection is a stall in practice. Raise ``connection.stale_after``
#: for connections that carry only rarely traded symbols.
STALE_AFTER: Final = 60.0

#: §A1.1: the Spot server pings every 20 s; three pings missed and the link is gone.
SPOT_LINK_STALE_AFTER: Final = 60.0
#: §B: the USD-M server pings every 3 minutes: two pings missed plus a margin. Frames
#: of any kind count, so a busy connection never gets near it.
FUTURES_LINK_STALE_AFTER: Final = 400.0
#: §B "Liquidation Order Streams": nothing is sent while nothing is liquidated, which
#: can last many minutes on a calm market. A connection carrying only these streams is
#: judged on its pings (``link_stale_after``), not on data silence.
FUTURES_QUIET_MARKERS: Final = ("forceOrder",)

#: The combined-stream name of the shutdown notice (§A1.1, examples.json
#: ``binance.spot.ws.serverShutdown.combined``).
SERVER_SHUTDOWN_STREAM: Final = "!serverShutdown"

_SHUTDOWN_EVENT: Final = "serverShutdown"
#: USD-M streams served by ``/public`` (§B); everything else is on ``/market``.
_FUTURES_PUBLIC_MARKERS: Final = ("@depth", "@bookTicker", "@rpiDepth")

#: How a combined-stream data frame starts (:meth:`_BinanceWsProtocol.data_frame_head`).
_STREAM_PREFIX: Final = b'{"stream":"'


def _request(method: str, topics: Sequence[str], request_id: int) -> str:
    if not topics:
        raise ValueError(f"a Binance {method} request needs at least one stream")
    return orjson.dumps({"method": method, "params": list(topics), "id": request_id}).decode()


def _excerpt(message: Any) -> str:
    return excerpt(message)  # bounded and non-recursive: any nesting depth is safe


def _text(value: Any) -> str:
    """A message field as text: a string as is, anything else as a bounded excerpt."""
    return value if isinstance(value, str) else excerpt(value)


class _BinanceWsProtocol:
    """What Spot and USD-M share: request frames, routing and control classification."""

    name: str
    max_streams_per_connection: int
    max_messages_per_second: float
    max_topics_per_request: int = MAX_TOPICS_PER_REQUEST
    max_connection_attempts: int = SPOT_MAX_CONNECTION_ATTEMPTS
    connection_attempt_window: float = SPOT_CONNECTION_ATTEMPT_WINDOW
    stale_after: float = STALE_AFTER
    link_stale_after: float = SPOT_LINK_STALE_AFTER
    #: Substrings of stream names that may stay silent for minutes (none on Spot).
    quiet_markers: tuple[str, ...] = ()
    #: Binance pings us (protocol ping frames); we only answer. No application ping.
    client_ping_interval: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def subscribe_message(self, topics: Sequence[str], request_id: int) -> str:
        """``{"method":"SUBSCRIBE","params":[...],"id":n}`` (§A1.2)."""
        return _request("SUBSCRIBE", topics, request_id)

    def unsubscribe_message(self, topics: Sequence[str], request_id: int) -> str:
        """``{"method":"UNSUBSCRIBE","params":[...],"id":n}`` (§A1.2)."""
        return _request("UNSUBSCRIBE", topics, request_id)

    def ping_message(self) -> str | None:
        """``None``: Binance uses protocol-level pings, which we answer with pongs."""
        return None

    def quiet_topic(self, topic: str) -> bool:
        """Whether ``topic`` may stay silent for minutes (USD-M liquidation streams)."""
        return any(marker in topic for marker in self.quiet_markers)

    def data_frame_head(self, topic: str) -> bytes:
        """The exact bytes every data frame of ``topic`` starts with:
        ``{"stream":"<topic>"`` (how Binance writes combined-stream frames). The hub finds
        a raw topic's frames by these bytes, without decoding them; a frame written
        otherwise (spaces, another key order) is decoded and routed as usual."""
        return _STREAM_PREFIX + topic.encode() + b'"'

    def route(self, message: Any) -> tuple[str, Any] | None:
        """``(stream, data)`` for a combined-stream event; ``None`` for anything else.

        The combined ``!serverShutdown`` notice has the same shape as data and is
        refused here, so it reaches :meth:`control`.
        """
        try:
            stream = message.get("stream")
        except AttributeError:  # a JSON array or scalar: never data
            return None
        if stream is None or stream == SERVER_SHUTDOWN_STREAM:
            return None
        try:
            return stream, message["data"]
        except KeyError:
            return None

    def control(self, message: Any) -> Control:
        """ACK / ERROR / SHUTDOWN / UNKNOWN for a message :meth:`route` refused."""
        if not isinstance(message, dict):
            return Control(ControlKind.UNKNOWN, message=_excerpt(message))
        request_id = message.get("id")
        if "result" in message and request_id is not None:
            return Control(ControlKind.ACK, request_id=request_id, result=message["result"])
        error = message.get("error")
        if isinstance(error, dict) and "code" in error:
            return Control(
                ControlKind.ERROR,
                request_id=request_id,
                code=error.get("code"),
                message=_text(error.get("msg") or ""),
            )
        if "code" in message and "msg" in message:
            return Control(
                ControlKind.ERROR,
                request_id=request_id,
                code=message.get("code"),
                message=_text(message.get("msg") or ""),
            )
        if message.get("e") == _SHUTDOWN_EVENT or message.get("stream") == SERVER_SHUTDOWN_STREAM:
            return Control(ControlKind.SHUTDOWN, message="serverShutdown")
        return Control(ControlKind.UNKNOWN, request_id=request_id, message=_excerpt(message))


class BinanceSpotWsProtocol(_BinanceWsProtocol):
    """Binance Spot market streams on ``{base}/stream`` (§A1).

    ::

        proto = BinanceSpotWsProtocol()
        proto.connection_url("wss://stream.binance.com:9443", "")
        # 'wss://stream.binance.com:9443/stream'
    """

    name = "binance"
    max_streams_per_connection = SPOT_MAX_STREAMS_PER_CONNECTION
    max_messages_per_second = SPOT_MAX_MESSAGES_PER_SECOND

    def connection_url(self, base_url: str, endpoint: str) -> str:
        """``{base_url}/stream``; Spot has one endpoint."""
        if endpoint:
            raise ValueError(f"Binance Spot streams have one endpoint, not {endpoint!r}")
        return f"{base_url.rstrip('/')}/stream"

    def endpoint_for(self, topic: str) -> str:
        """Always ``""``."""
        return ""


class BinanceFuturesWsProtocol(_BinanceWsProtocol):
    """Binance USD-M futures market streams, split over routed endpoints (§B).

    Since 2026-04-23 a connection must name its route: ``/public`` serves depth and
    book tickers, ``/market`` everything else; a stream on the wrong route silently
    pushes nothing, so the hub keeps separate connections per endpoint::

        proto = BinanceFuturesWsProtocol()
        proto.endpoint_for("btcusdt@depth@100ms")  # 'public'
        proto.connection_url("wss://fstream.binance.com", "market")
        # 'wss://fstream.binance.com/market/stream'
    """

    name = "binance_futures"
    max_streams_per_connection = FUTURES_MAX_STREAMS_PER_CONNECTION
    max_messages_per_second = FUTURES_MAX_MESSAGES_PER_SECOND
    link_stale_after = FUTURES_LINK_STALE_AFTER
    quiet_markers = FUTURES_QUIET_MARKERS
    # §B: server ping every 3 minutes, pong due within 10 minutes: nothing to send.
    # Connection attempts: §B documents none for USD-M; we apply Spot's 300 / 5 min.

    def connection_url(self, base_url: str, endpoint: str) -> str:
        """``{base_url}/{endpoint}/stream`` with ``endpoint`` ``public`` or ``market``."""
        if endpoint not in ("public", "market"):
            raise ValueError(f"USD-M endpoint must be 'public' or 'market', not {endpoint!r}")
        return f"{base_url.rstrip('/')}/{endpoint}/stream"

    def endpoint_for(self, topic: str) -> str:
        """``public`` for depth / bookTicker / rpiDepth streams, else ``market``."""
        if topic == "!bookTicker":
            return "public"
        for marker in _FUTURES_PUBLIC_MARKERS:
            if marker in topic:
                return "public"
        return "market"


if TYPE_CHECKING:
    _spot: WsProtocol = BinanceSpotWsProtocol()
    _futures: WsProtocol = BinanceFuturesWsProtocol()
