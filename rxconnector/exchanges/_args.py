"""Argument checks every venue's request builders share (pure, no I/O).

A REST method validates its arguments *at the call*, before anything is sent, and a
bad one raises ``ValueError`` naming the argument; these are the checks that do not
depend on the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Final

from rxconnector.nonce import NonceGenerator

__all__ = ["ACK_STATUS", "default_client_order_ids", "int_in", "positive_decimal"]

#: Status given to an order whose answer was only an acknowledgement (Binance
#: ``newOrderRespType=ACK``, every Bybit order create).
ACK_STATUS: Final = "ACK"


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
