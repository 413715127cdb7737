"""FakeConnector: scripted feeds, scripted and recorded REST, pushable health, lifecycle."""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest

from rxconnector.errors import NotScriptedError, RateLimitError, RxConnectorError
from rxconnector.models import BreakerState, ClockOffset, ConnectionEvent, ConnectionState, Order
from rxconnector.testing.account_factories import make_order
from rxconnector.testing.factories import make_kline, make_trade
from rxconnector.testing.fake import FEEDS, FakeConnector
from rxconnector.testing.fake_rest import REST_METHODS, Call
from rxconnector.testing.marbles import emitted, expected
from rxconnector.testing.model_marbles import ticks

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe

#: Arguments that call each feed method.
FEED_ARGS: dict[str, tuple[Any, ...]] = {
    "klines": ("BTCUSDT", "1m"),
    "orders": (),
    "balances": (),
    "executions": (),
    "positions": (),
    "account_events": (),
}


def _feed_args(feed: str) -> tuple[Any, ...]:
    return FEED_ARGS.get(feed, ("BTCUSDT",))


def _collect(source: Observable[Any]) -> list[Any]:
    seen: list[Any] = []
    source.subscribe(seen.append)
    return seen


class TestFeeds:
    """Feeds emit what the test set, live and shared, on the fake's timeline."""

    def test_diagram_feed_starts_at_origin(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", "a-b-|", values={"a": 1, "b": 2})
        assert fake.run(fake.ticker("BTCUSDT")) == expected("a-b-|", {"a": 1, "b": 2})

    @pytest.mark.parametrize("feed", FEEDS)
    def test_every_feed_of_the_surface_can_be_set(self, feed: str) -> None:
        fake = FakeConnector()
        args = _feed_args(feed)
        fake.set_feed(feed, *args, "-x|", values={"x": feed})
        result = fake.run(getattr(fake, feed)(*args))
        assert result == [on_next(201, feed), on_completed(202)]

    def test_an_observable_source_is_started_once_and_shared(self) -> None:
        fake = FakeConnector()
        source = fake.scheduler.create_cold_observable(
            on_next(1, "a"), on_next(3, "b"), on_next(5, "c"), on_completed(6)
        )
        fake.set_feed("trades", "BTCUSDT", source)
        late = fake.scheduler.create_observer()
        fake.scheduler.schedule_absolute(202, lambda *_: fake.trades("BTCUSDT").subscribe(late))
        result = fake.run(fake.trades("BTCUSDT"))
        assert result == [
            on_next(201, "a"),
            on_next(203, "b"),
            on_next(205, "c"),
            on_completed(206),
        ]
        assert late.messages == [on_next(203, "b"), on_next(205, "c"), on_completed(206)]
        assert source.subscriptions == [subscribe(200, 206)]

    def test_live_false_hands_the_source_to_each_subscriber(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", ticks("-a|", {"a": 5}), live=False)
        late = fake.scheduler.create_observer()
        fake.scheduler.schedule_absolute(
            210, lambda *_: fake.ticker("BTCUSDT").subscribe(late, scheduler=fake.scheduler)
        )
        fake.run(fake.ticker("BTCUSDT"))
        assert [t.event_time for t in emitted(late.messages)] == [211_000]

    def test_timed_values_and_records_are_absolute_times(self) -> None:
        fake = FakeConnector()
        fake.set_feed("trades", "BTCUSDT", [(201, "a"), (206, "b")])
        fake.set_feed("agg_trades", "BTCUSDT", [on_next(210, "x"), on_completed(220)])
        assert fake.run(reactivex.merge(fake.trades("BTCUSDT"), fake.agg_trades("BTCUSDT"))) == [
            on_next(201, "a"),
            on_next(206, "b"),
            on_next(210, "x"),
        ]

    def test_defaults_of_the_feed_signature_are_part_of_the_key(self) -> None:
        fake = FakeConnector()
        fake.set_feed("depth", "BTCUSDT", "-a|", values={"a": "twenty"})
        fake.set_feed("depth", "BTCUSDT", "-b|", values={"b": "five"}, levels=5)
        fake.set_feed("order_book", "BTCUSDT", 50, "-c|", values={"c": "fifty"})
        result = fake.run(
            reactivex.merge(
                fake.depth("BTCUSDT"),
                fake.depth("BTCUSDT", levels=5),
                fake.order_book("BTCUSDT", depth=50),
            )
        )
        assert sorted(emitted(result)) == ["fifty", "five", "twenty"]

    def test_an_unset_feed_names_the_call_that_sets_it(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", "-a|", values={"a": 1})
        with pytest.raises(NotScriptedError) as info:
            fake.klines("ETHUSDT", "5m")
        message = str(info.value)
        assert "fake.set_feed('klines', 'ETHUSDT', '5m', <diagram or Observable>)" in message
        assert "feeds set: ticker('BTCUSDT')" in message
        assert info.value.method == "klines"
        assert isinstance(info.value, LookupError)

    def test_not_strict_an_unset_feed_is_a_quiet_market(self) -> None:
        fake = FakeConnector(strict=False)
        assert fake.run(fake.ticker("BTCUSDT")) == []

    def test_set_feed_rejects_mistakes_early(self) -> None:
        fake = FakeConnector()
        with pytest.raises(ValueError, match="unknown feed 'tickers'"):
            fake.set_feed("tickers", "BTCUSDT", "-a|")
        with pytest.raises(TypeError, match="needs a source"):
            fake.set_feed("orders")
        with pytest.raises(
            TypeError, match=r"klines\(symbol, interval\): missing a required argument: 'interval'"
        ):
            fake.set_feed("klines", "BTCUSDT", "-a|")
        with pytest.raises(TypeError, match="only go with a marble diagram"):
            fake.set_feed("ticker", "BTCUSDT", reactivex.empty(), values={"a": 1})
        with pytest.raises(TypeError, match="not int"):
            fake.set_feed("ticker", "BTCUSDT", 5)
        with pytest.raises(TypeError, match=r"expected \(time, value\)"):
            fake.set_feed("ticker", "BTCUSDT", ["a"])
        with pytest.raises(ValueError, match="uses 'b'"):
            fake.set_feed("ticker", "BTCUSDT", "-a-b|", values={"a": 1})

    def test_feed_subscriptions_show_when_the_strategy_let_go(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", "-a-a-a-a-a-|", values={"a": 1})
        fake.run(fake.ticker("BTCUSDT").pipe(ops.take(2)))
        assert fake.feed_subscriptions("ticker", "BTCUSDT") == [subscribe(200, 203)]
        assert fake.feed_subscriptions("ticker", "ETHUSDT") == []

    def test_feeds_complete_when_the_fake_stops(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", "-a-a-a-a-a-a-", values={"a": 1})
        fake.stop_at(204)
        assert fake.run(fake.ticker("BTCUSDT")) == [
            on_next(201, 1),
            on_next(203, 1),
            on_completed(204),
        ]
        after = fake.scheduler.create_observer()
        fake.ticker("BTCUSDT").subscribe(after)
        assert after.messages == [on_completed(1000)]


class TestRest:
    """REST calls answer as scripted and are recorded when subscribed, like real requests."""

    def test_a_scripted_result_and_the_recorded_call(self) -> None:
        fake = FakeConnector()
        order = make_order(status="FILLED")
        fake.script("place_order", result=order)
        call = fake.place_order("BTCUSDT", "buy", "MARKET", quantity=Decimal(1))
        assert fake.calls("place_order") == []  # cold: nothing sent yet
        assert _collect(call) == [order]
        assert fake.calls("place_order") == [
            {
                "symbol": "BTCUSDT",
                "side": "buy",
                "type": "MARKET",
                "quantity": Decimal(1),
                "price": None,
                "time_in_force": None,
                "client_order_id": None,
            }
        ]

    def test_each_subscription_is_one_call(self) -> None:
        fake = FakeConnector()
        fake.script("cancel_order", result="ok")
        call = fake.cancel_order("BTCUSDT", order_id=7)
        _collect(call)
        _collect(call)
        assert (
            fake.calls("cancel_order")
            == [{"symbol": "BTCUSDT", "order_id": 7, "client_order_id": None}] * 2
        )

    def test_a_callable_answers_from_the_arguments(self) -> None:
        fake = FakeConnector()
        fake.script("place_order", result=lambda **req: make_order(status="FILLED", **req))
        (order,) = _collect(fake.place_order("ETHUSDT", "sell", "LIMIT", "2", "3000", "GTC", "c1"))
        assert (order.symbol, order.side, order.price, order.filled_quantity) == (
            "ETHUSDT",
            "sell",
            Decimal(3000),
            Decimal(2),
        )
        assert order.client_order_id == "c1"

    def test_a_callable_that_raises_fails_the_call(self) -> None:
        fake = FakeConnector()

        def reject(**_: Any) -> Order:
            raise RateLimitError("slow down", retry_after=2)

        fake.script("get_order", result=reject)
        errors: list[Exception] = []
        fake.get_order("BTCUSDT", order_id=1).subscribe(on_error=errors.append)
        assert isinstance(errors[0], RateLimitError)

    def test_a_scripted_error_and_a_delay_in_virtual_time(self) -> None:
        fake = FakeConnector()
        fake.script("account", error=RateLimitError("banned", retry_after=60), delay=3)
        result = fake.run(fake.account())
        assert result == expected("---#", error=RateLimitError("banned", retry_after=60))
        assert fake.call_log == [Call("account", {}, 200.0)]

    def test_limited_answers_come_first_then_the_standing_one(self) -> None:
        fake = FakeConnector()
        fake.script("ticker_24h", result="standing")
        fake.script("ticker_24h", result="first", times=1)
        fake.script("ticker_24h", result="second", times=2)
        answers = [_collect(fake.ticker_24h("BTCUSDT"))[0] for _ in range(5)]
        assert answers == ["first", "second", "second", "standing", "standing"]

    def test_a_standing_script_replaces_the_previous_one(self) -> None:
        fake = FakeConnector()
        fake.script("open_orders", result=[])
        fake.script("open_orders", result=["o"])
        assert _collect(fake.open_orders()) == [["o"]]

    def test_kline_history_emits_each_candle(self) -> None:
        fake = FakeConnector()
        candles = [make_kline(open_time=0), make_kline(open_time=60_000)]
        fake.script("kline_history", result=candles)
        assert _collect(fake.kline_history("BTCUSDT", "1m", 0)) == candles

    def test_ping_and_server_time_answer_without_a_script(self) -> None:
        fake = FakeConnector()
        fake.advance_to(250)
        assert _collect(fake.ping()) == [None]
        assert _collect(fake.server_time()) == [250_000]

    def test_an_unscripted_call_fails_naming_the_script_to_add(self) -> None:
        fake = FakeConnector()
        errors: list[Exception] = []
        fake.depth_snapshot("BTCUSDT").subscribe(on_error=errors.append)
        (error,) = errors
        assert isinstance(error, NotScriptedError)
        assert "depth_snapshot(symbol='BTCUSDT', limit=100)" in str(error)
        assert 'fake.script("depth_snapshot", result=...)' in str(error)
        assert fake.calls("depth_snapshot") == [{"symbol": "BTCUSDT", "limit": 100}]

    def test_not_strict_an_unscripted_call_never_answers(self) -> None:
        fake = FakeConnector(strict=False)
        assert fake.run(fake.exchange_info(["BTCUSDT"])) == []
        assert fake.calls("exchange_info") == [{"symbols": ["BTCUSDT"]}]

    def test_extra_venue_parameters_are_recorded(self) -> None:
        fake = FakeConnector()
        fake.script("test_order", result=None)
        _collect(fake.test_order("BTCUSDT", "buy", "LIMIT", "1", "100", "GTC", iceberg_qty="0.5"))
        assert fake.calls("test_order")[0]["iceberg_qty"] == "0.5"

    async def test_awaiting_a_call_returns_its_answer(self) -> None:
        fake = FakeConnector()
        trades = [make_trade(trade_id=1), make_trade(trade_id=2)]
        fake.script("recent_trades", result=trades)
        assert await fake.recent_trades("BTCUSDT", limit=2) == trades
        assert fake.calls("recent_trades") == [{"symbol": "BTCUSDT", "limit": 2}]

    def test_script_and_calls_reject_mistakes(self) -> None:
        fake = FakeConnector()
        with pytest.raises(ValueError, match="unknown REST method 'place_orders'"):
            fake.script("place_orders", result=1)
        with pytest.raises(ValueError, match="not both"):
            fake.script("ping", result=1, error=ValueError("x"))
        with pytest.raises(ValueError, match="delay must be >= 0"):
            fake.script("ping", delay=-1)
        with pytest.raises(ValueError, match="times must be >= 1"):
            fake.script("ping", times=0)
        with pytest.raises(ValueError, match="unknown REST method"):
            fake.calls("orders")

    @pytest.mark.parametrize("method", REST_METHODS)
    def test_every_rest_method_is_recorded(self, method: str) -> None:
        fake = FakeConnector()
        fake.script(method, result="answer")
        parameters = inspect.signature(getattr(fake, method)).parameters
        required = [p for p in parameters.values() if p.default is inspect.Parameter.empty]
        args = [f"arg-{p.name}" for p in required if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert _collect(getattr(fake, method)(*args)) == ["answer"]
        (recorded,) = fake.calls(method)
        assert [recorded[p.name] for p in required if p.kind is p.POSITIONAL_OR_KEYWORD] == args


class TestHealth:
    """Health streams carry what the test pushes, when it says, and now() follows time."""

    def test_connection_events_at_virtual_times(self) -> None:
        fake = FakeConnector()
        fake.simulate_reconnect(205, downtime=2, reason="reset by peer")
        events: list[ConnectionEvent] = emitted(fake.run(fake.connection_state))
        assert [(e.state, e.time, e.attempt, e.delay, e.reason) for e in events] == [
            (ConnectionState.RECONNECTING, 205_000.0, 1, 2, "reset by peer"),
            (ConnectionState.CONNECTED, 207_000.0, 0, 0.0, ""),
        ]

    def test_a_new_subscriber_gets_the_latest_state_of_each_connection(self) -> None:
        fake = FakeConnector()
        fake.set_connection_state(ConnectionState.CONNECTING)
        fake.set_connection_state(ConnectionState.CONNECTED)
        other = ConnectionEvent(ConnectionState.STALE, "fake-2", "wss://x", 0.0)
        fake.set_connection_state(other)
        states = [(e.connection_id, e.state) for e in _collect(fake.connection_state)]
        assert states == [("fake-1", ConnectionState.CONNECTED), ("fake-2", ConnectionState.STALE)]

    def test_errors_are_pushed_at_their_time(self) -> None:
        fake = FakeConnector()
        problem = ValueError("unparseable frame")
        fake.emit_error(problem, at=203)
        assert fake.run(fake.errors) == [on_next(203, problem)]

    def test_clock_offsets_move_now_and_replay_the_latest(self) -> None:
        fake = FakeConnector()
        fake.advance_to(300)
        assert fake.now() == 300_000
        fake.set_clock(250.0)
        assert fake.now() == 300_250
        (latest,) = _collect(fake.clock)
        assert (latest.offset_ms, latest.server_time, latest.measured_at) == (
            250.0,
            300_250,
            300_000.0,
        )
        given = ClockOffset(offset_ms=-40.0, rtt_ms=3.0, server_time=1, measured_at=2.0)
        fake.set_clock(given, at=310)
        fake.advance_to(310)
        assert fake.now() == 310_000 - 40
        assert _collect(fake.clock) == [given]

    def test_breaker_state_starts_closed(self) -> None:
        fake = FakeConnector()
        fake.set_breaker_state(BreakerState.OPEN, at=201)
        fake.set_breaker_state(BreakerState.HALF_OPEN, at=231)
        assert fake.run(fake.breaker_state) == [
            on_next(200, BreakerState.CLOSED),
            on_next(201, BreakerState.OPEN),
            on_next(231, BreakerState.HALF_OPEN),
        ]


class TestLifecycle:
    """async with / start / stop behave like the real connector's, in virtual time."""

    async def test_async_with_starts_and_stops(self) -> None:
        fake = FakeConnector()
        states: list[ConnectionState] = []
        done: list[bool] = []
        fake.connection_state.subscribe(
            lambda e: states.append(e.state), on_completed=lambda: done.append(True)
        )
        async with fake as conn:
            assert conn is fake
            started_inside = fake.started
        assert (started_inside, fake.started) == (True, False)
        assert states == [ConnectionState.CLOSED]
        assert done == [True]
        await fake.stop()  # idempotent
        with pytest.raises(RxConnectorError, match="stopped"):
            await fake.start()

    def test_scheduler_is_the_given_one_and_run_happens_once(self) -> None:
        run_scheduler = FakeConnector().scheduler
        fake = FakeConnector(run_scheduler)
        assert fake.scheduler is run_scheduler
        fake.run(reactivex.empty())
        with pytest.raises(RuntimeError, match="once"):
            fake.run(reactivex.empty())

    def test_run_checks_its_times(self) -> None:
        with pytest.raises(ValueError, match="origin must be a positive"):
            FakeConnector(origin=0)
        with pytest.raises(ValueError, match="must be after origin"):
            FakeConnector().run(reactivex.empty(), until=150)

    def test_run_takes_a_factory_built_before_subscription(self) -> None:
        fake = FakeConnector(origin=50)
        fake.set_feed("ticker", "BTCUSDT", "a|", values={"a": 1})
        assert fake.run(lambda: fake.ticker("BTCUSDT"), until=60) == [
            on_next(50, 1),
            on_completed(51),
        ]


class TestSurfaceParity:
    """The fake has the real Connector's method names and parameters."""

    CONTRACT = (
        *FEEDS,
        *REST_METHODS,
        "connection_state",
        "clock",
        "now",
        "breaker_state",
        "errors",
        "scheduler",
        "start",
        "stop",
        "started",
        "__aenter__",
        "__aexit__",
    )

    @pytest.mark.parametrize("name", CONTRACT)
    def test_contract_name_exists(self, name: str) -> None:
        assert hasattr(FakeConnector, name)

    @pytest.mark.parametrize("name", (*FEEDS, *REST_METHODS))
    def test_parameters_match_the_real_connector(self, name: str) -> None:
        from rxconnector.connector import Connector

        real = getattr(Connector, name, None)
        assert real is not None, f"the real Connector has no {name}"
        real_params = list(inspect.signature(real).parameters)
        fake_params = list(inspect.signature(getattr(FakeConnector, name)).parameters)
        assert fake_params == real_params
