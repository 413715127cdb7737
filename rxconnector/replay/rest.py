"""The replay's stand-in for the venue REST object: each call answered with what the same
call answered live, between the same two frames."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector.errors import RecordingError
from rxconnector.recording import (
    Kind,
)
from rxconnector.replay.calls import key_id, segment

__all__ = ["ReplayRest", "RestLedger"]


@attrs.define
class _RecordedCall:
    """One REST call found in the recording and the replayed subscriber it answers."""

    key: bytes
    events: list[tuple[str, Any]] = attrs.field(factory=list)
    observer: abc.ObserverBase[Any] | None = None
    done: bool = False


class RestLedger:
    """Matches REST calls made during replay with the calls recorded live.

    A replayed call (a subscription) waits for the next recorded call with the same key;
    recorded events (items, completion, error) are delivered when the replay reaches
    them, i.e. between the same two frames as live. If the replay asks only after the
    recorded answer was read, the buffered answer is delivered on the scheduler at once.
    """

    def __init__(self, scheduler: abc.SchedulerBase) -> None:
        self._scheduler = scheduler
        self._waiting: dict[bytes, deque[abc.ObserverBase[Any]]] = {}
        self._unclaimed: dict[bytes, deque[_RecordedCall]] = {}
        self._calls: dict[int, _RecordedCall] = {}
        self.closed = False

    # replayed side
    def subscribe(self, key: bytes, observer: abc.ObserverBase[Any]) -> abc.DisposableBase:
        if self.closed:
            observer.on_error(
                RecordingError("replay", "the recording has ended; no REST answer is left")
            )
            return Disposable()
        unclaimed = self._unclaimed.get(key)
        if unclaimed:
            call = unclaimed.popleft()
            call.observer = observer
            if call.events:

                def flush(_s: abc.SchedulerBase, _state: Any = None) -> None:
                    self._flush(call)

                self._scheduler.schedule(flush)
            return Disposable(lambda: self._abandon(call))
        queue = self._waiting.setdefault(key, deque())
        queue.append(observer)

        def dispose() -> None:
            waiting = self._waiting.get(key)
            if waiting is not None and observer in waiting:
                waiting.remove(observer)
            for call in self._calls.values():
                if call.observer is observer:
                    self._abandon(call)

        return Disposable(dispose)

    def _abandon(self, call: _RecordedCall) -> None:
        call.observer = None
        call.done = True

    def _flush(self, call: _RecordedCall) -> None:
        events, call.events = call.events, []
        for kind, value in events:
            self._emit(call, kind, value)

    def _emit(self, call: _RecordedCall, kind: str, value: Any) -> None:
        observer = call.observer
        if observer is None or call.done:
            return
        if kind == Kind.REST_ITEM:
            observer.on_next(value)
            return
        call.done = True
        call.observer = None
        if kind == Kind.REST_COMPLETE:
            observer.on_completed()
        else:
            observer.on_error(value)

    # recorded side
    def request(self, call_id: int, key: bytes) -> None:
        call = _RecordedCall(key)
        self._calls[call_id] = call
        waiting = self._waiting.get(key)
        if waiting:
            call.observer = waiting.popleft()
        else:
            self._unclaimed.setdefault(key, deque()).append(call)

    def event(self, call_id: int, kind: str, value: Any) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        if kind != Kind.REST_ITEM:
            del self._calls[call_id]
        if call.observer is None:
            if not call.done:
                call.events.append((kind, value))
            return
        self._emit(call, kind, value)

    def close(self) -> None:
        """The recording is over: calls still waiting will never be answered."""
        self.closed = True
        waiting = [o for queue in self._waiting.values() for o in queue]
        self._waiting.clear()
        for observer in waiting:
            observer.on_error(
                RecordingError("replay", "the recording ended before this REST call was answered")
            )


class _ReplayCall(Observable[Any]):
    """A replayed REST call: an Observable of the recorded answer, and callable in case
    the live call returned a function (the call path then grows by one segment)."""

    def __init__(self, ledger: RestLedger, key: tuple[Any, ...]) -> None:
        self._ledger = ledger
        self._key = key
        identity = key_id(key)

        def subscribe(
            observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return ledger.subscribe(identity, observer)

        super().__init__(subscribe)

    def __call__(self, *args: Any, **kwargs: Any) -> _ReplayCall:
        return _ReplayCall(self._ledger, (*self._key, segment("()", args, kwargs)))


class ReplayRest:
    """Stands in for the venue REST object: ``rest.depth_snapshot("BTCUSDT", 1000)``
    returns the answer recorded for that same call (same method, same arguments)."""

    def __init__(self, ledger: RestLedger) -> None:
        self._ledger = ledger

    def __getattr__(self, name: str) -> Callable[..., _ReplayCall]:
        if name.startswith("__"):
            raise AttributeError(name)
        ledger = self._ledger

        def call(*args: Any, **kwargs: Any) -> _ReplayCall:
            return _ReplayCall(ledger, (segment(name, args, kwargs),))

        return call
