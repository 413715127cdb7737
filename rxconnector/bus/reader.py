"""The reading side of :class:`~rxconnector.bus.remote.RemoteConnector`: one task reads
every subscribed stream over one connection (XREAD, or XREADGROUP for a consumer group),
decodes each entry and hands it to the stream's one observer (the shared feed).

::

    routes (key -> observer, resume id) ─▶ XREAD BLOCK / XREADGROUP ">" (or "0": own
    pending entries first; XAUTOCLAIM: a dead member's) ─▶ decode ─▶ trade id check
    ─▶ observer.on_next ─▶ (group) XACK the batch

A change of the subscribed keys abandons a blocking read and starts the next at once;
stopping never waits for a read (:func:`until_stopped`). Redis errors are retried with
backoff, a lost consumer group (NOGROUP: an empty Redis) is created again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from reactivex import abc
from redis import asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from rxconnector.bus._timing import sleep_on
from rxconnector.bus.codec import decode_entry, decode_fields
from rxconnector.bus.tape import TradeTape
from rxconnector.errors import FeedGapError, ParseError

__all__ = [
    "READ_BATCH",
    "Changed",
    "Route",
    "Stopped",
    "StreamReader",
    "as_text",
    "until_stopped",
]

#: Entries per XREAD/XREADGROUP call (and per acknowledgement in group mode).
READ_BATCH = 500


class Stopped(Exception):
    """The reader was asked to stop while waiting."""


class Changed(Exception):
    """The subscribed streams changed while a read was waiting."""


class Route:
    """One subscribed stream: where its entries go and where reading resumes."""

    __slots__ = ("claim_from", "group_ready", "key", "last_id", "observer", "pending")

    def __init__(self, key: str, observer: abc.ObserverBase[Any]) -> None:
        self.key = key
        self.observer = observer
        self.last_id: str | None = None  # the last entry delivered (either mode)
        self.group_ready = False
        self.pending = True  # group mode: our own unacknowledged entries first
        self.claim_from: str | None = "0-0"  # group mode: then other consumers' stale ones


async def until_stopped(
    awaitable: Awaitable[Any], stop: asyncio.Future[None], *also: asyncio.Future[None] | None
) -> Any:
    """Await ``awaitable`` unless ``stop`` completes first (``Stopped``) or one of ``also``
    does (``Changed``).

    The read runs in its own task and is raced against those futures, so stopping
    never depends on a cancellation travelling through the Redis client (redis-py's
    ``asyncio.wait_for`` around sends can swallow one on Python 3.11).
    """
    task: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
    others = [f for f in also if f is not None]
    racers: list[asyncio.Future[Any]] = [task, stop, *others]
    try:
        await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            # The abandoned read may still end with an error instead of the
            # cancellation (redis-py can turn one into ConnectionError when the
            # connection is closed under it): retrieve it, so nothing is logged as
            # "Task exception was never retrieved".
            task.add_done_callback(_retrieve)
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    if stop.done():
        raise Stopped
    raise Changed


class StreamReader:
    """Reads the subscribed streams of one RemoteConnector (see the module docstring).

    ``routes`` and ``tapes`` are the connector's: it adds and removes routes as feeds
    are subscribed and disposed, then calls :meth:`changed`.
    """

    def __init__(
        self,
        url: str,
        stop: asyncio.Future[None],
        *,
        group: str | None,
        consumer: str | None,
        start_id: str,
        block_ms: int,
        claim_idle_ms: int,
        scheduler: Callable[[], abc.SchedulerBase],
        report: Callable[[Exception], None],
        redis_ok: Callable[[], None],
        redis_failed: Callable[[Exception], float],
    ) -> None:
        self.group = group
        self.consumer = consumer
        self.start_id = start_id
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        #: stream key -> its subscriber (the shared feed's one observer) and read state
        self.routes: dict[str, Route] = {}
        #: trade stream key -> its id check (reset with each new subscription)
        self.tapes: dict[str, TradeTape] = {}
        self._url = url
        self._stop = stop
        self._scheduler = scheduler
        self._report = report
        self._redis_ok = redis_ok
        self._redis_failed = redis_failed
        self._change: asyncio.Future[None] | None = None

    def changed(self) -> None:
        """The routes changed: abandon a blocking read over the old set of keys."""
        change = self._change
        if change is not None and not change.done():
            change.set_result(None)

    async def _until(self, awaitable: Awaitable[Any], *also: asyncio.Future[None] | None) -> Any:
        return await until_stopped(awaitable, self._stop, *also)

    async def run(self) -> None:
        """One reader for every subscribed stream: XREAD (or XREADGROUP) over all keys
        at once, one connection per RemoteConnector, reconnecting with backoff. A change
        of the subscribed keys abandons a blocking read and starts the next at once."""
        scheduler = self._scheduler()
        client: Any = aioredis.Redis.from_url(self._url, socket_connect_timeout=2.0)
        # Entries as Redis sends them (flat name/value lists, decoded directly) instead of
        # redis-py building a dict per entry first: a third of the reader's time per entry.
        for command in ("XREAD", "XREADGROUP"):
            client.set_response_callback(command, _raw_reply)
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.done():
                if self._change is None or self._change.done():
                    self._change = loop.create_future()
                change = self._change
                routes = dict(self.routes)
                try:
                    if not routes:
                        await self._until(change, None)
                        continue
                    if self.group is None:
                        await self._read_plain(client, routes, change)
                    else:
                        await self._read_group(client, routes, change)
                    self._redis_ok()
                except Stopped:
                    return
                except Changed:
                    # an abandoned group read may have claimed entries: read them back
                    for route in routes.values():
                        route.pending = True
                    continue
                except ResponseError as exc:
                    if "NOGROUP" in str(exc):
                        # Redis restarted (empty) or a group was deleted: create the
                        # groups again after the last entries delivered.
                        for route in routes.values():
                            route.group_ready = False
                            route.pending = True
                            route.claim_from = "0-0"
                        continue
                    raise
                except (RedisError, OSError) as exc:
                    delay = self._redis_failed(exc)
                    try:
                        await self._until(sleep_on(scheduler, delay))
                    except Stopped:
                        return
        finally:
            await asyncio.shield(client.aclose())

    async def _read_plain(
        self, client: Any, routes: dict[str, Route], change: asyncio.Future[None]
    ) -> None:
        for route in routes.values():
            if route.last_id is None:
                route.last_id = await self._until(self._resolve(client, route.key))
        streams = {key: route.last_id for key, route in routes.items()}
        reply = await self._until(
            client.xread(streams, count=READ_BATCH, block=self.block_ms), change
        )
        for stream, entries in _stream_replies(reply):
            route = routes[as_text(stream)]
            last = None
            try:
                for entry_id, fields in entries:
                    last = entry_id
                    if self.routes.get(route.key) is route:
                        self._deliver(route.key, fields, route.observer)
            finally:  # where reading resumes: after the last entry handed out
                if last is not None:
                    route.last_id = as_text(last)

    async def _read_group(
        self, client: Any, routes: dict[str, Route], change: asyncio.Future[None]
    ) -> None:
        group, consumer = self.group, self.consumer
        assert group is not None and consumer is not None
        for route in routes.values():
            if not route.group_ready:
                at = route.last_id or self.start_id
                await self._until(self._create_group(client, route.key, group, at))
                route.group_ready = True
        pending = {key: "0" for key, route in routes.items() if route.pending}
        claims = [r for r in routes.values() if not r.pending and r.claim_from is not None]
        if not pending and claims:
            await self._claim(client, claims)
            return
        if pending:  # our own unacknowledged entries first (after a restart)
            reply = await self._until(client.xreadgroup(group, consumer, pending, count=READ_BATCH))
        else:
            streams = dict.fromkeys(routes, ">")
            reply = await self._until(
                client.xreadgroup(group, consumer, streams, count=READ_BATCH, block=self.block_ms),
                change,
            )
        answered: set[str] = set()
        for stream, entries in _stream_replies(reply):
            route = routes[as_text(stream)]
            ids: list[Any] = []
            for entry_id, fields in entries:
                ids.append(entry_id)
                route.last_id = as_text(entry_id)
                if fields and self.routes.get(route.key) is route:
                    # an entry trimmed while pending has no fields
                    self._deliver(route.key, fields, route.observer)
            if ids:
                answered.add(route.key)
                await self._until(client.xack(route.key, group, *ids))
        for key in pending:
            if key not in answered:
                routes[key].pending = False

    async def _claim(self, client: Any, routes: list[Route]) -> None:
        """Take over entries another consumer of the group read but never acknowledged
        (it crashed, or restarted under another name) once they are ``claim_idle_ms``
        old: XAUTOCLAIM, deliver, acknowledge; one page per stream per call."""
        group, consumer = self.group, self.consumer
        for route in routes:
            reply = await self._until(
                client.xautoclaim(
                    route.key,
                    group,
                    consumer,
                    self.claim_idle_ms,
                    start_id=route.claim_from,
                    count=READ_BATCH,
                )
            )
            cursor, entries = as_text(reply[0]), reply[1]
            ids: list[Any] = []
            for entry_id, fields in entries:
                ids.append(entry_id)
                if fields and self.routes.get(route.key) is route:
                    self._deliver(route.key, fields, route.observer, checked=False)
            if ids:
                await self._until(client.xack(route.key, group, *ids))
            route.claim_from = None if cursor == "0-0" else cursor

    async def _resolve(self, client: Any, key: str) -> str:
        """The entry id to read after: ``$`` becomes the stream's last id right now."""
        if self.start_id == "0":
            return "0-0"
        if self.start_id != "$":
            return self.start_id
        newest = await client.xrevrange(key, count=1)
        return as_text(newest[0][0]) if newest else "0-0"

    @staticmethod
    async def _create_group(client: Any, key: str, group: str, at: str) -> None:
        try:
            await client.xgroup_create(key, group, id=at, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _deliver(
        self, key: str, fields: Any, observer: abc.ObserverBase[Any], *, checked: bool = True
    ) -> None:
        try:
            item = (
                decode_fields(key, fields)
                if isinstance(fields, list)
                else decode_entry(key, fields)
            )
        except ParseError as exc:
            self._report(exc)
            return
        tape = self.tapes.get(key) if checked else None
        if isinstance(item, FeedGapError):
            hole = tape.marker(item) if tape is not None else None
            if hole is not None:
                self._report(hole)
            self._report(item)
            return
        if tape is not None:
            deliver, hole = tape.admit(item.trade_id)  # type: ignore[attr-defined]
            if hole is not None:
                self._report(hole)
            if not deliver:
                return
        observer.on_next(item)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw_reply(response: Any, **_options: Any) -> Any:
    """Response callback that keeps a stream read as Redis sent it."""
    return response


def _stream_replies(reply: Any) -> Iterable[tuple[Any, Any]]:
    """(stream, entries) of a raw XREAD/XREADGROUP reply: a list of pairs over RESP2, a
    map over RESP3 (``protocol=3`` in the URL), nothing when the read timed out."""
    if not reply:
        return ()
    if isinstance(reply, dict):
        return reply.items()
    return ((pair[0], pair[1]) for pair in reply)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
