"""The Connector's declared construction seams (rest_factory, hub_factory, feed_view,
start_offline/stop_offline), the Health streams and the transport's SessionOwner, by
behaviour: what the recorder and the replay build on."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from reactivex import Observable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.connector import Connector
from rxconnector.errors import RxConnectorError
from rxconnector.health import Health
from rxconnector.models import ConnectionEvent, ConnectionState, Ticker, Trade
from rxconnector.seams import TopicHub
from rxconnector.streams.messages import TopicMessage
from rxconnector.transport.session import SessionOwner

T0 = 1_700_000_000_000.0


def _ticker_payload(last: str) -> dict[str, Any]:
    frame = (
        '{"e":"24hrTicker","E":1,"s":"BTCUSDT","p":"1","P":"1","w":"1",'
        f'"x":"1","c":"{last}","Q":"1","b":"1","B":"1","a":"2","A":"1","o":"1","h":"3",'
        '"l":"0.5","v":"10","q":"20","O":0,"C":1,"F":0,"L":1,"n":1}'
    )
    payload: dict[str, Any] = orjson.loads(frame)
    return payload


class _Hub:
    """A stand-in hub: one subject per topic, pushed by the test."""

    def __init__(self) -> None:
        self.topics: dict[str, Subject[TopicMessage]] = {}
        self.resubscribed: list[str] = []
        self.closed = False

    def feed(self, topic: str) -> Observable[TopicMessage]:
        return self.topics.setdefault(topic, Subject())

    def resubscribe(self, topic: str) -> None:
        self.resubscribed.append(topic)

    async def close(self) -> None:
        self.closed = True


class _Rest:
    """A stand-in venue REST object."""

    def server_time(self) -> Observable[int]:
        raise AssertionError("an offline connector asks nobody for the time")


def _offline(**seams: Any) -> Connector:
    conn = Connector(
        Config.binance(clock_sync={"enabled": False}), scheduler=TestScheduler(), **seams
    )
    conn.start_offline()
    return conn


class TestRestFactory:
    def test_the_factory_decides_what_rest_is(self) -> None:
        stand_in = _Rest()
        builders: list[Any] = []

        def factory(build: Any) -> Any:
            builders.append(build)
            return stand_in

        conn = _offline(rest_factory=factory)
        assert conn.rest is stand_in
        assert len(builders) == 1  # once, at start
        conn.start_offline()  # idempotent: not built again
        assert len(builders) == 1

    def test_the_builder_it_receives_builds_the_venue_rest_object(self) -> None:
        built: list[Any] = []
        conn = _offline(rest_factory=lambda build: built.append(build()) or built[0])
        assert conn.rest is built[0]
        assert callable(conn.rest.depth_snapshot)  # the real venue REST object

    def test_rest_calls_before_start_fail_at_subscription(self) -> None:
        conn = Connector(Config.binance(), rest_factory=lambda build: _Rest())
        errors: list[Exception] = []
        conn.ping().subscribe(on_error=errors.append)
        assert isinstance(errors[0], RxConnectorError)
        assert "not started" in str(errors[0])


class TestHubFactory:
    def test_a_feed_is_served_by_the_hub_the_factory_gives(self) -> None:
        hub = _Hub()
        asked: list[str] = []

        def factory(topic: str, live: Any) -> TopicHub:
            asked.append(topic)
            return hub

        conn = _offline(rest_factory=lambda build: _Rest(), hub_factory=factory)
        tickers: list[Ticker] = []
        conn.ticker("btcusdt").subscribe(tickers.append)
        assert asked == ["btcusdt@ticker"]
        hub.topics["btcusdt@ticker"].on_next((T0, _ticker_payload("101.5")))
        assert [str(t.last) for t in tickers] == ["101.5"]
        assert tickers[0].received_at == T0
        # a second subscriber shares the connected feed: the factory is not asked again
        conn.ticker("BTCUSDT").subscribe(lambda _t: None)
        assert asked == ["btcusdt@ticker"]

    def test_the_live_hub_it_receives_refuses_a_connector_without_a_session(self) -> None:
        errors: list[Exception] = []

        def factory(topic: str, live: Any) -> TopicHub:
            hub: TopicHub = live(topic)  # offline: no session, no live hub
            return hub

        conn = _offline(rest_factory=lambda build: _Rest(), hub_factory=factory)
        conn.ticker("BTCUSDT").subscribe(on_error=errors.append)
        assert "not running" in str(errors[0])

    def test_an_unparseable_payload_is_reported_not_fatal(self) -> None:
        hub = _Hub()
        conn = _offline(rest_factory=lambda build: _Rest(), hub_factory=lambda t, live: hub)
        reported: list[Exception] = []
        tickers: list[Ticker] = []
        conn.errors.subscribe(reported.append)
        conn.ticker("BTCUSDT").subscribe(tickers.append)
        hub.topics["btcusdt@ticker"].on_next((T0, {"garbage": True}))
        hub.topics["btcusdt@ticker"].on_next((T0, _ticker_payload("7")))
        assert len(reported) == 1
        assert [str(t.last) for t in tickers] == ["7"]


class TestFeedView:
    def test_every_kind_of_feed_passes_through_it(self) -> None:
        seen: list[Observable[Any]] = []

        def view(feed: Observable[Any]) -> Observable[Any]:
            seen.append(feed)
            return feed

        hub = _Hub()
        conn = _offline(
            rest_factory=lambda build: _Rest(), hub_factory=lambda t, live: hub, feed_view=view
        )
        handed: list[Observable[Any]] = [
            conn.ticker("BTCUSDT"),
            conn.trades("BTCUSDT"),
            conn.order_book("BTCUSDT", 5),
        ]
        assert seen == handed
        # a cached feed is handed out through the view again
        conn.trades("BTCUSDT")
        assert len(seen) == 4

    def test_what_it_returns_is_what_the_user_gets(self) -> None:
        marker: Observable[Trade] = Observable()
        conn = _offline(rest_factory=lambda build: _Rest(), feed_view=lambda feed: marker)
        assert conn.trades("BTCUSDT") is marker


class TestOfflineLifecycle:
    def test_stop_offline_completes_the_health_streams(self) -> None:
        conn = _offline(rest_factory=lambda build: _Rest())
        ended: list[str] = []
        conn.errors.subscribe(on_completed=lambda: ended.append("errors"))
        conn.connection_state.subscribe(on_completed=lambda: ended.append("states"))
        conn.stop_offline()
        conn.stop_offline()  # idempotent
        assert sorted(ended) == ["errors", "states"]
        assert not conn.started
        with pytest.raises(RxConnectorError, match="stopped"):
            conn.start_offline()

    def test_start_offline_with_a_scheduler_needs_no_event_loop_and_sends_nothing(
        self,
    ) -> None:
        asked: list[str] = []

        class Rest:
            def server_time(self) -> Observable[int]:
                asked.append("server_time")
                return Observable()

            def exchange_info(self, *_a: Any) -> Observable[Any]:
                asked.append("exchange_info")
                return Observable()

        scheduler = TestScheduler()
        conn = Connector(Config.binance(), scheduler=scheduler, rest_factory=lambda b: Rest())
        conn.start_offline()  # clock sync enabled in the Config: still nothing is sent
        scheduler.advance_by(3600.0)
        assert conn.started
        assert asked == []


class TestHealth:
    def _event(self, state: ConnectionState, connection: str = "c1") -> ConnectionEvent:
        return ConnectionEvent(state, connection, "wss://x", T0)

    def test_a_new_subscriber_gets_each_connections_latest_state_first(self) -> None:
        health = Health()
        health.on_state(self._event(ConnectionState.CONNECTING))
        health.on_state(self._event(ConnectionState.CONNECTED))
        health.on_state(self._event(ConnectionState.CONNECTED, "c2"))
        health.on_state(self._event(ConnectionState.CLOSED, "c2"))
        got: list[ConnectionEvent] = []
        health.connection_state.subscribe(got.append)
        assert [(e.connection_id, e.state) for e in got] == [("c1", ConnectionState.CONNECTED)]

    def test_reports_after_close_are_dropped(self) -> None:
        health = Health()
        got: list[Exception] = []
        health.errors.subscribe(got.append)
        health.report(ValueError("a"))
        health.close()
        health.report(ValueError("b"))
        assert [str(e) for e in got] == ["a"]

    def test_a_raising_subscriber_does_not_reach_the_reporter(self) -> None:
        health = Health()

        def boom(_error: Exception) -> None:
            raise RuntimeError("subscriber bug")

        health.errors.subscribe(boom)
        health.report(ValueError("x"))  # must not raise here


class TestSessionOwner:
    async def test_an_owned_session_is_created_on_open_and_closed_on_close(self) -> None:
        owner = SessionOwner()
        assert not owner.is_open
        with pytest.raises(RxConnectorError, match="stopped"):
            owner.get()
        owner.open()
        session = owner.get()
        assert owner.is_open and not session.closed
        await owner.close()
        assert session.closed and not owner.is_open
        owner.open()  # a closed owner stays closed
        with pytest.raises(RxConnectorError, match="stopped"):
            owner.get()

    async def test_a_borrowed_session_is_left_open(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as borrowed:
            owner = SessionOwner(borrowed)
            owner.open()
            assert owner.get() is borrowed
            await owner.close()
            assert not borrowed.closed
            with pytest.raises(RxConnectorError):
                owner.get()
