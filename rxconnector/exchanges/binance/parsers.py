"""Binance Spot and USD-M futures WebSocket payloads → normalized models.

This is the hot path (DESIGN.md §4.8): every market-data frame goes through exactly one
of these functions. So they do the least work that is still safe: read the keys they
need, build ``Decimal`` straight from the exchange's strings (never via float), and
construct one frozen model. No logging, no validation passes, no intermediate objects.

Safety comes from one ``try`` per parser (free in CPython 3.11 until something raises):
a missing key, a wrong type or a non-numeric price becomes a
:class:`~rxconnector.errors.ParseError` carrying an excerpt of the payload, never a bare
``KeyError`` that would tear down a feed. Booleans are checked strictly (``"false"`` is
a truthy string, so ``bool(...)`` would silently invert a trade's side), and so are the
names the tickers, klines, avgPrice, mark price, liquidations and USD-M partial depth
carry (symbol, interval, order type and status: :func:`json_str`, so ``"s": null`` or
a list is malformed, not a model whose symbol is ``None``; the typed frame parsers of
``wire_market`` refuse them too).

Payload keys follow PROTOCOL.md §A1.4 (Spot) and §B (USD-M); the same parser serves
both venues wherever the payloads agree (futures add keys we do not need, such as ``T``).

Event time: ``bookTicker`` (Spot) and Spot partial depth carry no event time at all.
Their models get ``event_time=0``, meaning "the venue did not say"; use ``received_at``
for timing. We do not substitute the local receive time, because ``event_time`` is
documented as the exchange's clock and mixing clocks would make latency maths lie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

# MALFORMED, model_builder, parse_levels and raise_malformed are re-exported: other
# modules (user stream, Bybit REST/private) import them from here.
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_flag,
    json_str,
    model_builder,
    opt_decimal,
    parse_levels,
    raise_malformed,
    to_decimal,
)
from rxconnector.models import (
    AvgPrice,
    BookTicker,
    DepthUpdate,
    Kline,
    Level,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Side,
    Ticker,
    Trade,
)

__all__ = [
    "MALFORMED",
    "model_builder",
    "parse_agg_trade",
    "parse_avg_price",
    "parse_book_ticker",
    "parse_depth_update",
    "parse_force_order",
    "parse_futures_partial_depth",
    "parse_kline",
    "parse_levels",
    "parse_mark_price",
    "parse_mini_ticker",
    "parse_partial_depth",
    "parse_ticker",
    "parse_trade",
    "partial_depth_parser",
    "raise_malformed",
]

_SIDES: Final[dict[str, Side]] = {"BUY": "buy", "SELL": "sell"}


def _order_side(value: Any) -> Side:
    side = _SIDES.get(value)
    if side is None:
        raise ValueError(f"unknown side {value!r}, expected BUY or SELL")
    return side


#: The models the parsers build, through :func:`model_builder` (hot path).
_AvgPrice: Final = model_builder(AvgPrice)
_BookTicker: Final = model_builder(BookTicker)
_DepthUpdate: Final = model_builder(DepthUpdate)
_Kline: Final = model_builder(Kline)
_Liquidation: Final = model_builder(Liquidation)
_MarkPrice: Final = model_builder(MarkPrice)
_MiniTicker: Final = model_builder(MiniTicker)
_OrderBook: Final = model_builder(OrderBook)
_Ticker: Final = model_builder(Ticker)
_Trade: Final = model_builder(Trade)


# --------------------------------------------------------------------------- tickers


def parse_ticker(payload: Any, received_at: float) -> Ticker:
    """``24hrTicker`` (``<symbol>@ticker``) → :class:`Ticker`.

    USD-M's 24hrTicker has no best bid/ask (``b``/``B``/``a``/``A``): those become ``None``.
    """
    try:
        D = to_decimal
        get = payload.get
        bid = get("b")
        bid_qty = get("B")
        ask = get("a")
        ask_qty = get("A")
        return _Ticker(
            symbol=json_str(payload["s"]),
            last=D(payload["c"]),
            bid=None if bid is None else D(bid),
            bid_qty=None if bid_qty is None else D(bid_qty),
            ask=None if ask is None else D(ask),
            ask_qty=None if ask_qty is None else D(ask_qty),
            open=D(payload["o"]),
            high=D(payload["h"]),
            low=D(payload["l"]),
            volume=D(payload["v"]),
            quote_volume=D(payload["q"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "24hrTicker", payload, exc)


def parse_mini_ticker(payload: Any, received_at: float) -> MiniTicker:
    """``24hrMiniTicker`` (``<symbol>@miniTicker``) → :class:`MiniTicker`."""
    try:
        D = to_decimal
        return _MiniTicker(
            symbol=json_str(payload["s"]),
            close=D(payload["c"]),
            open=D(payload["o"]),
            high=D(payload["h"]),
            low=D(payload["l"]),
            volume=D(payload["v"]),
            quote_volume=D(payload["q"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "24hrMiniTicker", payload, exc)


def parse_book_ticker(payload: Any, received_at: float) -> BookTicker:
    """``<symbol>@bookTicker`` → :class:`BookTicker`.

    Spot's payload has no ``E``: ``event_time`` is 0 there (see the module docstring);
    USD-M's has one and it is used.
    """
    try:
        D = to_decimal
        return _BookTicker(
            symbol=payload["s"],
            bid=D(payload["b"]),
            bid_qty=D(payload["B"]),
            ask=D(payload["a"]),
            ask_qty=D(payload["A"]),
            update_id=int(payload["u"]),
            event_time=int(payload.get("E", 0)),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "bookTicker", payload, exc)


def parse_avg_price(payload: Any, received_at: float) -> AvgPrice:
    """``avgPrice`` (``<symbol>@avgPrice``, Spot only) → :class:`AvgPrice`."""
    try:
        return _AvgPrice(
            symbol=json_str(payload["s"]),
            interval=json_str(payload["i"]),
            price=to_decimal(payload["w"]),
            last_trade_time=int(payload["T"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "avgPrice", payload, exc)


# --------------------------------------------------------------------------- trades


def parse_trade(payload: Any, received_at: float) -> Trade:
    """``trade`` (``<symbol>@trade``) → :class:`Trade`.

    ``side`` is the taker's side: ``m`` true means the buyer was the maker, so the
    aggressor sold.
    """
    try:
        return _Trade(
            symbol=payload["s"],
            trade_id=int(payload["t"]),
            price=to_decimal(payload["p"]),
            quantity=to_decimal(payload["q"]),
            side="sell" if json_flag(payload["m"]) else "buy",
            time=int(payload["T"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "trade", payload, exc)


def parse_agg_trade(payload: Any, received_at: float) -> Trade:
    """``aggTrade`` (Spot and USD-M) → :class:`Trade` with ``trade_id`` = aggregate id.

    ``first_trade_id``/``last_trade_id`` are the plain trade ids it aggregates; ``side``
    as in :func:`parse_trade`.
    """
    try:
        return _Trade(
            symbol=payload["s"],
            trade_id=int(payload["a"]),
            price=to_decimal(payload["p"]),
            quantity=to_decimal(payload["q"]),
            side="sell" if json_flag(payload["m"]) else "buy",
            time=int(payload["T"]),
            event_time=int(payload["E"]),
            received_at=received_at,
            first_trade_id=int(payload["f"]),
            last_trade_id=int(payload["l"]),
        )
    except MALFORMED as exc:
        raise_malformed("binance", "aggTrade", payload, exc)


# --------------------------------------------------------------------------- klines


def parse_kline(payload: Any, received_at: float) -> Kline:
    """``kline`` (``<symbol>@kline_<interval>``) → :class:`Kline`; ``closed`` is ``k.x``."""
    try:
        D = to_decimal
        k = payload["k"]
        return _Kline(
            symbol=json_str(payload["s"]),
            interval=json_str(k["i"]),
            open_time=int(k["t"]),
            close_time=int(k["T"]),
            open=D(k["o"]),
            high=D(k["h"]),
            low=D(k["l"]),
            close=D(k["c"]),
            volume=D(k["v"]),
            quote_volume=D(k["q"]),
            trades=int(k["n"]),
            closed=json_flag(k["x"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "kline", payload, exc)


# --------------------------------------------------------------------------- depth


def parse_depth_update(payload: Any, received_at: float) -> DepthUpdate:
    """``depthUpdate`` (diff depth) → :class:`DepthUpdate`.

    ``U``/``u`` become first/final update id. USD-M adds ``pu`` (the previous event's
    ``u``), kept as ``prev_final_update_id`` because the futures book checks continuity
    with it (PROTOCOL.md §B); on Spot it is ``None``.
    """
    try:
        pu = payload.get("pu")
        return _DepthUpdate(
            symbol=payload["s"],
            first_update_id=int(payload["U"]),
            final_update_id=int(payload["u"]),
            bids=parse_levels(payload["b"]),
            asks=parse_levels(payload["a"]),
            event_time=int(payload["E"]),
            received_at=received_at,
            prev_final_update_id=None if pu is None else int(pu),
        )
    except MALFORMED as exc:
        raise_malformed("binance", "depthUpdate", payload, exc)


def _best_first(levels: tuple[Level, ...], descending: bool) -> tuple[Level, ...]:
    """Put the best level first.

    Binance documents bids high→low, but its USD-M partial-depth example lists them
    low→high; comparing the ends costs O(1) and makes ``OrderBook.best_bid`` right
    either way. (Partial books are already sorted, one way or the other.)
    """
    if len(levels) > 1 and (levels[0][0] < levels[-1][0]) == descending:
        return levels[::-1]
    return levels


def parse_partial_depth(payload: Any, received_at: float, symbol: str) -> OrderBook:
    """Spot partial depth (``<symbol>@depth<N>[@100ms]``) → :class:`OrderBook`.

    The payload has no symbol and no event time (PROTOCOL.md §A1.4): ``symbol`` comes
    from the feed (see :func:`partial_depth_parser`), ``event_time`` is 0.
    """
    try:
        return _OrderBook(
            symbol=symbol,
            bids=_best_first(parse_levels(payload["bids"]), descending=True),
            asks=_best_first(parse_levels(payload["asks"]), descending=False),
            update_id=int(payload["lastUpdateId"]),
            event_time=0,
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "partial depth", payload, exc)


def parse_futures_partial_depth(payload: Any, received_at: float) -> OrderBook:
    """USD-M partial depth → :class:`OrderBook`.

    Unlike Spot, USD-M sends partial books in the ``depthUpdate`` shape (``E``, ``s``,
    ``u``, ``b``, ``a``; Binance USD-M docs "Partial Book Depth Streams"), so the symbol
    and event time are in the payload; ``update_id`` is ``u``.
    """
    try:
        return _OrderBook(
            symbol=json_str(payload["s"]),
            bids=_best_first(parse_levels(payload["b"]), descending=True),
            asks=_best_first(parse_levels(payload["a"]), descending=False),
            update_id=int(payload["u"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "futures partial depth", payload, exc)


def partial_depth_parser(symbol: str) -> Callable[[Any, float], OrderBook]:
    """A Spot partial-depth parser bound to ``symbol`` (the payload does not name it)."""

    def parse(payload: Any, received_at: float) -> OrderBook:
        return parse_partial_depth(payload, received_at, symbol)

    return parse


# --------------------------------------------------------------------------- USD-M only


def _opt_time(value: Any) -> int | None:
    if value is None or value == "" or value == 0:
        return None
    return int(value)


def parse_mark_price(payload: Any, received_at: float) -> MarkPrice:
    """``markPriceUpdate`` (``<symbol>@markPrice[@1s]``) → :class:`MarkPrice`.

    ``i`` index, ``P`` estimated settle price, ``r`` funding rate, ``T`` next funding
    time. Delivery contracts have no funding: an empty rate or a zero time become
    ``None`` instead of a fake zero.
    """
    try:
        get = payload.get
        return _MarkPrice(
            symbol=json_str(payload["s"]),
            mark_price=to_decimal(payload["p"]),
            index_price=opt_decimal(get("i")),
            estimated_settle_price=opt_decimal(get("P")),
            funding_rate=opt_decimal(get("r")),
            next_funding_time=_opt_time(get("T")),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "markPriceUpdate", payload, exc)


def parse_force_order(payload: Any, received_at: float) -> Liquidation:
    """``forceOrder`` (``<symbol>@forceOrder``) → :class:`Liquidation`.

    ``side`` is the liquidation order's side: ``SELL`` closes a long position.
    """
    try:
        o = payload["o"]
        return _Liquidation(
            symbol=json_str(o["s"]),
            side=_order_side(o["S"]),
            order_type=json_str(o["o"]),
            price=to_decimal(o["p"]),
            quantity=to_decimal(o["q"]),
            average_price=opt_decimal(o.get("ap")),
            status=json_str(o["X"]),
            time=int(o["T"]),
            event_time=int(payload["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "forceOrder", payload, exc)
