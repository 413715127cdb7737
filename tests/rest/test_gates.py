"""The engine's gates, driven by declared rules rather than a venue name.

The rules here are made up (status 451, header names ``x-left``/``x-reset``, code 77)
so the tests prove the gates read the rules they are given, in virtual time.
"""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex.scheduler import ImmediateScheduler
from reactivex.testing import TestScheduler

from rxconnector.errors import ConfigError, ExchangeError, RateLimitError
from rxconnector.exchanges.dialect import EndpointLimitRule, IpBanRule, RequestWindow, RestLimits
from rxconnector.exchanges.rest_plan import Call
from rxconnector.exchanges.rest_spec import Endpoint, RestReply
from rxconnector.exchanges.venue_plans import VenuePlans
from rxconnector.log import get_logger
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rate.pacing import RollingWindow
from rxconnector.rest.gates import BanGate, EndpointPacer, RequestGates
from rxconnector.rest.planned import PlannedRest

BAN = IpBanRule(status=451, seconds=30.0, venue_title="Somewhere")
LIMITS = EndpointLimitRule(
    status_header="x-left",
    reset_header="x-reset",
    limit_header="x-limit",
    code=77,
    code_key="code",
    message_key="message",
    retry_seconds=2.0,
    max_wait_seconds=5.0,
)
LOG = get_logger(component="test")


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _reply(data: Any, **headers: str) -> RestReply:
    return RestReply(data=data, status=200, headers=headers, received_at=0.0, elapsed=0.0)


def _error_of(gate: BanGate, exc: Exception) -> Exception:
    caught: list[Exception] = []
    gate.on_error(exc, reactivex.empty()).subscribe(on_error=caught.append)
    return caught[0]


class TestBanGate:
    def test_the_declared_status_starts_a_ban_that_refuses_until_it_ends(self) -> None:
        clock = Clock()
        limiter = RequestWeightLimiter(1200, scheduler=TestScheduler())
        gate = BanGate(BAN, clock, limiter, exchange="somewhere", log=LOG)
        assert gate.refusal() is None
        error = _error_of(gate, ExchangeError("slow down", exchange="somewhere", status=451))
        assert isinstance(error, RateLimitError)
        assert error.banned and error.retry_after == 30.0 and error.status == 451
        clock.now += 10_000
        refusal = gate.refusal()
        assert refusal is not None and refusal.banned
        assert refusal.retry_after == pytest.approx(20.0)
        assert "IP banned by Somewhere (HTTP 451)" in str(refusal)
        clock.now += 20_000
        assert gate.refusal() is None

    def test_other_errors_pass_unchanged(self) -> None:
        gate = BanGate(BAN, Clock(), None, exchange="somewhere", log=LOG)
        other = ExchangeError("forbidden", exchange="somewhere", status=403)
        assert _error_of(gate, other) is other
        assert gate.refusal() is None


class TestEndpointPacer:
    def test_an_exhausted_endpoint_waits_for_its_reset_capped(self) -> None:
        clock = Clock()
        pacer = EndpointPacer(LIMITS, RollingWindow(100, 1.0), clock, exchange="x", log=LOG)
        scheduler = TestScheduler()
        pacer.observe("/a", _reply({"code": 0}, **{"x-left": "0", "x-reset": "1001500"}))
        pacer.observe("/b", _reply({"code": 0}, **{"x-left": "3", "x-reset": "1001500"}))
        assert pacer.wait("/b", scheduler) == 0.0  # budget left: not held
        assert pacer.wait("/a", scheduler) == pytest.approx(1.5)
        pacer.observe("/c", _reply({"code": 0}, **{"x-left": "0", "x-reset": "1900000"}))
        assert pacer.wait("/c", scheduler) == 5.0  # never past max_wait_seconds

    def test_the_declared_code_is_a_rate_limit_error_with_the_reset_time(self) -> None:
        clock = Clock()
        pacer = EndpointPacer(LIMITS, RollingWindow(100, 1.0), clock, exchange="x", log=LOG)
        with pytest.raises(RateLimitError) as caught:
            pacer.observe("/a", _reply({"code": 77, "message": "busy"}, **{"x-reset": "1000250"}))
        assert caught.value.retry_after == pytest.approx(0.25)
        assert caught.value.code == 77 and "busy" in str(caught.value)
        with pytest.raises(RateLimitError) as again:
            pacer.observe("/b", _reply({"code": 77}))
        assert again.value.retry_after == 2.0  # no reset header: the rule's default
        assert pacer.wait("/b", TestScheduler()) == pytest.approx(2.0)

    def test_the_request_window_paces_every_request(self) -> None:
        pacer = EndpointPacer(LIMITS, RollingWindow(2, 1.0), Clock(), exchange="x", log=LOG)
        scheduler = TestScheduler()
        waits = [pacer.wait("/a", scheduler) for _ in range(3)]
        assert waits == [0.0, 0.0, pytest.approx(1.0)]


WINDOW = RequestWindow(limit=2, seconds=1.0)
PACED = RestLimits(endpoint_limits=LIMITS, ip_window=WINDOW)
#: Answers come at once; only the gates' waits take (virtual) time.
IMMEDIATE = ImmediateScheduler()


class Requests:
    """A cold request that counts its subscriptions (each one is a request sent)."""

    def __init__(self, outcome: RestReply | Exception) -> None:
        self.sent = 0
        self._outcome = outcome

    def observable(self) -> reactivex.Observable[RestReply]:
        def send(_scheduler: Any) -> reactivex.Observable[RestReply]:
            self.sent += 1
            if isinstance(self._outcome, Exception):
                return reactivex.throw(self._outcome, scheduler=IMMEDIATE)
            return reactivex.just(self._outcome, scheduler=IMMEDIATE)

        return reactivex.defer(send)


def _outcomes(
    observable: reactivex.Observable[RestReply], scheduler: TestScheduler | None = None
) -> list[Any]:
    seen: list[Any] = []
    observable.subscribe(seen.append, seen.append, scheduler=scheduler)
    return seen


class TestRequestGates:
    def test_no_rules_no_gates(self) -> None:
        gates = RequestGates(RestLimits(), Clock(), None, exchange="x", log=LOG)
        request = Requests(_reply({})).observable()
        assert gates.around("/a", request) is request and gates.window is None

    def test_a_ban_refuses_later_requests_without_sending(self) -> None:
        clock = Clock()
        forbidden = Requests(ExchangeError("slow down", exchange="x", status=451))
        gates = RequestGates(RestLimits(ip_ban=BAN), clock, None, exchange="x", log=LOG)
        (error,) = _outcomes(gates.around("/a", forbidden.observable()))
        assert isinstance(error, RateLimitError) and error.banned and error.retry_after == 30.0
        fine = Requests(_reply({}))
        (refused,) = _outcomes(gates.around("/b", fine.observable()))
        assert isinstance(refused, RateLimitError) and refused.banned and fine.sent == 0
        clock.now += 30_000
        assert len(_outcomes(gates.around("/b", fine.observable()))) == 1
        assert fine.sent == 1

    def test_the_window_paces_requests_in_virtual_time(self) -> None:
        gates = RequestGates(PACED, Clock(), None, exchange="x", log=LOG)
        scheduler = TestScheduler()
        requests = Requests(_reply({"code": 0}))
        results = [_outcomes(gates.around("/a", requests.observable()), scheduler) for _ in "abc"]
        assert requests.sent == 2 and [len(r) for r in results] == [1, 1, 0]
        scheduler.advance_by(0.99)
        assert requests.sent == 2
        scheduler.advance_by(0.01)
        assert requests.sent == 3 and len(results[2]) == 1

    def test_the_budget_broken_code_is_a_rate_limit_error_and_holds_the_endpoint(self) -> None:
        gates = RequestGates(PACED, Clock(), None, exchange="x", log=LOG)
        scheduler = TestScheduler()
        busy = Requests(_reply({"code": 77, "message": "busy"}, **{"x-reset": "1000500"}))
        (error,) = _outcomes(gates.around("/a", busy.observable()), scheduler)
        assert isinstance(error, RateLimitError) and error.retry_after == pytest.approx(0.5)
        fine = Requests(_reply({"code": 0}))
        held = _outcomes(gates.around("/a", fine.observable()), scheduler)
        assert held == [] and fine.sent == 0
        scheduler.advance_by(0.5)
        assert len(held) == 1 and fine.sent == 1

    def test_the_window_is_the_declared_one(self) -> None:
        gates = RequestGates(PACED, Clock(), None, exchange="x", log=LOG)
        assert gates.window is not None
        assert (gates.window.limit, gates.window.window) == (2, 1.0)


class TestRestLimits:
    def test_a_share_of_the_window(self) -> None:
        assert WINDOW.share(1) == RequestWindow(limit=1, seconds=1.0)
        for bad in (0, 3, True, 1.5):
            with pytest.raises(ConfigError, match="ip_requests_per_window"):
                WINDOW.share(bad)  # type: ignore[arg-type]

    def test_endpoint_budgets_and_the_window_come_together(self) -> None:
        with pytest.raises(ValueError, match="together"):
            RestLimits(ip_window=WINDOW)
        with pytest.raises(ValueError, match="together"):
            RestLimits(endpoint_limits=LIMITS)


class _CountingClient:
    """Stands in for RestClient: answers every request with ``outcome``, counting them."""

    scheduler = None
    limiter = None
    base_url = "http://127.0.0.1:1"

    def __init__(self, outcome: RestReply | Exception) -> None:
        self._requests = Requests(outcome)

    @property
    def sent(self) -> int:
        return self._requests.sent

    def request(self, method: str, path: str, params: Any, **options: Any) -> Any:
        return self._requests.observable()


class _BanningPlans(VenuePlans):
    """A made-up venue that declares an IP ban rule and nothing else."""

    venue = "somewhere"

    @property
    def limits(self) -> RestLimits:
        return RestLimits(ip_ban=BAN)


class TestPlannedRestAppliesTheVenuesGates:
    """The generic client puts the gates its plans declare around every request."""

    def test_a_declared_ban_refuses_the_next_call_without_sending(self) -> None:
        client = _CountingClient(ExchangeError("slow down", exchange="somewhere", status=451))
        rest = PlannedRest(client, _BanningPlans(), None, Clock())  # type: ignore[arg-type]
        call = Call(Endpoint("GET", "/a", 1), {}, lambda reply: reply.data)
        (banned,) = _outcomes(rest.send(call))
        (refused,) = _outcomes(rest.send(call))
        assert isinstance(banned, RateLimitError) and banned.banned
        assert isinstance(refused, RateLimitError) and refused.banned
        assert client.sent == 1

    def test_a_venue_without_limits_is_not_gated(self) -> None:
        client = _CountingClient(ExchangeError("slow down", exchange="somewhere", status=451))
        rest = PlannedRest(client, VenuePlans(), None, Clock())  # type: ignore[arg-type]
        call = Call(Endpoint("GET", "/a", 1), {}, lambda reply: reply.data)
        errors = _outcomes(rest.send(call)) + _outcomes(rest.send(call))
        assert [type(e) for e in errors] == [ExchangeError, ExchangeError]
        assert client.sent == 2 and VenuePlans().limits == RestLimits()
