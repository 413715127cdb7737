"""One connection attempt of a private socket: at the URL of the moment, endable by login.

Two things make a private attempt more than :func:`~rxconnector.transport.ws.connect_once`:

* **Socket URL per attempt.** A protocol that is a :class:`UrlLease` (Binance USD-M's
  listenKey, :mod:`.listen_key`) gives each attempt's URL itself; the attempt holds that
  subscription (the key's keep-alive) for as long as its socket lives, and an error of
  it (a failed keep-alive) ends the attempt like a socket error.
* **A refused login ends the attempt.** The session decides on frames that the socket
  itself considers fine; through its :class:`AttemptSlot` the account run ends the
  live attempt with a retryable error, so a refused login reconnects through the
  socket's own backoff and attempt limiter.

.. marble::
    :alt: login attempt

    socket:  --open--frames------------          (login answer: refused)
    slot:    ---------------fail(e)
    attempt: --open--frames-X                    (the reconnecting source backs off)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
from reactivex import Observable, abc
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SerialDisposable,
    SingleAssignmentDisposable,
)

from rxconnector.errors import RxConnectorError
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws import ConnectFn
from rxconnector.transport.ws_types import SessionFactory, SocketSpec, WsItem

__all__ = ["AttemptSlot", "UrlLease", "login_attempt", "url_attempt"]


@runtime_checkable
class UrlLease(Protocol):
    """A private protocol whose socket URL is leased per attempt (a listenKey)."""

    def open_url(self) -> Observable[str]:
        """The URL of a socket with a live lease, kept alive while subscribed."""
        ...


class AttemptSlot:
    """Where the live connection attempt of one socket can be ended from outside (a
    refused login); empty between attempts."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: _LoginAttempt | None = None

    def fail(self, error: Exception) -> None:
        """End the live attempt (if any) with ``error``."""
        current = self.current
        if current is not None:
            current.fail(error)


def login_attempt(inner: Observable[WsItem], slot: AttemptSlot) -> Observable[WsItem]:
    """``inner`` (one attempt), which ``slot`` can also end with an error."""

    def subscribe(
        observer: abc.ObserverBase[WsItem], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return _LoginAttempt(observer, slot).start(inner, scheduler)

    return Observable(subscribe)


class _LoginAttempt:
    """One subscription of :func:`login_attempt`: ends once, by the socket or the slot."""

    def __init__(self, observer: abc.ObserverBase[WsItem], slot: AttemptSlot) -> None:
        self._observer = observer
        self._slot = slot
        self._upstream = SingleAssignmentDisposable()
        self._ended = False

    def start(
        self, inner: Observable[WsItem], scheduler: abc.SchedulerBase | None
    ) -> abc.DisposableBase:
        self._slot.current = self
        self._upstream.disposable = inner.subscribe(
            self._observer.on_next, self._on_error, self._observer.on_completed, scheduler=scheduler
        )
        return Disposable(self._dispose)

    def fail(self, error: Exception) -> None:
        """The login was refused: drop the socket, error the attempt."""
        if self._ended:
            return
        self._ended = True
        self._upstream.dispose()
        self._observer.on_error(error)

    def _on_error(self, error: Exception) -> None:
        if not self._ended:
            self._ended = True
            self._observer.on_error(error)

    def _dispose(self) -> None:
        self._ended = True
        if self._slot.current is self:
            self._slot.current = None
        self._upstream.dispose()


def url_attempt(
    protocol: object,
    connect: ConnectFn,
    spec: SocketSpec,
    session: SessionFactory,
    tasks: OwnedTasks,
) -> Observable[WsItem]:
    """One connection attempt at the protocol's URL of the moment (when it is a
    :class:`UrlLease`) or at ``spec.url``."""
    if not isinstance(protocol, UrlLease):
        return connect(spec, session, tasks)
    lease = protocol

    def subscribe(
        observer: abc.ObserverBase[WsItem], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        attempt = _LeasedAttempt(observer, scheduler, connect, spec, session, tasks)
        return attempt.start(lease.open_url())

    return Observable(subscribe)


class _LeasedAttempt:
    """One subscription of :func:`url_attempt` with a lease: the socket opens at the
    first URL; the lease is held (kept alive) until the socket is dropped."""

    def __init__(
        self,
        observer: abc.ObserverBase[WsItem],
        scheduler: abc.SchedulerBase | None,
        connect: ConnectFn,
        spec: SocketSpec,
        session: SessionFactory,
        tasks: OwnedTasks,
    ) -> None:
        self._observer = observer
        self._scheduler = scheduler
        self._connect = connect
        self._spec = spec
        self._session = session
        self._tasks = tasks
        self._lease = SingleAssignmentDisposable()
        self._socket = SerialDisposable()
        self._started = False

    def start(self, urls: Observable[str]) -> abc.DisposableBase:
        self._lease.disposable = urls.subscribe(
            self._on_url, self._observer.on_error, self._on_completed, scheduler=self._scheduler
        )
        return CompositeDisposable(self._socket, self._lease)

    def _on_url(self, url: str) -> None:
        if self._started:
            return
        self._started = True
        spec = self._spec
        # the URL may carry a credential (a listenKey): events, logs and errors show the
        # one the owner configured instead
        attempt = self._connect(
            attrs.evolve(spec, url=url, shown_url=spec.public_url), self._session, self._tasks
        )
        observer = self._observer
        self._socket.disposable = attempt.subscribe(
            observer.on_next, observer.on_error, observer.on_completed, scheduler=self._scheduler
        )

    def _on_completed(self) -> None:
        if not self._started:
            self._observer.on_error(
                RxConnectorError(f"{self._spec.connection_id}: no socket URL given")
            )
