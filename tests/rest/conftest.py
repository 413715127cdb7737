"""A scripted HTTP server on 127.0.0.1 standing in for the exchange, plus a session.

(aioresponses 0.7.9 cannot build responses for aiohttp 3.14 - ``ClientResponse`` gained
a required ``stream_writer`` argument - so REST tests talk to a real loopback server,
which also exercises the real transport.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


@attrs.frozen
class Seen:
    """One request as the server received it (raw query string, lower-case headers)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str

    @property
    def params(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.query, keep_blank_values=True))


@attrs.define
class Reply:
    """What the server answers: JSON ``body`` (or ``raw`` bytes), status, headers, delay."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    raw: bytes | None = None
    delay: float = 0.0
    drop_connection: bool = False


Handler = Callable[[Seen], Reply]


class FakeExchange:
    """Routes ``(METHOD, path)`` to a queue of replies (the last one repeats) or a handler."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply] | Handler] = {}
        self.seen: list[Seen] = []
        self.base_url = ""

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def json(self, method: str, path: str, body: Any, **kwargs: Any) -> None:
        self.reply(method, path, Reply(body=body, **kwargs))

    def handle_with(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(
            method=request.method,
            path=request.path,
            query=request.rel_url.raw_query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=(await request.read()).decode(),
        )
        self.seen.append(seen)
        route = self.routes.get((request.method, request.path))
        if route is None:
            return web.json_response({"code": -1, "msg": "no such route in test"}, status=404)
        if callable(route):
            reply = route(seen)
        else:
            reply = route.pop(0) if len(route) > 1 else route[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop_connection:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        body = reply.raw if reply.raw is not None else orjson.dumps(reply.body)
        headers = {"Content-Type": "application/json", **reply.headers}
        return web.Response(body=body, status=reply.status, headers=headers)


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    fake = FakeExchange()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


# -- building the pipeline under test ------------------------------------------------------

API_KEY = "test-api-key-0001"
#: Must never appear in any log line, exception message or repr.
SECRET = "S3CRET-hmac-value-that-must-never-leak"


class StepClock:
    """A synced-clock stand-in: every read moves 1 ms forward (so retries re-stamp)."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        self.now += 1
        return self.now


#: Symbols the REST tests place orders on.
ORDER_SYMBOLS = ("BTCUSDT", "BLZUSDT", "ETHUSDT", "ETHBTC")


def rules_known(rest: Any, symbols: tuple[str, ...] = ORDER_SYMBOLS) -> Any:
    """Seed ``rest``'s rules cache with rules that pass every order (all filters off), as
    if ``exchange_info`` had just been fetched: for tests about the order request itself,
    whose scripted server answers no rules request. The fetch-before-the-first-order path
    is tested in tests/rest/test_symbol_rules.py and tests/integration/test_order_filters.py.
    """
    from rxconnector.testing import make_symbol_info

    rest._rules.remember(
        {
            s: make_symbol_info(s, tick_size=None, step_size=None, min_qty=None, min_notional=None)
            for s in symbols
        }
    )
    return rest


def binance_client(
    transport_factory: Callable[[], Any], config: Any, *, base_url: str, **options: Any
) -> Any:
    """A RestClient wired the Binance way (its error dialect, a weight limiter at Spot's
    documented budget capped by the Config): what the connector builds."""
    from rxconnector.exchanges.binance.endpoints import BINANCE_ERRORS, WEIGHT_PER_MINUTE
    from rxconnector.rest.planned import limited_client

    return limited_client(
        transport_factory,
        config,
        base_url=base_url,
        dialect=BINANCE_ERRORS,
        weight_per_minute=options.pop("weight_per_minute", WEIGHT_PER_MINUTE),
        **options,
    )


def binance_spot_rest(client: Any, config: Any, clock: Any, **plan_options: Any) -> Any:
    """Binance Spot's REST API as the connector builds it: its plans on the generic client."""
    from rxconnector.exchanges.binance.signing import rest_signer
    from rxconnector.exchanges.binance.spot_plans import BinanceSpotPlans
    from rxconnector.rest.planned import PlannedRest

    return PlannedRest(client, BinanceSpotPlans(config, **plan_options), rest_signer(config), clock)


def binance_futures_rest(client: Any, config: Any, clock: Any, **plan_options: Any) -> Any:
    """Binance USD-M's REST API as the connector builds it: its plans on the generic client."""
    from rxconnector.exchanges.binance.futures_plans import BinanceFuturesPlans
    from rxconnector.exchanges.binance.signing import rest_signer
    from rxconnector.rest.planned import PlannedRest

    return PlannedRest(
        client, BinanceFuturesPlans(config, **plan_options), rest_signer(config), clock
    )


def bybit_rest(client: Any, config: Any, clock: Any, **plan_options: Any) -> Any:
    """Bybit's REST API as the connector builds it: its plans on the generic client
    (``plan_options``: ``client_order_id_factory``, ``ip_requests_per_window``)."""
    from rxconnector.exchanges.bybit.rest_requests import rest_signer
    from rxconnector.exchanges.bybit.trade_plans import BybitPlans
    from rxconnector.rest.planned import PlannedRest

    return PlannedRest(client, BybitPlans(config, **plan_options), rest_signer(config), clock)
