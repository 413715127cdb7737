"""Heal after a stall: a connection's data went silent for a while and came back.

A stall that ends before the stale watchdog gives up (Binance: 60 s) leaves the socket
up, so no reconnect marks its topics, and what the venue withheld meanwhile is lost.
A busy trade feed learns it from the id gap of its next trade; a quiet symbol's feed only
from *its* next trade, seconds or minutes later (issue 16: 26 s to complete 200 tapes
after a 5-s stall in the 20 busy + 180 quiet scenario, against 2.6 s after a
disconnect). So when a connection carrying such topics receives no data for
``ConnectionConfig.stall_heal_after`` seconds, their
:class:`~rxconnector.streams.messages.StreamRestart` marker is made pending (reason
``"stalled: ..."``), and when data resumes every one of them gets it at once - as after
a reconnect - so each trade feed checks for missed trades from its last delivered id
right then. Only the topics the hub's ``heals_after_stall`` predicate names (the
connector's gapless trade feeds) are told: an order book has its own sequence check and
would only pay for a snapshot it may not need.

A socket is judged only once data came on it (a new socket's topics were just marked
by the reconnect and are still being subscribed). Cost: no work per frame. One timer
per connection, every quarter of the threshold, compares the connection's data count
(the stale watchdog's way). Resumption is noticed by the first frame of a marked topic
(marked topics take the hub's slow path until their marker is out) or by the next
check, whichever comes first. Both moments are reported on ``connection_state``:
``STALE`` when the silence passes the threshold (the socket stays up) and
``CONNECTED`` when data resumes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reactivex import abc

from rxconnector._scheduling import now_ms
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.rate.pacing import scheduler_seconds
from rxconnector.streams._hub_state import Conn, TopicState
from rxconnector.streams.hub_core import HubCore

if TYPE_CHECKING:
    from rxconnector.streams.hub_connections import ConnectionLifecycle
    from rxconnector.streams.hub_delivery import Delivery

__all__ = ["StallHeal", "install_stall_heal"]

#: The silence is looked at this many times per threshold.
_CHECKS_PER_THRESHOLD = 4


class _Watch:
    """One socket's watch: the data count last seen, since when it has not moved, and
    the topics whose stall marker is pending."""

    __slots__ = ("count", "epoch", "pending", "quiet_since", "reason", "started", "timer")

    def __init__(self, epoch: int, count: int, now: float) -> None:
        self.epoch = epoch
        self.count = count
        self.quiet_since = now
        #: data came on this socket: only then is a silence a stall (a new socket's
        #: topics were just marked by the reconnect, and are still being subscribed)
        self.started = False
        self.pending: list[TopicState] = []
        self.reason: str | None = None  # the pending markers' reason (identity tells ours)
        self.timer: abc.DisposableBase | None = None


class StallHeal:
    """Marks and announces stalls of the hub's connections (see the module docstring).

    ``delivery`` (to announce markers) is wired by the hub.
    """

    delivery: Delivery

    def __init__(self, core: HubCore, heal_after: float, heals: Callable[[str], bool]) -> None:
        self.core = core
        self.heal_after = heal_after
        self.period = heal_after / _CHECKS_PER_THRESHOLD
        self.heals = heals
        self.watches: dict[Conn, _Watch] = {}

    def watch(self, conn: Conn) -> None:
        """Watch ``conn``'s new socket (called when it connected)."""
        self.forget(conn)
        sched = self.core.sched
        watch = _Watch(conn.epoch, conn.data_count, scheduler_seconds(sched))
        self.watches[conn] = watch
        watch.timer = sched.schedule_relative(
            self.period, functools.partial(self._check, conn, watch)
        )

    def forget(self, conn: Conn) -> None:
        """Stop watching ``conn`` (closed, failed, or a new socket's watch follows)."""
        watch = self.watches.pop(conn, None)
        if watch is not None and watch.timer is not None:
            watch.timer.dispose()

    def _check(self, conn: Conn, watch: _Watch, _s: abc.SchedulerBase, _state: Any = None) -> None:
        if self.watches.get(conn) is not watch:
            return  # a newer socket has its own watch
        if conn.disposed or conn.link is None or conn.epoch != watch.epoch:
            del self.watches[conn]  # gone, or reconnecting: the reconnect marks its topics
            return
        sched = self.core.sched
        now = scheduler_seconds(sched)
        count = conn.data_count
        if count != watch.count:
            if watch.reason is not None:
                self._resume(conn, watch, now)
            watch.count, watch.quiet_since, watch.started = count, now, True
        elif (
            watch.started
            and watch.reason is None
            and now - watch.quiet_since >= self.heal_after - 1e-9
        ):
            self._stall(conn, watch, now)
        watch.timer = sched.schedule_relative(
            self.period, functools.partial(self._check, conn, watch)
        )

    def _stall(self, conn: Conn, watch: _Watch, now: float) -> None:
        """No data for the threshold: make the healed topics' markers pending."""
        reason = f"stalled: no data for {now - watch.quiet_since:.1f} s on {conn.id}"
        pending = []
        for name in conn.wanted:
            topic = conn.shard.topics.get(name)
            if (
                topic is None
                or topic.conn is not conn
                or topic.overlap
                or topic.restart is not None
                or not self.heals(name)
            ):
                continue
            topic.restart = reason
            topic.refresh()
            pending.append(topic)
        if not pending:
            return  # nothing here to heal: looked at again next period
        watch.reason, watch.pending = reason, pending
        self._report(conn, ConnectionState.STALE, f"{reason} (the socket stays up)")

    def resumed(self, conn: Conn) -> None:
        """A frame came for a marked topic of ``conn``: if it stalled, announce now."""
        watch = self.watches.get(conn)
        if watch is not None and watch.reason is not None:
            now = scheduler_seconds(self.core.sched)
            self._resume(conn, watch, now)
            watch.count, watch.quiet_since = conn.data_count, now

    def _resume(self, conn: Conn, watch: _Watch, now: float) -> None:
        """Data is back: every topic whose stall marker is still pending gets it now."""
        reason, pending = watch.reason, watch.pending
        watch.reason, watch.pending = None, []
        told = 0
        for topic in pending:
            if topic.restart is reason and topic.conn is conn:  # not a reconnect's since
                self.delivery.announce_restart(topic)
                told += 1
        silence = now - watch.quiet_since
        self._report(
            conn,
            ConnectionState.CONNECTED,
            f"data resumed after {silence:.1f} s without any: {told} feeds check for missed trades",
        )

    def _report(self, conn: Conn, state: ConnectionState, reason: str) -> None:
        core = self.core
        core.report_state(
            ConnectionEvent(state, conn.id, conn.spec.url, now_ms(core.sched), reason=reason)
        )


def install_stall_heal(
    core: HubCore,
    heals: Callable[[str], bool] | None,
    delivery: Delivery,
    connections: ConnectionLifecycle,
) -> None:
    """Give the hub's parts a :class:`StallHeal` when ``heals`` names topics and the
    config's ``stall_heal_after`` is set (else nothing: no timer, no slow path)."""
    heal_after = core.config.stall_heal_after
    if heals is None or heal_after is None:
        return
    stalls = StallHeal(core, heal_after, heals)
    stalls.delivery = delivery
    connections.stalls = delivery.stalls = stalls
