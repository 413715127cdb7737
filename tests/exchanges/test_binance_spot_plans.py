"""Binance Spot's REST plans driven by hand: each step is read, each answer is sent in,
no socket, no scheduler. What the engine does with a step is tested in
tests/rest/test_plan_runner.py; the same calls end to end in tests/rest/test_binance_rest.py."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest

from rxconnector.config import Config
from rxconnector.errors import ConfigError, ExchangeError, OrderRejectedError, ParseError
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance.signing import BinanceRestSigner, rest_signer
from rxconnector.exchanges.binance.spot_plans import BinanceSpotPlans
from rxconnector.exchanges.rest_plan import (
    Call,
    Emit,
    ForgetRules,
    Now,
    Plan,
    Remember,
    RulesFor,
    WeightBudget,
)
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.testing import make_symbol_info

KEY, SECRET = "key-1", "secret-1"
NOW = 1_700_000_000_000


def _plans(**config: Any) -> BinanceSpotPlans:
    settings: dict[str, Any] = {"api_key": KEY, "api_secret": SECRET, **config}
    return BinanceSpotPlans(Config.binance(**settings), client_order_id_factory=lambda: "coid-1")


def _reply(data: Any, received_at: float = 1.5) -> RestReply:
    return RestReply(data, 200, {}, received_at, 0.01)


def _answer(step: Any, data: Any) -> Any:
    """What the engine sends in for a Call: its parse of a reply carrying ``data``."""
    assert isinstance(step, Call)
    return step.parse(_reply(data))


def _finish(plan: Plan[Any], answer: Any) -> Any:
    with pytest.raises(StopIteration) as done:
        plan.send(answer)
    return done.value.value


def _kline_row(open_time: int) -> list[Any]:
    return [open_time, "1", "2", "0.5", "1.5", "10", open_time + 59_999, "15", 3, "5", "7", "0"]


class TestArgumentsAreCheckedAtTheCall:
    def test_bad_arguments_raise_before_any_plan_exists(self) -> None:
        plans = _plans()
        with pytest.raises(ValueError, match="interval"):
            plans.klines("BTCUSDT", "7m")
        with pytest.raises(ValueError, match="limit"):
            plans.depth_snapshot("BTCUSDT", 0)
        with pytest.raises(ValueError, match="start"):
            plans.klines_history("BTCUSDT", "1m", 10, 5)
        with pytest.raises(ValueError, match="feed"):
            plans.trades_between("book", "BTCUSDT", 1, 2)
        with pytest.raises(ValueError, match="side"):
            plans.place_order("BTCUSDT", "up", "LIMIT", "1", "1", None, None, {})

    def test_signed_calls_without_keys_are_a_config_error(self) -> None:
        plans = _plans(api_key="", api_secret="")
        with pytest.raises(ConfigError):
            plans.account()
        with pytest.raises(ConfigError):
            plans.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", None, None, {})
        plans.ping()  # public calls need no keys

    def test_the_client_order_id_is_fixed_at_the_call(self) -> None:
        ids = iter(["first", "second"])
        plans = BinanceSpotPlans(
            Config.binance(api_key=KEY, api_secret=SECRET),
            client_order_id_factory=lambda: next(ids),
        )
        factory = plans.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", None, None, {})
        for _ in range(2):  # two runs (subscriptions), one id
            plan = factory()
            next(plan)
            order = plan.send(None)
            assert order.params["newClientOrderId"] == "first"
            assert order.client_order_id == "first" and order.idempotent is False


class TestKlineWalk:
    def test_pages_are_emitted_before_the_next_is_asked_for(self) -> None:
        plan = _plans().klines_history("btcusdt", "1m", 0, 200_000_000)()
        first = next(plan)
        assert isinstance(first, Call) and first.endpoint == ep.KLINES
        assert first.params == {
            "symbol": "BTCUSDT",
            "interval": "1m",
            "startTime": 0,
            "endTime": 200_000_000,
            "limit": 1000,
        }
        assert first.weight == 2
        assert isinstance(
            plan.send(first.parse(_reply([_kline_row(i * 60_000) for i in range(1000)]))), Now
        )
        emit = plan.send(NOW)
        assert isinstance(emit, Emit) and len(emit.items) == 1000
        assert emit.items[0].closed and emit.items[0].received_at == 1.5
        second = plan.send(None)
        assert isinstance(second, Call) and second.params["startTime"] == 999 * 60_000 + 1
        plan.send(second.parse(_reply([_kline_row(60_000_000)])))
        last = plan.send(NOW)
        assert isinstance(last, Emit) and len(last.items) == 1
        _finish(plan, None)

    def test_without_an_end_the_walk_reads_the_clock_first(self) -> None:
        plan = _plans().klines_history("BTCUSDT", "1m", 0)()
        assert isinstance(next(plan), Now)
        call = plan.send(120_000)
        assert isinstance(call, Call) and call.params["endTime"] == 120_000

    def test_the_running_candle_is_judged_by_the_clock_when_it_arrived(self) -> None:
        plan = _plans().klines("BTCUSDT", "1m", limit=1)()
        call = next(plan)
        assert isinstance(plan.send(call.parse(_reply([_kline_row(0)]))), Now)
        (kline,) = _finish(plan, 30_000)
        assert kline.closed is False and kline.event_time == 30_000

    def test_a_malformed_page_is_a_parse_error_naming_the_route(self) -> None:
        plan = _plans().klines("BTCUSDT", "1m", limit=1)()
        call = next(plan)
        plan.send(call.parse(_reply([["x"]])))
        with pytest.raises(ParseError, match="/api/v3/klines"):
            plan.send(NOW)


class TestExchangeInfo:
    def test_rules_are_remembered_and_the_weight_budget_announced(self) -> None:
        plan = _plans().exchange_info(["btcusdt"])()
        call = next(plan)
        assert call.params == {"symbol": "BTCUSDT"}
        body = {
            "symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC",
                         "quoteAsset": "USDT", "filters": []}],
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 5000}
            ],
        }  # fmt: skip
        remember = plan.send(_answer(call, body))
        assert isinstance(remember, Remember) and set(remember.infos) == {"BTCUSDT"}
        assert plan.send(None) == WeightBudget(5000)
        assert set(_finish(plan, None)) == {"BTCUSDT"}


class TestOrders:
    def test_rules_are_asked_for_and_checked_before_sending(self) -> None:
        plan = _plans().place_order("BTCUSDT", "buy", "LIMIT", "1", "100.005", None, None, {})()
        assert next(plan) == RulesFor("BTCUSDT")
        with pytest.raises(OrderRejectedError) as info:
            plan.send(make_symbol_info("BTCUSDT", tick_size="0.01"))
        assert info.value.filter == "PRICE_FILTER"

    def test_a_filter_failure_from_the_exchange_forgets_the_rules(self) -> None:
        plan = _plans().place_order("BTCUSDT", "buy", "LIMIT", "1", "100", None, None, {})()
        next(plan)
        order = plan.send(make_symbol_info("BTCUSDT"))
        assert isinstance(order, Call) and order.endpoint == ep.NEW_ORDER
        assert order.params["price"] == Decimal("100")
        refused = ExchangeError("Filter failure: PRICE_FILTER", exchange="binance", code=-1013)
        assert plan.throw(refused) == ForgetRules("BTCUSDT")
        with pytest.raises(ExchangeError):
            plan.send(None)

    def test_other_errors_keep_the_rules(self) -> None:
        plan = _plans().place_order("BTCUSDT", "buy", "LIMIT", "1", "100", None, None, {})()
        next(plan)
        plan.send(None)  # the exchange does not list the symbol: it decides
        with pytest.raises(ExchangeError):
            plan.throw(ExchangeError("insufficient balance", exchange="binance", code=-2010))

    def test_commission_rates_weigh_twenty(self) -> None:
        factory = _plans().test_order(
            "BTCUSDT", "buy", "LIMIT", "1", "1", None, None, {}, compute_commission_rates=True
        )
        plan = factory()
        next(plan)
        call = plan.send(None)
        assert call.weight == 20 and call.params["computeCommissionRates"] is True


def _agg(agg_id: int, first: int, last: int) -> dict[str, Any]:
    return {"a": agg_id, "p": "1.5", "q": "2", "f": first, "l": last, "T": 1000 + first,
            "m": False}  # fmt: skip


class TestTradesAfter:
    def test_single_fill_aggregates_answer_alone(self) -> None:
        plan = _plans().trades_after("BTCUSDT", 11, 1000)()
        call = next(plan)
        assert call.endpoint == ep.AGG_TRADES and call.params["startTime"] == 1000
        assert isinstance(plan.send(_answer(call, [_agg(8, 11, 11), _agg(9, 12, 12)])), Now)
        trades = _finish(plan, 2000)
        assert [t.trade_id for t in trades] == [11, 12] and all(t.backfilled for t in trades)

    def test_a_multi_fill_aggregate_continues_by_id(self) -> None:
        plan = _plans().trades_after("BTCUSDT", 11, 1000, urgency="backfill")()
        call = next(plan)
        plan.send(_answer(call, [_agg(8, 11, 11), _agg(9, 12, 14)]))
        by_id = plan.send(2000)
        assert by_id.endpoint == ep.HISTORICAL_TRADES and by_id.urgency == "backfill"
        assert by_id.params == {"symbol": "BTCUSDT", "limit": 1000, "fromId": 12}
        rows = [{"id": i, "price": "1", "qty": "1", "time": i, "isBuyerMaker": True}
                for i in (12, 13, 14)]  # fmt: skip
        trades = _finish(plan, _answer(by_id, rows))
        assert [t.trade_id for t in trades] == [11, 12, 13, 14]

    def test_orders_sweeping_makers_go_by_id_at_once(self) -> None:
        plan = _plans().trades_after("BTCUSDT", 11, 1000, continuation=0.6)()
        assert next(plan).endpoint == ep.HISTORICAL_TRADES


class TestSigner:
    def test_signed_requests_carry_window_timestamp_and_a_valid_signature(self) -> None:
        signer = rest_signer(Config.binance(api_key=KEY, api_secret=SECRET, recv_window=3000))
        signed = signer.sign(ep.ACCOUNT, {"symbol": "BTCUSDT"}, NOW)
        query, _, signature = signed.query.rpartition("&signature=")
        assert dict(parse_qsl(query)) == {
            "symbol": "BTCUSDT",
            "recvWindow": "3000",
            "timestamp": str(NOW),
        }
        assert signature == hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        assert signed.headers == {"X-MBX-APIKEY": KEY}

    def test_keyed_requests_carry_the_key_only(self) -> None:
        signer = BinanceRestSigner(KEY, Config.binance(api_secret=SECRET).api_secret, 5000)
        keyed = signer.key_only(ep.PING, {})
        assert keyed.query == "" and keyed.headers == {"X-MBX-APIKEY": KEY}
        assert SECRET not in repr(signer)
