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

:func:`futures_user_stream` puts the lease in front of the pure USD-M protocol
(:class:`~rxconnector.exchanges.binance.futures_user_stream.BinanceFuturesUserStream`):
the account stream then asks it for each attempt's URL
(:class:`~rxconnector.streams.accounts.attempts.UrlLease`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.exchanges.account_protocol import PrivateSession
from rxconnector.exchanges.binance.futures_user_stream import (
    BinanceFuturesUserStream,
    private_stream_url,
)

if TYPE_CHECKING:
    from rxconnector.exchanges.account_protocol import PrivateProtocol
    from rxconnector.rest.planned import PlannedRest
    from rxconnector.streams.accounts.attempts import UrlLease

__all__ = ["KEEPALIVE_INTERVAL", "LeasedProtocol", "ListenKeyLease", "futures_user_stream"]

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
        self.keepalive = keepalive
        self.url_for = url_for
        self.interval = keepalive_interval
        self._scheduler = scheduler
        #: the key of the latest lease (for logs and tests; never logged by us)
        self.current_key: str | None = None

    def open(self) -> Observable[str]:
        """The socket URL of a live key, kept alive until disposed (never completes)."""

        def subscribe(
            observer: abc.ObserverBase[str], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(self._scheduler, scheduler_)
            try:
                created = self._create()
            except Exception as exc:
                observer.on_error(exc)
                return Disposable()
            return _Lease(self, observer, sched).start(created)

        return Observable(subscribe)


class _Lease:
    """One subscription of :meth:`ListenKeyLease.open`: the POST, then a keep-alive
    every interval until disposed; any failure is the Observable's error."""

    def __init__(
        self, owner: ListenKeyLease, observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase
    ) -> None:
        self._owner = owner
        self._observer = observer
        self._sched = scheduler
        self._group = CompositeDisposable()
        self._timer = SerialDisposable()
        self._call = SerialDisposable()
        self._group.add(self._timer)
        self._group.add(self._call)

    def start(self, created: Observable[str]) -> abc.DisposableBase:
        self._call.disposable = created.subscribe(self._on_key, self._fail, scheduler=self._sched)
        return self._group

    def _fail(self, error: Exception) -> None:
        if not self._group.is_disposed:
            self._observer.on_error(error)

    def _on_key(self, key: str) -> None:
        if self._group.is_disposed:
            return
        self._owner.current_key = key
        try:
            url = self._owner.url_for(key)
        except Exception as exc:
            self._fail(exc)
            return
        self._schedule_keepalive(key)
        self._observer.on_next(url)

    def _schedule_keepalive(self, key: str) -> None:
        def due(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self._keepalive(key)

        self._timer.disposable = self._sched.schedule_relative(self._owner.interval, due)

    def _keepalive(self, key: str) -> None:
        if self._group.is_disposed:
            return
        try:
            source = self._owner.keepalive(key)
        except Exception as exc:
            self._fail(exc)
            return
        self._call.disposable = source.subscribe(
            on_error=self._fail,
            on_completed=lambda: self._schedule_keepalive(key),
            scheduler=self._sched,
        )


class LeasedProtocol:
    """A private protocol whose socket URL comes from a lease, per connection attempt:
    the pure protocol's knowledge, plus :meth:`open_url`."""

    def __init__(
        self, protocol: BinanceFuturesUserStream, open_url: Callable[[], Observable[str]]
    ) -> None:
        self.protocol = protocol
        self._open_url = open_url
        self.name = protocol.name
        self.feeds = protocol.feeds
        self.max_messages_per_second = protocol.max_messages_per_second
        self.max_connection_attempts = protocol.max_connection_attempts
        self.connection_attempt_window = protocol.connection_attempt_window
        self.stale_after = protocol.stale_after
        self.reports_last_fill = protocol.reports_last_fill

    def __repr__(self) -> str:
        return f"LeasedProtocol({self.protocol!r})"

    def open_url(self) -> Observable[str]:
        return self._open_url()

    def ping_message(self) -> str:
        return self.protocol.ping_message()

    def new_session(self) -> PrivateSession:
        return self.protocol.new_session()

    def order_status(self, raw: str) -> str:
        return self.protocol.order_status(raw)


def futures_user_stream(
    rest: PlannedRest,
    private_base: str,
    scheduler: abc.SchedulerBase | None,
    *,
    fast_executions: bool = False,
    url_for: Callable[[str], str] | None = None,
) -> tuple[LeasedProtocol, str]:
    """The USD-M private protocol (with its listenKey lease on ``rest``, sockets under
    ``private_base``, the venue's ``private_ws_url``) and the URL it shows in logs
    before a key exists."""
    lease = ListenKeyLease(
        rest.create_listen_key,
        rest.keepalive_listen_key,
        url_for or (lambda key: private_stream_url(private_base, key)),
        scheduler=scheduler,
    )
    protocol = LeasedProtocol(BinanceFuturesUserStream(fast_executions=fast_executions), lease.open)
    return protocol, private_stream_url(private_base, "<listenKey>")


if TYPE_CHECKING:
    _leased = LeasedProtocol(BinanceFuturesUserStream(), lambda: Observable[str]())
    _conforms: PrivateProtocol = _leased
    _leases: UrlLease = _leased
