"""Binance USD-M's REST plans driven by hand (no socket, no scheduler): the mark-price
fetch before a PERCENT_PRICE check, exchangeInfo kept whole but answered filtered, the
listenKey's API-key-only calls, and what USD-M refuses at the call."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rxconnector.config import Config
from rxconnector.errors import ConfigError, NotSupportedError, OrderRejectedError
from rxconnector.exchanges.binance import futures_endpoints as fep
from rxconnector.exchanges.binance.futures_plans import BinanceFuturesPlans
from rxconnector.exchanges.rest_plan import Call, Plan, Remember, RulesFor, WeightBudget
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.testing import make_symbol_info


def _plans(**config: Any) -> BinanceFuturesPlans:
    settings: dict[str, Any] = {"api_key": "k", "api_secret": "s", **config}
    return BinanceFuturesPlans(
        Config.binance_futures(**settings), client_order_id_factory=lambda: "coid-1"
    )


def _answer(step: Any, data: Any) -> Any:
    assert isinstance(step, Call)
    return step.parse(RestReply(data, 200, {}, 1.0, 0.01))


def _finish(plan: Plan[Any], answer: Any) -> Any:
    with pytest.raises(StopIteration) as done:
        plan.send(answer)
    return done.value.value


def _symbol(name: str, up: str = "1.05", down: str = "0.95") -> dict[str, Any]:
    return {
        "symbol": name,
        "status": "TRADING",
        "baseAsset": name[:-4],
        "quoteAsset": "USDT",
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.10", "minPrice": "0.1",
             "maxPrice": "1000000"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": up, "multiplierDown": down,
             "multiplierDecimal": "4"},
        ],
    }  # fmt: skip


def _load_rules(plans: BinanceFuturesPlans, *symbols: str) -> None:
    plan = plans.exchange_info()()
    call = next(plan)
    plan.send(_answer(call, {"symbols": [_symbol(s) for s in symbols], "rateLimits": []}))
    _finish(plan, None)


class TestExchangeInfo:
    def test_every_symbol_is_cached_and_the_asked_ones_answered(self) -> None:
        plans = _plans()
        plan = plans.exchange_info(["btcusdt"])()
        call = next(plan)
        assert call.endpoint == fep.EXCHANGE_INFO and call.params == {}
        limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                   "limit": 2400}]  # fmt: skip
        body = {"symbols": [_symbol("BTCUSDT"), _symbol("ETHUSDT")], "rateLimits": limits}
        remember = plan.send(_answer(call, body))
        assert isinstance(remember, Remember) and set(remember.infos) == {"BTCUSDT", "ETHUSDT"}
        assert plan.send(None) == WeightBudget(2400)
        assert set(_finish(plan, None)) == {"BTCUSDT"}
        rules = plans.futures_rules("ethusdt")
        assert rules is not None and rules.multiplier_up == Decimal("1.05")


class TestPercentPrice:
    def test_a_limit_order_is_checked_against_the_mark_price_fetched_just_before(self) -> None:
        plans = _plans()
        _load_rules(plans, "BTCUSDT")
        info = make_symbol_info("BTCUSDT", tick_size="0.1", step_size=None, min_qty=None)
        plan = plans.place_order("BTCUSDT", "buy", "LIMIT", "1", "106", None, None, {})()
        assert next(plan) == RulesFor("BTCUSDT")
        mark = plan.send(info)
        assert isinstance(mark, Call) and mark.endpoint == fep.PREMIUM_INDEX
        with pytest.raises(OrderRejectedError) as refused:
            plan.send(_answer(mark, {"symbol": "BTCUSDT", "markPrice": "100"}))
        assert refused.value.filter == "PERCENT_PRICE"

    def test_within_the_band_the_order_is_sent(self) -> None:
        plans = _plans()
        _load_rules(plans, "BTCUSDT")
        info = make_symbol_info("BTCUSDT", tick_size="0.1", step_size=None, min_qty=None)
        plan = plans.place_order("BTCUSDT", "buy", "LIMIT", "1", "101", None, None, {})()
        next(plan)
        mark = plan.send(info)
        order = plan.send(_answer(mark, {"symbol": "BTCUSDT", "markPrice": "100"}))
        assert order.endpoint == fep.NEW_ORDER and order.idempotent is False
        assert order.client_order_id == "coid-1"

    def test_without_cached_futures_rules_no_mark_price_is_fetched(self) -> None:
        plan = _plans().place_order("BTCUSDT", "buy", "LIMIT", "1", "101", None, None, {})()
        next(plan)
        assert plan.send(make_symbol_info("BTCUSDT")).endpoint == fep.NEW_ORDER


class TestListenKey:
    def test_listen_key_calls_carry_the_api_key_only(self) -> None:
        plans = _plans()
        create = next(plans.create_listen_key()())
        keepalive = next(plans.keepalive_listen_key("ignored")())
        assert create.keyed and not create.endpoint.signed and create.idempotent is False
        assert keepalive.keyed and keepalive.idempotent is True and keepalive.params == {}
        assert _answer(create, {"listenKey": "abc"}) == "abc"

    def test_they_need_keys(self) -> None:
        with pytest.raises(ConfigError):
            _plans(api_key="", api_secret="").create_listen_key()


class TestRefusedAtTheCall:
    def test_what_usdm_cannot_do(self) -> None:
        plans = _plans()
        with pytest.raises(NotSupportedError, match="binance_futures does not support"):
            plans.trades_between("trades", "BTCUSDT", 1, 2)
        with pytest.raises(NotSupportedError):
            plans.trades_after("BTCUSDT", 1, 0)
        with pytest.raises(NotSupportedError):
            plans.avg_price("BTCUSDT")
        with pytest.raises(NotSupportedError):
            plans.test_order(
                "BTCUSDT", "buy", "LIMIT", "1", "1", None, None, {}, compute_commission_rates=True
            )
        with pytest.raises(ValueError, match="1s"):
            plans.klines_history("BTCUSDT", "1s", 0, 1)
        with pytest.raises(ValueError, match="leverage"):
            plans.set_leverage("BTCUSDT", 126)
        with pytest.raises(TypeError):
            plans.set_position_mode(True, coin="USDT")
