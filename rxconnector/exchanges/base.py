"""The seam between generic machinery and venue knowledge.

Everything venue-specific lives under ``rxconnector/exchanges/<name>/`` and is pure
(no I/O): URLs, limits, topic names, control messages, routing, parsers, signing and
order-book rules. The hub, the connector and the operators only talk to the protocols
below, so adding a venue never touches them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

__all__ = [
    "Control",
    "ControlKind",
    "FeedCatalog",
    "FeedSpec",
    "Parser",
    "WsProtocol",
]

#: Turns one decoded data payload plus the local receive time (ms) into a model.
Parser = Callable[[Any, float], Any]


class ControlKind(enum.Enum):
    """What a non-data WebSocket message means."""

    ACK = "ack"  # a request succeeded (request_id set)
    ERROR = "error"  # a request failed (request_id may be None), message/code set
    SHUTDOWN = "shutdown"  # the server will close this connection soon: rotate
    PONG = "pong"  # answer to an application-level ping
    IGNORE = "ignore"  # harmless (welcome, LIST_SUBSCRIPTIONS result, ...)
    UNKNOWN = "unknown"  # not understood: report on Connector.errors


@attrs.frozen
class Control:
    """A classified non-data message."""

    kind: ControlKind
    request_id: int | str | None = None
    message: str = ""
    code: int | None = None
    result: Any = None


@attrs.frozen
class FeedSpec:
    """How a public feed maps to the wire: the topic to subscribe and how to parse it.

    ``many`` is True when one payload holds several models (Bybit ``publicTrade``): the
    parser then returns a sequence and the connector flattens it.
    ``sequence`` extracts a per-topic monotonic key (trade id, update id, event time)
    used to drop duplicates while two connections overlap during a make-before-break
    rotation; ``None`` means "cannot tell", and then nothing is dropped.
    ``parse_frame`` (optional) parses a whole raw frame of the topic in one pass (typed
    decoding, where it is faster than ``orjson`` + ``parse``): a hub that knows it may
    hand the topic's frames over undecoded; ``sequence`` then accepts raw frames too.
    """

    topic: str
    parse: Parser
    many: bool = False
    sequence: Callable[[Any], int | None] | None = None
    parse_frame: Parser | None = None


class FeedCatalog(Protocol):
    """A venue's public feeds: one method per connector feed, each returning the
    :class:`FeedSpec` (wire topic + parser + sequence key) that serves it.

    Every venue offers every method; a feed the venue lacks raises
    :class:`~rxconnector.errors.NotSupportedError` (``supported_feeds`` lists what it
    has, feed name -> wire topic pattern). Arguments are validated here, once, with
    messages that list what is valid. A venue may accept more (Binance's ``speed_ms``);
    the connector passes only what is declared below.
    """

    #: Feed name -> wire topic pattern, for what this venue (and category) has.
    supported_feeds: Mapping[str, str]

    def ticker(self, symbol: str) -> FeedSpec: ...
    def mini_ticker(self, symbol: str) -> FeedSpec: ...
    def book_ticker(self, symbol: str) -> FeedSpec: ...
    def trades(self, symbol: str) -> FeedSpec: ...
    def agg_trades(self, symbol: str) -> FeedSpec: ...
    def klines(self, symbol: str, interval: str) -> FeedSpec: ...
    def depth(self, symbol: str, levels: int = 20) -> FeedSpec: ...
    def diff_depth(self, symbol: str) -> FeedSpec: ...
    def avg_price(self, symbol: str) -> FeedSpec: ...
    def mark_price(self, symbol: str) -> FeedSpec: ...
    def liquidations(self, symbol: str) -> FeedSpec: ...

    def book_diffs(self, symbol: str, depth: int) -> FeedSpec:
        """The diff stream a local book of ``depth`` levels is maintained from: the
        plain diff-depth stream (Binance), or the smallest book topic holding ``depth``
        levels (Bybit ``orderbook.{1|50|200|1000}``)."""
        ...


class WsProtocol(Protocol):
    """A venue's public market-data WebSocket protocol, as pure functions and constants.

    Each constant cites the exchange document it comes from in the implementation.
    """

    name: str
    #: Hard cap of topics on one connection; the hub opens another connection beyond it.
    max_streams_per_connection: int
    #: Messages the client may send per second on one connection (pings/pongs included).
    max_messages_per_second: float
    #: Topics allowed in one SUBSCRIBE/UNSUBSCRIBE request.
    max_topics_per_request: int
    #: Connection attempts allowed per ``connection_attempt_window`` seconds (per IP).
    max_connection_attempts: int
    connection_attempt_window: float
    #: Seconds without any data frame after which a connection is considered stale.
    stale_after: float
    #: Seconds between application-level pings (``None``: the server pings, we pong).
    client_ping_interval: float | None
    #: Seconds without any frame at all (server pings, our pings' pongs included) after
    #: which a connection is dead whatever it carries: from the venue's ping cadence.
    link_stale_after: float

    def quiet_topic(self, topic: str) -> bool:
        """Whether ``topic`` may rightly stay silent for minutes (liquidations): a
        connection carrying only such topics is judged on ``link_stale_after`` alone."""
        ...

    def connection_url(self, base_url: str, endpoint: str) -> str:
        """URL of a combined-stream connection for ``endpoint`` (see :meth:`endpoint_for`)."""
        ...

    def endpoint_for(self, topic: str) -> str:
        """Which endpoint (connection group) serves ``topic``; ``""`` for single-endpoint venues.

        USD-M futures route depth/bookTicker to ``public`` and the rest to ``market``.
        """
        ...

    def subscribe_message(self, topics: Sequence[str], request_id: int) -> str:
        """The text frame that subscribes ``topics`` (at most ``max_topics_per_request``)."""
        ...

    def unsubscribe_message(self, topics: Sequence[str], request_id: int) -> str:
        """The text frame that unsubscribes ``topics``."""
        ...

    def ping_message(self) -> str | None:
        """An application-level ping frame, or ``None`` when the venue uses protocol pings."""
        ...

    def route(self, message: Any) -> tuple[str, Any] | None:
        """Hot path: ``(topic, payload)`` for a data message, ``None`` for anything else.

        Must cost one dict lookup or two; never parse the payload here.
        """
        ...

    def control(self, message: Any) -> Control:
        """Classify a message :meth:`route` returned ``None`` for."""
        ...
