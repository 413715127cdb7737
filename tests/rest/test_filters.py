"""check_order: Binance symbol filters (BS filters.md) with the nearest passing value."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rxconnector.errors import OrderRejectedError
from rxconnector.exchanges.filters import check_order, round_to_step
from rxconnector.models import SymbolInfo

INFO = SymbolInfo(
    symbol="BTCUSDT",
    status="TRADING",
    base_asset="BTC",
    quote_asset="USDT",
    tick_size=D("0.01"),
    min_price=D("0.01"),
    max_price=D("1000000"),
    step_size=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("5"),
    max_notional=D("9000000"),
)


def _rejected(quantity: str | None, price: str | None, type: str = "LIMIT") -> OrderRejectedError:
    with pytest.raises(OrderRejectedError) as info:
        check_order(
            INFO,
            "buy",
            type,
            D(quantity) if quantity is not None else None,
            D(price) if price is not None else None,
        )
    return info.value


class TestPassing:
    """Orders inside every rule pass silently."""

    def test_valid_limit_order(self) -> None:
        check_order(INFO, "buy", "LIMIT", D("0.001"), D("60000.01"))

    def test_market_order_checks_only_the_lot(self) -> None:
        check_order(INFO, "sell", "MARKET", D("0.00002"), None)

    def test_disabled_rules_are_skipped(self) -> None:
        bare = SymbolInfo(symbol="X", status="TRADING", base_asset="A", quote_asset="B")
        check_order(bare, "buy", "LIMIT", D("0.123456789"), D("0.000000001"))


class TestPriceFilter:
    """PRICE_FILTER: min, max and tick size."""

    def test_off_tick_price_names_the_nearest_tick(self) -> None:
        error = _rejected("1", "100.006")
        assert (error.filter, error.nearest_valid) == ("PRICE_FILTER", D("100.01"))
        assert "tickSize" in str(error) and "BTCUSDT BUY LIMIT" in str(error)

    def test_below_min_and_above_max(self) -> None:
        assert _rejected("1", "0.001").nearest_valid == D("0.01")
        assert _rejected("0.001", "2000000").nearest_valid == D("1000000")

    def test_non_positive_price(self) -> None:
        assert _rejected("1", "0").filter == "PRICE_FILTER"


class TestLotSize:
    """LOT_SIZE: min, max and step size."""

    def test_off_step_quantity(self) -> None:
        error = _rejected("0.000015", "60000")
        assert error.filter == "LOT_SIZE"
        assert error.nearest_valid == D("0.00002")

    def test_below_min_and_above_max(self) -> None:
        assert _rejected("0.000001", "1").nearest_valid == D("0.00001")
        assert _rejected("9001", "1").nearest_valid == D("9000")

    def test_market_order_lot_is_checked(self) -> None:
        assert _rejected("0.000015", None, "MARKET").filter == "LOT_SIZE"


class TestNotional:
    """NOTIONAL: price x quantity within [minNotional, maxNotional]."""

    def test_too_small_suggests_the_smallest_passing_quantity(self) -> None:
        error = _rejected("0.00001", "60000")  # 0.6 USDT < 5
        assert error.filter == "NOTIONAL"
        assert error.nearest_valid == D("0.00009")  # 5.4 USDT; 0.00008 would be 4.8
        check_order(INFO, "buy", "LIMIT", error.nearest_valid, D("60000"))  # type: ignore[arg-type]

    def test_too_large_suggests_the_largest_passing_quantity(self) -> None:
        error = _rejected("1000", "10000")  # 10,000,000 > 9,000,000
        assert error.nearest_valid == D("900.00000")


class TestRoundToStep:
    """round_to_step keeps the step's decimals and supports directed rounding."""

    @pytest.mark.parametrize(
        ("value", "step", "rounding", "expected"),
        [
            ("0.1234567", "0.00100000", "ROUND_HALF_UP", "0.12300000"),
            ("0.0025", "0.001", "ROUND_HALF_UP", "0.003"),
            ("0.0021", "0.001", "ROUND_CEILING", "0.003"),
            ("0.0029", "0.001", "ROUND_FLOOR", "0.002"),
            ("105", "10", "ROUND_HALF_UP", "110"),
            ("0.35", "0.05", "ROUND_HALF_UP", "0.35"),
        ],
    )
    def test_rounding(self, value: str, step: str, rounding: str, expected: str) -> None:
        result = round_to_step(D(value), D(step), rounding)
        assert result == D(expected) and str(result) == expected
