# ruff: noqa: E501  (the CASES table keeps one call per row, for reading down the columns)
"""Malformed REST bodies end in our error tree, for every reply parser of every venue.

Regression test for issue #16: ``null``, an array where an object belongs, an object
where an array belongs, 900-deep JSON, wrong field types, missing fields and hostile
numbers used to surface as plain ``AttributeError``/``TypeError`` (or a
``RecursionError`` while building the error). Each case below takes the documented (or
test-suite) answer of one REST call and serves, through the scripted loopback server and
the real transport, every body the generator makes from it: each field deleted or
replaced by a value of every wrong kind, numbers replaced by NaN/Infinity/1e999999, the
whole body and each top-level field replaced by 900-deep JSON, and wrong top-level
shapes. The call must either succeed (a field it does not read) or fail with a
:class:`ParseError` or :class:`ExchangeError` - never anything else.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from reactivex import Observable
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import ExchangeError, ParseError
from rxconnector.exchanges.bybit.endpoints import bybit_dialect
from rxconnector.rest.client import RestClient
from rxconnector.rest.planned import PlannedRest
from rxconnector.transport.http import HttpTransport

from .conftest import (
    API_KEY,
    SECRET,
    FakeExchange,
    Reply,
    StepClock,
    binance_client,
    binance_futures_rest,
    binance_spot_rest,
    bybit_rest,
    rules_known,
)
from .test_bybit_rest import OPEN_ORDER, SPOT_BTC
from .test_futures_rest import BALANCE, EXCHANGE_INFO, NEW_ORDER_RESPONSE, QUERY_ORDER_RESPONSE

NOW = 1_700_000_000_000
#: Wrong kinds of value for any field.
WRONG = (None, "", "abc", [], {}, True, [["1"]], 1.5, -1)
HOSTILE_NUMBERS = ("NaN", "Infinity", "-Infinity", "sNaN", "1e999999")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_DEEP = "[" * 900 + "1" + "]" * 900
_MARK = "@@deep@@"
#: Thousands of requests in a few seconds: the weight limiter is not under test here.
UNLIMITED = {"enabled": False}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


def _replace(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(body)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return mutated


_DELETE = object()


def malformed_bodies(body: Any) -> Iterator[tuple[str, bytes]]:
    """``(label, raw JSON)`` for every malformed variant of ``body``."""
    for top in (None, [], {}, "text", 42, [body], {"data": body}):
        yield f"body={top!r:.30}", orjson.dumps(top)
    yield "body=900-deep", _DEEP.encode()
    paths = list(_paths(body))
    for path in paths:
        label = "/".join(map(str, path))
        for bad in (_DELETE, *WRONG):
            name = "<deleted>" if bad is _DELETE else repr(bad)
            yield f"{label}={name}", orjson.dumps(_replace(body, path, bad))
        value = _replace(body, path, None)  # locate the original value
        original = body
        for step in path:
            original = original[step]
        if isinstance(original, str) and _NUMBER.match(original):
            for number in HOSTILE_NUMBERS:
                yield f"{label}={number}", orjson.dumps(_replace(body, path, number))
        if len(path) <= 2:
            text = orjson.dumps(_replace(body, path, _MARK)).decode()
            yield f"{label}=900-deep", text.replace(f'"{_MARK}"', _DEEP).encode()
        del value


# ----------------------------------------------------------------------- the venues


def _spot(exchange: FakeExchange, session: aiohttp.ClientSession) -> PlannedRest:
    cfg = Config.binance(
        api_key=API_KEY, api_secret=SECRET, rest_url=exchange.base_url, rate_limit=UNLIMITED
    )
    transport = HttpTransport(session, timeout=2.0)
    client = binance_client(
        lambda: transport, cfg, base_url=exchange.base_url, scheduler=TestScheduler()
    )
    return rules_known(binance_spot_rest(client, cfg, StepClock(NOW)))


def _futures(exchange: FakeExchange, session: aiohttp.ClientSession) -> PlannedRest:
    cfg = Config.binance_futures(
        api_key=API_KEY, api_secret=SECRET, rest_url=exchange.base_url, rate_limit=UNLIMITED
    )
    transport = HttpTransport(session, timeout=2.0)
    client = binance_client(
        lambda: transport, cfg, base_url=exchange.base_url, scheduler=TestScheduler()
    )
    return rules_known(binance_futures_rest(client, cfg, StepClock(NOW)))


def _bybit(exchange: FakeExchange, session: aiohttp.ClientSession) -> PlannedRest:
    cfg = Config.bybit("spot", api_key=API_KEY, api_secret=SECRET, rest_url=exchange.base_url)
    transport = HttpTransport(session, timeout=2.0)
    client = RestClient(
        lambda: transport, base_url=exchange.base_url, exchange="bybit", dialect=bybit_dialect()
    )
    return rules_known(bybit_rest(client, cfg, StepClock(NOW)))


def _bybit_linear(exchange: FakeExchange, session: aiohttp.ClientSession) -> PlannedRest:
    cfg = Config.bybit("linear", api_key=API_KEY, api_secret=SECRET, rest_url=exchange.base_url)
    transport = HttpTransport(session, timeout=2.0)
    client = RestClient(
        lambda: transport, base_url=exchange.base_url, exchange="bybit", dialect=bybit_dialect()
    )
    return bybit_rest(client, cfg, StepClock(NOW))


#: A USD-M position (GET /fapi/v3/positionRisk row; the docs' V3 example's fields).
POSITION_RISK = {
    "symbol": "ADAUSDT",
    "positionSide": "BOTH",
    "positionAmt": "30",
    "entryPrice": "0.385",
    "breakEvenPrice": "0.385077",
    "markPrice": "0.41047590",
    "unRealizedProfit": "0.76427700",
    "liquidationPrice": "0",
    "isolatedMargin": "0",
    "notional": "12.31427700",
    "marginAsset": "USDT",
    "isolatedWallet": "0",
    "initialMargin": "0.61571385",
    "updateTime": 1720736417660,
}


def _ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": NOW}


Call = Callable[[Any], Observable[Any]]
#: (name, venue factory, the call, (METHOD, path) served malformed, body or examples key)
CASES: list[tuple[str, Callable[..., Any], Call, tuple[str, str], Any]] = [
    ("spot ping", _spot, lambda r: r.ping(), ("GET", "/api/v3/ping"), "binance.spot.rest.ping"),
    ("spot time", _spot, lambda r: r.server_time(), ("GET", "/api/v3/time"), "binance.spot.rest.time"),
    ("spot exchangeInfo", _spot, lambda r: r.exchange_info(), ("GET", "/api/v3/exchangeInfo"), "binance.spot.rest.exchangeInfo"),
    ("spot depth", _spot, lambda r: r.depth_snapshot("BNBBTC"), ("GET", "/api/v3/depth"), "binance.spot.rest.depth"),
    ("spot trades", _spot, lambda r: r.recent_trades("BNBBTC"), ("GET", "/api/v3/trades"), "binance.spot.rest.trades"),
    ("spot aggTrades", _spot, lambda r: r.agg_trades("BNBBTC"), ("GET", "/api/v3/aggTrades"), "binance.spot.rest.aggTrades"),
    ("spot klines", _spot, lambda r: r.klines("BNBBTC", "1m"), ("GET", "/api/v3/klines"), "binance.spot.rest.klines"),
    ("spot avgPrice", _spot, lambda r: r.avg_price("BNBBTC"), ("GET", "/api/v3/avgPrice"), "binance.spot.rest.avgPrice"),
    ("spot ticker", _spot, lambda r: r.ticker_24h("BNBBTC"), ("GET", "/api/v3/ticker/24hr"), "binance.spot.rest.ticker24hr.full"),
    ("spot account", _spot, lambda r: r.account(), ("GET", "/api/v3/account"), "binance.spot.rest.account"),
    ("spot order", _spot, lambda r: r.place_order("BTCUSDT", "buy", "LIMIT", "1", "0.1"), ("POST", "/api/v3/order"), "binance.spot.rest.order.full"),
    ("spot test order", _spot, lambda r: r.test_order("BTCUSDT", "buy", "LIMIT", "1", "0.1"), ("POST", "/api/v3/order/test"), "binance.spot.rest.order_test.with_commission"),
    ("spot cancel", _spot, lambda r: r.cancel_order("BTCUSDT", order_id=1), ("DELETE", "/api/v3/order"), "binance.spot.rest.cancel_order"),
    ("spot get order", _spot, lambda r: r.get_order("BTCUSDT", order_id=1), ("GET", "/api/v3/order"), "binance.spot.rest.order.result"),
    ("spot open orders", _spot, lambda r: r.open_orders("BTCUSDT"), ("GET", "/api/v3/openOrders"), ["binance.spot.rest.order.result"]),
    ("usdm time", _futures, lambda r: r.server_time(), ("GET", "/fapi/v1/time"), "binance.usdm.rest.time"),
    ("usdm exchangeInfo", _futures, lambda r: r.exchange_info(), ("GET", "/fapi/v1/exchangeInfo"), EXCHANGE_INFO),
    ("usdm depth", _futures, lambda r: r.depth_snapshot("BTCUSDT"), ("GET", "/fapi/v1/depth"), "binance.usdm.rest.depth"),
    ("usdm trades", _futures, lambda r: r.recent_trades("BTCUSDT"), ("GET", "/fapi/v1/trades"), "binance.spot.rest.trades"),
    ("usdm klines", _futures, lambda r: r.klines("BTCUSDT", "1m"), ("GET", "/fapi/v1/klines"), "binance.spot.rest.klines"),
    ("usdm ticker", _futures, lambda r: r.ticker_24h("BTCUSDT"), ("GET", "/fapi/v1/ticker/24hr"), "binance.spot.rest.ticker24hr.full"),
    ("usdm balance", _futures, lambda r: r.account(), ("GET", "/fapi/v3/balance"), BALANCE),
    ("usdm order", _futures, lambda r: r.place_order("BTCUSDT", "buy", "LIMIT", "1", "10"), ("POST", "/fapi/v1/order"), NEW_ORDER_RESPONSE),
    ("usdm get order", _futures, lambda r: r.get_order("BTCUSDT", order_id=1), ("GET", "/fapi/v1/order"), QUERY_ORDER_RESPONSE),
    ("bybit time", _bybit, lambda r: r.server_time(), ("GET", "/v5/market/time"), "bybit.v5.rest.market.time"),
    ("bybit instruments", _bybit, lambda r: r.exchange_info(), ("GET", "/v5/market/instruments-info"), _ok({"category": "spot", "list": [SPOT_BTC], "nextPageCursor": ""})),
    ("bybit orderbook", _bybit, lambda r: r.depth_snapshot("BTCUSDT", 1), ("GET", "/v5/market/orderbook"), "bybit.v5.rest.market.orderbook"),
    ("bybit trades", _bybit, lambda r: r.recent_trades("BTCUSDT", 1), ("GET", "/v5/market/recent-trade"), "bybit.v5.rest.market.recent_trade"),
    ("bybit kline", _bybit, lambda r: r.klines("BTCUSDT", "1m"), ("GET", "/v5/market/kline"), "bybit.v5.rest.market.kline"),
    ("bybit ticker", _bybit, lambda r: r.ticker_24h("BTCUSDT"), ("GET", "/v5/market/tickers"), "bybit.v5.rest.market.tickers.spot"),
    ("bybit wallet", _bybit, lambda r: r.account(), ("GET", "/v5/account/wallet-balance"), "bybit.v5.ws.private.wallet"),
    ("bybit order", _bybit, lambda r: r.place_order("BTCUSDT", "buy", "LIMIT", "0.1", "15600"), ("POST", "/v5/order/create"), "bybit.v5.rest.order.create.response"),
    ("bybit get order", _bybit, lambda r: r.get_order("ETHUSDT", order_id="x"), ("GET", "/v5/order/realtime"), _ok({"list": [OPEN_ORDER], "nextPageCursor": ""})),
    ("bybit open orders", _bybit, lambda r: r.open_orders("ETHUSDT"), ("GET", "/v5/order/realtime"), _ok({"list": [OPEN_ORDER], "nextPageCursor": ""})),
    ("usdm positions", _futures, lambda r: r.positions(), ("GET", "/fapi/v3/positionRisk"), [POSITION_RISK]),
    ("usdm listenKey", _futures, lambda r: r.create_listen_key(), ("POST", "/fapi/v1/listenKey"), {"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"}),
    ("usdm mark price", _futures, lambda r: r.mark_price_now("BTCUSDT"), ("GET", "/fapi/v1/premiumIndex"), {"symbol": "BTCUSDT", "markPrice": "11793.63104562", "time": NOW}),
    ("bybit positions", _bybit_linear, lambda r: r.positions("BTCUSDT"), ("GET", "/v5/position/list"), _ok({"list": ["bybit.v5.ws.private.position"], "nextPageCursor": "", "category": "linear"})),
]  # fmt: skip


async def _run(observable: Observable[Any]) -> Any:
    return await observable


#: Calls that read (almost) nothing from the body: ping (any answer means "reachable"),
#: test order (the commission object is returned as sent).
ACCEPTS_ANY_BODY = {"spot ping", "spot test order"}


def _body(examples: dict[str, Any], spec: Any) -> Any:
    if isinstance(spec, str):
        if spec == "bybit.v5.ws.private.wallet":
            return _ok({"list": examples[spec]["data"]})
        return examples[spec]
    if isinstance(spec, dict) and spec.get("result", {}).get("list") == [
        "bybit.v5.ws.private.position"
    ]:
        rows = copy.deepcopy(examples["bybit.v5.ws.private.position"]["data"])
        rows[0].update(side="Buy", size="0.5", entryPrice="28000")  # an open one
        return _ok({**spec["result"], "list": rows})
    if isinstance(spec, list) and spec and isinstance(spec[0], str) and spec[0] in examples:
        return [examples[key] for key in spec]
    return spec


@pytest.mark.parametrize(
    ("name", "venue", "call", "route", "spec"), CASES, ids=[c[0] for c in CASES]
)
async def test_every_malformed_body_is_an_error_of_our_tree(
    exchange: FakeExchange,
    session: aiohttp.ClientSession,
    examples: dict[str, Any],
    name: str,
    venue: Callable[..., Any],
    call: Call,
    route: tuple[str, str],
    spec: Any,
) -> None:
    body = _body(examples, spec)
    rest = venue(exchange, session)
    # Orders read the symbol's rules first: serve them (the case's own route wins).
    exchange.json("GET", "/api/v3/exchangeInfo", examples["binance.spot.rest.exchangeInfo"])
    exchange.json("GET", "/fapi/v1/exchangeInfo", EXCHANGE_INFO)
    exchange.json("GET", "/v5/market/instruments-info", _ok({"list": [], "nextPageCursor": ""}))
    # The documented answer works (so the generated failures mean something) ...
    exchange.json(*route, body)
    await call(rest)
    # ... and every malformed one is a result or an error of ours.
    served = refused = 0
    escaped: list[str] = []
    for label, raw in malformed_bodies(body):
        exchange.reply(*route, Reply(raw=raw))
        served += 1
        try:
            await asyncio.wait_for(_run(call(rest)), 5.0)
        except TimeoutError:
            escaped.append(f"{label}: no answer within 5 s")
        except (ParseError, ExchangeError) as exc:
            refused += 1
            assert len(str(exc)) < 2_000, label
        except Exception as exc:  # anything else is the bug this test is about
            escaped.append(f"{label}: {type(exc).__name__}: {exc!s:.80}")
    assert escaped == [], f"{name}: {len(escaped)} of {served} escaped:\n" + "\n".join(escaped[:20])
    if name not in ACCEPTS_ANY_BODY:
        assert refused >= 8  # at least the wrong top-level shapes were refused
