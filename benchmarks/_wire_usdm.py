"""Binance USD-M user data frames read in one typed pass (measured by
``bench_decode_account.py``; not used by the library, see :mod:`_account_wire`).

The typed counterparts of the dict parsers of :mod:`.futures_user_stream` for the
frequent events: ``ORDER_TRADE_UPDATE`` (:class:`OrderUpdate`, plus the
:class:`Execution` of a ``TRADE``), ``TRADE_LITE`` (:class:`Execution` without the fee)
and ``ACCOUNT_UPDATE`` (Balances, then Positions). The frames are unwrapped
(``{"e": ..., "E": ...}``). ``MARGIN_CALL``, ``ACCOUNT_CONFIG_UPDATE``,
``listenKeyExpired`` and unknown kinds have no reader: they are rare, and the dict
parser reads them.

The contract is :mod:`_account_wire`'s: models equal to the dict
parser's, or ``None`` (the dict parser decides). ``E`` sent as a string (seen on
``listenKeyExpired``) is such a ``None``: the dict parser reads it with ``int()``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal

import msgspec
from _account_wire import READ_FAILED, TypedReader, WireNumber, all_sane

from rxconnector.exchanges.binance.futures_user_stream import usdm_balance
from rxconnector.models import Balance, Execution, OrderUpdate, Position, Side

__all__ = [
    "READERS",
    "read_account_update",
    "read_order_trade_update",
    "read_trade_lite",
]

_SIDES: Final[dict[str, Side]] = {"BUY": "buy", "SELL": "sell"}
_ZERO: Final = Decimal(0)


class OrderData(msgspec.Struct, gc=False):
    """``ORDER_TRADE_UPDATE.o``: what the order update and the fill read."""

    s: str
    c: str
    S: str
    o: str
    x: str
    X: str
    i: int
    p: WireNumber
    q: WireNumber
    ap: WireNumber
    z: WireNumber
    L: WireNumber
    l: WireNumber  # noqa: E741 - the wire's name
    T: int
    t: int
    m: bool
    n: WireNumber | None = None
    N: str | None = None


class OrderTradeUpdate(msgspec.Struct, gc=False):
    e: Literal["ORDER_TRADE_UPDATE"]
    E: int
    o: OrderData


class TradeLite(msgspec.Struct, gc=False):
    """``TRADE_LITE``: the fill, before the order update, without the fee."""

    e: Literal["TRADE_LITE"]
    s: str
    c: str
    S: str
    i: int
    t: int
    L: WireNumber
    l: WireNumber  # noqa: E741 - the wire's name
    m: bool
    T: int


class BalanceRow(msgspec.Struct, gc=False):
    """One margin asset of ``ACCOUNT_UPDATE.a.B``."""

    a: str
    wb: WireNumber
    cw: WireNumber


class PositionRow(msgspec.Struct, gc=False):
    """One position of ``ACCOUNT_UPDATE.a.P`` (``pa`` signed)."""

    s: str
    pa: WireNumber
    ep: WireNumber | None = None
    mp: WireNumber | None = None
    up: WireNumber | None = None
    mt: str | None = None
    ps: str | None = None


class UpdateData(msgspec.Struct, gc=False):
    B: list[BalanceRow] | None = None
    P: list[PositionRow] | None = None


class AccountUpdate(msgspec.Struct, gc=False):
    e: Literal["ACCOUNT_UPDATE"]
    E: int
    a: UpdateData


_decode_order = msgspec.json.Decoder(OrderTradeUpdate).decode
_decode_trade_lite = msgspec.json.Decoder(TradeLite).decode
_decode_account = msgspec.json.Decoder(AccountUpdate).decode


def _order_models(o: OrderData, event_time: int, received_at: float) -> list[Any] | None:
    """As :func:`~.futures_user_stream.parse_order_trade_update` + ``parse_order_execution``."""
    fee = o.n if o.n is not None else _ZERO
    average, price, quantity = o.ap, o.L, o.l
    if not all_sane((o.p, o.q, average, o.z, price, quantity, fee)):
        return None
    side = _SIDES.get(o.S)
    if side is None:
        return None
    order_id, fee_asset = str(o.i), o.N or None
    update = OrderUpdate(
        symbol=o.s,
        order_id=order_id,
        client_order_id=o.c,
        side=side,
        type=o.o,
        status=o.X,
        execution_type=o.x,
        price=o.p,
        quantity=o.q,
        filled_quantity=o.z,
        average_price=average if average else None,
        last_fill_price=price,
        last_fill_quantity=quantity,
        fee=fee,
        fee_asset=fee_asset,
        event_time=event_time,
        received_at=received_at,
    )
    if o.x != "TRADE":
        return [update]
    fill = Execution(
        symbol=o.s,
        order_id=order_id,
        client_order_id=o.c,
        execution_id=str(o.t),
        side=side,
        price=price,
        quantity=quantity,
        fee=fee,
        fee_asset=fee_asset,
        is_maker=o.m,
        time=o.T,
        received_at=received_at,
    )
    return [update, fill]


def read_order_trade_update(frame: Any, received_at: float) -> list[Any] | None:
    """``ORDER_TRADE_UPDATE`` → ``[OrderUpdate]`` or ``[OrderUpdate, Execution]``."""
    try:
        d = _decode_order(frame)
        return _order_models(d.o, d.E, received_at)
    except READ_FAILED:
        return None


def read_trade_lite(frame: Any, received_at: float) -> list[Any] | None:
    """``TRADE_LITE`` → ``[Execution]`` (``fee`` and ``fee_asset`` unknown: ``None``)."""
    try:
        d = _decode_trade_lite(frame)
        side = _SIDES.get(d.S)
        if side is None or not all_sane((d.L, d.l)):
            return None
        fill = Execution(
            symbol=d.s,
            order_id=str(d.i),
            client_order_id=d.c,
            execution_id=str(d.t),
            side=side,
            price=d.L,
            quantity=d.l,
            fee=None,
            fee_asset=None,
            is_maker=d.m,
            time=d.T,
            received_at=received_at,
        )
        return [fill]
    except READ_FAILED:
        return None


def _position(row: PositionRow, event_time: int, received_at: float) -> Position:
    """As :func:`~.futures_user_stream.position_from_row` (numbers already checked)."""
    amount = row.pa
    side = "long" if amount > 0 else "short" if amount < 0 else "flat"
    return Position(
        symbol=row.s,
        side=side,
        size=abs(amount),
        entry_price=row.ep if row.ep is not None else _ZERO,
        mark_price=row.mp,
        unrealised_pnl=row.up,
        leverage=None,
        event_time=event_time,
        received_at=received_at,
        margin_mode=row.mt or None,
        liquidation_price=None,
        position_side=(row.ps or "BOTH").lower(),
        reconciled=False,
    )


def _row_numbers(rows: list[PositionRow]) -> list[WireNumber]:
    return [n for r in rows for n in (r.pa, r.ep, r.mp, r.up) if n is not None]


def read_account_update(frame: Any, received_at: float) -> list[Any] | None:
    """``ACCOUNT_UPDATE`` → one :class:`Balance` per asset of ``B``, then one
    :class:`Position` per entry of ``P`` (mapped by :func:`~.futures_user_stream.
    usdm_balance` and as ``position_from_row``)."""
    try:
        d = _decode_account(frame)
        balances, positions = d.a.B or (), d.a.P or ()
        numbers = [n for row in balances for n in (row.wb, row.cw)]
        if not (all_sane(numbers) and all_sane(_row_numbers(list(positions)))):
            return None
        event_time = d.E
        models: list[Balance | Position] = [
            usdm_balance(row.a, row.wb, row.cw, event_time, received_at) for row in balances
        ]
        models.extend(_position(row, event_time, received_at) for row in positions)
        return list(models)
    except READ_FAILED:
        return None


#: Event kind (``e``) → its typed reader; a kind not listed is read by the dict parser.
READERS: Final[dict[str, TypedReader]] = {
    "ORDER_TRADE_UPDATE": read_order_trade_update,
    "TRADE_LITE": read_trade_lite,
    "ACCOUNT_UPDATE": read_account_update,
}
