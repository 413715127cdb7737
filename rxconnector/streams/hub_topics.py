"""Topic ref-counting: subscribers of one topic share one exchange subscription.

The first observer of a topic places it on a shard with room (which SUBSCRIBEs it on
that shard's connection at the next reconciliation); the last one to leave releases it
(an UNSUBSCRIBE follows). A topic the exchange rejects fails only its own observers.
A shard left without topics starts its idle timer (:class:`~.hub_shards.ShardPool`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from reactivex import abc

from rxconnector.errors import SubscriptionError
from rxconnector.streams._hub_state import Shard, TopicState
from rxconnector.streams.hub_core import HubCore
from rxconnector.streams.messages import TopicMessage

if TYPE_CHECKING:
    from rxconnector.streams.hub_rotation import Rotation
    from rxconnector.streams.hub_shards import ShardPool

__all__ = ["TopicRefCounts"]


class TopicRefCounts:
    """Attaches and detaches observers; adds and releases topics.

    ``shards`` and ``rotation`` are wired by the hub after construction (the parts
    call each other: a topic needs a shard, a shard's last topic starts its idle timer,
    a topic leaving a rotating shard may end the overlap).
    """

    shards: ShardPool
    rotation: Rotation

    def __init__(self, core: HubCore, endpoint: str | None) -> None:
        self.core = core
        self.endpoint = endpoint
        #: Which topics get raw frames (the hub's ``undecoded``); decided once per topic.
        self.undecoded: Callable[[str], bool] | None = None

    def attach(self, name: str, observer: abc.ObserverBase[TopicMessage]) -> TopicState:
        """One more observer of ``name``; the first one subscribes the topic."""
        state = self.core.topics.get(name)
        if state is None:
            state = self.add(name)
        state.set_observers((*state.observers, observer))
        return state

    def add(self, name: str) -> TopicState:
        """Place a new topic on a shard of its endpoint with room."""
        endpoint = self.core.protocol.endpoint_for(name)
        if self.endpoint is not None and endpoint != self.endpoint:
            raise ValueError(
                f"topic {name!r} is served by endpoint {endpoint!r}; "
                f"this hub serves {self.endpoint!r}"
            )
        shard = self.shards.with_room(endpoint)
        topic = TopicState(name, shard)
        if self.undecoded is not None:
            topic.raw = self.undecoded(name)
        if shard.replacement is not None:  # joins a rotation in progress: dedupe it too
            topic.overlap = topic.slow = True
            shard.unseen += 1
        shard.topics[name] = topic
        self.core.topics[name] = topic
        if topic.raw:
            self.core.add_raw(topic)
        self.core.touch(shard)
        return topic

    def detach(self, topic: TopicState, observer: abc.ObserverBase[TopicMessage]) -> None:
        """One observer less; the last one releases the topic."""
        observers = topic.observers
        if observer not in observers:
            return
        topic.set_observers(tuple(o for o in observers if o is not observer))
        if not topic.observers and self.core.topics.get(topic.name) is topic:
            self.release(topic)

    def release(self, topic: TopicState) -> None:
        """Nobody listens to ``topic`` any more: take it off its shard."""
        self.core.drop_topic(topic.name)
        shard = self._take_off(topic)
        self._after_removal(shard)

    def fail(self, name: str, error: SubscriptionError) -> None:
        """The exchange rejected ``name``: report it, end its observers with ``error``."""
        topic = self.core.drop_topic(name)
        if topic is None:
            return
        shard = self._take_off(topic)
        observers = topic.observers
        topic.set_observers(())
        self.core.report_error(error)
        for observer in observers:
            with contextlib.suppress(Exception):  # a default on_error re-raises
                observer.on_error(error)
        self._after_removal(shard)

    def fail_shard(self, shard: Shard, error: Exception) -> None:
        """Nothing is left to carry ``shard``'s topics: their feeds end with ``error``."""
        for name in list(shard.topics):
            topic = self.core.drop_topic(name)
            if topic is None:
                continue
            observers = topic.observers
            topic.set_observers(())
            for observer in observers:
                with contextlib.suppress(Exception):
                    observer.on_error(error)
        shard.topics.clear()

    def complete(self, topics: list[TopicState]) -> None:
        """The hub closed: complete every observer of ``topics``."""
        for topic in topics:
            observers = topic.observers
            topic.set_observers(())
            for observer in observers:
                try:
                    observer.on_completed()
                except Exception as exc:
                    self.core.report_error(exc)

    def _take_off(self, topic: TopicState) -> Shard:
        shard = topic.shard
        shard.topics.pop(topic.name, None)
        if topic.overlap and not topic.new_seen:
            shard.unseen -= 1
        self.core.touch(shard)
        return shard

    def _after_removal(self, shard: Shard) -> None:
        if not shard.topics:
            self.shards.start_idle(shard)
        elif shard.replacement is not None:
            self.rotation.check(shard)
