"""Make-before-break rotation of a shard's connection.

On ``serverShutdown`` and after ``ConnectionConfig.connection_lifetime`` a replacement
connection subscribes the same topics while the old one keeps delivering; both deliver
during the overlap (:class:`~.hub_delivery.Delivery` drops what was already delivered).
Once every topic has been seen on the new connection, or after ``rotation_overlap``
seconds, the old one closes. If the old connection dies first, topics the new one had
not taken over yet get a restart marker (messages may have been missed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactivex import abc

from rxconnector._scheduling import now_ms
from rxconnector.log import get_logger
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams._hub_state import Shard
from rxconnector.streams.hub_core import HubCore

if TYPE_CHECKING:
    from rxconnector.streams.hub_connections import ConnectionLifecycle
    from rxconnector.streams.hub_delivery import Delivery
    from rxconnector.streams.hub_requests import ControlRequests

__all__ = ["Rotation"]

_log = get_logger(component="hub")


class Rotation:
    """Starts, watches and finishes rotations (see the module docstring).

    ``connections`` (to open the replacement and close the old one), ``delivery`` (the
    dedupe keys) and ``requests`` (renewals deferred during the rotation) are wired by
    the hub.
    """

    connections: ConnectionLifecycle
    delivery: Delivery
    requests: ControlRequests

    def __init__(self, core: HubCore, rotation_overlap: float) -> None:
        self.core = core
        self.rotation_overlap = rotation_overlap

    def rotate(self, shard: Shard, reason: str) -> None:
        """Open a replacement for ``shard``'s primary connection."""
        old = shard.primary
        core = self.core
        if core.closed or shard.replacement is not None or old is None:
            return
        core.report_state(
            ConnectionEvent(
                ConnectionState.ROTATING, old.id, old.spec.url, now_ms(core.sched), reason=reason
            )
        )
        _log.info("rotating", connection=old.id, reason=reason)
        keyed = self.delivery.sequence_of is not None
        for topic in shard.topics.values():
            topic.overlap = topic.slow = True
            topic.new_seen = False
            topic.last_key = None
            if keyed and topic.last_payload is not None:
                topic.last_key = self.delivery.key(topic, topic.last_payload)
        shard.unseen = len(shard.topics)
        shard.replacement = self.connections.open(shard)

    def check(self, shard: Shard) -> None:
        """Finish the rotation once the replacement settled and saw every topic; after
        it settled, give silent topics at most ``rotation_overlap`` seconds."""
        new = shard.replacement
        if new is None or not new.settled():
            return
        if shard.unseen <= 0:
            self.finish(shard)
            return
        if shard.overlap_timer is None:

            def expire(_s: abc.SchedulerBase, _state: Any = None) -> None:
                shard.overlap_timer = None
                if shard.replacement is new:
                    self.finish(shard)

            shard.overlap_timer = self.core.sched.schedule_relative(self.rotation_overlap, expire)

    def finish(self, shard: Shard, lost: set[str] | None = None, reason: str = "") -> None:
        """Make the replacement primary and close the old connection.

        ``lost`` (the old connection died first) names the topics the old socket
        carried; those the replacement had not confirmed or delivered yet may have
        missed messages and get a restart marker.
        """
        old, new = shard.primary, shard.replacement
        if new is None or old is None:
            return
        shard.primary, shard.replacement = new, None
        for topic in shard.topics.values():
            if (
                lost is not None
                and topic.name in lost
                and not topic.new_seen
                and topic.name not in new.acked
            ):
                topic.restart = f"rotation: {old.id} ended before {new.id} took over ({reason})"
            topic.conn = new
        self.end_overlap(shard)
        self.connections.close(
            old, "rotated" if lost is None else f"ended during rotation: {reason}"
        )
        self.core.touch(shard)

    def end_overlap(self, shard: Shard) -> None:
        """The overlap is over (finished or abandoned): back to one socket per topic."""
        if shard.overlap_timer is not None:
            shard.overlap_timer.dispose()
            shard.overlap_timer = None
        shard.unseen = 0
        for topic in shard.topics.values():
            # The new socket may still lag behind the last message the old one delivered:
            # keep dropping keys already seen until it catches up.
            topic.catching_up = topic.overlap and topic.last_key is not None
            topic.overlap = topic.new_seen = False
            topic.refresh()
        deferred = list(shard.deferred_renewals)
        shard.deferred_renewals.clear()
        for name in deferred:
            self.requests.resubscribe(name)
