"""Connection lifecycle: open, connected, reconnecting, failed, closed.

Each of a shard's connections is a :func:`rxconnector.transport.ws.websocket` source
(backoff, connection-attempt limiter, stale watchdog). This part opens it, and turns
its events into hub state: a new socket starts empty and is filled by the next
reconciliation (every topic subscribed again in legal batches); a lost socket marks
its topics for a :class:`~rxconnector.streams.messages.StreamRestart`; a socket that
lives ``connection_lifetime`` seconds starts a rotation; a source that gives up ends
its topics' feeds with the error (or, mid-rotation, hands over to the other socket).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from reactivex import abc

from rxconnector._scheduling import now_ms
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.rate.attempts import AttemptLimiter, shared_attempt_limiter
from rxconnector.streams._hub_state import Conn, Shard
from rxconnector.streams.hub_core import HubCore
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws import ConnectFn, websocket
from rxconnector.transport.ws_types import (
    Connected,
    FrameSink,
    SessionFactory,
    SocketSpec,
    describe_error,
)

if TYPE_CHECKING:
    from rxconnector.streams.hub_rotation import Rotation
    from rxconnector.streams.hub_shards import ShardPool
    from rxconnector.streams.hub_stalls import StallHeal
    from rxconnector.streams.hub_topics import TopicRefCounts

__all__ = ["ConnectionLifecycle", "SocketLimits"]


@attrs.frozen
class SocketLimits:
    """What every socket of the hub gets: the write limit and the stall thresholds."""

    max_messages: int
    message_window: float
    stale_after: float | None
    link_stale_after: float | None


class ConnectionLifecycle:
    """Opens the hub's connections and handles their events (the :class:`Conn` owner).

    ``frame_sink`` (builds a connection's frame handler, the hub's hot path: the
    socket's ``frame_sink``, and where frames a ``connect`` emits in band go) and
    ``next_request`` (a granted write slot) are given; ``shards``, ``rotation`` and
    ``topics`` are wired by the hub.
    """

    shards: ShardPool
    rotation: Rotation
    topics: TopicRefCounts
    #: set when the hub heals stalls (:mod:`~rxconnector.streams.hub_stalls`)
    stalls: StallHeal | None = None

    def __init__(
        self,
        core: HubCore,
        session: SessionFactory,
        limits: SocketLimits,
        *,
        frame_sink: Callable[[Conn], FrameSink],
        next_request: Callable[[Conn], str | None],
        attempt_limiter: AttemptLimiter | None,
        connect: ConnectFn,
    ) -> None:
        self.core = core
        self.session = session
        self.limits = limits
        self.frame_sink = frame_sink
        self.next_request = next_request
        self.attempt_limiter = attempt_limiter
        self.connect = connect
        self.tasks = OwnedTasks(core.report_error)
        self._conn_ids = itertools.count(1)

    # ------------------------------------------------------------ open / close

    def open(self, shard: Shard) -> Conn:
        """Start a connection for ``shard`` (primary or replacement)."""
        core, protocol, limits = self.core, self.core.protocol, self.limits
        label = f"{protocol.name}/{shard.endpoint}" if shard.endpoint else protocol.name
        ping_interval = protocol.client_ping_interval
        spec = SocketSpec(
            url=shard.url,
            connection_id=f"{label}#{next(self._conn_ids)}",
            max_messages=limits.max_messages,
            message_window=limits.message_window,
            ping_message=protocol.ping_message() if ping_interval else None,
            ping_interval=ping_interval,
            connect_timeout=core.config.rest_timeout,
            max_frame_bytes=core.config.max_frame_bytes,
            report=core.report_error,
        )
        conn = Conn(self, shard, spec)
        # Frames skip the source's Rx layers and come straight to the hub (see
        # SocketSpec); a ``connect`` that emits them in band (tests, replay) works too.
        conn.sink = sink = self.frame_sink(conn)
        conn.spec = spec = attrs.evolve(spec, frame_sink=sink)
        if self.attempt_limiter is None:
            self.attempt_limiter = shared_attempt_limiter(
                protocol.name,
                protocol.max_connection_attempts,
                protocol.connection_attempt_window,
                core.sched,
            )
        source = websocket(
            spec,
            self.session,
            core.config,
            tasks=self.tasks,
            attempt_limiter=self.attempt_limiter,
            stale_after=limits.stale_after,
            data_count=conn.count_data,
            active=functools.partial(self._expects_data, conn),
            link_stale_after=limits.link_stale_after,
            connect=self.connect,
            scheduler=core.sched,
        )
        conn.subscription = source.subscribe(
            conn.on_next, conn.on_error, conn.on_completed, scheduler=core.sched
        )
        return conn

    def close(self, conn: Conn, reason: str) -> None:
        """Close ``conn`` for good (idempotent) and report CLOSED."""
        if conn.disposed:
            return
        conn.disposed = True
        if conn.subscription is not None:
            conn.subscription.dispose()
        if self.stalls is not None:
            self.stalls.forget(conn)
        conn.reset_socket()
        self.core.report_state(
            ConnectionEvent(
                ConnectionState.CLOSED,
                conn.id,
                conn.spec.url,
                now_ms(self.core.sched),
                reason=reason,
            )
        )

    def _expects_data(self, conn: Conn) -> bool:
        """Whether ``conn`` carries a topic whose silence means a stall (the watchdog
        asks every few seconds): quiet topics such as liquidations do not count."""
        quiet = self.core.protocol.quiet_topic
        return any(not quiet(topic) for topic in conn.wanted)

    # ------------------------------------------------------------ source events

    def on_connected(self, conn: Conn, item: Connected) -> None:
        """A socket opened: start empty, arm the lifetime timer, reconcile."""
        if conn.disposed:
            return
        core = self.core
        core.report_state(item.event)
        conn.reset_socket()
        conn.link = item.link
        conn.epoch += 1
        epoch = conn.epoch

        def lifetime_reached(_s: abc.SchedulerBase, _state: Any = None) -> None:
            if conn.disposed or conn.epoch != epoch or conn.link is None:
                return
            if conn is conn.shard.primary:
                lifetime = core.config.connection_lifetime
                self.rotation.rotate(conn.shard, f"connection lifetime ({lifetime:g} s) reached")

        conn.lifetime_timer = core.sched.schedule_relative(
            core.config.connection_lifetime, lifetime_reached
        )
        if self.stalls is not None:
            self.stalls.watch(conn)
        core.touch(conn.shard)

    def on_conn_event(self, conn: Conn, event: ConnectionEvent) -> None:
        """Report ``event``; a RECONNECTING one forgets the socket and marks its topics."""
        if conn.disposed:
            return
        self.core.report_state(event)
        if event.state is not ConnectionState.RECONNECTING:
            return
        had_socket = conn.link is not None
        previously = set(conn.wanted)
        conn.reset_socket()
        shard = conn.shard
        if conn is shard.primary and shard.replacement is not None:
            # The old connection ended mid-rotation: the replacement takes over now.
            self.rotation.finish(shard, lost=previously, reason=event.reason)
            return
        if conn is shard.primary and had_socket:
            reason = f"reconnected after {event.reason}"
            for name in previously:
                topic = shard.topics.get(name)
                if topic is not None:
                    topic.restart = reason
                    topic.catching_up = False
                    topic.slow = True

    def on_conn_failed(self, conn: Conn, error: Exception) -> None:
        """The source gave up (``max_reconnect_attempts`` ran out)."""
        if conn.disposed:
            return
        previously = set(conn.wanted)
        conn.disposed = True
        if self.stalls is not None:
            self.stalls.forget(conn)
        conn.reset_socket()
        self.core.report_error(error)
        shard = conn.shard
        if conn is shard.replacement:
            shard.replacement = None
            self.rotation.end_overlap(shard)
            return
        if shard.replacement is not None:
            self.rotation.finish(shard, lost=previously, reason=describe_error(error))
            return
        # Nothing left to carry these topics: their feeds end with the error.
        self.shards.unlist(shard)
        self.shards.dispose(shard, describe_error(error))
        self.topics.fail_shard(shard, error)
