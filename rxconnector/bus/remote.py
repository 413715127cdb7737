"""``RemoteConnector``: the published feeds back as Observables, on any machine.

::

    redis-server ─XREAD / XREADGROUP (one blocking reader task per stream)─▶ decode
                 ─▶ share() ─▶ subscribers      (gap markers ─▶ errors)
    heartbeats + publisher events (polled) ─▶ connection_state

The feed methods have the same names, arguments and models as
:class:`~rxconnector.Connector`'s for what a publisher publishes, so a strategy written
against a ``Connector`` runs unchanged against a ``RemoteConnector``.

Reading modes:

* ``group=None``: every RemoteConnector sees every entry once, from ``start``
  (``"$"``: the live end, resolved to an entry id at the first read so a Redis
  reconnect never skips entries still in retention; ``"0"``: the start of retention;
  or an entry id to continue after).
* ``group="g"``: reads through consumer group ``g`` as ``consumer``. An entry is
  acknowledged once every subscriber's ``on_next`` returned for its whole batch (at most
  500 entries), so a restarted consumer resumes at its first unacknowledged entry:
  at-least-once, at most one batch delivered twice. Entries left unacknowledged by
  another consumer for ``claim_idle_ms`` are claimed (XAUTOCLAIM) when a consumer starts
  reading. Separate groups each see everything.

Trade feeds of venues with consecutive ids (Binance) are checked as they arrive
(:class:`~rxconnector.bus.tape.TradeTape`): an id at or below the last one delivered is
dropped (Redis lost entries and the publisher wrote them again), and a jump that no gap
marker explains is reported on ``errors`` as a ``FeedGapError`` with the exact ids. In a
consumer group only repeats are dropped (each member sees a share of the ids), and
entries claimed from another member are delivered unchecked.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from rxconnector._scheduling import loop_scheduler, now_ms
from rxconnector.bus._timing import backoff_delay, sleep_on
from rxconnector.bus.heartbeat import HeartbeatTracker
from rxconnector.bus.keys import events_key, heartbeats_key, normalize_venue, stream_key
from rxconnector.bus.reader import Route, Stopped, StreamReader, as_text, until_stopped
from rxconnector.bus.tape import TradeTape, consecutive_trade_ids
from rxconnector.errors import ParseError, RxConnectorError
from rxconnector.log import get_logger
from rxconnector.market_data import MarketData
from rxconnector.models import (
    AvgPrice,
    BookTicker,
    ConnectionEvent,
    ConnectionState,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Ticker,
    Trade,
)
from rxconnector.operators import isolate, share

__all__ = ["RemoteConnector"]

_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")


def _safe_url(url: str) -> str:
    """The Redis URL without its password (for events and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class RemoteConnector:
    """Feeds published to Redis Streams by ``rxconnector publish``, as Observables.

    Args:
        redis_url: e.g. ``redis://10.0.0.5:6379/0``.
        venue: the publisher's venue name (``binance``, ``binance-futures``, ``bybit``,
            ``bybit-linear``).
        group: consumer group to read through (None: plain reads, every entry).
        consumer: this consumer's name in the group (default ``host:pid``).
        start: ``"$"`` (live), ``"0"`` (all retention) or an entry id; for a group, where
            a newly created group starts.
        block_ms: how long one blocking read waits at most (stopping never waits for it).
        heartbeat_poll: seconds between reads of the publishers' heartbeats and events.
        claim_idle_ms: group mode: entries another consumer read and left unacknowledged
            for this long are taken over when this consumer (re)starts reading (a
            crashed consumer's work is not stranded). Give each consumer a stable
            ``consumer`` name to resume its own entries at once.
        scheduler: times reconnect backoff and heartbeat polls (default: the loop's).
        check_trade_ids: drop repeated trade ids and report unexplained id jumps
            (default: for venues with consecutive trade ids, Binance's).
    """

    def __init__(
        self,
        redis_url: str,
        venue: str = "binance",
        group: str | None = None,
        consumer: str | None = None,
        start: str = "$",
        *,
        block_ms: int = 2000,
        heartbeat_poll: float = 1.0,
        claim_idle_ms: int = 60_000,
        scheduler: abc.SchedulerBase | None = None,
        check_trade_ids: bool | None = None,
    ) -> None:
        if consumer is not None and group is None:
            raise ValueError("consumer needs a group")
        if start not in ("$", "0") and not _ENTRY_ID.match(start):
            raise ValueError(f"start must be '$', '0' or an entry id like '1712-0', got {start!r}")
        if block_ms < 1:
            raise ValueError(f"block_ms must be >= 1, got {block_ms}")
        if heartbeat_poll <= 0:
            raise ValueError(f"heartbeat_poll must be > 0, got {heartbeat_poll}")
        if claim_idle_ms < 0:
            raise ValueError(f"claim_idle_ms must be >= 0, got {claim_idle_ms}")
        self.claim_idle_ms = claim_idle_ms
        self.venue = normalize_venue(venue)
        self.group = group
        self.consumer = consumer or (f"{socket.gethostname()}:{os.getpid()}" if group else None)
        self.start_id = start
        self.block_ms = block_ms
        self.heartbeat_poll = heartbeat_poll
        self._url = redis_url
        self._public_url = _safe_url(redis_url)
        self._scheduler_override = scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._log = get_logger(component="remote", venue=self.venue)
        self._errors: Subject[Exception] = Subject()
        self._states: Subject[ConnectionEvent] = Subject()
        self._errors_view: Observable[Exception] = self._errors.pipe(isolate())
        self._states_view: Observable[ConnectionEvent] = self._states.pipe(isolate())
        self._latest_states: dict[str, ConnectionEvent] = {}
        self._feeds: dict[str, Observable[Any]] = {}
        self._readers: set[asyncio.Task[None]] = set()
        self._stop_future: asyncio.Future[None] | None = None
        self._reader: StreamReader | None = None
        self._check_ids = (
            consecutive_trade_ids(self.venue) if check_trade_ids is None else check_trade_ids
        )
        self._mux: asyncio.Task[None] | None = None
        self._tracker = HeartbeatTracker(self._public_url)
        self._redis_down = 0
        self._started = False
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> RemoteConnector:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._started and not self._stopped

    async def start(self) -> None:
        """Start watching the publishers' health. Redis need not be up yet."""
        if self._stopped:
            raise RxConnectorError("this RemoteConnector was stopped; create a new one")
        if self._started:
            return
        self._started = True
        self._scheduler = self._scheduler_override or loop_scheduler()
        self._stop_future = asyncio.get_running_loop().create_future()
        self._reader = StreamReader(
            self._url,
            self._stop_future,
            group=self.group,
            consumer=self.consumer,
            start_id=self.start_id,
            block_ms=self.block_ms,
            claim_idle_ms=self.claim_idle_ms,
            scheduler=lambda: self._scheduler or loop_scheduler(),
            report=self._report,
            redis_ok=self._redis_ok,
            redis_failed=self._redis_failed,
        )
        self._spawn(self._watch_health())

    async def stop(self) -> None:
        """Complete every feed and end every reader task promptly (even one blocked in a
        read: the read is raced against the stop, never waited for)."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        assert self._stop_future is not None
        if not self._stop_future.done():
            self._stop_future.set_result(None)
        readers = list(self._readers)
        if readers:
            await asyncio.wait(readers, timeout=5.0)
        for task in readers:
            if not task.done():
                task.cancel()
        routes = list(self._routes.values())
        self._routes.clear()
        for route in routes:
            route.observer.on_completed()
        self._states.on_completed()
        self._errors.on_completed()

    # -- health ---------------------------------------------------------------------------

    @property
    def errors(self) -> Observable[Exception]:
        """Gap markers (book resyncs, lost trade ranges), malformed entries and Redis
        outages, as ``Connector.errors`` reports them locally. Hot; completes on stop."""
        return self._errors_view

    @property
    def connection_state(self) -> Observable[ConnectionEvent]:
        """Redis (``redis``), each publisher's liveness (``publisher:{holder}``: CONNECTED,
        STALE after 3 missed heartbeats, CLOSED at a clean stop) and the publishers'
        exchange connection events (``{holder}/{connection id}``). A new subscriber first
        gets the latest event of each, then live ones."""

        def build(_: abc.SchedulerBase | None) -> Observable[ConnectionEvent]:
            latest = list(self._latest_states.values())
            return reactivex.from_iterable(latest).pipe(ops.concat(self._states_view))

        return reactivex.defer(build)

    @property
    def publishers_alive(self) -> list[str]:
        """Holders whose heartbeat is fresh."""
        return self._tracker.alive

    # -- feeds (the same names, arguments and models as Connector) ----------------------

    def ticker(self, symbol: str) -> Observable[Ticker]:
        """24 h rolling ticker of ``symbol``."""
        return self._feed("ticker", symbol)

    def mini_ticker(self, symbol: str) -> Observable[MiniTicker]:
        """24 h rolling OHLC and volume of ``symbol``."""
        return self._feed("mini_ticker", symbol)

    def book_ticker(self, symbol: str) -> Observable[BookTicker]:
        """Best bid/ask of ``symbol``."""
        return self._feed("book_ticker", symbol)

    def klines(self, symbol: str, interval: str) -> Observable[Kline]:
        """Candles of ``symbol`` for ``interval``."""
        return self._feed("klines", symbol, interval)

    def depth(self, symbol: str, levels: int = 20) -> Observable[OrderBook]:
        """The exchange's partial book (top ``levels``) as the publisher received it."""
        return self._feed("depth", symbol, _positive("levels", levels))

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        """Binance's rolling average price."""
        return self._feed("avg_price", symbol)

    def mark_price(self, symbol: str) -> Observable[MarkPrice]:
        """Futures mark price with funding rate and next funding time."""
        return self._feed("mark_price", symbol)

    def liquidations(self, symbol: str) -> Observable[Liquidation]:
        """Futures forced liquidations of ``symbol``."""
        return self._feed("liquidations", symbol)

    def trades(self, symbol: str) -> Observable[Trade]:
        """Every trade of ``symbol`` exactly once, in id order (as the publisher wrote
        them; through a consumer group: at least once after a consumer restart)."""
        return self._feed("trades", symbol)

    def agg_trades(self, symbol: str) -> Observable[Trade]:
        """Every aggregate trade of ``symbol``, in id order (see :meth:`trades`)."""
        return self._feed("agg_trades", symbol)

    def order_book(self, symbol: str, depth: int = 20) -> Observable[OrderBook]:
        """The publisher's consistent top-``depth`` book (published with ``--depth``)."""
        return self._feed("order_book", symbol, _positive("depth", depth))

    # -- internals ------------------------------------------------------------------------

    def _feed(self, feed: str, symbol: str, *args: Any) -> Observable[Any]:
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
        key = stream_key(self.venue, feed, symbol, *args)
        cached = self._feeds.get(key)
        if cached is not None:
            return cached

        def subscribe(
            observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if not self.started:
                observer.on_error(
                    RxConnectorError(
                        "the RemoteConnector is not running: subscribe between start() and stop()"
                    )
                )
                return Disposable()
            reader = self._reader
            assert reader is not None
            route = Route(key, observer)
            reader.routes[key] = route
            if self._check_ids and feed in ("trades", "agg_trades"):
                reader.tapes[key] = TradeTape(key, report_holes=self.group is None)
            reader.changed()
            if self._mux is None or self._mux.done():
                self._mux = self._spawn(reader.run())

            def dispose() -> None:
                if reader.routes.get(key) is route:
                    del reader.routes[key]
                    reader.changed()

            return Disposable(dispose)

        feed_observable: Observable[Any] = Observable(subscribe).pipe(
            share(on_subscriber_error=self._report)
        )
        self._feeds[key] = feed_observable
        return feed_observable

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._readers.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._readers.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self._log.error("reader task failed", error=repr(t.exception()))
                self._report(RxConnectorError(f"reader task failed: {t.exception()!r}"))

        task.add_done_callback(done)
        return task

    def _report(self, error: Exception) -> None:
        if not self._stopped:
            self._errors.on_next(error)

    def _on_state(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.CLOSED:
            self._latest_states.pop(event.connection_id, None)
        else:
            self._latest_states[event.connection_id] = event
        if not self._stopped:
            self._states.on_next(event)

    def _redis_ok(self) -> None:
        if self._redis_down:
            self._redis_down = 0
            self._on_state(
                ConnectionEvent(ConnectionState.CONNECTED, "redis", self._public_url, self._now())
            )
        elif "redis" not in self._latest_states:
            self._on_state(
                ConnectionEvent(ConnectionState.CONNECTED, "redis", self._public_url, self._now())
            )

    def _redis_failed(self, error: Exception) -> float:
        self._redis_down += 1
        delay = backoff_delay(self._redis_down)
        if self._redis_down == 1:
            self._report(RxConnectorError(f"redis unavailable: {type(error).__name__}: {error}"))
        self._on_state(
            ConnectionEvent(
                ConnectionState.RECONNECTING,
                "redis",
                self._public_url,
                self._now(),
                attempt=self._redis_down,
                delay=delay,
                reason=f"{type(error).__name__}: {error}",
            )
        )
        return delay

    @property
    def _routes(self) -> dict[str, Route]:
        """The subscribed streams (empty before start)."""
        return self._reader.routes if self._reader is not None else {}

    async def _until(self, awaitable: Any, *also: asyncio.Future[None] | None) -> Any:
        assert self._stop_future is not None
        return await until_stopped(awaitable, self._stop_future, *also)

    def _now(self) -> float:
        return now_ms(self._scheduler or loop_scheduler())

    async def _watch_health(self) -> None:
        """Poll the publishers' heartbeats and connection events every heartbeat_poll."""
        scheduler = self._scheduler or loop_scheduler()
        assert self._stop_future is not None
        stop = self._stop_future
        client: Any = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        events = events_key(self.venue)
        beats_key = heartbeats_key(self.venue)
        last_event: str | None = None
        try:
            while not stop.done():
                try:
                    if last_event is None:
                        newest = await self._until(client.xrevrange(events, count=1), stop)
                        last_event = as_text(newest[0][0]) if newest else "0-0"
                    raw = await self._until(client.hgetall(beats_key), stop)
                    beats = {as_text(h): orjson.loads(v) for h, v in raw.items()}
                    for event in self._tracker.observe(beats, self._now()):
                        self._on_state(event)
                    reply = await self._until(client.xread({events: last_event}, count=1000), stop)
                    for _stream, entries in reply or ():
                        for entry_id, fields in entries:
                            last_event = as_text(entry_id)
                            self._forward_event(fields)
                    self._redis_ok()
                    delay = self.heartbeat_poll
                except Stopped:
                    return
                except (RedisError, OSError, orjson.JSONDecodeError) as exc:
                    delay = self._redis_failed(exc)
                try:
                    await self._until(sleep_on(scheduler, delay), stop)
                except Stopped:
                    return
        finally:
            await asyncio.shield(client.aclose())

    def _forward_event(self, fields: Any) -> None:
        try:
            data = orjson.loads(fields.get(b"data") or fields.get("data") or b"{}")
            event = ConnectionEvent(
                ConnectionState(data["state"]),
                f"{data['holder']}/{data['connection_id']}",
                str(data.get("url", "")),
                float(data.get("time", 0.0)),
                attempt=int(data.get("attempt", 0)),
                delay=float(data.get("delay", 0.0)),
                reason=str(data.get("reason", "")),
            )
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as exc:
            self._report(ParseError(f"{self.venue} events: bad entry: {exc!r}", repr(fields)))
            return
        self._on_state(event)


def _positive(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


if TYPE_CHECKING:

    def _satisfies(conn: RemoteConnector) -> MarketData:
        """mypy checks here that the published feeds read back as the Connector's."""
        return conn
