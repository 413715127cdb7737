"""``hub.feed(topic).subscribe_unwrapped``: observers attached without the
``AutoDetachObserver`` that ``Observable.subscribe`` adds (the trade feeds' fused
stage). The hub must keep that wrapper's guarantees itself; each test here fails
if it does not (checked by removing the guarantee)."""

from __future__ import annotations

from typing import Any

from reactivex.disposable import Disposable

from rxconnector.errors import SubscriptionError
from rxconnector.operators._share import StageObserver, subscribe_observer
from rxconnector.streams.hub import SubscriptionHub

try:
    from test_hub_virtual import Rig
except ImportError:  # run as a package
    from .test_hub_virtual import Rig  # type: ignore[no-redef]

TOPIC = "btcusdt@trade"


class Recorder:
    """An unwrapped observer that records everything it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.observer = StageObserver(
            lambda v: self.events.append(("next", v)),
            lambda e: self.events.append(("error", e)),
            lambda: self.events.append(("completed", None)),
        )

    def nexts(self) -> list[Any]:
        return [v[1]["t"] for k, v in self.events if k == "next" and type(v) is tuple]


def _attach(rig: Rig, recorder: Recorder, topic: str = TOPIC) -> Any:
    return rig.hub.feed(topic).subscribe_unwrapped(recorder.observer)  # type: ignore[attr-defined]


def _trade(rig: Rig, tid: int, topic: str = TOPIC) -> None:
    rig.transport.live[0].data(topic, {"e": "trade", "t": tid})


class TestUnwrappedObservers:
    def test_values_arrive_and_dispose_stops_them(self) -> None:
        rig = Rig()
        rec = Recorder()
        sub = _attach(rig, rec)
        rig.run(1.0)
        _trade(rig, 1)
        sub.dispose()
        _trade(rig, 2)
        assert rec.nexts() == [1]

    def test_an_observer_detached_by_an_earlier_one_gets_nothing_more(self) -> None:
        """Two observers of one topic; the first disposes the second while the hub
        delivers to it: the second must not get that value (the snapshot would)."""
        rig = Rig()
        second = Recorder()
        subs: list[Any] = []

        def first_on_next(value: Any) -> None:
            if type(value) is tuple and value[1]["t"] == 2:
                subs[0].dispose()

        first = StageObserver(first_on_next, lambda e: None, lambda: None)
        rig.hub.feed(TOPIC).subscribe_unwrapped(first)  # type: ignore[attr-defined]
        subs.append(_attach(rig, second))
        rig.run(1.0)
        _trade(rig, 1)
        _trade(rig, 2)
        _trade(rig, 3)
        assert second.nexts() == [1]

    def test_a_terminal_event_raised_by_an_earlier_observer_is_the_last_event(self) -> None:
        """The first observer closes the hub while a value is being delivered: the
        second gets its completion and then nothing (no value after the terminal event)."""
        rig = Rig()
        second = Recorder()

        def first_on_next(value: Any) -> None:
            if type(value) is tuple:  # what hub.close() does first, synchronously
                _shards, topics = rig.hub._core.close()
                rig.hub._refcounts.complete(topics)

        first = StageObserver(first_on_next, lambda e: None, lambda: None)
        rig.hub.feed(TOPIC).subscribe_unwrapped(first)  # type: ignore[attr-defined]
        _attach(rig, second)
        rig.run(1.0)
        _trade(rig, 1)
        assert second.events == [("completed", None)]

    def test_a_raising_observer_is_detached_before_its_on_error(self) -> None:
        rig = Rig()
        seen: list[str] = []

        def on_next(_value: Any) -> None:
            raise RuntimeError("subscriber bug")

        def on_error(error: Exception) -> None:
            seen.append(f"error attached={TOPIC in rig.hub.topics}")

        rig.hub.feed(TOPIC).subscribe_unwrapped(  # type: ignore[attr-defined]
            StageObserver(on_next, on_error, lambda: None)
        )
        rig.run(1.0)
        _trade(rig, 1)
        _trade(rig, 2)
        assert seen == ["error attached=False"]
        assert any(isinstance(e, RuntimeError) for e in rig.errors)

    def test_a_rejected_topic_ends_with_one_error(self) -> None:
        rig = Rig()
        rig.transport.reject.add(TOPIC)
        rec = Recorder()
        _attach(rig, rec)
        rig.run(5.0)
        assert [k for k, _ in rec.events] == ["error"]
        assert isinstance(rec.events[0][1], SubscriptionError)

    def test_a_closed_hub_completes_at_once(self) -> None:
        rig = Rig()
        rig.hub._core.close()
        rec = Recorder()
        assert isinstance(_attach(rig, rec), Disposable)
        assert rec.events == [("completed", None)]

    def test_an_attach_that_raises_is_the_observers_error(self) -> None:
        rig = Rig(endpoint="other")
        rec = Recorder()
        _attach(rig, rec)
        assert [k for k, _ in rec.events] == ["error"]
        assert isinstance(rec.events[0][1], ValueError)

    def test_subscribe_observer_unwraps_only_what_offers_it(self) -> None:
        rig = Rig()
        rec = Recorder()
        subscribe_observer(rig.hub.feed(TOPIC), rec.observer, None)
        rig.run(1.0)
        (observer,) = rig.hub._core.topics[TOPIC].observers
        assert observer is rec.observer  # no AutoDetachObserver in between
        assert isinstance(rig.hub, SubscriptionHub)


class TwoArgumentRecorder(Recorder):
    """An unwrapped observer that also offers ``on_message(received_at, payload)``; it
    records which entry each message came through."""

    def __init__(self, *, fail_on: int | None = None) -> None:
        super().__init__()
        self.fail_on = fail_on

        def on_message(received_at: float, payload: Any) -> None:
            if payload["t"] == self.fail_on:
                raise RuntimeError("subscriber bug")
            self.events.append(("message", (received_at, payload)))

        self.observer = StageObserver(
            lambda v: self.events.append(("next", v)),
            lambda e: self.events.append(("error", e)),
            lambda: self.events.append(("completed", None)),
            on_message,
        )

    def entries(self) -> list[tuple[str, int]]:
        """(entry, trade id) of every data message, in order."""
        return [(k, v[1]["t"]) for k, v in self.events if k in ("next", "message")]


class TestTwoArgumentHandOff:
    """A topic's only observer offering ``on_message`` gets data messages as two
    arguments (no tuple per frame); everything else keeps the ``on_next`` contract."""

    def test_the_only_observer_gets_messages_as_two_arguments(self) -> None:
        rig = Rig()
        rec = TwoArgumentRecorder()
        _attach(rig, rec)
        rig.run(1.0)
        _trade(rig, 1)
        _trade(rig, 2)
        assert rec.entries() == [("message", 1), ("message", 2)]
        received_at, payload = rec.events[0][1]
        assert isinstance(received_at, float) and payload == {"e": "trade", "t": 1}

    def test_a_second_observer_turns_it_off_and_its_leaving_turns_it_on(self) -> None:
        rig = Rig()
        first, second = TwoArgumentRecorder(), TwoArgumentRecorder()
        _attach(rig, first)
        rig.run(1.0)
        _trade(rig, 1)
        sub = _attach(rig, second)
        _trade(rig, 2)
        sub.dispose()
        _trade(rig, 3)
        assert first.entries() == [("message", 1), ("next", 2), ("message", 3)]
        assert second.entries() == [("next", 2)]

    def test_an_observer_without_it_or_a_wrapped_one_gets_tuples(self) -> None:
        rig = Rig()
        plain = Recorder()
        _attach(rig, plain)
        rig.run(1.0)
        _trade(rig, 1)
        assert plain.events == [("next", (1000.0, {"e": "trade", "t": 1}))]
        assert rig.hub._core.topics[TOPIC].sole is None
        got, _errors, _sub = rig.collect("ethusdt@trade")
        rig.run(2.0)
        _trade(rig, 7, "ethusdt@trade")
        assert got == [(2000.0, {"e": "trade", "t": 7})]

    def test_markers_still_come_to_on_next(self) -> None:
        rig = Rig()
        rec = TwoArgumentRecorder()
        _attach(rig, rec)
        rig.run(1.0)
        _trade(rig, 1)
        rig.transport.live[0].fail()  # reconnects after 1 s, resubscribes
        rig.run(3.0)
        _trade(rig, 2)
        kinds = [(k, type(v).__name__) for k, v in rec.events]
        assert kinds == [("message", "tuple"), ("next", "StreamRestart"), ("message", "tuple")]

    def test_the_slow_path_delivers_through_on_next(self) -> None:
        """During a rotation overlap (deduplicated by key) and until the new socket is
        past the overlap's last key, messages take the hub's slow path, to ``on_next``;
        then the two-argument entry again."""
        rig = Rig(sequence_of=lambda _t, p: p["t"])
        rec = TwoArgumentRecorder()
        _attach(rig, rec)
        rig.run(1.0)
        old = rig.transport.sockets[0]
        _trade(rig, 1)
        old.push({"e": "serverShutdown"})
        rig.run(1.005)  # the replacement subscribed, not answered yet
        new = rig.transport.sockets[1]
        old.data(TOPIC, {"e": "trade", "t": 2})
        new.data(TOPIC, {"e": "trade", "t": 2})  # duplicate: dropped
        rig.run(2.0)  # answered: the old socket closes
        assert old.disposed
        new.data(TOPIC, {"e": "trade", "t": 3})  # checked against the overlap's last key
        new.data(TOPIC, {"e": "trade", "t": 4})
        assert rec.entries() == [("message", 1), ("next", 2), ("next", 3), ("message", 4)]

    def test_a_raising_on_message_detaches_that_observer_only_once(self) -> None:
        rig = Rig()
        rec = TwoArgumentRecorder(fail_on=2)
        other, _errors, _sub = rig.collect("ethusdt@trade")
        _attach(rig, rec)
        rig.run(1.0)
        _trade(rig, 1)
        _trade(rig, 2)
        _trade(rig, 3)
        _trade(rig, 4, "ethusdt@trade")
        assert [k for k, _ in rec.events] == ["message", "error"]
        assert TOPIC not in rig.hub.topics  # its only observer left: unsubscribed
        assert [m[1]["t"] for m in other] == [4]
        assert sum(isinstance(e, RuntimeError) for e in rig.errors) == 1

    def test_one_that_detaches_itself_and_then_raises_is_still_reported(self) -> None:
        rig = Rig()
        rec = TwoArgumentRecorder()
        subs: list[Any] = []

        def on_message(_received_at: float, _payload: Any) -> None:
            subs[0].dispose()  # the topic's sole entry is gone by the time it raises
            raise RuntimeError("subscriber bug")

        assert rec.observer.on_message is not None
        rec.observer.on_message = on_message
        subs.append(_attach(rig, rec))
        rig.run(1.0)
        _trade(rig, 1)
        _trade(rig, 2)
        assert [k for k, _ in rec.events] == ["error"]
        assert [type(e) for e in rig.errors] == [RuntimeError]

    def test_it_is_forgotten_when_the_topic_ends(self) -> None:
        rig = Rig()
        rig.transport.reject.add(TOPIC)
        rec = TwoArgumentRecorder()
        _attach(rig, rec)
        topic = rig.hub._core.topics[TOPIC]
        assert topic.sole is not None and topic.sole[1] is rec.observer
        rig.run(5.0)
        assert [k for k, _ in rec.events] == ["error"]
        assert topic.sole is None and topic.observers == ()
