"""Binance public feeds as :class:`~rxconnector.exchanges.base.FeedSpec`: topic + parser + key.

The connector asks ``feeds.trades("BTCUSDT")`` and gets everything it needs to serve
``conn.trades("BTCUSDT")``: the stream name to subscribe (lower case, PROTOCOL.md §A1.3),
the parser for its payloads, and a sequence key for make-before-break de-duplication.
Arguments are validated here, once, with messages that list what is valid; nothing in
this module runs per message except the parsers and the key functions.

Sequence keys (strictly increasing per stream, so "key <= last key" means "already
seen"): trade id (``t``), aggregate id (``a``), diff depth final id (``u``), bookTicker
``u``, partial depth ``lastUpdateId`` (USD-M: ``u``), otherwise the event time ``E``.
Every key function returns ``None`` instead of raising for a payload it cannot read; the
parser reports the malformed payload.

Every market feed has a typed ``parse_frame`` too (:mod:`.wire` for trades, aggregate
trades, book tickers and the book's diffs; :mod:`.wire_market` for the rest; partial
depth only with the compiled level packer, where it is the faster path): the hub then
hands the topic's frames over undecoded, so each key function reads raw frames as well
as decoded payloads.

Both classes offer every feed method name of the connector; a feed the venue does not
have raises :class:`~rxconnector.errors.NotSupportedError` (``SUPPORTED_FEEDS`` lists
what each venue does have, with its wire stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from rxconnector.errors import NotSupportedError
from rxconnector.exchanges.base import FeedSpec
from rxconnector.exchanges.binance import parsers as p
from rxconnector.exchanges.binance import wire as w
from rxconnector.exchanges.binance import wire_market as wm
from rxconnector.exchanges.symbols import binance_interval, normalize_symbol, validate_choice

__all__ = [
    "BINANCE_FUTURES_SUPPORTED_FEEDS",
    "BINANCE_SPOT_SUPPORTED_FEEDS",
    "BinanceFuturesFeeds",
    "BinanceSpotFeeds",
    "PARTIAL_DEPTH_LEVELS",
    "SUPPORTED_FEEDS",
    "SPOT_DEPTH_SPEEDS_MS",
    "FUTURES_DEPTH_SPEEDS_MS",
]

#: ``<symbol>@depth<levels>`` (PROTOCOL.md §A1.3, §B).
PARTIAL_DEPTH_LEVELS: Final = (5, 10, 20)
#: Spot depth streams push every 1000 ms (default) or 100 ms (PROTOCOL.md §A1.3).
SPOT_DEPTH_SPEEDS_MS: Final = (100, 1000)
#: USD-M depth streams: 250 ms (default, no suffix), 500 ms or 100 ms (PROTOCOL.md §B).
FUTURES_DEPTH_SPEEDS_MS: Final = (100, 250, 500)

BINANCE_SPOT_SUPPORTED_FEEDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ticker": "<symbol>@ticker",
        "mini_ticker": "<symbol>@miniTicker",
        "book_ticker": "<symbol>@bookTicker",
        "trades": "<symbol>@trade",
        "agg_trades": "<symbol>@aggTrade",
        "klines": "<symbol>@kline_<interval>",
        "depth": "<symbol>@depth<levels>[@100ms]",
        "diff_depth": "<symbol>@depth[@100ms]",
        "avg_price": "<symbol>@avgPrice",
    }
)
BINANCE_FUTURES_SUPPORTED_FEEDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ticker": "<symbol>@ticker",
        "mini_ticker": "<symbol>@miniTicker",
        "book_ticker": "<symbol>@bookTicker",
        "agg_trades": "<symbol>@aggTrade",
        "klines": "<symbol>@kline_<interval>",
        "depth": "<symbol>@depth<levels>[@100ms|@500ms]",
        "diff_depth": "<symbol>@depth[@100ms|@500ms]",
        "mark_price": "<symbol>@markPrice[@1s]",
        "liquidations": "<symbol>@forceOrder",
    }
)

#: Per venue name (as in ``Config.exchange``): feed → wire stream pattern.
SUPPORTED_FEEDS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {"binance": BINANCE_SPOT_SUPPORTED_FEEDS, "binance_futures": BINANCE_FUTURES_SUPPORTED_FEEDS}
)


def _key(field: str) -> Callable[[Any], int | None]:
    """A sequence-key function reading the integer ``field`` of a payload, else ``None``."""

    def key(payload: Any) -> int | None:
        try:
            value = payload[field]
        except (KeyError, TypeError, IndexError):
            return None
        return value if type(value) is int else None

    key.__name__ = f"key_{field}"
    return key


def _payload_or_frame_key(field: str) -> Callable[[Any], int | None]:
    """The key ``field`` of a decoded payload (a dict) or of a raw frame (a topic with a
    typed ``parse_frame``, handed over undecoded by the hub)."""
    of_payload, of_frame = _key(field), w.frame_sequence(field)

    def key(message: Any) -> int | None:
        if type(message) is bytes:
            return of_frame(message)
        return of_payload(message)

    key.__name__ = f"key_{field}"
    return key


_TYPED_BY_TRADE_ID: Final = _payload_or_frame_key("t")
_TYPED_BY_AGG_ID: Final = _payload_or_frame_key("a")
_TYPED_BY_FINAL_UPDATE_ID: Final = _payload_or_frame_key("u")
_TYPED_BY_LAST_UPDATE_ID: Final = _payload_or_frame_key("lastUpdateId")
_TYPED_BY_EVENT_TIME: Final = _payload_or_frame_key("E")


def _diff_depth_spec(topic: str) -> FeedSpec:
    """The public ``diff_depth`` feed of ``topic``: :class:`~rxconnector.models.DepthUpdate`
    by the dict parser. It has a ``parse_frame`` too, because the book's spec of the
    same topic makes the hub hand the topic's frames over undecoded."""
    return FeedSpec(
        topic,
        p.parse_depth_update,
        sequence=_TYPED_BY_FINAL_UPDATE_ID,
        parse_frame=w.depth_update_frame_parser(topic),
    )


def _depth_suffix(speed_ms: int, default_ms: int) -> str:
    return "" if speed_ms == default_ms else f"@{speed_ms}ms"


class _BinanceFeeds:
    """What Spot and USD-M share: lower-case stream names and the common payloads."""

    venue: str = "binance"
    supported_feeds: Mapping[str, str] = BINANCE_SPOT_SUPPORTED_FEEDS
    _futures: bool = False

    def _sym(self, symbol: str) -> str:
        return normalize_symbol(symbol, "binance_futures" if self._futures else "binance").lower()

    def _unsupported(self, feed: str) -> NotSupportedError:
        return NotSupportedError(self.venue, feed)

    def diff_depth(self, symbol: str, speed_ms: int = 100) -> FeedSpec:
        """Each venue's own (Spot and USD-M offer different speeds); named here for
        :meth:`book_diffs`, which both share."""
        raise NotImplementedError

    def book_diffs(self, symbol: str, depth: int) -> FeedSpec:
        """The diff stream of a local book: every level changes here, whatever ``depth``.

        The ``diff_depth`` topic, read by the book's own one-pass frame parser
        (:func:`~rxconnector.exchanges.binance.wire.depth_frame_parser`: ids typed,
        levels packed for the book, no ``Decimal`` per level); a frame the hub decoded
        (written otherwise than Binance writes them) takes the dict parser.
        """
        topic = self.diff_depth(symbol).topic
        return FeedSpec(
            topic,
            p.parse_depth_update,
            sequence=_TYPED_BY_FINAL_UPDATE_ID,
            parse_frame=w.depth_frame_parser(topic),
        )

    def ticker(self, symbol: str) -> FeedSpec:
        """24 h rolling ticker, every 1000 ms → :class:`~rxconnector.models.Ticker`."""
        topic = f"{self._sym(symbol)}@ticker"
        return FeedSpec(
            topic,
            p.parse_ticker,
            sequence=_TYPED_BY_EVENT_TIME,
            parse_frame=wm.ticker_frame_parser(topic),
        )

    def mini_ticker(self, symbol: str) -> FeedSpec:
        """24 h OHLC + volume, every 1000 ms → :class:`~rxconnector.models.MiniTicker`."""
        topic = f"{self._sym(symbol)}@miniTicker"
        return FeedSpec(
            topic,
            p.parse_mini_ticker,
            sequence=_TYPED_BY_EVENT_TIME,
            parse_frame=wm.mini_ticker_frame_parser(topic),
        )

    def book_ticker(self, symbol: str) -> FeedSpec:
        """Best bid/ask on every change → :class:`~rxconnector.models.BookTicker`."""
        topic = f"{self._sym(symbol)}@bookTicker"
        return FeedSpec(
            topic,
            p.parse_book_ticker,
            sequence=_TYPED_BY_FINAL_UPDATE_ID,
            parse_frame=w.book_ticker_frame_parser(topic),
        )

    def trades(self, symbol: str) -> FeedSpec:
        """Every trade → :class:`~rxconnector.models.Trade` (``side`` = taker side)."""
        topic = f"{self._sym(symbol)}@trade"
        return FeedSpec(
            topic,
            p.parse_trade,
            sequence=_TYPED_BY_TRADE_ID,
            parse_frame=w.trade_frame_parser(topic),
        )

    def agg_trades(self, symbol: str) -> FeedSpec:
        """Aggregate trades → :class:`~rxconnector.models.Trade` with the trade id range."""
        topic = f"{self._sym(symbol)}@aggTrade"
        return FeedSpec(
            topic,
            p.parse_agg_trade,
            sequence=_TYPED_BY_AGG_ID,
            parse_frame=w.agg_trade_frame_parser(topic),
        )

    def klines(self, symbol: str, interval: str) -> FeedSpec:
        """Candles of ``interval`` (``1m`` ... ``1M``) → :class:`~rxconnector.models.Kline`."""
        checked = binance_interval(interval, futures=self._futures)
        topic = f"{self._sym(symbol)}@kline_{checked}"
        return FeedSpec(
            topic,
            p.parse_kline,
            sequence=_TYPED_BY_EVENT_TIME,
            parse_frame=wm.kline_frame_parser(topic),
        )

    def avg_price(self, symbol: str) -> FeedSpec:
        """Spot's rolling average price → :class:`~rxconnector.models.AvgPrice`."""
        if self._futures:
            raise self._unsupported("avg_price")
        topic = f"{self._sym(symbol)}@avgPrice"
        return FeedSpec(
            topic,
            p.parse_avg_price,
            sequence=_TYPED_BY_EVENT_TIME,
            parse_frame=wm.avg_price_frame_parser(topic),
        )

    def mark_price(self, symbol: str, every_second: bool = True) -> FeedSpec:
        """Futures mark price (not on Spot: raises :class:`NotSupportedError`)."""
        raise self._unsupported("mark_price")

    def liquidations(self, symbol: str) -> FeedSpec:
        """Futures liquidations (not on Spot: raises :class:`NotSupportedError`)."""
        raise self._unsupported("liquidations")


class BinanceSpotFeeds(_BinanceFeeds):
    """Binance Spot market streams (PROTOCOL.md §A1.3)."""

    venue = "binance"
    supported_feeds = BINANCE_SPOT_SUPPORTED_FEEDS
    _futures = False

    def depth(self, symbol: str, levels: int = 20, speed_ms: int = 100) -> FeedSpec:
        """Top ``levels`` (5, 10, 20) of the book every ``speed_ms`` (100 or 1000).

        → :class:`~rxconnector.models.OrderBook` (the exchange's own partial snapshot;
        ``event_time`` 0 because Spot does not send one).
        """
        validate_choice("levels", levels, PARTIAL_DEPTH_LEVELS)
        validate_choice("speed_ms", speed_ms, SPOT_DEPTH_SPEEDS_MS)
        sym = self._sym(symbol)
        topic = f"{sym}@depth{levels}{_depth_suffix(speed_ms, 1000)}"
        typed = wm.partial_depth_frame_parser(topic, sym.upper())
        return FeedSpec(
            topic,
            p.partial_depth_parser(sym.upper()),
            sequence=_TYPED_BY_LAST_UPDATE_ID,
            parse_frame=typed if wm.TYPED_PARTIAL_DEPTH else None,
        )

    def diff_depth(self, symbol: str, speed_ms: int = 100) -> FeedSpec:
        """The raw diff-depth stream the local order book is built from.

        → :class:`~rxconnector.models.DepthUpdate` every ``speed_ms`` (100 or 1000).
        """
        validate_choice("speed_ms", speed_ms, SPOT_DEPTH_SPEEDS_MS)
        return _diff_depth_spec(f"{self._sym(symbol)}@depth{_depth_suffix(speed_ms, 1000)}")


class BinanceFuturesFeeds(_BinanceFeeds):
    """Binance USD-M futures market streams (PROTOCOL.md §B).

    USD-M has no public plain-trade stream: ``trades`` raises
    :class:`NotSupportedError` and names ``agg_trades`` instead.
    """

    venue = "binance_futures"
    supported_feeds = BINANCE_FUTURES_SUPPORTED_FEEDS
    _futures = True

    def trades(self, symbol: str) -> FeedSpec:
        """Not on USD-M (only aggregate trades are public): raises NotSupportedError."""
        raise self._unsupported("trades (use agg_trades)")

    def depth(self, symbol: str, levels: int = 20, speed_ms: int = 250) -> FeedSpec:
        """Top ``levels`` (5, 10, 20) every ``speed_ms`` (100, 250 or 500)."""
        validate_choice("levels", levels, PARTIAL_DEPTH_LEVELS)
        validate_choice("speed_ms", speed_ms, FUTURES_DEPTH_SPEEDS_MS)
        topic = f"{self._sym(symbol)}@depth{levels}{_depth_suffix(speed_ms, 250)}"
        typed = wm.futures_partial_depth_frame_parser(topic)
        return FeedSpec(
            topic,
            p.parse_futures_partial_depth,
            sequence=_TYPED_BY_FINAL_UPDATE_ID,
            parse_frame=typed if wm.TYPED_PARTIAL_DEPTH else None,
        )

    def diff_depth(self, symbol: str, speed_ms: int = 100) -> FeedSpec:
        """Raw diff depth (with ``pu``) every ``speed_ms`` (100, 250 or 500)."""
        validate_choice("speed_ms", speed_ms, FUTURES_DEPTH_SPEEDS_MS)
        return _diff_depth_spec(f"{self._sym(symbol)}@depth{_depth_suffix(speed_ms, 250)}")

    def mark_price(self, symbol: str, every_second: bool = True) -> FeedSpec:
        """Mark price + funding every second (``every_second``) or every 3 s."""
        suffix = "@1s" if every_second else ""
        topic = f"{self._sym(symbol)}@markPrice{suffix}"
        return FeedSpec(
            topic,
            p.parse_mark_price,
            sequence=_TYPED_BY_EVENT_TIME,
            parse_frame=wm.mark_price_frame_parser(topic),
        )

    def liquidations(self, symbol: str) -> FeedSpec:
        """Forced liquidations (at most the latest one per symbol per second)."""
        topic = f"{self._sym(symbol)}@forceOrder"
        return FeedSpec(
            topic,
            p.parse_force_order,
            sequence=_TYPED_BY_EVENT_TIME,
            parse_frame=wm.force_order_frame_parser(topic),
        )
