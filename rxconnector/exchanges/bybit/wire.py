"""Bybit wire readers for the hot path: only what the local order book needs.

:func:`parse_book_diff` reads an ``orderbook.{depth}.{symbol}`` snapshot or delta
(PROTOCOL.md §C1) into a :class:`~rxconnector.exchanges._levels.BookDiff`: ids, sequence
and the snapshot flag as :func:`~rxconnector.exchanges.bybit.parsers.parse_depth` reads
them, the levels as exact float keys and the exchange's strings (no ``Decimal`` per
level; see ``exchanges/_levels.py``). The public ``diff_depth()`` feed keeps using
``parse_depth``; ``order_book()`` uses this one.
"""

from __future__ import annotations

from typing import Any

from rxconnector.exchanges._levels import BookDiff, wire_side
from rxconnector.exchanges._parsing import MALFORMED, raise_malformed

__all__ = ["parse_book_diff"]


def parse_book_diff(message: Any, received_at: float) -> BookDiff:
    """``orderbook`` message → :class:`BookDiff`; a malformed one raises ``ParseError``."""
    try:
        data = message["data"]
        symbol = data["s"]
        if symbol.__class__ is not str:
            raise TypeError(f"symbol must be a string, got {type(symbol).__name__}")
        u = int(data["u"])
        return BookDiff(
            symbol,
            u,
            u,
            wire_side(data["b"], ask=False),
            wire_side(data["a"], ask=True),
            int(message["ts"]),
            received_at,
            None,
            int(data["seq"]),
            message["type"] == "snapshot" or u == 1,
        )
    except MALFORMED as exc:
        raise_malformed("bybit", "orderbook", message, exc)
