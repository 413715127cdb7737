"""Model builders: defaults are neutral, numbers become exact Decimals, models stay consistent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rxconnector.models import ConnectionState
from rxconnector.testing.account_factories import (
    make_balance,
    make_execution,
    make_order,
    make_order_update,
    make_position,
)
from rxconnector.testing.factories import (
    dec,
    interval_ms,
    make_avg_price,
    make_book_ticker,
    make_clock_offset,
    make_connection_event,
    make_depth_update,
    make_kline,
    make_liquidation,
    make_mark_price,
    make_mini_ticker,
    make_order_book,
    make_symbol_info,
    make_ticker,
    make_trade,
)


class TestDec:
    """dec() turns what a test writes into the exact Decimal it meant."""

    @pytest.mark.parametrize(
        ("given", "wanted"),
        [(1, "1"), ("100.10", "100.10"), (0.1, "0.1"), (Decimal("2.5"), "2.5"), (" 3 ", "3")],
    )
    def test_converts_exactly(self, given: object, wanted: str) -> None:
        assert dec(given) == Decimal(wanted)  # type: ignore[arg-type]
        assert str(dec(given)) == wanted  # type: ignore[arg-type]

    def test_rejects_text_that_is_not_a_number(self) -> None:
        with pytest.raises(ValueError, match="not a decimal number: 'abc'"):
            dec("abc")

    def test_rejects_bools_and_other_types(self) -> None:
        with pytest.raises(TypeError):
            dec(True)
        with pytest.raises(TypeError):
            dec([1])  # type: ignore[arg-type]


class TestMarketModels:
    """Market-data builders fill the fields a test does not care about consistently."""

    def test_ticker_puts_bid_and_ask_around_last(self) -> None:
        ticker = make_ticker("ETHUSDT", "2000", spread=2)
        assert (ticker.bid, ticker.last, ticker.ask) == (
            Decimal(1999),
            Decimal(2000),
            Decimal(2001),
        )
        assert ticker.open == ticker.high == ticker.low == Decimal(2000)
        assert ticker.symbol == "ETHUSDT"

    def test_ticker_high_and_low_always_contain_last_and_open(self) -> None:
        ticker = make_ticker(last=105, open=100, high=103, low=101)
        assert ticker.high == Decimal(105)
        assert ticker.low == Decimal(100)

    def test_mini_ticker_defaults_to_a_flat_day(self) -> None:
        mini = make_mini_ticker(close=7, open=5)
        assert (mini.open, mini.high, mini.low, mini.close) == tuple(map(Decimal, (5, 7, 5, 7)))

    def test_book_ticker_and_its_spread(self) -> None:
        book = make_book_ticker(bid=100, ask="100.5", update_id=9)
        assert book.spread == Decimal("0.5")
        assert book.update_id == 9

    def test_trade_time_defaults_to_event_time_and_side_is_normalized(self) -> None:
        trade = make_trade(price="10.5", quantity=2, side="SELL", trade_id=4, event_time=1000)
        assert trade.time == 1000
        assert trade.side == "sell"
        assert trade.notional == Decimal(21)

    def test_trade_rejects_an_unknown_side(self) -> None:
        with pytest.raises(ValueError, match="side must be one of"):
            make_trade(side="long")

    def test_kline_spans_its_interval(self) -> None:
        kline = make_kline(interval="5m", open_time=60_000, open=10, close=12)
        assert kline.close_time == 60_000 + 300_000 - 1
        assert kline.event_time == kline.close_time
        assert (kline.high, kline.low) == (Decimal(12), Decimal(10))

    @pytest.mark.parametrize(
        ("interval", "ms"),
        [("1s", 1000), ("1m", 60_000), ("4h", 14_400_000), ("1M", 2_592_000_000)],
    )
    def test_interval_ms(self, interval: str, ms: int) -> None:
        assert interval_ms(interval) == ms

    @pytest.mark.parametrize("bad", ["m", "1x", "", "am"])
    def test_interval_ms_rejects_nonsense(self, bad: str) -> None:
        with pytest.raises(ValueError, match="not a kline interval"):
            interval_ms(bad)

    def test_order_book_sorts_levels_best_first(self) -> None:
        book = make_order_book(bids=[(99, 1), (100, 2)], asks=[(102, 1), (101, 3)])
        assert book.bids == ((Decimal(100), Decimal(2)), (Decimal(99), Decimal(1)))
        assert book.asks == ((Decimal(101), Decimal(3)), (Decimal(102), Decimal(1)))
        assert book.spread == Decimal(1)
        assert not book.is_crossed

    def test_depth_update_final_id_defaults_to_first(self) -> None:
        update = make_depth_update(bids=[(1, 0)], first_update_id=5)
        assert update.final_update_id == 5
        assert update.bids == ((Decimal(1), Decimal(0)),)

    def test_avg_price_mark_price_and_liquidation(self) -> None:
        assert make_avg_price(price="1.5").price == Decimal("1.5")
        mark = make_mark_price(mark_price=3, funding_rate="0.0001")
        assert (mark.mark_price, mark.funding_rate, mark.index_price) == (
            Decimal(3),
            Decimal("0.0001"),
            None,
        )
        liquidation = make_liquidation(event_time=5)
        assert (liquidation.side, liquidation.time) == ("sell", 5)


class TestAccountModels:
    """Order and account builders accept exactly what place_order passes."""

    def test_make_order_accepts_place_order_arguments(self) -> None:
        request: dict[str, Any] = {
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "MARKET",
            "quantity": Decimal("0.5"),
            "price": None,
            "time_in_force": None,
            "client_order_id": None,
        }
        order = make_order(status="FILLED", **request)
        assert order.quantity == order.filled_quantity == Decimal("0.5")
        assert order.price == Decimal(0)
        assert order.average_price is None
        assert order.client_order_id == "fake-1"

    def test_filled_limit_order_is_filled_at_its_price(self) -> None:
        order = make_order(price=100, quantity=2, status="FILLED", order_id="7", time=5)
        assert (order.filled_quantity, order.average_price) == (Decimal(2), Decimal(100))
        assert order.update_time == 5
        assert order.client_order_id == "fake-7"

    def test_new_order_has_nothing_filled(self) -> None:
        order = make_order(price=100)
        assert order.filled_quantity == Decimal(0)
        assert order.average_price is None

    def test_order_update_execution_type_follows_the_fill(self) -> None:
        assert make_order_update().execution_type == "NEW"
        fill = make_order_update(status="FILLED", last_fill_quantity=1, last_fill_price=100)
        assert fill.execution_type == "TRADE"

    def test_balance_execution_position(self) -> None:
        assert make_balance("BTC", "0.5", "0.25").total == Decimal("0.75")
        assert make_execution(fee="0.1").fee == Decimal("0.1")
        position = make_position(size=-2, leverage=5)
        assert (position.size, position.leverage, position.mark_price) == (
            Decimal(-2),
            Decimal(5),
            None,
        )

    def test_symbol_info_splits_the_symbol(self) -> None:
        info = make_symbol_info("ETHBTC")
        assert (info.base_asset, info.quote_asset) == ("ETH", "BTC")
        assert info.tick_size == Decimal("0.01")

    def test_symbol_info_needs_assets_for_unknown_quotes(self) -> None:
        with pytest.raises(ValueError, match="pass base_asset and quote_asset"):
            make_symbol_info("FOOBAR")
        assert make_symbol_info("FOOBAR", base_asset="FOO", quote_asset="BAR").quote_asset == "BAR"


class TestHealthModels:
    """Clock and connection builders default to a healthy, connected state."""

    def test_clock_offset(self) -> None:
        assert make_clock_offset(12.5).offset_ms == 12.5

    def test_connection_event(self) -> None:
        event = make_connection_event(ConnectionState.RECONNECTING, attempt=2, delay=1.5)
        assert (event.state, event.attempt, event.delay) == (ConnectionState.RECONNECTING, 2, 1.5)
        assert make_connection_event().state is ConnectionState.CONNECTED
