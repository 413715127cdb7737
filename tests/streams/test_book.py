"""LocalBook: the sorted level store behind every maintained order book.

Every test here runs twice: against the pure-Python ``LocalBook`` and against the
compiled book (``_cbook.CBook``, skipped where the extension is not built), which must
behave identically (``tests/exchanges/test_cbook_book.py`` compares them directly).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxconnector.exchanges.book import LocalBook
from rxconnector.models import Level


@pytest.fixture(scope="module", autouse=True, params=["python", "compiled"])
def implementation(request: pytest.FixtureRequest) -> Iterator[None]:
    """``LocalBook`` in this module means each implementation in turn."""
    if request.param == "python":
        yield
        return
    cbook = pytest.importorskip("rxconnector.exchanges._cbook")
    patch = pytest.MonkeyPatch()
    patch.setattr(f"{__name__}.LocalBook", cbook.CBook)
    yield
    patch.undo()


def lv(price: str, qty: str) -> Level:
    return (Decimal(price), Decimal(qty))


def book_of(bids: list[Level], asks: list[Level], limit: int | None = None) -> LocalBook:
    book = LocalBook()
    book.load_snapshot(bids, asks, limit=limit)
    return book


class TestApply:
    """Absolute level updates insert, replace and remove levels on the right side."""

    def test_insert_update_remove(self) -> None:
        book = book_of([lv("10", "1")], [lv("11", "1")])
        book.apply([lv("9", "2"), lv("10", "5")], [lv("12", "3")])
        assert book.top_bids(5) == (lv("10", "5"), lv("9", "2"))
        assert book.top_asks(5) == (lv("11", "1"), lv("12", "3"))
        book.apply([lv("10", "0")], [lv("11", "0.000")])
        assert book.top_bids(5) == (lv("9", "2"),)
        assert book.top_asks(5) == (lv("12", "3"),)

    def test_removing_an_absent_level_is_normal(self) -> None:
        book = book_of([lv("10", "1")], [lv("11", "1")])
        book.apply([lv("5", "0")], [lv("50", "0")])
        assert (book.bid_count, book.ask_count) == (1, 1)

    def test_zero_is_numeric_not_textual(self) -> None:
        """'0.00000000' removes a level just like '0' (PEERS.md §3 item 6)."""
        book = book_of([lv("10", "1")], [])
        book.apply([lv("10.00", "0.00000000")], [])
        assert book.bid_count == 0

    def test_equal_prices_in_different_notation_are_one_level(self) -> None:
        book = book_of([lv("10.0", "1")], [lv("11", "1")])
        book.apply([lv("10.00", "7")], [lv("11.000", "2")])
        assert book.top_bids(3) == (lv("10.00", "7"),)
        assert book.top_asks(3) == (lv("11.000", "2"),)

    def test_levels_are_handed_out_unchanged(self) -> None:
        """Top-N reads return the parser's own tuples: no copies on the hot path."""
        level = lv("10", "1")
        book = book_of([], [])
        book.apply([level], [])
        assert book.top_bids(1)[0] is level


class TestSnapshot:
    """Loading a snapshot clears the book, sorts it and records its coverage."""

    def test_load_clears_old_levels(self) -> None:
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1")])
        book.load_snapshot([lv("8", "1")], [lv("12", "1")])
        assert book.top_bids(5) == (lv("8", "1"),)
        assert book.top_asks(5) == (lv("12", "1"),)

    def test_unsorted_duplicated_and_zero_input(self) -> None:
        book = book_of(
            [lv("9", "1"), lv("10", "1"), lv("9", "3"), lv("8", "0")],
            [lv("13", "1"), lv("11", "1"), lv("12", "0")],
        )
        assert book.top_bids(5) == (lv("10", "1"), lv("9", "3"))
        assert book.top_asks(5) == (lv("11", "1"), lv("13", "1"))

    def test_truncated_side_ignores_updates_beyond_its_range(self) -> None:
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1")], limit=2)
        assert book.bid_floor == Decimal("9")
        assert book.ask_ceiling is None  # one ask < limit 2: the whole side
        book.apply([lv("8", "5")], [lv("20", "5")])
        assert book.top_bids(5) == (lv("10", "1"), lv("9", "1"))
        assert book.top_asks(5) == (lv("11", "1"), lv("20", "5"))

    def test_the_boundary_level_itself_is_known(self) -> None:
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1"), lv("12", "1")], limit=2)
        book.apply([lv("9", "4"), lv("8.99", "1")], [lv("12", "5"), lv("12.01", "1")])
        assert book.top_bids(5) == (lv("10", "1"), lv("9", "4"))
        assert book.top_asks(5) == (lv("11", "1"), lv("12", "5"))

    def test_coverage_runs_out_when_known_levels_are_consumed(self) -> None:
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1"), lv("12", "1")], limit=2)
        assert book.covers(2)
        book.apply([], [lv("11", "0")])
        assert book.covers(1)
        assert not book.covers(2)  # the next ask above 12 is unknown
        book.apply([], [lv("11.5", "1")])
        assert book.covers(2)

    def test_is_consistent_combines_both_checks(self) -> None:
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1"), lv("12", "1")], limit=2)
        assert book.is_consistent(2)
        book.apply([lv("11", "1")], [])
        assert not book.is_consistent(2)  # crossed
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1"), lv("12", "1")], limit=2)
        book.apply([lv("10", "0")], [])
        assert not book.is_consistent(2) and book.is_consistent(1)  # bids ran out
        book.apply([lv("10", "1")], [lv("11", "0")])
        assert not book.is_consistent(2)  # asks ran out

    def test_complete_book_always_covers(self) -> None:
        book = book_of([lv("10", "1")], [], limit=5)
        assert book.covers(100)


class TestReads:
    """Top-N, best levels, counts and the crossed-book check."""

    def test_top_n_bounds(self) -> None:
        book = book_of([lv("10", "1"), lv("9", "1")], [lv("11", "1")])
        assert book.top_bids(0) == ()
        assert book.top_bids(1) == (lv("10", "1"),)
        assert book.top_asks(10) == (lv("11", "1"),)
        assert list(book.bids()) == [lv("10", "1"), lv("9", "1")]
        assert list(book.asks()) == [lv("11", "1")]
        assert len(book) == 3

    def test_best_levels_of_empty_book(self) -> None:
        book = LocalBook()
        assert book.best_bid is None and book.best_ask is None
        assert not book.is_crossed

    def test_crossed_and_locked_books_are_detected(self) -> None:
        book = book_of([lv("10", "1")], [lv("11", "1")])
        assert not book.is_crossed
        book.apply([lv("11", "1")], [])
        assert book.is_crossed  # locked counts as corrupt too
        assert "LocalBook" in repr(book)

    def test_trim_keeps_the_best_levels(self) -> None:
        book = book_of(
            [lv(str(p), "1") for p in range(1, 11)], [lv(str(p), "1") for p in range(11, 21)]
        )
        book.trim(3)
        assert [p for p, _ in book.bids()] == [Decimal(10), Decimal(9), Decimal(8)]
        assert [p for p, _ in book.asks()] == [Decimal(11), Decimal(12), Decimal(13)]
        book.apply([lv("7.5", "1")], [lv("13.5", "1")])
        assert book.bid_count == 4  # trim is explicit, not a cap on later inserts


prices = st.integers(min_value=1, max_value=40).map(lambda i: Decimal(i) / 4)
qtys = st.sampled_from(["0", "0.0", "1", "2.50", "3"]).map(Decimal)
levels = st.lists(st.tuples(prices, qtys), max_size=8)


class TestAgainstDictModel:
    """Any sequence of updates leaves the same levels as a naive dict, sorted best-first."""

    @given(st.tuples(levels, levels), st.lists(st.tuples(levels, levels), max_size=30))
    def test_matches_reference(
        self,
        snapshot: tuple[list[Level], list[Level]],
        updates: list[tuple[list[Level], list[Level]]],
    ) -> None:
        ref_bids: dict[Decimal, Decimal] = {}
        for p, q in snapshot[0]:
            if q:
                ref_bids[p] = q
            else:
                ref_bids.pop(p, None)
        ref_asks: dict[Decimal, Decimal] = {}
        for p, q in snapshot[1]:
            if q:
                ref_asks[p] = q
            else:
                ref_asks.pop(p, None)
        book = book_of(snapshot[0], snapshot[1])
        for bids, asks in updates:
            book.apply(bids, asks)
            for side, changes in ((ref_bids, bids), (ref_asks, asks)):
                for p, q in changes:
                    if q:
                        side[p] = q
                    else:
                        side.pop(p, None)
            assert list(book.bids()) == sorted(ref_bids.items(), reverse=True)
            assert list(book.asks()) == sorted(ref_asks.items())
            assert book.top_bids(3) == tuple(sorted(ref_bids.items(), reverse=True)[:3])
            assert book.top_asks(3) == tuple(sorted(ref_asks.items())[:3])


wide_prices = st.integers(min_value=1, max_value=400).map(lambda i: Decimal(i) / 4)
wide_levels = st.lists(st.tuples(wide_prices, qtys), max_size=12)


class TestLargeBooks:
    """Books deeper than the search window near the touch stay exact everywhere."""

    @given(st.lists(st.tuples(wide_levels, wide_levels), max_size=40))
    def test_matches_reference_beyond_the_top_window(
        self, updates: list[tuple[list[Level], list[Level]]]
    ) -> None:
        ref_bids = {Decimal(i) / 4: Decimal(1) for i in range(1, 401, 2)}  # 200 levels
        ref_asks = dict(ref_bids)
        book = book_of(list(ref_bids.items()), list(ref_asks.items()))
        for bids, asks in updates:
            book.apply(bids, asks)
            for side, changes in ((ref_bids, bids), (ref_asks, asks)):
                for p, q in changes:
                    if q:
                        side[p] = q
                    else:
                        side.pop(p, None)
        assert list(book.bids()) == sorted(ref_bids.items(), reverse=True)
        assert list(book.asks()) == sorted(ref_asks.items())
