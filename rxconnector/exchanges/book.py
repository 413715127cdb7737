"""The local order book of one symbol: absolute level updates in, sorted top-N out.

Pure data structure (no I/O, no reactivex): it lives next to the book-sync rules that
maintain it (``exchanges/book_sync.py`` and ``exchanges/<venue>/book_sync.py``).

Layout (chosen by measurement, see ``benchmarks/bench_orderbook.py`` and the "Order book"
section of ``benchmarks/RESULTS.md``): each side has two tiers.

**Hot tier** — the best levels, every level an update touched or a reader read: two
aligned Python lists, one of sort keys and one of the ``(price, quantity)`` level tuples
exactly as the parser produced them. The *best* level is at the end of the lists, so

* reading the top N is one C-level slice of the level list (no per-read sort, no dict
  look-ups, no new tuples: the tuples handed out are the ones that came in);
* inserting or removing near the top of the book (where almost all changes happen) moves
  only the few list slots above the change;
* finding a level is one C ``bisect`` over the keys.

Keys are the :class:`~decimal.Decimal` prices themselves (bids) and their exact negation
(asks, so that ascending keys put the best ask last). Decimal keys won over float keys
(computing ``float(price)`` per level costs what the cheaper comparisons save, measured
twice, see RESULTS.md) and over normalized-string keys (strings do not order
numerically). Equal prices written differently (``"1.0"`` / ``"1.00"``) compare equal
as Decimals, so they address the same level.

**Cold tier** — snapshot levels no update and no reader has touched yet, all of them
worse than every hot level: one ``"price quantity"`` string per level (≈70 B instead of
two Decimals, a tuple and a key, ≈330 B) and a ``float`` key in an ``array('d')`` (8 B)
that only *locates* levels, never decides equality: an update deeper than the hot tier
first moves every cold level at or above its float (``bisect`` over the array) into the
hot tier, where the exact Decimal comparison happens. Float rounding is monotonic, so the
levels left cold are strictly worse than the update (no precision assumption needed).
A read that wants more levels than the hot tier holds moves the best cold ones up the
same way. A 1,000-level snapshot therefore costs ≈110 B per level until touched, and the
hot path (updates near the touch) never sees the cold tier.

Coverage: a REST snapshot limited to ``limit`` levels says nothing about prices beyond
its deepest level. :meth:`LocalBook.load_snapshot` records that boundary for a side the
limit truncated, ignores later updates outside it (they would describe a region we do
not know), and :meth:`LocalBook.covers` says whether the known region still holds N
levels. An order book whose top N reaches into unknown territory must be resynced,
never shown (PEERS.md §3 item 6, Binance's own note on snapshot depth).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import chain
from typing import Protocol

from rxconnector.exchanges._compiled import cbook
from rxconnector.models import Level

__all__ = ["BookStore", "LocalBook", "new_local_book"]

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


def _level(line: str) -> Level:
    """A cold level as ``(Decimal, Decimal)``: the very digits the snapshot had."""
    price, _, quantity = line.partition(" ")
    return (Decimal(price), Decimal(quantity))


class _Side:
    """One side: hot keys/levels and cold keys/lines, all ascending, best last.

    ``negate`` is True for asks (keys are negated prices). Every cold level is worse
    (lower key) than every hot level.
    """

    __slots__ = ("cold", "cold_keys", "keys", "levels", "negate")

    def __init__(self, negate: bool) -> None:
        self.negate = negate
        self.keys: list[Decimal] = []
        self.levels: list[Level] = []
        self.cold_keys = array("d")
        self.cold: list[str] = []

    def load(self, levels: list[Level]) -> None:
        """All levels cold, ``levels`` sorted worst first."""
        self.keys = []
        self.levels = []
        sign = -1.0 if self.negate else 1.0
        self.cold = [f"{price} {quantity}" for price, quantity in levels]
        self.cold_keys = array("d", [sign * float(price) for price, _ in levels])

    def warm(self, key: Decimal) -> None:
        """Move every cold level whose float key is >= float(key) into the hot tier."""
        cold_keys = self.cold_keys
        start = bisect_left(cold_keys, float(key))
        if start < len(cold_keys):
            self.warm_from(start)

    def warm_best(self, count: int) -> None:
        """Move the best ``count`` cold levels into the hot tier."""
        self.warm_from(max(0, len(self.cold) - count))

    def warm_from(self, start: int) -> None:
        moved = [_level(line) for line in self.cold[start:]]
        del self.cold[start:]
        del self.cold_keys[start:]
        self.levels[0:0] = moved
        if self.negate:
            self.keys[0:0] = [price.copy_negate() for price, _ in moved]
        else:
            self.keys[0:0] = [price for price, _ in moved]

    def apply(self, updates: Sequence[Level], bound: Decimal | None) -> None:
        keys = self.keys
        levels = self.levels
        negate = self.negate
        for level in updates:
            key = level[0].copy_negate() if negate else level[0]
            n = len(keys)
            lo = n - _TOP_WINDOW
            if lo > 0 and key >= keys[lo]:
                i = bisect_left(keys, key, lo)
            else:
                if bound is not None and key < bound:
                    continue
                if self.cold and (n == 0 or key < keys[0]):
                    self.warm(key)  # deeper than the hot tier: bring the cold levels up
                    n = len(keys)
                    lo = n - _TOP_WINDOW
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

    def top(self, n: int) -> tuple[Level, ...]:
        if len(self.levels) < n and self.cold:
            self.warm_best(n - len(self.levels))
        return tuple(self.levels[: -n - 1 : -1])

    def best(self) -> Level | None:
        if not self.levels and self.cold:
            self.warm_best(1)
        return self.levels[-1] if self.levels else None

    def best_key(self) -> Decimal | None:
        if not self.keys and self.cold:
            self.warm_best(1)
        return self.keys[-1] if self.keys else None

    def trim(self, max_levels: int) -> None:
        excess = len(self.cold) + len(self.levels) - max_levels
        if excess <= 0:
            return
        from_cold = min(excess, len(self.cold))
        del self.cold[:from_cold]
        del self.cold_keys[:from_cold]
        excess -= from_cold
        if excess > 0:
            del self.levels[:excess]
            del self.keys[:excess]

    def __len__(self) -> int:
        return len(self.levels) + len(self.cold)

    def all(self) -> Iterator[Level]:
        """Every level, best first (cold ones parsed as they are read)."""
        return chain(reversed(self.levels), map(_level, reversed(self.cold)))


class LocalBook:
    """Price levels of both sides of one symbol, updated in place.

    Quantities are absolute: a level with quantity 0 is removed, removing a level that
    is not there is normal (the exchange reports levels we never knew). Prices and
    quantities are Decimals; any numeric zero (``Decimal("0.00000000")``) removes.
    Not thread-safe: it lives on the event loop like everything else.
    """

    __slots__ = ("_ask_ceiling", "_ask_ceiling_key", "_asks", "_bid_floor", "_bids")

    def __init__(self) -> None:
        self._bids = _Side(negate=False)  # keys: prices
        self._asks = _Side(negate=True)  # keys: negated prices
        # Coverage boundaries of a truncated snapshot (None: the side is complete).
        self._bid_floor: Decimal | None = None
        self._ask_ceiling: Decimal | None = None
        self._ask_ceiling_key: Decimal | None = None

    # ------------------------------------------------------------------ loading
    def clear(self) -> None:
        """Forget every level and every coverage boundary."""
        self._bids = _Side(negate=False)
        self._asks = _Side(negate=True)
        self._bid_floor = None
        self._ask_ceiling = None
        self._ask_ceiling_key = None

    def load_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], *, limit: int | None = None
    ) -> None:
        """Replace the whole book with a snapshot (the old levels are cleared first).

        ``limit`` is the number of levels per side the snapshot was asked for. A side
        holding ``limit`` levels or more was probably cut off by it, so its deepest price
        becomes the coverage boundary; a shorter side is the complete side. ``None``
        means the snapshot is the complete book (a Bybit WebSocket snapshot, a test).
        The levels start in the cold tier (see the module docstring).
        """
        self.clear()
        bid_list = _sorted_side(bids, descending=False)
        ask_list = _sorted_side(asks, descending=True)
        self._bids.load(bid_list)
        self._asks.load(ask_list)
        if limit is not None:
            if bid_list and len(bid_list) >= limit:
                self._bid_floor = bid_list[0][0]
            if ask_list and len(ask_list) >= limit:
                self._ask_ceiling = ask_list[0][0]
                self._ask_ceiling_key = self._ask_ceiling.copy_negate()

    @classmethod
    def _restore(
        cls,
        bids: Iterable[Level],
        asks: Iterable[Level],
        bid_floor: Decimal | None,
        ask_ceiling: Decimal | None,
    ) -> LocalBook:
        """A book holding these levels and coverage boundaries (no ``limit`` rule).

        How the compiled book hands its state over when it meets a number it cannot
        represent exactly (``_cbook.c``): the levels become this book's cold tier.
        """
        book = cls()
        book.load_snapshot(bids, asks)
        book._bid_floor = bid_floor
        book._ask_ceiling = ask_ceiling
        book._ask_ceiling_key = None if ask_ceiling is None else ask_ceiling.copy_negate()
        return book

    # ------------------------------------------------------------------ updates
    def apply(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Apply absolute level updates (quantity 0 removes) to both sides.

        This is the hot path: per level one bisect (over the 32 levels next to the
        touch when the price falls there, else over the rest of the hot tier, after
        bringing up the cold levels above it), then a slot write for a changed quantity
        or a list insert/delete for a new/removed level. Levels outside a truncated
        snapshot's coverage are ignored; only prices deeper than the window need that
        check, since the window lies inside the coverage.
        """
        if bids:
            self._bids.apply(bids, self._bid_floor)
        if asks:
            self._asks.apply(asks, self._ask_ceiling_key)

    def trim(self, max_levels: int) -> None:
        """Keep only the best ``max_levels`` levels per side.

        For feeds that maintain a fixed window (Bybit ``orderbook.50``): a level that
        left the window and was never deleted would otherwise come back as stale data.
        """
        self._bids.trim(max_levels)
        self._asks.trim(max_levels)

    # ------------------------------------------------------------------ reads
    def top_bids(self, n: int) -> tuple[Level, ...]:
        """The best ``n`` bids, highest price first."""
        return self._bids.top(n) if n > 0 else ()

    def top_asks(self, n: int) -> tuple[Level, ...]:
        """The best ``n`` asks, lowest price first."""
        return self._asks.top(n) if n > 0 else ()

    def bids(self) -> Iterator[Level]:
        """Every bid, best first."""
        return self._bids.all()

    def asks(self) -> Iterator[Level]:
        """Every ask, best first."""
        return self._asks.all()

    @property
    def best_bid(self) -> Level | None:
        return self._bids.best()

    @property
    def best_ask(self) -> Level | None:
        return self._asks.best()

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
        bid = self._bids.best_key()
        ask = self._asks.best_key()
        return bid is not None and ask is not None and bid >= ask.copy_negate()

    def is_consistent(self, n: int) -> bool:
        """Not crossed and :meth:`covers` ``n``: one call on the hot path for both checks."""
        bids = self._bids
        asks = self._asks
        if bids.keys and asks.keys:
            if bids.keys[-1] >= asks.keys[-1].copy_negate():
                return False
        elif self.is_crossed:  # a side has only cold levels (right after a snapshot)
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
        bid = self.best_bid
        ask = self.best_ask
        return (
            f"<LocalBook bids={len(self._bids)} asks={len(self._asks)} "
            f"best={bid[0] if bid else None}/{ask[0] if ask else None}>"
        )


class BookStore(Protocol):
    """The interface of a local book: :class:`LocalBook`'s, which the compiled book
    (``_cbook.CBook``) implements too. Typed against this, code runs with either."""

    def clear(self) -> None: ...
    def load_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], *, limit: int | None = None
    ) -> None: ...
    def apply(self, bids: Sequence[Level], asks: Sequence[Level]) -> None: ...
    def trim(self, max_levels: int) -> None: ...
    def top_bids(self, n: int) -> tuple[Level, ...]: ...
    def top_asks(self, n: int) -> tuple[Level, ...]: ...
    def bids(self) -> Iterator[Level]: ...
    def asks(self) -> Iterator[Level]: ...
    @property
    def best_bid(self) -> Level | None: ...
    @property
    def best_ask(self) -> Level | None: ...
    @property
    def bid_count(self) -> int: ...
    @property
    def ask_count(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def is_crossed(self) -> bool: ...
    def is_consistent(self, n: int) -> bool: ...
    def covers(self, n: int) -> bool: ...
    @property
    def bid_floor(self) -> Decimal | None: ...
    @property
    def ask_ceiling(self) -> Decimal | None: ...


def new_local_book() -> BookStore:
    """A new empty local book: the compiled one when the compiled core runs (see
    :mod:`~rxconnector.exchanges._compiled`), else :class:`LocalBook`.

    Both behave identically (same levels, same ``Decimal`` digits and exponents, same
    coverage rules); the compiled book keeps levels as scaled integers and switches
    itself to a :class:`LocalBook` if it ever meets a number it cannot hold exactly.
    """
    if cbook is not None:
        book: BookStore = cbook.CBook()
        return book
    return LocalBook()
