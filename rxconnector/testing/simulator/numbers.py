"""Fixed-point helpers: integer ticks/steps to the exchange's decimal strings.

Binance writes prices and quantities as strings with 8 decimals (``"4.00000200"``);
formatting integers directly keeps that exact and avoids ``Decimal`` work per message.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["scaled", "to_decimal"]


def scaled(value: int, exp: int, decimals: int = 8) -> str:
    """``value * 10**-exp`` as a string with ``max(decimals, exp)`` decimals."""
    d = max(decimals, exp)
    v = value * 10 ** (d - exp)
    sign = "-" if v < 0 else ""
    q, r = divmod(abs(v), 10**d)
    return f"{sign}{q}.{r:0{d}d}" if d else f"{sign}{q}"


def to_decimal(value: int, exp: int) -> Decimal:
    """``value * 10**-exp`` as an exact Decimal."""
    return Decimal(value).scaleb(-exp)
