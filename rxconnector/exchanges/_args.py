"""Argument checks every venue's request builders share (pure, no I/O).

A REST method validates its arguments *at the call*, before anything is sent, and a
bad one raises ``ValueError`` naming the argument; these are the checks that do not
depend on the venue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from rxconnector.nonce import NonceGenerator

__all__ = [
    "ACK_STATUS",
    "OrderArgs",
    "default_client_order_ids",
    "int_in",
    "positive_decimal",
]

#: Status given to an order whose answer was only an acknowledgement (Binance
#: ``newOrderRespType=ACK``, every Bybit order create).
ACK_STATUS: Final = "ACK"


#: A quantity or price as callers give it.
Amount = Decimal | str | int | None


@attrs.frozen
class OrderArgs:
    """An order as the caller described it, before a venue turns it into wire params
    (the arguments every venue's ``place_order`` / ``test_order`` share)."""

    symbol: str
    side: str
    type: str
    quantity: Amount = None
    price: Amount = None
    time_in_force: str | None = None
    client_order_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def int_in(name: str, value: int, low: int, high: int) -> int:
    """``value`` when it is an integer (not a bool) in ``low..high``, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def positive_decimal(name: str, value: Decimal | str | int | None) -> Decimal | None:
    """``value`` as a finite, positive Decimal (``None`` stays ``None``), else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def default_client_order_ids() -> Callable[[], str]:
    """Unique, increasing ids from :class:`rxconnector.nonce.NonceGenerator` (``rxc...``)."""
    return NonceGenerator().next_str
