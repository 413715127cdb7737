"""The catalog of order-book sync rules: one name per documented venue procedure.

``venues.py`` registers one :class:`BookRule` per venue (``Venue.book_rule``); the
venue-neutral operator ``streams/orderbook.py`` asks the rule for its machine
(:meth:`BookRule.new_sync`) and snapshot size (:meth:`BookRule.snapshot_limit`) and never
asks which venue it serves. Adding a procedure: write its :class:`~rxconnector.
exchanges.book_sync.BookSync` subclass and :class:`~rxconnector.exchanges.book_sync.
SyncRule` in ``exchanges/<venue>/book_sync.py``, then one member here (or register that
``SyncRule`` itself: ``Venue.book_rule`` takes any ``BookSyncRule``). Pure: no I/O.
"""

from __future__ import annotations

import enum
from typing import Final

from rxconnector.exchanges.binance import book_sync as binance
from rxconnector.exchanges.book_sync import BookSync, BookSyncRule, SyncRule
from rxconnector.exchanges.bybit import book_sync as bybit

__all__ = ["BookRule", "make_sync", "snapshot_limit_for"]


class BookRule(enum.Enum):
    """Which documented procedure keeps the book in sync."""

    BINANCE_SPOT = "binance-spot"  # PROTOCOL.md §A1.5: U/u, snapshot lastUpdateId
    BINANCE_USDM = "binance-usdm"  # PROTOCOL.md §B: pu == previous u
    BYBIT_DEPTH = "bybit-depth"  # §C1 orderbook.{depth}: WS snapshot + deltas, no REST
    BYBIT_FULL = "bybit-full"  # §C1 orderbook.full: strict u+1 with a REST snapshot

    def __repr__(self) -> str:
        return f"BookRule.{self.name}"

    @property
    def spec(self) -> SyncRule:
        """The venue module's description of this procedure."""
        return _SPECS[self]

    @property
    def uses_rest(self) -> bool:
        """Whether the rule needs REST snapshots (``fetch_snapshot``)."""
        return _SPECS[self].uses_rest

    def snapshot_limit(self, depth: int) -> int | None:
        """The REST snapshot ``limit`` for a book shown ``depth`` levels deep (``None``:
        the venue sends snapshots on the WebSocket). See the venue modules for why."""
        return _SPECS[self].snapshot_limit(depth)

    def new_sync(
        self,
        depth: int,
        *,
        snapshot_limit: int | None = None,
        window: int | None = None,
        max_buffer: int = 10_000,
    ) -> BookSync:
        """A fresh state machine (``snapshot_limit`` None: :meth:`snapshot_limit`)."""
        return _SPECS[self].new_sync(
            depth, snapshot_limit=snapshot_limit, window=window, max_buffer=max_buffer
        )


_SPECS: Final[dict[BookRule, SyncRule]] = {
    BookRule.BINANCE_SPOT: binance.SPOT_RULE,
    BookRule.BINANCE_USDM: binance.USDM_RULE,
    BookRule.BYBIT_DEPTH: bybit.DEPTH_RULE,
    BookRule.BYBIT_FULL: bybit.FULL_RULE,
}


def snapshot_limit_for(rule: BookSyncRule, depth: int) -> int | None:
    """The REST snapshot ``limit`` to request for a book shown ``depth`` levels deep."""
    return rule.snapshot_limit(depth)


def make_sync(
    rule: BookSyncRule,
    depth: int,
    *,
    snapshot_limit: int | None = None,
    window: int | None = None,
    max_buffer: int = 10_000,
) -> BookSync:
    """A fresh state machine for ``rule`` (``snapshot_limit`` None: the rule's default)."""
    return rule.new_sync(depth, snapshot_limit=snapshot_limit, window=window, max_buffer=max_buffer)
