"""Bybit v5 public feeds as :class:`~rxconnector.exchanges.base.FeedSpec`.

Same method names as :mod:`rxconnector.exchanges.binance.feeds` wherever Bybit has the
feed, returning the same models, so ``conn.ticker("BTCUSDT")`` means the same thing on
every venue. Topics are ``<name>.<SYMBOL>`` with the symbol upper case (PROTOCOL.md §C1).

Feed → topic (and what differs from Binance):

* ``ticker`` / ``mini_ticker`` → ``tickers.{S}``; linear/inverse deltas are merged
  (:class:`~rxconnector.exchanges.bybit.parsers.BybitTickerMerger`).
* ``mark_price`` → ``tickers.{S}`` too (linear/inverse; Bybit has no mark-price topic).
* ``book_ticker`` → ``orderbook.1.{S}``.
* ``trades`` → ``publicTrade.{S}`` (several trades per message: ``many=True``).
* ``klines`` → ``kline.{interval}.{S}``; ``"1h"`` and ``"60"`` both work.
* ``depth(symbol, levels)`` → the smallest ``orderbook.{1|50|200|1000}`` that has
  ``levels``, merged into an :class:`~rxconnector.models.OrderBook` cut at ``levels``.
* ``diff_depth(symbol, levels=200)`` → raw snapshot/delta stream of the same topic
  choice as :class:`~rxconnector.models.DepthUpdate` (for the local order book).
* ``full_depth`` → ``orderbook.full.{S}`` (Spot only so far: linear/inverse are not
  live on mainnet per PROTOCOL.md §C1).
* ``liquidations`` → ``allLiquidation.{S}`` (linear/inverse; Bybit docs
  ``websocket/public/all-liquidation``).
* ``agg_trades`` and ``avg_price`` do not exist on Bybit → ``NotSupportedError``.

State: ticker and book merging is stateful, so one :class:`BybitFeeds` keeps one
merger per topic and every FeedSpec it builds for that topic shares it. A second
``conn.ticker("BTCUSDT")`` subscribed while the topic is already streaming only sees
deltas; it can only be served from the first one's state. Build ONE ``BybitFeeds`` per
connector (per category). Mergers reset themselves on the snapshot Bybit sends after
every (re)subscription.

Sequence keys (make-before-break de-duplication): ``data.seq`` (cross sequence) for
order books, ``ts`` for tickers and klines. ``publicTrade`` has none (``None``):
a burst of more than 1024 fills is split over several messages with the SAME ``seq``
(PROTOCOL.md §C1), so no field of a trade message strictly increases.

Typed reading (issue #12): ``trades``, ``klines`` and ``liquidations``
(:mod:`~rxconnector.exchanges.bybit.wire`) and the three feeds of a ``tickers`` topic
(:mod:`~rxconnector.exchanges.bybit.wire_tickers`, sharing the topic's merger) have a
``parse_frame``, so the hub hands their topics' frames over undecoded; the ``ts`` key
reads raw frames too. A frame the typed schema does not take is read by the dict parser.
The order-book feeds (``book_ticker``, ``depth``, ``diff_depth``, ``book_diffs``,
``full_depth``) read theirs through :mod:`~rxconnector.exchanges.bybit.wire_book` where
that is the faster path (with the compiled book core); the ``seq`` key reads raw frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from rxconnector.errors import NotSupportedError
from rxconnector.exchanges.base import FeedSpec, Parser
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire, wire_tickers
from rxconnector.exchanges.bybit import wire_book as wb
from rxconnector.exchanges.bybit.ws_protocol import BYBIT_CATEGORIES
from rxconnector.exchanges.symbols import bybit_interval, normalize_symbol

__all__ = [
    "BYBIT_SUPPORTED_FEEDS",
    "BybitFeeds",
    "DEPTH_LEVELS",
    "SUPPORTED_FEEDS",
    "topic_depth",
]

#: ``orderbook.{depth}`` depths on Spot and linear/inverse (PROTOCOL.md §C1 Topics).
DEPTH_LEVELS: Final = (1, 50, 200, 1000)

_COMMON: Final = {
    "ticker": "tickers.<SYMBOL>",
    "mini_ticker": "tickers.<SYMBOL>",
    "book_ticker": "orderbook.1.<SYMBOL>",
    "trades": "publicTrade.<SYMBOL>",
    "klines": "kline.<interval>.<SYMBOL>",
    "depth": "orderbook.<1|50|200|1000>.<SYMBOL>",
    "diff_depth": "orderbook.<1|50|200|1000>.<SYMBOL>",
}
_DERIVATIVES: Final = {
    **_COMMON,
    "mark_price": "tickers.<SYMBOL>",
    "liquidations": "allLiquidation.<SYMBOL>",
}
#: Feed → topic pattern, per category (for the README table and error messages).
BYBIT_SUPPORTED_FEEDS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "spot": MappingProxyType({**_COMMON, "full_depth": "orderbook.full.<SYMBOL>"}),
        "linear": MappingProxyType(dict(_DERIVATIVES)),
        "inverse": MappingProxyType(dict(_DERIVATIVES)),
    }
)


#: The name the connector's venue table uses.
SUPPORTED_FEEDS: Final = BYBIT_SUPPORTED_FEEDS


def topic_depth(levels: int) -> int:
    """The smallest Bybit ``orderbook.{depth}`` (1, 50, 200, 1000) holding ``levels``."""
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 1000:
        raise ValueError(f"levels must be an int from 1 to 1000; got {levels!r}")
    return next(d for d in DEPTH_LEVELS if d >= levels)


def _ts_key(message: Any) -> int | None:
    if type(message) is bytes:  # a raw frame of a typed feed (wire.py)
        return wire.frame_ts(message)
    try:
        value = message["ts"]
    except (KeyError, TypeError, IndexError):
        return None
    return value if type(value) is int else None


def _book_reader(reader: Parser) -> Parser | None:
    """``reader`` as an order-book spec's ``parse_frame`` where the typed readers are the
    faster path (:data:`~rxconnector.exchanges.bybit.wire_book.TYPED_IS_FASTER`), else
    ``None``: the topic's frames are then decoded and read by the dict parsers. Every
    spec of a topic decides alike (the hub hands a raw topic's frames to all of them)."""
    return reader if wb.TYPED_IS_FASTER else None


def _seq_key(message: Any) -> int | None:
    """``data.seq`` of a decoded message, or of a raw frame (an order-book topic read by
    the typed parsers of :mod:`~rxconnector.exchanges.bybit.wire_book`)."""
    if type(message) is bytes:
        return wb.frame_seq(message)
    try:
        value = message["data"]["seq"]
    except (KeyError, TypeError, IndexError):
        return None
    return value if type(value) is int else None


class BybitFeeds:
    """FeedSpecs for one Bybit ``category`` (``spot``, ``linear`` or ``inverse``).

    Unsupported feeds raise ``NotSupportedError("bybit", feed)``; feeds that exist only
    in some categories say which (``"mark_price on spot"``).
    """

    venue: str = "bybit"

    def __init__(self, category: str = "spot") -> None:
        if category not in BYBIT_CATEGORIES:
            raise ValueError(
                f"Bybit category must be one of {', '.join(BYBIT_CATEGORIES)}; got {category!r}"
            )
        self.category = category
        self.supported_feeds: Mapping[str, str] = BYBIT_SUPPORTED_FEEDS[category]
        self._inverse = category == "inverse"
        self._ticker_frames: dict[str, wire_tickers.TickerFrames] = {}
        self._tickers: dict[str, p.BybitTickerMerger] = {}
        self._books: dict[str, p.BybitBookMerger] = {}

    def __repr__(self) -> str:
        return f"BybitFeeds({self.category!r})"

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _sym(symbol: str) -> str:
        return normalize_symbol(symbol, "bybit")

    def _require(self, feed: str) -> None:
        if feed not in self.supported_feeds:
            where = [c for c, feeds in BYBIT_SUPPORTED_FEEDS.items() if feed in feeds]
            raise NotSupportedError("bybit", f"{feed} on {self.category}" if where else feed)

    def _ticker_merger(self, topic: str) -> p.BybitTickerMerger:
        merger = self._tickers.get(topic)
        if merger is None:
            merger = self._tickers[topic] = p.BybitTickerMerger()
        return merger

    def _ticker_reader(self, topic: str) -> wire_tickers.TickerFrames:
        """The typed reader of ``topic``, on the topic's merger (shared by its feeds)."""
        frames = self._ticker_frames.get(topic)
        if frames is None:
            frames = self._ticker_frames[topic] = wire_tickers.TickerFrames(
                self._ticker_merger(topic), topic
            )
        return frames

    def _book_merger(self, topic: str) -> p.BybitBookMerger:
        merger = self._books.get(topic)
        if merger is None:
            merger = self._books[topic] = p.BybitBookMerger()
        return merger

    # ----------------------------------------------------------------- tickers

    def ticker(self, symbol: str) -> FeedSpec:
        """24 h ticker (spot 50 ms, derivatives 100 ms) → :class:`~rxconnector.models.Ticker`.

        Spot tickers have no best bid/ask (``None``); use :meth:`book_ticker` for those.
        """
        topic = f"tickers.{self._sym(symbol)}"
        frames = self._ticker_reader(topic)
        parse = p.ticker_parser(frames.merger, inverse=self._inverse)
        return FeedSpec(
            topic,
            wire_tickers.forgetting(frames, parse),
            sequence=_ts_key,
            parse_frame=wire_tickers.ticker_frame_parser(frames, inverse=self._inverse),
        )

    def mini_ticker(self, symbol: str) -> FeedSpec:
        """24 h OHLC and volumes from the ticker → :class:`~rxconnector.models.MiniTicker`."""
        topic = f"tickers.{self._sym(symbol)}"
        frames = self._ticker_reader(topic)
        parse = p.mini_ticker_parser(frames.merger, inverse=self._inverse)
        return FeedSpec(
            topic,
            wire_tickers.forgetting(frames, parse),
            sequence=_ts_key,
            parse_frame=wire_tickers.mini_ticker_frame_parser(frames, inverse=self._inverse),
        )

    def mark_price(self, symbol: str) -> FeedSpec:
        """Mark/index price and funding (linear/inverse) → :class:`~rxconnector.models.MarkPrice`.

        Emitted on the snapshot and on every ticker delta that changes one of them.
        """
        self._require("mark_price")
        topic = f"tickers.{self._sym(symbol)}"
        frames = self._ticker_reader(topic)
        parse = p.mark_price_parser(frames.merger)
        return FeedSpec(
            topic,
            wire_tickers.forgetting(frames, parse),
            many=True,
            sequence=_ts_key,
            parse_frame=wire_tickers.mark_price_frame_parser(frames),
        )

    # ----------------------------------------------------------------- book

    def book_ticker(self, symbol: str) -> FeedSpec:
        """Best bid/ask from ``orderbook.1`` (10 ms) → :class:`~rxconnector.models.BookTicker`.

        Legacy level-1 deltas (sent until March 2025, still in recordings) are merged
        into the topic's book (:func:`~rxconnector.exchanges.bybit.parsers.book_ticker_parser`).
        """
        topic = f"orderbook.1.{self._sym(symbol)}"
        merger = self._book_merger(topic)
        parse = p.book_ticker_parser(merger)
        parse_frame = _book_reader(wb.book_ticker_frame_parser(topic, merger))
        return FeedSpec(topic, parse, many=True, sequence=_seq_key, parse_frame=parse_frame)

    def depth(self, symbol: str, levels: int = 20) -> FeedSpec:
        """Top ``levels`` (1..1000) of the book → :class:`~rxconnector.models.OrderBook`.

        Subscribes the smallest Bybit depth holding ``levels`` (``levels=20`` uses
        ``orderbook.50``, 20 ms) and merges its snapshot + deltas; the result is cut
        to ``levels`` per side.
        """
        topic = f"orderbook.{topic_depth(levels)}.{self._sym(symbol)}"
        merger = self._book_merger(topic)
        parse_frame = _book_reader(wb.merged_book_frame_parser(topic, merger, levels))
        return FeedSpec(topic, merger.parser(levels), sequence=_seq_key, parse_frame=parse_frame)

    def diff_depth(self, symbol: str, levels: int = 200) -> FeedSpec:
        """Raw snapshot/delta stream for a local book of ``levels`` (1..1000).

        → :class:`~rxconnector.models.DepthUpdate` from the smallest
        ``orderbook.{1|50|200|1000}`` holding ``levels`` (10/20/100/200 ms), so
        ``diff_depth(s, 20)`` subscribes ``orderbook.50``. Snapshots have
        ``is_snapshot=True`` and replace the book (the order-book engine's input).
        """
        topic = f"orderbook.{topic_depth(levels)}.{self._sym(symbol)}"
        parse_frame = _book_reader(wb.depth_update_frame_parser(topic))
        return FeedSpec(topic, p.parse_depth, sequence=_seq_key, parse_frame=parse_frame)

    def book_diffs(self, symbol: str, depth: int) -> FeedSpec:
        """The stream of a local book of ``depth`` levels: the smallest
        ``orderbook.{1|50|200|1000}`` holding them (its snapshot starts the book).

        Raw frames are read in one typed pass into packed events
        (:func:`~rxconnector.exchanges.bybit.wire_book.book_frame_parser`: no ``Decimal``
        per level); a frame the hub decoded takes the dict parser (``DepthUpdate``).
        """
        topic = self.diff_depth(symbol, depth).topic
        parse_frame = _book_reader(wb.book_frame_parser(topic))
        return FeedSpec(topic, p.parse_depth, sequence=_seq_key, parse_frame=parse_frame)

    def full_depth(self, symbol: str) -> FeedSpec:
        """Delta-only ``orderbook.full`` (Spot) → :class:`~rxconnector.models.DepthUpdate`.

        Needs the REST ``/v5/market/full_orderbook`` snapshot to start (PROTOCOL.md §C1).
        """
        self._require("full_depth")
        topic = f"orderbook.full.{self._sym(symbol)}"
        parse_frame = _book_reader(wb.depth_update_frame_parser(topic))
        return FeedSpec(topic, p.parse_depth, sequence=_seq_key, parse_frame=parse_frame)

    # ----------------------------------------------------------------- trades, klines

    def trades(self, symbol: str) -> FeedSpec:
        """Every public trade → :class:`~rxconnector.models.Trade` (``side`` = taker side)."""
        topic = f"publicTrade.{self._sym(symbol)}"
        parse_frame = wire.trades_frame_parser(topic)
        return FeedSpec(topic, p.parse_trades, many=True, parse_frame=parse_frame)

    def agg_trades(self, symbol: str) -> FeedSpec:
        """Bybit has no aggregate trades: raises ``NotSupportedError``."""
        raise NotSupportedError("bybit", "agg_trades (use trades)")

    def klines(self, symbol: str, interval: str | int) -> FeedSpec:
        """Candles (``"1m"``/``"1"`` ... ``"1M"``/``"M"``) → :class:`~rxconnector.models.Kline`.

        ``Kline.interval`` is always spelled the Binance way (``"1h"``, never ``"60"``).
        """
        native = bybit_interval(interval)
        sym = self._sym(symbol)
        topic = f"kline.{native}.{sym}"
        parse = p.kline_parser(sym, inverse=self._inverse)
        parse_frame = wire.kline_frame_parser(topic, sym, inverse=self._inverse)
        return FeedSpec(topic, parse, many=True, sequence=_ts_key, parse_frame=parse_frame)

    def avg_price(self, symbol: str) -> FeedSpec:
        """Binance-only: raises ``NotSupportedError``."""
        raise NotSupportedError("bybit", "avg_price")

    def liquidations(self, symbol: str) -> FeedSpec:
        """Liquidations (linear/inverse, 500 ms) → :class:`~rxconnector.models.Liquidation`."""
        self._require("liquidations")
        topic = f"allLiquidation.{self._sym(symbol)}"
        parse_frame = wire.liquidations_frame_parser(topic)
        return FeedSpec(
            topic, p.parse_liquidations, many=True, sequence=_ts_key, parse_frame=parse_frame
        )
