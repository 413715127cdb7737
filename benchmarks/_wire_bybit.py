"""Bybit v5 private topic frames read in one typed pass (measured by
``bench_decode_account.py``; not used by the library, see :mod:`_account_wire`).

The typed counterparts of the dict parsers of :mod:`.private` (``order``,
``execution`` / ``execution.fast``, ``wallet``, ``position``; categorised topics such as
``order.spot`` alike): the frame ``{"topic", "creationTime", "data": [...]}`` is decoded
with a Struct of only the fields the dict parser reads and the models are built with the
same constructors and rules (:mod:`.account_rows` for the wallet and position mapping).

The contract is :mod:`_account_wire`'s: models equal to the dict
parser's, or ``None`` (the dict parser decides). Bybit writes ``""`` for "not
applicable" in number fields (``decimal_or_zero`` / ``opt_decimal`` read it as 0 or
``None``); such a frame is not a ``Decimal`` for the Struct, so it is one of those
``None``: the dict parser reads it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec
from _account_wire import READ_FAILED, TypedReader, WireNumber, all_sane

from rxconnector.exchanges.bybit.private import ORDER_STATUS
from rxconnector.models import Balance, Execution, OrderUpdate, Position, Side

__all__ = ["READERS", "read_executions", "read_orders", "read_positions", "read_wallet"]

_SIDES: Final[dict[str, Side]] = {"Buy": "buy", "Sell": "sell"}
_EXECUTION_TYPE: Final[dict[str, str]] = {
    "NEW": "NEW",
    "PARTIALLY_FILLED": "TRADE",
    "FILLED": "TRADE",
    "CANCELED": "CANCELED",
    "REJECTED": "REJECTED",
}
_POSITION_SIDES: Final[dict[str, str]] = {"Buy": "long", "Sell": "short", "": "flat"}
_POSITION_IDX: Final[dict[int, str]] = {0: "both", 1: "long", 2: "short"}
_TRADE_MODES: Final[dict[int, str]] = {0: "cross", 1: "isolated"}
_NOT_FILLS: Final = frozenset({"Funding"})
_ZERO: Final = Decimal(0)
_UNSET: Final = msgspec.UNSET


class OrderRow(msgspec.Struct, gc=False):
    """One entry of the ``order`` topic."""

    symbol: str
    orderId: str
    orderLinkId: str
    side: str
    orderType: str
    orderStatus: str
    price: WireNumber | None
    qty: WireNumber | None
    cumExecQty: WireNumber | None
    avgPrice: WireNumber | None = None
    cumExecFee: WireNumber | None = None
    feeCurrency: str | None = None


class OrderFrame(msgspec.Struct, gc=False):
    creationTime: int
    data: list[OrderRow]


class ExecutionRow(msgspec.Struct, gc=False):
    """One entry of the ``execution`` / ``execution.fast`` topics."""

    symbol: str
    orderId: str
    orderLinkId: str
    execId: str
    side: str
    execPrice: WireNumber
    execQty: WireNumber
    isMaker: bool
    execTime: str | int
    execFee: WireNumber | msgspec.UnsetType | None = _UNSET
    execType: str | None = None
    feeCurrency: str | None = None


class ExecutionFrame(msgspec.Struct, gc=False):
    topic: str
    data: list[ExecutionRow]


class CoinRow(msgspec.Struct, gc=False):
    """One ``coin`` of a ``wallet`` account (mapping: :func:`.account_rows.coin_balance`)."""

    coin: str
    walletBalance: WireNumber | None
    locked: WireNumber | None = None
    borrowAmount: WireNumber | None = None
    equity: WireNumber | None = None
    accruedInterest: WireNumber | None = None


class WalletAccount(msgspec.Struct, gc=False):
    coin: list[CoinRow]


class WalletFrame(msgspec.Struct, gc=False):
    creationTime: int
    data: list[WalletAccount]


class PositionRow(msgspec.Struct, gc=False):
    """One entry of the ``position`` topic (mapping: :func:`.account_rows.position_row`)."""

    symbol: str
    side: str
    size: WireNumber | None
    entryPrice: WireNumber | None = None
    avgPrice: WireNumber | None = None
    markPrice: WireNumber | None = None
    unrealisedPnl: WireNumber | None = None
    leverage: WireNumber | None = None
    liqPrice: WireNumber | None = None
    tradeMode: Any = None
    positionIdx: int | None = None


class PositionFrame(msgspec.Struct, gc=False):
    creationTime: int
    data: list[PositionRow]


_decode_orders = msgspec.json.Decoder(OrderFrame).decode
_decode_executions = msgspec.json.Decoder(ExecutionFrame).decode
_decode_wallet = msgspec.json.Decoder(WalletFrame).decode
_decode_positions = msgspec.json.Decoder(PositionFrame).decode


def _or_zero(number: WireNumber | None) -> Any:
    return _ZERO if number is None else number


def _order(row: OrderRow, event_time: int, received_at: float) -> OrderUpdate | None:
    """As one entry of :func:`~.private.parse_orders`."""
    price, quantity, filled = _or_zero(row.price), _or_zero(row.qty), _or_zero(row.cumExecQty)
    average, fee = row.avgPrice, _or_zero(row.cumExecFee)
    side = _SIDES.get(row.side)
    if side is None or not all_sane((price, quantity, filled, fee)):
        return None
    if average is not None and not all_sane((average,)):
        return None
    status = ORDER_STATUS.get(row.orderStatus, row.orderStatus)
    return OrderUpdate(
        symbol=row.symbol,
        order_id=row.orderId,
        client_order_id=row.orderLinkId,
        side=side,
        type=row.orderType.upper(),
        status=status,
        execution_type=_EXECUTION_TYPE.get(status, status),
        price=price,
        quantity=quantity,
        filled_quantity=filled,
        average_price=average if average else None,
        last_fill_price=_ZERO,
        last_fill_quantity=_ZERO,
        fee=fee,
        fee_asset=row.feeCurrency or None,
        event_time=event_time,
        received_at=received_at,
    )


def read_orders(frame: Any, received_at: float) -> list[Any] | None:
    """``order`` frame → one :class:`OrderUpdate` per entry."""
    try:
        d = _decode_orders(frame)
        updates: list[Any] = []
        for row in d.data:
            update = _order(row, d.creationTime, received_at)
            if update is None:
                return None
            updates.append(update)
        return updates
    except READ_FAILED:
        return None


def _fill(row: ExecutionRow, fast: bool, received_at: float) -> Execution | None:
    """As one entry of :func:`~.private.parse_executions` (not a funding entry)."""
    fee: Any = None
    if not fast:
        if row.execFee is _UNSET:
            return None  # the regular topic must carry its fee (the dict parser says so)
        fee = _or_zero(row.execFee)
    side = _SIDES.get(row.side)
    numbers = (row.execPrice, row.execQty, *(() if fee is None else (fee,)))
    if side is None or not all_sane(numbers):
        return None
    return Execution(
        symbol=row.symbol,
        order_id=row.orderId,
        client_order_id=row.orderLinkId,
        execution_id=row.execId,
        side=side,
        price=row.execPrice,
        quantity=row.execQty,
        fee=fee,
        fee_asset=row.feeCurrency or None,
        is_maker=row.isMaker,
        time=int(row.execTime),
        received_at=received_at,
    )


def read_executions(frame: Any, received_at: float) -> list[Any] | None:
    """``execution`` / ``execution.fast`` frame → one :class:`Execution` per fill."""
    try:
        d = _decode_executions(frame)
        fast = d.topic.startswith("execution.fast")
        fills: list[Any] = []
        for row in d.data:
            if row.execType in _NOT_FILLS:
                continue
            fill = _fill(row, fast, received_at)
            if fill is None:
                return None
            fills.append(fill)
        return fills
    except READ_FAILED:
        return None


def _balance(coin: CoinRow, event_time: int, received_at: float) -> Balance | None:
    """As :func:`~.account_rows.coin_balance`."""
    wallet, locked = _or_zero(coin.walletBalance), _or_zero(coin.locked)
    borrowed, interest = _or_zero(coin.borrowAmount), _or_zero(coin.accruedInterest)
    equity = coin.equity
    numbers = (wallet, locked, borrowed, interest, *(() if equity is None else (equity,)))
    if not all_sane(numbers):
        return None
    owned = equity if equity is not None else wallet - borrowed
    return Balance(
        asset=coin.coin,
        free=max(min(wallet, owned) - locked, _ZERO),
        locked=locked,
        event_time=event_time,
        received_at=received_at,
        borrowed=borrowed,
        interest=interest,
        equity=equity,
    )


def read_wallet(frame: Any, received_at: float) -> list[Any] | None:
    """``wallet`` frame → one :class:`Balance` per coin of every account listed."""
    try:
        d = _decode_wallet(frame)
        balances: list[Any] = []
        for account in d.data:
            for coin in account.coin:
                balance = _balance(coin, d.creationTime, received_at)
                if balance is None:
                    return None
                balances.append(balance)
        return balances
    except READ_FAILED:
        return None


def _position(row: PositionRow, event_time: int, received_at: float) -> Position | None:
    """As :func:`~.account_rows.position_row`."""
    entry = row.entryPrice
    if entry is None:
        entry = row.avgPrice
    size, entry_price = _or_zero(row.size), _or_zero(entry)
    optional = (row.markPrice, row.unrealisedPnl, row.leverage, row.liqPrice)
    side = _POSITION_SIDES.get(row.side)
    if side is None or not all_sane((size, entry_price, *(n for n in optional if n is not None))):
        return None
    mode, liquidation = row.tradeMode, row.liqPrice
    return Position(
        symbol=row.symbol,
        side=side,
        size=size,
        entry_price=entry_price,
        mark_price=row.markPrice,
        unrealised_pnl=row.unrealisedPnl,
        leverage=row.leverage,
        event_time=event_time,
        received_at=received_at,
        margin_mode=_TRADE_MODES.get(mode) if type(mode) is int else None,
        liquidation_price=liquidation if liquidation else None,
        position_side=_POSITION_IDX.get(row.positionIdx or 0, "both"),
    )


def read_positions(frame: Any, received_at: float) -> list[Any] | None:
    """``position`` frame → one :class:`Position` per entry."""
    try:
        d = _decode_positions(frame)
        positions: list[Any] = []
        for row in d.data:
            position = _position(row, d.creationTime, received_at)
            if position is None:
                return None
            positions.append(position)
        return positions
    except READ_FAILED:
        return None


#: Topic family (the topic up to its first ``.``) → its typed reader.
READERS: Final[dict[str, TypedReader]] = {
    "order": read_orders,
    "execution": read_executions,
    "wallet": read_wallet,
    "position": read_positions,
}
