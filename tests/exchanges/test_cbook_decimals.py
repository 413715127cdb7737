"""Decimals the compiled core builds directly (without text) are indistinguishable from
``Decimal(text)``: value, digits, exponent, ``str``, hash, arithmetic and pickling.

The direct path fills CPython's private decimal object layout; ``_cbook`` turns it on
only after checking that layout at import (``DIRECT_DECIMALS``). These tests pin both:
that it is on where it should be (so a silent fallback to the slower text path is
noticed) and that what it builds is right.
"""

from __future__ import annotations

import decimal
import pickle
import platform
import sys
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_cbook = pytest.importorskip("rxconnector.exchanges._cbook")


def _levels(text: str) -> tuple[Decimal, Decimal]:
    packed = _cbook.pack_levels(f'[["{text}","{text}"]]'.encode())
    price, quantity = packed[0]
    return price, quantity


def test_direct_path_is_on_for_64_bit_cpython_with_the_c_decimal() -> None:
    c_decimal = (
        type(Decimal) is type
        and Decimal.__module__ == "decimal"
        and (getattr(decimal, "__libmpdec_version__", None) is not None)
    )
    if platform.python_implementation() != "CPython" or sys.maxsize <= 2**32 or not c_decimal:
        pytest.skip("the direct path is only expected on 64-bit CPython with _decimal")
    assert _cbook.DIRECT_DECIMALS == 1


NUMBERS = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
    st.one_of(st.integers(0, 10**6), st.integers(0, 10**19)),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=18)),
)


@settings(max_examples=400, deadline=None)
@given(NUMBERS)
def test_built_decimals_equal_decimal_of_the_text(text: str) -> None:
    expected = Decimal(text)
    for got in _levels(text):
        assert type(got) is Decimal
        assert got.as_tuple() == expected.as_tuple()
        assert str(got) == str(expected)
        assert repr(got) == repr(expected)
        assert got == expected and hash(got) == hash(expected)
        assert got + 1 == expected + 1 and got * 3 == expected * 3
        assert got.normalize() == expected.normalize()
        assert pickle.loads(pickle.dumps(got)) == expected


def test_edges_of_one_word() -> None:
    for text in ["0", "0.00000000", "9999999999999999999", "10000000000000000000", "1.50"]:
        expected = Decimal(text)
        price, quantity = _levels(text)
        assert price.as_tuple() == expected.as_tuple() == quantity.as_tuple()
