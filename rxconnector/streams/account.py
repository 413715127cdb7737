"""Private account streams: orders, balances, executions and positions over ONE connection.

:class:`AccountStreams` owns the private WebSocket of one account. Every feed it gives
(:meth:`~AccountStreams.orders`, :meth:`~AccountStreams.balances`, ...) is a view of the
same shared event stream, so however many subscribers there are, there is one socket
and one exchange subscription; the first subscriber connects, the last dispose closes.

What the venue says on the wire is not known here: a :class:`PrivateProtocol`
(``exchanges/binance/user_stream.py``, ``exchanges/bybit/private.py``) opens a
:class:`PrivateSession` per socket and tells this module, through :class:`SessionOutput`,
what to send, what to emit and when the stream is live. This module does the rest:

* **Connection.** The reconnecting source of :mod:`rxconnector.transport.ws`
  (backoff 1 s → 60 s with jitter, forever; attempt limiter; stale watchdog fed by the
  application pings we send every ``ConnectionConfig.ping_interval`` s, whose answers
  are frames even when the account is quiet).
* **Login.** On every socket the session logs in (Binance: a signed
  ``userDataStream.subscribe.signature``; Bybit: ``auth`` then ``subscribe``). A refusal
  that retrying cannot fix (bad key, bad signature) errors every feed with an
  :class:`~rxconnector.errors.ExchangeError`; a transient one (timestamp outside the
  receive window, rate limit, server error) reconnects with backoff.
* **Reconciliation.** Events that happen while no subscription is live are lost by the
  exchange, not delayed. So after every re-subscription (a reconnect, or the exchange
  ending our subscription) - never after the first one - the open orders and balances
  are fetched over REST with the injected callables, and whatever differs from what
  subscribers last saw is emitted as :class:`~rxconnector.models.OrderUpdate` /
  :class:`~rxconnector.models.Balance` with ``reconciled=True``. Orders that were open
  before and are no longer open are looked up one by one (``fetch_order``), so an order
  filled during the disconnect shows up as FILLED; so are orders placed through this
  account's owner (:meth:`AccountStreams.note_placed`) that the stream never reported,
  because an order placed and filled during a disconnect is neither open nor known.
  See :meth:`AccountStreams.orders`. With ``fetch_positions`` the positions are
  compared too: a changed one is emitted with ``reconciled=True``, and one that was
  open before and is gone (closed during the gap) is emitted with size 0.
* **24 h limit, made before broken.** Before ``ConnectionConfig.connection_lifetime``
  a replacement socket logs in; once it is subscribed it takes over and the old one is
  closed, with the frames both carried in the overlap delivered once
  (:mod:`~rxconnector.streams.private_rotation`).
* **Socket URL per attempt.** A protocol with an ``open_url()`` Observable (Binance
  USD-M's listenKey) gets the URL of every connection attempt from it; the attempt
  holds that subscription (the key's keep-alive) for as long as its socket lives, and
  an error of it (a failed keep-alive) ends the attempt like a socket error.

Secrets: the protocol object holds the signer; nothing here logs frames, and errors
quote only what the exchange answered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Protocol, TypeVar

import attrs
import orjson
from reactivex import Observable, abc
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SerialDisposable,
    SingleAssignmentDisposable,
)

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.errors import FeedGapError, NotSupportedError, ParseError, RxConnectorError
from rxconnector.log import get_logger
from rxconnector.models import (
    AccountEvent,
    Balance,
    BalanceDelta,
    ConnectionEvent,
    ConnectionState,
    Execution,
    Order,
    OrderUpdate,
    Position,
)
from rxconnector.operators import share
from rxconnector.rate.attempts import AttemptLimiter, shared_attempt_limiter
from rxconnector.streams.hub import PACING_MARGIN
from rxconnector.streams.messages import RawMessage
from rxconnector.streams.private_positions import position_changes, with_url
from rxconnector.streams.private_rotation import (
    OVERLAP_SECONDS,
    RETRY_SECONDS,
    FrameMemory,
    Replacement,
)
from rxconnector.transport.ws import (
    Connected,
    ConnectFn,
    ControlSender,
    OwnedTasks,
    SessionFactory,
    SocketSpec,
    WsItem,
    connect_once,
    describe_error,
    websocket,
)

__all__ = [
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "AccountStreams",
    "PrivateProtocol",
    "PrivateSession",
    "SessionOutput",
]

_log = get_logger(component="account")

_M = TypeVar("_M")
_T = TypeVar("_T")

#: Canonical (Binance-spelled) statuses of an order that can still change.
OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW", "PENDING_CANCEL"})
#: Canonical statuses after which an order never changes again.
TERMINAL_STATUSES: Final = frozenset(
    {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}
)
#: Finished orders remembered so a late duplicate (Bybit may send "Filled" twice when a
#: cancel races a fill, PROTOCOL.md §C2) is not mistaken for a new fill.
_FINISHED_MEMORY: Final = 1024
_ZERO: Final = Decimal(0)


class SessionOutput(Protocol):
    """What a :class:`PrivateSession` may do; implemented by the account stream."""

    def send(self, build: Callable[[], str]) -> None:
        """Send a text frame; ``build`` runs when the socket's pacer grants a slot, so
        timestamps and signatures are made at the last moment."""
        ...

    def emit(self, item: object) -> None:
        """Deliver a model (or a raw ``(received_at, payload)`` event) to subscribers."""
        ...

    def subscribed(self) -> None:
        """The exchange confirmed the subscription: events flow from now on."""
        ...

    def resubscribing(self, reason: str) -> None:
        """The exchange ended our subscription and the session asked for a new one;
        events in between are lost (the next :meth:`subscribed` reconciles)."""
        ...

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        """Login failed. ``fatal``: retrying cannot help, error the feeds. Otherwise
        reconnect with backoff (after resyncing the clock when ``resync_clock``)."""
        ...

    def report(self, error: Exception) -> None:
        """A non-fatal problem (an unparseable frame): report it, carry on."""
        ...


class PrivateSession(Protocol):
    """The login conversation and event decoding of ONE socket (a new one per socket)."""

    def on_connected(self, out: SessionOutput) -> None:
        """The socket is open: send what logs in."""
        ...

    def on_message(self, message: Any, received_at: float, out: SessionOutput) -> None:
        """One decoded JSON frame (answer, event or pong)."""
        ...


class PrivateProtocol(Protocol):
    """A venue's private stream, as pure knowledge (no I/O)."""

    #: Venue name, used for logs, connection ids and the attempt limiter.
    name: str
    #: Which account feeds the venue has: orders, balances, executions, positions,
    #: balance_deltas.
    feeds: frozenset[str]
    #: Client frames allowed per second on the socket (pings included).
    max_messages_per_second: float
    #: Connection attempts allowed per ``connection_attempt_window`` seconds.
    max_connection_attempts: int
    connection_attempt_window: float
    #: Seconds without any frame (ping answers included) after which the socket is dead.
    stale_after: float
    #: False when order events do not carry the last fill (Bybit): it is then derived
    #: from the change of the cumulative filled quantity.
    reports_last_fill: bool

    def ping_message(self) -> str:
        """The application-level ping frame (its answer keeps the watchdog fed)."""
        ...

    def new_session(self) -> PrivateSession:
        """A fresh :class:`PrivateSession` for a new socket."""
        ...

    def order_status(self, raw: str) -> str:
        """The canonical (Binance-spelled) form of an order status as REST reports it."""
        ...


class _Slot:
    """Where a connection attempt leaves the function that ends it (a refused login
    reconnects through the socket's own backoff)."""

    __slots__ = ("fail",)

    def __init__(self) -> None:
        self.fail: Callable[[Exception], None] | None = None


def _only(source: Observable[Any], cls: type[_M]) -> Observable[_M]:
    """The items of ``source`` whose type is exactly ``cls``."""

    def subscribe(
        observer: abc.ObserverBase[_M], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def on_next(item: Any) -> None:
            if type(item) is cls:
                observer.on_next(item)

        return source.subscribe(
            on_next, observer.on_error, observer.on_completed, scheduler=scheduler
        )

    return Observable(subscribe)


class AccountStreams:
    """The private feeds of one account; see the module docstring.

    Args:
        protocol: The venue's private protocol (it holds the credentials), e.g.
            ``BinanceUserStream(api_key, secret, conn.now)``.
        url: The private WebSocket URL (Binance: the WebSocket API
            ``wss://ws-api.binance.com:443/ws-api/v3``; Bybit: ``.../v5/private``).
            A protocol with ``open_url`` (Binance USD-M's listenKey lease) gives each
            attempt's URL itself; ``url`` is then what logs show before the first one.
        session: Returns the aiohttp session to connect with.
        config: Reconnect policy, ping interval, stale threshold.
        fetch_open_orders: ``() -> Observable[list[Order]]``, every open order (REST).
        fetch_balances: ``() -> Observable[tuple[Balance, ...]]``, every balance (REST).
        fetch_order: ``(symbol, order_id) -> Observable[Order]``, one order's state.
            Without these three, a re-subscription is reported on ``report_error`` as
            a :class:`~rxconnector.errors.FeedGapError` instead of reconciled.
        fetch_positions: ``() -> Observable[list[Position]]``, every position (REST);
            derivatives venues. Positions are reconciled only when it is given.
        resync_clock: ``() -> Observable``, called when the exchange refused our
            timestamp before the next attempt signs again.
        scheduler: Timing (backoff, pings, watchdog, pacing); default the running
            loop's (or the one given to ``subscribe``).
        report_error: Non-fatal problems (parse errors, failed reconciliation calls,
            subscriber exceptions).
        report_state: Every :class:`~rxconnector.models.ConnectionEvent`.
        attempt_limiter: Connection-attempt budget; default the venue's shared one.
        connect: One connection attempt (tests inject a fake transport).
    """

    def __init__(
        self,
        protocol: PrivateProtocol,
        url: str,
        session: SessionFactory,
        config: ConnectionConfig,
        *,
        fetch_open_orders: Callable[[], Observable[list[Order]]] | None = None,
        fetch_balances: Callable[[], Observable[tuple[Balance, ...]]] | None = None,
        fetch_order: Callable[[str, str], Observable[Order]] | None = None,
        fetch_positions: Callable[[], Observable[list[Position]]] | None = None,
        resync_clock: Callable[[], Observable[Any]] | None = None,
        scheduler: abc.SchedulerBase | None = None,
        report_error: Callable[[Exception], None] | None = None,
        report_state: Callable[[ConnectionEvent], None] | None = None,
        attempt_limiter: AttemptLimiter | None = None,
        connect: ConnectFn = connect_once,
    ) -> None:
        self._protocol = protocol
        self._url = url
        self._session = session
        self._config = config
        self._fetch_open_orders = fetch_open_orders
        self._fetch_balances = fetch_balances
        self._fetch_order = fetch_order
        self._fetch_positions = fetch_positions
        self._resync_clock = resync_clock
        self._scheduler = scheduler
        self._report_error = report_error
        self._report_state_cb = report_state
        self._attempt_limiter = attempt_limiter
        self._connect = connect
        self._tasks = OwnedTasks(self._report)
        self._closed = False
        self._run: _Run | None = None
        self._runs = 0
        self._log = _log.bind(exchange=protocol.name)
        events: Observable[Any] = Observable(self._subscribe).pipe(
            share(on_subscriber_error=self._report)
        )
        self._events = events
        self._orders = _only(events, OrderUpdate)
        self._balances = _only(events, Balance)
        self._executions = _only(events, Execution)
        self._positions = _only(events, Position)
        self._deltas = _only(events, BalanceDelta)
        self._notices = _only(events, AccountEvent)
        self._raw: Observable[RawMessage] = _only(events, tuple)

    def __repr__(self) -> str:
        return f"AccountStreams({self._protocol!r}, url={self._url!r})"

    # -- feeds --------------------------------------------------------------------------

    def orders(self) -> Observable[OrderUpdate]:
        """Every change of every order of the account.

        Statuses use Binance's spelling on every venue (``NEW``, ``PARTIALLY_FILLED``,
        ``FILLED``, ``CANCELED``, ``REJECTED``, ``EXPIRED``; an unknown status passes
        through as sent). Summing ``last_fill_quantity`` over the updates of an order
        gives what was filled since the stream first saw it.

        After a re-subscription, orders that changed while nothing was subscribed are
        emitted with ``reconciled=True``: ``execution_type`` is ``TRADE`` when more was
        filled (``last_fill_quantity`` is the quantity missed, ``last_fill_price`` its
        average price when both averages are known), else ``CANCELED`` / ``EXPIRED`` /
        ``REJECTED`` for an order that ended, ``NEW`` for an order not seen before and
        ``REPLACED`` for an amended one; ``fee`` is 0 (REST reports no fees). An order
        placed and finished entirely during a disconnect is recovered only when it was
        announced with :meth:`note_placed` (the connector's ``place_order`` does that);
        one placed elsewhere (another program, the web UI) is neither open nor known,
        and only its effect on the balances is reconciled.
        """
        return self._orders

    def balances(self) -> Observable[Balance]:
        """New free/locked amounts of each asset that changed (``reconciled=True`` for
        changes found over REST after a re-subscription)."""
        return self._balances

    def executions(self) -> Observable[Execution]:
        """Every fill of our orders (Binance: ``executionReport`` events of type TRADE;
        Bybit: the ``execution`` topic, funding entries left out). Fills missed while
        disconnected are not replayed here; they show up in :meth:`orders`."""
        self._require("executions")
        return self._executions

    def positions(self) -> Observable[Position]:
        """Every change of a derivatives position (Binance USD-M, Bybit linear/inverse).

        After a re-subscription the positions are fetched over REST (when the owner gave
        ``fetch_positions``) and each that differs from what subscribers last saw is
        emitted with ``reconciled=True``; a position that was open and is gone (closed
        while disconnected) is emitted flat, with size 0. Raises NotSupportedError on
        Binance Spot."""
        self._require("positions")
        return self._positions

    def account_events(self) -> Observable[AccountEvent]:
        """Margin calls and leverage / account-setting changes
        (:class:`~rxconnector.models.AccountEvent`; Binance USD-M ``MARGIN_CALL`` and
        ``ACCOUNT_CONFIG_UPDATE``). Not reconciled: a notice missed while disconnected
        is gone (its effect shows in positions and balances). Raises NotSupportedError
        where the venue has no such events."""
        self._require("account_events")
        return self._notices

    def balance_deltas(self) -> Observable[BalanceDelta]:
        """Deposits, withdrawals, transfers and external locks as signed amounts
        (Binance ``balanceUpdate`` / ``externalLockUpdate``). The new totals come on
        :meth:`balances`. Raises NotSupportedError where the venue has no such event."""
        self._require("balance_deltas")
        return self._deltas

    def raw_events(self) -> Observable[RawMessage]:
        """Every account event as ``(received_at_ms, payload)``, before parsing: the
        place for events without a model (Binance ``listStatus``, new event types)."""
        return self._raw

    def events(self) -> Observable[Any]:
        """Everything above on one stream, in the order it happened."""
        return self._events

    @property
    def closed(self) -> bool:
        return self._closed

    def note_placed(self, symbol: str, order_id: str) -> None:
        """Announce an order placed over REST, before the stream reports it.

        Why: if the stream is down when the order is placed and the order fills (or is
        cancelled) before it is back, the exchange never tells the stream, and the
        order is not open any more when reconciliation asks. Announced orders the
        stream has not reported are looked up one by one after a re-subscription, so
        their outcome is emitted (``reconciled=True``). No-op without subscribers.
        """
        run = self._run
        if run is not None:
            run.note_placed(symbol, order_id)

    async def close(self) -> None:
        """Complete every feed, close the socket and wait until it is closed.

        The socket gets a full close handshake (bounded by twice the socket's close
        timeout, see :func:`~rxconnector.transport.ws.connect_once`); cancelling its
        task instead would drop the connection with code 1006.
        """
        self._closed = True
        run = self._run
        if run is not None:
            run.finish()
        await self._tasks.wait()

    # -- internals ----------------------------------------------------------------------

    def _require(self, feed: str) -> None:
        if feed not in self._protocol.feeds:
            raise NotSupportedError(self._protocol.name, feed)

    def _report(self, error: Exception) -> None:
        callback = self._report_error
        if callback is None:
            self._log.warning("account stream problem", error=describe_error(error))
            return
        try:
            callback(error)
        except Exception:
            self._log.exception("report_error raised", error=describe_error(error))

    def _report_state(self, event: ConnectionEvent) -> None:
        callback = self._report_state_cb
        if callback is None:
            return
        try:
            callback(event)
        except Exception:
            self._log.exception("report_state raised", state=event.state.value)

    def _subscribe(
        self, observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if self._closed:
            observer.on_completed()
            return Disposable()
        sched = resolve_scheduler(self._scheduler, scheduler_)
        self._runs += 1
        run = _Run(self, observer, sched, f"{self._protocol.name}-private#{self._runs}")
        self._run = run
        run.start()

        def stop() -> None:
            if self._run is run:
                self._run = None
            run.stop()

        return Disposable(stop)


class _Run(SessionOutput):
    """One lifetime of the shared stream: from the first subscriber to the last dispose
    (or a fatal error, or close). Owns the reconnecting socket and the view of the
    account that reconciliation compares REST answers with."""

    def __init__(
        self,
        owner: AccountStreams,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        connection_id: str,
    ) -> None:
        self._owner = owner
        self._protocol = owner._protocol
        self._observer = observer
        self._sched = scheduler
        rate = self._protocol.max_messages_per_second
        max_messages = max(1, int(rate))
        config = owner._config
        self._spec = SocketSpec(
            url=owner._url,
            connection_id=connection_id,
            max_messages=max_messages,
            message_window=max_messages / rate + PACING_MARGIN,
            ping_message=self._protocol.ping_message(),
            ping_interval=config.ping_interval,
            connect_timeout=config.rest_timeout,
            max_frame_bytes=config.max_frame_bytes,
            report=owner._report_error,
        )
        self._log = owner._log.bind(connection=connection_id)
        self._source = SerialDisposable()
        #: make-before-break for the connection lifetime (private_rotation)
        self._lifetime = SerialDisposable()
        self._candidate: Replacement | None = None
        self._memory: FrameMemory | None = None
        self._rotations = 0
        self._base_id = connection_id
        self._reconciliation = SerialDisposable()
        #: the clock resync asked for by the last refused login (a REST call in flight)
        self._resync_call = SerialDisposable()
        self._slot = _Slot()
        self._link: ControlSender | None = None
        self._session: PrivateSession | None = None
        self._done = False
        self._subscribed = False
        self._ever_subscribed = False
        self._gap = False
        self._reconciling = False
        #: Between a connect and the end of its reconciliation, live events mark what
        #: they touched: REST answers never overwrite something newer.
        self._watching = False
        self._touched_orders: set[tuple[str, str]] = set()
        self._touched_assets: set[str] = set()
        self._orders: dict[tuple[str, str], OrderUpdate] = {}
        self._finished: OrderedDict[tuple[str, str], OrderUpdate] = OrderedDict()
        #: orders announced by note_placed that no event or REST answer has shown yet
        self._placed: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._balances: dict[str, Balance] = {}
        self._positions: dict[tuple[str, str], Position] = {}
        self._touched_positions: set[tuple[str, str]] = set()

    # -- lifetime -----------------------------------------------------------------------

    def start(self) -> None:
        source = self._socket_source(self._spec, self._slot)
        self._log.info("private stream starting", url=self._spec.url)
        self._source.disposable = source.subscribe(
            self._on_item, self._on_source_error, self._on_source_completed, scheduler=self._sched
        )

    def _socket_source(self, spec: SocketSpec, slot: _Slot) -> Observable[WsItem]:
        """The reconnecting socket at ``spec`` whose attempts log in through ``slot``."""
        owner, protocol = self._owner, self._protocol
        limiter = owner._attempt_limiter or shared_attempt_limiter(
            f"{protocol.name}-private",
            protocol.max_connection_attempts,
            protocol.connection_attempt_window,
            self._sched,
        )
        config = owner._config
        stale_after = config.stale_after
        if stale_after is None:
            stale_after = max(protocol.stale_after, 3 * config.ping_interval)
        return websocket(
            spec,
            owner._session,
            config,
            tasks=owner._tasks,
            attempt_limiter=limiter,
            stale_after=stale_after,
            connect=lambda spec_, session, tasks: self._attempt(spec_, session, tasks, slot),
            scheduler=self._sched,
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
        self._lifetime.dispose()
        if self._candidate is not None:
            self._candidate.dispose()
            self._candidate = None
        self._source.dispose()
        self._state(ConnectionState.CLOSED, reason)
        self._log.info("private stream closed", reason=reason)
        return True

    def _terminate(self, error: Exception) -> None:
        if self._close(describe_error(error)):
            self._log.error("private stream failed", error=describe_error(error))
            self._observer.on_error(error)

    def _state(self, state: ConnectionState, reason: str) -> None:
        spec = self._spec
        self._owner._report_state(
            ConnectionEvent(state, spec.connection_id, spec.url, now_ms(self._sched), reason=reason)
        )

    # -- the socket ---------------------------------------------------------------------

    def _attempt(
        self, spec: SocketSpec, session: SessionFactory, tasks: OwnedTasks, slot: _Slot
    ) -> Observable[WsItem]:
        """One connection attempt that the login conversation can also end (with a
        retryable error), so a refused login reconnects through the same backoff."""
        inner = with_url(self._protocol, self._owner._connect, spec, session, tasks)

        def subscribe(
            observer: abc.ObserverBase[WsItem], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            upstream = SingleAssignmentDisposable()
            ended = False

            def fail(error: Exception) -> None:
                nonlocal ended
                if ended:
                    return
                ended = True
                upstream.dispose()
                observer.on_error(error)

            def on_error(error: Exception) -> None:
                nonlocal ended
                if not ended:
                    ended = True
                    observer.on_error(error)

            def dispose() -> None:
                nonlocal ended
                ended = True
                if slot.fail is fail:
                    slot.fail = None
                upstream.dispose()

            slot.fail = fail
            upstream.disposable = inner.subscribe(
                observer.on_next, on_error, observer.on_completed, scheduler=scheduler
            )
            return Disposable(dispose)

        return Observable(subscribe)

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
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._owner._report(
                ParseError(f"undecodable frame on {self._spec.connection_id}", data)
            )
            return
        memory = self._memory
        if memory is not None and self._overlapping(memory, message):
            return
        try:
            session.on_message(message, received_at, self)
        except Exception as exc:  # a protocol bug must not end the stream
            self._owner._report(
                ParseError(f"{self._spec.connection_id}: cannot handle frame ({exc!r})", data)
            )

    def _on_connected(self, item: Connected) -> None:
        self._owner._report_state(item.event)
        self._link = item.link
        self._watch(True)
        session = self._session = self._protocol.new_session()
        self._arm_lifetime(self._owner._config.connection_lifetime)
        session.on_connected(self)

    def _on_connection_event(self, event: ConnectionEvent) -> None:
        self._owner._report_state(event)
        if event.state is not ConnectionState.RECONNECTING:
            return
        if self._candidate is None:
            self._lifetime.disposable = Disposable()  # re-armed by the next connect
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

    # -- make-before-break rotation (private_rotation) -------------------------------------

    def _arm_lifetime(self, seconds: float) -> None:
        def due(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self._rotate()

        self._lifetime.disposable = self._sched.schedule_relative(seconds, due)

    def _rotate(self) -> None:
        if self._done or self._candidate is not None or not self._subscribed:
            return
        self._rotations += 1
        spec = attrs.evolve(self._spec, connection_id=f"{self._base_id}.r{self._rotations}")
        lifetime = self._owner._config.connection_lifetime
        self._state(ConnectionState.ROTATING, f"connection lifetime ({lifetime:g} s) reached")
        self._log.info("private stream rotating", replacement=spec.connection_id)
        slot = _Slot()
        owner = self._owner
        candidate = Replacement(
            spec,
            self._protocol.new_session,
            owner._report_state,
            owner._report,
            lambda c: self._promote(c, slot),
            self._abandon,
        )
        self._candidate = candidate
        self._memory = FrameMemory()
        candidate.start(self._socket_source(spec, slot), self._sched)

    def _overlapping(self, memory: FrameMemory, message: Any) -> bool:
        """Record frames while a replacement logs in; after the switch, drop those the
        old socket already handled (for OVERLAP_SECONDS)."""
        until = memory.until
        if until is None:
            memory.remember(message)
            return False
        if self._sched.to_seconds(self._sched.now) > until:
            self._memory = None
            return False
        return memory.repeated(message)

    def _promote(self, candidate: Replacement, slot: _Slot) -> None:
        if self._done or candidate is not self._candidate:
            return
        old = self._spec
        self._candidate = None
        self._slot = slot
        self._spec = candidate.spec
        self._link = candidate.link
        self._session = candidate.session
        self._log = self._owner._log.bind(connection=candidate.spec.connection_id)
        candidate.forward = self._on_item
        candidate.forward_error = self._on_source_error
        candidate.forward_completed = self._on_source_completed
        # closing the old socket (normal close handshake) by dropping its source
        self._source.disposable = candidate.subscription
        self._owner._report_state(
            ConnectionEvent(
                ConnectionState.CLOSED,
                old.connection_id,
                old.url,
                now_ms(self._sched),
                reason=f"rotated to {candidate.spec.connection_id}",
            )
        )
        memory = self._memory
        if memory is not None:
            memory.until = self._sched.to_seconds(self._sched.now) + OVERLAP_SECONDS
        self._arm_lifetime(self._owner._config.connection_lifetime)
        self._log.info("private stream rotated", replaced=old.connection_id)
        if not self._subscribed:  # the old socket died first: reconcile the gap
            self._watch(True)
            self.subscribed()

    def _abandon(self, candidate: Replacement, reason: str) -> None:
        if candidate is not self._candidate:
            return
        self._candidate = None
        self._memory = None
        candidate.dispose()
        self._log.warning("private stream replacement abandoned", reason=reason)
        if not self._done and self._subscribed:
            self._arm_lifetime(RETRY_SECONDS)

    def _watch(self, on: bool) -> None:
        """Start (``True``) or stop noting what live events touch, from a clean slate:
        reconciliation leaves alone the orders, assets and positions an event changed
        after the REST answers were asked for."""
        self._watching = on
        self._touched_orders.clear()
        self._touched_assets.clear()
        self._touched_positions.clear()

    # -- SessionOutput --------------------------------------------------------------------

    def send(self, build: Callable[[], str]) -> None:
        link = self._link
        if link is not None and not self._done:
            link.send(build)

    def emit(self, item: object) -> None:
        if self._done:
            return
        if type(item) is OrderUpdate:
            item = self._track_order(item, live=True)
        elif type(item) is Balance:
            self._balances[item.asset] = item
            if self._watching:
                self._touched_assets.add(item.asset)
        elif type(item) is Position:
            self._positions[item.key] = item
            if self._watching:
                self._touched_positions.add(item.key)
        self._observer.on_next(item)

    def subscribed(self) -> None:
        if self._done:
            return
        self._subscribed = True
        first = not self._ever_subscribed
        self._ever_subscribed = True
        reconcile = self._gap and not first
        self._log.info("private stream subscribed", reconcile=reconcile)
        if reconcile:
            self._gap = False
            self._reconcile()
        else:
            self._gap = False
            self._watch(False)

    def resubscribing(self, reason: str) -> None:
        self._log.warning(
            "private subscription ended by the exchange; resubscribing", reason=reason
        )
        self._lost_subscription()
        self._watch(True)

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        if self._done:
            return
        if fatal:
            self._terminate(error)
            return
        self._log.warning("private login refused; reconnecting", error=describe_error(error))
        if resync_clock and self._owner._resync_clock is not None:
            self._resync()
        fail_attempt = self._slot.fail
        if fail_attempt is not None:
            fail_attempt(error)

    def report(self, error: Exception) -> None:
        self._owner._report(error)

    def _resync(self) -> None:
        resync = self._owner._resync_clock
        assert resync is not None
        try:
            self._resync_call.disposable = resync().subscribe(
                on_error=lambda exc: self._owner._report(exc), scheduler=self._sched
            )
        except Exception as exc:
            self._owner._report(exc)

    # -- the view of the account ----------------------------------------------------------

    def note_placed(self, symbol: str, order_id: str) -> None:
        key = (symbol, order_id)
        if self._done or self._known(key) is not None:
            return
        placed = self._placed
        placed[key] = None
        while len(placed) > _FINISHED_MEMORY:
            placed.popitem(last=False)

    def _known(self, key: tuple[str, str]) -> OrderUpdate | None:
        known = self._orders.get(key)
        return known if known is not None else self._finished.get(key)

    def _track_order(self, update: OrderUpdate, *, live: bool) -> OrderUpdate:
        key = (update.symbol, update.order_id)
        self._placed.pop(key, None)
        known = self._known(key)
        if live and not self._protocol.reports_last_fill:
            update = _with_last_fill(update, known)
        if live and self._watching:
            self._touched_orders.add(key)
        if update.status in TERMINAL_STATUSES:
            self._orders.pop(key, None)
            finished = self._finished
            finished[key] = update
            finished.move_to_end(key)
            while len(finished) > _FINISHED_MEMORY:
                finished.popitem(last=False)
        else:
            self._orders[key] = update
        return update

    # -- reconciliation -------------------------------------------------------------------

    def _reconcile(self) -> None:
        owner = self._owner
        fetch_open, fetch_balances = owner._fetch_open_orders, owner._fetch_balances
        fetch_positions = owner._fetch_positions
        if fetch_open is None and fetch_balances is None and fetch_positions is None:
            self._watching = False
            owner._report(
                FeedGapError(
                    self._spec.connection_id,
                    "re-subscribed after a gap; events during the gap may be missing "
                    "(no REST callables were given to reconcile with)",
                )
            )
            return
        self._reconciling = True
        group = CompositeDisposable()
        self._reconciliation.disposable = group
        # open as far as subscribers know, and placed but never reported
        known_open = [*self._orders, *self._placed]
        pending = 0

        def part_done() -> None:
            nonlocal pending
            pending -= 1
            if pending == 0 and self._reconciliation.disposable is group:
                self._reconciling = False
                self._watch(False)
                self._log.info("reconciliation finished")

        if fetch_open is not None:
            pending += 1

            def on_orders(orders: list[Order]) -> None:
                nonlocal pending
                gone = self._reconcile_orders(orders, known_open)
                fetch_order = owner._fetch_order
                if fetch_order is None:
                    if gone:
                        owner._report(
                            FeedGapError(
                                self._spec.connection_id,
                                f"{len(gone)} order(s) closed while disconnected cannot be "
                                "looked up (no fetch_order callable was given)",
                            )
                        )
                    return
                for symbol, order_id in gone:
                    pending += 1
                    self._call(
                        _bind(fetch_order, symbol, order_id),
                        self._reconcile_order,
                        f"order {symbol} {order_id}",
                        group,
                        part_done,
                    )

            self._call(fetch_open, on_orders, "open orders", group, part_done)
        if fetch_balances is not None:
            pending += 1
            self._call(fetch_balances, self._reconcile_balances, "balances", group, part_done)
        if fetch_positions is not None:
            pending += 1
            self._call(fetch_positions, self._reconcile_positions, "positions", group, part_done)

    def _call(
        self,
        make: Callable[[], Observable[_T]],
        on_value: Callable[[_T], None],
        what: str,
        group: CompositeDisposable,
        done: Callable[[], None],
    ) -> None:
        """Subscribe one REST call of the reconciliation; a failure is reported (the
        view may be stale) and counts as done."""
        finished = False

        def complete() -> None:
            nonlocal finished
            if not finished:
                finished = True
                done()

        def on_next(value: _T) -> None:
            if group.is_disposed or self._done:
                return
            try:
                on_value(value)
            except Exception as exc:
                self._owner._report(exc)

        def on_error(error: Exception) -> None:
            self._owner._report(
                FeedGapError(
                    self._spec.connection_id,
                    f"reconciliation could not fetch {what} ({describe_error(error)}); "
                    "changes made while disconnected may be missing",
                )
            )
            complete()

        try:
            source = make()
        except Exception as exc:
            on_error(exc)
            return
        group.add(source.subscribe(on_next, on_error, complete, scheduler=self._sched))

    def _reconcile_orders(
        self, orders: list[Order], known_open: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Emit what differs; return the known-open orders REST no longer lists."""
        listed: set[tuple[str, str]] = set()
        for order in orders:
            key = (order.symbol, order.order_id)
            listed.add(key)
            self._reconcile_order(order)
        touched = self._touched_orders
        return [key for key in known_open if key not in listed and key not in touched]

    def _reconcile_order(self, order: Order) -> None:
        key = (order.symbol, order.order_id)
        if key in self._touched_orders:
            return  # a live event already said something newer
        status = self._protocol.order_status(order.status)
        known = self._known(key)
        if known is not None:
            if (
                known.status == status
                and known.filled_quantity == order.filled_quantity
                and known.price == order.price
                and known.quantity == order.quantity
            ):
                return
            if order.filled_quantity < known.filled_quantity or (
                known.status in TERMINAL_STATUSES and status not in TERMINAL_STATUSES
            ):
                return  # REST is behind what subscribers saw
        update = _reconciled_update(order, status, known, now_ms(self._sched))
        self._track_order(update, live=False)
        self._observer.on_next(update)

    def _reconcile_balances(self, balances: tuple[Balance, ...]) -> None:
        touched = self._touched_assets
        listed: set[str] = set()
        received_at = now_ms(self._sched)
        changed: list[Balance] = []
        for balance in balances:
            asset = balance.asset
            listed.add(asset)
            if asset in touched:
                continue
            known = self._balances.get(asset)
            if known is None:
                if balance.free == _ZERO and balance.locked == _ZERO:
                    continue
            elif known.free == balance.free and known.locked == balance.locked:
                continue
            changed.append(attrs.evolve(balance, received_at=received_at, reconciled=True))
        for asset, known in self._balances.items():
            if asset not in listed and asset not in touched and known.total != _ZERO:
                changed.append(
                    Balance(asset, _ZERO, _ZERO, known.event_time, received_at, reconciled=True)
                )
        for balance in changed:
            self._balances[balance.asset] = balance
            self._observer.on_next(balance)

    def _reconcile_positions(self, positions: list[Position]) -> None:
        """Emit each position that differs from what subscribers saw (see
        :func:`~rxconnector.streams.private_positions.position_changes`)."""
        changed = position_changes(
            self._positions, self._touched_positions, positions, now_ms(self._sched)
        )
        for position in changed:
            self._positions[position.key] = position
            self._observer.on_next(position)


def _bind(
    fetch_order: Callable[[str, str], Observable[Order]], symbol: str, order_id: str
) -> Callable[[], Observable[Order]]:
    return lambda: fetch_order(symbol, order_id)


def _with_last_fill(update: OrderUpdate, known: OrderUpdate | None) -> OrderUpdate:
    """Derive ``last_fill_*`` from the change of the cumulative filled quantity."""
    before = known.filled_quantity if known is not None else _ZERO
    delta = update.filled_quantity - before
    if delta <= _ZERO:
        return update
    price = _fill_price(update, known, delta)
    return attrs.evolve(
        update, last_fill_quantity=delta, last_fill_price=price if price is not None else _ZERO
    )


def _fill_price(
    update: OrderUpdate | Order, known: OrderUpdate | None, delta: Decimal
) -> Decimal | None:
    """Average price of the ``delta`` filled between ``known`` and ``update``, from the
    two average prices (value now - value before) / delta; ``None`` when unknown."""
    average = update.average_price
    if average is None:
        return None
    if known is None or known.filled_quantity == _ZERO:
        return average
    if known.average_price is None:
        return None
    value = average * update.filled_quantity - known.average_price * known.filled_quantity
    return value / delta


def _reconciled_update(
    order: Order, status: str, known: OrderUpdate | None, received_at: float
) -> OrderUpdate:
    """The OrderUpdate that tells a subscriber what happened to ``order`` while the
    stream was down (see :meth:`AccountStreams.orders`)."""
    before = known.filled_quantity if known is not None else _ZERO
    delta = order.filled_quantity - before
    if delta > _ZERO:
        execution_type = "TRADE"
        price = _fill_price(order, known, delta) or _ZERO
    else:
        delta, price = _ZERO, _ZERO
        if status in ("CANCELED", "EXPIRED", "REJECTED"):
            execution_type = status
        elif status in TERMINAL_STATUSES:
            execution_type = "EXPIRED" if status == "EXPIRED_IN_MATCH" else "TRADE"
        else:
            execution_type = "NEW" if known is None else "REPLACED"
    return OrderUpdate(
        symbol=order.symbol,
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        side=order.side,
        type=order.type,
        status=status,
        execution_type=execution_type,
        price=order.price,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        last_fill_price=price,
        last_fill_quantity=delta,
        fee=_ZERO,
        fee_asset=None,
        event_time=order.update_time or order.time,
        received_at=received_at,
        reconciled=True,
    )
