"""The facade: one object per venue account that turns feeds and REST calls into Observables.

    async with rxc.Connector(rxc.Config.binance()) as conn:
        conn.ticker("BTCUSDT").pipe(ops.map(lambda t: t.last)).subscribe(print)

Feeds are cold and lazy: nothing is subscribed at the exchange until somebody
subscribes; subscribers of the same feed share one exchange subscription and one parse
of every message; the last dispose unsubscribes. Feeds survive disconnects, stalls and
garbage (the hub reconnects and resubscribes), report problems on :attr:`errors` and
:attr:`connection_state`, and complete when the connector stops.

REST calls are cold Observables (``await`` them or pipe them) that pass through the
request-weight limiter and the circuit breaker; the clock sync keeps signed requests'
timestamps on the exchange's time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

import aiohttp
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from rxconnector._scheduling import loop_scheduler
from rxconnector.clock import ClockSync
from rxconnector.config import Config
from rxconnector.errors import (
    CircuitOpenError,
    ConnectError,
    NotSupportedError,
    ParseError,
    RateLimitError,
    RequestTimeoutError,
    RxConnectorError,
    TransportError,
)
from rxconnector.exchanges.account_protocol import PrivateProtocol
from rxconnector.exchanges.base import FeedCatalog, FeedSpec
from rxconnector.exchanges.book_rules import snapshot_limit_for
from rxconnector.log import get_logger
from rxconnector.market_data import ConnectorFeeds
from rxconnector.models import (
    AccountEvent,
    AvgPrice,
    Balance,
    BookTicker,
    BreakerState,
    ClockOffset,
    ConnectionEvent,
    ConnectionState,
    DepthUpdate,
    Execution,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    Order,
    OrderBook,
    OrderUpdate,
    Position,
    SymbolInfo,
    Ticker,
    Trade,
)
from rxconnector.operators import (
    CircuitBreaker,
    breaker,
    breaker_waiting,
    conflate,
    default_retry_if,
    isolate,
    retry_with_backoff,
    share,
)
from rxconnector.rate.limiter import Priority, documented_limiter
from rxconnector.rest.api import RestApi
from rxconnector.rest.client import RestClient
from rxconnector.streams.accounts.account_streams import AccountStreams
from rxconnector.streams.continuity import gapless_trades
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.orderbook import SnapshotGate, maintain_order_book
from rxconnector.streams.trade_overlap import gapless_trades_by_overlap
from rxconnector.transport.http import HttpTransport
from rxconnector.venues import Venue, venue_for

__all__ = ["Connector"]

#: Order-book snapshots allowed in flight at once per connector (the limiter owns weight;
#: each book has at most one of its own in flight). 2 made a 200-book resync take 100
#: round trips; 8 keeps a resync within a few round trips without a burst of hundreds.
SNAPSHOTS_IN_FLIGHT = 8
#: Attempts of an idempotent REST call (the first and two retries, short backoff).
REST_ATTEMPTS = 3
#: Most the retry backoff adds over those attempts: 0.5 s + 1 s, each + up to 0.25 s.
REST_BACKOFF_BUDGET = 2.0
#: Candles asked for per page when walking back for the last N (every venue allows 1000).
KLINE_PAGE = 1000
#: Trades asked for per backfill page (Binance's REST maximum per call).
BACKFILL_PAGE = 1000

_T = TypeVar("_T")

#: Recorder hook: (connection id, local receive time ms, raw frame).
FrameHook = Callable[[str, float, "str | bytes"], None]


class Connector:
    """Feeds, REST calls and health of one venue as Observables.

    Args:
        config: the venue and its settings (:class:`~rxconnector.Config`).
        scheduler: the scheduler time-based machinery runs on; defaults to the running
            loop's ``AsyncIOScheduler``. Tests may pass a ``TestScheduler`` to the
            operators directly instead.
        session: an aiohttp ``ClientSession`` to use (not closed on stop); by default
            the connector creates and closes its own.
        on_frame: optional hook receiving every raw WebSocket frame (the recorder).
    """

    def __init__(
        self,
        config: Config,
        *,
        scheduler: abc.SchedulerBase | None = None,
        session: aiohttp.ClientSession | None = None,
        on_frame: FrameHook | None = None,
    ) -> None:
        self.config = config
        self.venue: Venue = venue_for(config)
        self._scheduler_override = scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._session = session
        self._owns_session = session is None
        self._on_frame = on_frame
        self._log = get_logger(exchange=config.exchange)
        self._errors: Subject[Exception] = Subject()
        self._states: Subject[ConnectionEvent] = Subject()
        # A raising subscriber of a health stream is logged and detached; it must not
        # reach the hub or parser that reported the event (nor the other subscribers).
        self._errors_view: Observable[Exception] = self._errors.pipe(isolate())
        self._states_view: Observable[ConnectionEvent] = self._states.pipe(isolate())
        self._latest_states: dict[str, ConnectionEvent] = {}
        self._hubs: dict[str, SubscriptionHub] = {}
        self._specs: dict[str, FeedSpec] = {}
        self._feeds: dict[tuple[Any, ...], Observable[Any]] = {}
        self._breaker = CircuitBreaker(
            f"{config.exchange}-rest", config.breaker, scheduler=scheduler
        )
        self._rest: Any = None
        self._rest_client: RestClient | None = None
        self._clock: ClockSync | None = None
        self._clock_subscription: abc.DisposableBase | None = None
        self._started = False
        self._stopped = False
        self._snapshot_gate: SnapshotGate | None = None
        self._accounts: AccountStreams | None = None
        self._rate_limit_probe: abc.DisposableBase | None = None
        self._probe_failure: TransportError | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Connector:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._started and not self._stopped

    async def start(self) -> None:
        """Open the HTTP session, start the clock sync and wait for its first result.

        Idempotent. The first clock sync is also the reachability check: when it fails
        because the exchange cannot be reached at all (DNS lookup failed, connection
        refused, TLS handshake failed, no answer), ``start`` stops the connector and
        raises one :class:`~rxconnector.ConnectError` naming the host and what was tried,
        within about ``rest_timeout`` x 3 attempts. Any other failed first sync (an
        exchange error such as a 5xx) does not fail ``start``: it is reported on
        :attr:`errors` and retried every ``sync_interval``. With ``clock_sync`` disabled
        ``start`` sends nothing, and the first call fails the same way instead.
        """
        if self._stopped:
            raise RxConnectorError("this Connector was stopped; create a new one")
        if self._started:
            return
        self._scheduler = self._scheduler_override or loop_scheduler()
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._rest = self._build_rest()
        self._snapshot_gate = SnapshotGate(SNAPSHOTS_IN_FLIGHT, scheduler=self._scheduler)
        self._started = True
        try:
            await self._learn_rate_limits()
        except BaseException:
            await asyncio.shield(self.stop())  # cancelled during start: release everything
            raise
        self._log.info("connector started", rest_url=self.venue.rest_url, ws_url=self.venue.ws_url)
        if self.config.clock_sync.enabled:
            first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            first_failure: list[Exception] = []
            began = time.monotonic()

            def _first(_: object) -> None:
                if not first.done():
                    first.set_result(None)

            def clock_report(error: Exception) -> None:
                # The first sync failed (reported, retried every sync_interval): start()
                # need not wait any longer for it.
                if not first.done():
                    first_failure.append(error)
                _first(error)
                self._report(error)

            clock = self._clock = ClockSync(
                lambda: self._rest.server_time(),
                self.config.clock_sync,
                scheduler=self._scheduler,
                report=clock_report,
            )

            probe = clock.offsets.pipe(ops.take(1)).subscribe(_first, lambda _e: None)
            self._clock_subscription = clock.start()
            # Long enough for a dead host to fail all its attempts (each up to
            # rest_timeout, with the retry backoff between them) and for a live one to
            # answer every sample: otherwise start() would shrug at a silent host.
            timeout = (
                self.config.connection.rest_timeout
                * (self.config.clock_sync.samples + REST_ATTEMPTS)
                + REST_BACKOFF_BUDGET
            )
            try:
                await asyncio.wait_for(first, timeout)
            except TimeoutError:
                self._log.warning("first clock sync did not finish", timeout=timeout)
            except BaseException:
                # Cancelled (Ctrl-C, a timeout around start()): ``async with`` never
                # reaches __aexit__, so release the session and the clock sync here
                # (``finally`` disposes the probe).
                await asyncio.shield(self.stop())
                raise
            finally:
                probe.dispose()
            unreachable = self._network_failure(first_failure[0] if first_failure else None)
            if unreachable is not None:
                await self.stop()
                raise self._unreachable(unreachable, time.monotonic() - began)

    def _network_failure(self, first_sync: Exception | None) -> TransportError | None:
        """The transport error that made the first clock sync fail, if that is why.

        The rate-limit probe (``exchangeInfo``) runs alongside; its failures count in
        the breaker too, so against a dead host the sync may end with the breaker open
        rather than with the transport error itself.
        """
        if isinstance(first_sync, TransportError):
            return first_sync
        if isinstance(first_sync, CircuitOpenError) and self._probe_failure is not None:
            return self._probe_failure
        return None

    def _unreachable(self, error: TransportError, elapsed: float) -> ConnectError:
        """One error saying which host could not be reached, why, and what was tried."""
        host = urlsplit(self.venue.rest_url).netloc or self.venue.rest_url
        if isinstance(error, ConnectError) and error.kind:
            why = error.kind
        elif isinstance(error, RequestTimeoutError):
            why = f"no answer within rest_timeout ({self.config.connection.rest_timeout:g} s)"
        else:
            why = "connection failed"
        path = self.venue.time_path or "the server time"
        # the operating system's / TLS library's own words, e.g. "[SSL:
        # WRONG_VERSION_NUMBER] wrong version number" or "Name or service not known"
        detail = str(getattr(error.__cause__, "os_error", "") or "")
        tried = f"GET {path}"
        if self._rate_limit_probe is not None:
            tried += " and the exchange info"
        message = (
            f"cannot reach {self.config.exchange} at {host}: {why}"
            f"{f' ({detail})' if detail else ''}; tried {tried} on {self.venue.rest_url} "
            f"(up to {REST_ATTEMPTS} attempts each) for {elapsed:.1f} s; check rest_url, "
            "the network or DNS"
        )
        failure = ConnectError(message)
        failure.kind = why
        failure.__cause__ = error
        return failure

    async def _learn_rate_limits(self) -> None:
        """Ask ``exchangeInfo`` for the venue's current weight limit (waiting at most
        ``rest_timeout``): the REST object hands its ``rateLimits`` to the limiter,
        capped by the Config. A failure is logged; the documented limit stays."""
        rest = self._rest
        limiter = getattr(getattr(rest, "_client", None), "limiter", None)
        if limiter is None or not hasattr(rest, "request_weight_limit"):
            return
        if not self.venue.rate_limits_in_exchange_info:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def finish(_: object = None) -> None:
            if not done.done():
                done.set_result(None)

        def failed(error: Exception) -> None:
            if isinstance(error, TransportError):
                # the exchange is unreachable: start() says so once, with the reason
                # (the first clock sync fails too and is what start() raises)
                self._probe_failure = error
                self._log.info("exchangeInfo for rate limits failed", error=repr(error))
            else:
                self._log.warning("exchangeInfo for rate limits failed", error=repr(error))
            finish()

        try:
            self._rate_limit_probe = rest.exchange_info().subscribe(
                finish, failed, finish, scheduler=self._scheduler
            )
        except Exception as exc:  # never let the probe stop start()
            failed(exc)
        timeout = self.config.connection.rest_timeout
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            self._log.warning("exchangeInfo for rate limits did not answer", timeout=timeout)

    async def stop(self) -> None:
        """Complete every feed, close every socket and the session, cancel every task.

        Idempotent; safe to call from ``finally`` blocks and notebook cells.
        """
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        if self._rest_client is not None:
            # First: calls in flight end as ConnectorStoppedError, before the session
            # closes under them (which the breaker would count as failures).
            self._rest_client.close()
        if self._rate_limit_probe is not None:
            self._rate_limit_probe.dispose()
        if self._clock_subscription is not None:
            self._clock_subscription.dispose()
            self._clock_subscription = None
        if self._clock is not None:
            self._clock.close()
        if self._accounts is not None:
            accounts, self._accounts = self._accounts, None
            try:
                await accounts.close()
            except Exception as exc:
                self._log.warning("account streams close failed", error=repr(exc))
        hubs = list(self._hubs.values())
        self._hubs.clear()
        for hub in hubs:
            try:
                await hub.close()
            except Exception as exc:  # stopping must finish even if one hub misbehaves
                self._log.warning("hub close failed", error=repr(exc))
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None
        self._states.on_completed()
        self._errors.on_completed()
        self._log.info("connector stopped")

    @property
    def scheduler(self) -> abc.SchedulerBase:
        """The scheduler the connector's timing runs on (the loop's by default)."""
        if self._scheduler is not None:
            return self._scheduler
        return self._scheduler_override or loop_scheduler()

    # -- health -------------------------------------------------------------------------

    @property
    def errors(self) -> Observable[Exception]:
        """Non-fatal problems: unparseable frames, rejected subscriptions, resyncs,
        trade gaps, clock drift, subscriber exceptions. Hot; completes on stop."""
        return self._errors_view

    @property
    def connection_state(self) -> Observable[ConnectionEvent]:
        """Connection events of every WebSocket connection; a new subscriber first gets
        the latest event of each connection, then live ones."""

        def build(_: abc.SchedulerBase | None) -> Observable[ConnectionEvent]:
            latest = list(self._latest_states.values())
            return reactivex.from_iterable(latest).pipe(ops.concat(self._states_view))

        return reactivex.defer(build)

    @property
    def clock(self) -> Observable[ClockOffset]:
        """Clock measurements (the latest is replayed to new subscribers)."""
        if self._clock is None:
            return reactivex.empty()
        return self._clock.offsets

    def now(self) -> int:
        """Exchange time in ms: the local clock corrected by the latest measured offset."""
        if self._clock is not None:
            return self._clock.now()
        return int(time.time() * 1000)

    @property
    def breaker(self) -> CircuitBreaker:
        """The REST circuit breaker (state, stats, reset)."""
        return self._breaker

    @property
    def breaker_state(self) -> Observable[BreakerState]:
        """The REST circuit breaker's state; the current one is replayed."""
        return self._breaker.state

    @property
    def rest(self) -> RestApi:
        """The venue's full REST API object (e.g. ``BinanceSpotRest``), typed by the
        calls every venue answers (:class:`~rxconnector.rest.api.RestApi`)."""
        rest: RestApi = self._require_rest()
        return rest

    # -- public market feeds --------------------------------------------------------------

    def ticker(self, symbol: str) -> Observable[Ticker]:
        """24 h rolling ticker of ``symbol``, about once a second."""
        return self._public("ticker", lambda f: f.ticker(symbol))

    def mini_ticker(self, symbol: str) -> Observable[MiniTicker]:
        """24 h rolling OHLC and volume of ``symbol``."""
        return self._public("mini_ticker", lambda f: f.mini_ticker(symbol))

    def book_ticker(self, symbol: str) -> Observable[BookTicker]:
        """Best bid/ask of ``symbol`` on every change."""
        return self._public("book_ticker", lambda f: f.book_ticker(symbol))

    def klines(self, symbol: str, interval: str) -> Observable[Kline]:
        """Candles of ``symbol`` for ``interval`` (validated: a ValueError lists valid ones)."""
        return self._public("klines", lambda f: f.klines(symbol, interval), interval)

    def depth(self, symbol: str, levels: int = 20) -> Observable[OrderBook]:
        """The exchange's partial book (top ``levels``) as pushed by the venue."""
        return self._public("depth", lambda f: f.depth(symbol, levels), levels)

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        """Binance's rolling average price."""
        return self._public("avg_price", lambda f: f.avg_price(symbol))

    def mark_price(self, symbol: str) -> Observable[MarkPrice]:
        """Futures mark price with funding rate and next funding time."""
        return self._public("mark_price", lambda f: f.mark_price(symbol))

    def liquidations(self, symbol: str) -> Observable[Liquidation]:
        """Futures forced liquidations of ``symbol``."""
        return self._public("liquidations", lambda f: f.liquidations(symbol))

    def diff_depth(self, symbol: str) -> Observable[DepthUpdate]:
        """The raw diff-depth stream (``DepthUpdate``), as used by :meth:`order_book`."""
        return self._public("diff_depth", lambda f: f.diff_depth(symbol))

    def trades(self, symbol: str) -> Observable[Trade]:
        """Every trade of ``symbol`` exactly once, in id order, across reconnects.

        After a reconnect the missing id range is fetched over REST and emitted (marked
        ``backfilled``) before live trades resume; a gap that cannot be recovered is
        reported on :attr:`errors` with the exact missing id range.
        """
        return self._gapless("trades", symbol)

    def agg_trades(self, symbol: str) -> Observable[Trade]:
        """Every aggregate trade of ``symbol`` exactly once, in id order (see :meth:`trades`)."""
        return self._gapless("agg_trades", symbol)

    def order_book(self, symbol: str, depth: int = 20) -> Observable[OrderBook]:
        """A locally maintained book, emitted only while consistent with the exchange.

        Built from the diff stream and a REST snapshot following the venue's documented
        procedure; a gap, a crossed book or a reconnect resyncs this symbol only (and is
        reported on :attr:`errors`). Slow subscribers get the newest book, not a queue.
        """
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        spec = self._spec("diff_depth", lambda f: f.book_diffs(symbol, depth))
        key = ("order_book", spec.topic, depth)
        cached = self._feeds.get(key)
        if cached is not None:
            return cached
        rule = self.venue.book_rule
        # A venue whose book topic is a window of the book (Bybit) parses once per
        # requested depth; a plain diff stream (Binance) once per topic.
        windowed = self.venue.book_window(depth) is not None
        diffs = self._parsed(
            spec, ("diff_depth", spec.topic, *((depth,) if windowed else ())), keep_restarts=True
        )
        fetch: Callable[[], Observable[OrderBook]] | None = None
        limit = snapshot_limit_for(rule, depth)
        if rule.uses_rest and limit is not None:
            norm = symbol.upper()
            snapshot_limit = limit

            def fetch() -> Observable[OrderBook]:
                book: Observable[OrderBook] = self._require_rest().depth_snapshot(
                    norm, snapshot_limit, priority=Priority.RECOVERY
                )
                return book

        def build(_: abc.SchedulerBase | None) -> Observable[OrderBook]:
            return maintain_order_book(
                diffs,
                fetch,
                rule,
                depth,
                topic=spec.topic,
                snapshot_limit=limit,
                window=self.venue.book_window(depth),
                gate=self._snapshot_gate,
                request_resubscribe=lambda: self._hub_for(spec.topic).resubscribe(spec.topic),
                scheduler=self.scheduler,
                report=self._report,
            )

        feed: Observable[OrderBook] = reactivex.defer(build).pipe(
            conflate(),
            share(on_subscriber_error=self._report),
        )
        self._feeds[key] = feed
        return feed

    # -- account feeds (API key needed) ----------------------------------------------

    def orders(self) -> Observable[OrderUpdate]:
        """Your order updates (new, fills, cancels) from the private stream.

        After any reconnect, open orders are fetched over REST and what changed while
        disconnected is emitted with ``reconciled=True``, so the view is never silently
        stale. One exchange subscription serves every subscriber.
        """
        return self._account_feed(lambda a: a.orders())

    def balances(self) -> Observable[Balance]:
        """Balance changes from the private stream (reconciled after reconnects)."""
        return self._account_feed(lambda a: a.balances())

    def executions(self) -> Observable[Execution]:
        """Your fills, one per execution."""
        return self._account_feed(lambda a: a.executions())

    def positions(self) -> Observable[Position]:
        """Derivatives positions (Binance USD-M, Bybit linear/inverse), reconciled over
        REST after every private-stream reconnect (``reconciled=True``; a position closed
        while disconnected comes flat, size 0)."""
        return self._account_feed(lambda a: a.positions())

    def account_events(self) -> Observable[AccountEvent]:
        """Margin calls and leverage / account-setting changes (Binance USD-M
        ``MARGIN_CALL``, ``ACCOUNT_CONFIG_UPDATE``) on a stream of their own."""
        return self._account_feed(lambda a: a.account_events())

    def _account_feed(self, pick: Callable[[AccountStreams], Observable[_T]]) -> Observable[_T]:
        def build(_: abc.SchedulerBase | None) -> Observable[_T]:
            return pick(self._account_streams())

        return reactivex.defer(build)

    def _account_streams(self) -> AccountStreams:
        if self._accounts is not None:
            return self._accounts
        if self._stopped or not self._started or self._session is None:
            raise RxConnectorError(
                "the Connector is not running: subscribe to feeds between start() and stop()"
            )
        cfg = self.config
        if not cfg.has_credentials:
            raise RxConnectorError(
                "account feeds need api_key and api_secret in the Config (Config.from_env)"
            )
        # The URLs come from the venue, resolved once from the Config: an override of
        # any URL carries to the private endpoint, never a production default.
        protocol, url = self.venue.make_account(self._require_rest(), self.now, self.scheduler)
        session = self._session
        self._accounts = AccountStreams(
            protocol,
            url,
            lambda: session,
            cfg.connection,
            fetch_open_orders=lambda: self.open_orders(),
            fetch_balances=lambda: self.account(),
            fetch_order=lambda symbol, order_id: self.get_order(symbol, order_id=order_id),
            fetch_positions=self._positions_fetcher(protocol),
            resync_clock=self._resync_clock,
            scheduler=self.scheduler,
            report_error=self._report,
            report_state=self._on_state,
        )
        return self._accounts

    # -- REST ---------------------------------------------------------------------------

    def ping(self) -> Observable[None]:
        """Round trip to the REST API."""
        return self._call(lambda rest: rest.ping())

    def server_time(self) -> Observable[int]:
        """The exchange's clock, ms."""
        return self._call(lambda rest: rest.server_time())

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules per symbol (tick size, step size, min notional...)."""
        return self._call(lambda rest: rest.exchange_info(symbols))

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]:
        """A REST order-book snapshot (weight grows with ``limit``)."""
        return self._call(lambda rest: rest.depth_snapshot(symbol, limit))

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """The most recent trades over REST."""
        return self._call(lambda rest: rest.recent_trades(symbol, limit))

    def kline_history(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        *,
        limit: int | None = None,
    ) -> Observable[Kline]:
        """Candles, oldest first, walked page by page through the limiter.

        ``kline_history(sym, "1m", start)``: every candle opening from ``start`` (ms)
        until now (``end`` ms, inclusive, when given). ``kline_history(sym, "1m",
        limit=N)``: the last ``N`` candles up to now (or up to ``end``), the running one
        included (``closed=False``). ``start`` and ``limit`` together: the first ``N``
        from ``start``.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit must be a positive number of candles, got {limit!r}")
        if start is None:
            if limit is None:
                raise ValueError(
                    "kline_history needs start (ms) or limit (the last N candles), e.g. "
                    "kline_history(symbol, interval, limit=100)"
                )
            count = limit
            return self._call(lambda rest: _last_klines(rest, symbol, interval, end, count))
        history: Observable[Kline] = self._call(
            lambda rest: rest.klines_history(symbol, interval, start, end)
        )
        return history if limit is None else history.pipe(ops.take(limit))

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """The 24 h ticker over REST."""
        return self._call(lambda rest: rest.ticker_24h(symbol))

    def account(self) -> Observable[Any]:
        """Balances and permissions (signed)."""
        return self._call(lambda rest: rest.account())

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[Order]:
        """Place an order (signed, never retried blindly; see OrderStatusUnknownError).

        The placed order is announced to the account streams, so that if the private
        stream is down and the order ends before it is back, reconciliation still looks
        it up and :meth:`orders` emits its outcome.
        """
        return self._call(
            lambda rest: rest.place_order(
                symbol,
                side,
                type,
                quantity=quantity,
                price=price,
                time_in_force=time_in_force,
                client_order_id=client_order_id,
                **extra,
            )
        ).pipe(ops.do_action(on_next=self._announce_placed))

    def _positions_fetcher(
        self, protocol: PrivateProtocol
    ) -> Callable[[], Observable[list[Position]]] | None:
        """Positions to reconcile with, where the account has them (not Binance Spot,
        not a Bybit ``spot`` connector: its REST has no positions to ask for)."""
        if "positions" not in protocol.feeds or not self.venue.positions_over_rest:
            return None
        return lambda: self.open_positions()

    def _announce_placed(self, order: Order) -> None:
        accounts = self._accounts
        if accounts is not None:
            accounts.note_placed(order.symbol, order.order_id)

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        **extra: Any,
    ) -> Observable[Any]:
        """Validate an order at the exchange without placing it."""
        return self._call(
            lambda rest: rest.test_order(
                symbol,
                side,
                type,
                quantity=quantity,
                price=price,
                time_in_force=time_in_force,
                **extra,
            )
        )

    def cancel_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Cancel one order by exchange id or client order id."""
        return self._call(
            lambda rest: rest.cancel_order(
                symbol, order_id=order_id, client_order_id=client_order_id
            )
        )

    def get_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Look an order up (resolves an OrderStatusUnknownError)."""
        return self._call(
            lambda rest: rest.get_order(symbol, order_id=order_id, client_order_id=client_order_id)
        )

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """Open orders, of one symbol or all."""
        return self._call(lambda rest: rest.open_orders(symbol))

    def open_positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """Derivatives positions over REST (Binance USD-M ``positionRisk``, Bybit
        ``position/list``), of one symbol or all; flat ones are left out. Binance Spot
        has no positions: :class:`~rxconnector.NotSupportedError`."""

        def make(rest: Any) -> Observable[list[Position]]:
            positions = getattr(rest, "positions", None)
            if positions is None:  # not an AttributeError from inside the library
                raise NotSupportedError(self.venue.name, "positions", _DERIVATIVES)
            listed: Observable[list[Position]] = positions(symbol)
            return listed

        return self._call(make)

    # -- internals ----------------------------------------------------------------------

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

    def _require_rest(self) -> Any:
        if self._rest is None:
            raise RxConnectorError(
                "the Connector is not started: use 'async with Connector(...)' or "
                "'await connector.start()' first"
            )
        return self._rest

    def _call(self, make: Callable[[Any], Observable[_T]]) -> Observable[_T]:
        """Defer to the venue REST object so errors of a not-started connector are
        delivered as ``on_error`` at subscription, like every other failure."""
        return reactivex.defer(lambda _: make(self._require_rest()))

    def _build_rest(self) -> Any:
        cfg = self.config
        limiter = (
            documented_limiter(
                cfg.exchange, cfg.rate_limit.max_weight_per_minute, scheduler=self._scheduler
            )
            if cfg.rate_limit.enabled
            else None
        )
        guard = breaker(self._breaker) if cfg.breaker.enabled else None
        recovery_guard = breaker_waiting(self._breaker) if cfg.breaker.enabled else None
        import tenacity

        retry = retry_with_backoff(
            wait=tenacity.wait_exponential(multiplier=0.5, max=8) + tenacity.wait_random(0, 0.25),
            stop=tenacity.stop_after_attempt(REST_ATTEMPTS),
            retry_if=_rest_retryable,
            scheduler=self._scheduler,
        )
        session_ref = self

        def transport() -> HttpTransport:
            if session_ref._session is None:
                raise RxConnectorError("the Connector is stopped")
            return HttpTransport(session_ref._session, timeout=cfg.connection.rest_timeout)

        client = RestClient(
            transport,
            base_url=self.venue.rest_url,
            exchange=cfg.exchange,
            limiter=limiter,
            guard=guard,
            recovery_guard=recovery_guard,
            retry=retry,
            on_timestamp_rejected=self._resync_clock,
            dialect=self.venue.make_dialect(),
            scheduler=self._scheduler,
            log=self._log.bind(component="rest"),
        )
        self._rest_client = client
        return self.venue.make_rest(client, cfg, self.now)

    def _resync_clock(self) -> Observable[Any]:
        if self._clock is None:
            return reactivex.empty()
        return self._clock.sync_now()

    def _spec(self, feed: str, spec_of: Callable[[FeedCatalog], FeedSpec]) -> FeedSpec:
        """The venue's spec of ``feed`` (``spec_of`` asks the catalog for it), once
        ``feed`` is known to exist there."""
        if feed not in self.venue.supported_feeds:
            raise NotSupportedError(self.venue.name, feed, _instead(feed, self.venue))
        spec = spec_of(self.venue.feeds)
        # Several feeds may share one wire topic (Bybit tickers.X serves ticker,
        # mini_ticker and mark_price); their sequence keys agree, so the first is kept.
        self._specs.setdefault(spec.topic, spec)
        return spec

    def _public(
        self, feed: str, spec_of: Callable[[FeedCatalog], FeedSpec], *options: Any
    ) -> Observable[Any]:
        """A public feed parsed and shared; keyed by ``feed``, its topic (which holds the
        normalized symbol) and the ``options`` after the symbol (a depth's levels)."""
        spec = self._spec(feed, spec_of)
        return self._parsed(spec, (feed, spec.topic, *options), keep_restarts=False)

    def _parsed(
        self, spec: FeedSpec, feed_key: tuple[Any, ...], *, keep_restarts: bool
    ) -> Observable[Any]:
        """The feed's messages parsed once and shared by every subscriber.

        Keyed by feed and arguments, not by wire topic: one topic can serve several
        feeds with different parsers; the hub still shares one exchange subscription.
        """
        key = ("parsed", feed_key, keep_restarts)
        cached = self._feeds.get(key)
        if cached is not None:
            return cached

        def build(_: abc.SchedulerBase | None) -> Observable[Any]:
            return self._hub_for(spec.topic).feed(spec.topic)

        feed = reactivex.defer(build).pipe(
            _parse_messages(spec, self._report, keep_restarts),
            share(on_subscriber_error=self._report),
        )
        self._feeds[key] = feed
        return feed

    def _gapless(self, feed: str, symbol: str) -> Observable[Trade]:
        spec = self._spec(feed, lambda f: _TRADE_SPECS[feed](f, symbol))
        key = ("gapless", feed, spec.topic)
        cached = self._feeds.get(key)
        if cached is not None:
            return cached
        live = self._parsed(spec, (feed, spec.topic), keep_restarts=True)
        norm = symbol.upper()

        def build(_: abc.SchedulerBase | None) -> Observable[Trade]:
            rest = self._require_rest()
            if self.venue.trade_continuity == "overlap":
                recent = rest.trade_backfill(feed, norm)
                return gapless_trades_by_overlap(
                    live,
                    lambda: recent(),
                    topic=spec.topic,
                    report=self._report,
                    scheduler=self.scheduler,
                )

            def backfill(from_id: int) -> Observable[list[Trade]]:
                page: Observable[Trade] = rest.trades_between(
                    feed, norm, from_id, from_id + BACKFILL_PAGE - 1, priority=Priority.BACKFILL
                )
                return page.pipe(ops.to_list())

            # A venue that can prove plain trades from aggregates (Binance Spot's
            # ``trades_after``) backfills the trade feed at a lower weight.
            cheaper = getattr(rest, "trades_after", None) if feed == "trades" else None

            def backfill_since(
                from_id: int, since: int, share: float | None
            ) -> Observable[list[Trade]]:
                assert cheaper is not None
                page: Observable[list[Trade]] = cheaper(
                    norm, from_id, since, priority=Priority.BACKFILL, continuation=share
                )
                return page

            return gapless_trades(
                live,
                backfill,
                topic=spec.topic,
                report=self._report,
                scheduler=self.scheduler,
                backfill_since=backfill_since if cheaper is not None else None,
            )

        result: Observable[Trade] = reactivex.defer(build).pipe(
            share(on_subscriber_error=self._report)
        )
        self._feeds[key] = result
        return result

    def _hub_for(self, topic: str) -> SubscriptionHub:
        if self._stopped or not self._started or self._session is None:
            raise RxConnectorError(
                "the Connector is not running: subscribe to feeds between start() and stop()"
            )
        endpoint = self.venue.protocol.endpoint_for(topic)
        hub = self._hubs.get(endpoint)
        if hub is None:
            specs = self._specs

            def sequence_of(topic: str, payload: Any) -> int | None:
                spec = specs.get(topic)
                if spec is None or spec.sequence is None:
                    return None
                return spec.sequence(payload)

            session = self._session
            hub = SubscriptionHub(
                self.venue.protocol,
                self.venue.ws_url,
                lambda: session,
                self.config.connection,
                endpoint=endpoint,
                scheduler=self.scheduler,
                report_error=self._report,
                report_state=self._on_state,
                sequence_of=sequence_of,
                on_frame=self._on_frame,
            )
            self._hubs[endpoint] = hub
        return hub


def _last_klines(
    rest: Any, symbol: str, interval: str, end: int | None, count: int
) -> Observable[Kline]:
    """The last ``count`` candles opening at or before ``end`` (None: now), oldest first.

    Pages of at most :data:`KLINE_PAGE` walk backwards from ``end`` (each page's
    ``end`` is just before the oldest candle seen so far) until ``count`` candles are
    in hand or the exchange has no older ones; then they are emitted in time order.
    """

    def fetch(before: int | None, wanted: int, later: list[Kline]) -> Observable[list[Kline]]:
        size = min(KLINE_PAGE, wanted)

        def step(page: list[Kline]) -> Observable[list[Kline]]:
            if before is not None:
                page = [k for k in page if k.open_time <= before]
            if later:
                page = [k for k in page if k.open_time < later[0].open_time]
            candles = page + later
            if not page or len(page) >= wanted or len(page) < size:
                return reactivex.just(candles)
            return fetch(page[0].open_time - 1, wanted - len(page), candles)

        page: Observable[list[Kline]] = rest.klines(symbol, interval, end=before, limit=size)
        return page.pipe(ops.flat_map(step))

    def emit(candles: list[Kline]) -> Observable[Kline]:
        return reactivex.from_iterable(candles[-count:])

    return fetch(end, count, []).pipe(ops.flat_map(emit))


#: The trade feeds :meth:`Connector._gapless` serves, by name.
_TRADE_SPECS: Final[dict[str, Callable[[FeedCatalog, str], FeedSpec]]] = {
    "trades": lambda feeds, symbol: feeds.trades(symbol),
    "agg_trades": lambda feeds, symbol: feeds.agg_trades(symbol),
}

#: What to use when a venue lacks a feed: a feed of the same venue, if it has it...
_SAME_VENUE_INSTEAD: Final = {
    "trades": "agg_trades",
    "agg_trades": "trades",
    "avg_price": "ticker",
}
#: ...else the venues that have it.
_DERIVATIVES = "a derivatives venue: Config.binance_futures() or Config.bybit('linear')"
_OTHER_VENUE_INSTEAD: Final = {
    "mark_price": _DERIVATIVES,
    "liquidations": _DERIVATIVES,
    "avg_price": "Config.binance() (Binance Spot)",
    "agg_trades": "Config.binance() or Config.binance_futures()",
}


def _instead(feed: str, venue: Venue) -> str:
    """What a user asking ``venue`` for the missing ``feed`` should use."""
    alternative = _SAME_VENUE_INSTEAD.get(feed)
    if alternative is not None and alternative in venue.supported_feeds:
        return alternative
    return _OTHER_VENUE_INSTEAD.get(feed, "")


def _rest_retryable(error: Exception) -> bool:
    """Which REST failures an idempotent call retries (3 attempts, short backoff).

    An open circuit and a rate limit are answers, not accidents: retrying would either
    wait out the breaker's whole open window (no longer "failing fast") or queue behind
    a ban, so they go straight to the caller, who sees ``retry_after``.
    """
    if isinstance(error, CircuitOpenError | RateLimitError):
        return False
    return default_retry_if(error)


def _parse_messages(
    spec: FeedSpec, report: Callable[[Exception], None], keep_restarts: bool
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Hub messages → models. A payload that fails to parse is reported and skipped,
    never ending the feed; restart markers pass through only when asked for.

    .. marble::
        :alt: parse

        ---(t,p1)---R---(t,garbage)---(t,p2)---|
        [        _parse_messages(spec)          ]
        ---m1-------R-----------------m2-------|      (garbage → errors)
    """
    parse = spec.parse
    many = spec.many

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(message: Any) -> None:
                if type(message) is StreamRestart:
                    if keep_restarts:
                        emit(message)
                    return
                received_at, payload = message
                try:
                    model = parse(payload, received_at)
                except ParseError as exc:
                    report(exc)
                    return
                except Exception as exc:  # a parser bug must not end the feed
                    report(ParseError(f"{spec.topic}: {exc!r}", payload))
                    return
                if many:
                    for item in model:
                        emit(item)
                else:
                    emit(model)

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return Disposable(subscription.dispose)

        return Observable(subscribe)

    return operator


if TYPE_CHECKING:

    def _satisfies(conn: Connector) -> ConnectorFeeds:
        """mypy checks here that the Connector serves every declared feed."""
        return conn
