"""Bybit's REST plans driven by hand: replies are sent into the generators and errors
thrown into them, as the REST engine does, without a socket, a scheduler or reactivex.

What is checked: the requests each plan asks for (route, params, urgency, whether it may
be retried), the order of its steps (rules before an order, the clock after a kline
page), its fallbacks (order history, the lookup after a cancel) and that every argument
is checked at the call, before any plan exists.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from rxconnector.config import Config
from rxconnector.errors import (
    ConfigError,
    ExchangeError,
    NotSupportedError,
    OrderRejectedError,
    ParseError,
    TransportError,
)
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit.rest_parsers import InResult
from rxconnector.exchanges.bybit.rest_requests import rest_signer
from rxconnector.exchanges.bybit.trade_plans import BybitPlans
from rxconnector.exchanges.dialect import RequestWindow, RestLimits
from rxconnector.exchanges.rest_plan import Call, Emit, Now, Remember, RulesFor, Step
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.models import Kline, Order, SymbolInfo

NOW = 1_700_000_000_000
KEY, SECRET = "key-1", "secret-1"

#: A reply to one Call: a body (wrapped in Bybit's envelope), or an error to throw in.
Answer = dict[str, Any] | Exception


def _plans(category: str = "spot", **kwargs: Any) -> BybitPlans:
    config = Config.bybit(category, api_key=KEY, api_secret=SECRET)  # type: ignore[arg-type]
    return BybitPlans(config, **kwargs)


def _reply(result: Any, time: int = NOW + 1) -> RestReply:
    body = {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": time}
    return RestReply(data=body, status=200, headers={}, received_at=1.5, elapsed=0.01)


class Drive:
    """Runs a plan the way the engine does: each Call is answered by ``answer(call)``
    (a result to parse, or an exception thrown into the plan), ``Now`` by ``now``,
    ``RulesFor`` by ``rules``; every step, emitted batch and remembered rule is kept."""

    def __init__(
        self,
        answer: Callable[[Call[Any]], Answer],
        *,
        now: int = NOW,
        rules: SymbolInfo | None = None,
    ) -> None:
        self.answer = answer
        self.now = now
        self.rules = rules
        self.steps: list[Step] = []
        self.emitted: list[list[Any]] = []
        self.remembered: dict[str, SymbolInfo] = {}

    @property
    def calls(self) -> list[Call[Any]]:
        return [s for s in self.steps if isinstance(s, Call)]

    def run(self, factory: Callable[[], Generator[Step, Any, Any]]) -> Any:
        """A fresh plan from ``factory``, run to its end: its result."""
        plan = factory()
        send: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.throw(error) if error is not None else plan.send(send)
            except StopIteration as done:
                return done.value
            self.steps.append(step)
            send, error = self._answer(step)

    def _answer(self, step: Step) -> tuple[Any, BaseException | None]:
        if isinstance(step, Call):
            answer = self.answer(step)
            if isinstance(answer, Exception):
                return None, answer
            return step.parse(_reply(answer)), None
        if isinstance(step, Now):
            return self.now, None
        if isinstance(step, RulesFor):
            return self.rules, None
        if isinstance(step, Emit):
            self.emitted.append(list(step.items))
            return None, None
        if isinstance(step, Remember):
            self.remembered.update(step.infos)
            return None, None
        raise AssertionError(f"unexpected step {step!r}")


def _script(*answers: Answer) -> Callable[[Call[Any]], Answer]:
    """Answers in order, one per Call."""
    remaining: Iterator[Answer] = iter(answers)
    return lambda _call: next(remaining)


def _row(**overrides: Any) -> dict[str, Any]:
    """An order row as BY ``order/open-order.mdx`` documents it."""
    row = {
        "orderId": "fd43",
        "orderLinkId": "link-5",
        "symbol": "ETHUSDT",
        "price": "1600.00",
        "qty": "0.10",
        "side": "Buy",
        "orderStatus": "New",
        "avgPrice": "0",
        "cumExecQty": "0.00",
        "timeInForce": "GTC",
        "orderType": "Limit",
        "createdTime": "1684738540559",
        "updatedTime": "1684738540561",
    }
    row.update(overrides)
    return row


def _order(
    plans: BybitPlans,
    symbol: str,
    side: str,
    type: str,
    quantity: Any = None,
    price: Any = None,
    time_in_force: str | None = None,
    client_order_id: str | None = None,
    **extra: Any,
) -> Callable[[], Generator[Step, Any, Order]]:
    """``place_order`` as the client calls it (``extra`` gathered into a mapping)."""
    return plans.place_order(
        symbol, side, type, quantity, price, time_in_force, client_order_id, extra
    )


def _rules(**overrides: Any) -> SymbolInfo:
    values: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "status": "TRADING",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "tick_size": Decimal("0.1"),
        "min_price": None,
        "max_price": None,
        "step_size": Decimal("0.001"),
        "min_qty": None,
        "max_qty": Decimal("100"),
        "min_notional": None,
    }
    values.update(overrides)
    return SymbolInfo(**values)


class TestChecksAtTheCall:
    """Bad arguments raise when the method is called: no plan, no request."""

    @pytest.mark.parametrize(
        "call",
        [
            lambda p: p.depth_snapshot("BTCUSDT", limit=1001),
            lambda p: p.recent_trades("BTCUSDT", limit=0),
            lambda p: p.klines("BTCUSDT", "8h"),
            lambda p: p.klines("BTCUSDT", "1h", limit=1001),
            lambda p: p.klines_history("BTCUSDT", "1m", 10, 5),
            lambda p: p.klines_history("BTCUSDT", "1m", "0"),
            lambda p: _order(p, "BTCUSDT", "hold", "LIMIT", "1", "1"),
            lambda p: _order(p, "BTCUSDT", "buy", "LIMIT", "1", None),
            lambda p: _order(p, "BTCUSDT", "buy", "LIMIT", "1", "1", qty="2"),
            lambda p: _order(p, "BTCUSDT", "buy", "LIMIT", "1", "1", client_order_id="a b"),
            lambda p: p.get_order("BTCUSDT", None, None),
            lambda p: p.cancel_order("BTCUSDT", None, None),
        ],
    )
    def test_value_errors(self, call: Callable[[BybitPlans], Any]) -> None:
        with pytest.raises(ValueError):
            call(_plans())

    @pytest.mark.parametrize(
        "call",
        [
            lambda p: p.agg_trades("BTCUSDT"),
            lambda p: p.avg_price("BTCUSDT"),
            lambda p: p.trades_between("trades", "BTCUSDT", 1, 2),
            lambda p: p.trades_after("BTCUSDT", 1, 0),
            lambda p: p.test_order("BTCUSDT", "buy", "LIMIT", "1", "1", None, None, {}),
            lambda p: p.trade_backfill("agg_trades", "BTCUSDT"),
            lambda p: p.positions(),
            lambda p: p.set_position_mode(True),
        ],
    )
    def test_not_supported_on_spot(self, call: Callable[[BybitPlans], Any]) -> None:
        with pytest.raises(NotSupportedError):
            call(_plans())

    def test_refusals_say_what_to_use_on_bybit_and_offers_tells_the_truth(self) -> None:
        plans = _plans("linear")
        with pytest.raises(NotSupportedError, match="use trade_backfill"):
            plans.trades_after("BTCUSDT", 1, 0)
        with pytest.raises(NotSupportedError, match="use recent_trades"):
            plans.agg_trades("BTCUSDT")
        assert not plans.offers("trades_after") and not plans.offers("test_order")
        assert plans.offers("trade_backfill") and plans.offers("positions")
        spot = _plans("spot")
        assert not spot.offers("positions") and not spot.offers("set_position_mode")
        assert spot.offers("open_orders")

    def test_signed_calls_need_keys(self) -> None:
        plans = BybitPlans(Config.bybit("linear"))
        for call in (
            plans.account,
            lambda: _order(plans, "BTCUSDT", "buy", "MARKET", "1"),
            plans.open_orders,
            plans.positions,
            lambda: plans.get_order("BTCUSDT", "1", None),
            lambda: plans.cancel_order("BTCUSDT", "1", None),
            lambda: plans.set_position_mode(False),
        ):
            with pytest.raises(ConfigError, match="api_key"):
                call()

    def test_limits_for_the_engine_and_a_share_of_the_ip_window(self) -> None:
        plans = _plans()
        assert plans.limits == RestLimits(
            ip_ban=ep.IP_BAN, endpoint_limits=ep.ENDPOINT_LIMITS, ip_window=ep.IP_WINDOW
        )
        assert (plans.ip_requests_per_window, plans.ip_window_seconds) == (600, 5.0)
        assert _plans(ip_requests_per_window=2).limits.ip_window == RequestWindow(2, 5.0)
        for bad in (0, 601):
            with pytest.raises(ConfigError, match="ip_requests_per_window"):
                _plans(ip_requests_per_window=bad)

    def test_public_calls_need_no_keys(self) -> None:
        call = next(BybitPlans(Config.bybit()).server_time()())
        assert isinstance(call, Call) and call.endpoint == ep.TIME


class TestMarketData:
    def test_server_time_and_ping(self) -> None:
        drive = Drive(_script({"timeSecond": "1688639403", "timeNano": "1688639403423213947"}))
        assert drive.run(_plans().server_time()) == 1688639403423
        assert drive.calls[0].endpoint == ep.TIME and drive.calls[0].params == {}
        assert Drive(_script({})).run(_plans().ping()) is None

    def test_depth_snapshot(self) -> None:
        book = {"s": "BTCUSDT", "b": [["1", "2"]], "a": [["3", "4"]], "u": 7, "ts": 99}
        drive = Drive(_script(book))
        result = drive.run(_plans("linear").depth_snapshot("btcusdt", 50))
        assert drive.calls[0].params == {"category": "linear", "symbol": "BTCUSDT", "limit": 50}
        assert (result.update_id, result.event_time, result.bids) == (
            7,
            99,
            ((Decimal(1), Decimal(2)),),
        )

    def test_a_book_resyncing_asks_at_recovery_urgency(self) -> None:
        call = next(_plans().depth_snapshot("BTCUSDT", 200, "recovery")())
        assert isinstance(call, Call) and call.urgency == "recovery"

    def test_a_result_of_the_wrong_shape_is_a_parse_error_naming_the_route(self) -> None:
        with pytest.raises(ParseError, match="/v5/market/orderbook"):
            Drive(_script({"s": "BTCUSDT"})).run(_plans().depth_snapshot("BTCUSDT"))

    def test_recent_trades_cap_and_order(self) -> None:
        rows = [
            {"execId": str(i), "symbol": "BTCUSDT", "price": "1", "size": "1", "side": "Buy"}
            | {"time": str(1000 * i)}
            for i in (3, 2, 1)
        ]
        drive = Drive(_script({"list": rows}))
        trades = drive.run(_plans().recent_trades("BTCUSDT"))
        assert drive.calls[0].params["limit"] == 60  # spot maximum, not the default 500
        assert drive.calls[0].urgency == "user"
        assert [t.trade_id for t in trades] == [1, 2, 3]

    def test_exchange_info_walks_the_cursor_and_keeps_what_was_asked(self) -> None:
        def row(symbol: str) -> dict[str, Any]:
            return {
                "symbol": symbol,
                "status": "Trading",
                "baseCoin": symbol[:-4],
                "quoteCoin": "USDT",
                "priceFilter": {"tickSize": "0.1"},
                "lotSizeFilter": {"qtyStep": "0.01"},
            }

        drive = Drive(
            _script(
                {"list": [row("BTCUSDT")], "nextPageCursor": "next%3D2"},
                {"list": [row("ETHUSDT"), row("SOLUSDT")], "nextPageCursor": ""},
            )
        )
        infos = drive.run(_plans("linear").exchange_info(["solusdt", "BTCUSDT"]))
        assert sorted(infos) == ["BTCUSDT", "SOLUSDT"]
        assert drive.remembered == infos  # the engine caches them for orders
        assert isinstance(drive.steps[-1], Remember)
        assert [c.params for c in drive.calls] == [
            {"category": "linear", "limit": 1000, "cursor": None},
            {"category": "linear", "limit": 1000, "cursor": "next=2"},
        ]

    def test_exchange_info_of_one_symbol_is_one_request(self) -> None:
        drive = Drive(_script({"list": [], "nextPageCursor": ""}))
        assert drive.run(_plans().exchange_info("btcusdt")) == {}
        assert drive.calls[0].params == {"category": "spot", "symbol": "BTCUSDT", "cursor": None}

    def test_ticker_inverse_volumes_are_swapped_back(self) -> None:
        row = {
            "symbol": "BTCUSD",
            "lastPrice": "10",
            "prevPrice24h": "9",
            "highPrice24h": "11",
            "lowPrice24h": "8",
            "volume24h": "5000",
            "turnover24h": "0.5",
        }
        ticker = Drive(_script({"list": [row]})).run(_plans("inverse").ticker_24h("btcusd"))
        assert (ticker.volume, ticker.quote_volume) == (Decimal("0.5"), Decimal("5000"))


def _candles(call: Call[Any]) -> Answer:
    """A Bybit-like server: 1m candles of the window asked for, newest first."""
    start, end, limit = (call.params[k] for k in ("start", "end", "limit"))
    first = -(-start // 60_000) * 60_000
    opens = list(range(first, end + 1, 60_000))[-limit:]
    return {"list": [[str(t), "1", "2", "0.5", "1.5", "10", "15"] for t in reversed(opens)]}


class TestKlines:
    def test_the_clock_is_read_after_the_page_came(self) -> None:
        drive = Drive(
            _script({"list": [[str(NOW - 90_000), "1", "1", "1", "1", "1", "1"]]}), now=NOW
        )
        (done,) = drive.run(_plans().klines("BTCUSDT", "1m"))
        assert [type(s) for s in drive.steps] == [Call, Now]
        assert done.closed and done.interval == "1m"
        drive = Drive(_script({"list": [[str(NOW - 30_000), "1", "1", "1", "1", "1", "1"]]}))
        (running,) = drive.run(_plans().klines("BTCUSDT", "1"))
        assert not running.closed and running.event_time == NOW

    def test_history_emits_one_window_at_a_time(self) -> None:
        drive = Drive(_candles)
        end = 2_499 * 60_000
        assert drive.run(_plans().klines_history("BTCUSDT", "1m", 0, end)) is None
        assert [len(batch) for batch in drive.emitted] == [1000, 1000, 500]
        candles: list[Kline] = [k for batch in drive.emitted for k in batch]
        assert [k.open_time for k in candles] == [i * 60_000 for i in range(2500)]
        assert [(c.params["start"], c.params["end"]) for c in drive.calls] == [
            (0, 1000 * 60_000 - 1),
            (1000 * 60_000, 2000 * 60_000 - 1),
            (2000 * 60_000, end),
        ]
        # each window is delivered before the next one is asked for
        kinds = [type(s).__name__ for s in drive.steps if not isinstance(s, Now)]
        assert kinds == ["Call", "Emit", "Call", "Emit", "Call", "Emit"]

    def test_history_without_end_runs_to_now_through_empty_windows(self) -> None:
        drive = Drive(
            _script({"list": []}, {"list": [["1000000000000", "1", "1", "1", "1", "1", "1"]]}),
            now=1_000_000_000_000,
        )
        drive.run(_plans().klines_history("BTCUSDT", "1m", 1_000_000_000_000 - 60_000_000))
        assert isinstance(drive.steps[0], Now)
        assert len(drive.calls) == 2 and [len(batch) for batch in drive.emitted] == [0, 1]

    def test_history_starting_after_now_fails_when_run(self) -> None:
        plan = _plans().klines_history("BTCUSDT", "1m", NOW + 60_000)  # no error yet: a factory
        with pytest.raises(ValueError, match="start"):
            Drive(_script()).run(plan)

    def test_disposing_stops_the_walk(self) -> None:
        plan = _plans().klines_history("BTCUSDT", "1m", 0, 2_499 * 60_000)()
        call = next(plan)
        assert isinstance(call, Call)
        emit = plan.send(call.parse(_reply(_candles(call))))  # (a Now step first)
        emit = plan.send(NOW) if isinstance(emit, Now) else emit
        assert isinstance(emit, Emit)
        plan.close()  # what the engine does when the subscriber leaves
        with pytest.raises(StopIteration):
            next(plan)

    def test_malformed_rows_are_a_parse_error(self) -> None:
        with pytest.raises(ParseError, match="/v5/market/kline"):
            Drive(_script({"list": [["x"]]})).run(_plans().klines("BTCUSDT", "1m"))


class TestTradeBackfill:
    def test_recent_trades_marked_backfilled_at_backfill_urgency(self) -> None:
        row = {"execId": "9", "symbol": "BTCUSDT", "price": "1", "size": "2", "side": "Sell"}
        drive = Drive(lambda _call: {"list": [row | {"time": "5"}]})
        backfill = _plans("linear").trade_backfill("trades", "btcusdt")
        (trade,) = drive.run(backfill(12345))
        (again,) = drive.run(backfill())  # the overlap operator calls it without an id
        assert trade.backfilled and again.trade_id == trade.trade_id == 9
        assert [c.urgency for c in drive.calls] == ["backfill", "backfill"]
        assert drive.calls[0].params == {"category": "linear", "symbol": "BTCUSDT", "limit": 1000}


class TestOrders:
    def test_rules_are_asked_first_then_the_order_is_sent_once(self) -> None:
        drive = Drive(_script({"orderId": "77", "orderLinkId": "c-1"}), rules=_rules())
        plans = _plans("linear", client_order_id_factory=lambda: "never-used")
        order = drive.run(
            _order(plans, "btcusdt", "buy", "limit", "0.01", "100", client_order_id="c-1")
        )
        assert drive.steps[0] == RulesFor("BTCUSDT")
        (call,) = drive.calls
        assert call.endpoint == ep.ORDER_CREATE and call.endpoint.signed
        assert (call.idempotent, call.client_order_id) == (False, "c-1")
        assert call.params["orderLinkId"] == "c-1" and call.params["qty"] == "0.01"
        assert (order.order_id, order.status, order.price) == ("77", "ACK", Decimal("100"))

    def test_an_order_breaking_cached_rules_is_never_sent(self) -> None:
        drive = Drive(_script(), rules=_rules())
        plan = _order(_plans(), "BTCUSDT", "buy", "LIMIT", "0.01", "100.05")
        with pytest.raises(OrderRejectedError) as info:
            drive.run(plan)
        assert info.value.filter == "PRICE_FILTER" and drive.calls == []

    def test_unknown_rules_let_the_exchange_decide(self) -> None:
        drive = Drive(_script({"orderId": "1", "orderLinkId": ""}), rules=None)
        order = drive.run(
            _order(
                _plans(client_order_id_factory=lambda: "gen-1"), "BTCUSDT", "sell", "MARKET", "5"
            )
        )
        assert order.client_order_id == "gen-1" and order.price == 0
        assert "price" in drive.calls[0].params and drive.calls[0].params["price"] is None

    def test_the_link_id_is_fixed_at_the_call_and_every_run_sends_it(self) -> None:
        ids = iter(["first", "second"])
        plans = _plans(client_order_id_factory=lambda: next(ids))
        placing = _order(plans, "BTCUSDT", "buy", "MARKET", "1")
        drive = Drive(lambda _call: {"orderId": "1", "orderLinkId": ""})
        assert drive.run(placing).client_order_id == "first"
        assert drive.run(placing).client_order_id == "first"  # a second subscription
        assert [c.params["orderLinkId"] for c in drive.calls] == ["first", "first"]

    def test_get_order_falls_back_to_history(self) -> None:
        drive = Drive(_script({"list": []}, {"list": [_row(orderStatus="Filled")]}))
        order = drive.run(_plans("linear").get_order("ethusdt", "fd43", None))
        assert order.status == "FILLED"
        assert [c.endpoint for c in drive.calls] == [ep.ORDER_REALTIME, ep.ORDER_HISTORY]
        assert drive.calls[1].params == {
            "category": "linear",
            "symbol": "ETHUSDT",
            "orderId": "fd43",
        }

    def test_get_order_found_nowhere_is_an_exchange_error(self) -> None:
        drive = Drive(_script({"list": []}, {"list": []}))
        with pytest.raises(ExchangeError, match="not found"):
            drive.run(_plans().get_order("ETHUSDT", None, "x"))

    def test_cancel_then_lookup(self) -> None:
        drive = Drive(_script({"orderId": "fd43", "orderLinkId": ""}, {"list": [_row()]}))
        order: Order = drive.run(_plans().cancel_order("ETHUSDT", None, "link-5"))
        assert order.status == "PENDING_CANCEL"  # still open right after the ack
        cancel, lookup = drive.calls
        assert cancel.params == {"category": "spot", "symbol": "ETHUSDT", "orderLinkId": "link-5"}
        assert lookup.params["orderId"] == "fd43"

    def test_cancel_ack_without_id_looks_up_by_link_id(self) -> None:
        cancelled = _row(orderStatus="Cancelled")
        drive = Drive(_script({"orderId": "", "orderLinkId": ""}, {"list": [cancelled]}))
        order = drive.run(_plans().cancel_order("ETHUSDT", None, "link-5"))
        assert order.status == "CANCELED"
        assert drive.calls[1].params["orderLinkId"] == "link-5"

    def test_failed_lookup_says_the_cancel_was_accepted(self) -> None:
        refused = ExchangeError("params error", exchange="bybit", status=200, code=10001)
        drive = Drive(_script({"orderId": "1"}, refused))
        with pytest.raises(ExchangeError, match="cancel was accepted") as info:
            drive.run(_plans().cancel_order("BTCUSDT", "1", None))
        assert info.value.code == 10001 and info.value.__cause__ is refused

    def test_a_transport_failure_of_the_lookup_keeps_its_type_and_gains_a_note(self) -> None:
        lost = TransportError("connection reset")
        drive = Drive(_script({"orderId": "1"}, lost))
        with pytest.raises(TransportError) as info:
            drive.run(_plans().cancel_order("BTCUSDT", "1", None))
        assert info.value is lost and "cancel was accepted" in " ".join(lost.__notes__)

    def test_a_failed_cancel_is_not_looked_up(self) -> None:
        refused = ExchangeError("order not exists", exchange="bybit", status=200, code=110001)
        drive = Drive(_script(refused))
        with pytest.raises(ExchangeError) as info:
            drive.run(_plans().cancel_order("BTCUSDT", "1", None))
        assert info.value is refused and len(drive.calls) == 1


class TestListings:
    def test_open_orders_walk_pages(self) -> None:
        drive = Drive(
            _script(
                {"list": [_row()], "nextPageCursor": "page_args%3D1"},
                {"list": [_row(orderId="2")], "nextPageCursor": ""},
            )
        )
        orders = drive.run(_plans().open_orders("ethusdt"))
        assert [o.order_id for o in orders] == ["fd43", "2"]
        assert [c.params["cursor"] for c in drive.calls] == [None, "page_args=1"]
        assert drive.calls[0].params == {
            "category": "spot",
            "openOnly": 0,
            "limit": 50,
            "symbol": "ETHUSDT",
            "cursor": None,
        }

    def test_linear_without_symbol_asks_each_settle_coin(self) -> None:
        drive = Drive(_script({"list": [_row()]}, {"list": [_row(orderId="usdc")]}))
        orders = drive.run(_plans("linear").open_orders())
        assert [o.order_id for o in orders] == ["fd43", "usdc"]
        assert [c.params["settleCoin"] for c in drive.calls] == ["USDT", "USDC"]

    def test_positions_leave_flat_entries_out(self) -> None:
        def position(symbol: str, size: str) -> dict[str, Any]:
            return {
                "symbol": symbol,
                "side": "Buy" if size != "0" else "",
                "size": size,
                "avgPrice": "100",
                "positionValue": "100",
                "markPrice": "101",
                "unrealisedPnl": "1",
                "positionIdx": 0,
                "updatedTime": "1",
            }

        drive = Drive(_script({"list": [position("BTCUSD", "1"), position("ETHUSD", "0")]}))
        positions = drive.run(_plans("inverse").positions())
        assert [p.symbol for p in positions] == ["BTCUSD"]
        assert drive.calls[0].params == {"category": "inverse", "limit": 200, "cursor": None}

    def test_position_mode(self) -> None:
        drive = Drive(_script({}))
        assert drive.run(_plans("linear").set_position_mode(True, symbol="btcusdt")) is None
        assert drive.calls[0].params == {"category": "linear", "mode": 3, "symbol": "BTCUSDT"}
        drive = Drive(_script({}))
        drive.run(_plans("linear").set_position_mode(False, coin="USDC"))
        assert drive.calls[0].params == {"category": "linear", "mode": 0, "coin": "USDC"}
        with pytest.raises(TypeError, match="leverage"):
            _plans("linear").set_position_mode(True, leverage=3)

    def test_account(self) -> None:
        coin = {"coin": "BTC", "walletBalance": "1", "locked": "0.25"}
        drive = Drive(_script({"list": [{"accountType": "UNIFIED", "coin": [coin]}]}))
        (balance,) = drive.run(_plans().account())
        assert (balance.asset, balance.locked, balance.event_time) == (
            "BTC",
            Decimal("0.25"),
            NOW + 1,
        )
        assert drive.calls[0].params == {"accountType": "UNIFIED"}

    def test_account_without_zero_balances(self) -> None:
        coins = [
            {"coin": "BTC", "walletBalance": "1", "locked": "0"},
            {"coin": "ETH", "walletBalance": "0", "locked": "0"},
        ]
        body = {"list": [{"accountType": "UNIFIED", "coin": coins}]}
        every = Drive(_script(body)).run(_plans().account())
        kept = Drive(_script(body)).run(_plans().account(omit_zero_balances=True))
        assert [b.asset for b in every] == ["BTC", "ETH"]
        assert [b.asset for b in kept] == ["BTC"]


class TestEnvelopeAndSigning:
    def test_in_result_hands_the_result_to_the_parser(self) -> None:
        parse = InResult("/x", lambda reply, result: (reply.status, result["a"]))
        assert parse(_reply({"a": 1})) == (200, 1)
        with pytest.raises(ParseError, match="malformed bybit /x payload"):
            parse(RestReply(data={"retCode": 0}, status=200, headers={}, received_at=0, elapsed=0))

    def test_get_is_signed_over_the_query_and_post_over_the_body(self) -> None:
        config = Config.bybit(api_key=KEY, api_secret=SECRET, recv_window=7000)
        signer = rest_signer(config)
        got = signer.sign(ep.WALLET_BALANCE, {"accountType": "UNIFIED"}, NOW)
        assert got.query == "accountType=UNIFIED" and got.body is None
        posted = signer.sign(ep.ORDER_CANCEL, {"category": "spot", "orderId": "1", "x": None}, NOW)
        assert posted.query == "" and orjson.loads(posted.body or "") == {
            "category": "spot",
            "orderId": "1",
        }
        for signed, payload in ((got, got.query), (posted, posted.body or "")):
            headers = signed.headers
            assert headers["X-BAPI-TIMESTAMP"] == str(NOW)
            assert headers["X-BAPI-RECV-WINDOW"] == "7000"
            text = f"{NOW}{KEY}7000{payload}"
            expected = hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
            assert headers["X-BAPI-SIGN"] == expected

    def test_the_signer_keeps_its_secret(self) -> None:
        signer = rest_signer(Config.bybit(api_key=KEY, api_secret=SECRET))
        assert SECRET not in repr(signer)
        with pytest.raises(TypeError):
            __import__("pickle").dumps(signer)
        with pytest.raises(ValueError, match="signs every keyed request"):
            signer.key_only(ep.TIME, {})
