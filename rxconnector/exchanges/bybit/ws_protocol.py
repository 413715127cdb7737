"""Bybit v5 public WebSocket protocol: endpoints, limits, control frames and routing.

Pure knowledge for the subscription hub (see :class:`~rxconnector.exchanges.base.WsProtocol`);
no I/O. Facts from PROTOCOL.md §C1 (Bybit ``wss-authentication.mdx`` "Connect" page and
``rate-limit.mdx``); every constant says where it comes from or why it was chosen where
Bybit documents nothing.

One connection serves one category (``spot``, ``linear`` or ``inverse``): the endpoint
is ``{base}/v5/public/{category}``. Requests are
``{"req_id":"<n>","op":"subscribe","args":[...]}``; answers differ per category
(Spot echoes ``req_id`` and ``ret_msg:"subscribe"``; linear/inverse's documented example
has ``req_id:""`` and ``ret_msg:""``; option/spread answer with a ``COMMAND_RESP``). All
are classified by :meth:`BybitWsProtocol.control`. Bybit expects an application-level
``{"op":"ping"}`` every 20 s; its pong comes back as ``op:"ping", ret_msg:"pong"``
(Spot, linear/inverse) or ``op:"pong"`` (option/spread, private).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from rxconnector.config import VENUE_CATEGORIES
from rxconnector.errors import excerpt
from rxconnector.exchanges.base import Control, ControlKind
from rxconnector.exchanges.symbols import MAX_BYBIT_SYMBOL_LENGTH

if TYPE_CHECKING:
    from rxconnector.exchanges.base import WsProtocol

__all__ = [
    "BYBIT_CATEGORIES",
    "BybitWsProtocol",
    "CLIENT_PING_INTERVAL",
    "LINK_STALE_AFTER",
    "CONNECTION_ATTEMPT_WINDOW",
    "MAX_ARGS_CHARS_PER_CONNECTION",
    "MAX_CONNECTION_ATTEMPTS",
    "MAX_MESSAGES_PER_SECOND",
    "MAX_STREAMS_PER_CONNECTION",
    "MAX_TOPIC_LENGTH",
    "MAX_TOPICS_PER_REQUEST",
    "QUIET_TOPIC_PREFIXES",
    "STALE_AFTER",
]

#: The public categories this library speaks (option and spread are out of scope): the
#: venue vocabulary of :data:`rxconnector.config.VENUE_CATEGORIES`.
BYBIT_CATEGORIES: Final = VENUE_CATEGORIES["bybit"]

#: §C1 Limits: "Spot: ≤ 10 args per subscribe request". Linear/inverse have "no args
#: limit for now"; we use 10 everywhere anyway: "for now" may change without notice
#: (nautilus hit this on resubscribe, PEERS.md §3.3), and the price is only a few more
#: frames when (re)subscribing many topics.
MAX_TOPICS_PER_REQUEST: Final = 10

#: §C1 Limits: the ``args`` of one public connection total at most 21 000 characters.
MAX_ARGS_CHARS_PER_CONNECTION: Final = 21_000

#: The longest topic :class:`~rxconnector.exchanges.bybit.feeds.BybitFeeds` can build:
#: ``orderbook.1000.`` / ``allLiquidation.`` (15) + the longest valid symbol (30).
MAX_TOPIC_LENGTH: Final = 15 + MAX_BYBIT_SYMBOL_LENGTH

#: Bybit documents no topics-per-connection cap for spot/linear/inverse, only the
#: 21 000-character ``args`` budget. Capping topics so that even the longest topics,
#: JSON-quoted with a separator (+3 each), fit that budget enforces it without the hub
#: having to count characters: 21 000 // 48 = 437.
MAX_STREAMS_PER_CONNECTION: Final = MAX_ARGS_CHARS_PER_CONNECTION // (MAX_TOPIC_LENGTH + 3)

#: NOT documented by Bybit for public streams. We pick the strictest documented limit
#: of any venue we speak (Binance Spot: 5 incoming messages/s including pings), so
#: subscribe bursts after a reconnect can never be the reason Bybit drops us.
MAX_MESSAGES_PER_SECOND: Final = 5.0

#: §C1 Limits: at most 500 new connections per 5 minutes per IP and WS domain.
MAX_CONNECTION_ATTEMPTS: Final = 500
CONNECTION_ATTEMPT_WINDOW: Final = 300.0

#: §C1 Heartbeat: a ``{"op":"ping"}`` is "recommended every 20 s".
CLIENT_PING_INTERVAL: Final = 20.0
#: How a public data frame starts (:meth:`BybitWsProtocol.data_frame_head`): Bybit
#: writes ``topic`` first in every public data frame (PROTOCOL.md §C1 verbatim heads).
_TOPIC_PREFIX: Final = b'{"topic":"'

#: Not documented. Kline topics push every 1-60 s (§C1 Topics) and are the slowest
#: data we subscribe, so a connection silent for 90 s is not merely quiet.
STALE_AFTER: Final = 90.0
#: We ping every 20 s (``CLIENT_PING_INTERVAL``) and every pong is a frame: three pongs
#: missed and the link is gone, whatever the topics say.
LINK_STALE_AFTER: Final = 60.0
#: Liquidation topics (BY ``public/all-liquidation.mdx``) push only when something is
#: liquidated: a connection carrying only them is judged on pongs, not data silence.
QUIET_TOPIC_PREFIXES: Final = ("allLiquidation.", "liquidation.")

_PING: Final = orjson.dumps({"op": "ping"}).decode()
_TOPIC_MARK: Final = "topic:"
_LIST_OPEN: Final = ":["


def _request_id(raw: Any) -> int | str | None:
    """Our request ids are ints sent as strings; give the hub back the int it sent."""
    if raw is None or raw == "":
        return None
    if type(raw) is int:
        return raw
    if isinstance(raw, str):
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else raw
    # A list, an object, a float ...: no id we ever sent. Refuse the frame (a ParseError
    # on ``errors``) rather than guess, or ``None`` would match the oldest request.
    raise ValueError(f"req_id is a {type(raw).__name__}, not a string")


def _text(value: Any) -> str:
    """A message field as text: a string as is, anything else as a bounded excerpt."""
    return value if isinstance(value, str) else excerpt(value)


def _failed_topic(ret_msg: str) -> tuple[str, ...] | None:
    """The topics a failure names, or ``None``.

    Two shapes are seen from Bybit: ``"error:handler not found,topic:dcp.future"`` →
    ``("dcp.future",)`` and, for an unknown symbol, ``"Invalid symbol :[tickers.XUSDT]"``
    → ``("tickers.XUSDT",)``; several topics are comma-separated. The hub keeps only
    names it asked for, so anything else a message happens to contain is ignored.
    """
    open_at = ret_msg.find(_LIST_OPEN)
    close_at = ret_msg.find("]", open_at + 1)
    if open_at >= 0 and close_at > open_at:
        inside = ret_msg[open_at + len(_LIST_OPEN) : close_at]
    else:
        at = ret_msg.find(_TOPIC_MARK)
        if at < 0:
            return None
        inside = ret_msg[at + len(_TOPIC_MARK) :]
    topics = tuple(t.strip() for t in inside.split(",") if t.strip())
    return topics or None


def _excerpt(message: Any) -> str:
    return excerpt(message)  # bounded and non-recursive: any nesting depth is safe


class BybitWsProtocol:
    """Bybit v5 public market-data protocol for one ``category``.

    Implements :class:`~rxconnector.exchanges.base.WsProtocol`; build one per hub::

        proto = BybitWsProtocol("linear")
        proto.connection_url("wss://stream.bybit.com", "")
        # 'wss://stream.bybit.com/v5/public/linear'
    """

    name: str = "bybit"
    max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    max_messages_per_second: float = MAX_MESSAGES_PER_SECOND
    max_topics_per_request: int = MAX_TOPICS_PER_REQUEST
    max_connection_attempts: int = MAX_CONNECTION_ATTEMPTS
    connection_attempt_window: float = CONNECTION_ATTEMPT_WINDOW
    stale_after: float = STALE_AFTER
    link_stale_after: float = LINK_STALE_AFTER
    client_ping_interval: float | None = CLIENT_PING_INTERVAL

    def __init__(self, category: str = "spot") -> None:
        if category not in BYBIT_CATEGORIES:
            raise ValueError(
                f"Bybit category must be one of {', '.join(BYBIT_CATEGORIES)}; got {category!r}"
            )
        self.category = category
        self._path = f"/v5/public/{category}"

    def __repr__(self) -> str:
        return f"BybitWsProtocol({self.category!r})"

    def quiet_topic(self, topic: str) -> bool:
        """Whether ``topic`` may stay silent for minutes (liquidation topics)."""
        return topic.startswith(QUIET_TOPIC_PREFIXES)

    # ----------------------------------------------------------------- endpoints

    def connection_url(self, base_url: str, endpoint: str) -> str:
        """``{base_url}/v5/public/{category}``; a base that already ends so is kept as is."""
        if endpoint:
            raise ValueError(
                f"Bybit public streams have one endpoint per category, not {endpoint!r}"
            )
        base = base_url.rstrip("/")
        return base if base.endswith(self._path) else base + self._path

    def endpoint_for(self, topic: str) -> str:
        """Always ``""``: every public topic of a category is served by the same URL."""
        return ""

    # ----------------------------------------------------------------- requests

    def _request(self, op: str, topics: Sequence[str], request_id: int) -> str:
        if not topics:
            raise ValueError(f"a Bybit {op} request needs at least one topic")
        if len(topics) > MAX_TOPICS_PER_REQUEST:
            raise ValueError(
                f"a Bybit {op} request takes at most {MAX_TOPICS_PER_REQUEST} topics, "
                f"got {len(topics)}: split it"
            )
        args = list(topics)
        return orjson.dumps({"req_id": str(request_id), "op": op, "args": args}).decode()

    def subscribe_message(self, topics: Sequence[str], request_id: int) -> str:
        """``{"req_id":"<id>","op":"subscribe","args":[...]}`` (at most 10 topics)."""
        return self._request("subscribe", topics, request_id)

    def unsubscribe_message(self, topics: Sequence[str], request_id: int) -> str:
        """``{"req_id":"<id>","op":"unsubscribe","args":[...]}`` (at most 10 topics)."""
        return self._request("unsubscribe", topics, request_id)

    def ping_message(self) -> str:
        """``{"op":"ping"}``: Bybit's application-level heartbeat (every 20 s)."""
        return _PING

    # ----------------------------------------------------------------- incoming

    def data_frame_head(self, topic: str) -> bytes:
        """The exact bytes every public data frame of ``topic`` starts with:
        ``{"topic":"<topic>"`` (Bybit writes ``topic`` first). The hub finds a raw
        topic's frames by these bytes, without decoding them, when the topic's feed has
        a typed ``parse_frame``; a frame written otherwise (spaces, another key order)
        is decoded and routed as usual, so the head is only a fast path."""
        return _TOPIC_PREFIX + topic.encode() + b'"'

    def route(self, message: Any) -> tuple[str, Any] | None:
        """Data messages carry ``topic``; the whole message is the payload (the parsers
        need ``type``, ``ts`` and ``cts`` besides ``data``). Control frames have no topic."""
        try:
            topic = message.get("topic")
        except AttributeError:  # not a JSON object: never data
            return None
        if topic is None:
            return None
        return topic, message

    def control(self, message: Any) -> Control:
        """Classify acks, failures and pongs of every documented shape (PROTOCOL.md §C1).

        * pong: ``op:"ping"`` with ``ret_msg:"pong"`` (Spot, linear/inverse) or
          ``op:"pong"`` (option/spread, private) → ``PONG``;
        * ``op`` subscribe/unsubscribe/auth with ``success:true`` → ``ACK`` with our int
          request id (``None`` when Bybit echoes ``req_id:""``, as in the documented
          linear/inverse answer: the hub must then match acks in request order);
        * the same with ``success:false`` → ``ERROR``, ``message`` = ``ret_msg`` and
          ``result`` = the rejected topic when ``ret_msg`` names one
          (``"error:handler not found,topic:dcp.future"``);
        * option/spread ``type:"COMMAND_RESP"`` → ``ACK`` (``result`` = successTopics) or
          ``ERROR`` (``result`` = failTopics);
        * anything else → ``UNKNOWN`` with an excerpt.
        """
        if not isinstance(message, dict):
            return Control(ControlKind.UNKNOWN, message=_excerpt(message))
        op = message.get("op")
        success = message.get("success")
        ret_msg = _text(message.get("ret_msg") or "")
        request_id = _request_id(message.get("req_id"))
        if op == "pong" or (op == "ping" and success is not False):
            return Control(ControlKind.PONG, request_id=request_id)
        if message.get("type") == "COMMAND_RESP":
            data = message.get("data") or {}
            failed = tuple(data.get("failTopics") or ())
            if success is True and not failed:
                return Control(
                    ControlKind.ACK,
                    request_id=request_id,
                    result=tuple(data.get("successTopics") or ()),
                )
            return Control(
                ControlKind.ERROR,
                request_id=request_id,
                message=ret_msg or f"topics rejected: {', '.join(failed)}",
                result=failed or None,
            )
        if op is not None and success is True:
            return Control(ControlKind.ACK, request_id=request_id, message=ret_msg)
        if success is False:
            return Control(
                ControlKind.ERROR,
                request_id=request_id,
                message=ret_msg or f"{op or 'request'} failed",
                result=_failed_topic(ret_msg),
            )
        return Control(ControlKind.UNKNOWN, request_id=request_id, message=_excerpt(message))


if TYPE_CHECKING:
    _conforms: WsProtocol = BybitWsProtocol("spot")
