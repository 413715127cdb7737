"""Where :class:`~rxconnector.exchanges.bybit.parsers.BybitBookMerger` keeps its levels:
the compiled book core when it runs, else a plain dict per side.

Measured (``benchmarks/bench_decode_bybit_book.py``, RESULTS.md "Typed decoding on Bybit
order books (seventh session)"): the merger shows the top ``levels`` after every message,
which a dict can only give by sorting the whole side each time; the compiled ``CBook``
keeps its sides sorted (the top is a slice) and applies packed wire levels without a
``Decimal`` per level, many times faster on every ``orderbook.*`` depth. The pure-Python
:class:`~rxconnector.exchanges.book.LocalBook` is not: its per-snapshot setup made the
``orderbook.1`` feed (a snapshot per message) about 5x slower than the dict, so without
the compiled core the dict stays.

Both obey the same rules (pinned by ``tests/exchanges/test_bybit_wire_book.py``): a
snapshot replaces both sides, a size of zero deletes a level (in a snapshot too, where
it names no level), any other size sets it, the top is best first.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol

from rxconnector.exchanges._compiled import cbook
from rxconnector.models import Level

__all__ = ["DictBook", "MergedBook", "new_merged_book"]


class MergedBook(Protocol):
    """The part of the local book's interface a merger uses."""

    def clear(self) -> None: ...
    def load_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None: ...
    def apply(self, bids: Any, asks: Any) -> None: ...
    def top_bids(self, n: int) -> tuple[Level, ...]: ...
    def top_asks(self, n: int) -> tuple[Level, ...]: ...


class DictBook:
    """One dict per side, sorted when read: cheapest without the compiled core for the
    books a merger keeps (small, or replaced by every message)."""

    __slots__ = ("_asks", "_bids")

    def __init__(self) -> None:
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}

    def clear(self) -> None:
        self._bids = {}
        self._asks = {}

    def load_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self._bids = _snapshot_side(bids)
        self._asks = _snapshot_side(asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        _apply_side(self._bids, bids)
        _apply_side(self._asks, asks)

    def top_bids(self, n: int) -> tuple[Level, ...]:
        return tuple(sorted(self._bids.items(), reverse=True)[:n])

    def top_asks(self, n: int) -> tuple[Level, ...]:
        return tuple(sorted(self._asks.items())[:n])


def _snapshot_side(levels: Iterable[Level]) -> dict[Decimal, Decimal]:
    """A price given twice keeps its last size; a zero size leaves no level."""
    side = dict(levels)
    if not all(side.values()):
        side = {price: qty for price, qty in side.items() if qty}
    return side


def _apply_side(side: dict[Decimal, Decimal], levels: Iterable[Level]) -> None:
    for price, qty in levels:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)


def new_merged_book() -> MergedBook:
    """An empty book for one merger: ``CBook`` with the compiled core, else a
    :class:`DictBook` (see the module docstring for why not ``LocalBook``)."""
    if cbook is not None:
        book: MergedBook = cbook.CBook()
        return book
    return DictBook()
