"""Sharding: at most ``max_streams_per_connection`` topics per connection, per endpoint.

A topic goes to the first shard of its endpoint with room; beyond that, a new shard
opens its own connection. A shard whose last topic left stays open for
``idle_close_after`` seconds (a feed subscribed again soon reuses it instead of
spending a connection attempt), then closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactivex import abc

from rxconnector.streams._hub_state import ConnectionInfo, Shard
from rxconnector.streams.hub_core import HubCore

if TYPE_CHECKING:
    from rxconnector.streams.hub_connections import ConnectionLifecycle

__all__ = ["ShardPool"]


class ShardPool:
    """Finds, opens, idles and closes shards (see the module docstring).

    ``connections`` (opening and closing a shard's connections) is wired by the hub.
    """

    connections: ConnectionLifecycle

    def __init__(self, core: HubCore, base_url: str, idle_close_after: float) -> None:
        self.core = core
        self.base_url = base_url
        self.idle_close_after = idle_close_after

    def with_room(self, endpoint: str) -> Shard:
        """A shard of ``endpoint`` with room for one more topic (a new one if need be)."""
        protocol = self.core.protocol
        cap = protocol.max_streams_per_connection
        group = self.core.shards.setdefault(endpoint, [])
        for shard in group:
            if len(shard.topics) < cap:
                if shard.idle_timer is not None:
                    shard.idle_timer.dispose()
                    shard.idle_timer = None
                return shard
        shard = Shard(endpoint, protocol.connection_url(self.base_url, endpoint))
        group.append(shard)
        shard.primary = self.connections.open(shard)
        return shard

    def start_idle(self, shard: Shard) -> None:
        """``shard`` has no topics left: close it unless one arrives in time."""
        core = self.core
        if shard.idle_timer is None and not core.closed:

            def expire(_s: abc.SchedulerBase, _state: Any = None) -> None:
                shard.idle_timer = None
                if not shard.topics and not core.closed:
                    self.remove(shard, "idle: no topics left")

            shard.idle_timer = core.sched.schedule_relative(self.idle_close_after, expire)

    def remove(self, shard: Shard, reason: str) -> None:
        """Take ``shard`` out of the pool and close its connections."""
        self.unlist(shard)
        self.core.forget(shard)
        self.dispose(shard, reason)

    def unlist(self, shard: Shard) -> None:
        """Take ``shard`` out of its endpoint's group (no new topic lands on it)."""
        group = self.core.shards.get(shard.endpoint)
        if group is not None and shard in group:
            group.remove(shard)

    def dispose(self, shard: Shard, reason: str) -> None:
        """Stop ``shard``'s timers and close its connections."""
        for timer in (shard.idle_timer, shard.overlap_timer):
            if timer is not None:
                timer.dispose()
        shard.idle_timer = shard.overlap_timer = None
        for conn in (shard.replacement, shard.primary):
            if conn is not None:
                self.connections.close(conn, reason)

    def infos(self) -> tuple[ConnectionInfo, ...]:
        """Every open (or reconnecting) connection with its topic sets."""
        infos: list[ConnectionInfo] = []
        for shard in self.core.all_shards():
            for role, conn in (("primary", shard.primary), ("replacement", shard.replacement)):
                if conn is None:
                    continue
                infos.append(
                    ConnectionInfo(
                        connection_id=conn.id,
                        endpoint=shard.endpoint,
                        url=shard.url,
                        role=role,
                        connected=conn.link is not None,
                        assigned=frozenset(shard.topics),
                        requested=frozenset(conn.wanted),
                        acknowledged=frozenset(conn.acked),
                    )
                )
        return tuple(infos)
