"""Binance wire readers for the hot path: only what the local order book needs.

:func:`parse_book_diff` reads a ``depthUpdate`` (Spot and USD-M, PROTOCOL.md §A1.4/§B)
into a :class:`~rxconnector.exchanges._levels.BookDiff`: the ids and times as
:func:`~rxconnector.exchanges.binance.parsers.parse_depth_update` reads them, the levels as
exact float keys and the exchange's strings (no ``Decimal`` per level; see
``exchanges/_levels.py`` for why that is exact). The public ``diff_depth()`` feed keeps
using ``parse_depth_update``; ``order_book()`` uses this one.
"""

from __future__ import annotations

from typing import Any

from rxconnector.exchanges._levels import BookDiff, wire_side
from rxconnector.exchanges._parsing import MALFORMED, raise_malformed

__all__ = ["parse_book_diff"]


def parse_book_diff(payload: Any, received_at: float) -> BookDiff:
    """``depthUpdate`` → :class:`BookDiff`; a malformed one raises :class:`ParseError`."""
    try:
        pu = payload.get("pu")
        symbol = payload["s"]
        if symbol.__class__ is not str:
            raise TypeError(f"symbol must be a string, got {type(symbol).__name__}")
        return BookDiff(
            symbol,
            int(payload["U"]),
            int(payload["u"]),
            wire_side(payload["b"], ask=False),
            wire_side(payload["a"], ask=True),
            int(payload["E"]),
            received_at,
            None if pu is None else int(pu),
        )
    except MALFORMED as exc:
        raise_malformed("binance", "depthUpdate", payload, exc)
