"""Behaviour the per-venue REST clients had before the plans rewrite (issue 11), pinned
where the rewrite lost it: each test fails on the first plans version and passes on the
old clients (where the old code can run the same scenario)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
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
