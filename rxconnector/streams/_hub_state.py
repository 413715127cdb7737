"""What the subscription hub keeps per topic, per shard and per connection.

Plain slotted state with the little logic that belongs to it (what is left to request
on a connection, whether it has settled); the decisions live in the hub's parts
(:mod:`rxconnector.streams.hub` composes them); a :class:`Conn` calls back through
:class:`ConnOwner` (:class:`~rxconnector.streams.hub_connections.ConnectionLifecycle`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs
from reactivex import abc

from rxconnector.errors import WebSocketClosedError
from rxconnector.models import ConnectionEvent
from rxconnector.streams.messages import TopicMessage
from rxconnector.transport.ws_types import Connected, ControlSender, FrameSink, SocketSpec, WsItem

__all__ = [
    "Conn",
    "ConnOwner",
    "ConnectionInfo",
    "MAX_REQUEST_CHARS",
    "PendingRequest",
    "Request",
    "Shard",
    "TopicState",
    "take_batch",
]


class ConnOwner(Protocol):
    """What a :class:`Conn` reports to: its source's items and its granted write slots."""

    @property
    def next_request(self) -> Callable[[Conn], str | None]: ...

    def on_connected(self, conn: Conn, item: Connected) -> None: ...

    def on_conn_event(self, conn: Conn, event: ConnectionEvent) -> None: ...

    def on_conn_failed(self, conn: Conn, error: Exception) -> None: ...


#: Upper bound on the stream names of one request, in JSON characters. Binance documents
#: no frame limit for requests; Bybit caps ``args`` of a whole connection at 21 000
#: characters (PROTOCOL.md §C1). 8 000 keeps every request frame small.
MAX_REQUEST_CHARS: Final = 8_000


@attrs.frozen
class ConnectionInfo:
    """Introspection: one connection of the hub.

    ``role`` is ``"primary"`` or ``"replacement"`` (during a rotation); ``assigned`` are
    the topics this connection should carry, ``requested`` those sent to the server on
    the current socket, ``acknowledged`` the subset the server confirmed.
    """

    connection_id: str
    endpoint: str
    url: str
    role: str
    connected: bool
    assigned: frozenset[str]
    requested: frozenset[str]
    acknowledged: frozenset[str]


@attrs.frozen
class PendingRequest:
    """Introspection: a request sent and not answered yet."""

    connection_id: str
    request_id: int
    method: str
    topics: tuple[str, ...]


class Request:
    """A request sent and not answered yet. ``renewing`` (UNSUBSCRIBE only) names the
    topics taken off to be subscribed again (:meth:`SubscriptionHub.resubscribe`)."""

    __slots__ = ("renewing", "request_id", "subscribe", "timer", "topics")

    def __init__(
        self,
        request_id: int,
        subscribe: bool,
        topics: tuple[str, ...],
        timer: abc.DisposableBase,
        renewing: tuple[str, ...] = (),
    ) -> None:
        self.request_id = request_id
        self.subscribe = subscribe
        self.topics = topics
        self.timer = timer
        self.renewing = renewing


class TopicState:
    """One topic: its observers and where its messages come from.

    ``slow`` is the one flag the hot path tests: set while a restart marker is pending,
    a rotation overlap needs deduplication, or the new connection of a finished rotation
    still lags behind what the old one delivered (``catching_up``).

    ``observers`` is a tuple replaced on every change (copy-on-write), always through
    :meth:`set_observers`, which also keeps ``sole``: when the topic has exactly one
    observer and it offers ``on_message(received_at, payload)`` (the connector's fused
    feed stages, attached unwrapped), the pair ``(on_message, observer)``: the hot path
    calls ``on_message`` instead of building a ``(received_at, payload)`` tuple for
    ``on_next`` (and names ``observer`` if it raises); else ``None``.
    """

    __slots__ = (
        "catching_up",
        "conn",
        "last_key",
        "last_payload",
        "name",
        "new_seen",
        "observers",
        "overlap",
        "raw",
        "restart",
        "shard",
        "slow",
        "sole",
    )

    def __init__(self, name: str, shard: Shard) -> None:
        self.name = name
        self.shard = shard
        self.conn: Conn | None = shard.primary
        self.observers: tuple[abc.ObserverBase[TopicMessage], ...] = ()
        self.sole: tuple[Callable[[float, Any], None], abc.ObserverBase[TopicMessage]] | None = None
        self.slow = False
        self.overlap = False
        self.new_seen = False
        self.catching_up = False
        self.restart: str | None = None
        self.last_key: int | None = None
        self.last_payload: Any = None
        #: Messages carry the raw frame (the subscribers decode it in one typed pass).
        self.raw = False

    def refresh(self) -> None:
        """Recompute the hot path's ``slow`` flag."""
        self.slow = self.overlap or self.catching_up or self.restart is not None

    def set_observers(self, observers: tuple[abc.ObserverBase[TopicMessage], ...]) -> None:
        """Replace the observers (copy-on-write) and recompute ``sole``."""
        self.observers = observers
        entry = getattr(observers[0], "on_message", None) if len(observers) == 1 else None
        self.sole = (entry, observers[0]) if callable(entry) else None


class Shard:
    """A group of at most ``max_streams_per_connection`` topics on one endpoint, carried
    by a primary connection (and a replacement while rotating)."""

    __slots__ = (
        "deferred_renewals",
        "endpoint",
        "idle_timer",
        "overlap_timer",
        "primary",
        "replacement",
        "topics",
        "unseen",
        "url",
    )

    def __init__(self, endpoint: str, url: str) -> None:
        self.endpoint = endpoint
        self.url = url
        self.topics: dict[str, TopicState] = {}
        self.primary: Conn | None = None
        self.replacement: Conn | None = None
        self.idle_timer: abc.DisposableBase | None = None
        self.overlap_timer: abc.DisposableBase | None = None
        self.unseen = 0
        #: topics asked to be resubscribed during a rotation: renewed once it ends
        self.deferred_renewals: dict[str, None] = {}


class Conn:
    """One logical connection: a reconnecting source plus what was sent on its socket."""

    __slots__ = (
        "acked",
        "data_count",
        "disposed",
        "epoch",
        "id",
        "inflight",
        "lifetime_timer",
        "link",
        "owner",
        "renew",
        "retry_batches",
        "retrying",
        "shard",
        "sink",
        "slot_queued",
        "spec",
        "subscription",
        "wanted",
    )

    #: The hub's frame handler for this connection (set by the owner right after
    #: construction): the socket's ``frame_sink``, and where in-band frames go.
    sink: FrameSink

    def __init__(self, owner: ConnOwner, shard: Shard, spec: SocketSpec) -> None:
        self.owner = owner
        self.id = spec.connection_id
        self.shard = shard
        self.spec = spec
        self.subscription: abc.DisposableBase | None = None
        self.link: ControlSender | None = None
        self.wanted: dict[str, None] = {}  # requested on this socket (ordered set)
        #: requested topics to take off and subscribe again on this socket (ordered set)
        self.renew: dict[str, None] = {}
        self.acked: set[str] = set()
        self.inflight: dict[int, Request] = {}
        self.retry_batches: deque[list[str]] = deque()
        self.retrying: set[str] = set()
        self.slot_queued = False
        self.data_count = 0
        self.epoch = 0
        self.disposed = False
        self.lifetime_timer: abc.DisposableBase | None = None

    # -- source observer ----------------------------------------------------------

    def on_next(self, item: WsItem) -> None:
        if type(item) is tuple:
            self.sink(item[0], item[1])
        elif type(item) is Connected:
            self.owner.on_connected(self, item)
        elif isinstance(item, ConnectionEvent):
            self.owner.on_conn_event(self, item)

    def on_error(self, error: Exception) -> None:
        self.owner.on_conn_failed(self, error)

    def on_completed(self) -> None:
        self.owner.on_conn_failed(self, WebSocketClosedError(f"{self.id}: source completed"))

    # -- watchdog probes ----------------------------------------------------------

    def count_data(self) -> int:
        return self.data_count

    def is_active(self) -> bool:
        return bool(self.wanted)

    # -- socket state -------------------------------------------------------------

    def reset_socket(self) -> None:
        """Forget everything about the socket that is gone."""
        self.link = None
        self.wanted.clear()
        self.renew.clear()
        self.acked.clear()
        for request in self.inflight.values():
            request.timer.dispose()
        self.inflight.clear()
        self.retry_batches.clear()
        self.retrying.clear()
        self.slot_queued = False
        if self.lifetime_timer is not None:
            self.lifetime_timer.dispose()
            self.lifetime_timer = None

    def has_work(self) -> bool:
        if self.retry_batches:
            return True
        desired, wanted, retrying = self.shard.topics, self.wanted, self.retrying
        for name in self.renew:
            if name in wanted:
                return True
        for name in wanted:
            if name not in desired:
                return True
        return any(name not in wanted and name not in retrying for name in desired)

    def settled(self) -> bool:
        """Every assigned topic requested and answered on the current socket."""
        if self.link is None or self.retry_batches:
            return False
        if any(request.subscribe for request in self.inflight.values()):
            return False
        wanted = self.wanted
        return all(name in wanted for name in self.shard.topics)

    def pump(self) -> None:
        """Ask the limiter for a slot if there is something to (un)subscribe."""
        link = self.link
        if self.disposed or link is None or self.slot_queued or not self.has_work():
            return
        self.slot_queued = True
        link.send(self.grant)

    def grant(self) -> str | None:
        """The limiter's slot: build the request now, from what is pending now."""
        self.slot_queued = False
        link = self.link
        if self.disposed or link is None:
            return None
        text = self.owner.next_request(self)
        if text is not None and self.has_work():
            self.slot_queued = True
            link.send(self.grant)
        return text


def take_batch(names: list[str], limit: int) -> list[str]:
    """The longest prefix of ``names`` within ``limit`` topics and MAX_REQUEST_CHARS."""
    batch: list[str] = []
    chars = 0
    for name in names:
        cost = len(name) + 3  # quotes and separator
        if batch and (len(batch) >= limit or chars + cost > MAX_REQUEST_CHARS):
            break
        batch.append(name)
        chars += cost
    return batch
