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

Long module: this is the facade, one public method per feed and health stream with the
docstring users read, plus the wiring of feeds to hubs, parsers, order books, trade
continuity and account streams. What is not facade lives elsewhere: the construction
seams in :mod:`rxconnector.seams`, the health streams in :mod:`rxconnector.health`,
the HTTP session in :mod:`rxconnector.transport.session`, the REST side at run time
in :mod:`rxconnector.rest_runtime`, the REST calls in :mod:`rxconnector.rest_calls`.
What could still move out to bring it under 600 lines: the account-stream wiring
(``orders`` ... ``account_events``, ``_account_streams``) and the payload parsing
operator (``_parse_messages``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxconnector._scheduling import loop_scheduler
from rxconnector.config import Config
from rxconnector.errors import (
    NotSupportedError,
    ParseError,
    RxConnectorError,
)
from rxconnector.exchanges.account_protocol import PrivateProtocol
from rxconnector.exchanges.base import FeedCatalog, FeedSpec
from rxconnector.exchanges.book_rules import snapshot_limit_for
from rxconnector.health import Health
from rxconnector.log import get_logger
from rxconnector.market_data import ConnectorFeeds, Trading
from rxconnector.models import (
    AccountEvent,
    AvgPrice,
    Balance,
    BookTicker,
    BreakerState,
    ClockOffset,
    ConnectionEvent,
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
    Ticker,
    Trade,
)
from rxconnector.operators import (
    CircuitBreaker,
    conflate,
    share,
)
from rxconnector.operators._share import Stage, StageObserver, shared_deferred, shared_stage
from rxconnector.rate.limiter import Priority
from rxconnector.rest.api import RestApi
from rxconnector.rest_calls import DERIVATIVES, RestCalls
from rxconnector.rest_runtime import RestRuntime
from rxconnector.seams import FeedView, HubFactory, RestFactory, TopicHub
from rxconnector.streams.accounts.account_streams import AccountStreams
from rxconnector.streams.continuity import gapless_stage
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.orderbook import maintain_order_book
from rxconnector.streams.snapshot_gate import SnapshotGate
from rxconnector.streams.trade_overlap import gapless_trades_by_overlap
from rxconnector.transport.session import ClientSession, SessionOwner
from rxconnector.venues import Venue, venue_for

__all__ = ["Connector"]

#: Order-book snapshots allowed in flight at once per connector (the limiter owns weight;
#: each book has at most one of its own in flight). 2 made a 200-book resync take 100
#: round trips; 8 keeps a resync within a few round trips without a burst of hundreds.
SNAPSHOTS_IN_FLIGHT = 8
#: Trades asked for per backfill page (Binance's REST maximum per call).
BACKFILL_PAGE = 1000

_T = TypeVar("_T")

#: Recorder hook: (connection id, local receive time ms, raw frame).
FrameHook = Callable[[str, float, "str | bytes"], None]


class Connector(RestCalls):
    """Feeds, REST calls and health of one venue as Observables (the REST calls are
    declared in :class:`~rxconnector.rest_calls.RestCalls`).

    Args:
        config: the venue and its settings (:class:`~rxconnector.Config`).
        scheduler: the scheduler time-based machinery runs on; defaults to the running
            loop's ``AsyncIOScheduler``. Tests may pass a ``TestScheduler`` to the
            operators directly instead.
        session: an aiohttp ``ClientSession`` to use (not closed on stop); by default
            the connector creates and closes its own (:mod:`rxconnector.transport.session`).
        on_frame: optional hook receiving every raw WebSocket frame (the recorder).

    Construction seams (keyword-only, see :mod:`rxconnector.seams`), for code that builds
    a connector whose parts come from elsewhere; the recorder and the replay use them:

    Args:
        rest_factory: builds the venue REST object at start from the connector's own
            builder (the recorder wraps it; the replay answers from the recording).
        hub_factory: gives the hub serving a topic, from the connector's own
            ``topic -> hub`` (the recorder taps it; the replay routes recorded frames).
        feed_view: applied to every feed handed out (the replay subscribes them on its
            virtual-time scheduler).

    A connector whose hubs and REST object never touch the network can be started with
    :meth:`start_offline` (no event loop needed with a ``scheduler``) and stopped with
    :meth:`stop_offline`.
    """

    def __init__(
        self,
        config: Config,
        *,
        scheduler: abc.SchedulerBase | None = None,
        session: ClientSession | None = None,
        on_frame: FrameHook | None = None,
        rest_factory: RestFactory | None = None,
        hub_factory: HubFactory | None = None,
        feed_view: FeedView | None = None,
    ) -> None:
        self.config = config
        self.venue: Venue = venue_for(config)
        self._scheduler_override = scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._sessions = SessionOwner(session)
        self._on_frame = on_frame
        self._rest_factory = rest_factory
        self._hub_factory = hub_factory
        self._feed_view = feed_view
        self._log = get_logger(exchange=config.exchange)
        #: Where hubs, parsers, the clock sync and account streams report problems and
        #: connection states (:attr:`errors`, :attr:`connection_state`).
        self.health = Health()
        self._hubs: dict[str, SubscriptionHub] = {}
        self._specs: dict[str, FeedSpec] = {}
        self._feeds: dict[tuple[Any, ...], Observable[Any]] = {}
        #: topics of the gapless trade feeds: told when their connection resumes after a
        #: stall (``ConnectionConfig.stall_heal_after``), to check for missed trades
        self._gapless_topics: set[str] = set()
        self._breaker = CircuitBreaker(
            f"{config.exchange}-rest", config.breaker, scheduler=scheduler
        )
        self._runtime = RestRuntime(
            config, self.venue, self._breaker, self._sessions, self._report, self._log
        )
        self._started = False
        self._stopped = False
        self._snapshot_gate: SnapshotGate | None = None
        self._accounts: AccountStreams | None = None

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
        self._sessions.open()
        scheduler = self._set_up()
        unreachable = None
        try:
            await self._runtime.learn_rate_limits(scheduler)
            self._log.info(
                "connector started", rest_url=self.venue.rest_url, ws_url=self.venue.ws_url
            )
            if self.config.clock_sync.enabled:
                unreachable = await self._runtime.first_clock_sync(scheduler)
        except BaseException:
            # Cancelled (Ctrl-C, a timeout around start()): ``async with`` never reaches
            # __aexit__, so release the session and the clock sync here.
            await asyncio.shield(self.stop())
            raise
        if unreachable is not None:
            await self.stop()
            raise unreachable

    def start_offline(self) -> None:
        """Start without the network: build the REST object (through ``rest_factory``)
        and the snapshot pacing, but open no session, probe no rate limits and start no
        clock sync. Needs no event loop when a ``scheduler`` was given.

        For connectors whose hubs and REST object come from the construction seams and
        never touch the network (the replay); a live venue's default REST calls would
        fail with "stopped". Idempotent; :meth:`start` after it does nothing.
        """
        if self._stopped:
            raise RxConnectorError("this Connector was stopped; create a new one")
        if not self._started:
            self._set_up()

    def _set_up(self) -> abc.SchedulerBase:
        """What every start does before talking to anybody; returns the scheduler."""
        scheduler = self._scheduler = self._scheduler_override or loop_scheduler()
        self._runtime.build(scheduler, self._rest_factory, self.now)
        self._snapshot_gate = SnapshotGate(SNAPSHOTS_IN_FLIGHT, scheduler=scheduler)
        self._started = True
        return scheduler

    async def stop(self) -> None:
        """Complete every feed, close every socket and the session, cancel every task.

        Idempotent; safe to call from ``finally`` blocks and notebook cells.
        """
        if not self._begin_stop():
            return
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
        await self._sessions.close()
        self.health.complete()
        self._log.info("connector stopped")

    def stop_offline(self) -> None:
        """Synchronous :meth:`stop` of a connector started with :meth:`start_offline`:
        complete the health streams; there is no session, live hub or account stream to
        wait for (a hub from ``hub_factory`` is its owner's to close). Idempotent."""
        if self._hubs or self._accounts is not None or self._sessions.is_open:
            raise RxConnectorError("this Connector holds live connections: await stop()")
        if self._begin_stop():
            self.health.complete()
            self._log.info("connector stopped")

    def _begin_stop(self) -> bool:
        """Mark stopped and release what needs no waiting; False if it was not running."""
        running = self._started and not self._stopped
        self._stopped = True
        self.health.close()
        if not running:
            return False
        self._runtime.close()  # first: REST calls in flight end before the session closes
        return True

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
        return self.health.errors

    @property
    def connection_state(self) -> Observable[ConnectionEvent]:
        """Connection events of every WebSocket connection; a new subscriber first gets
        the latest event of each connection, then live ones."""
        return self.health.connection_state

    @property
    def clock(self) -> Observable[ClockOffset]:
        """Clock measurements (the latest is replayed to new subscribers)."""
        clock = self._runtime.clock
        if clock is None:
            return reactivex.empty()
        return clock.offsets

    def now(self) -> int:
        """Exchange time in ms: the local clock corrected by the latest measured offset."""
        clock = self._runtime.clock
        if clock is not None:
            return clock.now()
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
        """The venue's full REST API object (e.g. a ``PlannedRest``), typed by the
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
            return self._view(cached)
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
        return self._view(feed)

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
        if self._stopped or not self._started or not self._sessions.is_open:
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
        session = self._sessions.get()
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

    # -- account hooks of the REST calls -----------------------------------------------

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

    # -- internals ----------------------------------------------------------------------

    def _report(self, error: Exception) -> None:
        self.health.report(error)

    def _on_state(self, event: ConnectionEvent) -> None:
        self.health.on_state(event)

    def _require_rest(self) -> Any:
        if self._runtime.rest is None:
            raise RxConnectorError(
                "the Connector is not started: use 'async with Connector(...)' or "
                "'await connector.start()' first"
            )
        return self._runtime.rest

    def _resync_clock(self) -> Observable[Any]:
        return self._runtime.resync_clock()

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
        return self._view(self._parsed(spec, (feed, spec.topic, *options), keep_restarts=False))

    def _view(self, feed: Observable[_T]) -> Observable[_T]:
        """A feed as handed out: through the ``feed_view`` seam, if one was given."""
        return feed if self._feed_view is None else self._feed_view(feed)

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

        # = defer(build).pipe(_parse_messages(...), share(...)), two Rx hops fewer
        feed: Observable[Any] = shared_deferred(
            build, self._report, _message_parser(spec, self._report, keep_restarts)
        )
        self._feeds[key] = feed
        return feed

    def _gapless(self, feed: str, symbol: str) -> Observable[Trade]:
        spec = self._spec(feed, lambda f: _TRADE_SPECS[feed](f, symbol))
        key = ("gapless", feed, spec.topic)
        cached = self._feeds.get(key)
        if cached is not None:
            return self._view(cached)
        norm = symbol.upper()
        self._gapless_topics.add(spec.topic)
        result: Observable[Trade]
        if self.venue.trade_continuity == "overlap":
            live = self._parsed(spec, (feed, spec.topic), keep_restarts=True)

            def build(_: abc.SchedulerBase | None) -> Observable[Trade]:
                recent = self._require_rest().trade_backfill(feed, norm)
                return gapless_trades_by_overlap(
                    live,
                    lambda: recent(),
                    topic=spec.topic,
                    report=self._report,
                    scheduler=self.scheduler,
                )

            result = shared_deferred(build, self._report)
        else:
            # hub -> parse -> id check -> multicast in one fan-out (no Rx hop in between)
            result = shared_stage(
                lambda _: self._hub_for(spec.topic).feed(spec.topic),
                self._gapless_stage(spec, feed, norm),
                self._report,
            )
        self._feeds[key] = result
        return self._view(result)

    def _gapless_stage(self, spec: FeedSpec, feed: str, norm: str) -> Stage[Trade]:
        """Parse + :func:`gapless_stage` for venues with consecutive trade ids."""
        parse = _message_parser(spec, self._report, keep_restarts=True)

        def stage(
            downstream: abc.ObserverBase[Trade], scheduler_: abc.SchedulerBase | None
        ) -> tuple[StageObserver[Any], abc.DisposableBase]:
            rest = self._require_rest()

            def backfill(from_id: int) -> Observable[list[Trade]]:
                page: Observable[Trade] = rest.trades_between(
                    feed, norm, from_id, from_id + BACKFILL_PAGE - 1, priority=Priority.BACKFILL
                )
                return page.pipe(ops.to_list())

            # A venue that can prove plain trades from aggregates (Binance Spot's
            # ``trades_after``) backfills the trade feed at a lower weight.
            cheaper = getattr(rest, "trades_after", None) if feed == "trades" else None
            offers = getattr(rest, "offers", None)  # the generic client has every call
            if offers is not None and not offers("trades_after"):
                cheaper = None

            def backfill_since(
                from_id: int, since: int, share: float | None
            ) -> Observable[list[Trade]]:
                assert cheaper is not None
                page: Observable[list[Trade]] = cheaper(
                    norm, from_id, since, priority=Priority.BACKFILL, continuation=share
                )
                return page

            run = gapless_stage(
                backfill,
                topic=spec.topic,
                report=self._report,
                scheduler=self.scheduler,
                backfill_since=backfill_since if cheaper is not None else None,
            )(downstream, scheduler_)
            on_next = parse(run.on_next)
            on_message = None
            if spec.parse_frame is not None and not spec.many:  # one model per frame
                on_message = run.message_feeder(spec.parse_frame, on_next)
                on_next = run.frame_feeder(spec.parse_frame, on_next)
            return StageObserver(on_next, run.on_error, run.on_completed, on_message), run

        return stage

    def _hub_for(self, topic: str) -> TopicHub:
        """The hub serving ``topic``: the ``hub_factory``'s choice, else :meth:`_live_hub`."""
        if self._hub_factory is not None:
            return self._hub_factory(topic, self._live_hub)
        return self._live_hub(topic)

    def _live_hub(self, topic: str) -> TopicHub:
        """The connector's own hub for ``topic``'s endpoint (one per endpoint, shared)."""
        if self._stopped or not self._started or not self._sessions.is_open:
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

            session = self._sessions.get()
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
                undecoded=lambda topic: getattr(specs.get(topic), "parse_frame", None) is not None,
                heals_after_stall=self._gapless_topics.__contains__,
            )
            self._hubs[endpoint] = hub
        return hub


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
_OTHER_VENUE_INSTEAD: Final = {
    "mark_price": DERIVATIVES,
    "liquidations": DERIVATIVES,
    "avg_price": "Config.binance() (Binance Spot)",
    "agg_trades": "Config.binance() or Config.binance_futures()",
}


def _instead(feed: str, venue: Venue) -> str:
    """What a user asking ``venue`` for the missing ``feed`` should use."""
    alternative = _SAME_VENUE_INSTEAD.get(feed)
    if alternative is not None and alternative in venue.supported_feeds:
        return alternative
    return _OTHER_VENUE_INSTEAD.get(feed, "")


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
    step = _message_parser(spec, report, keep_restarts)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            subscription = source.subscribe(
                step(observer.on_next),
                observer.on_error,
                observer.on_completed,
                scheduler=scheduler,
            )
            return Disposable(subscription.dispose)

        return Observable(subscribe)

    return operator


def _message_parser(
    spec: FeedSpec, report: Callable[[Exception], None], keep_restarts: bool
) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """The body of :func:`_parse_messages` as a ``shared_deferred`` step: given where
    models go (``emit``), the ``on_next`` that parses one hub message into them."""
    parse = spec.parse
    # a raw frame when the hub left the topic undecoded (typed decoder): always bytes,
    # which no decoded JSON payload can be
    parse_frame = spec.parse_frame or parse
    many = spec.many
    topic = spec.topic

    def step(emit: Callable[[Any], None]) -> Callable[[Any], None]:
        def on_next(message: Any) -> None:
            if type(message) is StreamRestart:
                if keep_restarts:
                    emit(message)
                return
            received_at, payload = message
            try:
                if type(payload) is bytes:
                    model = parse_frame(payload, received_at)
                else:
                    model = parse(payload, received_at)
            except ParseError as exc:
                report(exc)
                return
            except Exception as exc:  # a parser bug must not end the feed
                report(ParseError(f"{topic}: {exc!r}", payload))
                return
            if many:
                for item in model:
                    emit(item)
            else:
                emit(model)

        return on_next

    return step


if TYPE_CHECKING:

    def _satisfies(conn: Connector) -> ConnectorFeeds:
        """mypy checks here that the Connector serves every declared feed."""
        return conn

    def _trades(conn: Connector) -> Trading:
        """mypy checks here that the Connector answers every declared REST call."""
        return conn
