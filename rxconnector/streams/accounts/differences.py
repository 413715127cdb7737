"""What changed while nobody listened: REST answers compared with what subscribers saw.

Pure functions (no I/O, no Rx) that reconciliation (:mod:`.reconcile`) and the view of
the account (:mod:`.view`) use after a re-subscription. Each leaves alone what a live
event touched since the reconnect (the event is newer than the REST answer) and what
is no news (never seen and empty).

Positions, for example:

.. marble::
    :alt: position reconciliation

    seen:   BTC long 1 @100, ETH short 2 @10
    REST:   BTC long 3 @101                        (ETH is gone: closed in the gap)
    emit:   BTC long 3 @101 (reconciled), ETH flat 0 (reconciled)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

import attrs

from rxconnector.exchanges.account_protocol import TERMINAL_STATUSES
from rxconnector.models import Balance, Order, OrderUpdate, Position

__all__ = [
    "balance_changes",
    "fill_price",
    "order_is_news",
    "position_changes",
    "reconciled_update",
    "with_last_fill",
]

_ZERO: Final = Decimal(0)

PositionKey = tuple[str, str]


def position_changes(
    known: Mapping[PositionKey, Position],
    touched: set[PositionKey],
    listed: Iterable[Position],
    received_at: float,
) -> list[Position]:
    """The positions to emit (``reconciled=True``) after REST listed ``listed``: each
    that differs from ``known`` in side, size or entry price, and each known open one
    REST no longer lists, flat with size 0."""
    seen: set[PositionKey] = set()
    changed: list[Position] = []
    for position in listed:
        key = position.key
        seen.add(key)
        if key in touched:
            continue  # a live event already said something newer
        before = known.get(key)
        if before is None:
            if position.size == _ZERO:
                continue
        elif (
            before.size == position.size
            and before.side == position.side
            and before.entry_price == position.entry_price
        ):
            continue
        changed.append(attrs.evolve(position, received_at=received_at, reconciled=True))
    for key, before in known.items():
        if key not in seen and key not in touched and before.size != _ZERO:
            changed.append(
                attrs.evolve(
                    before,
                    side="flat",
                    size=_ZERO,
                    entry_price=_ZERO,
                    unrealised_pnl=_ZERO,
                    received_at=received_at,
                    reconciled=True,
                )
            )
    return changed


def balance_changes(
    known: Mapping[str, Balance],
    touched: set[str],
    listed: Iterable[Balance],
    received_at: float,
) -> list[Balance]:
    """The balances to emit (``reconciled=True``) after REST listed ``listed``: each
    whose free or locked amount differs from ``known`` (a new non-zero one included),
    and each known non-empty one REST no longer lists, at zero."""
    seen: set[str] = set()
    changed: list[Balance] = []
    for balance in listed:
        asset = balance.asset
        seen.add(asset)
        if asset in touched:
            continue
        before = known.get(asset)
        if before is None:
            if balance.free == _ZERO and balance.locked == _ZERO:
                continue
        elif before.free == balance.free and before.locked == balance.locked:
            continue
        changed.append(attrs.evolve(balance, received_at=received_at, reconciled=True))
    for asset, before in known.items():
        if asset not in seen and asset not in touched and before.total != _ZERO:
            changed.append(
                Balance(asset, _ZERO, _ZERO, before.event_time, received_at, reconciled=True)
            )
    return changed


def order_is_news(order: Order, status: str, known: OrderUpdate | None) -> bool:
    """Whether REST's ``order`` (canonical ``status``) tells subscribers, who last saw
    ``known``, something new: not when nothing differs, nor when REST is behind."""
    if known is None:
        return True
    if (
        known.status == status
        and known.filled_quantity == order.filled_quantity
        and known.price == order.price
        and known.quantity == order.quantity
    ):
        return False
    return not (
        order.filled_quantity < known.filled_quantity
        or (known.status in TERMINAL_STATUSES and status not in TERMINAL_STATUSES)
    )


def with_last_fill(update: OrderUpdate, known: OrderUpdate | None) -> OrderUpdate:
    """Derive ``last_fill_*`` from the change of the cumulative filled quantity (for
    venues whose order events do not carry the last fill)."""
    before = known.filled_quantity if known is not None else _ZERO
    delta = update.filled_quantity - before
    if delta <= _ZERO:
        return update
    price = fill_price(update, known, delta)
    return attrs.evolve(
        update, last_fill_quantity=delta, last_fill_price=price if price is not None else _ZERO
    )


def fill_price(
    update: OrderUpdate | Order, known: OrderUpdate | None, delta: Decimal
) -> Decimal | None:
    """Average price of the ``delta`` filled between ``known`` and ``update``, from the
    two average prices (value now - value before) / delta; ``None`` when unknown."""
    average = update.average_price
    if average is None:
        return None
    if known is None or known.filled_quantity == _ZERO:
        return average
    if known.average_price is None:
        return None
    value = average * update.filled_quantity - known.average_price * known.filled_quantity
    return value / delta


def _execution_type(status: str, known: OrderUpdate | None) -> str:
    """What happened to an order that filled nothing more while the stream was down."""
    if status in ("CANCELED", "EXPIRED", "REJECTED"):
        return status
    if status in TERMINAL_STATUSES:
        return "EXPIRED" if status == "EXPIRED_IN_MATCH" else "TRADE"
    return "NEW" if known is None else "REPLACED"


def reconciled_update(
    order: Order, status: str, known: OrderUpdate | None, received_at: float
) -> OrderUpdate:
    """The OrderUpdate that tells a subscriber what happened to ``order`` while the
    stream was down (see :meth:`~.account_streams.AccountStreams.orders`)."""
    before = known.filled_quantity if known is not None else _ZERO
    delta = order.filled_quantity - before
    if delta > _ZERO:
        execution_type = "TRADE"
        price = fill_price(order, known, delta) or _ZERO
    else:
        delta, price = _ZERO, _ZERO
        execution_type = _execution_type(status, known)
    return OrderUpdate(
        symbol=order.symbol,
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        side=order.side,
        type=order.type,
        status=status,
        execution_type=execution_type,
        price=order.price,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        last_fill_price=price,
        last_fill_quantity=delta,
        fee=_ZERO,
        fee_asset=None,
        event_time=order.update_time or order.time,
        received_at=received_at,
        reconciled=True,
    )
