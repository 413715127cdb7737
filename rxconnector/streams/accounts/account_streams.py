"""Private account streams: orders, balances, executions and positions over ONE connection.

:class:`AccountStreams` owns the private WebSocket of one account. Every feed it gives
(:meth:`~AccountStreams.orders`, :meth:`~AccountStreams.balances`, ...) is a view of the
same shared event stream, so however many subscribers there are, there is one socket
and one exchange subscription; the first subscriber connects, the last dispose closes.

What the venue says on the wire is not known here: a
:class:`~rxconnector.exchanges.account_protocol.PrivateProtocol`
(``exchanges/binance/user_stream.py``, ``exchanges/bybit/private.py``...) opens a
session per socket and tells the stream, through its ``SessionOutput``, what to send,
what to emit and when the stream is live. The rest is done by one small module each:

* **Connection and login** (:mod:`.run`, :mod:`.attempts`). The reconnecting source of
  :mod:`rxconnector.transport.ws` (backoff 1 s → 60 s with jitter, forever; attempt
  limiter; stale watchdog fed by the application pings we send every
  ``ConnectionConfig.ping_interval`` s). On every socket the session logs in (Binance:
  a signed ``userDataStream.subscribe.signature``; Bybit: ``auth`` then ``subscribe``).
  A refusal that retrying cannot fix (bad key, bad signature) errors every feed with an
  :class:`~rxconnector.errors.ExchangeError`; a transient one (timestamp outside the
  receive window, rate limit, server error) reconnects with backoff. A protocol that
  leases its socket URL per attempt (Binance USD-M's listenKey, :mod:`.listen_key`)
  holds the lease while the socket lives; a failed keep-alive ends the attempt.
* **Reconciliation** (:mod:`.reconcile`, :mod:`.view`, :mod:`.differences`). Events
  that happen while no subscription is live are lost by the exchange, not delayed. So
  after every re-subscription (a reconnect, or the exchange ending our subscription) -
  never after the first one - the open orders, balances and (with ``fetch_positions``)
  positions are fetched over REST with the injected callables, and whatever differs
  from what subscribers last saw is emitted with ``reconciled=True``; orders that were
  open before, or announced with :meth:`AccountStreams.note_placed`, and are no longer
  open are looked up one by one, so an order filled during the disconnect shows up as
  FILLED. See :meth:`AccountStreams.orders`.
* **24 h limit, made before broken** (:mod:`.rotation`). Before
  ``ConnectionConfig.connection_lifetime`` a replacement socket logs in; once it is
  subscribed it takes over and the old one is closed, with the frames both carried in
  the overlap delivered once.

Secrets: the protocol object holds the signer; nothing here logs frames, and errors
quote only what the exchange answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.errors import NotSupportedError
from rxconnector.exchanges.account_protocol import PrivateProtocol
from rxconnector.log import get_logger
from rxconnector.models import (
    AccountEvent,
    Balance,
    BalanceDelta,
    ConnectionEvent,
    Execution,
    Order,
    OrderUpdate,
    Position,
)
from rxconnector.operators import share
from rxconnector.rate.attempts import AttemptLimiter
from rxconnector.streams.accounts.reconcile import Fetchers
from rxconnector.streams.accounts.run import AccountRun, RunSettings
from rxconnector.streams.messages import RawMessage
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws import ConnectFn, connect_once
from rxconnector.transport.ws_types import SessionFactory, describe_error

__all__ = ["AccountStreams"]

_log = get_logger(component="account")

_M = TypeVar("_M")


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
        self._scheduler = scheduler
        self._report_error = report_error
        self._report_state_cb = report_state
        self._tasks = OwnedTasks(self._report)
        self._closed = False
        self._run: AccountRun | None = None
        self._runs = 0
        self._log = _log.bind(exchange=protocol.name)
        self._settings = RunSettings(
            protocol=protocol,
            url=url,
            session=session,
            config=config,
            fetch=Fetchers(fetch_open_orders, fetch_balances, fetch_order, fetch_positions),
            resync_clock=resync_clock,
            attempt_limiter=attempt_limiter,
            connect=connect,
            tasks=self._tasks,
            report=self._report,
            report_error=report_error,
            report_state=self._report_state,
            log=self._log,
        )
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
        run = AccountRun(
            self._settings, observer, sched, f"{self._protocol.name}-private#{self._runs}"
        )
        self._run = run
        run.start()

        def stop() -> None:
            if self._run is run:
                self._run = None
            run.stop()

        return Disposable(stop)
