"""Normalized, immutable market and account models.

Long module: every public model in one file, so a user reading the API finds all of
them side by side; each class is only fields and docstrings.

Every model is a frozen, slotted attrs class: cheap to build on the hot path, hashable,
safe to share between subscribers (nobody can mutate what another subscriber sees).
Prices and quantities are :class:`~decimal.Decimal` (parsed from the exchange's strings,
never through float). Times are integers in milliseconds since the epoch:
``event_time`` is the exchange's, ``received_at`` is when our socket got the frame
(local clock, float ms), so ``received_at - event_time`` is the feed's latency.

The same model describes the same thing on every venue: a pipeline written against
``Ticker`` runs unchanged on Binance Spot, Binance USD-M and Bybit.
"""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

import attrs

__all__ = [
    "AccountEvent",
    "AvgPrice",
    "Balance",
    "BalanceDelta",
    "BookTicker",
    "BreakerState",
    "BreakerStats",
    "ClockOffset",
    "ConnectionEvent",
    "ConnectionState",
    "DepthUpdate",
    "Execution",
    "Kline",
    "Level",
    "Liquidation",
    "MarkPrice",
    "MiniTicker",
    "Order",
    "OrderBook",
    "OrderUpdate",
    "Position",
    "Side",
    "SymbolInfo",
    "Ticker",
    "Trade",
]

Side = Literal["buy", "sell"]
#: One price level: (price, quantity).
Level = tuple[Decimal, Decimal]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)


@attrs.frozen
class Ticker:
    """24-hour rolling ticker with the best bid/ask at the time of the update."""

    symbol: str
    last: Decimal
    bid: Decimal | None
    bid_qty: Decimal | None
    ask: Decimal | None
    ask_qty: Decimal | None
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class MiniTicker:
    """24-hour rolling OHLC and volume, without the book."""

    symbol: str
    close: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class BookTicker:
    """Best bid and ask, pushed on every change of the top of the book."""

    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int
    event_time: int
    received_at: float = 0.0

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid

    @property
    def mid(self) -> Decimal:
        return (self.ask + self.bid) / _TWO


@attrs.frozen
class Trade:
    """One trade (or one aggregate trade). ``side`` is the taker's side.

    For aggregate trades ``trade_id`` is the aggregate id and ``first_trade_id`` /
    ``last_trade_id`` the range of plain trades it covers. ``backfilled`` is True for
    trades fetched over REST to close a gap after a reconnect.
    """

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    side: Side
    time: int
    event_time: int
    received_at: float = 0.0
    first_trade_id: int | None = None
    last_trade_id: int | None = None
    backfilled: bool = False

    @property
    def notional(self) -> Decimal:
        return self.price * self.quantity


@attrs.frozen
class Kline:
    """One candle; ``closed`` is True once the interval is over and the values are final."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    closed: bool
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class AvgPrice:
    """Binance's average price over ``interval`` (e.g. ``5m``)."""

    symbol: str
    interval: str
    price: Decimal
    last_trade_time: int
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class DepthUpdate:
    """One diff-depth event: absolute quantities for changed levels (0 removes a level).

    ``first_update_id``/``final_update_id`` are Binance's ``U``/``u`` (Bybit: both ``u``);
    ``prev_final_update_id`` is USD-M's ``pu``; ``sequence`` is Bybit's ``seq``;
    ``is_snapshot`` is True for Bybit snapshot messages, which replace the book.
    """

    symbol: str
    first_update_id: int
    final_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    event_time: int
    received_at: float = 0.0
    prev_final_update_id: int | None = None
    sequence: int | None = None
    is_snapshot: bool = False


@attrs.frozen
class OrderBook:
    """An immutable view of a book: ``bids`` high→low, ``asks`` low→high, best first.

    From ``order_book()`` it is only ever emitted while consistent with the exchange
    (never during a resync, never crossed). From ``depth()`` it is the exchange's own
    partial snapshot.
    """

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    update_id: int
    event_time: int
    received_at: float = 0.0

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / _TWO

    @property
    def spread(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0][0] - self.bids[0][0]

    @property
    def is_crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])


def plain_decimal(value: Decimal | str | int) -> Decimal:
    """``value`` without the padding zeros of its JSON (``0.01000000`` → ``0.01``,
    ``100000.00000000`` → ``100000``, ``0E-8`` → ``0``) and never in exponent form for
    whole numbers (``normalize()`` alone turns ``100`` into ``1E+2``, and
    ``price.quantize(Decimal('1E+2'))`` is not a price)."""
    number = Decimal(value).normalize()
    if number == 0:
        return Decimal(0)
    exponent = number.as_tuple().exponent
    return number.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else number


def _increment(value: Decimal | str | int | None) -> Decimal | None:
    return None if value is None else plain_decimal(value)


def _multiple(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).quantize(_ONE, rounding=rounding) * step


@attrs.frozen
class SymbolInfo:
    """Trading rules of a symbol. ``None`` means the venue sets no such rule.

    Every increment and bound is normalized (``Decimal('0.01')``, not the wire's
    ``0.01000000``), so ``price.quantize(info.tick_size)`` writes a price with the
    tick's decimals. That is rounding to the tick only when the tick is a power of ten
    (``0.01``); for any tick (``0.5``, ``5``) and to stay within the bounds, use
    :meth:`round_price` and :meth:`round_quantity`.
    """

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal | None = attrs.field(default=None, converter=_increment)
    min_price: Decimal | None = attrs.field(default=None, converter=_increment)
    max_price: Decimal | None = attrs.field(default=None, converter=_increment)
    step_size: Decimal | None = attrs.field(default=None, converter=_increment)
    min_qty: Decimal | None = attrs.field(default=None, converter=_increment)
    max_qty: Decimal | None = attrs.field(default=None, converter=_increment)
    min_notional: Decimal | None = attrs.field(default=None, converter=_increment)
    max_notional: Decimal | None = attrs.field(default=None, converter=_increment)

    def round_price(self, price: Decimal | str | int, side: str) -> Decimal:
        """The valid limit price nearest to ``price`` that is no worse for ``side``.

        A ``buy`` rounds down to the tick and a ``sell`` rounds up, so the order never
        pays more (or receives less) than asked; then the result is moved into
        ``[min_price, max_price]`` (a price below ``min_price`` becomes ``min_price``).
        A buy below the first tick becomes the smallest valid price. The result passes
        the price check every order goes through before it is sent (``PRICE_FILTER``);
        the notional check also needs the quantity. The result carries the tick's
        decimals (``60005.40`` for a tick of ``0.01``).

        Raises:
            ValueError: ``side`` is not buy/sell, or ``price`` is not > 0.
        """
        number = Decimal(price)
        rounding = _rounding_for(side)
        if not number > 0:
            raise ValueError(f"{self.symbol}: price must be > 0, got {number}")
        tick, low, high = self.tick_size, self.min_price, self.max_price
        if tick is not None:
            number = _multiple(number, tick, rounding)
            if high is not None and number > high:
                number = _multiple(high, tick, ROUND_FLOOR)
            if number <= 0:
                number = tick
        if low is not None and number < low:
            number = low
        if high is not None and number > high:
            number = high
        return number

    def round_quantity(self, quantity: Decimal | str | int) -> Decimal:
        """The valid quantity nearest to ``quantity`` from below: rounded down to the
        step (an order never trades more than asked), then moved into
        ``[min_qty, max_qty]`` — a quantity under ``min_qty`` becomes ``min_qty`` (the
        smallest the exchange accepts; check you can afford it) and one over ``max_qty``
        becomes ``max_qty``. Without ``min_qty`` a quantity under one step becomes one
        step. The result passes the quantity check (``LOT_SIZE``); the notional check
        (``min_notional``) also needs the price. Results carry the increment's
        decimals (``9000.00000`` for a step of ``0.00001``), like :meth:`round_price`.

        Raises:
            ValueError: ``quantity`` is not > 0.
        """
        number = Decimal(quantity)
        if not number > 0:
            raise ValueError(f"{self.symbol}: quantity must be > 0, got {number}")
        step, low, high = self.step_size, self.min_qty, self.max_qty
        if high is not None and number > high:
            number = high
        if step is not None:
            number = _multiple(number, step, ROUND_FLOOR)
            if number <= 0:
                number = step
        if low is not None and number < low:
            number = low if step is None else _multiple(low, step, ROUND_CEILING)
        return number


def _rounding_for(side: str) -> str:
    text = side.lower() if isinstance(side, str) else side
    if text == "buy":
        return ROUND_FLOOR
    if text == "sell":
        return ROUND_CEILING
    raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")


@attrs.frozen
class Balance:
    """Free and locked amount of one asset.

    ``reconciled`` is True for a balance fetched over REST after a private-stream
    reconnect because it changed while the stream was down.

    ``free`` and ``locked`` are what the account OWNS (net of any debt), so ``free``
    never exceeds what is owned minus what is locked. Where the venue lends, the debt
    shows separately: ``borrowed`` (principal) and ``interest`` (accrued, unpaid);
    ``equity`` is the venue's own valuation of the asset (wallet + unrealised PnL -
    debt) where it reports one, else ``None``. The mapping per venue and account type
    is in the README ("Balances, debt and positions").
    """

    asset: str
    free: Decimal
    locked: Decimal
    event_time: int = 0
    received_at: float = 0.0
    reconciled: bool = False
    borrowed: Decimal = _ZERO
    interest: Decimal = _ZERO
    equity: Decimal | None = None

    @property
    def debt(self) -> Decimal:
        """What is owed on this asset: ``borrowed + interest``."""
        return self.borrowed + self.interest

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@attrs.frozen
class Order:
    """An order as the REST API reports it."""

    symbol: str
    order_id: str
    client_order_id: str
    side: Side
    type: str
    status: str
    price: Decimal
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    time_in_force: str | None
    time: int
    update_time: int = 0


@attrs.frozen
class OrderUpdate:
    """An order event from the private stream (or from reconciliation after a reconnect)."""

    symbol: str
    order_id: str
    client_order_id: str
    side: Side
    type: str
    status: str
    execution_type: str
    price: Decimal
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    last_fill_price: Decimal
    last_fill_quantity: Decimal
    fee: Decimal
    fee_asset: str | None
    event_time: int
    received_at: float = 0.0
    reconciled: bool = False


@attrs.frozen
class Execution:
    """One fill of one of our orders.

    ``fee`` is ``None`` when the venue's message does not say it (Bybit
    ``execution.fast``): unknown, not zero.
    """

    symbol: str
    order_id: str
    client_order_id: str
    execution_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal | None
    fee_asset: str | None
    is_maker: bool
    time: int
    received_at: float = 0.0


@attrs.frozen
class Position:
    """A derivatives position (Binance USD-M, Bybit linear/inverse).

    ``side`` is ``long``, ``short`` or ``flat`` and ``size`` is never negative
    (:attr:`signed_size` is negative for a short). ``position_side`` tells one position
    of a symbol from the other in hedge mode: ``both`` (one-way mode), ``long`` or
    ``short``. ``margin_mode`` is ``cross`` or ``isolated`` when the venue says.
    ``event_time`` is the venue's update time. ``reconciled`` is True for a position
    fetched over REST after a private-stream reconnect because it changed while the
    stream was down; a position closed during the gap is emitted with ``size`` 0.
    Fields the venue's message does not carry are ``None`` (USD-M ``ACCOUNT_UPDATE``
    has no mark price, leverage or liquidation price; REST has them).
    """

    symbol: str
    side: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    unrealised_pnl: Decimal | None
    leverage: Decimal | None
    event_time: int
    received_at: float = 0.0
    margin_mode: str | None = None
    liquidation_price: Decimal | None = None
    position_side: str = "both"
    reconciled: bool = False

    @property
    def signed_size(self) -> Decimal:
        """``size`` with the sign of the side: negative for a short."""
        return -self.size if self.side == "short" else self.size

    @property
    def key(self) -> tuple[str, str]:
        """``(symbol, position_side)``: what identifies a position of an account."""
        return (self.symbol, self.position_side)


@attrs.frozen
class MarkPrice:
    """Futures mark price with the funding rate and the next funding time."""

    symbol: str
    mark_price: Decimal
    index_price: Decimal | None
    estimated_settle_price: Decimal | None
    funding_rate: Decimal | None
    next_funding_time: int | None
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class Liquidation:
    """A forced liquidation order on a futures venue."""

    symbol: str
    side: Side
    order_type: str
    price: Decimal
    quantity: Decimal
    average_price: Decimal | None
    status: str
    time: int
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class ClockOffset:
    """One clock measurement: ``offset_ms`` = server time - local midpoint of the request.

    ``conn.now()`` = local time + ``offset_ms``. ``rtt_ms`` bounds the error.
    """

    offset_ms: float
    rtt_ms: float
    server_time: int
    measured_at: float


class BreakerState(enum.Enum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    def __repr__(self) -> str:
        return f"BreakerState.{self.name}"


@attrs.frozen
class BreakerStats:
    """Counters of a circuit breaker since it was built (or last ``reset()``)."""

    requests: int = 0
    successes: int = 0
    failures: int = 0
    rejections: int = 0
    consecutive_failures: int = 0
    last_failure_time: float | None = None
    state: BreakerState = BreakerState.CLOSED


class ConnectionState(enum.Enum):
    """What a WebSocket connection is doing."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STALE = "stale"
    ROTATING = "rotating"
    CLOSED = "closed"

    def __repr__(self) -> str:
        return f"ConnectionState.{self.name}"


@attrs.frozen
class ConnectionEvent:
    """A change of one connection's state, on ``Connector.connection_state``.

    ``attempt`` and ``delay`` (seconds) are set for ``RECONNECTING``; ``reason`` says why.
    """

    state: ConnectionState
    connection_id: str
    url: str
    time: float
    attempt: int = 0
    delay: float = 0.0
    reason: str = ""


@attrs.frozen
class BalanceDelta:
    """A change of one asset's balance, as Binance reports it besides the new totals.

    ``kind`` is ``"balance"`` (deposit, withdrawal, transfer: Binance ``balanceUpdate``)
    or ``"external_lock"`` (an amount locked, or unlocked when negative, by another
    system: ``externalLockUpdate``). ``time`` is when the change cleared. The new
    absolute amounts arrive separately as :class:`Balance` (``outboundAccountPosition``).
    """

    asset: str
    delta: Decimal
    kind: str
    time: int
    event_time: int
    received_at: float = 0.0


@attrs.frozen
class AccountEvent:
    """An account notice that is neither an order, a fill, a balance nor a position.

    ``kind``:

    * ``"margin_call"`` - the venue warns that positions are close to liquidation
      (USD-M ``MARGIN_CALL``): ``positions`` are the positions at risk (their mark price
      and unrealised PnL), ``cross_wallet_balance`` the cross wallet balance;
    * ``"leverage"`` - the leverage of ``symbol`` changed to ``leverage`` (USD-M
      ``ACCOUNT_CONFIG_UPDATE`` with ``ac``);
    * ``"account_config"`` - account-wide settings changed: ``multi_assets`` and
      ``hedge_mode`` where the event says (USD-M ``ACCOUNT_CONFIG_UPDATE`` with ``ai``).
    """

    kind: str
    event_time: int
    received_at: float = 0.0
    symbol: str | None = None
    leverage: Decimal | None = None
    positions: tuple[Position, ...] = ()
    cross_wallet_balance: Decimal | None = None
    multi_assets: bool | None = None
    hedge_mode: bool | None = None
