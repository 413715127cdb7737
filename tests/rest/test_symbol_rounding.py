"""Trading-rule increments a user can compute with, and prices/quantities rounded to them.

Over the documented exchange-info examples of every venue (Binance Spot ``filters.md``,
the USD-M ``exchangeInfo`` example, Bybit ``market/instrument.mdx`` spot and linear rows):
the increments come out normalized (``Decimal('0.001')``, not ``Decimal('0.00100000')``)
so ``price.quantize(info.tick_size)`` is a valid price, and ``round_price`` /
``round_quantity`` return values the local filter check (the one every order passes
through before it is sent) accepts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxconnector.errors import OrderRejectedError
from rxconnector.exchanges.binance.rest_parsers import symbol_info as binance_symbol_info
from rxconnector.exchanges.bybit.rest_parsers import symbol_info as bybit_symbol_info
from rxconnector.exchanges.filters import check_order
from rxconnector.models import SymbolInfo, plain_decimal
from rxconnector.testing import make_symbol_info
from tests.rest.test_bybit_rest import LINEAR_BTC, SPOT_BTC
from tests.rest.test_futures_rest import EXCHANGE_INFO as USDM_EXCHANGE_INFO


def _binance_spot(examples: dict[str, Any]) -> SymbolInfo:
    row = dict(examples["binance.spot.rest.exchangeInfo"]["symbols"][0], symbol="BTCUSDT")
    row["filters"] = [
        examples["binance.spot.filter.PRICE_FILTER"],
        examples["binance.spot.filter.LOT_SIZE"],
        examples["binance.spot.filter.NOTIONAL"],
    ]
    return binance_symbol_info(row)


def _every_venue(examples: dict[str, Any]) -> list[SymbolInfo]:
    return [
        _binance_spot(examples),
        binance_symbol_info(USDM_EXCHANGE_INFO["symbols"][0]),
        bybit_symbol_info(SPOT_BTC, "spot"),
        bybit_symbol_info(LINEAR_BTC, "linear"),
    ]


@pytest.fixture(scope="module")
def examples_info(examples: dict[str, Any]) -> list[SymbolInfo]:
    return _every_venue(examples)


@pytest.fixture(params=["binance-spot", "binance-usdm", "bybit-spot", "bybit-linear"])
def info(request: pytest.FixtureRequest, examples: dict[str, Any]) -> SymbolInfo:
    if request.param == "binance-spot":
        return _binance_spot(examples)
    if request.param == "binance-usdm":
        return binance_symbol_info(USDM_EXCHANGE_INFO["symbols"][0])
    if request.param == "bybit-spot":
        return bybit_symbol_info(SPOT_BTC, "spot")
    return bybit_symbol_info(LINEAR_BTC, "linear")


def _written(value: Decimal | None) -> str:
    return "None" if value is None else str(value)


class TestNormalizedIncrements:
    """Increments as the exchange means them, not as its JSON pads them."""

    def test_binance_spot_documented_filters(self, examples: dict[str, Any]) -> None:
        info = _binance_spot(examples)
        written = [
            _written(v)
            for v in (
                info.tick_size,
                info.min_price,
                info.max_price,
                info.step_size,
                info.min_qty,
                info.max_qty,
                info.min_notional,
                info.max_notional,
            )
        ]
        assert written == [
            "0.000001",
            "0.000001",
            "100000",
            "0.001",
            "0.001",
            "100000",
            "10",
            "10000",
        ]
        assert repr(info.tick_size) == "Decimal('0.000001')"

    def test_usdm_min_notional_is_read_from_its_notional_field(self) -> None:
        info = binance_symbol_info(USDM_EXCHANGE_INFO["symbols"][0])
        assert (str(info.tick_size), str(info.step_size)) == ("0.0001", "1")
        assert (
            str(info.min_notional) == "5"
        )  # USD-M MIN_NOTIONAL says "notional", not "minNotional"

    def test_bybit_rows(self) -> None:
        linear = bybit_symbol_info(LINEAR_BTC, "linear")
        assert [str(v) for v in (linear.tick_size, linear.step_size, linear.max_qty)] == [
            "0.1",
            "0.001",
            "1190",
        ]
        assert str(linear.max_price) == "1999999.8"
        spot = bybit_symbol_info(SPOT_BTC, "spot")
        assert (str(spot.tick_size), str(spot.step_size), str(spot.min_notional)) == (
            "0.1",
            "0.000001",
            "5",
        )

    def test_quantize_with_the_tick_gives_a_valid_price(self, info: SymbolInfo) -> None:
        assert info.tick_size is not None
        price = Decimal("123.456789123") if info.max_price is None else info.max_price / 3
        price = price.quantize(info.tick_size)
        assert price % info.tick_size == 0
        assert price.as_tuple().exponent == info.tick_size.as_tuple().exponent

    def test_large_round_increments_do_not_turn_into_exponents(self) -> None:
        info = make_symbol_info(tick_size="10.00000000", max_price="1000000.00000000")
        assert (str(info.tick_size), str(info.max_price)) == ("10", "1000000")
        assert f"{Decimal('60005.41').quantize(info.tick_size or Decimal(1)):f}" == "60005"

    def test_zero_shows_as_0(self) -> None:
        info = make_symbol_info(min_notional="0E-8", min_qty="0.00000000")
        assert (str(info.min_notional), str(info.min_qty)) == ("0", "0")
        assert str(plain_decimal("0E-8")) == "0"


class TestRoundPrice:
    """Buy rounds down, sell rounds up (never a worse limit than asked), then into
    [min_price, max_price]."""

    def test_examples(self) -> None:
        info = make_symbol_info(tick_size="0.01000000", min_price="0.01", max_price="1000000")
        assert str(info.round_price(Decimal("60005.4199"), "buy")) == "60005.41"
        assert str(info.round_price(Decimal("60005.4101"), "SELL")) == "60005.42"
        assert str(info.round_price(Decimal("60005.41"), "buy")) == "60005.41"
        assert str(info.round_price("60005.4", "sell")) == "60005.40"
        assert str(info.round_price(Decimal("0.001"), "buy")) == "0.01"  # up to min_price
        assert str(info.round_price(Decimal("2000000"), "sell")) == "1000000.00"

    def test_half_tick_and_no_rules(self) -> None:
        info = make_symbol_info(tick_size="0.5", min_price=None, max_price=None)
        assert str(info.round_price(Decimal("100.74"), "buy")) == "100.5"
        assert str(info.round_price(Decimal("100.26"), "sell")) == "100.5"
        assert str(info.round_price(Decimal("0.2"), "buy")) == "0.5"  # the smallest > 0
        free = make_symbol_info(tick_size=None, min_price=None, max_price=None)
        assert free.round_price(Decimal("1.23456"), "buy") == Decimal("1.23456")

    def test_bad_input(self) -> None:
        info = make_symbol_info()
        with pytest.raises(ValueError, match="side"):
            info.round_price(Decimal(1), "long")
        with pytest.raises(ValueError, match="> 0"):
            info.round_price(Decimal(0), "buy")

    @given(st.decimals(min_value="0.00000001", max_value="999999", places=9))
    def test_every_result_passes_the_price_filter(
        self, examples_info: list[SymbolInfo], raw: Decimal
    ) -> None:
        for info in examples_info:
            for side in ("buy", "sell"):
                price = info.round_price(raw, side)
                quantity = info.round_quantity(info.max_qty or Decimal(1))
                try:
                    check_order(info, side, "LIMIT", quantity, price)
                except OrderRejectedError as error:
                    assert error.filter == "NOTIONAL", (info.symbol, raw, price, error)
                unbounded = info.min_price is None and info.max_price is None
                if info.tick_size is not None and unbounded and raw >= info.tick_size:
                    step = -1 if side == "buy" else 1
                    assert abs(price - raw) < info.tick_size and (price - raw) * step >= 0


class TestRoundQuantity:
    """Down to the step (never more than asked), then into [min_qty, max_qty]."""

    def test_examples(self) -> None:
        info = make_symbol_info(step_size="0.00001000", min_qty="0.00010", max_qty="9000")
        assert str(info.round_quantity(Decimal("0.123456789"))) == "0.12345"
        assert str(info.round_quantity("0.12345")) == "0.12345"
        assert str(info.round_quantity(Decimal("0.00001"))) == "0.00010"  # up to min_qty
        assert str(info.round_quantity(Decimal("12345.678"))) == "9000.00000"
        with pytest.raises(ValueError, match="> 0"):
            info.round_quantity(Decimal("-1"))
        small = make_symbol_info(step_size="0.001", min_qty=None, max_qty=None)
        assert str(small.round_quantity(Decimal("0.0004"))) == "0.001"  # the smallest > 0

    @given(st.decimals(min_value="0.000000001", max_value="99999999", places=9))
    def test_every_result_passes_the_lot_size_filter(
        self, examples_info: list[SymbolInfo], raw: Decimal
    ) -> None:
        for info in examples_info:
            quantity = info.round_quantity(raw)
            try:
                check_order(info, "buy", "MARKET", quantity, None)
            except OrderRejectedError as error:  # pragma: no cover - the assertion's message
                raise AssertionError((info.symbol, raw, quantity, error)) from error
            low = info.min_qty or info.step_size or Decimal(0)
            if raw >= low and (info.max_qty is None or raw <= info.max_qty):
                assert quantity <= raw
