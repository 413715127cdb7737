"""RestClient.close(): calls in flight end at once, as ConnectorStoppedError (issue #16).

Through the real transport against the scripted loopback server, with a breaker that
would open after one failure: closing must neither count a failure nor open it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from reactivex.testing import TestScheduler

from rxconnector.config import BreakerConfig
from rxconnector.errors import ConnectorStoppedError, OrderStatusUnknownError
from rxconnector.exchanges.binance.endpoints import BINANCE_ERRORS
from rxconnector.models import BreakerState
from rxconnector.operators import CircuitBreaker, breaker
from rxconnector.rest.client import RestClient
from rxconnector.transport.http import HttpTransport

from .conftest import FakeExchange, Reply


def _client(exchange: FakeExchange, session: aiohttp.ClientSession, cb: CircuitBreaker) -> Any:
    transport = HttpTransport(session, timeout=5.0)
    return RestClient(
        lambda: transport,
        base_url=exchange.base_url,
        exchange="binance",
        guard=breaker(cb),
        dialect=BINANCE_ERRORS,
    )


async def _outcome(observable: Any) -> Any:
    try:
        return await observable
    except Exception as exc:
        return exc


async def test_close_ends_reads_and_orders_in_flight_without_touching_the_breaker(
    exchange: FakeExchange, session: aiohttp.ClientSession
) -> None:
    exchange.reply("GET", "/api/v3/time", Reply(body={"serverTime": 1}, delay=2.0))
    exchange.reply("POST", "/api/v3/order", Reply(body={}, delay=2.0))
    cb = CircuitBreaker("rest", BreakerConfig(max_failures=1), scheduler=TestScheduler())
    client = _client(exchange, session, cb)
    read = asyncio.ensure_future(
        _outcome(client.call("GET", "/api/v3/time", weight=1, idempotent=True))
    )
    order = asyncio.ensure_future(
        _outcome(
            client.call(
                "POST", "/api/v3/order", weight=1, idempotent=False, client_order_id="rxc-1"
            )
        )
    )
    await asyncio.sleep(0.3)
    assert len(exchange.seen) == 2 and not read.done() and not order.done()
    client.close()
    got_read, got_order = await asyncio.wait_for(asyncio.gather(read, order), 1.0)
    assert isinstance(got_read, ConnectorStoppedError)
    assert str(got_read) == "GET /api/v3/time: connector stopped"
    # The order may have been placed: say so, with the id to reconcile.
    assert isinstance(got_order, OrderStatusUnknownError)
    assert got_order.client_order_id == "rxc-1" and "connector stopped" in str(got_order)
    assert cb.stats.failures == 0 and cb.stats.state is BreakerState.CLOSED
    # Later calls fail at once, without a request.
    after = await _outcome(client.call("GET", "/api/v3/time", weight=1, idempotent=True))
    assert isinstance(after, ConnectorStoppedError) and len(exchange.seen) == 2
