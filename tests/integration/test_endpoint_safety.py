"""A config aimed at the simulator (or testnet) never talks to production.

Every outgoing HTTP request and WebSocket upgrade of the connector goes through a session
whose resolver refuses every host name (only IP literals connect, and those must be
127.0.0.1) and whose trace records every URL. A connector built from the simulator's
URLs with keys must then reach every endpoint it uses - REST, market streams and the
private stream with its signed login - on the simulator and nowhere else.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.venues import venue_for

KEY = "safety-key"
SECRET = "safety-secret-never-sent-to-production"


class RefusingResolver(AbstractResolver):
    """Resolves nothing: a host name (``ws-api.binance.com``) never gets an address."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        raise OSError(f"test resolver refuses {host!r}: only 127.0.0.1 is allowed")

    async def close(self) -> None:
        return None


class GuardedSession:
    """An aiohttp session that records every URL it is asked for."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.resolver = RefusingResolver()
        trace = aiohttp.TraceConfig()

        async def on_request_start(
            _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestStartParams
        ) -> None:
            self.urls.append(str(params.url))

        trace.on_request_start.append(on_request_start)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=self.resolver), trace_configs=[trace]
        )

    def foreign(self) -> list[str]:
        """URLs (and looked-up names) that were not on 127.0.0.1."""
        hosts = [u for u in self.urls if urlsplit(u).hostname != "127.0.0.1"]
        return hosts + [f"(resolve) {h}" for h in self.resolver.asked]


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, tick_interval=0.02, api_keys={KEY: SECRET}) as s:
        yield s


@pytest.fixture
async def guarded() -> AsyncIterator[GuardedSession]:
    g = GuardedSession()
    yield g
    await g.session.close()


async def until(predicate: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


FAST = {"reconnect_delay": 0.05, "reconnect_max_delay": 0.1, "reconnect_jitter": 0.0}


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_readme_setup_with_keys_stays_on_the_simulator(
    sim: ExchangeSimulator, guarded: GuardedSession, venue: str
) -> None:
    """``Config.<venue>(api_key=…, api_secret=…, rest_url=sim.rest_url, ws_url=sim.ws_url)``
    (only those two URLs) puts REST, market streams and the private stream's signed login
    on the simulator: the account subscription arrives there and no other host is asked."""
    make = rxc.Config.binance if venue == "binance" else rxc.Config.bybit
    config = make(
        api_key=KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        connection=FAST,
    )
    received: list[Any] = []
    failures: list[Exception] = []
    async with rxc.Connector(config, session=guarded.session) as conn:
        subs = [
            conn.orders().subscribe(received.append, failures.append),
            conn.balances().subscribe(received.append, failures.append),
            conn.ticker("BTCUSDT").subscribe(received.append, failures.append),
        ]
        if venue == "binance":
            subscribed = await until(
                lambda: any(k == KEY for _c, _s, k in sim.user_stream_subscriptions())
            )
        else:
            subscribed = await until(
                lambda: any(k == KEY and t for _c, k, t in sim.private_subscriptions())
            )
        await until(lambda: any(isinstance(r, rxc.Ticker) for r in received))
        for sub in subs:
            sub.dispose()
    assert guarded.foreign() == [], "the connector talked to a host nobody configured"
    assert subscribed, "the private stream never logged in on the simulator"
    assert any(isinstance(r, rxc.Ticker) for r in received)
    assert failures == []


async def test_usdm_account_stream_stays_on_the_simulator(
    sim: ExchangeSimulator, guarded: GuardedSession
) -> None:
    """USD-M with keys and only rest_url/ws_url: the listenKey socket is on ``/private``
    of the simulator too."""
    config = rxc.Config.binance_futures(
        api_key=KEY, api_secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url, connection=FAST
    )
    async with rxc.Connector(config, session=guarded.session) as conn:
        sub = conn.orders().subscribe(lambda _u: None)
        opened = await until(lambda: any("/private/ws" in u for u in guarded.urls))
        sub.dispose()
    assert guarded.foreign() == []
    assert opened, guarded.urls


async def test_usdm_routes_and_rest_stay_on_the_simulator(
    sim: ExchangeSimulator, guarded: GuardedSession
) -> None:
    """USD-M: ``/public`` and ``/market`` routes and REST come from the one override."""
    config = rxc.Config.binance_futures(ws_url=sim.ws_url, connection=FAST)
    got: list[Any] = []
    async with rxc.Connector(config, session=guarded.session) as conn:
        subs = [
            conn.book_ticker("BTCUSDT").subscribe(got.append),
            conn.mark_price("BTCUSDT").subscribe(got.append),
        ]
        await conn.server_time()
        await until(lambda: {type(g) for g in got} >= {rxc.BookTicker, rxc.MarkPrice}, within=8.0)
        for sub in subs:
            sub.dispose()
    assert guarded.foreign() == []
    assert {type(g) for g in got} >= {rxc.BookTicker, rxc.MarkPrice}


# ----------------------------------------------------------------- resolution rules

LOCAL = "127.0.0.1:8765"
VENUES: dict[str, Callable[..., rxc.Config]] = {
    "binance": rxc.Config.binance,
    "binance_futures": rxc.Config.binance_futures,
    "bybit-spot": lambda **kw: rxc.Config.bybit("spot", **kw),
    "bybit-linear": lambda **kw: rxc.Config.bybit("linear", **kw),
}


def _endpoints(config: rxc.Config) -> dict[str, str | None]:
    venue = venue_for(config)
    return {
        "rest_url": venue.rest_url,
        "ws_url": venue.ws_url,
        "ws_api_url": venue.ws_api_url,
        "private_ws_url": venue.private_ws_url,
    }


@pytest.mark.parametrize("name", list(VENUES))
@pytest.mark.parametrize(
    "overrides",
    [
        {"rest_url": f"http://{LOCAL}"},
        {"ws_url": f"ws://{LOCAL}"},
        {"rest_url": f"http://{LOCAL}", "ws_url": f"ws://{LOCAL}"},
    ],
    ids=["rest-only", "ws-only", "rest+ws"],
)
def test_one_server_override_carries_to_every_endpoint(
    name: str, overrides: dict[str, str]
) -> None:
    """One server overridden (any of its URLs): every endpoint of the venue is on it."""
    config = VENUES[name](api_key=KEY, api_secret=SECRET, **overrides)
    endpoints = _endpoints(config)
    for field, url in endpoints.items():
        if url is not None:
            assert urlsplit(url).netloc == LOCAL, (field, url)
    assert endpoints["rest_url"] == f"http://{LOCAL}"
    assert endpoints["ws_url"] == f"ws://{LOCAL}"
    private = endpoints["ws_api_url"] if name == "binance" else endpoints["private_ws_url"]
    assert private is not None and private.startswith(f"ws://{LOCAL}/")


def test_derived_paths_are_the_ones_the_simulator_serves() -> None:
    one = {"rest_url": f"http://{LOCAL}", "ws_url": f"ws://{LOCAL}"}
    keys = {"api_key": KEY, "api_secret": SECRET, **one}
    binance = _endpoints(rxc.Config.binance(**keys))
    bybit = _endpoints(rxc.Config.bybit(**keys))
    futures = _endpoints(rxc.Config.binance_futures(**keys))
    assert binance["ws_api_url"] == f"ws://{LOCAL}/ws-api/v3"
    assert bybit["private_ws_url"] == f"ws://{LOCAL}/v5/private"
    assert futures["private_ws_url"] == f"ws://{LOCAL}/private"


def test_https_override_derives_secure_websockets() -> None:
    """``https://`` maps to ``wss://`` (never downgraded to plain ``ws://``)."""
    config = rxc.Config.binance(api_key=KEY, api_secret=SECRET, rest_url="https://gw.example:8443")
    endpoints = _endpoints(config)
    assert endpoints["ws_url"] == "wss://gw.example:8443"
    assert endpoints["ws_api_url"] == "wss://gw.example:8443/ws-api/v3"


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("binance", "ws_api_url"),
        ("bybit-spot", "private_ws_url"),
        ("binance_futures", "private_ws_url"),
    ],
)
def test_split_servers_with_keys_refuse_to_start(name: str, missing: str) -> None:
    """REST and streams on different servers: the private endpoint cannot be derived,
    and production would get the signed login, so the connector refuses to be built,
    naming the field to set."""
    config = VENUES[name](
        api_key=KEY,
        api_secret=SECRET,
        rest_url="http://127.0.0.1:1111",
        ws_url="ws://127.0.0.1:2222",
    )
    with pytest.raises(rxc.ConfigError) as info:
        rxc.Connector(config)
    assert info.value.field == missing
    assert missing in str(info.value)
    assert ", got None" not in str(info.value)
    # Setting it explicitly is enough.
    fixed = VENUES[name](
        api_key=KEY,
        api_secret=SECRET,
        rest_url="http://127.0.0.1:1111",
        ws_url="ws://127.0.0.1:2222",
        **{missing: "ws://127.0.0.1:3333/x"},
    )
    assert _endpoints(fixed)[missing] == "ws://127.0.0.1:3333/x"


def test_split_servers_without_keys_are_fine() -> None:
    """Without keys no private endpoint is used, so nothing needs deriving."""
    config = rxc.Config.binance(rest_url="http://127.0.0.1:1111", ws_url="ws://127.0.0.1:2222")
    endpoints = _endpoints(config)
    assert endpoints["rest_url"] == "http://127.0.0.1:1111"
    assert endpoints["ws_url"] == "ws://127.0.0.1:2222"
    assert endpoints["ws_api_url"] is None


PRODUCTION_HOSTS = {
    "api.binance.com",
    "stream.binance.com",
    "ws-api.binance.com",
    "fapi.binance.com",
    "fstream.binance.com",
    "ws-fapi.binance.com",
    "api.bybit.com",
    "stream.bybit.com",
}


@pytest.mark.parametrize("name", list(VENUES))
def test_testnet_uses_only_testnet_hosts(name: str) -> None:
    """``testnet=True``: every endpoint of the venue is a testnet host."""
    endpoints = _endpoints(VENUES[name](api_key=KEY, api_secret=SECRET, testnet=True))
    assert endpoints["rest_url"] and endpoints["ws_url"]
    for field, url in endpoints.items():
        if url is None:
            continue
        host = urlsplit(url).hostname or ""
        assert host not in PRODUCTION_HOSTS, (field, url)
        assert "testnet" in host or "binancefuture" in host, (field, url)


@pytest.mark.parametrize("name", list(VENUES))
def test_defaults_are_production(name: str) -> None:
    endpoints = _endpoints(VENUES[name](api_key=KEY, api_secret=SECRET))
    for field, url in endpoints.items():
        if url is not None:
            assert urlsplit(url).hostname in PRODUCTION_HOSTS, (field, url)


def test_from_env_overrides_carry_too() -> None:
    """``Config.from_env`` with only a REST URL in the environment: every endpoint on it."""
    env = {
        "RXC_BINANCE_API_KEY": KEY,
        "RXC_BINANCE_API_SECRET": SECRET,
        "RXC_BINANCE_REST_URL": f"http://{LOCAL}",
    }
    endpoints = _endpoints(rxc.Config.from_env("binance", environ=env))
    assert endpoints["ws_url"] == f"ws://{LOCAL}"
    assert endpoints["ws_api_url"] == f"ws://{LOCAL}/ws-api/v3"
