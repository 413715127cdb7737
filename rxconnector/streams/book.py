"""The local order book of one symbol: absolute level updates in, sorted top-N out.

Layout (chosen by measurement, see ``benchmarks/bench_orderbook.py`` and the "Order book"
section of ``benchmarks/RESULTS.md``): each side is two aligned Python lists, one of sort
keys and one of the levels' wire strings (``"price quantity"``, see
:mod:`rxconnector.exchanges._levels`). Both sides keep their *best* level at the end of the
lists, so

* reading the top N is one C-level slice of the line list plus a cached
  ``line -> (Decimal, Decimal)`` lookup per level: Decimals are built only for levels
  that are shown, once per distinct level, never for the many levels nobody reads;
* inserting or removing near the top of the book (where almost all changes happen) moves
  only the few list slots above the change;
* finding a level is one C ``bisect`` over the keys.

Keys are ``float(price)`` (bids) and its negation (asks, so that ascending keys put the
best ask last). That is exact: every price with at most 15 significant digits has its own
float, ordered like the decimals (the proof, and the fallback to Decimal keys for a
price with more digits, are in :mod:`rxconnector.exchanges._levels`; every symbol of the
exchange-info examples and the simulator is checked by ``tests/streams/test_book_keys.py``).
Float keys compare in a few ns where Decimal comparisons cost ≈40 ns, and one line string
per level replaces two Decimals and a tuple (≈270 B): the memory per level fell by ~2/3.
Equal prices written differently (``"1.0"`` / ``"1.00"``) have one key, so they address
the same level.

Coverage: a REST snapshot limited to ``limit`` levels says nothing about prices beyond
its deepest level. :meth:`LocalBook.load_snapshot` records that boundary for a side the
limit truncated, ignores later updates outside it (they would describe a region we do
not know), and :meth:`LocalBook.covers` says whether the known region still holds N
levels. An order book whose top N reaches into unknown territory must be resynced,
never shown (PEERS.md §3 item 6, Binance's own note on snapshot depth).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from rxconnector.exchanges._levels import WireSide, wire_side
from rxconnector.models import Level

__all__ = ["LocalBook"]

#: Levels next to the touch searched first. Most changes land there; a miss costs one
#: extra comparison before the full search.
_TOP_WINDOW = 32

#: A side's level cache is pruned back to the levels last shown once it holds this many
#: more entries than that (levels that changed or left the top since).
_CACHE_SLACK = 64

Side = Sequence[Level] | WireSide


class _Levels(dict[str, Level]):
    """``"price quantity"`` line → its ``(Decimal, Decimal)`` level, built on first use.

    Filled only by the levels a reader asks for (the top N of an emitted book), so the
    Decimals of levels nobody looks at are never built. The strings were checked when
    the side was read (:func:`~rxconnector.exchanges._levels.wire_side`), so plain
    ``Decimal(str)`` is exact and finite here.
    """

    __slots__ = ()

    def __missing__(self, line: str) -> Level:
        price, _, quantity = line.partition(" ")
        level = (Decimal(price), Decimal(quantity))
        self[line] = level
        return level


def _as_wire(levels: Side, *, ask: bool, exact: bool) -> WireSide:
    if isinstance(levels, WireSide):
        return levels.exactly() if exact else levels
    return wire_side(levels, ask=ask, exact=exact)


def _price_of(line: str) -> Decimal:
    return Decimal(line.partition(" ")[0])


def _sorted_side(side: WireSide) -> tuple[list[Any], list[str]]:
    """Keys ascending and their lines, without removals or repeated prices (last wins)."""
    by_key: dict[Any, str] = {}
    for key, line, size in zip(side.keys, side.lines, side.sizes, strict=True):
        if size:
            by_key[key] = line
        else:
            by_key.pop(key, None)
    keys = sorted(by_key)
    return keys, [by_key[k] for k in keys]


class LocalBook:
    """Price levels of both sides of one symbol, updated in place.

    Quantities are absolute: a level with quantity 0 is removed, removing a level that
    is not there is normal (the exchange reports levels we never knew). Levels come in
    as wire sides (:class:`~rxconnector.exchanges._levels.WireSide`, what the order-book
    parsers produce) or as ``(Decimal, Decimal)`` levels (snapshots, tests); either way
    any numeric zero (``"0.00000000"``) removes and equal prices written differently
    (``"1.0"``/``"1.00"``) address one level. Levels read out are ``(Decimal, Decimal)``
    equal to what the exchange sent, digit for digit. Not thread-safe: it lives on the
    event loop like everything else.
    """

    __slots__ = (
        "_ask_cache",
        "_ask_ceiling",
        "_ask_ceiling_key",
        "_ask_keys",
        "_asks",
        "_bid_cache",
        "_bid_floor",
        "_bid_floor_key",
        "_bid_keys",
        "_bids",
        "_exact",
    )

    def __init__(self) -> None:
        # Bids keyed by price ascending: best bid last. Asks keyed by the negated price
        # ascending, i.e. price descending: best ask last. Keys are floats, or Decimals
        # once a price with more than 15 significant digits was seen (``_exact``).
        self._bid_keys: list[Any] = []
        self._bids: list[str] = []
        self._ask_keys: list[Any] = []
        self._asks: list[str] = []
        self._exact = False
        # Coverage boundaries of a truncated snapshot (None: the side is complete), as
        # prices and in key space (asks: negated, so "beyond" is "key below" on both).
        self._bid_floor: Decimal | None = None
        self._bid_floor_key: Any = None
        self._ask_ceiling: Decimal | None = None
        self._ask_ceiling_key: Any = None
        self._bid_cache = _Levels()
        self._ask_cache = _Levels()

    # ------------------------------------------------------------------ loading
    def clear(self) -> None:
        """Forget every level and every coverage boundary."""
        self._bid_keys = []
        self._bids = []
        self._ask_keys = []
        self._asks = []
        self._exact = False
        self._bid_floor = None
        self._bid_floor_key = None
        self._ask_ceiling = None
        self._ask_ceiling_key = None
        self._bid_cache = _Levels()
        self._ask_cache = _Levels()

    def load_snapshot(self, bids: Side, asks: Side, *, limit: int | None = None) -> None:
        """Replace the whole book with a snapshot (the old levels are cleared first).

        ``limit`` is the number of levels per side the snapshot was asked for. A side
        holding ``limit`` levels or more was probably cut off by it, so its deepest price
        becomes the coverage boundary; a shorter side is the complete side. ``None``
        means the snapshot is the complete book (a Bybit WebSocket snapshot, a test).
        """
        self.clear()
        bid_side = _as_wire(bids, ask=False, exact=False)
        ask_side = _as_wire(asks, ask=True, exact=False)
        if bid_side.exact or ask_side.exact:
            self._exact = True
            bid_side = bid_side.exactly()
            ask_side = ask_side.exactly()
        self._bid_keys, self._bids = _sorted_side(bid_side)
        self._ask_keys, self._asks = _sorted_side(ask_side)
        if limit is not None:
            if self._bids and len(self._bids) >= limit:
                self._bid_floor_key = self._bid_keys[0]
                self._bid_floor = _price_of(self._bids[0])
            if self._asks and len(self._asks) >= limit:
                self._ask_ceiling_key = self._ask_keys[0]
                self._ask_ceiling = _price_of(self._asks[0])

    def _go_exact(self) -> None:
        """Re-key the book by Decimal prices (a price beyond float precision arrived)."""
        self._exact = True
        self._bid_keys = [_price_of(line) for line in self._bids]
        self._ask_keys = [-_price_of(line) for line in self._asks]
        if self._bid_floor is not None:
            self._bid_floor_key = self._bid_floor
        if self._ask_ceiling is not None:
            self._ask_ceiling_key = -self._ask_ceiling

    # ------------------------------------------------------------------ updates
    def apply(self, bids: Side, asks: Side) -> None:
        """Apply absolute level updates (quantity 0 removes) to both sides.

        This is the hot path: per level one bisect over float keys (over the 32 levels
        next to the touch when the price falls there, else over the rest), then a slot
        write for a changed quantity or a list insert/delete for a new/removed level.
        No Decimal is built. Levels outside a truncated snapshot's coverage are ignored;
        only prices deeper than the window need that check. Both sides are read (and
        checked) before the book changes, so a malformed side leaves it untouched.
        """
        exact = self._exact
        bid_side = _as_wire(bids, ask=False, exact=exact)
        ask_side = _as_wire(asks, ask=True, exact=exact)
        if not exact and (bid_side.exact or ask_side.exact):
            self._go_exact()
            bid_side = bid_side.exactly()
            ask_side = ask_side.exactly()
        if bid_side.keys:
            _apply_side(self._bid_keys, self._bids, bid_side, self._bid_floor_key)
        if ask_side.keys:
            _apply_side(self._ask_keys, self._asks, ask_side, self._ask_ceiling_key)

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
        """The best ``n`` bids, highest price first (Decimals built for these only)."""
        if n <= 0:
            return ()
        lines = self._bids[: -n - 1 : -1]
        cache = self._bid_cache
        top = tuple(map(cache.__getitem__, lines))
        if len(cache) > len(lines) + _CACHE_SLACK:
            self._bid_cache = _Levels(zip(lines, top, strict=True))
        return top

    def top_asks(self, n: int) -> tuple[Level, ...]:
        """The best ``n`` asks, lowest price first (Decimals built for these only)."""
        if n <= 0:
            return ()
        lines = self._asks[: -n - 1 : -1]
        cache = self._ask_cache
        top = tuple(map(cache.__getitem__, lines))
        if len(cache) > len(lines) + _CACHE_SLACK:
            self._ask_cache = _Levels(zip(lines, top, strict=True))
        return top

    def bids(self) -> Iterator[Level]:
        """Every bid, best first (Decimals built as they are read, not cached)."""
        return map(_Levels().__getitem__, reversed(self._bids))

    def asks(self) -> Iterator[Level]:
        """Every ask, best first (Decimals built as they are read, not cached)."""
        return map(_Levels().__getitem__, reversed(self._asks))

    @property
    def best_bid(self) -> Level | None:
        return self._bid_cache[self._bids[-1]] if self._bids else None

    @property
    def best_ask(self) -> Level | None:
        return self._ask_cache[self._asks[-1]] if self._asks else None

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
        return bool(self._bid_keys and self._ask_keys and self._bid_keys[-1] >= -self._ask_keys[-1])

    def is_consistent(self, n: int) -> bool:
        """Not crossed and :meth:`covers` ``n``: one call on the hot path for both checks."""
        bids = self._bid_keys
        asks = self._ask_keys
        if bids and asks and bids[-1] >= -asks[-1]:
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

    @property
    def exact_keys(self) -> bool:
        """True once the book keys by Decimal (a price beyond float precision was seen)."""
        return self._exact

    def __repr__(self) -> str:
        bid = self._bids[-1].partition(" ")[0] if self._bids else None
        ask = self._asks[-1].partition(" ")[0] if self._asks else None
        return f"<LocalBook bids={len(self._bids)} asks={len(self._asks)} best={bid}/{ask}>"


def _apply_side(keys: list[Any], lines: list[str], side: WireSide, bound: Any) -> None:
    """Apply one side's changes (keys ascending, best last; ``bound``: coverage edge)."""
    for key, line, size in zip(side.keys, side.lines, side.sizes):  # noqa: B905 - aligned
        n = len(keys)
        lo = n - _TOP_WINDOW
        if lo > 0 and key >= keys[lo]:
            i = bisect_left(keys, key, lo)
        else:
            if bound is not None and key < bound:
                continue
            i = bisect_left(keys, key, 0, lo if lo > 0 else n)
        if i != n and keys[i] == key:
            if size:
                lines[i] = line
            else:
                del keys[i]
                del lines[i]
        elif size:
            keys.insert(i, key)
            lines.insert(i, line)
