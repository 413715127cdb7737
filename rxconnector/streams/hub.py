"""The subscription hub: many feeds over few connections, within the venue's limits.

One hub serves one venue (one :class:`~rxconnector.exchanges.base.WsProtocol`) at one
base URL. ``hub.feed(topic)`` is a cold Observable of
:data:`~rxconnector.streams.messages.TopicMessage`; everything else is the hub's job:

* **Ref-counting.** Subscribers of one topic share one exchange subscription. The
  first subscriber causes a SUBSCRIBE, the last dispose an UNSUBSCRIBE.
* **Legal batching and pacing.** Requests are built when the connection's message
  limiter grants a slot, from *everything* pending at that moment: topics asked for in
  the same loop tick, or while the previous request waited, share one request (at most
  ``max_topics_per_request`` topics and :data:`MAX_REQUEST_CHARS` characters). Every
  frame we send on a socket - requests, pongs, pings - passes one strict rolling-window
  limiter (see :mod:`rxconnector.rate.pacing`).
* **Sharding.** A connection carries at most ``max_streams_per_connection`` topics; the
  hub opens another one beyond that, per endpoint (USD-M routes ``public``/``market``).
* **Requests and answers.** Each request id is matched with its answer. A rejected
  SUBSCRIBE fails only its own topics' feeds with
  :class:`~rxconnector.errors.SubscriptionError` - and a rejected *batch* is split in
  halves and retried, so one bad topic never takes innocent ones down with it.
  Unanswered requests are reported after ``ack_timeout``.
* **Reconnects.** Each connection is a :func:`rxconnector.transport.ws.websocket`
  source (backoff, attempt limiter, stale watchdog). After a reconnect every topic is
  subscribed again in legal batches; its subscribers see no error, only a
  :class:`~rxconnector.streams.messages.StreamRestart` marker before the first message
  of the new connection.
* **Resubscribing one topic** (:meth:`SubscriptionHub.resubscribe`): UNSUBSCRIBE then
  SUBSCRIBE on the topic's socket, through the same paced, batched requests; repeated
  calls coalesce. Venues that send a snapshot on subscribe (Bybit) thereby send a fresh
  one; observers stay attached and get a :class:`StreamRestart` marker right before the
  first message of the new subscription (what the venue sent in between is lost).
* **Make-before-break rotation** on ``serverShutdown`` and after
  ``ConnectionConfig.connection_lifetime``: a replacement connection subscribes the same
  topics while the old one keeps delivering; both deliver during the overlap and
  ``sequence_of(topic, payload)`` drops what was already delivered; once every topic has
  been seen on the new connection (or after ``rotation_overlap`` s) the old one closes,
  and a topic whose new socket still lags keeps dropping old keys until it catches up.
  No loss, no duplicate, no marker. If the old connection dies before the new one has
  taken a topic over, that topic gets a marker (messages may have been missed).
* **Isolation.** Fan-out is done here, per observer: an observer that raises (its own
  pipeline included) is reported via ``report_error``, sent ``on_error`` and detached;
  the others and the connection carry on. Undecodable and unknown frames are reported
  as :class:`~rxconnector.errors.ParseError` and never end a feed.

The hot path per frame: the socket hands the frame straight to the connection's frame
handler (:meth:`SubscriptionHub._frame_sink`; no Rx layer in between, see
``SocketSpec.frame_sink``) as two arguments; one ``orjson.loads``, ``protocol.route``
(one dict lookup), one dict lookup topic → state, one tuple per delivered message; no
logging (about 1.5 µs per frame with one subscriber, including the decode;
``benchmarks/bench_feeds.py`` measures it). A topic whose subscribers decode frames
themselves (``undecoded``) skips the decode: its frames are recognised by their first
bytes (one slice, one lookup: about 0.5 µs per frame). Observers may be attached
without ``AutoDetachObserver`` (``feed(topic).subscribe_unwrapped``, the connector's
fused feed stages): the fan-out keeps that wrapper's guarantees itself, and a topic's
only such observer may take its messages as two arguments (``on_message``: no tuple).

The hub composes small parts, one job each, which share a
:class:`~rxconnector.streams.hub_core.HubCore` (protocol, config, scheduler, registries,
reporting, the once-per-tick reconciliation):

* :mod:`~rxconnector.streams.hub_topics` - ref-counting: topics and their observers;
* :mod:`~rxconnector.streams.hub_requests` - SUBSCRIBE/UNSUBSCRIBE batches, answers,
  halving, timeouts, renewals;
* :mod:`~rxconnector.streams.hub_shards` - sharding across connections, idle close;
* :mod:`~rxconnector.streams.hub_connections` - connection lifecycle and reconnects;
* :mod:`~rxconnector.streams.hub_rotation` - make-before-break rotation;
* :mod:`~rxconnector.streams.hub_delivery` - markers, overlap dedupe, observer isolation.

The per-topic and per-connection state lives in :mod:`rxconnector.streams._hub_state`.
Everything venue-specific comes from the :class:`~rxconnector.exchanges.base.WsProtocol`
passed in (limits, frames, routing, endpoints); the hub never asks which venue it serves.

Use the hub on the event loop's thread only (like everything built on it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector.config import ConnectionConfig
from rxconnector.errors import ParseError
from rxconnector.exchanges.base import ControlKind, WsProtocol
from rxconnector.models import ConnectionEvent
from rxconnector.rate.attempts import AttemptLimiter
from rxconnector.streams._hub_state import (
    MAX_REQUEST_CHARS,
    Conn,
    ConnectionInfo,
    PendingRequest,
    TopicState,
)
from rxconnector.streams.hub_connections import ConnectionLifecycle, SocketLimits
from rxconnector.streams.hub_core import HubCore
from rxconnector.streams.hub_delivery import Delivery
from rxconnector.streams.hub_requests import ControlRequests
from rxconnector.streams.hub_rotation import Rotation
from rxconnector.streams.hub_shards import ShardPool
from rxconnector.streams.hub_stalls import install_stall_heal
from rxconnector.streams.hub_topics import TopicRefCounts
from rxconnector.streams.messages import TopicMessage
from rxconnector.transport.ws import ConnectFn, connect_once
from rxconnector.transport.ws_types import FrameSink, SessionFactory

__all__ = [
    "ConnectionInfo",
    "MAX_REQUEST_CHARS",
    "PACING_MARGIN",
    "PendingRequest",
    "SubscriptionHub",
]

#: Seconds added to the venue's 1 s message window. Frames we space exactly 1 s apart
#: can arrive closer together: TCP delivers in order, so one lost segment holds back
#: everything after it until the retransmission (at least 200 ms on Linux, plus a
#: round trip) and then delivers it at once, next to the following burst. The margin
#: keeps the server's own count within the limit through one such stall. Cost: a
#: subscription flood of 10-topic Bybit requests runs at 33 instead of 50 topics/s;
#: Binance's 200-stream requests are not slowed noticeably.
PACING_MARGIN: Final = 0.5

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def socket_limits(protocol: WsProtocol, config: ConnectionConfig) -> SocketLimits:
    """The venue's write limit (plus :data:`PACING_MARGIN`) and stall thresholds, the
    connection config's thresholds taking precedence."""
    rate = float(protocol.max_messages_per_second)
    max_messages = max(1, math.floor(rate))
    return SocketLimits(
        max_messages=max_messages,
        message_window=max_messages / rate + PACING_MARGIN,
        stale_after=(
            config.stale_after if config.stale_after is not None else protocol.stale_after
        ),
        link_stale_after=(
            config.link_stale_after
            if config.link_stale_after is not None
            else protocol.link_stale_after
        ),
    )


class _TopicFeed(Observable[TopicMessage]):
    """A topic's feed. Besides ``subscribe`` it offers ``subscribe_unwrapped``
    (:data:`rxconnector.operators._share.UNWRAPPED_SUBSCRIBE`): the observer is attached
    as given, without the ``AutoDetachObserver`` that ``Observable.subscribe`` adds,
    because the hub keeps that wrapper's guarantees itself: an observer is detached
    before it is told about a terminal event (rejected topic, dead shard, hub closed,
    its own ``on_next`` raised), a detached observer is never delivered to (the fan-out
    re-checks membership when an earlier observer changed it), and an attach that
    raises becomes the observer's ``on_error``.

    An observer attached this way may also offer ``on_message(received_at, payload)``:
    while it is its topic's only observer, the hub hands it each data message that way
    (no ``(received_at, payload)`` tuple per frame); markers and messages of the
    hub's slow path (rotation overlap, a pending marker) still come to ``on_next`` as
    usual, all in order on the loop's thread. If ``on_message`` raises, the observer
    is detached and told, as if ``on_next`` had raised.
    """

    def subscribe_unwrapped(
        self,
        observer: abc.ObserverBase[TopicMessage],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Attach ``observer`` itself (see the class docstring)."""
        try:
            return self._subscribe_core(observer, scheduler)
        except Exception as exc:
            observer.on_error(exc)
            return Disposable()


class SubscriptionHub:
    """Shares WebSocket connections among topic feeds; see the module docstring.

    Args:
        protocol: The venue's pure protocol (URLs, limits, frames, routing).
        base_url: WebSocket base URL, e.g. ``wss://stream.binance.com:9443``.
        session: Returns the aiohttp session to connect with (called per attempt).
        config: Reconnect policy, stale threshold, connection lifetime.
        endpoint: Serve only this endpoint's topics (``protocol.endpoint_for``); a feed
            of another endpoint errors with ``ValueError``. Default: every endpoint,
            each topic routed to connections of its own endpoint.
        scheduler: Timing (pacing, backoff, watchdog, timeouts); default the running
            loop's. A ``TestScheduler`` drives the hub in virtual time.
        report_error: Non-fatal problems (parse errors, rejected subscriptions,
            unanswered requests, raising observers, connection failures).
        report_state: Every :class:`~rxconnector.models.ConnectionEvent`.
        sequence_of: ``(topic, payload) -> key`` that grows with each message of a topic
            (update id, trade id); used to drop duplicates during a rotation overlap.
            ``None`` (or a ``None`` key) means "cannot tell": then the old connection's
            messages are used until the new one delivers, which may repeat one message.
        on_frame: Recorder hook, called with every raw frame before decoding.
        heals_after_stall: Topics (the connector's gapless trade feeds) told with a
            :class:`StreamRestart` marker when their connection's data resumes after
            ``config.stall_heal_after`` seconds of silence
            (:mod:`~rxconnector.streams.hub_stalls`); ``None``: none.
        undecoded: Topics whose subscribers parse the raw frame themselves in one typed
            pass (``FeedSpec.parse_frame``): when the protocol can name a frame's topic
            without decoding it (``data_frame_head``), such a topic's messages carry the raw
            frame (``bytes``; a text frame is decoded as before) as payload instead of the
            decoded data. ``None``: every frame decoded.
        ack_timeout: Seconds to wait for an answer to a request before reporting.
        idle_close_after: Seconds a connection without topics stays open (a feed that is
            re-subscribed soon reuses it instead of spending a connection attempt).
        rotation_overlap: Longest overlap of a rotation, for topics that stay silent.
        attempt_limiter: Connection-attempt budget; default the venue's shared one.
        connect: One connection attempt (tests inject a fake transport).
    """

    def __init__(
        self,
        protocol: WsProtocol,
        base_url: str,
        session: SessionFactory,
        config: ConnectionConfig,
        *,
        endpoint: str | None = None,
        scheduler: abc.SchedulerBase | None = None,
        report_error: Callable[[Exception], None],
        report_state: Callable[[ConnectionEvent], None],
        sequence_of: Callable[[str, Any], int | None] | None = None,
        on_frame: Callable[[str, float, str | bytes], None] | None = None,
        undecoded: Callable[[str], bool] | None = None,
        heals_after_stall: Callable[[str], bool] | None = None,
        ack_timeout: float = 10.0,
        idle_close_after: float = 10.0,
        rotation_overlap: float = 10.0,
        attempt_limiter: AttemptLimiter | None = None,
        connect: ConnectFn = connect_once,
    ) -> None:
        core = HubCore(protocol, config, scheduler, report_error, report_state)
        self._core = core
        self._protocol = protocol
        self._route = protocol.route
        self._topics = core.topics  # the hot path's lookup
        self._on_frame_hook = on_frame
        self._report_error = core.report_error
        topics = self._refcounts = TopicRefCounts(core, endpoint)
        self._raw_topics = core.raw_topics  # the undecoded fast path's lookups
        self._raw_lengths = core.raw_lengths
        if undecoded is not None and callable(getattr(protocol, "data_frame_head", None)):
            topics.undecoded = undecoded
        delivery = self._delivery = Delivery(core, sequence_of)
        # bound once: every connection's frame handler keeps them
        self._deliver_slow = delivery.deliver_slow
        self._observer_failed = delivery.observer_failed
        requests = self._requests = ControlRequests(core, ack_timeout)
        rotation = self._rotation = Rotation(core, rotation_overlap)
        shards = self._shard_pool = ShardPool(core, base_url, idle_close_after)
        connections = self._connections = ConnectionLifecycle(
            core,
            session,
            socket_limits(protocol, config),
            frame_sink=self._frame_sink,
            next_request=requests.next_request,
            attempt_limiter=attempt_limiter,
            connect=connect,
        )
        topics.shards, topics.rotation = shards, rotation
        delivery.rotation, delivery.detach = rotation, topics.detach
        requests.topics, requests.delivery, requests.rotation = topics, delivery, rotation
        rotation.connections, rotation.delivery, rotation.requests = (
            connections,
            delivery,
            requests,
        )
        shards.connections = connections
        connections.shards, connections.rotation, connections.topics = shards, rotation, topics
        install_stall_heal(core, heals_after_stall, delivery, connections)

    def __repr__(self) -> str:
        return (
            f"SubscriptionHub({self._protocol!r}, topics={len(self._topics)}, "
            f"connections={len(self._core.all_shards())})"
        )

    # ================================================================ public API

    def feed(self, topic: str) -> Observable[TopicMessage]:
        """The cold Observable of ``topic``: ``(received_at_ms, payload)`` messages and
        :class:`StreamRestart` markers; completes when the hub closes, errors only with
        :class:`SubscriptionError` when the exchange rejects the topic (or with the last
        connection error when ``max_reconnect_attempts`` ran out).

        .. marble::
            :alt: feed(t) with a reconnect in the middle

            exchange: --a--b--X----c--d--|      X: connection lost, resubscribed
            [ hub.feed(t) ]
            feed:     --a--b-------(Rc)--d--|   R: StreamRestart(t, reason)
        """
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")

        def subscribe(
            observer: abc.ObserverBase[TopicMessage], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if self._core.closed:
                observer.on_completed()
                return Disposable()
            state = self._refcounts.attach(topic, observer)

            def dispose() -> None:
                self._refcounts.detach(state, observer)

            return Disposable(dispose)

        return _TopicFeed(subscribe)

    def resubscribe(self, topic: str) -> None:
        """Take ``topic`` off its connection and subscribe it again, keeping its observers.

        For a venue that answers a subscription with a snapshot (Bybit order books, linear
        tickers), this is how a consumer that lost track - an order book that saw a gap -
        gets a fresh snapshot without disturbing anything else on the connection. The
        UNSUBSCRIBE and the SUBSCRIBE are ordinary requests: paced by the connection's
        message limiter, batched with whatever else is pending. Observers see no error,
        only a :class:`StreamRestart` marker (reason ``"resubscribed ..."``) right before
        the first message of the new subscription.

        Calls coalesce: nothing more is sent while a renewal of ``topic`` is pending, while
        its SUBSCRIBE is being sent or answered (a snapshot is on its way anyway), or while
        its socket reconnects (the reconnect resubscribes it). During a rotation the
        renewal waits until the replacement has taken over. An unknown topic, one without
        subscribers, or a closed hub: nothing happens.

        .. marble::
            :alt: resubscribe(t) while the feed runs

            exchange: --a--b--(unsub,sub)--S--c--|   S: the venue's snapshot on subscribe
            [ hub.resubscribe(t) at the first b ]
            feed:     --a--b--------------(RS)-c--|   R: StreamRestart(t, "resubscribed ...")
        """
        self._requests.resubscribe(topic)

    async def close(self) -> None:
        """Complete every feed, close every socket, wait for every task. Idempotent."""
        if not self._core.closed:
            shards, topics = self._core.close()
            for shard in shards:
                self._shard_pool.dispose(shard, "hub closed")
            self._refcounts.complete(topics)
        await self._connections.tasks.wait()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._core.closed

    @property
    def topics(self) -> frozenset[str]:
        """Topics with at least one subscriber."""
        return frozenset(self._topics)

    @property
    def connections(self) -> tuple[ConnectionInfo, ...]:
        """Every open (or reconnecting) connection with its topic sets."""
        return self._shard_pool.infos()

    @property
    def pending_requests(self) -> tuple[PendingRequest, ...]:
        """Requests sent and not answered yet, oldest first per connection."""
        return self._requests.pending()

    # ================================================================ frames

    def _frame_sink(self, conn: Conn) -> FrameSink:
        """The hot path (see the module docstring): ``conn``'s frame handler, called
        with each frame as ``(received_at, data)``. It finds the topic - a raw topic by
        the frame's first bytes, any other through :meth:`_decoded` - and fans out;
        anything unusual goes to :class:`Delivery`.

        A topic with a typed one-pass decoder gets its frames undecoded (bytes, which no
        decoded payload can be: its parser tells them apart by that), found by the bytes
        they start with (the protocol's ``data_frame_head``, closing quote included):
        one slice and one lookup per distinct head length. Its parser checks the frame.
        A topic's only observer that offers ``on_message`` (``TopicState.sole``) gets
        the message as two arguments; otherwise each observer gets the
        ``(received_at, payload)`` tuple. A closure per connection: the hub's parts are
        cells, not attributes looked up per frame.
        """
        hook, report_error = self._on_frame_hook, self._report_error
        raw_topics, raw_lengths = self._raw_topics, self._raw_lengths
        decoded, deliver_slow = self._decoded, self._deliver_slow
        observer_failed = self._observer_failed

        def on_frame(received_at: float, data: bytes | str) -> None:
            if hook is not None:
                try:
                    hook(conn.id, received_at, data)
                except Exception as exc:
                    report_error(exc)
            topic: TopicState | None = None
            if raw_topics and type(data) is bytes:
                # the first head length without a loop (most hubs have one); the others
                # (symbols of other lengths) only when it missed
                topic = raw_topics.get(data[: raw_lengths[0]])
                if topic is None and len(raw_lengths) > 1:
                    for length in raw_lengths:
                        topic = raw_topics.get(data[:length])
                        if topic is not None:
                            break
            payload: Any = data
            if topic is None:
                found = decoded(conn, data)
                if found is None:
                    return
                topic, payload = found
            conn.data_count += 1
            if topic.slow or topic.conn is not conn:
                deliver_slow(conn, topic, received_at, payload)
                return
            topic.last_payload = payload
            sole = topic.sole
            if sole is not None:
                on_message, observer = sole
                try:
                    on_message(received_at, payload)
                except Exception as exc:
                    observer_failed(topic, observer, exc)
                return
            value = (received_at, payload)
            observers = topic.observers
            for observer in observers:
                # An earlier observer may have detached this one (or ended the topic):
                # never deliver to a detached observer (they may be unwrapped: see
                # _TopicFeed).
                if topic.observers is not observers and observer not in topic.observers:
                    continue
                try:
                    observer.on_next(value)
                except Exception as exc:
                    observer_failed(topic, observer, exc)

        return on_frame

    def _decoded(self, conn: Conn, data: bytes | str) -> tuple[TopicState, Any] | None:
        """A frame no raw topic claimed: decode and route it; its topic and payload, or
        ``None`` when it was a control message, undecodable (reported) or for a topic
        unsubscribed a moment ago (counted as data)."""
        try:
            message = _loads(data)
        except _JSONDecodeError:
            self._report_error(ParseError(f"undecodable frame on {conn.id}", data))
            return None
        try:
            routed = self._route(message)
            if routed is not None:
                # The topic lookup is part of routing: a hostile "stream" (a list, an
                # object) must be this frame's ParseError, not an exception that tears
                # the socket down and resyncs every book on it.
                name = routed[0]
                if type(name) is not str:
                    raise TypeError(f"routing key is a {type(name).__name__}, not a string")
                topic = self._topics.get(name)
        except Exception as exc:
            self._report_error(ParseError(f"cannot route frame on {conn.id} ({exc!r})", data))
            return None
        if routed is None:
            self._on_control(conn, message, data)
            return None
        if topic is None:  # unsubscribed a moment ago
            conn.data_count += 1
            return None
        return topic, routed[1]

    def _on_control(self, conn: Conn, message: Any, raw: bytes | str) -> None:
        """A frame that is not topic data: an answer, an error, a shutdown notice."""
        try:
            control = self._protocol.control(message)
        except Exception as exc:
            self._report_error(ParseError(f"cannot classify frame on {conn.id} ({exc!r})", raw))
            return
        kind = control.kind
        try:
            if kind is ControlKind.ACK:
                self._requests.on_ack(conn, control)
            elif kind is ControlKind.ERROR:
                self._requests.on_rejected(conn, control)
            elif kind is ControlKind.SHUTDOWN:
                if conn is conn.shard.primary:
                    self._rotation.rotate(conn.shard, control.message or "server shutdown")
            elif kind is ControlKind.UNKNOWN:
                self._report_error(ParseError(f"unrecognised message on {conn.id}", raw))
        except Exception as exc:  # never let one odd answer look like a dead socket
            self._report_error(exc)
