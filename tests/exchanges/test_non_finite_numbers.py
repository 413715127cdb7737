"""NaN, Infinity, sNaN and absurd exponents never reach a model (issue #16).

``Decimal`` accepts ``"NaN"``, ``"Infinity"``, ``"sNaN"`` and ``"1e999999"``; they used to
flow into tickers, book tickers, books, trades, balances and exchange filters, and a NaN
tick size then made ``place_order`` raise ``decimal.InvalidOperation``. The sweep below
takes every documented payload of every WebSocket parser of every venue (public and
private), puts each hostile number into each numeric field in turn, and requires a
:class:`ParseError` - or, for a field the parser does not read, a model in which no
non-finite or absurd number appears anywhere. (REST answers: ``tests/rest/
test_malformed_bodies.py``.)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import (
    MAX_DECIMAL_EXPONENT,
    opt_decimal,
    parse_levels,
    to_decimal,
)
from rxconnector.exchanges.binance import futures_user_stream as fu
from rxconnector.exchanges.binance import user_stream as us
from rxconnector.exchanges.bybit import private as pv

from .test_binance_parsers import CASES as BINANCE_CASES
from .test_bybit_parsers import CASES as BYBIT_CASES

#: Every hostile spelling ``Decimal()`` accepts, and magnitudes beyond any market.
HOSTILE = (
    "NaN",
    "-nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e999999",
    "1E+51",
    "-1e-51",
    "0E-1000000",
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

PRIVATE_CASES: list[tuple[str, Callable[[Any, float], Any]]] = [
    ("binance.spot.uds.outboundAccountPosition", us.parse_user_event),
    ("binance.spot.uds.balanceUpdate", us.parse_user_event),
    ("binance.spot.uds.executionReport", us.parse_user_event),
    ("bybit.v5.ws.private.order", pv.parse_orders),
    ("bybit.v5.ws.private.execution", pv.parse_executions),
    ("bybit.v5.ws.private.wallet", pv.parse_wallet),
    ("bybit.v5.ws.private.position", pv.parse_positions),
    ("binance.usdm.uds.ORDER_TRADE_UPDATE", fu.parse_futures_user_event),
    ("binance.usdm.uds.ORDER_TRADE_UPDATE.recorded", fu.parse_futures_user_event),
    ("binance.usdm.uds.ACCOUNT_UPDATE.recorded", fu.parse_futures_user_event),
    ("binance.usdm.uds.MARGIN_CALL", fu.parse_futures_user_event),
    ("binance.usdm.uds.TRADE_LITE.recorded", fu.parse_trade_lite),
]


def _numeric_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, dict | list):
            yield from _numeric_paths(value, (*prefix, key))
        elif isinstance(value, str) and _NUMBER.match(value):
            yield (*prefix, key)


def _with(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(payload)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return mutated


def insane_numbers(result: Any) -> list[Decimal]:
    """Every Decimal anywhere in a parse result that is non-finite or absurdly scaled."""
    found: list[Decimal] = []
    stack = [result]
    while stack:
        item = stack.pop()
        if isinstance(item, Decimal):
            if not item.is_finite() or abs(item.adjusted()) > MAX_DECIMAL_EXPONENT:
                found.append(item)
        elif attrs.has(type(item)):
            stack.extend(getattr(item, f.name) for f in attrs.fields(type(item)))
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


def sweep(parse: Callable[[Any, float], Any], payload: Any) -> int:
    """Put every hostile number into every numeric field; return how many were refused."""
    refused = 0
    paths = list(_numeric_paths(payload))
    assert paths, "the payload has no numeric field to attack"
    for path in paths:
        for bad in HOSTILE:
            try:
                result = parse(_with(payload, path, bad), 1.0)
            except ParseError:
                refused += 1
                continue
            assert insane_numbers(result) == [], f"{'/'.join(map(str, path))}={bad!r}"
    return refused


ALL_CASES = [
    *((key, lambda parse=parse: parse) for key, parse in BINANCE_CASES),
    *BYBIT_CASES,
    *((key, lambda parse=parse: parse) for key, parse in PRIVATE_CASES),
]


@pytest.mark.parametrize(
    ("key", "make"), ALL_CASES, ids=[f"{k}-{n}" for n, (k, _m) in enumerate(ALL_CASES)]
)
def test_no_hostile_number_reaches_a_model(
    examples: dict[str, Any], key: str, make: Callable[[], Any]
) -> None:
    parse = make()
    assert sweep(parse, examples[key]) >= len(HOSTILE)  # at least one field really read


class TestTheSharedHelper:
    @pytest.mark.parametrize("bad", HOSTILE)
    def test_to_decimal_refuses(self, bad: str) -> None:
        with pytest.raises(ValueError, match="not a finite number"):
            to_decimal(bad)

    @pytest.mark.parametrize("bad", HOSTILE)
    def test_levels_and_optionals_refuse(self, bad: str) -> None:
        with pytest.raises(ValueError):
            parse_levels([["1.0", "2.0"], ["1.1", bad]])
        with pytest.raises(ValueError):
            parse_levels([[bad, "2.0"]])
        with pytest.raises(ValueError):
            opt_decimal(bad)

    @pytest.mark.parametrize(
        "good",
        ["0", "0.00000000", "-0.0001", "27123.45000000", "1e-50", "9.99e50", "1234567890123456789"],
    )
    def test_real_numbers_pass_unchanged(self, good: str) -> None:
        assert to_decimal(good) == Decimal(good)
        assert str(to_decimal(good)) == str(Decimal(good))
        assert parse_levels([[good, good]]) == ((Decimal(good), Decimal(good)),)


class TestLevelShapes:
    """A side and each level must be arrays: unpacking alone turned ``{"12": 1}`` and
    ``["12"]`` into the made-up level (1, 2)."""

    @pytest.mark.parametrize(
        "side",
        [
            {"12": 1},
            ["12"],
            [{"12": 1}],
            "12",
            [["1.0", "2.0"], "34"],
            [["1.0", "2.0"], {"3": 4, "5": 6}],
        ],
        ids=[
            "dict-side",
            "string-level",
            "dict-level",
            "string-side",
            "string-after-good",
            "dict-after-good",
        ],
    )
    def test_non_array_shapes_refuse(self, side: Any) -> None:
        with pytest.raises((TypeError, ValueError)):  # both are reported as ParseError
            parse_levels(side)

    def test_arrays_and_tuples_pass(self) -> None:
        expected = ((Decimal("1.0"), Decimal("2.0")), (Decimal("3"), Decimal("4")))
        assert parse_levels([["1.0", "2.0"], ["3", "4"]]) == expected
        assert parse_levels((("1.0", "2.0"), ("3", "4"))) == expected

    def test_the_depth_parser_reports_it_as_a_parse_error(self) -> None:
        from rxconnector.errors import ParseError
        from rxconnector.exchanges.binance.parsers import parse_depth_update

        payload = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": ["12"], "a": []}
        with pytest.raises(ParseError, match="depthUpdate"):
            parse_depth_update(payload, 0.0)


@pytest.mark.parametrize(
    ("level", "named"),
    [
        (["1e99", "1"], "1e99"),  # finite price out of range: the price is named
        (["NaN", "1"], "NaN"),
        (["1", "1e-99"], "1e-99"),
        (["1", "Infinity"], "Infinity"),
    ],
)
def test_a_bad_level_names_the_bad_number(level: list[str], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(named))):
        parse_levels([level])
