"""An exact integer order book that remembers how it got here.

Prices are integer ticks and quantities integer steps (see ``config``), so the book is
exact and cheap. Every change is applied through :meth:`SimBook.apply`, which assigns
the next update id and records the previous quantity of each touched level. Keeping the
*old* values (an undo log) rather than snapshots lets :meth:`SimBook.at` rebuild the book
at any recent update id by walking back from the present: memory grows with the number
of changes, not with book size times history length.
"""

from __future__ import annotations

from collections.abc import Iterable

from sortedcontainers import SortedDict

from rxconnector.testing.simulator.chunked import ChunkedLog

__all__ = ["ASK", "BID", "BookHistoryError", "LevelChange", "SimBook"]

BID = 0
ASK = 1

#: (side, price in ticks, new quantity in steps; 0 removes the level)
LevelChange = tuple[int, int, int]


class BookHistoryError(LookupError):
    """The requested update id is older than the kept history, or in the future."""


class SimBook:
    """Bids and asks keyed by integer price, with a bounded undo history."""

    __slots__ = (
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "_history",
        "_history_max",
        "first_update_id",
        "update_id",
    )

    def __init__(self, update_id: int, history: int) -> None:
        self._bids: SortedDict = SortedDict()  # ascending; best bid is the last key
        self._asks: SortedDict = SortedDict()  # ascending; best ask is the first key
        # live sorted views of the prices: indexing one is a list lookup, where
        # ``peekitem`` adds a call and a dict lookup (the best prices are read on every
        # update: the market's hottest read)
        self._bid_keys = self._bids.keys()
        self._ask_keys = self._asks.keys()
        self.update_id = update_id
        #: oldest update id the book can still be rebuilt at
        self.first_update_id = update_id
        # (update id, side, price, old qty, side, price, old qty, ...) per applied
        # update: flat tuples of ints, which the collector untracks at its first pass
        # (a nested tuple could stay tracked, measured: ~45 % of them did), in a
        # ChunkedLog, whose sealed chunks it then skips as well (see chunked.py)
        self._history: ChunkedLog[tuple[int, ...]] = ChunkedLog()
        self._history_max = history

    def side(self, side: int) -> SortedDict:
        """The live mapping price -> quantity of one side (do not mutate)."""
        return self._bids if side == BID else self._asks

    def best_bid(self) -> int | None:
        return self._bid_keys[-1] if self._bids else None

    def best_ask(self) -> int | None:
        return self._ask_keys[0] if self._asks else None

    def top(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """((best bid, qty) or None, (best ask, qty) or None)."""
        bids, asks = self._bids, self._asks
        bid = (p := self._bid_keys[-1], bids[p]) if bids else None
        ask = (p := self._ask_keys[0], asks[p]) if asks else None
        return bid, ask

    def levels(self, side: int, limit: int | None = None) -> list[tuple[int, int]]:
        """Up to ``limit`` levels of ``side``, best first."""
        book = self.side(side)
        n = len(book) if limit is None else min(limit, len(book))
        if n <= 0:
            return []
        if side == BID:
            return [(p, book[p]) for p in reversed(self._bid_keys[-n:])]
        return [(p, book[p]) for p in self._ask_keys[:n]]

    def apply(self, changes: Iterable[LevelChange]) -> int:
        """Apply one update (one new update id) and return that id.

        Raises ``ValueError`` if the update would cross the book: the simulator's
        generator must never produce a crossed book, and failing loudly keeps a bug in
        it from silently teaching clients that crossed books are normal.
        """
        undo: list[int] = []  # side, price, old quantity of each touched level, flat
        for side, price, qty in changes:
            book = self._bids if side == BID else self._asks
            old = book.get(price, 0)
            if qty < 0:
                raise ValueError(f"negative quantity {qty} at {price}")
            if qty == old:
                continue
            undo += (side, price, old)
            if qty == 0:
                del book[price]
            else:
                book[price] = qty
        if self._bids and self._asks and (bid := self._bid_keys[-1]) >= (ask := self._ask_keys[0]):
            self._undo(undo)
            raise ValueError(f"update would cross the book: bid {bid} >= ask {ask}")
        self.update_id += 1
        self._history.append((self.update_id, *undo))
        if len(self._history) > self._history_max:
            self.first_update_id = self._history.popleft()[0]
        return self.update_id

    def _undo(self, undo: list[int]) -> None:
        for i in range(len(undo) - 3, -1, -3):
            side, price, old = undo[i], undo[i + 1], undo[i + 2]
            book = self._bids if side == BID else self._asks
            if old == 0:
                book.pop(price, None)
            else:
                book[price] = old

    def at(self, update_id: int) -> tuple[dict[int, int], dict[int, int]]:
        """(bids, asks) as they were right after update ``update_id`` was applied."""
        if update_id > self.update_id or update_id < self.first_update_id:
            raise BookHistoryError(
                f"update id {update_id} outside kept history "
                f"[{self.first_update_id}, {self.update_id}]"
            )
        bids: dict[int, int] = dict(self._bids)
        asks: dict[int, int] = dict(self._asks)
        for entry in reversed(self._history):
            if entry[0] <= update_id:
                break
            for i in range(len(entry) - 3, 0, -3):
                side, price, old = entry[i], entry[i + 1], entry[i + 2]
                book = bids if side == BID else asks
                if old == 0:
                    book.pop(price, None)
                else:
                    book[price] = old
        return bids, asks
