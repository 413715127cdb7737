"""The compiled book (``_cbook.CBook``) is LocalBook, observably: random sequences of
snapshots (with and without ``limit``), applies (Decimal tuples and packed levels, with
repeated prices and odd notations), trims and reads of every kind give the same results,
digit for digit and exponent for exponent, and the same exceptions; numbers the compiled
layout cannot hold exactly switch it to a LocalBook without changing any answer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.exchanges.book import LocalBook
from rxconnector.exchanges.wire_levels import pack_levels_py

_cbook = pytest.importorskip("rxconnector.exchanges._cbook")

#: Prices: plain ticks, the same prices in other notations, neighbours only 10^-17
#: apart, and numbers the compiled layout cannot hold (exponent forms it can, negative,
#: 19+ fractional digits, 10^20 and more, huge exponents).
COMMON_PRICE = st.one_of(
    st.integers(1, 60).map(lambda n: str(Decimal(n).scaleb(-1))),
    st.integers(1, 6).map(lambda n: f"{n}.{n}00"),
    st.integers(0, 4).map(lambda n: str(Decimal(10**16 + n).scaleb(-16))),
    st.sampled_from(["1E+1", "2.0", "1.00", "0", "0.0"]),
)
PRICE = st.one_of(
    COMMON_PRICE,
    st.sampled_from(
        ["-1", "1.0000000000000000001", "1" * 30, "1E+60", "1e-3", "99999999999999999999.5"]
    ),
)
QTY = st.sampled_from(
    ["0", "0.000", "0.00000000", "1", "2.50", "3", "1E+3", "0.000000000000000001"]
)
ODD_QTY = st.sampled_from(["-1", "1" * 30, "0E-30", "1.00000000000000000000001", "-0"])


def sides(price: Any, qty: Any) -> Any:
    return st.lists(st.tuples(price, qty), max_size=8)


NORMAL_SIDE = sides(COMMON_PRICE, QTY)
ANY_SIDE = st.one_of(NORMAL_SIDE, NORMAL_SIDE, NORMAL_SIDE, sides(PRICE, st.one_of(QTY, ODD_QTY)))

OP = st.one_of(
    st.tuples(st.just("snapshot"), ANY_SIDE, ANY_SIDE, st.sampled_from([None, 0, 1, 3, 6])),
    st.tuples(st.just("apply"), ANY_SIDE, ANY_SIDE, st.booleans(), st.booleans()),
    st.tuples(st.just("apply"), ANY_SIDE, ANY_SIDE, st.booleans(), st.booleans()),
    st.tuples(st.just("trim"), st.integers(-1, 8)),
    st.tuples(
        st.just("read"),
        st.sampled_from(
            [
                "top_bids",
                "top_asks",
                "bids",
                "asks",
                "best_bid",
                "best_ask",
                "is_consistent",
                "covers",
                "bid_floor",
                "ask_ceiling",
                "is_crossed",
                "clear",
            ]
        ),
        st.integers(-1, 10),
    ),
)


def digits(value: Any) -> Any:
    """A comparable form that tells Decimal('1.0') from Decimal('1.00')."""
    if isinstance(value, Decimal):
        return ("D", value.as_tuple())
    if isinstance(value, tuple | list):
        return [digits(v) for v in value]
    return value


def decimals(raw: list[tuple[str, str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in raw]


def wire(raw: list[tuple[str, str]]) -> bytes:
    return orjson.dumps([[p, q] for p, q in raw])


def outcome(fn: Any) -> Any:
    try:
        return ("ok", digits(fn()))
    except Exception as exc:
        return ("raises", type(exc))


def run(book: Any, op: tuple[Any, ...], compiled: bool) -> Any:
    """One operation on ``book``; packed levels come from the matching parser."""
    kind = op[0]
    if kind == "snapshot":
        return outcome(lambda: book.load_snapshot(decimals(op[1]), decimals(op[2]), limit=op[3]))
    if kind == "apply":
        pack = _cbook.pack_levels if compiled else pack_levels_py

        def apply() -> None:  # packing raises (a number out of range) like parsing does
            bids, asks = (
                pack(wire(raw)) if packed else decimals(raw)
                for raw, packed in ((op[1], op[3]), (op[2], op[4]))
            )
            book.apply(bids, asks)

        return outcome(apply)
    if kind == "trim":
        return outcome(lambda: book.trim(op[1]))
    name, n = op[1], op[2]
    attr = getattr(book, name)
    if name in ("top_bids", "top_asks", "is_consistent", "covers"):
        return outcome(lambda: attr(n))
    if name in ("bids", "asks"):
        return outcome(lambda: list(attr()))
    if name == "clear":
        return outcome(attr)
    return ("ok", digits(attr))


def whole_state(book: Any) -> Any:
    return digits(
        [
            list(book.bids()),
            list(book.asks()),
            book.top_bids(1000),
            book.top_asks(1000),
            book.best_bid,
            book.best_ask,
            book.bid_count,
            book.ask_count,
            len(book),
            book.is_crossed,
            book.bid_floor,
            book.ask_ceiling,
            [book.covers(n) for n in range(10)],
            [book.is_consistent(n) for n in range(10)],
        ]
    )


class TestEquivalence:
    @settings(max_examples=700, deadline=None)
    @given(st.lists(OP, max_size=25))
    def test_random_operation_sequences(self, ops: list[tuple[Any, ...]]) -> None:
        ref = LocalBook()
        book = _cbook.CBook()
        for op in ops:
            assert run(book, op, True) == run(ref, op, False), op
            assert (book.bid_count, book.ask_count) == (ref.bid_count, ref.ask_count)
        assert whole_state(book) == whole_state(ref)
        assert "LocalBook" in repr(book)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(sides(COMMON_PRICE, QTY), sides(COMMON_PRICE, QTY)), max_size=30))
    def test_deep_books_with_updates_everywhere(self, updates: list[Any]) -> None:
        snap = [(str(Decimal(i).scaleb(-1)), "1.0") for i in range(1, 700, 3)]
        ref = LocalBook()
        book = _cbook.CBook()
        for b in (ref, book):
            b.load_snapshot(decimals(snap), decimals([(str(Decimal(p) + 100), q) for p, q in snap]))
        for bids, asks in updates:
            ref.apply(decimals(bids), decimals(asks))
            book.apply(_cbook.pack_levels(wire(bids)), decimals(asks))
            assert digits(book.top_bids(20)) == digits(ref.top_bids(20))
        assert whole_state(book) == whole_state(ref)
        assert book.python_book is None  # every number here fits the compiled layout


class TestExactness:
    def test_digits_and_exponent_survive(self) -> None:
        book = _cbook.CBook()
        book.apply(_cbook.pack_levels(b'[["1.50","2.000"],["0.005","0.00000001"]]'), [])
        assert digits(book.top_bids(2)) == digits(
            ((Decimal("1.50"), Decimal("2.000")), (Decimal("0.005"), Decimal("0.00000001")))
        )

    def test_a_quantity_change_keeps_the_cached_price(self) -> None:
        book = _cbook.CBook()
        book.apply(_cbook.pack_levels(b'[["10.5","1"]]'), [])
        first = book.best_bid
        assert book.best_bid is first  # cached
        book.apply(_cbook.pack_levels(b'[["10.5","2"]]'), [])
        second = book.best_bid
        assert second is not first and second[0] is first[0] and second[1] == 2
        book.apply(_cbook.pack_levels(b'[["10.50","3"]]'), [])  # other notation
        assert str(book.best_bid[0]) == "10.50"

    def test_numeric_zero_removes(self) -> None:
        book = _cbook.CBook()
        book.apply(_cbook.pack_levels(b'[["10","1"]]'), [])
        book.apply(_cbook.pack_levels(b'[["10.00","0.00000000"]]'), [])
        assert book.bid_count == 0 and book.python_book is None

    def test_prices_one_float_apart_are_two_levels(self) -> None:
        a, b = Decimal("1.00000000000000001"), Decimal("1.00000000000000002")
        book = _cbook.CBook()
        book.load_snapshot([(a, Decimal(1)), (b, Decimal(2))], [])
        book.apply([(a, Decimal(0))], [])
        assert book.top_bids(5) == ((b, Decimal(2)),) and book.python_book is None

    def test_crossed_is_seen_right_after_a_snapshot(self) -> None:
        book = _cbook.CBook()
        book.load_snapshot([(Decimal("10"), Decimal(1))], [(Decimal("10.0"), Decimal(1))])
        assert book.is_crossed and not book.is_consistent(1)

    @pytest.mark.parametrize(
        "price", ["1.0000000000000000001", "100000000000000000000", "-1", "1E+60"]
    )
    def test_unrepresentable_numbers_switch_to_python(self, price: str) -> None:
        book = _cbook.CBook()
        book.load_snapshot(
            [(Decimal("5"), Decimal("1")), (Decimal("4"), Decimal("1"))],
            [(Decimal("6.00"), Decimal("1"))],
            limit=2,
        )
        book.apply([], [(Decimal("7"), Decimal("2"))])
        book.apply([(Decimal(price), Decimal("3"))], [])
        assert isinstance(book.python_book, LocalBook)
        assert book.bid_floor == Decimal(4) and book.ask_ceiling is None
        want = [(Decimal(price), Decimal(3))] if Decimal(price) >= 4 else []
        assert list(book.bids()) == [*want, (Decimal(5), Decimal(1)), (Decimal(4), Decimal(1))]
        assert digits(list(book.asks())) == digits(
            [(Decimal("6.00"), Decimal(1)), (Decimal(7), Decimal(2))]
        )

    def test_a_generator_is_read_once_even_when_switching(self) -> None:
        book = _cbook.CBook()
        book.load_snapshot((lv for lv in [(Decimal("1"), Decimal("1"))]), iter([]))
        book.apply((lv for lv in [(Decimal("2"), Decimal("1")), (Decimal("-3"), Decimal(1))]), [])
        assert list(book.bids()) == [
            (Decimal(2), Decimal(1)),
            (Decimal(1), Decimal(1)),
            (Decimal(-3), Decimal(1)),
        ]
        assert book.python_book is not None

    def test_bad_arguments_raise_like_localbook(self) -> None:
        for b in (LocalBook(), _cbook.CBook()):
            with pytest.raises(TypeError):
                b.load_snapshot(None, [])  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                b.apply([])  # type: ignore[call-arg]
            b.apply(bids=[], asks=[])
            b.load_snapshot(bids=[], asks=[], limit=3)
