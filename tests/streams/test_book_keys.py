"""Wire-form book levels: float keys are exact for every symbol we know, Decimal keys
take over beyond float precision, and the finite-number rule still holds."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.errors import ParseError
from rxconnector.exchanges._levels import BookDiff, is_float_exact, wire_side
from rxconnector.exchanges._parsing import parse_levels
from rxconnector.exchanges.binance import wire as bw
from rxconnector.exchanges.bybit import wire as yw
from rxconnector.streams.book import LocalBook
from rxconnector.testing.simulator.config import _KNOWN, symbol_spec

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples.json"


def _grid_digits(top: Decimal, step: Decimal) -> int:
    """Significant digits of the largest multiple of ``step`` up to ``top``."""
    return len(str(int(top / step)))


def _filters(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "tickSize" in item or "stepSize" in item or "qtyStep" in item:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class TestFloatKeysAreExact:
    """The proof obligation of ``exchanges/_levels.py``: every price a symbol can quote
    has at most 15 significant digits, so its float is its own and ordered."""

    def test_every_filter_in_the_exchange_info_examples(self) -> None:
        filters = _filters(json.loads(EXAMPLES.read_text()))
        assert filters, "the examples have no tick/step sizes any more"
        for f in filters:
            if "tickSize" in f:
                assert _grid_digits(Decimal(f["maxPrice"]), Decimal(f["tickSize"])) <= 15, f
            step = f.get("stepSize") or f.get("qtyStep")
            if step is not None and Decimal(f.get("maxQty", "0")):
                # Quantities are never keys (only "zero or not" is read), checked anyway.
                assert _grid_digits(Decimal(f["maxQty"]), Decimal(step)) <= 15, f

    @pytest.mark.parametrize("seed", range(20))
    def test_every_simulator_symbol_even_after_a_thousandfold_move(self, seed: int) -> None:
        rng = random.Random(seed)
        names = list(_KNOWN) + [f"S{rng.randrange(10_000):04d}USDT" for _ in range(50)]
        for name in names:
            spec = symbol_spec(name, seed)
            assert _grid_digits(spec.initial_price * 1000, spec.tick_size) <= 15, spec
            assert _grid_digits(Decimal(10**9), spec.step_size) <= 15, spec

    @pytest.mark.parametrize("decimals", [0, 2, 5, 8])
    def test_adjacent_grid_prices_have_distinct_ordered_floats(self, decimals: int) -> None:
        """Spot check of the theorem at the edge: 15-digit neighbours stay apart."""
        rng = random.Random(decimals)
        for _ in range(20_000):
            ticks = rng.randrange(10**14, 10**15 - 1)  # 15 significant digits
            a = str(Decimal(ticks).scaleb(-decimals))
            b = str(Decimal(ticks + 1).scaleb(-decimals))
            assert float(a) < float(b)
            assert Decimal(repr(float(a))) == Decimal(a)

    def test_sixteen_digits_are_not_claimed_exact(self) -> None:
        assert is_float_exact(Decimal("123456789012345"))
        assert is_float_exact(Decimal("65000.01000000"))  # trailing zeros are no digits
        assert not is_float_exact(Decimal("1.000000000000001"))
        assert float("9007199254740993") == float("9007199254740992")  # why the rule exists


class TestWireSide:
    def test_keys_lines_and_removals(self) -> None:
        side = wire_side([["65000.01", "0.25000000"], ["64999.99", "0.00000000"]], ask=False)
        assert side.keys == [65000.01, 64999.99]
        assert side.lines == ["65000.01 0.25000000", "64999.99 0.00000000"]
        assert [bool(s) for s in side.sizes] == [True, False]
        asks = wire_side([["1.5", "2"]], ask=True)
        assert asks.keys == [-1.5] and not asks.exact

    def test_a_price_beyond_float_precision_keys_the_side_by_decimal(self) -> None:
        side = wire_side([["1.0000000000000001", "1"], ["2", "1"]], ask=False)
        assert side.exact
        assert side.keys == [Decimal("1.0000000000000001"), Decimal(2)]

    def test_exponent_notation_within_the_rule_is_read(self) -> None:
        side = wire_side([["1E+2", "5e-3"]], ask=False)
        assert side.keys == [100.0] and side.lines == ["1E+2 0.005"]  # str(Decimal): same digits

    @pytest.mark.parametrize(
        "level",
        [
            ["NaN", "1"],
            ["1", "nan"],
            ["Infinity", "1"],
            ["1", "-Infinity"],
            ["sNaN", "1"],
            ["1e999999", "1"],
            ["1", "0E-1000000"],
            ["0." + "0" * 60 + "1", "1"],
            ["1", "1" + "0" * 60],
            [None, "1"],
            [True, "1"],
            [["1"], "1"],
            [{"p": 1}, "1"],
            ["", "1"],
            ["1.2.3", "1"],
            ["1", "2", "3"],
            ["1"],
            7,
        ],
    )
    def test_hostile_levels_are_refused(self, level: Any) -> None:
        with pytest.raises((ValueError, TypeError, ArithmeticError)):
            wire_side([level], ask=False)

    @pytest.mark.parametrize(
        "level", [[" 1", "2"], ["1 ", "2"], ["1", " 2\n"], ["1_0", "2"], ["+1", "2"], ["1.", ".5"]]
    )
    def test_what_decimal_reads_is_read_the_same(self, level: list[str]) -> None:
        book = LocalBook()
        book.apply(wire_side([level], ask=False), wire_side([], ask=True))
        assert book.top_bids(1) == ((Decimal(level[0]), Decimal(level[1])),)

    @settings(max_examples=500, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.one_of(st.text(alphabet="0123456789.eE+-_ naNIfity", max_size=20), st.text()),
                st.one_of(st.text(alphabet="0123456789.eE+-_ naNIfity", max_size=20), st.text()),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def test_refuses_exactly_what_parse_levels_refuses(self, levels: list[Any]) -> None:
        """The finite-number rule, both ways: same refusals, same numbers otherwise."""
        raw = [list(level) for level in levels]
        try:
            want = parse_levels(raw)
        except (ValueError, TypeError, ArithmeticError):
            with pytest.raises((ValueError, TypeError, ArithmeticError)):
                wire_side(raw, ask=False)
            return
        side = wire_side(raw, ask=False)
        got = [
            (Decimal(line.partition(" ")[0]), Decimal(line.partition(" ")[2]))
            for line in side.lines
        ]
        assert got == list(want)
        assert [bool(s) for s in side.sizes] == [bool(q) for _, q in want]

    @pytest.mark.parametrize("parse", [bw.parse_book_diff])
    @pytest.mark.parametrize("bad", ['"NaN"', '"Infinity"', '"1e999999"', "[[[[1]]]]", "{}"])
    def test_binance_reader_turns_them_into_one_bounded_parse_error(
        self, parse: Any, bad: str
    ) -> None:
        payload = json.loads(
            '{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[[' + bad + ',"1"]],"a":[]}'
        )
        with pytest.raises(ParseError) as info:
            parse(payload, 0.0)
        assert "binance depthUpdate" in str(info.value)
        assert len(info.value.excerpt) <= ParseError.MAX_EXCERPT

    def test_bybit_reader(self) -> None:
        message = {
            "topic": "orderbook.50.BTCUSDT",
            "type": "delta",
            "ts": 5,
            "data": {
                "s": "BTCUSDT",
                "b": [["100.5", "0"]],
                "a": [["101", "2.5"]],
                "u": 9,
                "seq": 77,
            },
        }
        diff = yw.parse_book_diff(message, 1.5)
        assert isinstance(diff, BookDiff)
        assert (diff.first_update_id, diff.final_update_id, diff.sequence) == (9, 9, 77)
        assert (diff.is_snapshot, diff.event_time, diff.received_at) == (False, 5, 1.5)
        assert diff.bids.sizes == [0.0] and diff.asks.lines == ["101 2.5"]
        message["data"]["a"] = [["NaN", "1"]]  # type: ignore[index]
        with pytest.raises(ParseError, match="bybit orderbook"):
            yw.parse_book_diff(message, 0.0)


def _ref_apply(ref: dict[Decimal, tuple[str, str]], levels: list[tuple[str, str]]) -> None:
    for p, q in levels:
        if Decimal(q):
            ref[Decimal(p)] = (p, q)
        else:
            ref.pop(Decimal(p), None)


def _digits(p: str, q: str) -> tuple[Any, Any]:
    """Digits and exponent: equal only if the level reads exactly as the exchange wrote it."""
    return Decimal(p).as_tuple(), Decimal(q).as_tuple()


PRICES = st.one_of(
    st.integers(1, 10**6).map(lambda n: str(Decimal(n).scaleb(-2))),  # float-exact
    st.integers(1, 50).map(lambda n: f"{n}.{n:02d}0"),  # same prices, other notation
    st.integers(10**16, 10**16 + 20).map(lambda n: str(Decimal(n).scaleb(-16))),  # exact only
)
QTYS = st.sampled_from(["0", "0.000", "1", "2.50", "0.00000001"])
SIDE = st.lists(st.tuples(PRICES, QTYS), max_size=8)


class TestAgainstAReference:
    @settings(max_examples=300, deadline=None)
    @given(SIDE, SIDE, st.lists(st.tuples(SIDE, SIDE), max_size=10))
    def test_the_book_equals_a_dict_of_decimals(
        self, bids0: Any, asks0: Any, updates: list[Any]
    ) -> None:
        """Float keys, the switch to Decimal keys mid-stream and notation changes
        ("1.10" then "1.1") all leave exactly the reference book, digit for digit."""
        book = LocalBook()
        book.load_snapshot(
            wire_side([list(x) for x in bids0], ask=False),
            wire_side([list(x) for x in asks0], ask=True),
        )
        ref_b: dict[Decimal, tuple[str, str]] = {}
        ref_a: dict[Decimal, tuple[str, str]] = {}
        _ref_apply(ref_b, bids0)
        _ref_apply(ref_a, asks0)
        for b, a in updates:
            book.apply(
                wire_side([list(x) for x in b], ask=False),
                wire_side([list(x) for x in a], ask=True),
            )
            _ref_apply(ref_b, b)
            _ref_apply(ref_a, a)
            want_b = [_digits(*ref_b[k]) for k in sorted(ref_b, reverse=True)]
            want_a = [_digits(*ref_a[k]) for k in sorted(ref_a)]
            got_b = [(p.as_tuple(), q.as_tuple()) for p, q in book.top_bids(len(want_b) + 1)]
            got_a = [(p.as_tuple(), q.as_tuple()) for p, q in book.top_asks(len(want_a) + 1)]
            assert got_b == want_b
            assert got_a == want_a
            assert book.is_crossed == bool(ref_b and ref_a and max(ref_b) >= min(ref_a))
            assert book.bid_count == len(ref_b) and book.ask_count == len(ref_a)
