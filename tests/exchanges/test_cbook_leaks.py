"""The compiled book and parser neither leak nor free too early: reference counts of
the objects they cache return to where they were, and a long mixed workload (every
method, both level forms, snapshots, trims, the switch to Python) does not grow the
traced memory."""

from __future__ import annotations

import contextlib
import gc
import sys
import tracemalloc
from decimal import Decimal

import pytest

_cbook = pytest.importorskip("rxconnector.exchanges._cbook")


def test_cached_and_handed_over_objects_are_released() -> None:
    level = (Decimal("10.5"), Decimal("2"))
    price = level[0]
    base_level, base_price = sys.getrefcount(level), sys.getrefcount(price)
    book = _cbook.CBook()
    book.apply([level], [])
    assert sys.getrefcount(level) == base_level + 1  # cached by the book
    assert book.top_bids(1)[0] is level
    book.apply(_cbook.pack_levels(b'[["10.5","3"]]'), [])  # the quantity changed
    assert sys.getrefcount(level) == base_level
    assert sys.getrefcount(price) == base_price + 1  # the price Decimal stays cached
    assert book.top_bids(1)[0][0] is price
    book.apply(_cbook.pack_levels(b'[["10.5","0"]]'), [])  # removed
    assert sys.getrefcount(price) == base_price
    book.apply(_cbook.pack_levels(b'[["10.5","4"]]'), [])
    cached = book.best_bid
    assert cached is not None and book.best_bid is cached
    base_cached = sys.getrefcount(cached)
    del book
    assert sys.getrefcount(cached) == base_cached - 1  # the book's reference is gone


def test_a_bound_decimal_outlives_nothing() -> None:
    floor = Decimal("9")
    base = sys.getrefcount(floor)
    book = _cbook.CBook()
    book.load_snapshot([(Decimal("10"), Decimal(1)), (floor, Decimal(1))], [], limit=2)
    assert book.bid_floor == floor and sys.getrefcount(floor) == base  # built, not kept
    book.clear()
    assert book.bid_floor is None


def _workload(rounds: int) -> None:
    pack = _cbook.pack_levels
    for i in range(rounds):
        book = _cbook.CBook()
        book.load_snapshot(
            [(Decimal(f"{100 - k}.5"), Decimal("1.00")) for k in range(50)],
            pack(b'[["101","1"],["102.25","2"],["103","0"]]'),
            limit=40,
        )
        for j in range(20):
            p = 95 + (i + j) % 10
            book.apply(pack(b'[["%d.5","%d"]]' % (p, j % 3)), [(Decimal("101.0"), Decimal(j))])
            book.top_bids(20)
            book.top_asks(5)
            list(book.bids())
            _ = (book.best_bid, book.best_ask, book.bid_floor, book.ask_ceiling, repr(book))
            book.is_consistent(10)
        book.trim(30)
        if i % 5 == 0:  # the switch to Python and everything after it
            book.apply([(Decimal("-1"), Decimal("1"))], [])
            book.top_bids(3)
        for bad in (b'[["1","x"]]', b"[", b'[["1E+3","1"]]'):
            with contextlib.suppress(ValueError, ArithmeticError):
                pack(bad)
        book.clear()


def test_a_long_workload_does_not_grow_memory() -> None:
    _workload(50)  # warm caches (interned strings, the LocalBook import, pymalloc arenas)
    gc.collect()
    tracemalloc.start()
    try:
        _workload(100)
        gc.collect()
        first = tracemalloc.get_traced_memory()[0]
        _workload(400)
        gc.collect()
        second = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # 400 rounds allocate ~100 MB in total; a leak of one object per call would show
    # as megabytes here.
    assert second - first < 64 * 1024, (first, second)


class _ClearsOnCollection:
    """Cyclic garbage whose finalizer changes the book while the book is reading."""

    def __init__(self, book: object, action: str) -> None:
        self.me = self
        self.book = book
        self.action = action

    def __del__(self) -> None:
        if self.action == "clear":
            self.book.clear()  # type: ignore[attr-defined]
        else:
            self.book.apply([(Decimal("-1"), Decimal(1))], [])  # type: ignore[attr-defined]


@pytest.mark.parametrize("action", ["clear", "switch"])
@pytest.mark.parametrize("read", ["top_bids", "python"])
def test_a_finalizer_changing_the_book_mid_read_is_survived(action: str, read: str) -> None:
    """Reads allocate tuples, which may run the collector and any finalizer; a book
    changed under a read hands out what it read and stays consistent (no crash)."""
    book = _cbook.CBook()
    pack = _cbook.pack_levels
    book.load_snapshot(pack(b"[" + b",".join(b'["%d","1"]' % p for p in range(1, 200)) + b"]"), [])
    old = gc.get_threshold()
    gc.collect()
    _ClearsOnCollection(book, action)
    gc.set_threshold(1)
    try:
        if read == "top_bids":
            got = book.top_bids(150)
        else:  # the handover to Python reads every level
            book.apply([(Decimal("1E+30"), Decimal(1))], [])
            got = book.top_bids(150)
    finally:
        gc.set_threshold(*old)
    assert len(got) <= 150
    assert all(type(level) is tuple and len(level) == 2 for level in got)
    list(book.bids())
    assert book.bid_count >= 0
