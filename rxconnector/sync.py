"""A blocking facade for plain scripts: no ``async``, no ``await``, no event loop to run.

::

    import rxconnector as rxc

    with rxc.connect(rxc.Config.binance()) as conn:
        print(conn.server_time())
        for ticker in rxc.sync.take(conn.ticker("BTCUSDT"), 3, timeout=10):
            print(ticker.last)

How it works, and why it keeps the library's rule (the loop is never blocked, the
library never runs someone else's loop): :func:`connect` starts one thread it owns,
creates a *private* event loop in it and runs ``loop.run_forever()`` there. The
:class:`~rxconnector.Connector` lives on that loop. A blocking method hands a coroutine
to it with ``asyncio.run_coroutine_threadsafe`` and waits on the returned
``concurrent.futures.Future`` in the calling thread; the loop itself never waits.

* **Notifications arrive on the connector's thread** (named ``rxconnector-<venue>``), as
  they would on the loop in asyncio code: keep ``on_next`` short, do not block in it,
  and never call a blocking method of the facade from it (that would wait for the
  thread it runs on; it raises :class:`~rxconnector.RxConnectorError` instead).
  :func:`take` and :func:`iterate` hand the items over to the calling thread.
* Subscribing and disposing are marshalled onto the loop, so the Observables work from
  any thread; operators piped in the calling thread that need time (``buffer_with_time``)
  use reactivex's default thread-based scheduler unless given ``scheduler=conn.scheduler``.
* Jupyter: nothing here touches the caller's loop (no ``asyncio.run``, no
  ``run_until_complete``, no ``set_event_loop`` outside the owned thread), so it works
  in a notebook too, where the asyncio API (``await`` at top level) remains the natural
  choice.
* :meth:`SyncConnector.close` (also on leaving ``with``, also after Ctrl-C) stops the
  connector, cancels what is left on the private loop, shuts its async generators and
  executor down, closes the loop and joins the thread. A connection not closed is
  closed at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from rxconnector.config import Config
from rxconnector.connector import Connector
from rxconnector.errors import RxConnectorError
from rxconnector.market_data import FEED_METHODS, ConnectorFeeds
from rxconnector.models import BreakerState, ClockOffset, ConnectionEvent

__all__ = ["Iteration", "SyncConnector", "connect", "iterate", "take"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
#: how long close() waits for the connector to stop before giving up on the thread
_CLOSE_TIMEOUT = 30.0


def connect(
    config: Config,
    *,
    connector_factory: Callable[[Config], Connector] = Connector,
) -> SyncConnector:
    """Start a :class:`~rxconnector.Connector` on a private loop in a background thread
    and return its blocking facade (a context manager; ``close()`` also works).

    Raises what ``Connector.start()`` raises (the thread is gone by then).
    ``connector_factory`` builds the connector on the private loop (default
    ``Connector``); pass a function to add ``Connector`` options.
    """
    return SyncConnector(config, connector_factory=connector_factory)


# -- method wrappers ------------------------------------------------------------------------


class _Blocking(Generic[_P, _T]):
    """``conn.name(...)``: ``Connector.name(...)`` run on the loop; its last value."""

    def __init__(self, method: Callable[Concatenate[Connector, _P], Observable[_T]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__  # help(SyncConnector) shows the Connector's docs

    @overload
    def __get__(self, conn: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, conn: SyncConnector, owner: type | None = None) -> Callable[_P, _T]: ...
    def __get__(
        self, conn: SyncConnector | None, owner: type | None = None
    ) -> Self | Callable[_P, _T]:
        if conn is None:
            return self
        method = self._method

        @functools.wraps(method)
        def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            items = conn.collect(lambda c: method(c, *args, **kwargs))
            return items[-1] if items else None  # type: ignore[return-value]  # Observable[None]

        return call


class _BlockingList(Generic[_P, _T]):
    """``conn.name(...)``: every value of ``Connector.name(...)`` (a paged call), as a list."""

    def __init__(self, method: Callable[Concatenate[Connector, _P], Observable[_T]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__  # help(SyncConnector) shows the Connector's docs

    @overload
    def __get__(self, conn: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, conn: SyncConnector, owner: type | None = None) -> Callable[_P, list[_T]]: ...
    def __get__(
        self, conn: SyncConnector | None, owner: type | None = None
    ) -> Self | Callable[_P, list[_T]]:
        if conn is None:
            return self
        method = self._method

        @functools.wraps(method)
        def call(*args: _P.args, **kwargs: _P.kwargs) -> list[_T]:
            return conn.collect(lambda c: method(c, *args, **kwargs))

        return call


class _Feed(Generic[_P, _T]):
    """``conn.name(...)``: ``Connector.name(...)``, subscribed and disposed on the loop."""

    def __init__(self, method: Callable[Concatenate[Connector, _P], Observable[_T]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__  # help(SyncConnector) shows the Connector's docs

    @overload
    def __get__(self, conn: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(
        self, conn: SyncConnector, owner: type | None = None
    ) -> Callable[_P, Observable[_T]]: ...
    def __get__(
        self, conn: SyncConnector | None, owner: type | None = None
    ) -> Self | Callable[_P, Observable[_T]]:
        if conn is None:
            return self
        method = self._method

        @functools.wraps(method)
        def call(*args: _P.args, **kwargs: _P.kwargs) -> Observable[_T]:
            return conn.observable(lambda c: method(c, *args, **kwargs))

        return call


class _Health(Generic[_T]):
    """``conn.name``: the Connector's health Observable, subscribed on the loop."""

    def __init__(self, pick: Callable[[Connector], Observable[_T]]) -> None:
        self._pick = pick

    @overload
    def __get__(self, conn: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, conn: SyncConnector, owner: type | None = None) -> Observable[_T]: ...
    def __get__(
        self, conn: SyncConnector | None, owner: type | None = None
    ) -> Self | Observable[_T]:
        if conn is None:
            return self
        return conn.observable(self._pick)


# -- the facade -----------------------------------------------------------------------------


class SyncConnector(ConnectorFeeds):
    """A :class:`~rxconnector.Connector` driven from blocking code (see the module doc).

    REST methods block and return the value (``kline_history`` returns the list of
    every candle); feeds and health streams are the connector's Observables,
    subscribed and disposed on the connector's thread. Signatures are the
    ``Connector``'s own.
    """

    def __init__(
        self,
        config: Config,
        *,
        connector_factory: Callable[[Config], Connector] = Connector,
    ) -> None:
        self.config = config
        self.thread_name = f"rxconnector-{config.exchange}"
        self._loop = asyncio.new_event_loop()
        self._closed = False
        self._close_lock = threading.Lock()
        self._connector: Connector | None = None
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        atexit.register(self.close)
        try:
            self._connector = self._wait(self._open(config, connector_factory), None)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)  # this thread's loop, nobody else's
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _open(self, config: Config, factory: Callable[[Config], Connector]) -> Connector:
        connector = factory(config)
        self._connector = connector  # close() stops it even if start() is interrupted
        await connector.start()
        return connector

    async def _shutdown(self) -> None:
        try:
            if self._connector is not None:
                await self._connector.stop()
        finally:
            current = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not current]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            await self._loop.shutdown_asyncgens()
            await self._loop.shutdown_default_executor()
            self._loop.call_soon(self._loop.stop)

    def close(self) -> None:
        """Stop the connector, release the loop and join the thread. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        if threading.current_thread() is self._thread:
            raise RxConnectorError(
                "close() was called on the connector's thread (from a callback); "
                "call it from the thread that called connect()"
            )
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(_CLOSE_TIMEOUT)
        finally:
            if not future.done():  # interrupted or too slow: stop the loop anyway
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_CLOSE_TIMEOUT)

    def __enter__(self) -> SyncConnector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connector(self) -> Connector:
        """The asyncio Connector underneath; use it only on :attr:`loop`'s thread."""
        if self._connector is None:
            raise RxConnectorError("this connection failed to start")
        return self._connector

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop the connector runs on."""
        return self._loop

    @property
    def scheduler(self) -> abc.SchedulerBase:
        """A scheduler on the connector's loop that is safe to use from any thread."""
        return AsyncIOThreadSafeScheduler(self._loop)

    def now(self) -> int:
        """The exchange's time in ms (local clock plus the measured offset)."""
        return self.connector.now()

    # -- running things on the loop -----------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise RxConnectorError("this connection is closed; call rxc.connect() again")
        if threading.current_thread() is self._thread:
            raise RxConnectorError(
                "a blocking call on the connector's thread (inside an on_next callback) "
                "would wait for itself: hand the work to another thread, or compose it "
                "into the pipeline with operators"
            )

    def _wait(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        try:
            self._check_usable()
        except BaseException:
            coroutine.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except BaseException:  # Ctrl-C or a timeout in the caller: stop the work too
            future.cancel()
            raise

    def collect(
        self, make: Callable[[Connector], Observable[_T]], *, timeout: float | None = None
    ) -> list[_T]:
        """Every value of ``make(connector)``, built and run on the loop, as a list.

        The generic form of the blocking REST methods, for any Connector call:
        ``conn.collect(lambda c: c.recent_trades("BTCUSDT", 5))``. Raises what the
        Observable errors with, ``TimeoutError`` after ``timeout`` seconds.
        """

        async def run() -> list[_T]:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            items: list[_T] = []

            def on_error(error: Exception) -> None:
                if not done.done():
                    done.set_exception(error)

            def on_completed() -> None:
                if not done.done():
                    done.set_result(None)

            subscription = make(self.connector).subscribe(items.append, on_error, on_completed)
            try:
                await done
            finally:
                subscription.dispose()
            return items

        return self._wait(run(), timeout)

    def observable(self, make: Callable[[Connector], Observable[_T]]) -> Observable[_T]:
        """``make(connector)`` built on the loop, subscribed and disposed there, so it
        can be used from any thread. Notifications arrive on the connector's thread."""

        async def build() -> Observable[_T]:
            return make(self.connector)

        return _on_loop(self._wait(build(), None), self._loop, self._thread)

    # -- REST (blocking) ----------------------------------------------------------------

    ping = _Blocking(Connector.ping)
    server_time = _Blocking(Connector.server_time)
    exchange_info = _Blocking(Connector.exchange_info)
    depth_snapshot = _Blocking(Connector.depth_snapshot)
    recent_trades = _Blocking(Connector.recent_trades)
    kline_history = _BlockingList(Connector.kline_history)
    ticker_24h = _Blocking(Connector.ticker_24h)
    account = _Blocking(Connector.account)
    # mypy: "self" is a named parameter next to **extra (harmless: it is bound here)
    place_order = _Blocking(Connector.place_order)  # type: ignore[arg-type]
    test_order = _Blocking(Connector.test_order)  # type: ignore[arg-type]
    cancel_order = _Blocking(Connector.cancel_order)
    get_order = _Blocking(Connector.get_order)
    open_orders = _Blocking(Connector.open_orders)
    open_positions = _Blocking(Connector.open_positions)

    # -- feeds (Observables): one _Feed per name in FEED_METHODS, installed below -------

    # -- health -------------------------------------------------------------------------

    connection_state: _Health[ConnectionEvent] = _Health(lambda c: c.connection_state)
    errors: _Health[Exception] = _Health(lambda c: c.errors)
    clock: _Health[ClockOffset] = _Health(lambda c: c.clock)
    breaker_state: _Health[BreakerState] = _Health(lambda c: c.breaker_state)


# The feeds are the Connector's, wrapped: their names come from the one declaration of the
# feed surface (SyncConnector derives its types from it, ConnectorFeeds).
for _name in FEED_METHODS:
    setattr(SyncConnector, _name, _Feed(getattr(Connector, _name)))
del _name


class _LoopSubscription(Generic[_T]):
    """One subscription made and ended on the connector's loop, whatever thread asks.

    ``disposed`` is read and written on the loop's thread only, so an ``attach`` that
    runs after a ``detach`` (both queued from another thread) subscribes nothing.
    """

    def __init__(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
    ) -> None:
        self._source = source
        self._observer = observer
        self._loop = loop
        self._thread = thread
        self._inner = SingleAssignmentDisposable()
        self._disposed = False

    def attach(self) -> None:
        if not self._disposed:
            self._inner.disposable = self._source.subscribe(self._observer)

    def detach(self) -> None:
        self._disposed = True
        self._inner.dispose()

    def on_loop(self, action: Callable[[], None]) -> bool:
        """Run ``action`` on the loop's thread (now, if this is it); False if the loop
        is closed."""
        if threading.current_thread() is self._thread:
            action()
            return True
        try:
            self._loop.call_soon_threadsafe(action)
        except RuntimeError:  # the loop is closed: the connection was closed
            return False
        return True

    def dispose(self) -> None:
        self.on_loop(self.detach)


def _on_loop(
    source: Observable[_T], loop: asyncio.AbstractEventLoop, thread: threading.Thread
) -> Observable[_T]:
    """``source`` subscribed and disposed on ``loop`` (whatever thread subscribes)."""

    def subscribe(
        observer: abc.ObserverBase[_T], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _LoopSubscription(source, observer, loop, thread)
        if not run.on_loop(run.attach):
            observer.on_error(RxConnectorError("this connection is closed"))
            return Disposable()
        return Disposable(run.dispose)

    return reactivex.create(subscribe)


# -- handing items to the calling thread ----------------------------------------------------


def take(source: Observable[_T], n: int, *, timeout: float | None = None) -> list[_T]:
    """Block until ``source`` gave ``n`` items; return them (fewer if it completed first).

    Raises what ``source`` errors with, and ``TimeoutError`` if ``n`` items did not
    arrive within ``timeout`` seconds. The subscription is disposed in every case
    (also on Ctrl-C).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    done = threading.Event()
    lock = threading.Lock()
    items: list[_T] = []
    failure: list[Exception] = []

    def on_next(item: _T) -> None:
        with lock:
            if len(items) < n:
                items.append(item)
            if len(items) >= n:
                done.set()

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    subscription = source.subscribe(on_next, on_error, done.set)
    try:
        if not done.wait(timeout):
            raise TimeoutError(f"{len(items)} of {n} items arrived within {timeout}s")
    finally:
        subscription.dispose()
    if failure:
        raise failure[0]
    with lock:
        return list(items)


class Iteration(Generic[_T]):
    """Items of an Observable as a blocking iterator (see :func:`iterate`)."""

    _NEXT, _ERROR, _DONE = range(3)

    def __init__(self, source: Observable[_T], timeout: float | None) -> None:
        self._source = source
        self._timeout = timeout
        self._queue: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._subscription: abc.DisposableBase | None = None
        self._finished = False

    def __iter__(self) -> Iterator[_T]:
        return self

    def __next__(self) -> _T:
        if self._finished:
            raise StopIteration
        if self._subscription is None:
            put = self._queue.put
            self._subscription = self._source.subscribe(
                lambda item: put((self._NEXT, item)),
                lambda error: put((self._ERROR, error)),
                lambda: put((self._DONE, None)),
            )
        try:
            kind, value = self._queue.get(timeout=self._timeout)
        except queue.Empty:
            self.close()
            raise TimeoutError(f"no item within {self._timeout}s") from None
        except BaseException:
            self.close()
            raise
        if kind == self._NEXT:
            return value  # type: ignore[no-any-return]
        self.close()
        if kind == self._ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Dispose the subscription (also done by ``with``, at the end and on error)."""
        self._finished = True
        if self._subscription is not None:
            self._subscription.dispose()

    def __enter__(self) -> Iteration[_T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def iterate(source: Observable[_T], *, timeout: float | None = None) -> Iteration[_T]:
    """Iterate ``source``'s items in the calling thread, blocking for each.

    Subscribes at the first ``next()``; ends when ``source`` completes; raises what it
    errors with, and ``TimeoutError`` when no item came within ``timeout`` seconds.
    Items wait in an unbounded queue until taken (pipe ``rxc.operators.conflate()``
    first for a consumer slower than the feed). Use it as ``with iterate(...) as
    items:`` so that leaving the loop early (``break``) disposes the subscription.
    """
    return Iteration(source, timeout)
