"""SubscriptionHub against a real aiohttp WebSocket server on 127.0.0.1.

Every check that matters is made on the server side (what was subscribed, how many
frames per second arrived, which connections were open), not on the hub's own idea of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

try:
    from _fake_server import FakeBinanceServer, ServerConn
except ImportError:  # tests/streams turned into a package
    from ._fake_server import FakeBinanceServer, ServerConn  # type: ignore[no-redef]
from rxconnector.config import ConnectionConfig
from rxconnector.errors import ParseError, SubscriptionError
from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.streams.messages import StreamRestart

FAST = ConnectionConfig(
    reconnect_delay=0.05,
    reconnect_max_delay=0.2,
    reconnect_jitter=0.0,
    healthy_after=1.0,
    stale_after=30.0,
)


class Harness:
    """A hub on a session plus what it reported."""

    def __init__(self, server: FakeBinanceServer, session: aiohttp.ClientSession, **kw: Any):
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []
        config = kw.pop("config", FAST)
        self.hub = SubscriptionHub(
            BinanceSpotWsProtocol(),
            server.url,
            lambda: session,
            config,
            report_error=self.errors.append,
            report_state=self.states.append,
            **kw,
        )

    def states_of(self, state: ConnectionState) -> list[ConnectionEvent]:
        return [s for s in self.states if s.state is state]


@pytest.fixture
async def server() -> AsyncIterator[FakeBinanceServer]:
    async with FakeBinanceServer() as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def data(messages: list[Any]) -> list[Any]:
    """The payloads of a feed's messages (markers left out)."""
    return [m[1] for m in messages if isinstance(m, tuple)]


async def subscribed(server: FakeBinanceServer, topic: str, count: int = 1) -> ServerConn:
    await server.wait_until(lambda: len(server.subscribers_of(topic)) >= count)
    return server.subscribers_of(topic)[-1]


class TestSharedSubscription:
    """Subscribers of one topic share one exchange subscription, ref-counted."""

    async def test_two_subscribers_one_subscribe_and_last_dispose_unsubscribes(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        got_a: list[Any] = []
        got_b: list[Any] = []
        a = h.hub.feed("btcusdt@trade").subscribe(got_a.append)
        b = h.hub.feed("btcusdt@trade").subscribe(got_b.append)
        conn = await subscribed(server, "btcusdt@trade")
        await server.wait_until(lambda: not h.hub.pending_requests)
        assert conn.requests == [{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}]

        await server.publish("btcusdt@trade", {"t": 1})
        await server.wait_until(lambda: len(got_a) == 1 and len(got_b) == 1)

        a.dispose()
        await asyncio.sleep(0.05)
        assert conn.methods() == ["SUBSCRIBE"]
        assert conn.subscriptions == {"btcusdt@trade"}
        await server.publish("btcusdt@trade", {"t": 2})
        await server.wait_until(lambda: len(got_b) == 2)
        assert data(got_a) == [{"t": 1}]

        b.dispose()
        await server.wait_until(lambda: conn.subscriptions == set())
        assert conn.methods() == ["SUBSCRIBE", "UNSUBSCRIBE"]
        assert conn.requests[1]["params"] == ["btcusdt@trade"]
        assert len(server.connections) == 1
        await h.hub.close()
        assert h.errors == []

    async def test_same_tick_subscriptions_coalesce_into_one_request(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        topics = [f"sym{i}usdt@aggTrade" for i in range(30)]
        subs = [h.hub.feed(t).subscribe(lambda _m: None) for t in topics]
        conn = await subscribed(server, topics[-1])
        assert conn.methods() == ["SUBSCRIBE"]
        assert conn.requests[0]["params"] == topics
        for s in subs:
            s.dispose()
        await h.hub.close()

    async def test_close_completes_feeds_and_closes_sockets(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        completed: list[str] = []
        h.hub.feed("btcusdt@trade").subscribe(on_completed=lambda: completed.append("done"))
        await subscribed(server, "btcusdt@trade")
        await h.hub.close()
        await h.hub.close()  # idempotent
        assert completed == ["done"]
        await server.wait_until(lambda: not server.open_connections)
        assert h.states_of(ConnectionState.CLOSED)
        late: list[str] = []
        h.hub.feed("ethusdt@trade").subscribe(on_completed=lambda: late.append("done"))
        assert late == ["done"]


class TestReconnect:
    """A lost or stalled connection comes back with its topics and a restart marker."""

    async def test_forced_disconnect_resubscribes_and_marks_restart(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        got: list[Any] = []
        errors: list[Exception] = []
        h.hub.feed("btcusdt@trade").subscribe(got.append, errors.append)
        h.hub.feed("ethusdt@trade").subscribe(lambda _m: None)
        first = await subscribed(server, "btcusdt@trade")
        await server.publish("btcusdt@trade", {"t": 1})
        await server.wait_until(lambda: len(got) == 1)

        await server.drop(first)
        second = await subscribed(server, "btcusdt@trade")
        assert second is not first
        assert second.subscriptions == {"btcusdt@trade", "ethusdt@trade"}
        await server.publish("btcusdt@trade", {"t": 2})
        await server.wait_until(lambda: len(got) == 3)

        assert got[0][1] == {"t": 1}
        assert isinstance(got[1], StreamRestart)
        assert got[1].topic == "btcusdt@trade"
        assert "WebSocketClosedError" in got[1].reason
        assert got[2][1] == {"t": 2}
        assert errors == []
        reconnecting = h.states_of(ConnectionState.RECONNECTING)
        assert len(reconnecting) == 1
        assert reconnecting[0].attempt == 1
        assert reconnecting[0].delay == pytest.approx(0.05)
        await h.hub.close()

    async def test_stall_is_detected_as_stale_and_recovers(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        config = ConnectionConfig(
            reconnect_delay=0.05, reconnect_jitter=0.0, healthy_after=1.0, stale_after=0.3
        )
        h = Harness(server, session, config=config)
        got: list[Any] = []
        h.hub.feed("btcusdt@trade").subscribe(got.append)
        first = await subscribed(server, "btcusdt@trade")
        await server.publish("btcusdt@trade", {"t": 1})
        await server.wait_until(lambda: len(got) == 1)

        first.muted = True  # the socket stays open and answers pings; no data flows
        await server.wait_until(
            lambda: first.closed and len(server.subscribers_of("btcusdt@trade")) == 1
        )
        assert server.subscribers_of("btcusdt@trade")[0] is not first
        await server.publish("btcusdt@trade", {"t": 2})
        await server.wait_until(lambda: len(got) == 3)

        stale = h.states_of(ConnectionState.STALE)
        assert len(stale) == 1 and "no data for 0.3 s" in stale[0].reason
        assert isinstance(got[1], StreamRestart) and "StaleConnectionError" in got[1].reason
        assert got[2][1] == {"t": 2}
        await h.hub.close()


class TestRotation:
    """serverShutdown: make-before-break with no loss, no duplicate and no marker."""

    async def test_server_shutdown_rotates_without_loss_or_duplicate(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(
            server,
            session,
            sequence_of=lambda _topic, payload: payload["u"],
            rotation_overlap=5.0,
        )
        got: list[Any] = []
        h.hub.feed("btcusdt@depth@100ms").subscribe(got.append)
        old = await subscribed(server, "btcusdt@depth@100ms")

        stop = asyncio.Event()
        published = 0
        sent_twice = 0  # published while both sockets were subscribed

        async def produce() -> None:
            nonlocal published, sent_twice
            while not stop.is_set():
                published += 1
                if await server.publish("btcusdt@depth@100ms", {"u": published}) == 2:
                    sent_twice += 1
                await asyncio.sleep(0.002)

        producer = asyncio.create_task(produce())
        await server.wait_until(lambda: len(got) >= 20)
        await server.shutdown_notice(old)
        await server.wait_until(lambda: old.closed)  # the client closed it itself
        new = server.subscribers_of("btcusdt@depth@100ms")[-1]
        assert new is not old
        count_at_close = len(got)
        await server.wait_until(lambda: len(got) >= count_at_close + 20)
        stop.set()
        await producer
        await server.wait_until(lambda: len(data(got)) == published)

        assert sent_twice > 0  # the sockets really overlapped
        assert [p["u"] for p in data(got)] == list(range(1, published + 1))
        assert not [m for m in got if isinstance(m, StreamRestart)]
        assert len(h.states_of(ConnectionState.ROTATING)) == 1
        assert h.states_of(ConnectionState.RECONNECTING) == []
        assert [c.role for c in h.hub.connections] == ["primary"]
        assert h.errors == []
        await h.hub.close()


class TestLimits:
    """Sharding and pacing keep every connection within Binance's limits."""

    async def test_2000_topics_shard_over_two_connections_within_5_msgs_per_s(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        topics = [f"s{i:04d}usdt@trade" for i in range(2000)]
        subs = [h.hub.feed(t).subscribe(lambda _m: None) for t in topics]
        await server.wait_until(
            lambda: sum(len(c.subscriptions) for c in server.open_connections) == 2000,
            within=6.0,
        )
        conns = server.open_connections
        assert len(conns) == 2
        assert sorted(len(c.subscriptions) for c in conns) == [976, 1024]
        for conn in conns:
            assert conn.violation is None
            assert conn.max_frames_in(1.0) <= 5
            assert all(len(r["params"]) <= 200 for r in conn.requests)
        assert h.errors == []
        for s in subs:
            s.dispose()
        await h.hub.close()

    async def test_pongs_count_toward_the_limit(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        subs = [h.hub.feed(f"p{i:04d}usdt@trade").subscribe(lambda _m: None) for i in range(1024)]
        await server.wait_until(lambda: bool(server.open_connections))
        conn = server.open_connections[0]
        for n in range(4):  # pings in the middle of the subscribe burst
            await server.ping(conn, b"ping-%d" % n)
        await server.wait_until(lambda: len(conn.subscriptions) == 1024 and len(conn.pongs) == 4)
        assert conn.pongs == [b"ping-0", b"ping-1", b"ping-2", b"ping-3"]
        assert conn.violation is None
        assert conn.max_frames_in(1.0) <= 5
        for s in subs:
            s.dispose()
        await h.hub.close()


class TestFaults:
    """Bad frames, rejected topics and raising subscribers stay contained."""

    async def test_garbage_frames_are_reported_and_delivery_continues(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        got: list[Any] = []
        h.hub.feed("btcusdt@trade").subscribe(got.append)
        conn = await subscribed(server, "btcusdt@trade")
        await server.send_raw(conn, "not json at all")
        await server.send_raw(conn, b"\x00\xff binary junk")
        await server.send_raw(conn, '{"surprise": true}')
        await server.send_raw(conn, "[1, 2, 3]")
        await server.publish("btcusdt@trade", {"t": 1})
        await server.wait_until(lambda: len(got) == 1)
        assert data(got) == [{"t": 1}]
        assert len(h.errors) == 4
        assert all(isinstance(e, ParseError) for e in h.errors)
        assert len(server.connections) == 1
        await h.hub.close()

    async def test_error_response_fails_only_its_feeds(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with FakeBinanceServer(reject={"bad@trade"}) as server:
            h = Harness(server, session)
            early: list[Any] = []
            h.hub.feed("early@trade").subscribe(early.append)
            await subscribed(server, "early@trade")
            good: list[Any] = []
            bad_errors: list[Exception] = []
            h.hub.feed("good@trade").subscribe(good.append)
            h.hub.feed("bad@trade").subscribe(on_error=bad_errors.append)
            await server.wait_until(lambda: bool(bad_errors))
            conn = await subscribed(server, "good@trade")

            assert isinstance(bad_errors[0], SubscriptionError)
            assert bad_errors[0].topic == "bad@trade"
            assert conn.subscriptions == {"early@trade", "good@trade"}
            # the rejected batch was split so the innocent topic went through alone
            assert [r["params"] for r in conn.requests] == [
                ["early@trade"],
                ["good@trade", "bad@trade"],
                ["good@trade"],
                ["bad@trade"],
            ]
            await server.publish("good@trade", {"g": 1})
            await server.publish("early@trade", {"e": 1})
            await server.wait_until(lambda: len(good) == 1 and len(early) == 1)
            assert "bad@trade" not in h.hub.topics
            assert [e for e in h.errors if isinstance(e, SubscriptionError)] == bad_errors
            await h.hub.close()

    async def test_a_raising_subscriber_does_not_disturb_another(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        h = Harness(server, session)
        healthy: list[Any] = []
        told: list[Exception] = []

        def explode(_message: Any) -> None:
            raise ZeroDivisionError("subscriber bug")

        h.hub.feed("btcusdt@trade").subscribe(explode, told.append)
        h.hub.feed("btcusdt@trade").subscribe(healthy.append)
        conn = await subscribed(server, "btcusdt@trade")
        for n in range(3):
            await server.publish("btcusdt@trade", {"t": n})
        await server.wait_until(lambda: len(healthy) == 3)
        assert data(healthy) == [{"t": 0}, {"t": 1}, {"t": 2}]
        assert len(told) == 1 and isinstance(told[0], ZeroDivisionError)
        assert [type(e) for e in h.errors] == [ZeroDivisionError]
        assert conn.subscriptions == {"btcusdt@trade"}
        assert len(server.connections) == 1
        await h.hub.close()
