"""Behaviour the per-venue REST clients had before the plans rewrite (issue 11), pinned
where the rewrite lost it: each test fails on the first plans version and passes on the
old clients (where the old code can run the same scenario)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import ParseError
from rxconnector.rest.planned import PlannedRest
from rxconnector.transport.http import HttpTransport

from .conftest import API_KEY, SECRET, FakeExchange, StepClock, binance_client, binance_spot_rest

NOW = 1_700_000_000_000


def _spot(exchange: FakeExchange, session: aiohttp.ClientSession) -> PlannedRest:
    cfg = Config.binance(rest_url=exchange.base_url, api_key=API_KEY, api_secret=SECRET)
    transport = HttpTransport(session, timeout=2.0)
    client = binance_client(
        lambda: transport, cfg, base_url=exchange.base_url, scheduler=TestScheduler()
    )
    rest: PlannedRest = binance_spot_rest(client, cfg, StepClock(NOW))
    return rest


class TestMalformedWeightBudget:
    @pytest.mark.parametrize("limit", [0, -6000])
    async def test_a_nonsense_request_weight_limit_is_a_parse_error(
        self,
        exchange: FakeExchange,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        limit: int,
    ) -> None:
        """exchangeInfo announcing a REQUEST_WEIGHT limit below 1 is a malformed answer
        (ParseError naming the route), not the user's ConfigError about
        ``rate_limit.max_weight_per_minute``; the limiter keeps its budget."""
        body = dict(examples["binance.spot.rest.exchangeInfo"])
        body["rateLimits"] = [dict(examples["binance.spot.rateLimit.REQUEST_WEIGHT"], limit=limit)]
        exchange.json("GET", "/api/v3/exchangeInfo", body)
        rest = _spot(exchange, session)
        assert rest.limiter is not None
        before = rest.limiter.limit
        with pytest.raises(ParseError, match="exchangeInfo"):
            await rest.exchange_info()
        assert rest.limiter.limit == before


class TestSignedWhenTheRequestLeaves:
    """Through the plans path (PlannedRest → _Signing → the venue's signer), the
    ``timestamp`` is the synced clock read when the request leaves the limiter, not
    when the call was made or subscribed (a pin: the old clients did the same)."""

    async def test_binance_timestamp_after_the_weight_wait(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        cfg = Config.binance(
            rest_url=exchange.base_url,
            api_key=API_KEY,
            api_secret=SECRET,
            rate_limit={"max_weight_per_minute": 20},
        )
        transport = HttpTransport(session, timeout=2.0)
        client = binance_client(
            lambda: transport, cfg, base_url=exchange.base_url, scheduler=scheduler
        )
        rest: PlannedRest = binance_spot_rest(
            client, cfg, lambda: NOW + int(scheduler.clock * 1000)
        )
        exchange.json("GET", "/api/v3/account", {"balances": []})
        await rest.account()  # weight 20: the minute's budget is spent
        second = rest.account()  # made (and subscribed) at t=0 ...
        waiting = asyncio.ensure_future(second.pipe(ops.last()))
        await asyncio.sleep(0.05)
        assert len(exchange.seen) == 1 and not waiting.done()
        scheduler.advance_to(61.0)  # ... leaves when the window frees
        await asyncio.wait_for(waiting, 2)
        stamps = [int(seen.params["timestamp"]) for seen in exchange.seen]
        assert stamps[0] == NOW and stamps[1] >= NOW + 60_000
