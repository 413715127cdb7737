"""Marble diagrams that emit trading models: tickers, trades, best quotes and books.

Strategies consume ``Ticker``/``Trade``/``BookTicker``/``OrderBook`` objects, not
letters. :func:`ticks`, :func:`trades_from`, :func:`book_tickers` and :func:`books` turn
a diagram plus a compact table into models whose ``event_time`` and ``received_at`` are
the virtual time at which each one is emitted; :func:`stamped` does it for any model.
The time frame and the diagram syntax are those of :mod:`rxconnector.testing.marbles`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar, cast

from reactivex import Observable
from reactivex.scheduler import VirtualTimeScheduler

from rxconnector.models import BookTicker, OrderBook, Ticker, Trade
from rxconnector.testing.factories import (
    LevelSpec,
    Num,
    dec,
    make_book_ticker,
    make_order_book,
    make_ticker,
    make_trade,
)
from rxconnector.testing.marbles import (
    SUBSCRIBED,
    TOKEN_PATTERN,
    HotStream,
    Make,
    Message,
    parse_diagram,
    timed_cold,
)

__all__ = [
    "BookSpec",
    "QuoteSpec",
    "TradeSpec",
    "book_tickers",
    "books",
    "stamped",
    "ticks",
    "trades_from",
]

_T = TypeVar("_T")
_V = TypeVar("_V")

TradeSpec = tuple[Num, Num, str] | Trade
QuoteSpec = tuple[Num, Num] | tuple[Num, Num, Num, Num] | BookTicker
BookSpec = tuple[Sequence[LevelSpec], Sequence[LevelSpec]] | OrderBook


def _stream(
    messages: Sequence[Message],
    make_factory: Callable[[], Make],
    hot_on: VirtualTimeScheduler | None,
    origin: float,
) -> Observable[Any]:
    if hot_on is not None:
        shifted = [(time + origin, n) for time, n in messages]
        return HotStream(hot_on, shifted, make_factory)
    return timed_cold(messages, make_factory, None)


def _check_table(diagram: str, table: Mapping[str, Any], convert: Callable[[Any], Any]) -> None:
    """Convert every entry the diagram uses now, so a bad one fails at the test's line."""
    for token in set(TOKEN_PATTERN.findall(diagram)):
        if token in table:
            try:
                convert(table[token])
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise ValueError(f"entry {token!r} of the table is not usable: {exc}") from exc


class _TickerMaker:
    """Per subscription: ``open`` is the first price, ``high``/``low`` the running extremes."""

    def __init__(self, symbol: str, fields: Mapping[str, Any]) -> None:
        self._symbol = symbol
        self._fields = fields
        self._first: Decimal | None = None
        self._high = Decimal(0)
        self._low = Decimal(0)

    def make(self, value: Num, now: float) -> Ticker:
        price = dec(value)
        if self._first is None:
            self._first, self._high, self._low = price, price, price
        self._high, self._low = max(self._high, price), min(self._low, price)
        options: dict[str, Any] = {
            "open": self._first,
            "high": self._high,
            "low": self._low,
            **self._fields,
        }
        return make_ticker(self._symbol, price, event_time=int(now), received_at=now, **options)


class _TradeMaker:
    """Per subscription: ids in order of first appearance; a token seen again is the
    same trade (same id and ``time``) delivered again."""

    def __init__(self, symbol: str, first_id: int, fields: Mapping[str, Any]) -> None:
        self._symbol = symbol
        self._fields = fields
        self._seen: dict[str, Trade] = {}
        self._next_id = first_id

    def make(self, entry: tuple[str, TradeSpec], now: float) -> Trade:
        token, spec = entry
        if isinstance(spec, Trade):
            return spec
        price, qty, side = spec
        previous = self._seen.get(token)
        trade = make_trade(
            self._symbol,
            price,
            qty,
            side,
            trade_id=self._next_id if previous is None else previous.trade_id,
            time=int(now) if previous is None else previous.time,
            event_time=int(now),
            received_at=now,
            **self._fields,
        )
        if previous is None:
            self._seen[token] = trade
            self._next_id += 1
        return trade


class _BookTickerMaker:
    """Per subscription: ``update_id`` counts up from 1."""

    def __init__(self, symbol: str, convert: Callable[[QuoteSpec], BookTicker]) -> None:
        self._symbol = symbol
        self._convert = convert
        self._update_id = 0

    def make(self, spec: QuoteSpec, now: float) -> BookTicker:
        if isinstance(spec, BookTicker):
            return spec
        self._update_id += 1
        base = self._convert(spec)
        return make_book_ticker(
            self._symbol,
            base.bid,
            base.ask,
            bid_qty=base.bid_qty,
            ask_qty=base.ask_qty,
            update_id=self._update_id,
            event_time=int(now),
            received_at=now,
        )


class _BookMaker:
    """Per subscription: ``update_id`` counts up from 1."""

    def __init__(self, symbol: str) -> None:
        self._symbol = symbol
        self._update_id = 0

    def make(self, spec: BookSpec, now: float) -> OrderBook:
        if isinstance(spec, OrderBook):
            return spec
        self._update_id += 1
        bids, asks = spec
        return make_order_book(
            self._symbol,
            bids,
            asks,
            update_id=self._update_id,
            event_time=int(now),
            received_at=now,
        )


def stamped(
    diagram: str,
    values: Mapping[str, _V],
    make: Callable[[_V, int], _T],
    *,
    error: Exception | None = None,
    timespan: float = 1.0,
    hot_on: VirtualTimeScheduler | None = None,
    origin: float = SUBSCRIBED,
) -> Observable[_T]:
    """Any model from a diagram: ``make(value, event_time_ms)`` runs at emission time.

    Like every builder here it is cold (played from each subscription on, on the
    subscriber's scheduler) unless ``hot_on`` names a virtual-time scheduler: then it is
    a :class:`HotStream` on it with its first column at ``origin``, like a live feed.

    .. code-block:: text

        stamped("-a-|", {"a": 5}, lambda v, t: (v, t))   subscribed at 200:
                                                          201: (5, 201000), 203: completed
    """
    messages = parse_diagram(diagram, values, error, timespan=timespan, numbers_allowed=False)

    def factory() -> Make:
        return lambda value, now: make(value, int(now))

    return _stream(messages, factory, hot_on, origin)


def ticks(
    diagram: str,
    prices: Mapping[str, Num] | None = None,
    symbol: str = "BTCUSDT",
    *,
    error: Exception | None = None,
    timespan: float = 1.0,
    hot_on: VirtualTimeScheduler | None = None,
    origin: float = SUBSCRIBED,
    **fields: Any,
) -> Observable[Ticker]:
    """Tickers from a diagram: one per marble, ``last`` = its price, bid/ask around it.

    ``prices`` maps tokens to prices; numeric tokens may stand for themselves
    (``ticks("-100-101-|")``). Per subscription, ``open`` is the first price and
    ``high``/``low`` track the running extremes. ``fields`` go to
    :func:`~rxconnector.testing.factories.make_ticker` (``spread``, ``volume``, ...).
    ``event_time`` and ``received_at`` are the virtual time of emission.

    .. code-block:: text

        ticks("-a--b-|", {"a": 100, "b": 101})
              -T(100)--T(101)-|      T.event_time = emission tick * 1000
    """
    _check_table(diagram, prices or {}, dec)
    messages = parse_diagram(diagram, prices or {}, error, timespan=timespan)

    def factory() -> Make:
        return _TickerMaker(symbol, fields).make

    return cast(Observable[Ticker], _stream(messages, factory, hot_on, origin))


def trades_from(
    diagram: str,
    table: Mapping[str, TradeSpec],
    symbol: str = "BTCUSDT",
    *,
    first_id: int = 1,
    error: Exception | None = None,
    timespan: float = 1.0,
    hot_on: VirtualTimeScheduler | None = None,
    origin: float = SUBSCRIBED,
    **fields: Any,
) -> Observable[Trade]:
    """Trades from a diagram and a table ``token -> (price, quantity, side)``.

    Trade ids are given in order of first appearance, from ``first_id``; **the same
    token twice is the same trade delivered twice** (same id and ``time``, a later
    ``event_time``), which is what a feed that restarts may do. A ``Trade`` in the table
    is emitted unchanged. ``fields`` go to :func:`~rxconnector.testing.factories.make_trade`.

    .. code-block:: text

        trades_from("-a-b--b-|", {"a": (100, 1, "buy"), "b": (101, 2, "sell")})
                     -#1-#2--#2-|     (#2 delivered twice)
    """

    def convert(spec: TradeSpec) -> TradeSpec:
        if isinstance(spec, Trade):
            return spec
        price, qty, side = spec
        make_trade(symbol, price, qty, side)
        return spec

    _check_table(diagram, table, convert)
    # Tag each entry with its token: identity of the trade is the token, not the value
    # (two tokens may well describe equal trades).
    tagged = {token: (token, spec) for token, spec in table.items()}
    messages = parse_diagram(diagram, tagged, error, timespan=timespan, numbers_allowed=False)

    def factory() -> Make:
        return _TradeMaker(symbol, first_id, fields).make

    return cast(Observable[Trade], _stream(messages, factory, hot_on, origin))


def book_tickers(
    diagram: str,
    quotes: Mapping[str, QuoteSpec],
    symbol: str = "BTCUSDT",
    *,
    error: Exception | None = None,
    timespan: float = 1.0,
    hot_on: VirtualTimeScheduler | None = None,
    origin: float = SUBSCRIBED,
    **fields: Any,
) -> Observable[BookTicker]:
    """Best bid/ask updates from a table ``token -> (bid, ask)`` or ``(bid, ask, bid_qty,
    ask_qty)``; ``update_id`` counts up from 1 per subscription.

    .. code-block:: text

        book_tickers("-a-b-|", {"a": (100, 101), "b": (100, 107)})
                      -B(1)-B(6)-|      (spreads 1 and 7)
    """

    def convert(spec: QuoteSpec) -> BookTicker:
        if isinstance(spec, BookTicker):
            return spec
        if len(spec) == 2:
            return make_book_ticker(symbol, spec[0], spec[1], **fields)
        bid, ask, bid_qty, ask_qty = spec
        return make_book_ticker(symbol, bid, ask, bid_qty=bid_qty, ask_qty=ask_qty, **fields)

    _check_table(diagram, quotes, convert)
    messages = parse_diagram(diagram, quotes, error, timespan=timespan, numbers_allowed=False)

    def factory() -> Make:
        return _BookTickerMaker(symbol, convert).make

    return cast(Observable[BookTicker], _stream(messages, factory, hot_on, origin))


def books(
    diagram: str,
    table: Mapping[str, BookSpec],
    symbol: str = "BTCUSDT",
    *,
    error: Exception | None = None,
    timespan: float = 1.0,
    hot_on: VirtualTimeScheduler | None = None,
    origin: float = SUBSCRIBED,
) -> Observable[OrderBook]:
    """Order books from a table ``token -> (bids, asks)`` of ``(price, qty)`` levels.

    Levels may be in any order (they are sorted best first); ``update_id`` counts up
    from 1 per subscription. An ``OrderBook`` in the table is emitted unchanged.

    .. code-block:: text

        books("-a-b-|", {"a": ([(99, 1)], [(101, 2)]), "b": ([(100, 1)], [(101, 1)])})
               -B(99/101)-B(100/101)-|
    """

    def convert(spec: BookSpec) -> OrderBook:
        if isinstance(spec, OrderBook):
            return spec
        bids, asks = spec
        return make_order_book(symbol, bids, asks)

    _check_table(diagram, table, convert)
    messages = parse_diagram(diagram, table, error, timespan=timespan, numbers_allowed=False)

    def factory() -> Make:
        return _BookMaker(symbol).make

    return cast(Observable[OrderBook], _stream(messages, factory, hot_on, origin))
