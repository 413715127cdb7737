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
  limiter (see :mod:`rxconnector.streams.pacing`).
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

The hot path per frame: the socket hands the frame straight to :meth:`_on_frame` (no Rx
layer in between, see ``SocketSpec.frame_sink``); one ``orjson.loads``,
``protocol.route`` (one dict lookup), one dict lookup topic → state, one tuple per
delivered message; no logging (about 1.5 µs per frame with one subscriber, including
the decode; ``benchmarks/bench_feeds.py`` measures it). The per-topic and per-connection
state lives in :mod:`rxconnector.streams._hub_state`.

Use the hub on the event loop's thread only (like everything built on it).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable
from typing import Any, Final

import attrs
import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.errors import (
    ExchangeError,
    ParseError,
    RequestTimeoutError,
    SubscriptionError,
)
from rxconnector.exchanges.base import Control, ControlKind, WsProtocol
from rxconnector.log import get_logger
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.rate.attempts import AttemptLimiter, shared_attempt_limiter
from rxconnector.streams._hub_state import (
    MAX_REQUEST_CHARS,
    Conn,
    ConnectionInfo,
    PendingRequest,
    Request,
    Shard,
    TopicState,
    take_batch,
)
from rxconnector.streams.messages import StreamRestart, TopicMessage
from rxconnector.transport.ws import (
    Connected,
    ConnectFn,
    Frame,
    OwnedTasks,
    SessionFactory,
    SocketSpec,
    connect_once,
    describe_error,
    websocket,
)

__all__ = [
    "ConnectionInfo",
    "MAX_REQUEST_CHARS",
    "PACING_MARGIN",
    "PendingRequest",
    "SubscriptionHub",
]

_log = get_logger(component="hub")

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
        ack_timeout: float = 10.0,
        idle_close_after: float = 10.0,
        rotation_overlap: float = 10.0,
        attempt_limiter: AttemptLimiter | None = None,
        connect: ConnectFn = connect_once,
    ) -> None:
        self._protocol = protocol
        self._route = protocol.route
        self._base_url = base_url
        self._endpoint = endpoint
        self._session = session
        self._config = config
        self._scheduler_arg = scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._report_error_cb = report_error
        self._report_state_cb = report_state
        self._sequence_of = sequence_of
        self._on_frame_hook = on_frame
        self._ack_timeout = ack_timeout
        self._idle_close_after = idle_close_after
        self._rotation_overlap = rotation_overlap
        self._attempt_limiter = attempt_limiter
        self._connect = connect
        self._stale_after = (
            config.stale_after if config.stale_after is not None else protocol.stale_after
        )
        self._link_stale_after = (
            config.link_stale_after
            if config.link_stale_after is not None
            else protocol.link_stale_after
        )
        rate = float(protocol.max_messages_per_second)
        self._max_messages = max(1, math.floor(rate))
        self._message_window = self._max_messages / rate + PACING_MARGIN
        self._topics: dict[str, TopicState] = {}
        self._shards: dict[str, list[Shard]] = {}
        self._dirty: dict[Shard, None] = {}
        self._sync_pending = False
        self._request_ids = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._tasks = OwnedTasks(self._report_error)
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"SubscriptionHub({self._protocol!r}, topics={len(self._topics)}, "
            f"connections={sum(len(s) for s in self._shards.values())})"
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
            if self._closed:
                observer.on_completed()
                return Disposable()
            state = self._topics.get(topic)
            if state is None:
                state = self._add_topic(topic)
            state.observers = (*state.observers, observer)

            def dispose() -> None:
                self._detach(state, observer)

            return Disposable(dispose)

        return Observable(subscribe)

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
        state = self._topics.get(topic)
        if state is None or self._closed:
            return
        shard = state.shard
        if shard.replacement is not None:
            shard.deferred_renewals[topic] = None
            return
        conn = shard.primary
        if (
            conn is None
            or conn.disposed
            or conn.link is None
            or topic not in conn.wanted
            or topic in conn.renew
            or any(r.subscribe and topic in r.topics for r in conn.inflight.values())
        ):
            return
        conn.renew[topic] = None
        self._touch(shard)

    async def close(self) -> None:
        """Complete every feed, close every socket, wait for every task. Idempotent."""
        if not self._closed:
            self._closed = True
            shards = [shard for group in self._shards.values() for shard in group]
            topics = list(self._topics.values())
            self._shards.clear()
            self._topics.clear()
            self._dirty.clear()
            for shard in shards:
                self._dispose_shard(shard, "hub closed")
            for topic in topics:
                observers, topic.observers = topic.observers, ()
                for observer in observers:
                    try:
                        observer.on_completed()
                    except Exception as exc:
                        self._report_error(exc)
        await self._tasks.wait()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def topics(self) -> frozenset[str]:
        """Topics with at least one subscriber."""
        return frozenset(self._topics)

    @property
    def connections(self) -> tuple[ConnectionInfo, ...]:
        """Every open (or reconnecting) connection with its topic sets."""
        infos: list[ConnectionInfo] = []
        for group in self._shards.values():
            for shard in group:
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

    @property
    def pending_requests(self) -> tuple[PendingRequest, ...]:
        """Requests sent and not answered yet, oldest first per connection."""
        pending: list[PendingRequest] = []
        for group in self._shards.values():
            for shard in group:
                for conn in (shard.primary, shard.replacement):
                    if conn is None:
                        continue
                    for request in conn.inflight.values():
                        method = "SUBSCRIBE" if request.subscribe else "UNSUBSCRIBE"
                        pending.append(
                            PendingRequest(conn.id, request.request_id, method, request.topics)
                        )
        return tuple(pending)

    # ================================================================ topics

    @property
    def _sched(self) -> abc.SchedulerBase:
        if self._scheduler is None:
            self._scheduler = resolve_scheduler(self._scheduler_arg, None)
        return self._scheduler

    def _add_topic(self, name: str) -> TopicState:
        endpoint = self._protocol.endpoint_for(name)
        if self._endpoint is not None and endpoint != self._endpoint:
            raise ValueError(
                f"topic {name!r} is served by endpoint {endpoint!r}; "
                f"this hub serves {self._endpoint!r}"
            )
        shard = self._shard_with_room(endpoint)
        topic = TopicState(name, shard)
        if shard.replacement is not None:  # joins a rotation in progress: dedupe it too
            topic.overlap = topic.slow = True
            shard.unseen += 1
        shard.topics[name] = topic
        self._topics[name] = topic
        self._touch(shard)
        return topic

    def _detach(self, topic: TopicState, observer: abc.ObserverBase[TopicMessage]) -> None:
        observers = topic.observers
        if observer not in observers:
            return
        topic.observers = tuple(o for o in observers if o is not observer)
        if not topic.observers and self._topics.get(topic.name) is topic:
            self._release(topic)

    def _release(self, topic: TopicState) -> None:
        del self._topics[topic.name]
        shard = topic.shard
        shard.topics.pop(topic.name, None)
        if topic.overlap and not topic.new_seen:
            shard.unseen -= 1
        self._touch(shard)
        if not shard.topics:
            self._start_idle(shard)
        elif shard.replacement is not None:
            self._check_rotation(shard)

    def _fail_topic(self, name: str, error: SubscriptionError) -> None:
        topic = self._topics.pop(name, None)
        if topic is None:
            return
        shard = topic.shard
        shard.topics.pop(name, None)
        if topic.overlap and not topic.new_seen:
            shard.unseen -= 1
        self._touch(shard)
        observers, topic.observers = topic.observers, ()
        self._report_error(error)
        for observer in observers:
            with contextlib.suppress(Exception):  # a default on_error re-raises
                observer.on_error(error)
        if not shard.topics:
            self._start_idle(shard)
        elif shard.replacement is not None:
            self._check_rotation(shard)

    # ================================================================ shards

    def _shard_with_room(self, endpoint: str) -> Shard:
        cap = self._protocol.max_streams_per_connection
        group = self._shards.setdefault(endpoint, [])
        for shard in group:
            if len(shard.topics) < cap:
                if shard.idle_timer is not None:
                    shard.idle_timer.dispose()
                    shard.idle_timer = None
                return shard
        shard = Shard(endpoint, self._protocol.connection_url(self._base_url, endpoint))
        group.append(shard)
        shard.primary = self._open_conn(shard)
        return shard

    def _open_conn(self, shard: Shard) -> Conn:
        number = next(self._conn_ids)
        label = f"{self._protocol.name}/{shard.endpoint}" if shard.endpoint else self._protocol.name
        ping_interval = self._protocol.client_ping_interval
        spec = SocketSpec(
            url=shard.url,
            connection_id=f"{label}#{number}",
            max_messages=self._max_messages,
            message_window=self._message_window,
            ping_message=self._protocol.ping_message() if ping_interval else None,
            ping_interval=ping_interval,
            connect_timeout=self._config.rest_timeout,
            max_frame_bytes=self._config.max_frame_bytes,
            report=self._report_error,
        )
        conn = Conn(self, shard, spec)
        # Frames skip the source's Rx layers and come straight here (see SocketSpec);
        # a ``connect`` that emits them in band (tests, replay) works as well.
        conn.spec = spec = attrs.evolve(spec, frame_sink=functools.partial(self._on_frame, conn))
        if self._attempt_limiter is None:
            self._attempt_limiter = shared_attempt_limiter(
                self._protocol.name,
                self._protocol.max_connection_attempts,
                self._protocol.connection_attempt_window,
                self._sched,
            )
        source = websocket(
            spec,
            self._session,
            self._config,
            tasks=self._tasks,
            attempt_limiter=self._attempt_limiter,
            stale_after=self._stale_after,
            data_count=conn.count_data,
            active=functools.partial(self._expects_data, conn),
            link_stale_after=self._link_stale_after,
            connect=self._connect,
            scheduler=self._sched,
        )
        conn.subscription = source.subscribe(
            conn.on_next, conn.on_error, conn.on_completed, scheduler=self._sched
        )
        return conn

    def _expects_data(self, conn: Conn) -> bool:
        """Whether ``conn`` carries a topic whose silence means a stall (the watchdog
        asks every few seconds): quiet topics such as liquidations do not count."""
        quiet = self._protocol.quiet_topic
        return any(not quiet(topic) for topic in conn.wanted)

    def _start_idle(self, shard: Shard) -> None:
        if shard.idle_timer is None and not self._closed:

            def expire(_s: abc.SchedulerBase, _state: Any = None) -> None:
                shard.idle_timer = None
                if not shard.topics and not self._closed:
                    self._remove_shard(shard, "idle: no topics left")

            shard.idle_timer = self._sched.schedule_relative(self._idle_close_after, expire)

    def _remove_shard(self, shard: Shard, reason: str) -> None:
        group = self._shards.get(shard.endpoint)
        if group is not None and shard in group:
            group.remove(shard)
        self._dirty.pop(shard, None)
        self._dispose_shard(shard, reason)

    def _dispose_shard(self, shard: Shard, reason: str) -> None:
        for timer in (shard.idle_timer, shard.overlap_timer):
            if timer is not None:
                timer.dispose()
        shard.idle_timer = shard.overlap_timer = None
        for conn in (shard.replacement, shard.primary):
            if conn is not None:
                self._close_conn(conn, reason)

    def _close_conn(self, conn: Conn, reason: str) -> None:
        if conn.disposed:
            return
        conn.disposed = True
        if conn.subscription is not None:
            conn.subscription.dispose()
        conn.reset_socket()
        self._report_state(
            ConnectionEvent(
                ConnectionState.CLOSED, conn.id, conn.spec.url, now_ms(self._sched), reason=reason
            )
        )

    # ================================================================ requests

    def _touch(self, shard: Shard) -> None:
        """Reconcile ``shard`` soon: once per loop tick, so same-tick changes batch."""
        self._dirty[shard] = None
        if not self._sync_pending and not self._closed:
            self._sync_pending = True
            self._sched.schedule(self._sync)

    def _sync(self, _scheduler: abc.SchedulerBase | None = None, _state: Any = None) -> None:
        self._sync_pending = False
        dirty = list(self._dirty)
        self._dirty.clear()
        for shard in dirty:
            for conn in (shard.primary, shard.replacement):
                if conn is not None:
                    conn.pump()

    def _next_request(self, conn: Conn) -> str | None:
        """Build the next request for ``conn`` (called when the limiter grants a slot)."""
        try:
            return self._build_request(conn)
        except Exception as exc:  # a protocol bug: report it, keep the connection
            self._report_error(exc)
            return None

    def _build_request(self, conn: Conn) -> str | None:
        """Unsubscribes first (they free room on the server before new streams arrive),
        then split-off retries, then new topics. State changes only once the frame
        is built, so a failure leaves everything as it was."""
        desired, wanted, renew = conn.shard.topics, conn.wanted, conn.renew
        limit = self._protocol.max_topics_per_request
        stale = [name for name in wanted if name not in desired or name in renew]
        if stale:
            # A renewed topic goes off here and, still desired, is subscribed again
            # below, by the next request the limiter allows.
            batch = take_batch(stale, limit)
            renewing = tuple(name for name in batch if name in renew and name in desired)
            text = self._register(conn, False, batch, renewing)
            for name in batch:
                del wanted[name]
                renew.pop(name, None)
                conn.acked.discard(name)
            return text
        while conn.retry_batches:
            group = conn.retry_batches.popleft()
            conn.retrying.difference_update(group)
            batch = [name for name in group if name in desired and name not in wanted]
            if batch:
                text = self._register(conn, True, batch)
                wanted.update(dict.fromkeys(batch))
                return text
        retrying = conn.retrying
        fresh: list[str] = []
        for name in desired:
            if name not in wanted and name not in retrying:
                fresh.append(name)
                if len(fresh) >= limit:
                    break
        if not fresh:
            return None
        batch = take_batch(fresh, limit)
        text = self._register(conn, True, batch)
        wanted.update(dict.fromkeys(batch))
        return text

    def _register(
        self, conn: Conn, subscribe: bool, batch: list[str], renewing: tuple[str, ...] = ()
    ) -> str:
        request_id = next(self._request_ids)
        protocol = self._protocol
        build = protocol.subscribe_message if subscribe else protocol.unsubscribe_message
        text = build(batch, request_id)

        def timed_out(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self._ack_timed_out(conn, request_id)

        timer = self._sched.schedule_relative(self._ack_timeout, timed_out)
        conn.inflight[request_id] = Request(request_id, subscribe, tuple(batch), timer, renewing)
        return text

    def _take_request(self, conn: Conn, request_id: Any) -> Request | None:
        if not isinstance(request_id, int | str | None):
            return None  # not an id we could have sent (a list, an object ...)
        if request_id is None:
            # Venues that echo no id (Bybit linear's ``req_id:""``) answer in order.
            if not conn.inflight:
                return None
            request_id = next(iter(conn.inflight))
        request = conn.inflight.pop(request_id, None)
        if request is not None:
            request.timer.dispose()
        return request

    def _ack_timed_out(self, conn: Conn, request_id: int) -> None:
        request = conn.inflight.pop(request_id, None)
        if request is None:
            return
        self._renewed(conn, request)
        method = "SUBSCRIBE" if request.subscribe else "UNSUBSCRIBE"
        self._report_error(
            RequestTimeoutError(
                f"{conn.id}: {method} #{request_id} of {len(request.topics)} stream(s) "
                f"({', '.join(request.topics[:3])}{', ...' if len(request.topics) > 3 else ''}) "
                f"not answered within {self._ack_timeout:g} s"
            )
        )
        if conn is conn.shard.replacement:
            self._check_rotation(conn.shard)

    # ================================================================ connection events

    def _on_connected(self, conn: Conn, item: Connected) -> None:
        if conn.disposed:
            return
        self._report_state(item.event)
        conn.reset_socket()
        conn.link = item.link
        conn.epoch += 1
        epoch = conn.epoch

        def lifetime_reached(_s: abc.SchedulerBase, _state: Any = None) -> None:
            if conn.disposed or conn.epoch != epoch or conn.link is None:
                return
            if conn is conn.shard.primary:
                lifetime = self._config.connection_lifetime
                self._rotate(conn.shard, f"connection lifetime ({lifetime:g} s) reached")

        conn.lifetime_timer = self._sched.schedule_relative(
            self._config.connection_lifetime, lifetime_reached
        )
        self._touch(conn.shard)

    def _on_conn_event(self, conn: Conn, event: ConnectionEvent) -> None:
        if conn.disposed:
            return
        self._report_state(event)
        if event.state is not ConnectionState.RECONNECTING:
            return
        had_socket = conn.link is not None
        previously = set(conn.wanted)
        conn.reset_socket()
        shard = conn.shard
        if conn is shard.primary and shard.replacement is not None:
            # The old connection ended mid-rotation: the replacement takes over now.
            self._finish_rotation(shard, lost=previously, reason=event.reason)
            return
        if conn is shard.primary and had_socket:
            reason = f"reconnected after {event.reason}"
            for name in previously:
                topic = shard.topics.get(name)
                if topic is not None:
                    topic.restart = reason
                    topic.catching_up = False
                    topic.slow = True

    def _on_conn_failed(self, conn: Conn, error: Exception) -> None:
        """The source gave up (``max_reconnect_attempts`` ran out)."""
        if conn.disposed:
            return
        previously = set(conn.wanted)
        conn.disposed = True
        conn.reset_socket()
        self._report_error(error)
        shard = conn.shard
        if conn is shard.replacement:
            shard.replacement = None
            self._end_overlap(shard)
            return
        if shard.replacement is not None:
            self._finish_rotation(shard, lost=previously, reason=describe_error(error))
            return
        # Nothing left to carry these topics: their feeds end with the error.
        group = self._shards.get(shard.endpoint)
        if group is not None and shard in group:
            group.remove(shard)
        self._dispose_shard(shard, describe_error(error))
        for name in list(shard.topics):
            topic = self._topics.pop(name, None)
            if topic is None:
                continue
            observers, topic.observers = topic.observers, ()
            for observer in observers:
                with contextlib.suppress(Exception):
                    observer.on_error(error)
        shard.topics.clear()

    # ================================================================ rotation

    def _rotate(self, shard: Shard, reason: str) -> None:
        old = shard.primary
        if self._closed or shard.replacement is not None or old is None:
            return
        self._report_state(
            ConnectionEvent(
                ConnectionState.ROTATING, old.id, old.spec.url, now_ms(self._sched), reason=reason
            )
        )
        _log.info("rotating", connection=old.id, reason=reason)
        sequence_of = self._sequence_of
        for topic in shard.topics.values():
            topic.overlap = topic.slow = True
            topic.new_seen = False
            topic.last_key = None
            if sequence_of is not None and topic.last_payload is not None:
                topic.last_key = self._key(topic, topic.last_payload)
        shard.unseen = len(shard.topics)
        shard.replacement = self._open_conn(shard)

    def _check_rotation(self, shard: Shard) -> None:
        new = shard.replacement
        if new is None or not new.settled():
            return
        if shard.unseen <= 0:
            self._finish_rotation(shard)
            return
        if shard.overlap_timer is None:

            def expire(_s: abc.SchedulerBase, _state: Any = None) -> None:
                shard.overlap_timer = None
                if shard.replacement is new:
                    self._finish_rotation(shard)

            shard.overlap_timer = self._sched.schedule_relative(self._rotation_overlap, expire)

    def _finish_rotation(
        self, shard: Shard, lost: set[str] | None = None, reason: str = ""
    ) -> None:
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
        self._end_overlap(shard)
        self._close_conn(old, "rotated" if lost is None else f"ended during rotation: {reason}")
        self._touch(shard)

    def _end_overlap(self, shard: Shard) -> None:
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
            self.resubscribe(name)

    def _renewed(self, conn: Conn, request: Request) -> None:
        """An UNSUBSCRIBE of a renewal was answered (or timed out): on this socket, the
        next message of each renewed topic belongs to the new subscription, so it gets
        a :class:`StreamRestart` marker first (what was sent in between is lost)."""
        for name in request.renewing:
            topic = self._topics.get(name)
            if topic is None or topic.conn is not conn:
                continue
            topic.restart = f"resubscribed on {conn.id}"
            # The new subscription restarts the topic's keys (a snapshot repeats the
            # last key): nothing after this point is a duplicate to drop.
            topic.catching_up = False
            topic.refresh()

    def _key(self, topic: TopicState, payload: Any) -> int | None:
        sequence_of = self._sequence_of
        if sequence_of is None:
            return None
        try:
            return sequence_of(topic.name, payload)
        except Exception as exc:
            self._report_error(exc)
            return None

    # ================================================================ frames

    def _on_frame(self, conn: Conn, frame: Frame) -> None:
        received_at, data = frame
        hook = self._on_frame_hook
        if hook is not None:
            try:
                hook(conn.id, received_at, data)
            except Exception as exc:
                self._report_error(exc)
        try:
            message = _loads(data)
        except _JSONDecodeError:
            self._report_error(ParseError(f"undecodable frame on {conn.id}", data))
            return
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
            return
        if routed is None:
            self._on_control(conn, message, data)
            return
        conn.data_count += 1
        if topic is None:  # unsubscribed a moment ago
            return
        payload = routed[1]
        if topic.slow or topic.conn is not conn:
            self._deliver_slow(conn, topic, received_at, payload)
            return
        topic.last_payload = payload
        value = (received_at, payload)
        for observer in topic.observers:
            try:
                observer.on_next(value)
            except Exception as exc:
                self._observer_failed(topic, observer, exc)

    def _deliver_slow(
        self, conn: Conn, topic: TopicState, received_at: float, payload: Any
    ) -> None:
        """Delivery with a pending marker, a rotation overlap, or from a stray socket."""
        shard = topic.shard
        if topic.overlap:
            new = shard.replacement
            first_from_new = False
            if conn is new:
                if not topic.new_seen:
                    topic.new_seen = first_from_new = True
                    shard.unseen -= 1
            elif conn is not shard.primary:
                return
            key = self._key(topic, payload)
            if key is not None:
                drop = topic.last_key is not None and key <= topic.last_key
                if not drop:
                    topic.last_key = key
            else:  # cannot tell: the old socket's copy until the new one delivers
                drop = conn is not new and topic.new_seen
            if not drop:
                self._emit(topic, received_at, payload)
            if first_from_new and shard.unseen <= 0:
                self._check_rotation(shard)
            return
        if conn is not topic.conn:
            return
        if topic.catching_up:
            key = self._key(topic, payload)
            if key is not None and topic.last_key is not None and key <= topic.last_key:
                return
            topic.catching_up = False
            topic.refresh()
        self._emit(topic, received_at, payload)

    def _emit(self, topic: TopicState, received_at: float, payload: Any) -> None:
        if topic.restart is not None:
            self._announce_restart(topic)
        topic.last_payload = payload
        self._fan_out(topic, (received_at, payload))

    def _announce_restart(self, topic: TopicState) -> None:
        assert topic.restart is not None
        marker = StreamRestart(topic.name, topic.restart)
        topic.restart = None
        topic.refresh()
        self._fan_out(topic, marker)

    def _fan_out(self, topic: TopicState, value: TopicMessage) -> None:
        for observer in topic.observers:
            try:
                observer.on_next(value)
            except Exception as exc:
                self._observer_failed(topic, observer, exc)

    def _observer_failed(
        self, topic: TopicState, observer: abc.ObserverBase[TopicMessage], error: Exception
    ) -> None:
        """An observer (or its pipeline) raised: report it, detach it, tell it."""
        self._report_error(error)
        self._detach(topic, observer)
        with contextlib.suppress(Exception):  # no on_error given: the default re-raises
            observer.on_error(error)

    def _on_control(self, conn: Conn, message: Any, raw: bytes | str) -> None:
        try:
            control = self._protocol.control(message)
        except Exception as exc:
            self._report_error(ParseError(f"cannot classify frame on {conn.id} ({exc!r})", raw))
            return
        kind = control.kind
        try:
            if kind is ControlKind.ACK:
                self._on_ack(conn, control)
            elif kind is ControlKind.ERROR:
                self._on_request_error(conn, control)
            elif kind is ControlKind.SHUTDOWN:
                if conn is conn.shard.primary:
                    self._rotate(conn.shard, control.message or "server shutdown")
            elif kind is ControlKind.UNKNOWN:
                self._report_error(ParseError(f"unrecognised message on {conn.id}", raw))
        except Exception as exc:  # never let one odd answer look like a dead socket
            self._report_error(exc)

    def _on_ack(self, conn: Conn, control: Control) -> None:
        request = self._take_request(conn, control.request_id)
        if request is None:
            return
        self._renewed(conn, request)
        if request.subscribe:
            wanted = conn.wanted
            conn.acked.update(name for name in request.topics if name in wanted)
            # A restart is announced once the topic is subscribed again, not with its
            # first message: a quiet feed must learn at once that it missed something
            # (a trade feed backfills then; issue 15/16).
            for name in request.topics:
                topic = conn.shard.topics.get(name)
                if topic is not None and topic.restart is not None and topic.conn is conn:
                    self._announce_restart(topic)
            if conn is conn.shard.replacement:
                self._check_rotation(conn.shard)

    def _on_request_error(self, conn: Conn, control: Control) -> None:
        request = self._take_request(conn, control.request_id)
        if request is None:
            self._report_error(
                ExchangeError(
                    f"{conn.id}: {control.message or 'error'}",
                    exchange=self._protocol.name,
                    code=control.code,
                )
            )
            return
        message = control.message or "rejected"
        if not request.subscribe:
            self._renewed(conn, request)
            self._report_error(
                SubscriptionError(
                    request.topics[0],
                    f"UNSUBSCRIBE of {len(request.topics)} stream(s) rejected: {message}",
                    control.code,
                )
            )
            return
        result = control.result
        named = (
            [name for name in result if name in request.topics]
            if isinstance(result, tuple | list)
            else []
        )
        failed = named or list(request.topics)
        if named:  # the venue said which ones; the rest of the request went through
            conn.acked.update(n for n in request.topics if n not in named and n in conn.wanted)
        for name in failed:
            conn.wanted.pop(name, None)
            conn.renew.pop(name, None)
        shard = conn.shard
        live = [name for name in failed if name in shard.topics]
        if len(live) == 1 or (named and live):
            for name in live:
                self._fail_topic(name, SubscriptionError(name, message, control.code))
        elif live:
            # One bad topic rejects the whole batch: retry the halves on their own so
            # only the culprit fails.
            half = (len(live) + 1) // 2
            conn.retry_batches.append(live[:half])
            conn.retry_batches.append(live[half:])
            conn.retrying.update(live)
            self._touch(shard)
        if conn is shard.replacement:
            self._check_rotation(shard)

    # ================================================================ reporting

    def _report_error(self, error: Exception) -> None:
        try:
            self._report_error_cb(error)
        except Exception:
            _log.exception("report_error_failed", error=repr(error))

    def _report_state(self, event: ConnectionEvent) -> None:
        try:
            self._report_state_cb(event)
        except Exception:
            _log.exception("report_state_failed", state=event.state.value)
