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
