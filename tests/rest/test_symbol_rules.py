"""SymbolRules in virtual time: one fetch per symbol, shared by concurrent orders,
trusted for the TTL on the given scheduler, tried again after a failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.models import SymbolInfo
from rxconnector.rest.symbol_rules import SymbolRules
from rxconnector.testing import make_symbol_info

BTC = make_symbol_info("BTCUSDT")


class Venue:
    """A fake ``exchange_info([symbol])`` answering after ``latency`` virtual seconds."""

    def __init__(self, scheduler: TestScheduler, latency: float = 0.5) -> None:
        self.scheduler = scheduler
        self.latency = latency
        self.calls: list[tuple[float, str]] = []
        self.fail_next = False
        self.rules: SymbolRules | None = None

    def fetch(self, symbol: str) -> Observable[Mapping[str, SymbolInfo]]:
        self.calls.append((self.scheduler.clock, symbol))
        if self.fail_next:
            self.fail_next = False
            return reactivex.timer(self.latency, scheduler=self.scheduler).pipe(
                ops.flat_map(lambda _: reactivex.throw(OSError("exchangeInfo failed")))
            )
        listed = {BTC.symbol: BTC}
        found = {s: i for s, i in listed.items() if s == symbol}

        def store(_: Any) -> Mapping[str, SymbolInfo]:
            assert self.rules is not None
            self.rules.remember(found)  # what the venue REST objects do
            return found

        return reactivex.timer(self.latency, scheduler=self.scheduler).pipe(ops.map(store))


def _rig(ttl: float = 600.0) -> tuple[TestScheduler, Venue, SymbolRules]:
    scheduler = TestScheduler()
    venue = Venue(scheduler)
    rules = SymbolRules(venue.fetch, ttl=ttl, scheduler=scheduler)
    venue.rules = rules
    return scheduler, venue, rules


def _ask(scheduler: TestScheduler, rules: SymbolRules, at: float, symbol: str) -> list[Any]:
    got: list[Any] = []
    scheduler.schedule_absolute(
        at, lambda *_: rules.rules_for(symbol).subscribe(got.append, got.append)
    )
    return got


class TestSymbolRules:
    def test_concurrent_first_requests_share_one_fetch(self) -> None:
        scheduler, venue, rules = _rig()
        answers = [_ask(scheduler, rules, t, "BTCUSDT") for t in (1.0, 1.1, 1.2, 1.3)]
        scheduler.advance_to(10.0)
        assert venue.calls == [(1.0, "BTCUSDT")]
        assert answers == [[BTC]] * 4

    def test_rules_are_trusted_for_the_ttl_then_fetched_again(self) -> None:
        scheduler, venue, rules = _rig(ttl=600.0)
        first = _ask(scheduler, rules, 1.0, "BTCUSDT")  # fetched, stamped at 1.5
        within = _ask(scheduler, rules, 600.0, "BTCUSDT")
        after = _ask(scheduler, rules, 601.6, "BTCUSDT")
        scheduler.advance_to(700.0)
        assert [t for t, _s in venue.calls] == [1.0, 601.6]
        assert first == within == after == [BTC]

    def test_an_explicit_exchange_info_fills_the_cache(self) -> None:
        scheduler, venue, rules = _rig()
        rules.remember({BTC.symbol: BTC})
        got = _ask(scheduler, rules, 5.0, "BTCUSDT")
        scheduler.advance_to(10.0)
        assert venue.calls == [] and got == [BTC]
        assert rules.infos == {"BTCUSDT": BTC}

    def test_forgotten_rules_are_fetched_again(self) -> None:
        scheduler, venue, rules = _rig()
        rules.remember({BTC.symbol: BTC})
        rules.forget("BTCUSDT")
        assert rules.infos == {"BTCUSDT": BTC}  # still readable
        got = _ask(scheduler, rules, 5.0, "BTCUSDT")
        scheduler.advance_to(10.0)
        assert [t for t, _s in venue.calls] == [5.0] and got == [BTC]

    def test_a_failed_fetch_fails_its_waiters_and_the_next_order_tries_again(self) -> None:
        scheduler, venue, rules = _rig()
        venue.fail_next = True
        failed = [_ask(scheduler, rules, t, "BTCUSDT") for t in (1.0, 1.2)]
        retried = _ask(scheduler, rules, 5.0, "BTCUSDT")
        scheduler.advance_to(10.0)
        assert [t for t, _s in venue.calls] == [1.0, 5.0]
        assert all(len(f) == 1 and isinstance(f[0], OSError) for f in failed)
        assert retried == [BTC]

    def test_a_symbol_the_venue_does_not_list_is_none_and_not_asked_again(self) -> None:
        scheduler, venue, rules = _rig()
        first = _ask(scheduler, rules, 1.0, "NOPEUSDT")
        second = _ask(scheduler, rules, 2.0, "NOPEUSDT")
        scheduler.advance_to(10.0)
        assert first == second == [None]
        assert len(venue.calls) == 1

    def test_ttl_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="ttl"):
            SymbolRules(lambda _s: reactivex.empty(), ttl=0)


async def test_the_connector_runs_the_ttl_on_its_own_scheduler() -> None:
    import rxconnector as rxc

    scheduler = TestScheduler()
    conn = rxc.Connector(
        rxc.Config.binance(rest_url="http://127.0.0.1:9", clock_sync={"enabled": False}),
        scheduler=scheduler,
    )
    await conn.start()
    try:
        assert conn.rest._rules._scheduler is scheduler
    finally:
        await conn.stop()


class TestStaleRulesAfterAnExchangeRejection:
    """The local check passed but Binance refused the order with a filter failure
    (-1013): the cached rules are out of date, so the next order fetches them again."""

    async def test_a_filter_failure_makes_the_next_order_fetch_the_rules(
        self, exchange: Any, session: Any, examples: dict[str, Any]
    ) -> None:
        from rxconnector.errors import ExchangeError

        from .test_binance_rest import _rest

        exchange.json(
            "POST", "/api/v3/order", {"code": -1013, "msg": "Filter failure: PRICE_FILTER"},
            status=400,
        )  # fmt: skip
        exchange.json("GET", "/api/v3/exchangeInfo", examples["binance.spot.rest.exchangeInfo"])
        rest = _rest(exchange, session)  # rules known (all filters off)
        with pytest.raises(ExchangeError) as info:
            await rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "10")
        assert info.value.code == -1013
        assert exchange.requests_to("/api/v3/exchangeInfo") == []
        with pytest.raises(ExchangeError):
            await rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "10")
        assert len(exchange.requests_to("/api/v3/exchangeInfo")) == 1

    async def test_other_errors_keep_the_rules(
        self, exchange: Any, session: Any, examples: dict[str, Any]
    ) -> None:
        from rxconnector.errors import ExchangeError

        from .test_binance_rest import _rest

        exchange.json(
            "POST", "/api/v3/order", {"code": -2010, "msg": "Account has insufficient balance"},
            status=400,
        )  # fmt: skip
        rest = _rest(exchange, session)
        for _ in range(2):
            with pytest.raises(ExchangeError):
                await rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "10")
        assert exchange.requests_to("/api/v3/exchangeInfo") == []
