"""Delivery off the fast path: restart markers, rotation-overlap dedupe, raising observers.

The hub's frame handler delivers a message itself while its topic is plain (one
connection, nothing pending). Everything else comes here: a pending
:class:`~rxconnector.streams.messages.StreamRestart` marker goes out right before the
next message; during a make-before-break rotation both sockets deliver and the keys
from ``sequence_of`` drop what was already delivered; after the rotation a lagging new
socket keeps dropping old keys until it catches up. An observer that raises is
reported, detached and told (``on_error``); the others carry on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reactivex import abc

from rxconnector.streams._hub_state import Conn, TopicState
from rxconnector.streams.hub_core import HubCore
from rxconnector.streams.messages import StreamRestart, TopicMessage

if TYPE_CHECKING:
    from rxconnector.streams.hub_rotation import Rotation
    from rxconnector.streams.hub_stalls import StallHeal

__all__ = ["Delivery"]


class Delivery:
    """Fans messages and markers out to a topic's observers (see the module docstring).

    ``rotation`` (to end an overlap once every topic was seen on the new socket) and
    ``detach`` (to drop an observer that raised) are wired by the hub.
    """

    rotation: Rotation
    detach: Callable[[TopicState, abc.ObserverBase[TopicMessage]], None]
    #: set when the hub heals stalls: a marked topic's frame says the data resumed
    stalls: StallHeal | None = None

    def __init__(self, core: HubCore, sequence_of: Callable[[str, Any], int | None] | None) -> None:
        self.core = core
        self.sequence_of = sequence_of

    def deliver_slow(self, conn: Conn, topic: TopicState, received_at: float, payload: Any) -> None:
        """Delivery with a pending marker, a rotation overlap, or from a stray socket."""
        if topic.overlap:
            self._deliver_overlapping(conn, topic, received_at, payload)
            return
        if conn is not topic.conn:
            return
        if topic.restart is not None and self.stalls is not None:
            self.stalls.resumed(conn)  # a stall's markers, to every marked topic at once
        if topic.catching_up:
            key = self.key(topic, payload)
            if key is not None and topic.last_key is not None and key <= topic.last_key:
                return
            topic.catching_up = False
            topic.refresh()
        self.emit(topic, received_at, payload)

    def _deliver_overlapping(
        self, conn: Conn, topic: TopicState, received_at: float, payload: Any
    ) -> None:
        """Both sockets deliver during a rotation: emit each key once."""
        shard = topic.shard
        new = shard.replacement
        first_from_new = False
        if conn is new:
            if not topic.new_seen:
                topic.new_seen = first_from_new = True
                shard.unseen -= 1
        elif conn is not shard.primary:
            return
        key = self.key(topic, payload)
        if key is not None:
            drop = topic.last_key is not None and key <= topic.last_key
            if not drop:
                topic.last_key = key
        else:  # cannot tell: the old socket's copy until the new one delivers
            drop = conn is not new and topic.new_seen
        if not drop:
            self.emit(topic, received_at, payload)
        if first_from_new and shard.unseen <= 0:
            self.rotation.check(shard)

    def emit(self, topic: TopicState, received_at: float, payload: Any) -> None:
        """Deliver one message, preceded by the topic's pending marker if any."""
        if topic.restart is not None:
            self.announce_restart(topic)
        topic.last_payload = payload
        self.fan_out(topic, (received_at, payload))

    def announce_restart(self, topic: TopicState) -> None:
        """Send the topic's pending :class:`StreamRestart` marker now."""
        assert topic.restart is not None
        marker = StreamRestart(topic.name, topic.restart)
        topic.restart = None
        topic.refresh()
        self.fan_out(topic, marker)

    def fan_out(self, topic: TopicState, value: TopicMessage) -> None:
        """``value`` to every observer of ``topic``, each isolated from the others, and
        none that an earlier one detached meanwhile (observers may be unwrapped)."""
        observers = topic.observers
        for observer in observers:
            if topic.observers is not observers and observer not in topic.observers:
                continue
            try:
                observer.on_next(value)
            except Exception as exc:
                self.observer_failed(topic, observer, exc)

    def observer_failed(
        self, topic: TopicState, observer: abc.ObserverBase[TopicMessage], error: Exception
    ) -> None:
        """An observer (or its pipeline) raised: report it, detach it, tell it."""
        self.core.report_error(error)
        self.detach(topic, observer)
        with contextlib.suppress(Exception):  # no on_error given: the default re-raises
            observer.on_error(error)

    def key(self, topic: TopicState, payload: Any) -> int | None:
        """``sequence_of(topic, payload)``; ``None`` when unknown or when it raised."""
        sequence_of = self.sequence_of
        if sequence_of is None:
            return None
        try:
            return sequence_of(topic.name, payload)
        except Exception as exc:
            self.core.report_error(exc)
            return None
