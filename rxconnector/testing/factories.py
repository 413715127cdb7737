"""Model builders with sensible defaults, for tests and notebooks.

Building a :class:`~rxconnector.models.Ticker` by hand means thirteen fields, most of which
a test does not care about. Each ``make_*`` function here takes the one or two values a
test is about as positional arguments and everything else as keywords with a neutral
default, so a test reads as what it checks::

    make_ticker("BTCUSDT", 101.5)
    make_trade(price="100.10", quantity=2, side="sell", trade_id=7)
    make_order(status="FILLED", quantity=1, price=100)

Prices and quantities accept ``Decimal``, ``int``, ``str`` or ``float`` and are always
stored as ``Decimal`` (a float goes through its shortest ``repr``, so ``0.1`` becomes
``Decimal("0.1")``, not the binary approximation). The builders never look at a clock:
times default to 0 unless given, which keeps them deterministic; the marble builders in
:mod:`rxconnector.testing.marbles` stamp virtual time for you.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from rxconnector.models import (
    AvgPrice,
    BookTicker,
    ClockOffset,
    ConnectionEvent,
    ConnectionState,
    DepthUpdate,
    Kline,
    Level,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Side,
    SymbolInfo,
    Ticker,
    Trade,
)

__all__ = [
    "Num",
    "dec",
    "interval_ms",
    "levels",
    "make_avg_price",
    "make_book_ticker",
    "make_clock_offset",
    "make_connection_event",
    "make_depth_update",
    "make_kline",
    "make_liquidation",
    "make_mark_price",
    "make_mini_ticker",
    "make_order_book",
    "make_symbol_info",
    "make_ticker",
    "make_trade",
]

#: Anything the builders accept where the model wants a ``Decimal``.
Num = Decimal | int | float | str
#: A price level as a test writes it: ``(price, quantity)``.
LevelSpec = tuple[Num, Num]

_TWO = Decimal(2)
_ZERO = Decimal(0)
_SIDES = ("buy", "sell")
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "EUR", "TRY", "BTC", "ETH", "BNB")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def dec(value: Num) -> Decimal:
    """``value`` as a ``Decimal``; floats go through ``repr`` so ``0.1`` stays ``0.1``."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got the bool {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    raise TypeError(f"expected Decimal, int, float or str, got {type(value).__name__}")


def dec_or_none(value: Num | None) -> Decimal | None:
    return None if value is None else dec(value)


def side_of(side: str) -> Side:
    lowered = side.lower()
    if lowered == "buy":
        return "buy"
    if lowered == "sell":
        return "sell"
    raise ValueError(f"side must be one of {_SIDES}, got {side!r}")


def levels(specs: Iterable[LevelSpec], *, descending: bool) -> tuple[Level, ...]:
    """Price levels as ``Decimal`` pairs, sorted best first (``descending`` for bids)."""
    converted = [(dec(price), dec(qty)) for price, qty in specs]
    return tuple(sorted(converted, key=lambda level: level[0], reverse=descending))


def interval_ms(interval: str) -> int:
    """Length of a kline interval such as ``1m``, ``4h`` or ``1d`` in milliseconds.

    ``1M`` (a calendar month) has no fixed length; it is counted as 30 days, which is
    all a test default needs.
    """
    count, unit = interval[:-1], interval[-1:]
    if not count.isdigit():
        raise ValueError(f"not a kline interval: {interval!r}")
    if unit == "M":
        return int(count) * 30 * _UNIT_MS["d"]
    if unit not in _UNIT_MS:
        raise ValueError(f"not a kline interval: {interval!r}")
    return int(count) * _UNIT_MS[unit]


def make_ticker(
    symbol: str = "BTCUSDT",
    last: Num = 100,
    *,
    spread: Num = "0.02",
    bid: Num | None = None,
    ask: Num | None = None,
    bid_qty: Num = 1,
    ask_qty: Num = 1,
    open: Num | None = None,  # same name as the model field
    high: Num | None = None,
    low: Num | None = None,
    volume: Num = 0,
    quote_volume: Num = 0,
    event_time: int = 0,
    received_at: float = 0.0,
) -> Ticker:
    """A ticker at ``last``; bid and ask sit ``spread / 2`` below and above it.

    ``open``/``high``/``low`` default to ``last`` (a flat day) and are widened to
    include ``last`` when given, so the ticker is always self-consistent.
    """
    price = dec(last)
    half = dec(spread) / _TWO
    open_ = price if open is None else dec(open)
    return Ticker(
        symbol=symbol,
        last=price,
        bid=price - half if bid is None else dec(bid),
        bid_qty=dec(bid_qty),
        ask=price + half if ask is None else dec(ask),
        ask_qty=dec(ask_qty),
        open=open_,
        high=max(price, open_, price if high is None else dec(high)),
        low=min(price, open_, price if low is None else dec(low)),
        volume=dec(volume),
        quote_volume=dec(quote_volume),
        event_time=event_time,
        received_at=received_at,
    )


def make_mini_ticker(
    symbol: str = "BTCUSDT",
    close: Num = 100,
    *,
    open: Num | None = None,  # same name as the model field
    high: Num | None = None,
    low: Num | None = None,
    volume: Num = 0,
    quote_volume: Num = 0,
    event_time: int = 0,
    received_at: float = 0.0,
) -> MiniTicker:
    """A mini ticker closing at ``close``; OHLC defaults to a flat day at ``close``."""
    price = dec(close)
    open_ = price if open is None else dec(open)
    return MiniTicker(
        symbol=symbol,
        close=price,
        open=open_,
        high=max(price, open_, price if high is None else dec(high)),
        low=min(price, open_, price if low is None else dec(low)),
        volume=dec(volume),
        quote_volume=dec(quote_volume),
        event_time=event_time,
        received_at=received_at,
    )


def make_book_ticker(
    symbol: str = "BTCUSDT",
    bid: Num = "99.99",
    ask: Num = "100.01",
    *,
    bid_qty: Num = 1,
    ask_qty: Num = 1,
    update_id: int = 1,
    event_time: int = 0,
    received_at: float = 0.0,
) -> BookTicker:
    """The best bid and ask of a book."""
    return BookTicker(
        symbol=symbol,
        bid=dec(bid),
        bid_qty=dec(bid_qty),
        ask=dec(ask),
        ask_qty=dec(ask_qty),
        update_id=update_id,
        event_time=event_time,
        received_at=received_at,
    )


def make_trade(
    symbol: str = "BTCUSDT",
    price: Num = 100,
    quantity: Num = 1,
    side: str = "buy",
    *,
    trade_id: int = 1,
    time: int | None = None,
    event_time: int = 0,
    received_at: float = 0.0,
    first_trade_id: int | None = None,
    last_trade_id: int | None = None,
    backfilled: bool = False,
) -> Trade:
    """One trade; ``side`` is the taker's, ``time`` defaults to ``event_time``."""
    return Trade(
        symbol=symbol,
        trade_id=trade_id,
        price=dec(price),
        quantity=dec(quantity),
        side=side_of(side),
        time=event_time if time is None else time,
        event_time=event_time,
        received_at=received_at,
        first_trade_id=first_trade_id,
        last_trade_id=last_trade_id,
        backfilled=backfilled,
    )


def make_kline(
    symbol: str = "BTCUSDT",
    interval: str = "1m",
    *,
    open: Num = 100,  # same name as the model field
    high: Num | None = None,
    low: Num | None = None,
    close: Num | None = None,
    volume: Num = 0,
    quote_volume: Num = 0,
    trades: int = 0,
    open_time: int = 0,
    close_time: int | None = None,
    closed: bool = True,
    event_time: int | None = None,
    received_at: float = 0.0,
) -> Kline:
    """A candle; ``close`` defaults to ``open``, high/low cover open and close.

    ``close_time`` defaults to the last millisecond of the interval (the exchanges'
    convention) and ``event_time`` to ``close_time``.
    """
    open_ = dec(open)
    close_ = open_ if close is None else dec(close)
    end = open_time + interval_ms(interval) - 1 if close_time is None else close_time
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=end,
        open=open_,
        high=max(open_, close_, open_ if high is None else dec(high)),
        low=min(open_, close_, open_ if low is None else dec(low)),
        close=close_,
        volume=dec(volume),
        quote_volume=dec(quote_volume),
        trades=trades,
        closed=closed,
        event_time=end if event_time is None else event_time,
        received_at=received_at,
    )


def make_avg_price(
    symbol: str = "BTCUSDT",
    price: Num = 100,
    *,
    interval: str = "5m",
    last_trade_time: int = 0,
    event_time: int = 0,
    received_at: float = 0.0,
) -> AvgPrice:
    """Binance's average price over ``interval``."""
    return AvgPrice(
        symbol=symbol,
        interval=interval,
        price=dec(price),
        last_trade_time=last_trade_time,
        event_time=event_time,
        received_at=received_at,
    )


def make_order_book(
    symbol: str = "BTCUSDT",
    bids: Iterable[LevelSpec] = (("99.99", 1),),
    asks: Iterable[LevelSpec] = (("100.01", 1),),
    *,
    update_id: int = 1,
    event_time: int = 0,
    received_at: float = 0.0,
) -> OrderBook:
    """A book from ``(price, quantity)`` pairs in any order; sorted best first here."""
    return OrderBook(
        symbol=symbol,
        bids=levels(bids, descending=True),
        asks=levels(asks, descending=False),
        update_id=update_id,
        event_time=event_time,
        received_at=received_at,
    )


def make_depth_update(
    symbol: str = "BTCUSDT",
    bids: Iterable[LevelSpec] = (),
    asks: Iterable[LevelSpec] = (),
    *,
    first_update_id: int = 1,
    final_update_id: int | None = None,
    prev_final_update_id: int | None = None,
    sequence: int | None = None,
    is_snapshot: bool = False,
    event_time: int = 0,
    received_at: float = 0.0,
) -> DepthUpdate:
    """A diff-depth event; ``final_update_id`` defaults to ``first_update_id``."""
    return DepthUpdate(
        symbol=symbol,
        first_update_id=first_update_id,
        final_update_id=first_update_id if final_update_id is None else final_update_id,
        bids=levels(bids, descending=True),
        asks=levels(asks, descending=False),
        event_time=event_time,
        received_at=received_at,
        prev_final_update_id=prev_final_update_id,
        sequence=sequence,
        is_snapshot=is_snapshot,
    )


def make_mark_price(
    symbol: str = "BTCUSDT",
    mark_price: Num = 100,
    *,
    index_price: Num | None = None,
    estimated_settle_price: Num | None = None,
    funding_rate: Num | None = None,
    next_funding_time: int | None = None,
    event_time: int = 0,
    received_at: float = 0.0,
) -> MarkPrice:
    """A futures mark price."""
    return MarkPrice(
        symbol=symbol,
        mark_price=dec(mark_price),
        index_price=dec_or_none(index_price),
        estimated_settle_price=dec_or_none(estimated_settle_price),
        funding_rate=dec_or_none(funding_rate),
        next_funding_time=next_funding_time,
        event_time=event_time,
        received_at=received_at,
    )


def make_liquidation(
    symbol: str = "BTCUSDT",
    side: str = "sell",
    price: Num = 100,
    quantity: Num = 1,
    *,
    order_type: str = "LIMIT",
    average_price: Num | None = None,
    status: str = "FILLED",
    time: int | None = None,
    event_time: int = 0,
    received_at: float = 0.0,
) -> Liquidation:
    """A forced liquidation; ``time`` defaults to ``event_time``."""
    return Liquidation(
        symbol=symbol,
        side=side_of(side),
        order_type=order_type,
        price=dec(price),
        quantity=dec(quantity),
        average_price=dec_or_none(average_price),
        status=status,
        time=event_time if time is None else time,
        event_time=event_time,
        received_at=received_at,
    )


def make_symbol_info(
    symbol: str = "BTCUSDT",
    *,
    status: str = "TRADING",
    base_asset: str | None = None,
    quote_asset: str | None = None,
    tick_size: Num | None = "0.01",
    min_price: Num | None = None,
    max_price: Num | None = None,
    step_size: Num | None = "0.00001",
    min_qty: Num | None = "0.00001",
    max_qty: Num | None = None,
    min_notional: Num | None = 5,
    max_notional: Num | None = None,
) -> SymbolInfo:
    """Trading rules of ``symbol``; base/quote are split off a known quote suffix."""
    if base_asset is None or quote_asset is None:
        quote = next((q for q in _QUOTES if symbol.endswith(q) and symbol != q), None)
        if quote is None:
            raise ValueError(f"cannot split {symbol!r}: pass base_asset and quote_asset")
        base_asset = symbol[: -len(quote)] if base_asset is None else base_asset
        quote_asset = quote if quote_asset is None else quote_asset
    return SymbolInfo(
        symbol=symbol,
        status=status,
        base_asset=base_asset,
        quote_asset=quote_asset,
        tick_size=dec_or_none(tick_size),
        min_price=dec_or_none(min_price),
        max_price=dec_or_none(max_price),
        step_size=dec_or_none(step_size),
        min_qty=dec_or_none(min_qty),
        max_qty=dec_or_none(max_qty),
        min_notional=dec_or_none(min_notional),
        max_notional=dec_or_none(max_notional),
    )


def make_clock_offset(
    offset_ms: float = 0.0,
    *,
    rtt_ms: float = 1.0,
    server_time: int = 0,
    measured_at: float = 0.0,
) -> ClockOffset:
    """One clock measurement: the exchange is ``offset_ms`` ahead of the local clock."""
    return ClockOffset(
        offset_ms=offset_ms, rtt_ms=rtt_ms, server_time=server_time, measured_at=measured_at
    )


def make_connection_event(
    state: ConnectionState = ConnectionState.CONNECTED,
    *,
    connection_id: str = "fake-1",
    url: str = "wss://fake.invalid/ws",
    time: float = 0.0,
    attempt: int = 0,
    delay: float = 0.0,
    reason: str = "",
) -> ConnectionEvent:
    """A connection state change, as ``Connector.connection_state`` emits it."""
    return ConnectionEvent(
        state=state,
        connection_id=connection_id,
        url=url,
        time=time,
        attempt=attempt,
        delay=delay,
        reason=reason,
    )
