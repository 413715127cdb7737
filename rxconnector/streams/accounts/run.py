"""One lifetime of an account's shared stream: the socket, the login, the event flow.

:class:`AccountRun` lives from the first subscriber to the last dispose (or a fatal
error, or ``close``). It owns the reconnecting socket (:mod:`.attempts`), speaks to the
venue's :class:`~rxconnector.exchanges.account_protocol.PrivateSession` as its
:class:`~rxconnector.exchanges.account_protocol.SessionOutput`, keeps the
:class:`~.view.AccountView` that reconciliation (:mod:`.reconcile`) compares REST
answers with, and hands the 24 h limit to :class:`~.rotation.Rotation`.

The subscription's life, per socket:

.. marble::
    :alt: account run

    socket:  --connected--login--subscribed==events==|reconnecting--connected--login--...
    run:     --watch------------ (first: no gap) ======  gap ------------------subscribed
                                                                     reconcile over REST
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxconnector._scheduling import now_ms
from rxconnector.config import ConnectionConfig
from rxconnector.errors import FeedGapError, ParseError, RxConnectorError
from rxconnector.exchanges.account_protocol import PrivateProtocol, PrivateSession
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.rate.attempts import AttemptLimiter, shared_attempt_limiter
from rxconnector.streams.accounts.attempts import AttemptSlot, login_attempt, url_attempt
from rxconnector.streams.accounts.reconcile import Fetchers, Reconciliation
from rxconnector.streams.accounts.rotation import Replacement, Rotation
from rxconnector.streams.accounts.view import AccountView
from rxconnector.streams.hub import PACING_MARGIN
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws import ConnectFn, websocket
from rxconnector.transport.ws_types import (
    Connected,
    ControlSender,
    SessionFactory,
    SocketSpec,
    WsItem,
    describe_error,
)

__all__ = ["AccountRun", "RunSettings"]


@attrs.frozen
class RunSettings:
    """Everything an :class:`AccountRun` is given by its ``AccountStreams``."""

    protocol: PrivateProtocol
    url: str
    session: SessionFactory
    config: ConnectionConfig
    fetch: Fetchers
    resync_clock: Callable[[], Observable[Any]] | None
    attempt_limiter: AttemptLimiter | None
    connect: ConnectFn
    tasks: OwnedTasks
    #: reports a non-fatal problem (never raises)
    report: Callable[[Exception], None]
    #: the user's raw ``report_error`` (the socket's own reports), if any
    report_error: Callable[[Exception], None] | None
    #: reports a connection state (never raises)
    report_state: Callable[[ConnectionEvent], None]
    log: Any


class AccountRun:
    """One lifetime of the shared stream; see the module docstring."""

    def __init__(
        self,
        settings: RunSettings,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        connection_id: str,
    ) -> None:
        self._settings = settings
        self._protocol = protocol = settings.protocol
        self._observer = observer
        self._sched = scheduler
        self._spec = self._socket_spec(connection_id)
        self._log = settings.log.bind(connection=connection_id)
        self._source = SerialDisposable()
        self._rotation = Rotation(
            self, scheduler, settings.config.connection_lifetime, connection_id
        )
        self._reconciliation = SerialDisposable()
        #: the clock resync asked for by the last refused login (a REST call in flight)
        self._resync_call = SerialDisposable()
        self._slot = AttemptSlot()
        self._link: ControlSender | None = None
        self._session: PrivateSession | None = None
        self._view = AccountView(protocol.reports_last_fill)
        self._done = False
        self._subscribed = False
        self._ever_subscribed = False
        self._gap = False
        self._reconciling = False

    def _socket_spec(self, connection_id: str) -> SocketSpec:
        settings, protocol = self._settings, self._settings.protocol
        rate = protocol.max_messages_per_second
        max_messages = max(1, int(rate))
        return SocketSpec(
            url=settings.url,
            connection_id=connection_id,
            max_messages=max_messages,
            message_window=max_messages / rate + PACING_MARGIN,
            ping_message=protocol.ping_message(),
            ping_interval=settings.config.ping_interval,
            connect_timeout=settings.config.rest_timeout,
            max_frame_bytes=settings.config.max_frame_bytes,
            report=settings.report_error,
        )

    # -- lifetime -----------------------------------------------------------------------

    def start(self) -> None:
        source = self.open_socket(self._spec, self._slot)
        self._log.info("private stream starting", url=self._spec.url)
        self._source.disposable = source.subscribe(
            self._on_item, self._on_source_error, self._on_source_completed, scheduler=self._sched
        )

    def stop(self) -> None:
        """The last subscriber left."""
        self._close("no subscribers left")

    def finish(self) -> None:
        """The owner closes: complete the feeds."""
        if self._close("closed"):
            self._observer.on_completed()

    def _close(self, reason: str) -> bool:
        if self._done:
            return False
        self._done = True
        self._reconciliation.dispose()
        self._resync_call.dispose()
        self._rotation.dispose()
        self._source.dispose()
        self.announce(ConnectionState.CLOSED, reason)
        self._log.info("private stream closed", reason=reason)
        return True

    def _terminate(self, error: Exception) -> None:
        if self._close(describe_error(error)):
            self._log.error("private stream failed", error=describe_error(error))
            self._observer.on_error(error)

    # -- the socket ---------------------------------------------------------------------

    def open_socket(self, spec: SocketSpec, slot: AttemptSlot) -> Observable[WsItem]:
        """The reconnecting socket at ``spec`` whose attempts log in through ``slot``."""
        settings, protocol = self._settings, self._protocol
        limiter = settings.attempt_limiter or shared_attempt_limiter(
            f"{protocol.name}-private",
            protocol.max_connection_attempts,
            protocol.connection_attempt_window,
            self._sched,
        )
        config = settings.config
        stale_after = config.stale_after
        if stale_after is None:
            stale_after = max(protocol.stale_after, 3 * config.ping_interval)
        return websocket(
            spec,
            settings.session,
            config,
            tasks=settings.tasks,
            attempt_limiter=limiter,
            stale_after=stale_after,
            connect=lambda spec_, session, tasks: self._attempt(spec_, session, tasks, slot),
            scheduler=self._sched,
        )

    def _attempt(
        self, spec: SocketSpec, session: SessionFactory, tasks: OwnedTasks, slot: AttemptSlot
    ) -> Observable[WsItem]:
        inner = url_attempt(self._protocol, self._settings.connect, spec, session, tasks)
        return login_attempt(inner, slot)

    def _on_item(self, item: WsItem) -> None:
        if self._done:
            return
        if type(item) is tuple:
            self._on_frame(item[0], item[1])
        elif type(item) is Connected:
            self._on_connected(item)
        elif isinstance(item, ConnectionEvent):
            self._on_connection_event(item)

    def _on_frame(self, received_at: float, data: bytes | str) -> None:
        session = self._session
        if session is None:
            return
        connection_id = self._spec.connection_id
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._settings.report(ParseError(f"undecodable frame on {connection_id}", data))
            return
        if self._rotation.repeated(message):
            return
        try:
            session.on_message(message, received_at, self)
        except Exception as exc:  # a protocol bug must not end the stream
            self._settings.report(
                ParseError(f"{connection_id}: cannot handle frame ({exc!r})", data)
            )

    def _on_connected(self, item: Connected) -> None:
        self._settings.report_state(item.event)
        self._link = item.link
        self._view.watch(True)
        session = self._session = self._protocol.new_session()
        self._rotation.arm()
        session.on_connected(self)

    def _on_connection_event(self, event: ConnectionEvent) -> None:
        self._settings.report_state(event)
        if event.state is not ConnectionState.RECONNECTING:
            return
        self._rotation.pause()
        self._link = None
        self._session = None
        self._lost_subscription()
        self._log.warning("private stream reconnecting", reason=event.reason, attempt=event.attempt)

    def _lost_subscription(self) -> None:
        if self._subscribed or self._reconciling:
            self._gap = True
        self._subscribed = False
        self._reconciling = False
        self._reconciliation.disposable = Disposable()

    def _on_source_error(self, error: Exception) -> None:
        self._terminate(error)  # reconnect attempts ran out (max_reconnect_attempts)

    def _on_source_completed(self) -> None:
        self._terminate(RxConnectorError(f"{self._spec.connection_id}: the socket source ended"))

    # -- RotationHost -------------------------------------------------------------------

    @property
    def spec(self) -> SocketSpec:
        return self._spec

    @property
    def log(self) -> Any:
        return self._log

    def running(self) -> bool:
        return not self._done

    def is_subscribed(self) -> bool:
        return self._subscribed

    def announce(self, state: ConnectionState, reason: str) -> None:
        spec = self._spec
        self._settings.report_state(
            ConnectionEvent(state, spec.connection_id, spec.url, now_ms(self._sched), reason=reason)
        )

    def replacement(
        self,
        spec: SocketSpec,
        promote: Callable[[Replacement], None],
        abandon: Callable[[Replacement, str], None],
    ) -> Replacement:
        settings = self._settings
        return Replacement(
            spec,
            self._protocol.new_session,
            settings.report_state,
            settings.report,
            promote,
            abandon,
        )

    def take_over(self, candidate: Replacement, slot: AttemptSlot) -> SocketSpec:
        old = self._spec
        self._slot = slot
        self._spec = candidate.spec
        self._link = candidate.link
        self._session = candidate.session
        self._log = self._settings.log.bind(connection=candidate.spec.connection_id)
        candidate.forward = self._on_item
        candidate.forward_error = self._on_source_error
        candidate.forward_completed = self._on_source_completed
        # closing the old socket (normal close handshake) by dropping its source
        self._source.disposable = candidate.subscription
        self._settings.report_state(
            ConnectionEvent(
                ConnectionState.CLOSED,
                old.connection_id,
                old.url,
                now_ms(self._sched),
                reason=f"rotated to {candidate.spec.connection_id}",
            )
        )
        return old

    def took_over(self, old: SocketSpec) -> None:
        self._log.info("private stream rotated", replaced=old.connection_id)
        if not self._subscribed:  # the old socket died first: reconcile the gap
            self._view.watch(True)
            self.subscribed()

    # -- SessionOutput --------------------------------------------------------------------

    def send(self, build: Callable[[], str]) -> None:
        link = self._link
        if link is not None and not self._done:
            link.send(build)

    def emit(self, item: object) -> None:
        if not self._done:
            self._observer.on_next(self._view.saw(item))

    def subscribed(self) -> None:
        if self._done:
            return
        self._subscribed = True
        first = not self._ever_subscribed
        self._ever_subscribed = True
        reconcile = self._gap and not first
        self._log.info("private stream subscribed", reconcile=reconcile)
        self._gap = False
        if reconcile:
            self._reconcile()
        else:
            self._view.watch(False)

    def resubscribing(self, reason: str) -> None:
        self._log.warning(
            "private subscription ended by the exchange; resubscribing", reason=reason
        )
        self._lost_subscription()
        self._view.watch(True)

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        if self._done:
            return
        if fatal:
            self._terminate(error)
            return
        self._log.warning("private login refused; reconnecting", error=describe_error(error))
        if resync_clock and self._settings.resync_clock is not None:
            self._resync(self._settings.resync_clock)
        self._slot.fail(error)

    def report(self, error: Exception) -> None:
        self._settings.report(error)

    def _resync(self, resync: Callable[[], Observable[Any]]) -> None:
        report = self._settings.report
        try:
            self._resync_call.disposable = resync().subscribe(
                on_error=report, scheduler=self._sched
            )
        except Exception as exc:
            report(exc)

    # -- the view of the account ----------------------------------------------------------

    def note_placed(self, symbol: str, order_id: str) -> None:
        if not self._done:
            self._view.note_placed(symbol, order_id)

    def _reconcile(self) -> None:
        fetch = self._settings.fetch
        if not fetch.any_state:
            self._view.watching = False
            self._settings.report(
                FeedGapError(
                    self._spec.connection_id,
                    "re-subscribed after a gap; events during the gap may be missing "
                    "(no REST callables were given to reconcile with)",
                )
            )
            return
        self._reconciling = True
        reconciliation = Reconciliation(
            fetch,
            self._view,
            self._protocol.order_status,
            self._observer.on_next,
            self._settings.report,
            self._spec.connection_id,
            self._sched,
            self._reconciled,
        )
        self._reconciliation.disposable = reconciliation.group
        reconciliation.start()

    def _reconciled(self) -> None:
        self._reconciling = False
        self._view.watch(False)
        self._log.info("reconciliation finished")
