"""Fixed-point helpers: integer ticks/steps to the exchange's decimal strings.

Binance writes prices and quantities as strings with 8 decimals (``"4.00000200"``);
formatting integers directly keeps that exact and avoids ``Decimal`` work per message.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["scaled", "to_decimal"]


def scaled(value: int, exp: int, decimals: int = 8) -> str:
    """``value * 10**-exp`` as a string with ``max(decimals, exp)`` decimals.

    Digits are placed by slicing the integer's decimal string (one ``str`` and a pad)
    rather than by ``divmod`` and a zero-padded format: two prices per trade frame make
    this one of the simulator's hottest functions (0.78 -> 0.41 µs measured).
    """
    d = decimals if decimals > exp else exp
    v = value * 10 ** (d - exp) if d != exp else value
    sign = ""
    if v < 0:
        sign, v = "-", -v
    digits = str(v).rjust(d + 1, "0")
    return f"{sign}{digits[:-d]}.{digits[-d:]}" if d else f"{sign}{digits}"


def to_decimal(value: int, exp: int) -> Decimal:
    """``value * 10**-exp`` as an exact Decimal."""
    return Decimal(value).scaleb(-exp)
