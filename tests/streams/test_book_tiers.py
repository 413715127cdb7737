"""LocalBook's cold tier: snapshot levels kept as strings with float locator keys stay
exactly the reference book through updates at any depth, partial reads and trims, even
for prices a float cannot tell apart."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.exchanges.book import LocalBook
from rxconnector.models import Level

PRICES = st.one_of(
    st.integers(1, 400).map(lambda n: str(Decimal(n).scaleb(-1))),  # "12.3"
    st.integers(1, 40).map(lambda n: f"{n}.{n % 10}00"),  # the same prices, other notation
    # 17 significant digits: neighbours share one float; only Decimal tells them apart
    st.integers(0, 6).map(lambda n: str(Decimal(10**16 + n).scaleb(-16))),
)
QTYS = st.sampled_from(["0", "0.000", "1", "2.50", "0.00000001"])
SIDE = st.lists(st.tuples(PRICES, QTYS), max_size=12)


def _levels(raw: list[tuple[str, str]]) -> list[Level]:
    return [(Decimal(p), Decimal(q)) for p, q in raw]


def _apply(ref: dict[Decimal, Level], raw: list[tuple[str, str]]) -> None:
    for level in _levels(raw):
        if level[1]:
            ref[level[0]] = level
        else:
            ref.pop(level[0], None)


def _digits(levels: Any) -> list[tuple[Any, Any]]:
    """Digits and exponents: equal only if every level reads exactly as it was sent."""
    return [(p.as_tuple(), q.as_tuple()) for p, q in levels]


@pytest.fixture(scope="class", params=["python", "compiled"])
def implementation(request: pytest.FixtureRequest) -> Iterator[None]:
    """``LocalBook`` means each implementation in turn (the compiled book has no cold
    tier, but must give the same answers)."""
    if request.param == "python":
        yield
        return
    cbook = pytest.importorskip("rxconnector.exchanges._cbook")
    patch = pytest.MonkeyPatch()
    patch.setattr(f"{__name__}.LocalBook", cbook.CBook)
    yield
    patch.undo()


@pytest.mark.usefixtures("implementation")
class TestAgainstAReference:
    @settings(max_examples=400, deadline=None)
    @given(
        SIDE,
        SIDE,
        st.lists(st.tuples(SIDE, SIDE, st.integers(0, 5)), max_size=10),
        st.sampled_from([None, 3, 6]),
    )
    def test_the_book_equals_a_dict_of_decimals(
        self, bids0: Any, asks0: Any, updates: list[Any], trim: int | None
    ) -> None:
        book = LocalBook()
        book.load_snapshot(_levels(bids0), _levels(asks0))
        ref_b: dict[Decimal, Level] = {}
        ref_a: dict[Decimal, Level] = {}
        _apply(ref_b, bids0)
        _apply(ref_a, asks0)
        for b, a, peek in updates:
            want_b = [ref_b[k] for k in sorted(ref_b, reverse=True)]
            want_a = [ref_a[k] for k in sorted(ref_a)]
            # a partial read first: only the best `peek` cold levels move up
            assert _digits(book.top_bids(peek)) == _digits(want_b[:peek])
            assert _digits(book.top_asks(peek)) == _digits(want_a[:peek])
            book.apply(_levels(b), _levels(a))
            _apply(ref_b, b)
            _apply(ref_a, a)
            if trim is not None:
                book.trim(trim)
                while len(ref_b) > trim:
                    del ref_b[min(ref_b)]
                while len(ref_a) > trim:
                    del ref_a[max(ref_a)]
            assert book.is_crossed == bool(ref_b and ref_a and max(ref_b) >= min(ref_a))
            assert book.bid_count == len(ref_b) and book.ask_count == len(ref_a)
        want_b = [ref_b[k] for k in sorted(ref_b, reverse=True)]
        want_a = [ref_a[k] for k in sorted(ref_a)]
        assert _digits(book.bids()) == _digits(want_b)
        assert _digits(book.asks()) == _digits(want_a)
        assert _digits(book.top_bids(len(want_b) + 1)) == _digits(want_b)
        assert _digits(book.top_asks(len(want_a) + 1)) == _digits(want_a)


class TestColdTier:
    def test_a_snapshot_stays_cold_until_read_or_touched(self) -> None:
        book = LocalBook()
        bids = [(Decimal(f"{100 - i}.50"), Decimal("1.00000000")) for i in range(50)]
        book.load_snapshot(bids, [(Decimal("200.00"), Decimal("2"))])
        side = book._bids
        assert len(side.cold) == 50 and not side.levels
        assert [str(p) for p, _ in book.top_bids(3)] == ["100.50", "99.50", "98.50"]
        assert len(side.levels) == 3 and len(side.cold) == 47
        book.apply([(Decimal("60.5"), Decimal("7"))], [])  # deep: brings up 61.50 .. 60.50
        assert len(side.cold) == 9  # 59.50 .. 51.50 stay strings
        assert book.top_bids(50)[40] == (Decimal("60.5"), Decimal("7"))
        assert book.bid_count == 50

    def test_prices_one_float_apart_are_two_levels(self) -> None:
        a, b = Decimal("1.00000000000000001"), Decimal("1.00000000000000002")
        assert float(a) == float(b)
        book = LocalBook()
        book.load_snapshot([(a, Decimal(1)), (b, Decimal(2))], [])
        book.apply([(a, Decimal(0))], [])
        assert book.top_bids(5) == ((b, Decimal(2)),)

    def test_crossed_is_seen_right_after_a_snapshot(self) -> None:
        book = LocalBook()
        book.load_snapshot([(Decimal("10"), Decimal(1))], [(Decimal("10.0"), Decimal(1))])
        assert book.is_crossed and not book.is_consistent(1)
