"""The compiled ``pack_levels`` obeys the wire_levels contract: for any text, random or
hostile, it returns the levels ``parse_levels(orjson.loads(raw))`` returns (same digits,
same exponents) or raises an exception of the same type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.exchanges.wire_levels import pack_levels_py

_cbook = pytest.importorskip("rxconnector.exchanges._cbook")


def _outcome(fn: Any, raw: Any) -> tuple[str, Any]:
    try:
        levels = fn(raw)
    except Exception as exc:  # the type is what the contract pins
        return ("raises", type(exc))
    return ("levels", [(p.as_tuple(), q.as_tuple()) for p, q in levels])


def assert_same(raw: Any) -> None:
    assert _outcome(_cbook.pack_levels, raw) == _outcome(pack_levels_py, raw), raw


PLAIN = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
    st.integers(0, 10**21),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=20)),
)
WEIRD = st.sampled_from(
    [
        "1E+3", "1e3", "-1", "+1", "-0", " 1", "1 ", "1_0", "NaN", "Infinity", "sNaN",
        "", ".5", "1.", "0.00000000", "0" * 30, "1" * 25, "1." + "0" * 19,
        "0." + "0" * 60 + "1", "1" * 60, "\u0661", "1.5\\u0030", '1"', "0x10", "1e999999",
        "99999999999999999999", "100000000000000000000", "0.000000000000000001",
    ]
)  # fmt: skip
NUMBER_TEXT = st.one_of(PLAIN, WEIRD, st.text(max_size=6))
SPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n  "])


@st.composite
def side_text(draw: Any) -> bytes:
    """One side as JSON text: mostly well formed, with any whitespace and any strings."""
    levels = draw(st.lists(st.tuples(NUMBER_TEXT, NUMBER_TEXT), max_size=6))
    ws = draw(SPACE)
    body = f",{ws}".join(
        f"[{ws}{orjson.dumps(p).decode()}{ws},{ws}{orjson.dumps(q).decode()}{ws}]"
        for p, q in levels
    )
    return f"{draw(SPACE)}[{ws}{body}{ws}]{draw(SPACE)}".encode()


@st.composite
def hostile_text(draw: Any) -> bytes:
    """Valid text with one byte inserted, deleted or replaced, or truncated."""
    raw = bytearray(draw(side_text()))
    if not raw:
        return bytes(raw)
    i = draw(st.integers(0, len(raw) - 1))
    action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
    byte = draw(st.sampled_from(list(b'[],"0.9-eE \\x\x00\xff')))
    if action == "insert":
        raw.insert(i, byte)
    elif action == "delete":
        del raw[i]
    elif action == "replace":
        raw[i] = byte
    else:
        del raw[i:]
    return bytes(raw)


class TestAgainstThePythonPath:
    @settings(max_examples=600, deadline=None)
    @given(side_text())
    def test_well_formed_sides(self, raw: bytes) -> None:
        assert_same(raw)

    @settings(max_examples=600, deadline=None)
    @given(hostile_text())
    def test_hostile_sides(self, raw: bytes) -> None:
        assert_same(raw)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=40))
    def test_random_bytes(self, raw: bytes) -> None:
        assert_same(raw)

    @pytest.mark.parametrize(
        "raw",
        [
            b"[]", b" [ ] ", b"", b"[", b"{}", b"null", b"1", b'"1"', b"[[]]",
            b'[["1"]]', b'[["1","2","3"]]', b'[["1","2"]]x', b'[["1","2"],]',
            b'[[1.5,"2"]]', b'[["1",2]]', b'[[null,"2"]]', b'[["1","2"]', b'[["1" "2"]]',
            b'[["1","2"]][]', b'[{"p":"1"}]', b'[["\\u0031","1"]]', b'[["1","NaN"]]',
            b'[["1","-0"]]', b'[["0","0"]]', b'[["1.0","1.00"],["1.00","0"]]',
        ],
    )  # fmt: skip
    def test_edge_cases(self, raw: bytes) -> None:
        assert_same(raw)


class TestFastPath:
    def test_plain_numbers_keep_their_digits_and_exponent(self) -> None:
        packed = _cbook.pack_levels(b'[["1.50","0.00000000"],["30000.01","2"],["0.005","7"]]')
        assert isinstance(packed, _cbook.PackedLevels)
        got = [(p.as_tuple(), q.as_tuple()) for p, q in packed]
        want = [
            (Decimal(p).as_tuple(), Decimal(q).as_tuple())
            for p, q in [("1.50", "0.00000000"), ("30000.01", "2"), ("0.005", "7")]
        ]
        assert got == want
        assert packed == packed.as_tuple() and len(packed) == 3
        assert packed[-1] == (Decimal("0.005"), Decimal("7"))

    @pytest.mark.parametrize(
        "make", [bytes, bytearray, memoryview, msgspec.Raw], ids=lambda f: f.__name__
    )
    def test_every_buffer_type(self, make: Any) -> None:
        packed = _cbook.pack_levels(make(b'[["10.5","1"]]'))
        assert isinstance(packed, _cbook.PackedLevels)
        assert packed == ((Decimal("10.5"), Decimal("1")),)

    @pytest.mark.parametrize("raw", [b'[["1E+3","1"]]', b'[["1","x"]]', b"[", b'[["5","1"]]'])
    def test_msgspec_raw_on_both_paths(self, raw: bytes) -> None:
        """The Python path reads a ``msgspec.Raw`` too (through a memoryview)."""
        assert _outcome(_cbook.pack_levels, msgspec.Raw(raw)) == _outcome(pack_levels_py, raw)
        assert _outcome(pack_levels_py, msgspec.Raw(raw)) == _outcome(pack_levels_py, raw)
        with pytest.raises(TypeError):
            pack_levels_py(12)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            _cbook.pack_levels(12)

    @pytest.mark.parametrize("count", [63, 64, 65, 129, 1000])
    def test_long_sides(self, count: int) -> None:
        """Past the parser's stack buffer (64 levels) the heap takes over."""
        raw = orjson.dumps([[f"{30000 + i}.{i % 100:02d}", f"{i}.5"] for i in range(count)])
        assert type(_cbook.pack_levels(raw)) is _cbook.PackedLevels
        assert_same(raw)
        assert_same(raw[:-1] + b',["1E+3","1"]]')  # declined at the very end

    def test_what_the_fast_grammar_declines_goes_to_python(self) -> None:
        """An exponent form is valid: the Python path returns plain tuples for it."""
        assert _cbook.pack_levels(b'[["1E+3","1"]]') == ((Decimal("1E+3"), Decimal(1)),)
        assert type(_cbook.pack_levels(b'[["1E+3","1"]]')) is tuple
        assert type(_cbook.pack_levels('[["1","1"]]')) is tuple  # a str is not a buffer

    def test_packed_levels_pickle_as_plain_tuples(self) -> None:
        import pickle

        packed = _cbook.pack_levels(b'[["1.0","2"]]')
        assert pickle.loads(pickle.dumps(packed)) == ((Decimal("1.0"), Decimal("2")),)
        assert hash(packed) == hash(packed.as_tuple())
