"""PlannedRest runs any venue's pure plans: a made-up venue ("acme"), written only as a
VenuePlans subclass, a signer and an error dialect (what the add-a-venue checklist asks
for), works end to end through the real pipeline against a scripted server on
127.0.0.1: public calls, signed calls signed when they leave, cursor pages, a fallback
after an error, rules and the weight budget, and calls the venue does not offer."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import aiohttp
import pytest
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.errors import ExchangeError, NotSupportedError
from rxconnector.exchanges.dialect import ErrorDialect
from rxconnector.exchanges.query import encode_query
from rxconnector.exchanges.rest_plan import (
    Call,
    Emit,
    Plan,
    PlanFactory,
    Remember,
    WeightBudget,
    single,
)
from rxconnector.exchanges.rest_spec import Endpoint, RestReply, SignedRequest
from rxconnector.exchanges.venue_plans import VenuePlans
from rxconnector.models import Balance, SymbolInfo
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rest.client import RestClient
from rxconnector.rest.planned import PlannedRest
from rxconnector.testing import make_symbol_info
from rxconnector.transport.http import HttpTransport

from .conftest import FakeExchange, Reply, Seen, StepClock

PING = Endpoint("GET", "/v0/ping", 1)
TIME = Endpoint("GET", "/v0/time", 1)
OLD_TIME = Endpoint("GET", "/v0/clock", 1)
SYMBOLS = Endpoint("GET", "/v0/symbols", 3)
WALLET = Endpoint("GET", "/v0/wallet", 5, signed=True)
#: Acme spells errors {"error": {"id": ..., "text": ...}}.
ACME_ERRORS = ErrorDialect(
    extract=lambda _status, data: (
        (int(data["error"]["id"]), str(data["error"]["text"]))
        if isinstance(data, dict) and "error" in data
        else None
    )
)


class AcmeSigner:
    """Acme signs by putting the timestamp in the query and a header (a toy signature)."""

    def sign(self, endpoint: Endpoint, params: Mapping[str, Any], timestamp: int) -> SignedRequest:
        query = encode_query([*params.items(), ("ts", timestamp)])
        return SignedRequest(query=query, headers={"X-Acme-Sig": f"sig({endpoint.path}?{query})"})

    def key_only(self, endpoint: Endpoint, params: Mapping[str, Any]) -> SignedRequest:
        return SignedRequest(query=encode_query(params), headers={"X-Acme-Key": "k"})


def _data(reply: RestReply) -> Any:
    return reply.data


class AcmePlans(VenuePlans):
    venue = "acme"

    def ping(self) -> PlanFactory[None]:
        return partial(single, Call(PING, {}, lambda _reply: None))

    def server_time(self) -> PlanFactory[int]:
        return self._time

    @staticmethod
    def _time() -> Plan[int]:
        """The new route, or the old one where a gateway does not know it yet."""
        try:
            answer: Any = yield Call(TIME, {}, _data)
        except ExchangeError:
            answer = yield Call(OLD_TIME, {}, _data)
        return int(answer["t"])

    def exchange_info(self, symbols: Any = None) -> PlanFactory[dict[str, SymbolInfo]]:
        return self._symbols

    @staticmethod
    def _symbols() -> Plan[dict[str, SymbolInfo]]:
        """Cursor pages of symbol names, then the rules and the budget."""
        infos: dict[str, SymbolInfo] = {}
        cursor = ""
        while True:
            page: Any = yield Call(SYMBOLS, {"cursor": cursor or None}, _data)
            infos.update(
                {
                    name: make_symbol_info(name, base_asset=name, quote_asset="USD")
                    for name in page["names"]
                }
            )
            cursor = page.get("next") or ""
            if not cursor:
                break
        yield Remember(infos)
        yield WeightBudget(600)
        return infos

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> PlanFactory[None]:
        if not symbol:
            raise ValueError("symbol must not be empty")
        return partial(self._walk, symbol)

    @staticmethod
    def _walk(symbol: str) -> Plan[None]:
        cursor = ""
        while True:
            page: Any = yield Call(SYMBOLS, {"cursor": cursor or None}, _data)
            yield Emit(page["names"])
            cursor = page.get("next") or ""
            if not cursor:
                return None

    def account(self, omit_zero_balances: bool = False) -> PlanFactory[tuple[Balance, ...]]:
        def parse(reply: RestReply) -> tuple[Balance, ...]:
            return tuple(Balance(asset=a, free=v, locked=0) for a, v in reply.data.items())

        return partial(single, Call(WALLET, {"all": True}, parse))


def _pages(seen: Seen) -> Reply:
    cursor = seen.params.get("cursor", "")
    if not cursor:
        return Reply(body={"names": ["AAA", "BBB"], "next": "p2"})
    return Reply(body={"names": ["CCC"]})


@pytest.fixture
def rest(exchange: FakeExchange, session: aiohttp.ClientSession) -> PlannedRest:
    transport = HttpTransport(session, timeout=2.0)
    client = RestClient(
        lambda: transport,
        base_url=exchange.base_url,
        exchange="acme",
        limiter=RequestWeightLimiter(1200, scheduler=TestScheduler()),
        dialect=ACME_ERRORS,
    )
    return PlannedRest(client, AcmePlans(), AcmeSigner(), StepClock(1_000))


class TestAnyVenue:
    async def test_public_calls_and_a_fallback_after_the_venues_error(
        self, rest: PlannedRest, exchange: FakeExchange
    ) -> None:
        exchange.json("GET", "/v0/ping", {})
        exchange.json("GET", "/v0/time", {"error": {"id": 404, "text": "unknown"}}, status=404)
        exchange.json("GET", "/v0/clock", {"t": 42})
        assert await rest.ping() is None
        assert await rest.server_time() == 42
        assert [s.path for s in exchange.seen] == ["/v0/ping", "/v0/time", "/v0/clock"]

    async def test_cursor_pages_rules_and_budget(
        self, rest: PlannedRest, exchange: FakeExchange
    ) -> None:
        exchange.handle_with("GET", "/v0/symbols", _pages)
        infos = await rest.exchange_info()
        assert sorted(infos) == ["AAA", "BBB", "CCC"]
        assert rest.symbol_info("ccc") == infos["CCC"]
        assert rest.request_weight_limit == 600
        assert rest.limiter is not None and rest.limiter.state().limit == 600
        assert [s.query for s in exchange.seen] == ["", "cursor=p2"]

    async def test_a_walk_emits_page_by_page(
        self, rest: PlannedRest, exchange: FakeExchange
    ) -> None:
        exchange.handle_with("GET", "/v0/symbols", _pages)
        names = await rest.klines_history("X", "1m", 0).pipe(ops.to_list())
        assert names == ["AAA", "BBB", "CCC"]

    async def test_signed_calls_are_signed_by_the_venues_signer_when_they_leave(
        self, rest: PlannedRest, exchange: FakeExchange
    ) -> None:
        exchange.json("GET", "/v0/wallet", {"USD": "10"})
        (balance,) = await rest.account()
        assert balance.asset == "USD" and str(balance.free) == "10"
        (seen,) = exchange.seen
        assert seen.params["all"] == "true" and int(seen.params["ts"]) > 1_000
        assert seen.headers["x-acme-sig"] == f"sig(/v0/wallet?{seen.query})"

    def test_arguments_are_checked_and_missing_calls_refused_at_the_call(
        self, rest: PlannedRest
    ) -> None:
        with pytest.raises(ValueError, match="symbol"):
            rest.klines_history("", "1m", 0)
        with pytest.raises(NotSupportedError, match="acme does not support set_leverage"):
            rest.set_leverage("X", 2)
        with pytest.raises(NotSupportedError, match="acme does not support positions"):
            rest.positions()

    def test_what_a_venue_offers_can_be_asked_before_calling(self, rest: PlannedRest) -> None:
        assert rest.offers("server_time") and rest.offers("account")
        assert not rest.offers("trades_after") and not rest.offers("positions")
        assert not rest.offers("no_such_call")
