"""Account model builders with sensible defaults: balances, orders, executions, positions.

The same conventions as :mod:`rxconnector.testing.factories` (the market-data builders):
the values a test is about are positional, everything else is a keyword with a neutral
default, numbers become ``Decimal``, and nothing looks at a clock.
"""

from __future__ import annotations

from decimal import Decimal

from rxconnector.models import (
    Balance,
    Execution,
    Order,
    OrderUpdate,
    Position,
)
from rxconnector.testing.factories import Num, dec, dec_or_none, side_of

_ZERO = Decimal(0)

__all__ = ["make_balance", "make_execution", "make_order", "make_order_update", "make_position"]


def make_balance(
    asset: str = "USDT",
    free: Num = 1000,
    locked: Num = 0,
    *,
    event_time: int = 0,
    received_at: float = 0.0,
) -> Balance:
    """Free and locked amount of ``asset``."""
    return Balance(
        asset=asset,
        free=dec(free),
        locked=dec(locked),
        event_time=event_time,
        received_at=received_at,
    )


def make_order(
    symbol: str = "BTCUSDT",
    side: str = "buy",
    type: str = "LIMIT",  # same name as the model field
    quantity: Num | None = 1,
    price: Num | None = None,
    *,
    time_in_force: str | None = None,
    client_order_id: str | None = None,
    order_id: str = "1",
    status: str = "NEW",
    filled_quantity: Num | None = None,
    average_price: Num | None = None,
    time: int = 0,
    update_time: int = 0,
) -> Order:
    """An order as the REST API reports it.

    The first seven parameters are exactly ``place_order``'s, and ``None`` means "use
    the default" for each, so a scripted exchange can answer with
    ``lambda **request: make_order(status="FILLED", **request)``. A ``FILLED`` order
    defaults to fully filled at its price; any other status to nothing filled.
    """
    qty = _ZERO if quantity is None else dec(quantity)
    px = _ZERO if price is None else dec(price)
    filled = status.upper() == "FILLED"
    if filled_quantity is None:
        filled_quantity = qty if filled else _ZERO
    if average_price is None and filled and px:
        average_price = px
    return Order(
        symbol=symbol,
        order_id=order_id,
        client_order_id=f"fake-{order_id}" if client_order_id is None else client_order_id,
        side=side_of(side),
        type=type,
        status=status,
        price=px,
        quantity=qty,
        filled_quantity=dec(filled_quantity),
        average_price=dec_or_none(average_price),
        time_in_force=time_in_force,
        time=time,
        update_time=update_time or time,
    )


def make_order_update(
    symbol: str = "BTCUSDT",
    side: str = "buy",
    type: str = "LIMIT",  # same name as the model field
    quantity: Num = 1,
    price: Num = 100,
    *,
    status: str = "NEW",
    execution_type: str | None = None,
    order_id: str = "1",
    client_order_id: str | None = None,
    filled_quantity: Num = 0,
    average_price: Num | None = None,
    last_fill_price: Num = 0,
    last_fill_quantity: Num = 0,
    fee: Num = 0,
    fee_asset: str | None = None,
    event_time: int = 0,
    received_at: float = 0.0,
    reconciled: bool = False,
) -> OrderUpdate:
    """An order event from the private stream.

    ``execution_type`` defaults to ``TRADE`` when something was filled in this event
    (``last_fill_quantity`` > 0) and to ``NEW`` otherwise.
    """
    fill_qty = dec(last_fill_quantity)
    if execution_type is None:
        execution_type = "TRADE" if fill_qty > 0 else "NEW"
    return OrderUpdate(
        symbol=symbol,
        order_id=order_id,
        client_order_id=f"fake-{order_id}" if client_order_id is None else client_order_id,
        side=side_of(side),
        type=type,
        status=status,
        execution_type=execution_type,
        price=dec(price),
        quantity=dec(quantity),
        filled_quantity=dec(filled_quantity),
        average_price=dec_or_none(average_price),
        last_fill_price=dec(last_fill_price),
        last_fill_quantity=fill_qty,
        fee=dec(fee),
        fee_asset=fee_asset,
        event_time=event_time,
        received_at=received_at,
        reconciled=reconciled,
    )


def make_execution(
    symbol: str = "BTCUSDT",
    side: str = "buy",
    price: Num = 100,
    quantity: Num = 1,
    *,
    order_id: str = "1",
    client_order_id: str | None = None,
    execution_id: str = "1",
    fee: Num = 0,
    fee_asset: str | None = None,
    is_maker: bool = False,
    time: int = 0,
    received_at: float = 0.0,
) -> Execution:
    """One fill of one of our orders."""
    return Execution(
        symbol=symbol,
        order_id=order_id,
        client_order_id=f"fake-{order_id}" if client_order_id is None else client_order_id,
        execution_id=execution_id,
        side=side_of(side),
        price=dec(price),
        quantity=dec(quantity),
        fee=dec(fee),
        fee_asset=fee_asset,
        is_maker=is_maker,
        time=time,
        received_at=received_at,
    )


def make_position(
    symbol: str = "BTCUSDT",
    size: Num = 1,
    entry_price: Num = 100,
    *,
    side: str = "long",
    mark_price: Num | None = None,
    unrealised_pnl: Num | None = None,
    leverage: Num | None = None,
    event_time: int = 0,
    received_at: float = 0.0,
) -> Position:
    """A derivatives position."""
    return Position(
        symbol=symbol,
        side=side,
        size=dec(size),
        entry_price=dec(entry_price),
        mark_price=dec_or_none(mark_price),
        unrealised_pnl=dec_or_none(unrealised_pnl),
        leverage=dec_or_none(leverage),
        event_time=event_time,
        received_at=received_at,
    )
