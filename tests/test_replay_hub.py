"""The replay stand-ins: ReplayHub (frames → topic feeds) and REST calls answered from
a recording, in virtual time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.scheduler import HistoricalScheduler

from rxconnector.config import Config
from rxconnector.errors import ParseError, RecordingError
from rxconnector.models import OrderBook, Trade
from rxconnector.recording import Kind, RecordingHeader
from rxconnector.replay import ReplayHub, ReplayRest
from rxconnector.replay.calls import key_id
from rxconnector.replay.reader import RecordingReader
from rxconnector.replay.recorder import _DeliveryTap, _RecordingRest
from rxconnector.replay.rest import RestLedger
from rxconnector.replay.writer import RecordingWriter
from rxconnector.streams.messages import StreamRestart

T0 = 1_700_000_000_000.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Protocol:
    """Binance-style combined-stream routing: ``{"stream": topic, "data": payload}``."""

    name = "fake"

    def route(self, message: Any) -> tuple[str, Any] | None:
        if isinstance(message, dict) and "stream" in message:
            return message["stream"], message["data"]
        return None


def _frame(topic: str, n: int) -> str:
    return f'{{"stream":"{topic}","data":{{"n":{n}}}}}'


def _hub() -> tuple[ReplayHub, list[Exception]]:
    errors: list[Exception] = []
    return ReplayHub(_Protocol(), report_error=errors.append), errors  # type: ignore[arg-type]


class TestReplayHubRouting:
    """Frames reach the subscribers of their topic only, with the recorded receive time."""

    def test_routes_by_topic_and_keeps_receive_times(self) -> None:
        hub, errors = _hub()
        got_a: list[Any] = []
        got_b: list[Any] = []
        hub.feed("a").subscribe(got_a.append)
        hub.feed("b").subscribe(got_b.append)
        hub.dispatch_frame(T0 + 1, _frame("a", 1))
        hub.dispatch_frame(T0 + 2, _frame("b", 2))
        hub.dispatch_frame(T0 + 3, '{"result":null,"id":7}')  # control: nobody gets it
        hub.dispatch_frame(T0 + 4, _frame("c", 3))  # not subscribed
        hub.dispatch_frame(T0 + 5, _frame("a", 4).encode())  # bytes decode the same
        assert got_a == [(T0 + 1, {"n": 1}), (T0 + 5, {"n": 4})]
        assert got_b == [(T0 + 2, {"n": 2})]
        assert hub.frames == 5
        assert hub.delivered == 3
        assert errors == []

    def test_dispose_stops_delivery(self) -> None:
        hub, _ = _hub()
        got: list[Any] = []
        sub = hub.feed("a").subscribe(got.append)
        hub.dispatch_frame(T0, _frame("a", 1))
        sub.dispose()
        hub.dispatch_frame(T0, _frame("a", 2))
        assert got == [(T0, {"n": 1})]
        assert hub.topics == frozenset()

    def test_garbage_is_reported_not_raised(self) -> None:
        hub, errors = _hub()
        got: list[Any] = []
        hub.feed("a").subscribe(got.append)
        hub.dispatch_frame(T0, "{not json")
        hub.dispatch_frame(T0, _frame("a", 1))
        assert len(errors) == 1
        assert isinstance(errors[0], ParseError)
        assert got == [(T0, {"n": 1})]

    def test_a_failing_subscriber_is_detached_and_reported(self) -> None:
        hub, errors = _hub()
        good: list[Any] = []

        def bad(_: Any) -> None:
            raise RuntimeError("user bug")

        hub.feed("a").subscribe(bad)
        hub.feed("a").subscribe(good.append)
        hub.dispatch_frame(T0, _frame("a", 1))
        hub.dispatch_frame(T0, _frame("a", 2))
        assert [m[1]["n"] for m in good] == [1, 2]
        assert [str(e) for e in errors] == ["user bug"]

    def test_complete_ends_every_feed_and_late_subscribers(self) -> None:
        hub, _ = _hub()
        done: list[str] = []
        hub.feed("a").subscribe(on_completed=lambda: done.append("a"))
        hub.feed("b").subscribe(on_completed=lambda: done.append("b"))
        hub.complete()
        hub.feed("a").subscribe(on_completed=lambda: done.append("late"))
        assert done == ["a", "b", "late"]


class TestHubSeams:
    """The recording wrapper forwards the hub's other methods; replay's resubscribe is a
    no-op because what followed the live one is in the recording."""

    def test_wrapper_forwards_resubscribe(self, tmp_path: Path) -> None:
        calls: list[str] = []

        class Hub:
            def resubscribe(self, topic: str) -> None:
                calls.append(topic)

        header = RecordingHeader.for_config(Config.binance(), [], [], T0)
        with RecordingWriter(tmp_path / "r.gz", header) as writer:
            tap: Any = _DeliveryTap(Hub(), writer, {}, lambda: T0)
            tap.resubscribe("orderbook.50.BTCUSDT")
        assert calls == ["orderbook.50.BTCUSDT"]

    def test_replay_resubscribe_changes_nothing(self) -> None:
        hub, errors = _hub()
        got: list[Any] = []
        hub.feed("a").subscribe(got.append)
        hub.resubscribe("a")
        hub.dispatch_frame(T0, _frame("a", 1))
        assert got == [(T0, {"n": 1})]
        assert errors == []


class TestReplayHubRestarts:
    """A recorded restart marker is emitted right before the next message of its topic."""

    def test_marker_precedes_the_next_message_of_its_topic(self) -> None:
        hub, _ = _hub()
        got: list[Any] = []
        other: list[Any] = []
        hub.feed("a").subscribe(got.append)
        hub.feed("b").subscribe(other.append)
        hub.dispatch_frame(T0, _frame("a", 1))
        hub.dispatch_restart("a", "reconnected")
        hub.dispatch_frame(T0 + 1, _frame("b", 9))
        hub.dispatch_frame(T0 + 2, _frame("a", 2))
        hub.dispatch_frame(T0 + 3, _frame("a", 3))
        assert got == [
            (T0, {"n": 1}),
            StreamRestart("a", "reconnected"),
            (T0 + 2, {"n": 2}),
            (T0 + 3, {"n": 3}),
        ]
        assert other == [(T0 + 1, {"n": 9})]

    def test_marker_for_an_unsubscribed_topic_is_ignored(self) -> None:
        hub, _ = _hub()
        got: list[Any] = []
        hub.dispatch_restart("a", "reconnected")
        hub.feed("a").subscribe(got.append)
        hub.dispatch_frame(T0, _frame("a", 1))
        assert got == [(T0, {"n": 1})]


def _book(update_id: int) -> OrderBook:
    return OrderBook(
        symbol="BTCUSDT",
        bids=((Decimal("99.5"), Decimal("1")),),
        asks=((Decimal("100.5"), Decimal("2")),),
        update_id=update_id,
        event_time=0,
        received_at=T0 + update_id,
    )


def _trade(trade_id: int) -> Trade:
    return Trade(
        symbol="BTCUSDT",
        trade_id=trade_id,
        price=Decimal("100"),
        quantity=Decimal("0.1"),
        side="buy",
        time=1,
        event_time=1,
        received_at=T0,
        backfilled=True,
    )


class _FakeVenueRest:
    """A venue REST object: Observables, a function-returning call, a failing call."""

    def __init__(self) -> None:
        self.snapshots = 0

    def depth_snapshot(self, symbol: str, limit: int) -> Observable[OrderBook]:
        self.snapshots += 1
        return reactivex.of(_book(self.snapshots))

    def trade_backfill(self, feed: str, symbol: str) -> Any:
        def fetch(from_id: int, to_id: int) -> Observable[list[Trade]]:
            return reactivex.of([_trade(i) for i in range(from_id, to_id + 1)])

        return fetch

    def server_time(self) -> Observable[int]:
        return reactivex.throw(TimeoutError("no answer"))

    name = "fake"


def _record(path: Path) -> list[Any]:
    """Record a few calls through the recording proxy; return what the caller saw."""
    header = RecordingHeader.for_config(Config.binance(), [], [], T0)
    seen: list[Any] = []
    with RecordingWriter(path, header) as writer:
        rest: Any = _RecordingRest(_FakeVenueRest(), writer)
        assert rest.name == "fake"  # plain attributes pass through
        rest.depth_snapshot("BTCUSDT", 100).subscribe(seen.append)
        rest.depth_snapshot("BTCUSDT", 100).subscribe(seen.append)
        rest.trade_backfill("trades", "BTCUSDT")(5, 7).subscribe(seen.append)
        rest.server_time().subscribe(seen.append, lambda e: seen.append(repr(e)))
    return seen


class TestRestRoundTrip:
    """REST calls recorded through the proxy are answered identically during replay."""

    def _ledger(self, path: Path, scheduler: HistoricalScheduler) -> tuple[RestLedger, list[Any]]:
        ledger = RestLedger(scheduler)
        with RecordingReader(path) as reader:
            entries = list(reader)
        return ledger, entries

    def _feed(self, ledger: RestLedger, entries: list[Any]) -> None:
        from rxconnector.recording import decode_value

        for entry in entries:
            if entry[0] == Kind.REST_REQUEST:
                ledger.request(entry[2], key_id(entry[3]))
            elif entry[0] in (Kind.REST_ITEM, Kind.REST_ERROR):
                ledger.event(entry[2], entry[0], decode_value(entry[3]))
            elif entry[0] == Kind.REST_COMPLETE:
                ledger.event(entry[2], entry[0], None)

    def test_calls_made_before_the_recorded_answers_get_them_in_order(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        live = _record(path)
        scheduler = HistoricalScheduler(EPOCH + timedelta(milliseconds=T0))
        ledger, entries = self._ledger(path, scheduler)
        rest: Any = ReplayRest(ledger)
        replayed: list[Any] = []
        rest.depth_snapshot("BTCUSDT", 100).subscribe(replayed.append)
        rest.depth_snapshot("BTCUSDT", 100).subscribe(replayed.append)
        rest.trade_backfill("trades", "BTCUSDT")(5, 7).subscribe(replayed.append)
        rest.server_time().subscribe(replayed.append, lambda e: replayed.append(repr(e)))
        assert replayed == []  # nothing until the replay reaches the recorded answers
        self._feed(ledger, entries)
        assert replayed == live
        assert replayed[0] == _book(1)
        assert replayed[1] == _book(2)
        assert replayed[2] == [_trade(5), _trade(6), _trade(7)]
        assert replayed[3] == "TimeoutError('no answer')"

    def test_a_late_call_gets_the_buffered_answer_on_the_scheduler(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        _record(path)
        scheduler = HistoricalScheduler(EPOCH + timedelta(milliseconds=T0))
        ledger, entries = self._ledger(path, scheduler)
        self._feed(ledger, entries)
        rest: Any = ReplayRest(ledger)
        got: list[Any] = []
        rest.depth_snapshot("BTCUSDT", 100).pipe(ops.to_list()).subscribe(got.append)
        assert got == []  # delivered asynchronously, like a real answer
        scheduler.advance_by(timedelta(microseconds=1))
        assert got == [[_book(1)]]

    def test_arguments_are_part_of_the_key(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        _record(path)
        scheduler = HistoricalScheduler(EPOCH + timedelta(milliseconds=T0))
        ledger, entries = self._ledger(path, scheduler)
        rest: Any = ReplayRest(ledger)
        got: list[Any] = []
        rest.depth_snapshot("BTCUSDT", 5000).subscribe(got.append)
        rest.depth_snapshot("ETHUSDT", 100).subscribe(got.append)
        self._feed(ledger, entries)
        scheduler.advance_by(timedelta(seconds=1))
        assert got == []

    def test_unanswered_calls_fail_when_the_recording_ends(self, tmp_path: Path) -> None:
        scheduler = HistoricalScheduler(EPOCH)
        ledger = RestLedger(scheduler)
        rest: Any = ReplayRest(ledger)
        errors: list[Exception] = []
        rest.exchange_info().subscribe(on_error=errors.append)
        ledger.close()
        rest.exchange_info().subscribe(on_error=errors.append)
        assert len(errors) == 2
        assert all(isinstance(e, RecordingError) for e in errors)
        assert "ended before" in str(errors[0])

    def test_an_unrecordable_answer_still_reaches_the_live_caller(self, tmp_path: Path) -> None:
        class Odd:
            pass

        odd = Odd()

        class Venue:
            def odd(self) -> Observable[Odd]:
                return reactivex.of(odd)

        header = RecordingHeader.for_config(Config.binance(), [], [], T0)
        reports: list[Exception] = []
        got: list[Any] = []
        with RecordingWriter(tmp_path / "r.gz", header) as writer:
            rest: Any = _RecordingRest(Venue(), writer, report=reports.append)
            rest.odd().subscribe(got.append)
        assert got == [odd]
        assert len(reports) == 1
        assert isinstance(reports[0], RecordingError)
        assert "could not record" in str(reports[0])

    def test_disposed_call_gets_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        _record(path)
        scheduler = HistoricalScheduler(EPOCH + timedelta(milliseconds=T0))
        ledger, entries = self._ledger(path, scheduler)
        rest: Any = ReplayRest(ledger)
        got: list[Any] = []
        sub = rest.depth_snapshot("BTCUSDT", 100).subscribe(got.append)
        sub.dispose()
        rest.depth_snapshot("BTCUSDT", 100).subscribe(got.append)
        self._feed(ledger, entries)
        assert got == [_book(1)]  # the live second call's answer went unclaimed
