"""AccountStreams over real sockets against a loopback server (``fake_server.py``) that
checks the login signatures with its own code. Real time, but short: the reconnect
delay is 50 ms and every wait is bounded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from rxconnector.config import ConnectionConfig, Secret
from rxconnector.errors import ExchangeError
from rxconnector.exchanges.binance.user_stream import BinanceUserStream
from rxconnector.exchanges.bybit.private import BybitPrivateStream
from rxconnector.models import Balance, ConnectionEvent, ConnectionState, OrderUpdate
from rxconnector.streams.accounts.account_streams import AccountStreams

from .fake_server import FakePrivateServer
from .helpers import API_KEY, SECRET, ScriptedRest, balance, order
from .test_account_streams import Sink, position_event, report

D = Decimal
FAST = ConnectionConfig(
    reconnect_delay=0.05,
    reconnect_max_delay=0.2,
    reconnect_jitter=0.0,
    healthy_after=1.0,
    stale_after=30.0,
)


@pytest.fixture
async def server() -> AsyncIterator[FakePrivateServer]:
    async with FakePrivateServer() as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Live:
    """AccountStreams on a real socket to the fake server; closed by ``async with``."""

    def __init__(
        self,
        server: FakePrivateServer,
        session: aiohttp.ClientSession,
        venue: str = "binance",
        *,
        secret: str = SECRET,
        rest: ScriptedRest | None = None,
        config: ConnectionConfig = FAST,
    ) -> None:
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []

        def clock() -> int:
            return int(time.time() * 1000)

        protocol: Any
        if venue == "binance":
            protocol = BinanceUserStream(API_KEY, Secret(secret), clock, recv_window=5000)
            url = f"{server.url}/ws-api/v3"
        else:
            protocol = BybitPrivateStream(API_KEY, Secret(secret), clock)
            url = f"{server.url}/v5/private"
        self.streams = AccountStreams(
            protocol,
            url,
            lambda: session,
            config,
            report_error=self.errors.append,
            report_state=self.states.append,
            **(rest.callables() if rest is not None else {}),
        )

    async def __aenter__(self) -> Live:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.streams.close()

    def collect(self, feed: Any) -> Sink:
        sink = Sink()
        feed.subscribe(sink.on_next, sink.on_error, sink.on_completed)
        return sink


class TestBinanceLive:
    """The Binance WS-API user-data subscription end to end."""

    async def test_events_flow_and_subscribers_share_one_subscription(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        async with Live(server, session) as live:
            first, second = live.collect(live.streams.orders()), live.collect(live.streams.orders())
            balances = live.collect(live.streams.balances())
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            await server.push_binance(report(1, "NEW", "NEW"))
            await server.push_binance(position_event(("USDT", "900", "100")))
            await eventually(lambda: bool(first.values and second.values and balances.values))
            assert first.values == second.values and type(first.values[0]) is OrderUpdate
            assert balances.values[0] == Balance(
                "USDT", D(900), D(100), 10, balances.values[0].received_at
            )
            [conn] = server.connections
            assert [r["method"] for r in conn.requests] == ["userDataStream.subscribe.signature"]
            assert conn.requests[0]["params"]["recvWindow"] == 5000
            connected = [s for s in live.states if s.state is ConnectionState.CONNECTED]
            assert len(connected) == 1

    async def test_the_last_dispose_closes_the_socket(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        async with Live(server, session) as live:
            subscription = live.streams.orders().subscribe(lambda _: None)
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            subscription.dispose()
            await server.wait_until(lambda: not server.open_connections)

    async def test_a_rejected_signature_errors_the_feeds(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        async with Live(server, session, secret="not-the-secret") as live:
            orders, balances = (
                live.collect(live.streams.orders()),
                live.collect(live.streams.balances()),
            )
            await eventually(lambda: bool(orders.errors and balances.errors))
            error = orders.errors[0]
            assert isinstance(error, ExchangeError)
            assert (error.code, error.status, error.retryable) == (-1022, 400, False)
            assert "Signature for this request is not valid" in str(error)
            await server.wait_until(lambda: not server.open_connections)
            await asyncio.sleep(0.2)  # several backoff periods: no retry
            assert len(server.connections) == 1

    async def test_a_disconnect_during_a_fill_still_shows_the_fill(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        rest = ScriptedRest()
        async with Live(server, session, rest=rest) as live:
            orders = live.collect(live.streams.orders())
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            await server.push_binance(report(42, "NEW", "NEW", q="2"))
            await eventually(lambda: len(orders.values) == 1)
            rest.open = [order("42", quantity="2")]
            # The socket dies; the order fills while nobody listens.
            await server.drop(server.connections[0])
            rest.open = []
            rest.orders["42"] = order("42", "FILLED", quantity="2", filled="2", average="99.5")
            await eventually(lambda: any(u.reconciled for u in orders.values))
            update = orders.values[-1]
            assert (update.status, update.filled_quantity, update.reconciled) == (
                "FILLED",
                D(2),
                True,
            )
            assert (update.last_fill_quantity, update.last_fill_price) == (D(2), D("99.5"))
            assert len(server.connections) == 2 and not orders.errors
            reconnecting = [s for s in live.states if s.state is ConnectionState.RECONNECTING]
            assert reconnecting and reconnecting[0].delay == pytest.approx(0.05)

    async def test_event_stream_terminated_resubscribes(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        rest = ScriptedRest()
        async with Live(server, session, rest=rest) as live:
            orders = live.collect(live.streams.orders())
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            conn = server.connections[0]
            await server.terminate(conn)
            await server.wait_until(lambda: conn.subscription_id is not None)
            assert len(server.connections) == 1 and len(conn.requests) == 2
            await eventually(lambda: ("open_orders",) in rest.calls)
            await server.push_binance(report(5, "NEW", "NEW"))
            await eventually(lambda: bool(orders.values))
            assert orders.values[-1].order_id == "5"

    async def test_pings_keep_a_quiet_socket_alive(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        # Pings pass the socket's pacer (5 frames / 1.5 s), so the interval stays at its rate.
        config = ConnectionConfig(
            reconnect_delay=0.05,
            reconnect_max_delay=0.2,
            reconnect_jitter=0.0,
            ping_interval=0.3,
            stale_after=0.75,
        )
        async with Live(server, session, config=config) as live:
            live.collect(live.streams.orders())
            await server.wait_until(lambda: bool(server.connections))
            conn = server.connections[0]
            await server.wait_until(lambda: conn.pings >= 4)
            assert len(server.connections) == 1  # 1.2 s without events, never stale
            assert not [s for s in live.states if s.state is ConnectionState.STALE]

    async def test_close_completes_the_feeds_and_closes_the_socket(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        live = Live(server, session)
        orders = live.collect(live.streams.orders())
        await server.wait_until(lambda: len(server.subscribed()) == 1)
        await live.streams.close()
        assert orders.completed and not orders.errors
        await server.wait_until(lambda: not server.open_connections)


class TestBybitLive:
    """The Bybit private stream end to end."""

    async def test_auth_subscribe_events_and_pings(
        self,
        server: FakePrivateServer,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
    ) -> None:
        config = ConnectionConfig(reconnect_jitter=0.0, ping_interval=0.1, stale_after=30.0)
        async with Live(server, session, "bybit", config=config) as live:
            orders, balances = (
                live.collect(live.streams.orders()),
                live.collect(live.streams.balances()),
            )
            positions = live.collect(live.streams.positions())
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            [conn] = server.connections
            assert conn.authed and conn.topics == ["order", "execution", "wallet", "position"]
            await server.push_bybit("order", examples["bybit.v5.ws.private.order"]["data"])
            await server.push_bybit("wallet", examples["bybit.v5.ws.private.wallet"]["data"])
            await server.push_bybit("position", examples["bybit.v5.ws.private.position"]["data"])
            await eventually(lambda: bool(orders.values and balances.values and positions.values))
            assert orders.values[0].status == "FILLED"
            await server.wait_until(lambda: conn.pings >= 2)

    async def test_a_rejected_auth_errors_the_feeds(
        self, server: FakePrivateServer, session: aiohttp.ClientSession
    ) -> None:
        async with Live(server, session, "bybit", secret="wrong") as live:
            orders = live.collect(live.streams.orders())
            await eventually(lambda: bool(orders.errors))
            assert isinstance(orders.errors[0], ExchangeError)
            assert "authentication" in str(orders.errors[0])
            assert not server.connections[0].topics


class TestSecrecy:
    """Across a whole flow, the secret never appears in logs, frames, errors or states."""

    async def test_the_secret_never_appears(
        self,
        server: FakePrivateServer,
        session: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="rxconnector")
        rest = ScriptedRest()
        rest.balances = [balance("USDT", "1")]
        seen: list[Any] = []
        async with Live(server, session, rest=rest) as live:
            orders = live.collect(live.streams.events())
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            await server.push_binance(report(1, "NEW", "NEW"))
            await server.drop(server.connections[0])
            await server.wait_until(lambda: len(server.subscribed()) == 1)
            await server.terminate(server.subscribed()[0])
            await eventually(lambda: rest.calls.count(("balances",)) == 2)
            seen += [*orders.values, *live.errors, *live.states, live.streams]
        async with Live(server, session, "bybit", secret="wrong-secret") as bad:
            sink = bad.collect(bad.streams.orders())
            await eventually(lambda: bool(sink.errors))
            seen += [*sink.errors, *bad.errors, *bad.states, bad.streams]
        texts = [caplog.text, *server.all_frames(), *map(repr, seen), *map(str, seen)]
        assert "private stream subscribed" in caplog.text  # the flow was logged...
        assert not [t for t in texts if SECRET in t or "wrong-secret" in t]  # ...safely
