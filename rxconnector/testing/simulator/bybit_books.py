"""Bybit's depth-limited book topics: one window per (symbol, depth) with its own ``u``.

``orderbook.{depth}.{symbol}`` is not a diff of the whole book but of its top ``depth``
levels (PROTOCOL.md §C1). A :class:`DepthWindow` keeps what was last published for one
(symbol, depth) and, after each market tick, computes the exact change of the window:
levels that changed or entered it with their new size, levels that left it (deleted or
pushed below the window) with size ``"0"``. A client that applies the deltas therefore
holds exactly the true top ``depth`` levels, with or without trimming.

``u`` grows by one per message that changes the window (the brief's contract; Bybit
documents it as "always in sequence" for the REST snapshot and the 1000-level stream)
and ``seq`` is the market's book update id at that message, a cross sequence that
orders data across depths. :meth:`DepthWindow.seq_at` maps a ``u`` back to ``seq``,
which is how a test compares a client's book at ``u`` with
:meth:`~rxconnector.testing.simulator.server.ExchangeSimulator.book_at`.

Windows are created on first use (a subscription or a REST snapshot) and then follow
every tick for the life of the simulator, so ``u`` never goes back except through the
``u == 1`` restart fault (:meth:`DepthWindow.restart`).
"""

from __future__ import annotations

from rxconnector.testing.simulator.book import ASK, BID, SimBook

__all__ = ["BookWindows", "DepthWindow", "WindowChange"]

#: (bids, asks) of a change: (price ticks, size steps) with 0 = removed, best first.
WindowChange = tuple[list[tuple[int, int]], list[tuple[int, int]]]


def _diff(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    out = {p: q for p, q in new.items() if old.get(p) != q}
    for p in old:
        if p not in new:
            out[p] = 0
    return out


class DepthWindow:
    """The published top ``depth`` levels of one symbol and the ids that name them."""

    __slots__ = (
        "_history",
        "_seqs",
        "asks",
        "bids",
        "depth",
        "quiet_ticks",
        "resync",
        "seq",
        "symbol",
        "u",
    )

    def __init__(self, symbol: str, depth: int, book: SimBook, history: int) -> None:
        self.symbol = symbol
        self.depth = depth
        self.bids: dict[int, int] = dict(book.levels(BID, depth))
        self.asks: dict[int, int] = dict(book.levels(ASK, depth))
        # A plausible, large starting id (never 1: u == 1 means "service restarted").
        self.u = max(2, book.update_id)
        self.seq = book.update_id
        self._history = history
        self._seqs: dict[int, int] = {self.u: self.seq}
        #: ticks since the window last changed (level 1 re-sends after a quiet spell)
        self.quiet_ticks = 0
        #: set while data is being lost (stall): the next message must be a snapshot
        self.resync = False

    def _record(self) -> None:
        seqs = self._seqs
        seqs.pop(self.u, None)  # a restart reuses small ids: keep insertion order honest
        seqs[self.u] = self.seq
        if len(seqs) > self._history:
            del seqs[next(iter(seqs))]

    def advance(self, book: SimBook) -> WindowChange | None:
        """Follow the book after a tick: the change of the window (new ``u``), or
        ``None`` when the top ``depth`` levels did not change."""
        bids = dict(book.levels(BID, self.depth))
        asks = dict(book.levels(ASK, self.depth))
        db, da = _diff(self.bids, bids), _diff(self.asks, asks)
        if not db and not da:
            self.quiet_ticks += 1
            return None
        self.bids, self.asks = bids, asks
        self.u += 1
        self.seq = book.update_id
        self.quiet_ticks = 0
        self._record()
        return sorted(db.items(), reverse=True), sorted(da.items())

    def levels(self) -> WindowChange:
        """The whole window, best first (a snapshot's content)."""
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())

    def restart(self, book: SimBook) -> None:
        """Bybit's service restart: the window starts again at ``u == 1``."""
        self.bids = dict(book.levels(BID, self.depth))
        self.asks = dict(book.levels(ASK, self.depth))
        self.u = 1
        self.seq = book.update_id
        self.quiet_ticks = 0
        self._record()

    def seq_at(self, u: int) -> int:
        """The ``seq`` (market book update id) of the message that carried ``u``."""
        try:
            return self._seqs[u]
        except KeyError:
            raise KeyError(f"u={u} of {self.symbol} depth {self.depth} is not known") from None


class BookWindows:
    """Every tracked :class:`DepthWindow`, by symbol then depth."""

    def __init__(self, books: dict[str, SimBook], history: int) -> None:
        self._books = books
        self._history = history
        self._windows: dict[str, dict[int, DepthWindow]] = {}

    def window(self, symbol: str, depth: int) -> DepthWindow:
        """The window of (symbol, depth); tracking starts at the first call."""
        by_depth = self._windows.setdefault(symbol, {})
        window = by_depth.get(depth)
        if window is None:
            window = by_depth[depth] = DepthWindow(
                symbol, depth, self._books[symbol], self._history
            )
        return window

    def tracked(self, symbol: str) -> list[DepthWindow]:
        return list(self._windows.get(symbol, {}).values())

    def find(self, symbol: str, depth: int) -> DepthWindow | None:
        return self._windows.get(symbol, {}).get(depth)
