"""What every part of the subscription hub shares: the venue, the clock, the registries.

:class:`HubCore` holds the venue's protocol and the connection config, resolves the
scheduler once, owns the two registries (topic name → :class:`TopicState`, endpoint →
its :class:`Shard` list), reports problems and state changes (a raising callback is
logged, never propagated), and reconciles changed shards once per loop tick
(:meth:`HubCore.touch`), so that topics asked for in the same tick share one request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import abc

from rxconnector._scheduling import resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.exchanges.base import WsProtocol
from rxconnector.log import get_logger
from rxconnector.models import ConnectionEvent
from rxconnector.streams._hub_state import Shard, TopicState

__all__ = ["HubCore"]

_log = get_logger(component="hub")


class HubCore:
    """The hub's shared context (see the module docstring)."""

    def __init__(
        self,
        protocol: WsProtocol,
        config: ConnectionConfig,
        scheduler: abc.SchedulerBase | None,
        report_error: Callable[[Exception], None],
        report_state: Callable[[ConnectionEvent], None],
    ) -> None:
        self.protocol = protocol
        self.config = config
        self._scheduler_arg = scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._report_error_cb = report_error
        self._report_state_cb = report_state
        #: topics with at least one subscriber
        self.topics: dict[str, TopicState] = {}
        #: the topics of ``topics`` that take raw frames, by the bytes their frames start
        #: with (``protocol.data_frame_head``): the hub's undecoded fast path looks a
        #: frame's first ``n`` bytes up, for each ``n`` in ``raw_lengths``
        self.raw_topics: dict[bytes, TopicState] = {}
        self.raw_lengths: list[int] = []
        #: endpoint → its shards, each one connection's worth of topics
        self.shards: dict[str, list[Shard]] = {}
        self.closed = False
        self._dirty: dict[Shard, None] = {}
        self._sync_pending = False

    @property
    def sched(self) -> abc.SchedulerBase:
        """The scheduler, resolved at first use (default: the running loop's)."""
        if self._scheduler is None:
            self._scheduler = resolve_scheduler(self._scheduler_arg, None)
        return self._scheduler

    def all_shards(self) -> list[Shard]:
        """Every shard of every endpoint."""
        return [shard for group in self.shards.values() for shard in group]

    def report_error(self, error: Exception) -> None:
        """Hand a non-fatal problem to the user's callback."""
        try:
            self._report_error_cb(error)
        except Exception:
            _log.exception("report_error_failed", error=repr(error))

    def report_state(self, event: ConnectionEvent) -> None:
        """Hand a connection event to the user's callback."""
        try:
            self._report_state_cb(event)
        except Exception:
            _log.exception("report_state_failed", state=event.state.value)

    def touch(self, shard: Shard) -> None:
        """Reconcile ``shard`` soon: once per loop tick, so same-tick changes batch."""
        self._dirty[shard] = None
        if not self._sync_pending and not self.closed:
            self._sync_pending = True
            self.sched.schedule(self._sync)

    def add_raw(self, topic: TopicState) -> None:
        """Register ``topic`` (which takes raw frames) for the undecoded fast path."""
        self.raw_topics[self._head(topic.name)] = topic
        self._raw_changed()

    def drop_topic(self, name: str) -> TopicState | None:
        """Take ``name`` out of the registries; returns its state, if it was there."""
        topic = self.topics.pop(name, None)
        if topic is not None and topic.raw:
            self.raw_topics.pop(self._head(name), None)
            self._raw_changed()
        return topic

    def _head(self, name: str) -> bytes:
        head: bytes = self.protocol.data_frame_head(name)  # type: ignore[attr-defined]
        return head

    def _raw_changed(self) -> None:
        # in place: the hub holds this very list
        self.raw_lengths[:] = sorted({len(head) for head in self.raw_topics})

    def forget(self, shard: Shard) -> None:
        """``shard`` is gone: nothing to reconcile there any more."""
        self._dirty.pop(shard, None)

    def close(self) -> tuple[list[Shard], list[TopicState]]:
        """Mark the hub closed and empty the registries; returns what they held."""
        self.closed = True
        shards = self.all_shards()
        topics = list(self.topics.values())
        self.shards.clear()
        self.topics.clear()
        self.raw_topics.clear()
        self.raw_lengths.clear()
        self._dirty.clear()
        return shards, topics

    def _sync(self, _scheduler: abc.SchedulerBase | None = None, _state: Any = None) -> None:
        self._sync_pending = False
        dirty = list(self._dirty)
        self._dirty.clear()
        for shard in dirty:
            for conn in (shard.primary, shard.replacement):
                if conn is not None:
                    conn.pump()
