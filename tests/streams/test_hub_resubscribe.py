"""SubscriptionHub.resubscribe: one topic taken off and subscribed again for a fresh snapshot.

In virtual time against a fake Bybit transport (each fake socket paces what it receives
with the real :class:`~rxconnector.rate.pacing.Pacer`, answers like Bybit Spot and
sends an order-book snapshot after each subscription), and end to end against the
simulator's Bybit dialect over real sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rxconnector._scheduling import now_ms
from rxconnector.config import ConnectionConfig
from rxconnector.errors import (
    FeedGapError,
    RequestTimeoutError,
    SubscriptionError,
    WebSocketClosedError,
)
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.exchanges.bybit.book_sync import SEQUENCED_AFTER
from rxconnector.exchanges.bybit.parsers import parse_depth
from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol
from rxconnector.models import ConnectionEvent, ConnectionState, Level, OrderBook
from rxconnector.rate.pacing import Pacer, RollingWindow
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.streams.messages import StreamRestart, TopicMessage
from rxconnector.streams.orderbook import maintain_order_book
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem

CONFIG = ConnectionConfig(reconnect_delay=1.0, reconnect_jitter=0.0, stale_after=1000.0)
BOOK = "orderbook.50.BTCUSDT"


class BybitSocket:
    """One fake Bybit socket: paced like the hub's real link, answers like Bybit Spot."""

    def __init__(
        self, transport: BybitTransport, spec: SocketSpec, observer: abc.ObserverBase[WsItem]
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

    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        self.pacer.submit(build, urgent=urgent)

    def _record(self, text: str) -> None:
        request = orjson.loads(text)
        self.sent.append((self.scheduler.clock, request))
        if request.get("op") in ("subscribe", "unsubscribe") and self.transport.auto_answer:
            self.scheduler.schedule_relative(0.01, lambda *_: self.answer(request))

    def answer(self, request: dict[str, Any], success: bool = True) -> None:
        if self.disposed:
            return
        op, args = request["op"], request["args"]
        if op in self.transport.refuse_ops:
            success = False
        if success and op == "subscribe":
            self.subscriptions.update(args)
        elif success:
            self.subscriptions.difference_update(args)
        message = "" if success else f"cannot {op}"
        self.push(
            {"success": success, "ret_msg": message, "conn_id": "c", "req_id": request["req_id"],
             "op": op}
        )  # fmt: skip
        if success and op == "subscribe":
            for topic in args:  # Bybit: an order-book subscription starts with a snapshot
                self.push(self.transport.snapshot(topic))

    def push(self, message: Any) -> None:
        self.observer.on_next((now_ms(self.scheduler), orjson.dumps(message)))

    def fail(self) -> None:
        self.observer.on_error(WebSocketClosedError("closed by the server", 1006))

    def dispose(self) -> None:
        self.disposed = True
        self.pacer.dispose()

    def ops(self) -> list[tuple[str, list[str]]]:
        return [(r["op"], r["args"]) for _t, r in self.sent if r.get("op") != "ping"]


class BybitTransport:
    """A ``connect`` for the hub, plus the venue's per-topic ``u`` counters."""

    def __init__(self, scheduler: TestScheduler, *, auto_answer: bool = True) -> None:
        self.scheduler = scheduler
        self.auto_answer = auto_answer
        self.refuse_ops: set[str] = set()
        self.sockets: list[BybitSocket] = []
        self.u: dict[str, int] = {}
        #: the venue's book per topic: price -> size, bids and asks
        self.books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}

    def __call__(self, spec: SocketSpec, _session: Any, _tasks: OwnedTasks) -> Observable[WsItem]:
        def subscribe(
            observer: abc.ObserverBase[WsItem], _s: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            socket = BybitSocket(self, spec, observer)
            self.sockets.append(socket)
            event = ConnectionEvent(
                ConnectionState.CONNECTED, spec.connection_id, spec.url, now_ms(self.scheduler)
            )
            observer.on_next(Connected(event, socket))
            return Disposable(socket.dispose)

        return Observable(subscribe)

    def snapshot(self, topic: str) -> dict[str, Any]:
        u = self.u.setdefault(topic, 100)
        bids, asks = self.books.setdefault(topic, ({}, {}))
        return self._message(topic, "snapshot", u, list(bids.items()), list(asks.items()))

    def delta(
        self,
        topic: str,
        bids: Sequence[tuple[str, str]] = (),
        asks: Sequence[tuple[str, str]] = (),
        *,
        lost: bool = False,
    ) -> None:
        """The venue's next delta of ``topic`` (``u`` + 1) to every socket carrying it
        (to none when ``lost``)."""
        u = self.u[topic] = self.u.setdefault(topic, 100) + 1
        book = self.books.setdefault(topic, ({}, {}))
        for side, levels in zip(book, (bids, asks), strict=True):
            for price, size in levels:
                if size == "0":
                    side.pop(price, None)
                else:
                    side[price] = size
        if lost:
            return
        message = self._message(topic, "delta", u, list(bids), list(asks))
        for socket in self.sockets:
            if not socket.disposed and topic in socket.subscriptions:
                socket.push(message)

    @staticmethod
    def _message(topic: str, kind: str, u: int, bids: Any, asks: Any) -> dict[str, Any]:
        data = {"s": topic.rsplit(".", 1)[-1], "b": bids, "a": asks, "u": u, "seq": u}
        return {"topic": topic, "type": kind, "ts": u, "data": data}


class Rig:
    """A Bybit Spot hub on a TestScheduler with the fake transport (1 tick = 1 s)."""

    def __init__(self, *, config: ConnectionConfig = CONFIG, **kw: Any) -> None:
        self.scheduler = TestScheduler()
        self.transport = BybitTransport(self.scheduler, auto_answer=kw.pop("auto_answer", True))
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []
        self.hub = SubscriptionHub(
            BybitWsProtocol("spot"),
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

    @property
    def socket(self) -> BybitSocket:
        return self.transport.sockets[-1]


def kinds(got: list[Any]) -> list[str]:
    """``R`` for a restart marker, else the message's type and ``u``: ``snapshot@100``."""
    return [
        "R" if isinstance(m, StreamRestart) else f"{m[1]['type']}@{m[1]['data']['u']}" for m in got
    ]


def most_in_window(times: list[float], window: float) -> int:
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


class TestResubscribe:
    """UNSUBSCRIBE then SUBSCRIBE on the topic's socket; observers keep receiving."""

    def test_unsubscribe_then_subscribe_brings_a_fresh_snapshot_after_a_marker(self) -> None:
        rig = Rig()
        first, errors_a, _a = rig.collect(BOOK)
        second, errors_b, _b = rig.collect(BOOK)
        rig.run(1.0)
        rig.transport.delta(BOOK)
        rig.transport.delta(BOOK)
        rig.hub.resubscribe(BOOK)
        rig.transport.delta(BOOK)  # still sent by the venue before it unsubscribes
        rig.run(5.0)
        rig.transport.delta(BOOK)
        assert rig.socket.ops() == [
            ("subscribe", [BOOK]),
            ("unsubscribe", [BOOK]),
            ("subscribe", [BOOK]),
        ]
        expected = [
            "snapshot@100", "delta@101", "delta@102", "delta@103", "R", "snapshot@103",
            "delta@104",
        ]  # fmt: skip
        assert kinds(first) == kinds(second) == expected
        marker = first[4]
        assert marker.topic == BOOK and marker.reason.startswith("resubscribed on bybit#")
        assert errors_a == errors_b == [] and rig.errors == []
        assert len(rig.transport.sockets) == 1 and rig.hub.pending_requests == ()
        assert rig.hub.connections[0].acknowledged == {BOOK}

    def test_repeated_calls_coalesce_into_one_renewal(self) -> None:
        rig = Rig(auto_answer=False)
        rig.collect(BOOK)
        rig.hub.resubscribe(BOOK)  # its first SUBSCRIBE is not even sent: nothing to do
        rig.run(0.5)
        socket = rig.socket
        rig.hub.resubscribe(BOOK)  # SUBSCRIBE sent, not answered: the snapshot is coming
        rig.run(1.0)
        assert socket.ops() == [("subscribe", [BOOK])]
        socket.answer(socket.sent[0][1])
        for _ in range(3):  # the same tick: one renewal
            rig.hub.resubscribe(BOOK)
        rig.hub.resubscribe(BOOK)  # the renewal is pending
        rig.run(1.5)
        rig.hub.resubscribe(BOOK)  # UNSUBSCRIBE and SUBSCRIBE sent, not answered
        rig.run(2.0)
        socket.answer(socket.sent[1][1])
        rig.hub.resubscribe(BOOK)  # the SUBSCRIBE (and its snapshot) still to come
        rig.run(3.0)
        assert socket.ops() == [
            ("subscribe", [BOOK]),
            ("unsubscribe", [BOOK]),
            ("subscribe", [BOOK]),
        ]

    def test_renewals_are_batched_and_paced(self) -> None:
        rig = Rig()
        topics = [f"orderbook.50.S{n:02d}USDT" for n in range(25)]
        feeds = {t: rig.collect(t) for t in topics}
        rig.run(5.0)
        for topic in topics:
            rig.hub.resubscribe(topic)
        rig.run(20.0)
        socket = rig.socket
        assert [(op, len(args)) for op, args in socket.ops()] == [
            ("subscribe", 10), ("subscribe", 10), ("subscribe", 5),
            ("unsubscribe", 10), ("unsubscribe", 10), ("unsubscribe", 5),
            ("subscribe", 10), ("subscribe", 10), ("subscribe", 5),
        ]  # fmt: skip
        times = [t for t, _r in socket.sent]
        assert times[3:] == [5.0] * 5 + [6.5]  # 5 frames per window of 1 s + margin
        assert most_in_window(times, socket.spec.message_window) <= 5
        assert socket.subscriptions == set(topics)
        for got, errors, _sub in feeds.values():
            assert kinds(got) == ["snapshot@100", "R", "snapshot@100"] and errors == []

    def test_unknown_and_unsubscribed_topics_are_ignored(self) -> None:
        rig = Rig()
        _got, _errors, sub = rig.collect(BOOK)
        rig.run(1.0)
        rig.hub.resubscribe("orderbook.50.NOPEUSDT")
        sub.dispose()
        rig.hub.resubscribe(BOOK)  # no subscriber left: only the UNSUBSCRIBE goes out
        rig.run(3.0)
        assert rig.socket.ops() == [("subscribe", [BOOK]), ("unsubscribe", [BOOK])]

    async def test_a_closed_hub_does_nothing(self) -> None:
        rig = Rig()
        rig.collect(BOOK)
        rig.run(1.0)
        await rig.hub.close()
        rig.hub.resubscribe(BOOK)
        rig.run(3.0)
        assert rig.socket.ops() == [("subscribe", [BOOK])]

    def test_a_topic_dropped_while_its_renewal_waits_is_only_unsubscribed(self) -> None:
        rig = Rig()
        rig.collect("publicTrade.BTCUSDT")
        _got, _errors, sub = rig.collect(BOOK)
        rig.run(1.0)
        rig.hub.resubscribe(BOOK)
        sub.dispose()
        rig.run(3.0)
        assert rig.socket.ops()[1:] == [("unsubscribe", [BOOK])]
        assert rig.socket.subscriptions == {"publicTrade.BTCUSDT"}


class TestResubscribeFaults:
    """Unanswered or refused UNSUBSCRIBEs, reconnects and rotations around a renewal."""

    def test_an_unanswered_unsubscribe_still_marks_and_resubscribes(self) -> None:
        rig = Rig(auto_answer=False, ack_timeout=5.0)
        got, errors, _s = rig.collect(BOOK)
        rig.run(0.5)
        socket = rig.socket
        socket.answer(socket.sent[0][1])
        rig.hub.resubscribe(BOOK)
        rig.run(2.0)  # the UNSUBSCRIBE and the SUBSCRIBE went out; neither answered
        rig.run(8.0)
        assert [type(e) for e in rig.errors] == [RequestTimeoutError, RequestTimeoutError]
        assert "UNSUBSCRIBE" in str(rig.errors[0])
        rig.transport.delta(BOOK)  # the venue kept the topic: data goes on after a marker
        assert kinds(got) == ["snapshot@100", "R", "delta@101"] and errors == []

    def test_a_refused_unsubscribe_is_reported_and_the_subscribe_still_goes_out(self) -> None:
        rig = Rig()
        got, errors, _s = rig.collect(BOOK)
        rig.run(1.0)
        rig.transport.refuse_ops = {"unsubscribe"}
        rig.hub.resubscribe(BOOK)
        rig.run(3.0)
        assert [op for op, _a in rig.socket.ops()] == ["subscribe", "unsubscribe", "subscribe"]
        assert [type(e) for e in rig.errors] == [SubscriptionError]
        assert kinds(got) == ["snapshot@100", "R", "snapshot@100"] and errors == []

    def test_a_reconnect_replaces_a_pending_renewal(self) -> None:
        rig = Rig(auto_answer=False)
        got, _errors, _s = rig.collect(BOOK)
        rig.run(0.5)
        first = rig.socket
        first.answer(first.sent[0][1])
        rig.hub.resubscribe(BOOK)
        first.fail()  # before the limiter let the renewal out
        rig.run(3.0)
        second = rig.socket
        assert second is not first
        assert first.ops() == [("subscribe", [BOOK])]
        assert second.ops() == [("subscribe", [BOOK])]  # a plain subscription, no unsubscribe
        second.answer(second.sent[0][1])
        assert kinds(got) == ["snapshot@100", "R", "snapshot@100"]
        assert "reconnected" in got[1].reason

    def test_during_a_rotation_the_renewal_waits_for_the_replacement(self) -> None:
        config = ConnectionConfig(
            reconnect_jitter=0.0, stale_after=1000.0, connection_lifetime=100.0
        )
        rig = Rig(
            config=config,
            auto_answer=False,
            rotation_overlap=5.0,
            sequence_of=lambda _t, p: p["data"]["seq"],
        )
        got, errors, _s = rig.collect(BOOK)
        rig.run(0.5)
        old = rig.socket
        old.answer(old.sent[0][1])
        rig.run(100.5)  # the lifetime ran out: a replacement subscribed, not answered yet
        new = rig.socket
        assert [c.role for c in rig.hub.connections] == ["primary", "replacement"]
        rig.hub.resubscribe(BOOK)
        rig.run(101.0)
        assert old.ops() == new.ops() == [("subscribe", [BOOK])]  # nothing yet
        rig.transport.auto_answer = True
        # The replacement's snapshot repeats seq 100 (a duplicate, dropped); the topic was
        # seen on it, so the rotation ends and the renewal goes out on the new primary.
        new.answer(new.sent[0][1])
        assert old.disposed
        rig.run(104.0)
        assert new.ops() == [("subscribe", [BOOK]), ("unsubscribe", [BOOK]), ("subscribe", [BOOK])]
        rig.transport.delta(BOOK)
        # The new subscription's snapshot repeats seq 100 too, yet is delivered: after
        # a renewal nothing counts as a duplicate of what came before it.
        assert kinds(got) == ["snapshot@100", "R", "snapshot@100", "delta@101"]
        assert errors == [] and rig.errors == []


class TestBookRecovers:
    """maintain_order_book over the hub: a lost delta ends in a fresh snapshot, never a
    wrong book."""

    def test_a_lost_delta_is_noticed_and_the_resubscribe_restores_the_book(self) -> None:
        rig = Rig()
        venue = rig.transport
        venue.books[BOOK] = ({"100": "1", "99": "1"}, {"101": "1", "102": "1"})
        truth: dict[int, tuple[tuple[Level, ...], tuple[Level, ...]]] = {}

        def step(lost: bool = False) -> None:
            size = str(venue.u.setdefault(BOOK, 100) + 1)
            venue.delta(BOOK, [("100", size)], [("102", size)], lost=lost)
            bids, asks = venue.books[BOOK]
            top = sorted(bids.items(), key=lambda kv: -Decimal(kv[0]))[:2]
            low = sorted(asks.items(), key=lambda kv: Decimal(kv[0]))[:2]
            truth[venue.u[BOOK]] = (
                tuple((Decimal(p), Decimal(q)) for p, q in top),
                tuple((Decimal(p), Decimal(q)) for p, q in low),
            )

        def parse(message: TopicMessage) -> Any:
            if isinstance(message, StreamRestart):
                return message
            return parse_depth(message[1], message[0])

        reports: list[Exception] = []
        books: list[OrderBook] = []
        maintain_order_book(
            rig.hub.feed(BOOK).pipe(ops.map(parse)),
            None,
            BookRule.BYBIT_DEPTH,
            2,
            window=50,
            request_resubscribe=lambda: rig.hub.resubscribe(BOOK),
            report=reports.append,
            scheduler=rig.scheduler,
        ).subscribe(books.append)
        step()  # before anybody subscribed: the subscription's snapshot holds it
        rig.run(1.0)
        for _ in range(SEQUENCED_AFTER + 2):
            step()
        for _ in range(3):
            step(lost=True)
        step()  # u jumps by 4: the book is dropped, a renewal asked for
        assert len(books) == 1 + SEQUENCED_AFTER + 2 and len(reports) == 1
        rig.run(3.0)
        step()
        step()
        assert rig.socket.ops() == [
            ("subscribe", [BOOK]),
            ("unsubscribe", [BOOK]),
            ("subscribe", [BOOK]),
        ]
        assert len(books) == 1 + SEQUENCED_AFTER + 2 + 3
        for book in books:
            assert (book.bids, book.asks) == truth[book.update_id], book.update_id
        (report,) = reports
        assert isinstance(report, FeedGapError) and "3 message(s) lost" in str(report)
        assert rig.errors == []


# -- against the simulator's Bybit dialect --------------------------------------------------


SIM_CONFIG = ConnectionConfig(
    reconnect_delay=0.05, reconnect_jitter=0.0, healthy_after=1.0, stale_after=10.0
)


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=3, tick_interval=0.02, periodic_ticks=2) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def restart_at(got: list[Any]) -> int | None:
    return next((i for i, m in enumerate(got) if isinstance(m, StreamRestart)), None)


class TestOnTheSimulator:
    """Over real sockets, the simulator's Bybit dialect answers a renewal with a snapshot."""

    @pytest.mark.parametrize("category", ["spot", "linear"])
    async def test_resubscribe_gets_a_new_snapshot(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, category: str
    ) -> None:
        errors: list[Exception] = []
        hub = SubscriptionHub(
            BybitWsProtocol(category),
            sim.ws_url,
            lambda: session,
            SIM_CONFIG,
            report_error=errors.append,
            report_state=lambda _e: None,
        )
        got: list[Any] = []
        trades: list[Any] = []
        hub.feed(BOOK).subscribe(got.append)
        hub.feed("publicTrade.BTCUSDT").subscribe(trades.append)
        try:
            await until(lambda: len(got) >= 5)
            mark = len(sim.control_log)
            hub.resubscribe(BOOK)
            await until(lambda: restart_at(got) is not None)
            await until(lambda: len(got) >= (restart_at(got) or 0) + 5)
        finally:
            await hub.close()
        requests = [
            (r.message["op"], r.message["args"])
            for r in sim.control_log[mark:]
            if isinstance(r.message, dict) and r.message.get("op") != "ping"
        ]
        assert requests == [("unsubscribe", [BOOK]), ("subscribe", [BOOK])]
        (at,) = [i for i, m in enumerate(got) if isinstance(m, StreamRestart)]
        assert got[0][1]["type"] == "snapshot"
        assert all(m[1]["type"] == "delta" for m in got[1:at])
        after = got[at + 1 :]
        assert after[0][1]["type"] == "snapshot"  # the fresh snapshot comes first
        u = [m[1]["data"]["u"] for m in after]
        assert u == list(range(u[0], u[0] + len(u)))  # then deltas continue it, + 1 each
        assert got[at - 1][1]["data"]["u"] <= u[0]
        assert errors == []
        assert not any(isinstance(m, StreamRestart) for m in trades)  # other topics untouched
