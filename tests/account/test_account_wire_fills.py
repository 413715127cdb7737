"""A fill's Execution built from the order update just parsed (Binance Spot and USD-M).

``parse_user_event`` / ``parse_futures_user_event`` used to parse a ``TRADE`` report
twice: once into the :class:`OrderUpdate`, once more (every shared field and number
again) into the :class:`Execution`. They now take the shared fields from the update and
read only the trade id, the maker flag and the trade time. That must change nothing:
for ANY event - documented, recorded, simulator-shaped, or mangled by hypothesis with
missing keys, wrong types, non-finite and absurd numbers - the result must be exactly
what the two public parsers give together (the same models, or the same ParseError
message), which is what these tests pin.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxconnector.errors import ParseError
from rxconnector.exchanges.binance import futures_user_stream as fu
from rxconnector.exchanges.binance import user_stream as us
from rxconnector.models import Execution, OrderUpdate


def spot_reference(event: Any, received_at: float) -> list[Any]:
    """What ``parse_user_event`` returned for an executionReport before the change."""
    update = us.parse_execution_report(event, received_at)
    execution = us.parse_execution(event, received_at)
    return [update] if execution is None else [update, execution]


def usdm_reference(event: Any, received_at: float) -> list[Any]:
    """What ``parse_futures_user_event`` returned for an ORDER_TRADE_UPDATE before."""
    update = fu.parse_order_trade_update(event, received_at)
    execution = fu.parse_order_execution(event, received_at)
    return [update] if execution is None else [update, execution]


def outcome(parse: Any, event: Any) -> tuple[str, Any]:
    """The models, or the exception's class and message."""
    try:
        return "models", parse(event, 1.5)
    except Exception as exc:  # every exception counts: the same one is required
        return type(exc).__name__, str(exc)


def same_models(got: tuple[str, Any], want: tuple[str, Any]) -> None:
    assert got == want
    if got[0] == "models":  # equal AND of the same types (Decimal is not float)
        for a, b in zip(got[1], want[1], strict=True):
            assert type(a) is type(b)
            for name in a.__attrs_attrs__:
                assert type(getattr(a, name.name)) is type(getattr(b, name.name))


SPOT_FILL: dict[str, Any] = {
    "e": "executionReport", "E": 1700000000123, "s": "BTCUSDT", "c": "rx-7f3a9c",
    "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "0.01000000", "p": "30000.00000000",
    "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": "TRADE",
    "X": "FILLED", "r": "NONE", "i": 41, "l": "0.01000000", "z": "0.01000000",
    "L": "30000.00000000", "n": "0.00001000", "N": "BTC", "T": 1700000000123,
    "t": 9001, "I": 77, "w": False, "m": False, "M": False, "O": 1700000000001,
    "Z": "300.00000000", "Y": "300.00000000", "Q": "0.00000000", "W": 1700000000001,
    "V": "NONE",
}  # fmt: skip

USDM_FILL: dict[str, Any] = {
    "e": "ORDER_TRADE_UPDATE", "E": 1700000000123, "T": 1700000000123, "o": {
        "s": "BTCUSDT", "c": "rx-1b2c", "S": "SELL", "o": "LIMIT", "f": "GTC",
        "q": "0.010", "p": "30000.00", "ap": "30000.00", "sp": "0", "x": "TRADE",
        "X": "FILLED", "i": 8886774, "l": "0.010", "z": "0.010", "L": "30000.00",
        "T": 1700000000123, "t": 555, "b": "0", "a": "0", "m": True, "R": False,
        "ps": "BOTH", "N": "USDT", "n": "0.12000000"},
}  # fmt: skip

HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no NaN: as text below
    st.text(max_size=12),
    st.sampled_from(
        ["NaN", "Infinity", "-Infinity", "sNaN", "1e999", "1e-999", "1e51", "", "0",
         "0.000", "-0", "1.5", "-3", " 7 ", "1_0", "TRADE", "NEW", "BUY", "SELL", "x" * 500]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip


def mangled(base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some of ``keys`` dropped or set to a hostile value."""
    edits = st.dictionaries(
        st.sampled_from(keys), st.one_of(st.just(KeyError), HOSTILE_VALUES), max_size=4
    )

    def apply(changes: dict[str, Any]) -> dict[str, Any]:
        event = copy.deepcopy(base)
        for key, value in changes.items():
            if value is KeyError:
                event.pop(key, None)
            else:
                event[key] = value
        return event

    return edits.map(apply)


SPOT_KEYS = ["s", "c", "C", "S", "o", "X", "x", "i", "p", "q", "z", "Z", "L", "l", "n", "N",
             "T", "t", "m", "E"]  # fmt: skip
ORDER_KEYS = ["s", "c", "S", "o", "X", "x", "i", "p", "q", "ap", "z", "L", "l", "n", "N",
              "T", "t", "m"]  # fmt: skip


def usdm_mangled() -> st.SearchStrategy[dict[str, Any]]:
    def wrap(order: dict[str, Any]) -> dict[str, Any]:
        return {**USDM_FILL, "o": order}

    return mangled(USDM_FILL["o"], ORDER_KEYS).map(wrap)


class TestDocumentedAndRecorded:
    def test_spot_examples(self, examples: dict[str, Any]) -> None:
        report = examples["binance.spot.uds.executionReport"]["event"]
        fill = {**report, "x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.5", "z": "0.5",
                "Z": "0.05", "L": "0.1", "n": "0.0001", "N": "BNB", "t": 12, "m": True}  # fmt: skip
        for event in (report, fill, SPOT_FILL):
            same_models(outcome(us.parse_user_event, event), outcome(spot_reference, event))
        assert [type(m) for m in us.parse_user_event(fill, 0.0)] == [OrderUpdate, Execution]

    @pytest.mark.parametrize(
        "key",
        ["binance.usdm.uds.ORDER_TRADE_UPDATE", "binance.usdm.uds.ORDER_TRADE_UPDATE.recorded"],
    )
    def test_usdm_examples(self, examples: dict[str, Any], key: str) -> None:
        event = examples[key]
        as_fill = {**event, "o": {**event["o"], "x": "TRADE", "l": "0.001", "L": "7100"}}
        for candidate in (event, as_fill, USDM_FILL):
            got = outcome(fu.parse_futures_user_event, candidate)
            same_models(got, outcome(usdm_reference, candidate))

    def test_a_trade_that_filled_nothing_is_still_no_fill(self) -> None:
        event = {**SPOT_FILL, "l": "0.00000000", "t": -1}
        assert us.parse_user_event(event, 0.0) == [us.parse_execution_report(event, 0.0)]

    def test_a_bad_maker_flag_is_the_same_parse_error(self) -> None:
        event = {**SPOT_FILL, "m": "false"}
        with pytest.raises(ParseError) as new:
            us.parse_user_event(event, 0.0)
        with pytest.raises(ParseError) as old:
            spot_reference(event, 0.0)
        assert str(new.value) == str(old.value)
        assert "expected a JSON boolean" in str(new.value)


class TestAnyEventGivesTheSameAsBefore:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mangled(SPOT_FILL, SPOT_KEYS))
    def test_spot_execution_report(self, event: dict[str, Any]) -> None:
        same_models(outcome(us.parse_user_event, event), outcome(spot_reference, event))

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(usdm_mangled())
    def test_usdm_order_trade_update(self, event: dict[str, Any]) -> None:
        got = outcome(fu.parse_futures_user_event, event)
        same_models(got, outcome(usdm_reference, event))

    @settings(max_examples=200, deadline=None)
    @given(
        st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=0, max_value=10**9),
        st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=0, max_value=10**4),
        st.integers(min_value=-1, max_value=2**63 - 1),
        st.booleans(),
    )
    def test_valid_fills(self, price: Decimal, quantity: Decimal, trade: int, maker: bool) -> None:
        spot = {**SPOT_FILL, "L": str(price), "l": str(quantity), "t": trade, "m": maker}
        same_models(outcome(us.parse_user_event, spot), outcome(spot_reference, spot))
        order = {**USDM_FILL["o"], "L": str(price), "l": str(quantity), "t": trade, "m": maker}
        usdm = {**USDM_FILL, "o": order}
        same_models(outcome(fu.parse_futures_user_event, usdm), outcome(usdm_reference, usdm))
