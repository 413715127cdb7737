"""The local order book of one symbol: absolute level updates in, sorted top-N out.

Layout (chosen by measurement, see ``benchmarks/bench_orderbook.py`` and the "Order book"
section of ``benchmarks/RESULTS.md``): each side is two aligned Python lists, one of sort
keys and one of the ``(price, quantity)`` level tuples exactly as the parser produced them.
Both sides keep their *best* level at the end of the lists, so

* reading the top N is one C-level slice of the level list (no per-read sort, no dict
  look-ups, no new tuples: the tuples handed out are the ones that came in);
* inserting or removing near the top of the book (where almost all changes happen) moves
  only the few list slots above the change;
* finding a level is one C ``bisect`` over the keys.

Keys are the :class:`~decimal.Decimal` prices themselves (bids) and their exact negation
(asks, so that ascending keys put the best ask last). Decimal keys won over float keys
(``float(Decimal)`` costs more than the comparisons it saves, and distinct prices with
more than 15 significant digits could collide) and over normalized-string keys (strings
do not order numerically). Equal prices written differently (``"1.0"`` / ``"1.00"``)
compare equal as Decimals, so they address the same level.

Coverage: a REST snapshot limited to ``limit`` levels says nothing about prices beyond
its deepest level. :meth:`LocalBook.load_snapshot` records that boundary for a side the
limit truncated, ignores later updates outside it (they would describe a region we do
not know), and :meth:`LocalBook.covers` says whether the known region still holds N
levels. An order book whose top N reaches into unknown territory must be resynced,
never shown (PEERS.md §3 item 6, Binance's own note on snapshot depth).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from rxconnector.models import Level

__all__ = ["LocalBook"]

#: Levels next to the touch searched first. Most changes land there, and a bisect over
#: 32 Decimal keys costs about a quarter of one over 1000 (Decimal comparisons are the
#: dominant cost of ``apply``); a miss costs one extra comparison before the full search.
_TOP_WINDOW = 32


def _sorted_side(levels: Iterable[Level], *, descending: bool) -> list[Level]:
    """Levels of one side without zero quantities or repeated prices (last one wins)."""
    by_price: dict[Decimal, Level] = {}
    for level in levels:
        if level[1]:
            by_price[level[0]] = level
        else:
            by_price.pop(level[0], None)
    return sorted(by_price.values(), key=lambda lv: lv[0], reverse=descending)


class LocalBook:
    """Price levels of both sides of one symbol, updated in place.

    Quantities are absolute: a level with quantity 0 is removed, removing a level that
    is not there is normal (the exchange reports levels we never knew). Prices and
    quantities are Decimals; any numeric zero (``Decimal("0.00000000")``) removes.
    Not thread-safe: it lives on the event loop like everything else.
    """

    __slots__ = ("_ask_ceiling", "_ask_keys", "_asks", "_bid_floor", "_bid_keys", "_bids")

    def __init__(self) -> None:
        # Bids ascending by price: best bid last.
        self._bid_keys: list[Decimal] = []
        self._bids: list[Level] = []
        # Asks by negated price ascending, i.e. price descending: best ask last.
        self._ask_keys: list[Decimal] = []
        self._asks: list[Level] = []
        # Coverage boundaries of a truncated snapshot (None: the side is complete).
        self._bid_floor: Decimal | None = None
        self._ask_ceiling: Decimal | None = None

    # ------------------------------------------------------------------ loading
    def clear(self) -> None:
        """Forget every level and every coverage boundary."""
        self._bid_keys = []
        self._bids = []
        self._ask_keys = []
        self._asks = []
        self._bid_floor = None
        self._ask_ceiling = None

    def load_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], *, limit: int | None = None
    ) -> None:
        """Replace the whole book with a snapshot (the old levels are cleared first).

        ``limit`` is the number of levels per side the snapshot was asked for. A side
        holding ``limit`` levels or more was probably cut off by it, so its deepest price
        becomes the coverage boundary; a shorter side is the complete side. ``None``
        means the snapshot is the complete book (a Bybit WebSocket snapshot, a test).
        """
        self.clear()
        bid_list = _sorted_side(bids, descending=False)
        ask_list = _sorted_side(asks, descending=True)
        self._bids = bid_list
        self._bid_keys = [level[0] for level in bid_list]
        self._asks = ask_list
        self._ask_keys = [level[0].copy_negate() for level in ask_list]
        if limit is not None:
            if bid_list and len(bid_list) >= limit:
                self._bid_floor = bid_list[0][0]
            if ask_list and len(ask_list) >= limit:
                self._ask_ceiling = ask_list[0][0]

    # ------------------------------------------------------------------ updates
    def apply(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Apply absolute level updates (quantity 0 removes) to both sides.

        This is the hot path: per level one bisect (over the 32 levels next to the
        touch when the price falls there, else over the rest), then a slot write for a
        changed quantity or a list insert/delete for a new/removed level. Levels
        outside a truncated snapshot's coverage are ignored; only prices deeper than
        the window need that check, since the window lies inside the coverage.
        """
        if bids:
            keys = self._bid_keys
            levels = self._bids
            floor = self._bid_floor
            for level in bids:
                price = level[0]
                n = len(keys)
                lo = n - _TOP_WINDOW
                if lo > 0 and price >= keys[lo]:
                    i = bisect_left(keys, price, lo)
                else:
                    if floor is not None and price < floor:
                        continue
                    i = bisect_left(keys, price, 0, lo if lo > 0 else n)
                if i != n and keys[i] == price:
                    if level[1]:
                        levels[i] = level
                    else:
                        del keys[i]
                        del levels[i]
                elif level[1]:
                    keys.insert(i, price)
                    levels.insert(i, level)
        if asks:
            keys = self._ask_keys
            levels = self._asks
            ceiling = self._ask_ceiling
            for level in asks:
                price = level[0]
                key = price.copy_negate()
                n = len(keys)
                lo = n - _TOP_WINDOW
                if lo > 0 and key >= keys[lo]:
                    i = bisect_left(keys, key, lo)
                else:
                    if ceiling is not None and price > ceiling:
                        continue
                    i = bisect_left(keys, key, 0, lo if lo > 0 else n)
                if i != n and keys[i] == key:
                    if level[1]:
                        levels[i] = level
                    else:
                        del keys[i]
                        del levels[i]
                elif level[1]:
                    keys.insert(i, key)
                    levels.insert(i, level)

    def trim(self, max_levels: int) -> None:
        """Keep only the best ``max_levels`` levels per side.

        For feeds that maintain a fixed window (Bybit ``orderbook.50``): a level that
        left the window and was never deleted would otherwise come back as stale data.
        """
        excess = len(self._bids) - max_levels
        if excess > 0:
            del self._bids[:excess]
            del self._bid_keys[:excess]
        excess = len(self._asks) - max_levels
        if excess > 0:
            del self._asks[:excess]
            del self._ask_keys[:excess]

    # ------------------------------------------------------------------ reads
    def top_bids(self, n: int) -> tuple[Level, ...]:
        """The best ``n`` bids, highest price first."""
        return tuple(self._bids[: -n - 1 : -1]) if n > 0 else ()

    def top_asks(self, n: int) -> tuple[Level, ...]:
        """The best ``n`` asks, lowest price first."""
        return tuple(self._asks[: -n - 1 : -1]) if n > 0 else ()

    def bids(self) -> Iterator[Level]:
        """Every bid, best first."""
        return reversed(self._bids)

    def asks(self) -> Iterator[Level]:
        """Every ask, best first."""
        return reversed(self._asks)

    @property
    def best_bid(self) -> Level | None:
        return self._bids[-1] if self._bids else None

    @property
    def best_ask(self) -> Level | None:
        return self._asks[-1] if self._asks else None

    @property
    def bid_count(self) -> int:
        return len(self._bids)

    @property
    def ask_count(self) -> int:
        return len(self._asks)

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    @property
    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask: a corrupted book."""
        return bool(self._bids and self._asks and self._bids[-1][0] >= self._asks[-1][0])

    def is_consistent(self, n: int) -> bool:
        """Not crossed and :meth:`covers` ``n``: one call on the hot path for both checks."""
        bids = self._bids
        asks = self._asks
        if bids and asks and bids[-1][0] >= asks[-1][0]:
            return False
        if self._bid_floor is not None and len(bids) < n:
            return False
        return not (self._ask_ceiling is not None and len(asks) < n)

    def covers(self, n: int) -> bool:
        """Whether the known part of the book holds the true top ``n`` of both sides.

        False once a side cut off by the snapshot limit has fewer than ``n`` levels
        left inside the snapshot's range: the next levels lie where we know nothing.
        """
        if self._bid_floor is not None and len(self._bids) < n:
            return False
        return not (self._ask_ceiling is not None and len(self._asks) < n)

    @property
    def bid_floor(self) -> Decimal | None:
        """Lowest bid price the book knows about (None: the whole side is known)."""
        return self._bid_floor

    @property
    def ask_ceiling(self) -> Decimal | None:
        """Highest ask price the book knows about (None: the whole side is known)."""
        return self._ask_ceiling

    def __repr__(self) -> str:
        bid = self._bids[-1][0] if self._bids else None
        ask = self._asks[-1][0] if self._asks else None
        return f"<LocalBook bids={len(self._bids)} asks={len(self._asks)} best={bid}/{ask}>"
