"""The plan runner in virtual time: a scripted host answers each Call after a delay on a
TestScheduler, so what is sent when, what is delivered when and what disposal cancels
are all visible on one clock (no socket, no real sleep)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler

from rxconnector.errors import ExchangeError, OrderStatusUnknownError
from rxconnector.exchanges.rest_plan import (
    Call,
    Emit,
    ForgetRules,
    Now,
    Plan,
    Remember,
    RulesFor,
    WeightBudget,
    single,
)
from rxconnector.exchanges.rest_spec import Endpoint, RestReply
from rxconnector.models import SymbolInfo
from rxconnector.rate.limiter import Priority
from rxconnector.rest.plan_runner import URGENCY_PRIORITY, run_plan
from rxconnector.rest.planned import PlannedRest
from rxconnector.testing import make_symbol_info

PAGE = Endpoint("GET", "/page", 1)
MAIN = Endpoint("GET", "/main", 1)
BACKUP = Endpoint("GET", "/backup", 1)
LATENCY = 1.0  # virtual seconds per request


def _data(reply: RestReply) -> Any:
    return reply.data


class ScriptedHost:
    """A PlanHost whose requests answer ``LATENCY`` virtual seconds after subscription:
    ``answers[path](params)`` is the reply data, or an exception to fail with."""

    def __init__(
        self, scheduler: TestScheduler, answers: Mapping[str, Callable[[Mapping[str, Any]], Any]]
    ) -> None:
        self.scheduler = scheduler
        self.answers = answers
        self.log: list[tuple[float, str]] = []
        self.rules: dict[str, SymbolInfo] = {}
        self.forgotten: list[str] = []
        self.budget: list[int] = []

    def _at(self, what: str) -> None:
        self.log.append((self.scheduler.clock, what))

    def send(self, call: Call[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self._at(f"send {call.endpoint.path} {dict(call.params)}")
            answered: list[bool] = []

            def answer(_sched: abc.SchedulerBase, _state: Any = None) -> None:
                answered.append(True)
                outcome = self.answers[call.endpoint.path](call.params)
                if isinstance(outcome, Exception):
                    observer.on_error(outcome)
                    return
                reply = RestReply(outcome, 200, {}, self.scheduler.clock, 0.0)
                observer.on_next(call.parse(reply))
                observer.on_completed()

            pending = self.scheduler.schedule_relative(LATENCY, answer)

            def cancel() -> None:
                if not answered:  # disposed before its answer: a cancelled request
                    self._at(f"cancel {call.endpoint.path}")
                pending.dispose()

            return Disposable(cancel)

        return Observable(subscribe)

    def rules_for(self, symbol: str) -> Observable[SymbolInfo | None]:
        return reactivex.just(self.rules.get(symbol))

    def forget_rules(self, symbol: str) -> None:
        self.forgotten.append(symbol)

    def remember_rules(self, infos: Mapping[str, SymbolInfo]) -> None:
        self.rules.update(infos)

    def now(self) -> int:
        return int(self.scheduler.clock * 1000)

    def weight_budget(self, per_minute: int) -> None:
        self.budget.append(per_minute)


def _pages(params: Mapping[str, Any]) -> list[int]:
    """Three pages of two items: 0,1 / 2,3 / 4 (a short last page)."""
    start = int(params["from"])
    return [i for i in range(start, start + 2) if i <= 4]


def _walk(first: int) -> Plan[None]:
    cursor = first
    while True:
        page: list[int] = yield Call(PAGE, {"from": cursor}, _data, urgency="backfill")
        yield Emit(page)
        if len(page) < 2:
            return None
        cursor = page[-1] + 1


def _with_fallback() -> Plan[str]:
    try:
        answer: str = yield Call(MAIN, {}, _data)
    except ExchangeError as error:
        answer = yield Call(BACKUP, {"after": error.code}, _data)
    return answer


class TestErrorsThrownIntoThePlan:
    def test_a_caught_error_falls_back(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(
            scheduler,
            {
                "/main": lambda _p: ExchangeError("down", exchange="x", status=503, code=-1001),
                "/backup": lambda _p: "from backup",
            },
        )
        result = scheduler.start(lambda: run_plan(_with_fallback, host))
        assert result.messages == [
            ReactiveTest.on_next(202, "from backup"),
            ReactiveTest.on_completed(202),
        ]
        assert host.log == [(200.0, "send /main {}"), (201.0, "send /backup {'after': -1001}")]

    def test_an_uncaught_error_ends_the_observable(self) -> None:
        scheduler = TestScheduler()
        lost = OrderStatusUnknownError("lost", client_order_id="c1", exchange="x")
        host = ScriptedHost(scheduler, {"/main": lambda _p: lost})
        result = scheduler.start(lambda: run_plan(partial(single, Call(MAIN, {}, _data)), host))
        assert result.messages == [ReactiveTest.on_error(201, lost)]

    def test_an_error_raised_by_the_plan_itself_ends_the_observable(self) -> None:
        def refuses() -> Plan[None]:
            yield Now()
            raise ValueError("price off the tick size")

        scheduler = TestScheduler()
        seen: list[Exception] = []
        run_plan(refuses, ScriptedHost(scheduler, {})).subscribe(on_error=seen.append)
        assert [str(e) for e in seen] == ["price off the tick size"]


class TestEmitPacing:
    def test_the_next_page_is_asked_for_only_after_delivery(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/page": _pages})

        def on_next(item: int) -> None:
            host.log.append((scheduler.clock, f"got {item}"))

        done: list[float] = []
        run_plan(partial(_walk, 0), host).subscribe(
            on_next, on_completed=lambda: done.append(scheduler.clock)
        )
        scheduler.start()
        assert host.log == [
            (0.0, "send /page {'from': 0}"),
            (1.0, "got 0"),
            (1.0, "got 1"),
            (1.0, "send /page {'from': 2}"),
            (2.0, "got 2"),
            (2.0, "got 3"),
            (2.0, "send /page {'from': 4}"),
            (3.0, "got 4"),
        ]
        assert done == [3.0]

    def test_a_walk_ends_without_an_extra_item(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/page": _pages})
        result = scheduler.start(lambda: run_plan(partial(_walk, 4), host))
        assert result.messages == [ReactiveTest.on_next(201, 4), ReactiveTest.on_completed(201)]

    def test_a_plain_plan_emits_its_return_value_even_none(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/main": lambda _p: None})
        result = scheduler.start(lambda: run_plan(partial(single, Call(MAIN, {}, _data)), host))
        assert result.messages == [ReactiveTest.on_next(201, None), ReactiveTest.on_completed(201)]


class TestDisposal:
    def test_disposing_mid_walk_cancels_the_page_in_flight_and_closes_the_plan(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/page": _pages})
        closed: list[float] = []

        def walk() -> Plan[None]:
            try:
                yield from _walk(0)
            finally:
                closed.append(scheduler.clock)

        result = scheduler.start(lambda: run_plan(walk, host), disposed=201.5)
        assert result.messages == [ReactiveTest.on_next(201, 0), ReactiveTest.on_next(201, 1)]
        assert host.log == [
            (200.0, "send /page {'from': 0}"),
            (201.0, "send /page {'from': 2}"),
            (201.5, "cancel /page"),
        ]
        assert closed == [201.5]
        scheduler.advance_to(300.0)
        assert len(host.log) == 3  # nothing sent after disposal

    def test_disposing_while_items_are_delivered_stops_the_walk(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/page": _pages})
        result = scheduler.start(lambda: run_plan(partial(_walk, 0), host).pipe(ops.take(1)))
        assert result.messages == [ReactiveTest.on_next(201, 0), ReactiveTest.on_completed(201)]
        assert [what for _t, what in host.log] == ["send /page {'from': 0}"]

    def test_a_subscriber_that_raises_ends_the_walk_without_reaching_the_plan(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/page": _pages})
        caught: list[BaseException] = []

        def walk() -> Plan[None]:
            try:
                yield from _walk(0)
            except BaseException as error:  # GeneratorExit only: the plan is closed
                caught.append(error)
                raise

        def on_next(_item: int) -> None:
            raise RuntimeError("a bug in the subscriber")

        run_plan(walk, host).subscribe(on_next, on_error=lambda _e: None)
        with pytest.raises(RuntimeError, match="bug in the subscriber"):
            scheduler.start()
        assert [type(e) for e in caught] == [GeneratorExit]
        assert [what for _t, what in host.log] == ["send /page {'from': 0}"]

    def test_each_subscription_runs_a_fresh_plan(self) -> None:
        scheduler = TestScheduler()
        host = ScriptedHost(scheduler, {"/main": lambda _p: "ok"})
        source = run_plan(partial(single, Call(MAIN, {"id": 7}, _data)), host)
        got: list[str] = []
        source.subscribe(got.append)
        source.subscribe(got.append)
        scheduler.start()
        assert got == ["ok", "ok"]
        assert [what for _t, what in host.log] == ["send /main {'id': 7}"] * 2


class TestHostSteps:
    def test_rules_clock_budget_and_forgetting_are_answered_by_the_host(self) -> None:
        info = make_symbol_info("BTCUSDT")

        def plan() -> Plan[tuple[Any, ...]]:
            yield Remember({"BTCUSDT": info})
            rules = yield RulesFor("BTCUSDT")
            missing = yield RulesFor("ETHUSDT")
            now = yield Now()
            yield WeightBudget(1200)
            yield ForgetRules("BTCUSDT")
            return rules, missing, now

        scheduler = TestScheduler()
        scheduler.advance_to(2.5)
        host = ScriptedHost(scheduler, {})
        got: list[Any] = []
        run_plan(plan, host).subscribe(got.append)
        assert got == [(info, None, 2500)]
        assert host.budget == [1200] and host.forgotten == ["BTCUSDT"]

    def test_synchronous_answers_do_not_grow_the_stack(self) -> None:
        def many() -> Plan[int]:
            total = 0
            for _ in range(sys.getrecursionlimit() * 3):
                total += (yield Now()) or 1
            return total

        got: list[int] = []
        run_plan(many, ScriptedHost(TestScheduler(), {})).subscribe(got.append)
        assert got == [sys.getrecursionlimit() * 3]

    def test_something_that_is_not_a_step_is_thrown_back_into_the_plan(self) -> None:
        def odd() -> Plan[str]:
            try:
                yield "not a step"  # type: ignore[misc]
            except TypeError as error:
                return f"caught: {error}"
            return "unreachable"

        got: list[str] = []
        run_plan(odd, ScriptedHost(TestScheduler(), {})).subscribe(got.append)
        assert got == ["caught: a REST plan yielded 'not a step', which is not a step"]


class _RecordingClient:
    """Stands in for RestClient: records the priority each request asked for."""

    scheduler = None
    limiter = None
    base_url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.priorities: list[Priority] = []

    def request(self, method: str, path: str, params: Any, **options: Any) -> Observable[Any]:
        self.priorities.append(options["priority"])
        return reactivex.just(RestReply({}, 200, {}, 0.0, 0.0))


class TestUrgency:
    def test_every_urgency_maps_to_the_limiter_priority(self) -> None:
        assert URGENCY_PRIORITY == {
            "user": Priority.USER,
            "recovery": Priority.RECOVERY,
            "backfill": Priority.BACKFILL,
        }

    @pytest.mark.parametrize("urgency", ["user", "recovery", "backfill"])
    def test_a_call_is_sent_at_its_urgencys_priority(self, urgency: str) -> None:
        from rxconnector.exchanges.venue_plans import VenuePlans

        client = _RecordingClient()
        rest = PlannedRest(client, VenuePlans(), None, lambda: 0)  # type: ignore[arg-type]
        got: list[Any] = []
        rest.send(Call(MAIN, {}, _data, urgency=urgency)).subscribe(got.append)
        assert got == [{}]
        assert client.priorities == [URGENCY_PRIORITY[urgency]]

    def test_a_caller_priority_reaches_the_request(self) -> None:
        from rxconnector.config import Config
        from rxconnector.exchanges.binance.spot_plans import BinanceSpotPlans

        client = _RecordingClient()
        rest = PlannedRest(client, BinanceSpotPlans(Config.binance()), None, lambda: 0)  # type: ignore[arg-type]
        rest.depth_snapshot("BTCUSDT", 5, priority=Priority.RECOVERY).subscribe(
            on_error=lambda _e: None
        )
        rest.trades_between("trades", "BTCUSDT", 1, 2, priority=Priority.BACKFILL).subscribe(
            on_error=lambda _e: None
        )
        assert client.priorities == [Priority.RECOVERY, Priority.BACKFILL]
