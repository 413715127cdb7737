"""The feed handler: a Connector's normalized feeds written to Redis Streams.

::

    exchange ─ws/rest─▶ Connector ─▶ trades / order_book / ticker ... (gapless, consistent)
                                    │ encode (codec)          one bounded buffer per stream
                                    ▼
                         flush task ─▶ EVALSHA FENCED_APPEND_MANY (pipelined, <= 500 entries
                                       of one or more streams per call)
                                    ▶ redis-server: rxc:{venue}:{feed}:{SYMBOL}
    lease task:     ACQUIRE_OR_RENEW per stream every lease/3 (hot standby polls the same way)
    heartbeat task: HSET rxc:{venue}:heartbeats {holder} {feeds, lag, connections}

Promises, and how they are kept:

* **Trades exactly once, in id order.** The feeds are ``Connector.trades``/``agg_trades``
  (gapless across exchange reconnects). When a publisher starts writing a trade stream
  (first start, restart, takeover, or after its buffer overflowed) it reads the last trade
  id already in the stream and backfills from the next id over REST before live trades;
  the write script skips ids at or below the last written one. A range that cannot be
  backfilled becomes a gap marker with the exact ids.
* **An empty (or older) Redis after a restart or failover.** Every fenced write of a
  trade stream names the last id this publisher had acknowledged (``after``); a server
  that lost it refuses the write (-2) instead of silently continuing after a hole. The
  publisher then reads the stream's last id and writes the missing trades again, from
  the ring of the last ``rewrite_ring`` acknowledged entries it keeps per stream, or over
  REST (the restart backfill) when the ring does not reach back that far.
* **Failover.** Each stream has a lease; only its holder writes, every write is fenced
  (see :mod:`rxconnector.bus.fencing`). A standby polls the lease and takes over when it
  expires.
* **Back-pressure without blocking.** Feeds append encoded entries to a per-stream buffer
  of ``buffer_limit`` entries. When Redis is slow or down, non-trade streams drop their
  oldest entries (counted, then announced by a gap marker once Redis is back); a trade
  stream stops buffering instead and later backfills the missing ids over REST. Memory is
  bounded by ``streams x buffer_limit x entry size``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from reactivex import Observable, abc
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from rxconnector._scheduling import loop_scheduler
from rxconnector.bus._timing import backoff_delay, sleep_on
from rxconnector.bus.codec import encode_gap, record_of
from rxconnector.bus.fencing import ACQUIRE_OR_RENEW, FENCED_APPEND_MANY, RELEASE
from rxconnector.bus.flush import Flight, answers_of, queue_round
from rxconnector.bus.heartbeat import event_entry
from rxconnector.bus.keys import (
    events_key,
    heartbeats_key,
    normalize_venue,
)
from rxconnector.bus.restart import last_seq, requeue_from_ring, trades_after
from rxconnector.bus.slots import (
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_REWRITE_RING,
    FeedTarget,
    PublisherStats,
    StreamSlot,
    check_settings,
)
from rxconnector.config import Config
from rxconnector.connector import Connector
from rxconnector.errors import FeedGapError, RxConnectorError
from rxconnector.log import get_logger
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.venues import key_name

__all__ = [
    "DEFAULT_LEASE_MS",
    "DEFAULT_MAXLEN",
    "Publisher",
    "default_venue_name",
]

DEFAULT_MAXLEN = 1_000_000
DEFAULT_LEASE_MS = 5_000
#: Largest id range a publisher backfills over REST when it (re)starts a trade stream.
DEFAULT_MAX_RESTART_BACKFILL = 100_000
#: Publisher connection events kept in ``rxc:{venue}:events``.
EVENTS_MAXLEN = 1_000


def default_venue_name(config: Config) -> str:
    """The key name of a Config's venue: binance, binance-futures, bybit, bybit-linear."""
    return key_name(config)


class Publisher:
    """Publishes feeds of one venue to Redis Streams; ``async with`` runs it.

    Args:
        config: the venue (with ``rest_url``/``ws_url`` overrides if any).
        redis_url: e.g. ``redis://127.0.0.1:6379/0``.
        targets: the feeds to publish.
        venue: the venue's name in the keys (default from ``config``).
        maxlen: approximate retention per stream (``XADD MAXLEN ~``).
        lease_ms: lease time; renewed every third of it; a standby takes over within
            about ``lease_ms`` plus one poll after the holder died.
        heartbeat_interval: seconds between heartbeats (consumers call a publisher
            stale after three missed ones).
        buffer_limit: entries buffered per stream while Redis is slow or down.
        max_restart_backfill: largest trade id range backfilled over REST when a trade
            stream (re)starts or Redis lost more than the ring holds.
        rewrite_ring: acknowledged trade entries kept per trade stream (memory: this
            many encoded entries, ~200 bytes each) to write again into a Redis that lost
            them (restarted empty, failed over to a replica that lagged).
        holder: this publisher's name in leases and heartbeats (default host:pid:nonce).
        connector: an existing (not started) Connector to use instead of one built from
            ``config`` (the publisher starts and stops it).
        scheduler: times the lease, heartbeat and reconnect backoff (default: the loop's).
        report: receives every non-fatal problem (default: logged).
    """

    def __init__(
        self,
        config: Config,
        redis_url: str,
        targets: Sequence[FeedTarget],
        *,
        venue: str | None = None,
        maxlen: int = DEFAULT_MAXLEN,
        lease_ms: int = DEFAULT_LEASE_MS,
        heartbeat_interval: float = 1.0,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        max_restart_backfill: int = DEFAULT_MAX_RESTART_BACKFILL,
        rewrite_ring: int = DEFAULT_REWRITE_RING,
        holder: str | None = None,
        connector: Connector | None = None,
        scheduler: abc.SchedulerBase | None = None,
        report: Callable[[Exception], None] | None = None,
    ) -> None:
        check_settings(targets, maxlen, lease_ms, buffer_limit, rewrite_ring, heartbeat_interval)
        self.config = config
        self.venue = normalize_venue(venue or default_venue_name(config))
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.maxlen = maxlen
        self.lease_ms = lease_ms
        self.heartbeat_interval = heartbeat_interval
        self.max_restart_backfill = max_restart_backfill
        self._redis_url = redis_url
        self._connector = connector or Connector(config)
        self._scheduler_override = scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._report_to = report
        self._log = get_logger(component="publisher", venue=self.venue)
        self._slots = self._make_slots(targets, buffer_limit, rewrite_ring)
        self._events: deque[bytes] = deque(maxlen=EVENTS_MAXLEN)
        self._connections: dict[str, str] = {}
        self._redis: Any = None
        self._append: Any = None
        self._script_loaded = False
        self._acquire: Any = None
        self._release: Any = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[abc.DisposableBase] = []
        self._redis_up = False
        self._redis_failures = 0
        self._started = False
        self._stopping = False
        #: observers of write latency (seconds per fenced batch) and problems: metrics
        self.on_write: list[Callable[[float, int], None]] = []
        self.redis_state: list[Callable[[bool], None]] = []

    def _make_slots(
        self, targets: Sequence[FeedTarget], buffer_limit: int, rewrite_ring: int
    ) -> list[StreamSlot]:
        keys = [t.key(self.venue) for t in targets]
        if len(set(keys)) != len(keys):
            raise ValueError("a feed is listed twice")
        slots = [
            StreamSlot(t, k, self.holder, buffer_limit, rewrite_ring)
            for t, k in zip(targets, keys, strict=True)
        ]
        if self._connector.venue.trade_continuity != "ids":
            # Bybit trade ids are not consecutive numbers (UUIDs on linear): no id order
            # to check in the stream, no id range to backfill; the local feed's overlap
            # check is what there is (README: limits).
            for slot in slots:
                slot.monotonic = False
        return slots

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def connector(self) -> Connector:
        """The exchange connector the feeds come from (its health Observables too)."""
        return self._connector

    @property
    def redis_up(self) -> bool:
        return self._redis_up

    def stats(self) -> list[PublisherStats]:
        return [slot.stats() for slot in self._slots]

    async def start(self) -> None:
        """Start the connector and the lease, flush and heartbeat tasks.

        Redis need not be up: the publisher keeps trying with backoff and reports it.
        """
        if self._started:
            return
        self._started = True
        self._scheduler = self._scheduler_override or loop_scheduler()
        self._redis = aioredis.Redis.from_url(
            self._redis_url, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self._append = self._redis.register_script(FENCED_APPEND_MANY)
        self._acquire = self._redis.register_script(ACQUIRE_OR_RENEW)
        self._release = self._redis.register_script(RELEASE)
        try:
            await self._connector.start()
        except BaseException:
            # ``async with`` never reaches __aexit__ then: release what start() opened
            await asyncio.shield(self.stop())
            raise
        conn = self._connector
        self._subscriptions.append(conn.errors.subscribe(self._on_connector_error))
        self._subscriptions.append(conn.connection_state.subscribe(self._on_connection_event))
        for coro in (self._lease_loop(), self._flush_loop(), self._heartbeat_loop()):
            task = asyncio.get_running_loop().create_task(coro)
            task.add_done_callback(self._task_done)
            self._tasks.append(task)

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Stop the feeds, write what is buffered (up to ``flush_timeout`` s), release
        the leases (a standby takes over at once) and stop the connector."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        for slot in self._slots:
            slot.detach()
        for sub in self._subscriptions:
            sub.dispose()
        flush = self._tasks[1] if len(self._tasks) > 1 else None
        self._wake.set()
        if flush is not None:
            done, _ = await asyncio.wait([flush], timeout=flush_timeout)
            if not done:
                self._log.warning("buffer not fully written at stop", timeout=flush_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._redis is not None:
            try:
                async with asyncio.timeout(2.0):
                    for slot in self._slots:
                        if slot.holding:
                            await self._release(keys=[slot.lease], args=[slot.token])
                    await self._redis.hdel(heartbeats_key(self.venue), self.holder)
            except (RedisError, OSError, TimeoutError) as exc:
                self._log.info("could not release leases at stop", error=repr(exc))
            await self._redis.aclose()
        await self._connector.stop()

    # -- feeds -> buffers ---------------------------------------------------------------

    def _scheduler_now(self) -> abc.SchedulerBase:
        return self._scheduler or loop_scheduler()

    def _report(self, error: Exception) -> None:
        if self._report_to is not None:
            self._report_to(error)
        else:
            self._log.warning("publisher problem", error=str(error), kind=type(error).__name__)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error("publisher task failed", error=repr(task.exception()))
            self._report(RxConnectorError(f"publisher task failed: {task.exception()!r}"))

    def _topic_of(self, slot: StreamSlot) -> str:
        """The wire topic of a slot's feed (what the connector's FeedGapErrors name)."""
        feeds, target = self._connector.venue.feeds, slot.target
        if target.feed != "order_book":
            return str(getattr(feeds, target.feed)(target.symbol, *target.args).topic)
        if target.args:
            return feeds.book_diffs(target.symbol, int(target.args[0])).topic
        return feeds.diff_depth(target.symbol).topic

    def _on_connector_error(self, error: Exception) -> None:
        if isinstance(error, FeedGapError):
            for slot in self._slots:
                if slot.holding and not slot.suspended and self._topic_of(slot) == error.topic:
                    self._push_marker(slot, error)
        self._report(error)

    def _push_marker(self, slot: StreamSlot, error: FeedGapError) -> None:
        slot.gaps += 1
        reason = str(error)
        prefix = f"{error.topic}: "
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
        slot.buffer.append(record_of(encode_gap(reason, error.first_missing, error.last_missing)))
        self._wake.set()

    def _on_connection_event(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.CLOSED:
            self._connections.pop(event.connection_id, None)
        else:
            self._connections[event.connection_id] = event.state.value
        self._events.append(event_entry(self.holder, event))
        self._wake.set()

    def _make_on_next(self, slot: StreamSlot) -> Callable[[Any], None]:
        wake = self._wake

        def on_next(model: Any) -> None:
            if slot.suspended:
                return
            try:
                taken = slot.offer(model)
            except (TypeError, ValueError) as exc:  # never let one model end the feed
                self._report(RxConnectorError(f"{slot.key}: cannot encode {model!r}: {exc}"))
                return
            if taken:
                wake.set()
            elif slot.monotonic:  # suspended
                # Never drop a trade silently: stop buffering; the ids after the last
                # buffered one are backfilled over REST once Redis drains.
                slot.detach()
                self._log.warning(
                    "trade buffer full: suspended until Redis drains, then backfilled",
                    stream=slot.key,
                )

        return on_next

    async def _begin(self, slot: StreamSlot) -> None:
        """Start (or resume) writing ``slot``: for trades, after the stream's last id."""
        slot.starting = True
        try:
            feed: Observable[Any]
            if slot.monotonic:
                last = slot.last_buffered
                if last is None:
                    last = await last_seq(self._redis, slot)
                    if slot.written_last is None:
                        slot.written_last = last
                feed = trades_after(
                    slot,
                    last,
                    self._connector,
                    max_backfill=self.max_restart_backfill,
                    on_gap=lambda error: self._push_marker(slot, error),
                    report=self._report,
                    scheduler=self._scheduler,
                )
            else:
                feed = slot.target.open(self._connector)
            if not slot.holding or self._stopping:
                return
            slot.suspended = False
            on_next = self._make_on_next(slot)

            def on_error(error: Exception, slot: StreamSlot = slot) -> None:
                slot.subscription = None
                self._report(
                    RxConnectorError(f"{slot.key}: feed failed: {type(error).__name__}: {error}")
                )

            slot.subscription = feed.subscribe(on_next, on_error)
        finally:
            slot.starting = False

    # -- leases -------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        scheduler = self._scheduler_now()
        period = self.lease_ms / 3000.0
        while not self._stopping:
            try:
                await self._tend_leases()
            except (RedisError, OSError) as exc:
                self._set_redis(False, exc)
            await sleep_on(scheduler, period)

    async def _tend_leases(self) -> None:
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for slot in self._slots:
                await self._acquire(
                    keys=[slot.lease], args=[slot.token, self.lease_ms], client=pipe
                )
            results = await pipe.execute()
        self._set_redis(True)
        for slot, result in zip(self._slots, results, strict=True):
            if int(result) > 0:
                if not slot.holding:
                    slot.holding = True
                    self._log.info("lease acquired", stream=slot.key, holder=self.holder)
                    await self._begin_or_retry(slot)
                elif slot.suspended and slot.drained and not slot.starting:
                    await self._begin_or_retry(slot)
            elif slot.holding:
                self._lose(slot, "lease held by another publisher")

    async def _begin_or_retry(self, slot: StreamSlot) -> None:
        """``_begin``; if Redis fails meanwhile (reading the last id), the stream is
        started again on the next lease round instead of being held without a feed."""
        try:
            await self._begin(slot)
        except BaseException:
            if slot.subscription is None:
                slot.holding = False
            raise

    def _lose(self, slot: StreamSlot, why: str) -> None:
        self._log.warning("lease lost: stopped writing", stream=slot.key, why=why)
        slot.holding = False
        slot.detach()
        slot.reset()
        slot.suspended = False
        slot.dropped_pending = 0
        slot.written_last = None
        slot.ring.clear()

    # -- writes -------------------------------------------------------------------------

    def _set_redis(self, up: bool, error: Exception | None = None) -> None:
        if up:
            self._redis_failures = 0
        else:
            self._redis_failures += 1
        if up != self._redis_up or (error is not None and self._redis_failures == 1):
            self._redis_up = up
            if error is not None:
                self._report(
                    RxConnectorError(f"redis unavailable: {type(error).__name__}: {error}")
                )
            for hook in self.redis_state:
                hook(up)

    async def _flush_loop(self) -> None:
        scheduler = self._scheduler_now()
        while True:
            if not self._pending():
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._flush_once()
            except (RedisError, OSError) as exc:
                self._script_loaded = False  # the server we reconnect to may be new
                self._set_redis(False, exc)
                await sleep_on(scheduler, backoff_delay(self._redis_failures))

    def _pending(self) -> bool:
        return bool(self._events) or any(
            s.holding and (s.buffer or s.dropped_pending) for s in self._slots
        )

    async def _flush_once(self) -> None:
        """One pipelined round trip: the buffered connection events, then up to
        ``ROUND`` fenced batches per held stream (:class:`~rxconnector.bus.flush.Flight`),
        packed into script calls of up to ``BATCH`` entries (many streams, one call)."""
        assert self._redis is not None
        if not self._script_loaded:
            # once per connection to a server: a restarted Redis has no scripts
            await self._redis.script_load(FENCED_APPEND_MANY)
            self._script_loaded = True
        events = list(self._events)
        flights = [
            Flight(slot)
            for slot in self._slots
            if slot.holding and (slot.buffer or slot.dropped_pending)
        ]
        started = time.perf_counter()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(
                        events_key(self.venue),
                        {"data": event},
                        maxlen=EVENTS_MAXLEN,
                        approximate=True,
                    )
                calls = queue_round(pipe, self._append.sha, flights, self.lease_ms, self.maxlen)
                results = await pipe.execute(raise_on_error=False)
        except BaseException:
            for flight in flights:  # nothing answered: all of it is written again
                flight.settle([RedisError("no answer")] * len(flight.sizes), 0.0)
            raise
        elapsed = time.perf_counter() - started
        for _ in events:
            self._events.popleft()
        self._set_redis(True)
        await self._settle(flights, answers_of(calls, results[len(events) :]), elapsed)

    async def _settle(
        self, flights: list[Flight], answered: dict[Flight, list[Any]], elapsed: float
    ) -> None:
        now = time.time() * 1000.0
        written_total = 0
        lost: list[StreamSlot] = []
        errors: list[Exception] = []
        for flight in flights:
            outcome, written = flight.settle(answered.get(flight, []), now)
            written_total += written
            if outcome == "refused":
                self._lose(flight.slot, "fenced write refused")
            elif outcome == "lost":
                lost.append(flight.slot)
            if flight.script_missing:
                self._script_loaded = False  # Redis restarted: load it, write again
            elif flight.error is not None:
                errors.append(flight.error)
        for hook in self.on_write:
            hook(elapsed, written_total)
        for slot in lost:
            await self._rewrite_lost(slot)
        if errors:
            first = errors[0]
            raise first if isinstance(first, RedisError) else RedisError(repr(first))

    async def _rewrite_lost(self, slot: StreamSlot) -> None:
        """Redis no longer has trades it acknowledged: queue them again in front of the
        buffer from the ring, or (when the ring does not reach back to the stream's last
        id) restart the stream with the REST backfill after that id."""
        if not slot.holding or slot.written_last is None:
            return
        have = await last_seq(self._redis, slot)
        acknowledged = slot.written_last
        if have is not None and have >= acknowledged:
            return  # not lost after all (another writer caught up)
        how = requeue_from_ring(slot, have)
        if how is None:
            # beyond the ring: the restart path, backfilled over REST from ``have``
            slot.detach()
            slot.reset()
            slot.ring.clear()
            # suspended until _begin subscribes: if it fails (Redis gone again), the
            # lease loop starts the stream again instead of holding it without a feed
            slot.suspended = True
            slot.written_last = have
            await self._begin(slot)
            first_lost = 1 if have is None else have + 1
            how = f"ids {first_lost}..{acknowledged} backfilled over REST"
        self._report(
            RxConnectorError(
                f"{slot.key}: redis lost acknowledged trades (its last id is {have}, "
                f"{acknowledged} was written): {how}"
            )
        )
        self._wake.set()

    # -- heartbeat ----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        scheduler = self._scheduler_now()
        while not self._stopping:
            try:
                await self._beat()
            except (RedisError, OSError) as exc:
                self._set_redis(False, exc)
            await sleep_on(scheduler, self.heartbeat_interval)

    def heartbeat(self) -> dict[str, Any]:
        """What the heartbeat says about this publisher (also its status line)."""
        return {
            "holder": self.holder,
            "time": time.time() * 1000.0,
            "period_ms": self.heartbeat_interval * 1000.0,
            "redis": self._redis_up,
            "connections": dict(self._connections),
            "feeds": {s.key: s.health() for s in self._slots},
        }

    async def _beat(self) -> None:
        assert self._redis is not None
        await self._redis.hset(
            heartbeats_key(self.venue), self.holder, orjson.dumps(self.heartbeat())
        )
