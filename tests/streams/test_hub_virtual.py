"""SubscriptionHub in virtual time: batching, pacing, sharding, answers, reconnects,
rotation and isolation, with a fake transport on a ``TestScheduler`` (1 tick = 1 s).

The fake transport replaces only the socket: the hub runs its real reconnecting source
(backoff, attempt limiter, stale watchdog) and each fake socket paces what it receives
with the real :class:`~rxconnector.rate.pacing.Pacer`, recording the virtual time
of every frame the hub sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rxconnector._scheduling import now_ms
from rxconnector.config import ConnectionConfig
from rxconnector.errors import (
    ExchangeError,
    ParseError,
    RequestTimeoutError,
    SubscriptionError,
    WebSocketClosedError,
)
from rxconnector.exchanges.binance.ws_protocol import (
    BinanceFuturesWsProtocol,
    BinanceSpotWsProtocol,
)
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.rate.pacing import Pacer, RollingWindow
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.streams.messages import StreamRestart
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem

CONFIG = ConnectionConfig(reconnect_delay=1.0, reconnect_jitter=0.0, stale_after=1000.0)


class FakeSocket:
    """One fake socket: records paced frames; the test pushes frames back."""

    def __init__(
        self,
        transport: FakeTransport,
        spec: SocketSpec,
        observer: abc.ObserverBase[WsItem],
    ) -> None:
        self.transport = transport
        self.spec = spec
        self.observer = observer
        self.scheduler = transport.scheduler
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.subscriptions: set[str] = set()
        self.disposed = False
        self.pacer: Pacer[str] = Pacer(
            RollingWindow(spec.max_messages, spec.message_window), self._record, self.scheduler
        )

    # ControlSender
    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        self.pacer.submit(build, urgent=urgent)

    def _record(self, text: str) -> None:
        request = orjson.loads(text)
        self.sent.append((self.scheduler.clock, request))
        if self.transport.auto_answer:
            self.scheduler.schedule_relative(0.01, lambda *_: self.answer(request))

    def answer(self, request: dict[str, Any]) -> None:
        if self.disposed:
            return
        params = request["params"]
        rejected = [p for p in params if p in self.transport.reject]
        if request["method"] == "SUBSCRIBE" and rejected:
            self.push({"code": 2, "msg": f"bad stream {rejected[0]}", "id": request["id"]})
            return
        if request["method"] == "SUBSCRIBE":
            self.subscriptions.update(params)
        else:
            self.subscriptions.difference_update(params)
        self.push({"result": None, "id": request["id"]})

    def push(self, message: Any) -> None:
        raw = message if isinstance(message, bytes | str) else orjson.dumps(message)
        self.observer.on_next((now_ms(self.scheduler), raw))

    def data(self, topic: str, payload: Any) -> None:
        self.push({"stream": topic, "data": payload})

    def fail(self, error: Exception | None = None) -> None:
        self.observer.on_error(error or WebSocketClosedError("closed by the server", 1001))

    def dispose(self) -> None:
        self.disposed = True
        self.pacer.dispose()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [r for _t, r in self.sent]

    def params(self, method: str = "SUBSCRIBE") -> list[list[str]]:
        return [r["params"] for r in self.requests if r["method"] == method]


class FakeTransport:
    """A ``connect`` for the hub: every attempt opens a FakeSocket at once."""

    def __init__(self, scheduler: TestScheduler, *, auto_answer: bool = True) -> None:
        self.scheduler = scheduler
        self.auto_answer = auto_answer
        self.reject: set[str] = set()
        self.sockets: list[FakeSocket] = []
        self.refuse = False

    def __call__(self, spec: SocketSpec, _session: Any, _tasks: OwnedTasks) -> Observable[WsItem]:
        def subscribe(
            observer: abc.ObserverBase[WsItem], _s: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if self.refuse:
                observer.on_error(WebSocketClosedError("refused"))
                return Disposable()
            socket = FakeSocket(self, spec, observer)
            self.sockets.append(socket)
            event = ConnectionEvent(
                ConnectionState.CONNECTED, spec.connection_id, spec.url, now_ms(self.scheduler)
            )
            observer.on_next(Connected(event, socket))
            return Disposable(socket.dispose)

        return Observable(subscribe)

    @property
    def live(self) -> list[FakeSocket]:
        return [s for s in self.sockets if not s.disposed]


class Rig:
    """A hub on a TestScheduler with a fake transport, and everything it reported."""

    def __init__(self, protocol: Any = None, *, config: ConnectionConfig = CONFIG, **kw: Any):
        self.scheduler = TestScheduler()
        self.transport = FakeTransport(self.scheduler, auto_answer=kw.pop("auto_answer", True))
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []
        self.hub = SubscriptionHub(
            protocol or BinanceSpotWsProtocol(),
            "wss://venue.test",
            lambda: None,  # type: ignore[arg-type,return-value]
            config,
            scheduler=self.scheduler,
            report_error=self.errors.append,
            report_state=self.states.append,
            connect=self.transport,
            **kw,
        )

    def run(self, until: float) -> None:
        self.scheduler.advance_to(until)

    def collect(self, topic: str) -> tuple[list[Any], list[Exception], abc.DisposableBase]:
        got: list[Any] = []
        errors: list[Exception] = []
        sub = self.hub.feed(topic).subscribe(got.append, errors.append)
        return got, errors, sub

    def states_of(self, state: ConnectionState) -> list[ConnectionEvent]:
        return [e for e in self.states if e.state is state]


def most_in_window(times: list[float], window: float) -> int:
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


class TestBatching:
    """Requests carry everything pending when the limiter grants the slot."""

    def test_same_tick_subscriptions_share_one_request(self) -> None:
        rig = Rig()
        for topic in ("a@trade", "b@trade", "c@trade"):
            rig.collect(topic)
        rig.run(0.5)
        (socket,) = rig.transport.sockets
        assert socket.requests == [
            {"method": "SUBSCRIBE", "params": ["a@trade", "b@trade", "c@trade"], "id": 1}
        ]
        assert rig.hub.connections[0].acknowledged == {"a@trade", "b@trade", "c@trade"}
        assert rig.hub.pending_requests == ()

    def test_topics_asked_while_waiting_join_the_waiting_request(self) -> None:
        rig = Rig()
        for n in range(1000):
            rig.collect(f"t{n:04d}@trade")
        rig.run(0.5)
        socket = rig.transport.sockets[0]
        assert [len(p) for p in socket.params()] == [200] * 5  # the window is used up
        rig.collect("late1@trade")
        rig.run(0.7)
        rig.collect("late2@trade")
        rig.collect("late3@trade")
        rig.run(5.0)
        assert [t for t, _r in socket.sent] == [0.0] * 5 + [1.5]
        assert socket.params()[-1] == ["late1@trade", "late2@trade", "late3@trade"]

    def test_subscribe_and_dispose_in_one_tick_sends_nothing(self) -> None:
        rig = Rig()
        rig.collect("keep@trade")
        _got, _err, sub = rig.collect("flash@trade")
        sub.dispose()
        rig.run(1.0)
        assert rig.transport.sockets[0].params() == [["keep@trade"]]

    def test_frame_size_bounds_a_request(self) -> None:
        rig = Rig()
        long_topics = [f"{'x' * 90}{n:03d}@trade" for n in range(150)]
        for topic in long_topics:
            rig.collect(topic)
        rig.run(1.0)
        sizes = [len(p) for p in rig.transport.sockets[0].params()]
        assert sum(sizes) == 150 and max(sizes) < 150
        assert all(
            len(orjson.dumps(p)) <= 8_000 + 3 * len(p) for p in rig.transport.sockets[0].params()
        )


class TestPacingAndSharding:
    """At most 5 frames per (1 s + margin) per socket, at most 1024 streams per socket."""

    def test_2000_topics_two_sockets_paced(self) -> None:
        rig = Rig()
        for n in range(2000):
            rig.collect(f"s{n:04d}@trade")
        rig.run(10.0)
        sockets = rig.transport.sockets
        assert len(sockets) == 2
        assert [len(s.subscriptions) for s in sockets] == [1024, 976]
        for socket in sockets:
            times = [t for t, _r in socket.sent]
            assert most_in_window(times, 1.5) <= 5
            assert all(len(p) <= 200 for p in socket.params())
        assert [t for t, _r in sockets[0].sent] == [0.0] * 5 + [1.5]

    def test_futures_topics_go_to_their_routed_endpoint(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol())
        rig.collect("btcusdt@depth@100ms")
        rig.collect("btcusdt@aggTrade")
        rig.collect("btcusdt@bookTicker")
        rig.run(1.0)
        by_url = {s.spec.url: s.params() for s in rig.transport.sockets}
        assert by_url == {
            "wss://venue.test/public/stream": [["btcusdt@depth@100ms", "btcusdt@bookTicker"]],
            "wss://venue.test/market/stream": [["btcusdt@aggTrade"]],
        }
        # USD-M: 10 messages per second per connection
        assert rig.transport.sockets[0].spec.max_messages == 10

    def test_a_hub_restricted_to_one_endpoint_refuses_other_topics(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol(), endpoint="market")
        got, errors, _s = rig.collect("btcusdt@depth")
        rig.collect("btcusdt@aggTrade")
        rig.run(1.0)
        assert got == [] and isinstance(errors[0], ValueError)
        assert [s.spec.url for s in rig.transport.sockets] == ["wss://venue.test/market/stream"]

    def test_futures_shard_at_200_streams(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol())
        for n in range(450):
            rig.collect(f"s{n:03d}usdt@markPrice")
        rig.run(5.0)
        assert [len(s.subscriptions) for s in rig.transport.sockets] == [200, 200, 50]

    def test_a_freed_slot_is_reused_before_opening_a_socket(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol())
        subs = [rig.collect(f"s{n:03d}usdt@markPrice")[2] for n in range(200)]
        rig.run(5.0)
        subs[0].dispose()
        rig.collect("new@markPrice")
        rig.run(10.0)
        (socket,) = rig.transport.sockets
        assert "new@markPrice" in socket.subscriptions
        assert "s000usdt@markPrice" not in socket.subscriptions
        assert len(socket.subscriptions) == 200
        # the unsubscribe went first: the server never saw 201 streams
        assert socket.requests[-2]["method"] == "UNSUBSCRIBE"


class TestRefCounting:
    """The last dispose unsubscribes; an idle connection closes after a while."""

    def test_last_dispose_unsubscribes_then_idle_socket_closes(self) -> None:
        rig = Rig(idle_close_after=10.0)
        _a, _ea, sub_a = rig.collect("x@trade")
        _b, _eb, sub_b = rig.collect("x@trade")
        rig.run(1.0)
        sub_a.dispose()
        rig.run(2.0)
        socket = rig.transport.sockets[0]
        assert socket.params("UNSUBSCRIBE") == []
        sub_b.dispose()
        rig.run(3.0)
        assert socket.params("UNSUBSCRIBE") == [["x@trade"]]
        assert not socket.disposed
        rig.run(14.0)
        assert socket.disposed
        assert rig.states_of(ConnectionState.CLOSED)[-1].reason == "idle: no topics left"
        assert rig.hub.connections == ()

    def test_resubscribing_during_the_linger_reuses_the_socket(self) -> None:
        rig = Rig(idle_close_after=10.0)
        _g, _e, sub = rig.collect("x@trade")
        rig.run(1.0)
        sub.dispose()
        rig.run(5.0)
        rig.collect("y@trade")
        rig.run(30.0)
        assert len(rig.transport.sockets) == 1
        assert rig.transport.sockets[0].subscriptions == {"y@trade"}


class TestAnswers:
    """Each request is matched with its answer; rejections fail only their topics."""

    def test_a_rejected_batch_is_split_until_only_the_culprit_fails(self) -> None:
        rig = Rig()
        rig.transport.reject = {"b@trade"}
        feeds = {t: rig.collect(t) for t in ("a@trade", "b@trade", "c@trade", "d@trade")}
        rig.run(10.0)
        socket = rig.transport.sockets[0]
        assert socket.params() == [
            ["a@trade", "b@trade", "c@trade", "d@trade"],
            ["a@trade", "b@trade"],
            ["c@trade", "d@trade"],
            ["a@trade"],
            ["b@trade"],
        ]
        assert socket.subscriptions == {"a@trade", "c@trade", "d@trade"}
        (bad,) = feeds["b@trade"][1]
        assert isinstance(bad, SubscriptionError) and bad.topic == "b@trade" and bad.code == 2
        assert all(not feeds[t][1] for t in ("a@trade", "c@trade", "d@trade"))
        assert rig.hub.topics == {"a@trade", "c@trade", "d@trade"}
        socket.data("a@trade", {"n": 1})
        assert feeds["a@trade"][0][0][1] == {"n": 1}

    def test_an_unanswered_request_is_reported_after_the_timeout(self) -> None:
        rig = Rig(auto_answer=False, ack_timeout=5.0)
        got, errors, _sub = rig.collect("x@trade")
        rig.run(4.9)
        assert len(rig.hub.pending_requests) == 1
        assert rig.hub.pending_requests[0].method == "SUBSCRIBE"
        rig.run(5.1)
        assert [type(e) for e in rig.errors] == [RequestTimeoutError]
        assert "not answered within 5 s" in str(rig.errors[0])
        assert rig.hub.pending_requests == () and errors == []
        rig.transport.sockets[0].data("x@trade", {"late": True})  # data may still come
        assert got[0][1] == {"late": True}

    def test_an_error_without_id_matches_the_oldest_request(self) -> None:
        rig = Rig(auto_answer=False)
        _got, errors, _sub = rig.collect("x@trade")
        rig.run(0.5)
        rig.transport.sockets[0].push({"code": 2, "msg": "Invalid request"})
        assert isinstance(errors[0], SubscriptionError)
        assert rig.hub.pending_requests == ()

    def test_an_answer_with_a_malformed_id_keeps_the_connection(self) -> None:
        rig = Rig(auto_answer=False)
        rig.collect("x@trade")
        rig.run(0.5)
        socket = rig.transport.sockets[0]
        socket.push({"result": None, "id": [1]})
        socket.push({"code": 2, "msg": "odd", "id": {"n": 1}})
        assert not socket.disposed and len(rig.transport.sockets) == 1
        assert len(rig.hub.pending_requests) == 1
        assert [type(e) for e in rig.errors] == [ExchangeError]

    def test_a_protocol_that_cannot_build_a_request_is_reported(self) -> None:
        class Broken(BinanceSpotWsProtocol):
            def subscribe_message(self, topics: Any, request_id: int) -> str:
                raise ValueError("cannot build")

        rig = Rig(Broken())
        _got, errors, _s = rig.collect("x@trade")
        rig.run(1.0)
        assert [type(e) for e in rig.errors] == [ValueError]
        assert errors == [] and not rig.transport.sockets[0].disposed

    def test_an_error_nobody_asked_for_is_reported(self) -> None:
        rig = Rig()
        rig.collect("x@trade")
        rig.run(0.5)
        rig.transport.sockets[0].push({"code": 3, "msg": "Invalid JSON", "id": 999})
        assert [type(e) for e in rig.errors] == [ExchangeError]
        assert rig.errors[0].code == 3  # type: ignore[attr-defined]


class TestReconnect:
    """After a reconnect every topic is resubscribed and marked once."""

    def test_resubscribes_in_batches_and_marks_each_topic_once(self) -> None:
        rig = Rig()
        feeds = {f"t{n}@trade": rig.collect(f"t{n}@trade") for n in range(300)}
        rig.run(1.0)
        first = rig.transport.sockets[0]
        first.data("t0@trade", {"n": 1})
        first.fail()
        rig.run(1.5)
        assert len(rig.transport.sockets) == 1  # backoff: 1 s
        rig.run(5.0)
        second = rig.transport.sockets[1]
        assert [len(p) for p in second.params()] == [200, 100]
        assert second.subscriptions == set(feeds)
        second.data("t0@trade", {"n": 2})
        second.data("t0@trade", {"n": 3})
        got = feeds["t0@trade"][0]
        assert got[0][1] == {"n": 1}
        assert got[1] == StreamRestart(
            "t0@trade", "reconnected after WebSocketClosedError: closed by the server"
        )
        assert [m[1] for m in got[2:]] == [{"n": 2}, {"n": 3}]
        assert all(not errors for _g, errors, _s in feeds.values())
        (event,) = rig.states_of(ConnectionState.RECONNECTING)
        assert (event.attempt, event.delay) == (1, 1.0)

    def test_a_topic_never_delivered_gets_no_marker_after_its_first_subscribe(self) -> None:
        rig = Rig()
        got, _e, _s = rig.collect("x@trade")
        rig.run(1.0)
        rig.transport.sockets[0].data("x@trade", {"n": 1})
        assert got == [got[0]] and isinstance(got[0], tuple)

    def test_a_stalled_connection_goes_stale_and_comes_back(self) -> None:
        config = ConnectionConfig(reconnect_delay=1.0, reconnect_jitter=0.0, stale_after=20.0)
        rig = Rig(config=config)
        got, _e, _s = rig.collect("x@trade")
        rig.run(1.0)
        first = rig.transport.sockets[0]
        for t in range(2, 10):  # data flows, then stops at t=9
            rig.run(float(t))
            first.data("x@trade", {"t": t})
        rig.run(40.0)
        (stale,) = rig.states_of(ConnectionState.STALE)
        assert 29.0 <= stale.time / 1000.0 <= 34.0
        assert first.disposed and len(rig.transport.sockets) == 2
        rig.transport.sockets[1].data("x@trade", {"t": 99})
        assert isinstance(got[-2], StreamRestart) and "StaleConnectionError" in got[-2].reason
        assert got[-1][1] == {"t": 99}

    def test_acks_and_pongs_do_not_count_as_data(self) -> None:
        config = ConnectionConfig(reconnect_delay=1.0, reconnect_jitter=0.0, stale_after=20.0)
        rig = Rig(config=config)
        rig.collect("x@trade")
        rig.run(1.0)
        for t in range(2, 40):
            rig.run(float(t))
            rig.transport.sockets[-1].push({"result": None, "id": 12345})
        assert rig.states_of(ConnectionState.STALE)

    def test_when_retries_run_out_the_feeds_end_with_the_error(self) -> None:
        config = ConnectionConfig(
            reconnect_delay=1.0, reconnect_jitter=0.0, max_reconnect_attempts=2
        )
        rig = Rig(config=config)
        _got, errors, _sub = rig.collect("x@trade")
        rig.run(1.0)
        rig.transport.refuse = True
        rig.transport.sockets[0].fail()
        rig.run(20.0)
        assert len(errors) == 1 and isinstance(errors[0], WebSocketClosedError)
        assert rig.hub.topics == frozenset() and rig.hub.connections == ()


class TestRotation:
    """Make-before-break: both sockets deliver during the overlap, deduplicated."""

    def test_shutdown_notice_rotates_without_loss_or_duplicate(self) -> None:
        rig = Rig(sequence_of=lambda _t, p: p["u"])
        got, _e, _s = rig.collect("x@depth")
        rig.run(1.0)
        old = rig.transport.sockets[0]
        old.data("x@depth", {"u": 1})
        old.data("x@depth", {"u": 2})
        old.push({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}})
        (rotating,) = rig.states_of(ConnectionState.ROTATING)
        assert rotating.connection_id == old.spec.connection_id
        rig.run(1.005)  # the replacement subscribed, not answered yet
        new = rig.transport.sockets[1]
        assert new.params() == [["x@depth"]]
        old.data("x@depth", {"u": 3})
        new.data("x@depth", {"u": 3})  # duplicate
        new.data("x@depth", {"u": 4})
        old.data("x@depth", {"u": 4})  # duplicate
        old.data("x@depth", {"u": 5})
        assert not old.disposed  # not answered yet: keep both
        rig.run(2.0)  # the answer arrives; the topic was seen on the new socket
        assert old.disposed
        new.data("x@depth", {"u": 5})  # duplicate from the new socket
        new.data("x@depth", {"u": 6})
        assert [m[1]["u"] for m in got] == [1, 2, 3, 4, 5, 6]
        assert rig.states_of(ConnectionState.CLOSED)[-1].reason == "rotated"
        assert [c.role for c in rig.hub.connections] == ["primary"]
        assert rig.hub.connections[0].connection_id == new.spec.connection_id

    def test_a_duplicate_of_the_last_message_before_the_rotation_is_dropped(self) -> None:
        rig = Rig(sequence_of=lambda _t, p: p["u"])
        got, _e, _s = rig.collect("x@depth5")
        rig.run(1.0)
        old = rig.transport.sockets[0]
        old.data("x@depth5", {"u": 7})
        old.push({"e": "serverShutdown", "E": 1})  # the raw form
        rig.run(2.0)
        new = rig.transport.sockets[1]
        new.data("x@depth5", {"u": 7})  # a snapshot stream repeats the current state
        new.data("x@depth5", {"u": 8})
        assert [m[1]["u"] for m in got] == [7, 8]

    def test_without_sequence_the_old_socket_serves_until_the_new_delivers(self) -> None:
        rig = Rig()
        got, _e, _s = rig.collect("x@trade")
        rig.run(1.0)
        old = rig.transport.sockets[0]
        old.push({"e": "serverShutdown"})
        rig.run(1.005)
        new = rig.transport.sockets[1]
        old.data("x@trade", {"n": 1})
        new.data("x@trade", {"n": 2})
        old.data("x@trade", {"n": 2})  # after the new socket delivered: dropped
        rig.run(2.0)
        assert [m[1]["n"] for m in got] == [1, 2]
        assert old.disposed

    def test_silent_topics_end_the_overlap_after_rotation_overlap(self) -> None:
        rig = Rig(rotation_overlap=5.0)
        rig.collect("quiet@trade")
        rig.run(1.0)
        old = rig.transport.sockets[0]
        old.push({"e": "serverShutdown"})
        rig.run(5.0)
        assert not old.disposed
        rig.run(6.5)
        assert old.disposed

    def test_the_connection_lifetime_triggers_a_rotation(self) -> None:
        config = ConnectionConfig(
            reconnect_jitter=0.0, stale_after=1000.0, connection_lifetime=100.0
        )
        rig = Rig(config=config)
        rig.collect("x@trade")
        rig.run(99.0)
        assert rig.states_of(ConnectionState.ROTATING) == []
        rig.run(101.0)
        (rotating,) = rig.states_of(ConnectionState.ROTATING)
        assert "lifetime" in rotating.reason
        assert len(rig.transport.sockets) == 2

    def test_old_socket_dying_mid_rotation_promotes_the_replacement(self) -> None:
        rig = Rig(auto_answer=False)
        got, _e, _s = rig.collect("x@trade")
        rig.run(0.5)
        old = rig.transport.sockets[0]
        old.answer(old.requests[0])
        old.push({"e": "serverShutdown"})
        rig.run(1.0)
        new = rig.transport.sockets[1]
        old.fail()  # before the replacement's subscription was answered
        assert old.disposed
        assert len(rig.transport.sockets) == 2  # the old one is not reconnected
        new.answer(new.requests[0])
        new.data("x@trade", {"n": 1})
        assert isinstance(got[0], StreamRestart) and "ended before" in got[0].reason
        assert got[1][1] == {"n": 1}
        assert [c.connection_id for c in rig.hub.connections] == [new.spec.connection_id]

    def test_topics_added_during_a_rotation_are_carried_over(self) -> None:
        rig = Rig(sequence_of=lambda _t, p: p["u"])
        rig.collect("a@trade")
        rig.run(1.0)
        old = rig.transport.sockets[0]
        old.push({"e": "serverShutdown"})
        got_b, _e, _s = rig.collect("b@trade")
        rig.run(2.0)
        new = rig.transport.sockets[1]
        assert "b@trade" in new.subscriptions and "b@trade" in old.subscriptions
        new.data("a@trade", {"u": 1})
        new.data("b@trade", {"u": 1})
        assert old.disposed
        assert [m[1]["u"] for m in got_b] == [1]


class TestIsolationAndFrames:
    """Observers, bad frames and the recorder hook never disturb the connection."""

    def test_a_failing_pipeline_is_detached_alone(self) -> None:
        rig = Rig()
        healthy, _e, _s = rig.collect("x@trade")
        rig.hub.feed("x@trade").pipe(ops.map(lambda _m: 1 / 0)).subscribe(lambda _v: None)
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        for n in range(3):
            socket.data("x@trade", {"n": n})
        assert [m[1]["n"] for m in healthy] == [0, 1, 2]
        assert [type(e) for e in rig.errors] == [ZeroDivisionError]
        assert not socket.disposed and socket.params("UNSUBSCRIBE") == []

    def test_undecodable_and_unknown_frames_are_reported_with_an_excerpt(self) -> None:
        rig = Rig()
        got, errors, _s = rig.collect("x@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push(b"\xff" * 5000)
        socket.push('{"what": "is this"}')
        socket.data("x@trade", {"n": 1})
        assert [type(e) for e in rig.errors] == [ParseError, ParseError]
        assert all(len(e.excerpt) <= 200 for e in rig.errors)  # type: ignore[attr-defined]
        assert got[0][1] == {"n": 1} and errors == []

    def test_frames_of_unsubscribed_topics_are_ignored(self) -> None:
        rig = Rig()
        rig.collect("x@trade")
        rig.run(1.0)
        rig.transport.sockets[0].data("other@trade", {"n": 1})
        assert rig.errors == []

    def test_the_recorder_hook_sees_every_raw_frame(self) -> None:
        seen: list[tuple[str, float, Any]] = []
        rig = Rig(on_frame=lambda cid, at, raw: seen.append((cid, at, raw)))
        rig.collect("x@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.data("x@trade", {"n": 1})
        assert seen[-1] == (
            socket.spec.connection_id,
            1000.0,
            b'{"stream":"x@trade","data":{"n":1}}',
        )
        assert seen[0][2] == b'{"result":null,"id":1}'

    async def test_close_completes_feeds_and_closes_connections(self) -> None:
        rig = Rig()
        done: list[str] = []
        rig.hub.feed("x@trade").subscribe(on_completed=lambda: done.append("x"))
        rig.hub.feed("y@trade").subscribe(on_completed=lambda: done.append("y"))
        rig.run(1.0)
        await rig.hub.close()
        assert sorted(done) == ["x", "y"]
        assert all(s.disposed for s in rig.transport.sockets)
        assert rig.hub.closed and rig.hub.connections == () and rig.hub.topics == frozenset()
        await rig.hub.close()
        assert len(rig.states_of(ConnectionState.CLOSED)) == 1


@pytest.mark.parametrize("rate, expected", [(5.0, (5, 1.5)), (10.0, (10, 1.5)), (0.5, (1, 2.5))])
def test_pacing_window_from_the_venue_rate(rate: float, expected: tuple[int, float]) -> None:
    """Any messages-per-second figure becomes a strict window with the safety margin."""

    class Slow(BinanceSpotWsProtocol):
        max_messages_per_second = rate

    rig = Rig(Slow())
    rig.collect("x@trade")
    rig.run(0.1)
    spec = rig.transport.sockets[0].spec
    assert (spec.max_messages, spec.message_window) == pytest.approx(expected)


class TestOtherVenues:
    """The hub is venue-agnostic: Bybit's protocol works through the same seam."""

    def test_bybit_batches_by_10_pings_and_routes_topics(self) -> None:
        from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol

        rig = Rig(BybitWsProtocol("spot"), auto_answer=False)
        feeds = {f"publicTrade.S{n}USDT": rig.collect(f"publicTrade.S{n}USDT") for n in range(25)}
        rig.run(0.5)
        socket = rig.transport.sockets[0]
        assert socket.spec.url == "wss://venue.test/v5/public/spot"
        subscribes = [r for r in socket.requests if r.get("op") == "subscribe"]
        assert [len(r["args"]) for r in subscribes] == [10, 10, 5]
        for request in subscribes:
            socket.push(
                {
                    "success": True,
                    "ret_msg": "subscribe",
                    "conn_id": "c1",
                    "req_id": request["req_id"],
                    "op": "subscribe",
                }
            )
        assert rig.hub.pending_requests == ()
        # Bybit wants an application ping every 20 s (sent by the socket's link)
        assert (socket.spec.ping_message, socket.spec.ping_interval) == ('{"op":"ping"}', 20.0)
        socket.push({"success": True, "ret_msg": "pong", "conn_id": "c1", "op": "ping"})
        message = {"topic": "publicTrade.S1USDT", "type": "snapshot", "ts": 1, "data": []}
        socket.push(message)
        assert feeds["publicTrade.S1USDT"][0][0][1] == message
        assert rig.errors == []
