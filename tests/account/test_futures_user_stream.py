"""Binance USD-M user data: parsers against the documented and recorded payloads
(examples.json ``binance.usdm.uds.*``; sources in ``fixtures/examples_sources.json``),
the session's handling of TRADE_LITE / listenKeyExpired, the listenKey lease in virtual
time, and the futures order parameters and filters."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex.testing import TestScheduler

from rxconnector.errors import ExchangeError, OrderRejectedError, ParseError
from rxconnector.exchanges.binance import futures_user_stream as fu
from rxconnector.exchanges.binance.futures_account import futures_balance, position_risk
from rxconnector.exchanges.binance.futures_rules import (
    FuturesRules,
    check_futures_order,
    check_percent_price,
    validate_futures_params,
)
from rxconnector.models import AccountEvent, Balance, Execution, OrderUpdate, Position, SymbolInfo
from rxconnector.streams.accounts.listen_key import ListenKeyLease

D = Decimal
SOURCES = Path(__file__).parent.parent / "fixtures" / "examples_sources.json"


class _Out:
    """A SessionOutput that records what the session does."""

    def __init__(self) -> None:
        self.emitted: list[Any] = []
        self.failed: list[tuple[Exception, bool]] = []
        self.reported: list[Exception] = []
        self.subscribed_calls = 0

    def send(self, build: Any) -> None:
        raise AssertionError("the listenKey socket sends nothing but pings")

    def emit(self, item: object) -> None:
        self.emitted.append(item)

    def subscribed(self) -> None:
        self.subscribed_calls += 1

    def resubscribing(self, reason: str) -> None:
        raise AssertionError("no resubscription on a listenKey socket")

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        self.failed.append((error, fatal))

    def report(self, error: Exception) -> None:
        self.reported.append(error)

    def models(self) -> list[Any]:
        return [m for m in self.emitted if type(m) is not tuple]


def _session(fast: bool = False) -> Any:
    return fu.BinanceFuturesUserStream(fast_executions=fast).new_session()


def test_every_usdm_example_names_its_source(examples: dict[str, Any]) -> None:
    sources = json.loads(SOURCES.read_text())
    added = [key for key in examples if key.startswith("binance.usdm.uds.")]
    assert added and all(sources.get(key) for key in added)


class TestOrderTradeUpdate:
    def test_documented_example(self, examples: dict[str, Any]) -> None:
        update = fu.parse_order_trade_update(examples["binance.usdm.uds.ORDER_TRADE_UPDATE"], 5.0)
        assert update == OrderUpdate(
            symbol="BTCUSDT",
            order_id="8886774",
            client_order_id="TEST",
            side="sell",
            type="TRAILING_STOP_MARKET",
            status="NEW",
            execution_type="NEW",
            price=D("0"),
            quantity=D("0.001"),
            filled_quantity=D("0"),
            average_price=None,
            last_fill_price=D("0"),
            last_fill_quantity=D("0"),
            fee=D("0"),
            fee_asset="USDT",
            event_time=1568879465651,
            received_at=5.0,
        )
        assert (
            fu.parse_order_execution(examples["binance.usdm.uds.ORDER_TRADE_UPDATE"], 5.0) is None
        )

    def test_recorded_payload(self, examples: dict[str, Any]) -> None:
        event = examples["binance.usdm.uds.ORDER_TRADE_UPDATE.recorded"]
        update = fu.parse_order_trade_update(event, 1.0)
        assert (update.symbol, update.type, update.status, update.price, update.quantity) == (
            "ETHUSDC",
            "LIMIT",
            "NEW",
            D("2463.26"),
            D("0.473"),
        )

    def test_a_fill_is_also_an_execution(self, examples: dict[str, Any]) -> None:
        event = copy.deepcopy(examples["binance.usdm.uds.ORDER_TRADE_UPDATE.recorded"])
        event["o"].update(x="TRADE", X="FILLED", l="0.473", z="0.473", L="2463.26", t=871685788)
        event["o"].update(ap="2463.26", n="0.2330", m=True)
        out = _Out()
        _session().on_message(event, 2.0, out)
        update, fill = out.models()
        assert update.average_price == D("2463.26") and update.last_fill_quantity == D("0.473")
        assert fill == Execution(
            "ETHUSDC",
            "81873278124",
            "xNzvN00fwGYcj0DLc9EThL",
            "871685788",
            "sell",
            D("2463.26"),
            D("0.473"),
            D("0.2330"),
            "USDC",
            True,
            1788231596123,
            2.0,
        )

    def test_missing_field_is_a_parse_error(self, examples: dict[str, Any]) -> None:
        event = copy.deepcopy(examples["binance.usdm.uds.ORDER_TRADE_UPDATE"])
        del event["o"]["X"]
        out = _Out()
        _session().on_message(event, 1.0, out)
        assert out.models() == [] and isinstance(out.reported[0], ParseError)


class TestTradeLite:
    def test_recorded_payload(self, examples: dict[str, Any]) -> None:
        fill = fu.parse_trade_lite(examples["binance.usdm.uds.TRADE_LITE.recorded"], 3.0)
        assert (fill.execution_id, fill.order_id, fill.quantity, fill.is_maker, fill.fee) == (
            "871685788",
            "81873278124",
            D("0.473"),
            True,
            None,  # TRADE_LITE carries no fee: unknown, not zero
        )

    def test_raw_only_unless_fast_executions(self, examples: dict[str, Any]) -> None:
        out = _Out()
        _session().on_message(examples["binance.usdm.uds.TRADE_LITE.recorded"], 1.0, out)
        assert out.models() == [] and len(out.emitted) == 1  # the raw event only

    def test_fast_execution_then_order_update_reports_the_fill_once(
        self, examples: dict[str, Any]
    ) -> None:
        lite = examples["binance.usdm.uds.TRADE_LITE.recorded"]
        full = copy.deepcopy(examples["binance.usdm.uds.ORDER_TRADE_UPDATE.recorded"])
        full["o"].update(x="TRADE", X="FILLED", l="0.473", z="0.473", L="2463.26", t=871685788)
        out = _Out()
        session = _session(fast=True)
        session.on_message(lite, 1.0, out)
        session.on_message(full, 2.0, out)
        kinds = [type(m).__name__ for m in out.models()]
        assert kinds == ["Execution", "OrderUpdate"]  # the fill once, from TRADE_LITE first
        assert out.models()[0].received_at == 1.0


class TestAccountUpdate:
    def test_recorded_payload(self, examples: dict[str, Any]) -> None:
        balance, position = fu.parse_account_update(
            examples["binance.usdm.uds.ACCOUNT_UPDATE.recorded"], 4.0
        )
        assert balance == Balance(
            "USDC", D("291"), D("0"), event_time=1788231624647, received_at=4.0
        )
        assert position == Position(
            symbol="ETHUSDC",
            side="short",
            size=D("0.473"),
            entry_price=D("2463.26"),
            mark_price=None,
            unrealised_pnl=D("0.04257"),
            leverage=None,
            event_time=1788231624647,
            received_at=4.0,
            margin_mode="cross",
            position_side="short",
        )
        assert position.signed_size == D("-0.473")

    def test_isolated_margin_is_the_locked_part(self, examples: dict[str, Any]) -> None:
        event = copy.deepcopy(examples["binance.usdm.uds.ACCOUNT_UPDATE.recorded"])
        event["a"]["B"][0].update(wb="300", cw="250")
        balance = fu.parse_account_update(event, 1.0)[0]
        assert (balance.free, balance.locked, balance.total) == (D("250"), D("50"), D("300"))

    def test_a_negative_wallet_is_a_debt(self, examples: dict[str, Any]) -> None:
        event = copy.deepcopy(examples["binance.usdm.uds.ACCOUNT_UPDATE.recorded"])
        event["a"]["B"][0].update(wb="-12.5", cw="-12.5")
        balance = fu.parse_account_update(event, 1.0)[0]
        assert (balance.free, balance.locked, balance.borrowed) == (D(0), D(0), D("12.5"))

    def test_funding_fee_update_has_balances_only(self, examples: dict[str, Any]) -> None:
        event = copy.deepcopy(examples["binance.usdm.uds.ACCOUNT_UPDATE.recorded"])
        event["a"] = {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "10", "cw": "10", "bc": "0"}]}
        assert [type(m) for m in fu.parse_account_update(event, 1.0)] == [Balance]


class TestNotices:
    def test_margin_call_documented(self, examples: dict[str, Any]) -> None:
        notice = fu.parse_margin_call(examples["binance.usdm.uds.MARGIN_CALL"], 1.0)
        assert (notice.kind, notice.cross_wallet_balance, notice.event_time) == (
            "margin_call",
            D("3.16812045"),
            1587727187525,
        )
        (position,) = notice.positions
        assert (position.symbol, position.side, position.size, position.mark_price) == (
            "ETHUSDT",
            "long",
            D("1.327"),
            D("187.17127"),
        )
        assert (position.position_side, position.margin_mode) == ("long", "CROSSED")

    def test_leverage_and_account_config_documented(self, examples: dict[str, Any]) -> None:
        leverage = fu.parse_account_config_update(
            examples["binance.usdm.uds.ACCOUNT_CONFIG_UPDATE.leverage"], 1.0
        )
        assert leverage == AccountEvent(
            "leverage", 1611646737479, 1.0, symbol="BTCUSDT", leverage=D(25)
        )
        config = fu.parse_account_config_update(
            examples["binance.usdm.uds.ACCOUNT_CONFIG_UPDATE.account_config"], 1.0
        )
        assert (config.kind, config.multi_assets, config.hedge_mode) == (
            "account_config",
            True,
            True,
        )


class TestSession:
    def test_the_open_socket_is_the_subscription(self) -> None:
        out = _Out()
        _session().on_connected(out)
        assert out.subscribed_calls == 1

    def test_listen_key_expired_reconnects(self, examples: dict[str, Any]) -> None:
        out = _Out()
        _session().on_message(examples["binance.usdm.uds.listenKeyExpired.recorded"], 1.0, out)
        ((error, fatal),) = out.failed
        assert isinstance(error, ExchangeError) and error.retryable and not fatal

    def test_ping_answers_and_unknown_events_are_not_errors(self) -> None:
        out = _Out()
        session = _session()
        session.on_message({"result": [], "id": "ping"}, 1.0, out)
        session.on_message({"e": "STRATEGY_UPDATE", "E": 1}, 1.0, out)
        assert out.reported == [] and out.models() == [] and len(out.emitted) == 1


class TestListenKeyLease:
    """Created on subscribe, kept alive every 30 minutes in virtual time, errors end it."""

    def test_keepalive_every_interval_until_disposed(self) -> None:
        scheduler = TestScheduler()
        calls: list[tuple[float, str]] = []

        def create() -> reactivex.Observable[str]:
            calls.append((scheduler.clock, "POST"))
            return reactivex.just("k1")

        def keepalive(key: str) -> reactivex.Observable[None]:
            calls.append((scheduler.clock, f"PUT {key}"))
            return reactivex.just(None)

        lease = ListenKeyLease(create, keepalive, lambda k: f"ws://x/private/ws?listenKey={k}")
        urls: list[str] = []
        sub = lease.open().subscribe(urls.append, scheduler=scheduler)
        scheduler.advance_to(3 * 1800.0 + 1)
        sub.dispose()
        scheduler.advance_to(10 * 1800.0)
        assert urls == ["ws://x/private/ws?listenKey=k1"]
        assert calls == [(0.0, "POST"), (1800.0, "PUT k1"), (3600.0, "PUT k1"), (5400.0, "PUT k1")]

    def test_a_failed_keepalive_is_an_error(self) -> None:
        scheduler = TestScheduler()
        gone = ExchangeError("This listenKey does not exist.", code=-1125)
        lease = ListenKeyLease(
            lambda: reactivex.just("k"), lambda _k: reactivex.throw(gone), lambda k: k
        )
        errors: list[Exception] = []
        lease.open().subscribe(on_error=errors.append, scheduler=scheduler)
        scheduler.advance_to(1800.0)
        assert errors == [gone]


INFO = SymbolInfo(
    "BTCUSDT",
    "TRADING",
    "BTC",
    "USDT",
    tick_size=D("0.1"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
)
RULES = FuturesRules(
    market_min_qty=D("0.001"),
    market_max_qty=D("120"),
    market_step_size=D("0.001"),
    multiplier_up=D("1.05"),
    multiplier_down=D("0.95"),
)


class TestFuturesOrderRules:
    def test_market_lot_size(self) -> None:
        with pytest.raises(OrderRejectedError) as caught:
            check_futures_order(INFO, RULES, "buy", "MARKET", D("121"))
        assert caught.value.filter == "MARKET_LOT_SIZE" and caught.value.nearest_valid == D("120")
        check_futures_order(INFO, RULES, "buy", "LIMIT", D("121"))  # LIMIT: LOT_SIZE's job

    def test_percent_price_against_the_mark(self) -> None:
        check_percent_price(INFO, RULES, "buy", D("104.9"), D("100"))
        with pytest.raises(OrderRejectedError) as caught:
            check_percent_price(INFO, RULES, "buy", D("105.1"), D("100"))
        assert caught.value.filter == "PERCENT_PRICE" and caught.value.nearest_valid == D("105.0")
        with pytest.raises(OrderRejectedError, match="multiplierDown"):
            check_percent_price(INFO, RULES, "sell", D("94.9"), D("100"))

    @pytest.mark.parametrize(
        ("params", "quantity_given", "message"),
        [
            ({"type": "LIMIT", "positionSide": "UP"}, True, "positionSide"),
            ({"type": "LIMIT", "positionSide": "LONG", "reduceOnly": True}, True, "hedge mode"),
            ({"type": "MARKET", "closePosition": True}, False, "STOP_MARKET"),
            ({"type": "STOP_MARKET", "closePosition": True, "stopPrice": 1}, True, "no quantity"),
            ({"type": "STOP_MARKET", "closePosition": True}, False, "stopPrice"),
            ({"type": "LIMIT", "reduceOnly": "maybe"}, True, "reduceOnly"),
        ],
    )
    def test_bad_parameters_are_refused_before_sending(
        self, params: dict[str, Any], quantity_given: bool, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            validate_futures_params(dict(params), quantity_given)

    def test_flags_are_written_as_binance_wants_them(self) -> None:
        params: dict[str, Any] = {"type": "LIMIT", "reduceOnly": True, "positionSide": "both"}
        validate_futures_params(params, True)
        assert params == {"type": "LIMIT", "reduceOnly": "true", "positionSide": "BOTH"}


class TestRestRows:
    def test_balance_row_maps_like_the_stream(self) -> None:
        row = {"asset": "USDT", "balance": "300", "crossWalletBalance": "250", "crossUnPnl": "-5"}
        balance = futures_balance(row)
        assert (balance.free, balance.locked, balance.equity, balance.borrowed) == (
            D("250"),
            D("50"),
            D("295"),
            D(0),
        )

    def test_position_risk_v3_row(self) -> None:
        row = {
            "symbol": "ADAUSDT",
            "positionSide": "BOTH",
            "positionAmt": "-30",
            "entryPrice": "0.385",
            "markPrice": "0.41047590",
            "unRealizedProfit": "-0.76427700",
            "liquidationPrice": "2.5",
            "isolatedMargin": "0",
            "notional": "-12.31427700",
            "initialMargin": "0.61571385",
            "updateTime": 1720736417660,
        }
        position = position_risk(row, 9.0)
        assert (position.side, position.size, position.entry_price, position.leverage) == (
            "short",
            D("30"),
            D("0.385"),
            D("20"),
        )
        assert (position.liquidation_price, position.margin_mode, position.event_time) == (
            D("2.5"),
            "cross",
            1720736417660,
        )
