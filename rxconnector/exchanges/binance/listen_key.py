"""A USD-M listenKey held for the life of one socket: created, kept alive, given up.

Binance (derivatives docs, "User Data Streams" - Connect): a listenKey is valid for 60
minutes; a ``PUT`` extends it by 60 minutes ("-1125 This listenKey does not exist" when
it is gone: create a new one with ``POST``); a ``POST`` while a key is active returns
that key and extends it. So :meth:`ListenKeyLease.open` is one Observable per
connection attempt:

.. marble::
    :alt: listen key lease

    subscribe: --POST--(url)----PUT(30 min)----PUT(30 min)----...    (dispose: timer off)
    PUT fails: ------------------------------X                       (socket reconnects)

It emits the socket URL once the ``POST`` answers, then keeps the key alive every
``keepalive_interval`` seconds on the given scheduler while subscribed. A failed
keep-alive is an error of the Observable, which ends the socket attempt: the account
stream reconnects (a new ``POST``) and reconciles over REST, so nothing is lost. The key
is never deleted by us: the next attempt gets the same key back, extended, and the key
belongs to the account, not to this program - another program trading the same account
gets the same key from its ``POST``, and a ``DELETE`` would end its stream too. Unused,
it expires by itself after 60 minutes (``rest.close_listen_key()`` does it by hand).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxconnector._scheduling import resolve_scheduler

__all__ = ["KEEPALIVE_INTERVAL", "ListenKeyLease"]

#: Binance recommends a keep-alive about every 30 minutes (the key lives 60).
KEEPALIVE_INTERVAL: Final = 30 * 60.0


class ListenKeyLease:
    """Create and keep alive listenKeys for sockets (see the module docstring).

    Args:
        create: ``() -> Observable[str]``: ``POST /fapi/v1/listenKey``, the key.
        keepalive: ``(key) -> Observable``: ``PUT /fapi/v1/listenKey``.
        url_for: ``key -> socket URL``.
        keepalive_interval: Seconds between keep-alives.
        scheduler: Timing of the keep-alives (default: the subscriber's, else the
            running loop's).
    """

    def __init__(
        self,
        create: Callable[[], Observable[str]],
        keepalive: Callable[[str], Observable[Any]],
        url_for: Callable[[str], str],
        *,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        if keepalive_interval <= 0:
            raise ValueError(f"keepalive_interval must be > 0, got {keepalive_interval!r}")
        self._create = create
        self._keepalive = keepalive
        self._url_for = url_for
        self._interval = keepalive_interval
        self._scheduler = scheduler
        #: the key of the latest lease (for logs and tests; never logged by us)
        self.current_key: str | None = None

    def open(self) -> Observable[str]:
        """The socket URL of a live key, kept alive until disposed (never completes)."""

        def subscribe(
            observer: abc.ObserverBase[str], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(self._scheduler, scheduler_)
            group = CompositeDisposable()
            timer = SerialDisposable()
            call = SerialDisposable()
            group.add(timer)
            group.add(call)

            def fail(error: Exception) -> None:
                if not group.is_disposed:
                    observer.on_error(error)

            def schedule_keepalive(key: str) -> None:
                def due(_s: abc.SchedulerBase, _state: Any = None) -> None:
                    if group.is_disposed:
                        return
                    try:
                        source = self._keepalive(key)
                    except Exception as exc:
                        fail(exc)
                        return
                    call.disposable = source.subscribe(
                        on_error=fail,
                        on_completed=lambda: schedule_keepalive(key),
                        scheduler=sched,
                    )

                timer.disposable = sched.schedule_relative(self._interval, due)

            def on_key(key: str) -> None:
                if group.is_disposed:
                    return
                self.current_key = key
                try:
                    url = self._url_for(key)
                except Exception as exc:
                    fail(exc)
                    return
                schedule_keepalive(key)
                observer.on_next(url)

            try:
                created = self._create()
            except Exception as exc:
                observer.on_error(exc)
                return Disposable()
            call.disposable = created.subscribe(on_key, fail, scheduler=sched)
            return group

        return Observable(subscribe)
