"""The simulator's orders, fills and positions, and the trading rules they obey.

Plain data shared by the matching engine (:mod:`.matching`) and the venue dialects that
turn requests into :class:`OrderRequest` and :class:`OrderEvent` into wire events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs

from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.numbers import to_decimal

__all__ = [
    "CLOSED_STATUSES",
    "FEE_RATE",
    "LEVERAGE",
    "MAX_DECIMALS",
    "MAX_OPEN_ORDERS",
    "MIN_NOTIONAL",
    "OPEN_STATUSES",
    "Fill",
    "OrderEvent",
    "OrderRequest",
    "PositionEvent",
    "Rejection",
    "Side",
    "SimOrder",
    "SimPosition",
    "SymbolRules",
]

#: Maker and taker fee of every account (Binance's default 0.1 %, ``makerCommission=10``).
FEE_RATE = Decimal("0.001")
#: Binance ``NOTIONAL.minNotional`` of the simulator's ``exchangeInfo``.
MIN_NOTIONAL = Decimal(5)
#: Binance ``MAX_NUM_ORDERS`` of the simulator's ``exchangeInfo``.
MAX_OPEN_ORDERS = 200
#: Most decimals a price or quantity may be written with (Binance's asset precision).
MAX_DECIMALS = 8

#: Leverage of every linear position (what Bybit's ``position`` messages show).
LEVERAGE = Decimal(10)

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
CLOSED_STATUSES = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED"})

Side = Literal["BUY", "SELL"]
_ZERO = Decimal(0)
_E8 = Decimal("1e-8")


class Rejection(Exception):
    """The engine refused a request; dialects map ``reason`` to their error codes.

    ``reason``: ``"unknown_symbol"``, ``"unsupported"``, ``"precision"``, ``"filter"``,
    ``"duplicate_client_id"``, ``"would_take"``, ``"insufficient_balance"``,
    ``"unknown_order"``, ``"position_side"`` (hedge mode needs LONG/SHORT, one-way mode
    BOTH), ``"reduce_only"`` (the order would not only reduce a position),
    ``"position_mode"`` (the mode cannot change with positions or orders open).
    ``detail`` names the filter (``"PRICE_FILTER"``,
    ``"LOT_SIZE"``, ``"MARKET_LOT_SIZE"``, ``"NOTIONAL"``, ``"MAX_NUM_ORDERS"``) or the
    parameter; ``bound`` is ``"min"``, ``"max"`` or ``"step"`` for range filters.
    """

    def __init__(self, reason: str, detail: str = "", bound: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.bound = reason, detail, bound


@attrs.frozen
class SymbolRules:
    """The trading rules of one symbol, in exchange units and in integer units."""

    symbol: str
    base_asset: str
    quote_asset: str
    price_exp: int
    qty_exp: int
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal

    @classmethod
    def of(cls, m: SymbolMarket) -> SymbolRules:
        pe, qe = m.price_exp, m.qty_exp
        return cls(
            symbol=m.symbol,
            base_asset=m.spec.base_asset,
            quote_asset=m.spec.quote_asset,
            price_exp=pe,
            qty_exp=qe,
            tick_size=to_decimal(1, pe),
            step_size=to_decimal(1, qe),
            min_price=to_decimal(1, pe),
            max_price=to_decimal(m.initial_ticks * 100, pe),
            min_qty=to_decimal(1, qe),
            max_qty=to_decimal(m.lot * 10_000, qe),
            market_max_qty=to_decimal(m.lot * 1_000, qe),
            min_notional=MIN_NOTIONAL,
        )


@attrs.frozen
class OrderRequest:
    """A new order as the engine understands it (dialects translate their params).

    ``quantity`` is in the base asset; a MARKET BUY may give ``quote_quantity``
    instead (Binance ``quoteOrderQty``, Bybit spot Market Buy in quote coin).
    ``client_ids_unique``: ``"open"`` - a client id may not repeat among OPEN orders
    (Binance); ``"all"`` - among all orders (Bybit ``orderLinkId``); empty ids are
    never checked. ``post_only_rejects``: a post-only order that would take is
    refused (Binance ``LIMIT_MAKER``) instead of being accepted and cancelled (Bybit).
    """

    venue: str
    symbol: str
    side: Side
    type: str  # LIMIT | MARKET
    quantity: Decimal | None
    price: Decimal | None = None
    quote_quantity: Decimal | None = None
    time_in_force: str = "GTC"  # GTC | IOC | FOK
    post_only: bool = False
    post_only_rejects: bool = True
    client_order_id: str = ""
    client_ids_unique: Literal["open", "all"] = "open"
    category: str = "spot"
    #: what the venue calls the order type (Binance ``LIMIT_MAKER``); default ``type``
    label: str = ""
    #: linear only: may only reduce the (one-way) position
    reduce_only: bool = False
    #: linear only: ``BOTH`` (one-way mode), ``LONG`` or ``SHORT`` (hedge mode)
    position_side: str = "BOTH"


@attrs.frozen
class Fill:
    """One execution of one of our orders."""

    trade_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    time: int


@attrs.define(eq=False)
class SimOrder:
    """An order of an account; mutated by the engine as it fills or ends."""

    id: int
    venue: str
    api_key: str
    symbol: str
    side: Side
    type: str
    time_in_force: str
    post_only: bool
    category: str
    rules: SymbolRules = attrs.field(repr=False)
    price_ticks: int  # 0 for MARKET
    qty_steps: int  # for a quote-quantity MARKET order: what it filled, once done
    quote_quantity: Decimal | None
    client_order_id: str
    created: int
    updated: int
    status: str = "NEW"
    filled_steps: int = 0
    cum_quote: Decimal = _ZERO
    cum_fee: Decimal = _ZERO
    #: what is still locked for this order, in ``reserve_asset``
    reserve: Decimal = _ZERO
    reserve_asset: str = ""
    label: str = ""
    fills: list[Fill] = attrs.field(factory=list, repr=False)
    #: why it ended when not filled: ``""``, ``"CANCELED"``, ``"EXPIRED"``, ``"POST_ONLY"``
    end_reason: str = ""
    reduce_only: bool = False
    position_side: str = "BOTH"

    @property
    def price(self) -> Decimal:
        return to_decimal(self.price_ticks, self.rules.price_exp)

    @property
    def quantity(self) -> Decimal:
        return to_decimal(self.qty_steps, self.rules.qty_exp)

    @property
    def filled(self) -> Decimal:
        return to_decimal(self.filled_steps, self.rules.qty_exp)

    @property
    def remaining(self) -> Decimal:
        return to_decimal(self.qty_steps - self.filled_steps, self.rules.qty_exp)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def average_price(self) -> Decimal | None:
        return self.cum_quote / self.filled if self.filled_steps else None

    @property
    def fee_asset(self) -> str:
        rules = self.rules
        linear = self.category == "linear"
        return rules.base_asset if self.side == "BUY" and not linear else rules.quote_asset


@attrs.define(eq=False)
class SimPosition:
    """A linear position of one account in one symbol and position side (``BOTH`` in
    one-way mode, ``LONG`` / ``SHORT`` in hedge mode)."""

    api_key: str
    symbol: str
    position_side: str = "BOTH"
    #: signed: positive long, negative short, 0 flat
    size: Decimal = _ZERO
    #: what the open size cost (sum of price x quantity; the average entry price basis)
    cost: Decimal = _ZERO
    #: initial margin locked for it (quote asset)
    margin: Decimal = _ZERO
    realized: Decimal = _ZERO
    #: realized by the latest fill
    last_realized: Decimal = _ZERO
    created: int = 0
    updated: int = 0

    @property
    def side(self) -> str:
        return "BUY" if self.size > 0 else "SELL" if self.size < 0 else ""

    @property
    def entry_price(self) -> Decimal:
        """Average entry price (8 decimals), 0 when flat."""
        return (self.cost / abs(self.size)).quantize(_E8) if self.size else _ZERO


@attrs.frozen
class OrderEvent:
    """An order changed: ``kind`` is ``NEW``, ``TRADE`` (with ``fill``), ``CANCELED``
    or ``EXPIRED``. Delivered synchronously, so ``order`` shows the state right after
    this change (cumulative quantities include ``fill`` and nothing later).
    ``cancel_client_order_id`` is the id a Binance cancel request gave itself."""

    order: SimOrder
    kind: str
    time: int
    fill: Fill | None = None
    cancel_client_order_id: str = ""


@attrs.frozen
class PositionEvent:
    """A linear order of the position's account and symbol changed (delivered right
    after its :class:`OrderEvent`, synchronously: ``position`` is the current state)."""

    position: SimPosition
    time: int
