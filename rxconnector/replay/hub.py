"""The replay's stand-in for the subscription hub: recorded frames routed to topic feeds."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector.errors import ParseError
from rxconnector.exchanges.base import WsProtocol
from rxconnector.streams.messages import StreamRestart, TopicMessage

__all__ = ["ReplayHub"]


class ReplayHub:
    """Stands in for the subscription hub: routes recorded frames to topic feeds.

    Frames are decoded and routed with the venue's own :class:`WsProtocol`, as the live
    hub does; a frame whose topic has no subscriber is skipped. Only frames the live hub
    delivered are dispatched (the recording marks the others), so its de-duplication
    during connection rotations is reproduced without being re-implemented. A recorded
    restart marker is emitted right before the next message of its topic, which is
    where the live hub emitted it.
    """

    def __init__(self, protocol: WsProtocol, *, report_error: Callable[[Exception], None]) -> None:
        self._route = protocol.route
        self._report = report_error
        self._observers: dict[str, tuple[abc.ObserverBase[TopicMessage], ...]] = {}
        self._restarts: dict[str, str] = {}
        self.closed = False
        self.frames = 0
        self.delivered = 0

    def feed(self, topic: str) -> Observable[TopicMessage]:
        """The recorded messages of ``topic``: ``(received_at, payload)`` and restart markers."""

        def subscribe(
            observer: abc.ObserverBase[TopicMessage], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if self.closed:
                observer.on_completed()
                return Disposable()
            self._observers[topic] = (*self._observers.get(topic, ()), observer)
            return Disposable(lambda: self._detach(topic, observer))

        return Observable(subscribe)

    def _detach(self, topic: str, observer: abc.ObserverBase[TopicMessage]) -> None:
        remaining = tuple(o for o in self._observers.get(topic, ()) if o is not observer)
        if remaining:
            self._observers[topic] = remaining
        else:
            self._observers.pop(topic, None)

    @property
    def topics(self) -> frozenset[str]:
        """Topics with at least one subscriber."""
        return frozenset(self._observers)

    def dispatch_frame(self, received_at: float, frame: str | bytes) -> None:
        """Hot path: decode, route and deliver one recorded frame."""
        self.frames += 1
        if not self._observers:
            return
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            self._report(ParseError("replayed frame is not JSON", frame))
            return
        try:
            routed = self._route(message)
        except Exception as exc:
            self._report(ParseError(f"cannot route replayed frame ({exc!r})", frame))
            return
        if routed is None:
            return  # a control message the live hub delivered to nobody either
        topic, payload = routed
        observers = self._observers.get(topic)
        if observers is None:
            return
        if self._restarts:
            reason = self._restarts.pop(topic, None)
            if reason is not None:
                self._deliver(topic, observers, StreamRestart(topic, reason))
                observers = self._observers.get(topic, ())
        self.delivered += 1
        self._deliver(topic, observers, (received_at, payload))

    def resubscribe(self, topic: str) -> None:
        """Nothing to do: what the live resubscription brought (a restart marker, a fresh
        snapshot) is in the recording and is replayed where it happened."""

    def dispatch_restart(self, topic: str, reason: str) -> None:
        """A recorded restart marker: emitted before ``topic``'s next message."""
        if topic in self._observers:
            self._restarts[topic] = reason

    def _deliver(
        self,
        topic: str,
        observers: tuple[abc.ObserverBase[TopicMessage], ...],
        message: TopicMessage,
    ) -> None:
        for observer in observers:
            try:
                observer.on_next(message)
            except Exception as exc:  # one broken pipeline must not stop the replay
                self._report(exc)
                self._detach(topic, observer)

    def complete(self) -> None:
        """End every topic feed (the recording is over)."""
        if self.closed:
            return
        self.closed = True
        observers = [o for group in self._observers.values() for o in group]
        self._observers.clear()
        for observer in observers:
            try:
                observer.on_completed()
            except Exception as exc:
                self._report(exc)

    async def close(self) -> None:
        self.complete()
