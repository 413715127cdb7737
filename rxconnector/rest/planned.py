"""The one REST client of every venue: the venue's plans run on the shared engine.

:class:`PlannedRest` answers :class:`~rxconnector.rest.api.RestApi` (and
:class:`~rxconnector.rest.api.DerivativesRestApi`) for any venue. It is given, all
explicitly: the pipeline (:class:`~rxconnector.rest.client.RestClient`, which holds the
venue's error dialect), the venue's plan functions (a
:class:`~rxconnector.exchanges.venue_plans.VenuePlans` from ``exchanges/<venue>/``), its
signer (a :class:`~rxconnector.exchanges.rest_plan.PlanSigner`, ``None`` for a venue
used without keys) and the synced clock::

    rest = PlannedRest(client, BinanceSpotPlans(config), BinanceRestSigner(...), clock.now)
    info = await rest.exchange_info(["BTCUSDT"])
    order = await rest.place_order("BTCUSDT", "buy", "LIMIT", quantity="0.01", price="50000")

Each method checks its arguments at the call (the plan function raises ``ValueError``
or ``NotSupportedError`` at once) and returns a cold Observable
(:func:`~rxconnector.rest.plan_runner.run_plan`): nothing is sent until subscription;
each subscription sends through the pipeline (weight limiter at the plan's priority,
breaker, retry for idempotent calls, signing when the request leaves), and ``await``
works on every one. Orders are checked against the symbol's rules, which
:mod:`~rxconnector.rest.symbol_rules` caches and fetches through the venue's
exchange-info plan when missing or stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.config import Config
from rxconnector.exchanges.dialect import ErrorDialect
from rxconnector.exchanges.rest_plan import Call, PlanFactory, PlanSigner
from rxconnector.exchanges.rest_spec import Endpoint, SignedRequest, Signer
from rxconnector.exchanges.venue_plans import VenuePlans
from rxconnector.log import get_logger
from rxconnector.models import (
    AvgPrice,
    Balance,
    Kline,
    Order,
    OrderBook,
    Position,
    SymbolInfo,
    Ticker,
    Trade,
)
from rxconnector.rate.limiter import Priority, RequestWeightLimiter, documented_limiter
from rxconnector.rest.api import Amount, DerivativesRestApi
from rxconnector.rest.client import Operator, RestClient
from rxconnector.rest.gates import RequestGates
from rxconnector.rest.plan_runner import URGENCY_PRIORITY, run_plan
from rxconnector.rest.symbol_rules import SymbolRules
from rxconnector.transport.http import Transport

__all__ = ["PlannedRest", "limited_client"]

_T = TypeVar("_T")

#: ``Call.urgency`` of each limiter priority (callers speak ``Priority``, plans urgency).
_URGENCY = {priority: urgency for urgency, priority in URGENCY_PRIORITY.items()}


def limited_client(
    transport_factory: Callable[[], Transport],
    config: Config,
    *,
    base_url: str,
    dialect: ErrorDialect,
    weight_per_minute: int,
    guard: Operator | None = None,
    retry: Operator | None = None,
    on_timestamp_rejected: Callable[[], Observable[Any]] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> RestClient:
    """A :class:`RestClient` speaking ``dialect`` with, when ``config.rate_limit.enabled``,
    a weight limiter at the venue's documented ``weight_per_minute`` capped by
    ``max_weight_per_minute`` (what the connector builds, for scripts and tests)."""
    limiter = (
        documented_limiter(
            weight_per_minute,
            config.rate_limit.max_weight_per_minute,
            exchange=config.exchange,
            scheduler=scheduler,
        )
        if config.rate_limit.enabled
        else None
    )
    return RestClient(
        transport_factory,
        base_url=base_url,
        exchange=config.exchange,
        limiter=limiter,
        guard=guard,
        retry=retry,
        on_timestamp_rejected=on_timestamp_rejected,
        dialect=dialect,
        scheduler=scheduler,
    )


class PlannedRest:
    """A venue's REST API: its plans (``plans``) run on the engine (``client``).

    ``signer`` signs SIGNED and API-keyed calls when they leave; ``now_ms`` is the synced
    exchange clock (signed timestamps, and the plans' ``Now``).
    """

    def __init__(
        self,
        client: RestClient,
        plans: VenuePlans,
        signer: PlanSigner | None,
        now_ms: Callable[[], int | float],
    ) -> None:
        self._client = client
        self._plans = plans
        self._signer = signer
        self._now_ms = now_ms
        #: the venue's limits beyond request weight (ban, endpoint budgets, IP window)
        self._gates = RequestGates(
            plans.limits,
            now_ms,
            client.limiter,
            exchange=plans.venue,
            log=get_logger(component="rest", exchange=plans.venue),
            scheduler=client.scheduler,
        )
        #: the trading rules orders are checked against (fetched on the first order)
        self._rules = SymbolRules(lambda sym: self.exchange_info([sym]), scheduler=client.scheduler)
        self._request_weight_limit: int | None = None

    def __repr__(self) -> str:
        return f"PlannedRest(venue={self._plans.venue!r}, base_url={self._client.base_url!r})"

    @property
    def plans(self) -> VenuePlans:
        """The venue's plan functions (its venue-only properties live there)."""
        return self._plans

    @property
    def limiter(self) -> RequestWeightLimiter | None:
        """The weight limiter the calls go through (``None``: not limited)."""
        return self._client.limiter

    @property
    def request_weight_limit(self) -> int | None:
        """The request weight per minute the venue last announced (``None``: never)."""
        return self._request_weight_limit

    def offers(self, call: str) -> bool:
        """Whether the venue answers ``call`` (every method exists here; one the venue's
        plans do not offer raises ``NotSupportedError`` at the call)."""
        return self._plans.offers(call)

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """The cached trading rules of ``symbol`` (after :meth:`exchange_info`)."""
        return self._rules.infos.get(symbol.upper())

    # -- the plan host (what plan steps need) -------------------------------------------

    def send(self, call: Call[Any]) -> Observable[Any]:
        """One request of a plan through the pipeline, behind the venue's gates
        (:attr:`VenuePlans.limits <rxconnector.exchanges.venue_plans.VenuePlans.limits>`:
        refused during an IP ban, paced by endpoint budgets and the IP window); emits
        the parsed reply."""
        endpoint = call.endpoint
        request = self._client.request(
            endpoint.method,
            endpoint.path,
            call.params,
            weight=endpoint.weight if call.weight is None else call.weight,
            signer=self._signing(call),
            idempotent=call.idempotent,
            client_order_id=call.client_order_id,
            priority=URGENCY_PRIORITY[call.urgency],
        )
        return self._gates.around(endpoint.path, request).pipe(ops.map(call.parse))

    def rules_for(self, symbol: str) -> Observable[SymbolInfo | None]:
        return self._rules.rules_for(symbol)

    def forget_rules(self, symbol: str) -> None:
        self._rules.forget(symbol)

    def remember_rules(self, infos: Mapping[str, SymbolInfo]) -> None:
        self._rules.remember(infos)

    def now(self) -> int:
        return int(self._now_ms())

    def weight_budget(self, per_minute: int) -> None:
        self._request_weight_limit = per_minute
        limiter = self._client.limiter
        if limiter is not None:
            limiter.set_limit(per_minute)

    def _signing(self, call: Call[Any]) -> Signer | None:
        endpoint = call.endpoint
        if not (endpoint.signed or call.keyed):
            return None
        signer = self._signer
        if signer is None:
            raise ValueError(f"{endpoint.method} {endpoint.path} needs a signer; none was given")
        if call.keyed and not endpoint.signed:
            return _KeyOnly(signer, endpoint)
        return _Signing(signer, endpoint, self._now_ms)

    def _run(self, factory: PlanFactory[_T]) -> Observable[_T]:
        return run_plan(factory, self)

    # -- general and market data --------------------------------------------------------

    def ping(self) -> Observable[None]:
        """Emits ``None`` when the API answers."""
        return self._run(self._plans.ping())

    def server_time(self) -> Observable[int]:
        """The server's clock in ms."""
        return self._run(self._plans.server_time())

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules by symbol (cached for orders' filter checks; a venue that
        announces its weight budget there sets the limiter to it, capped by Config)."""
        return self._run(self._plans.exchange_info(symbols))

    def depth_snapshot(
        self, symbol: str, limit: int = 100, *, priority: Priority = Priority.USER
    ) -> Observable[OrderBook]:
        """A book snapshot; ``priority=Priority.RECOVERY`` for a book resyncing itself."""
        return self._run(self._plans.depth_snapshot(symbol, limit, _URGENCY[priority]))

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        return self._run(self._plans.recent_trades(symbol, limit))

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Trade]]:
        return self._run(self._plans.agg_trades(symbol, from_id, start, end, limit))

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Kline]]:
        return self._run(self._plans.klines(symbol, interval, start, end, limit))

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> Observable[Kline]:
        """Every candle opening in ``start``..``end`` (ms; ``None``: now, read when
        subscribed), one by one, in order: page after page, the next one asked for only
        after the previous one was delivered; disposing stops the walk."""
        walk: Observable[Any] = self._run(self._plans.klines_history(symbol, interval, start, end))
        return walk

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        return self._run(self._plans.ticker_24h(symbol))

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        return self._run(self._plans.avg_price(symbol))

    def mark_price_now(self, symbol: str) -> Observable[Any]:
        """The mark price of ``symbol`` now (derivatives)."""
        return self._run(self._plans.mark_price_now(symbol))

    # -- trade gaps ---------------------------------------------------------------------

    def trades_between(
        self,
        feed: str,
        symbol: str,
        first_id: int,
        last_id: int,
        *,
        priority: Priority = Priority.USER,
    ) -> Observable[Trade]:
        """Trades with ids ``first_id``..``last_id``, in order, marked ``backfilled``:
        how a gap in a live trade feed is closed (pages, each after the last one was
        delivered)."""
        plan = self._plans.trades_between(feed, symbol, first_id, last_id, _URGENCY[priority])
        walk: Observable[Any] = self._run(plan)
        return walk

    def trade_backfill(self, feed: str, symbol: str) -> Callable[..., Observable[Any]]:
        """What a gapless trade feed calls to close a gap (checked now)."""
        plan_of = self._plans.trade_backfill(feed, symbol)

        def backfill(*args: Any) -> Observable[Any]:
            return self._run(plan_of(*args))

        return backfill

    def trades_after(
        self,
        symbol: str,
        from_id: int,
        since: int,
        *,
        priority: Priority = Priority.USER,
        continuation: float | None = None,
    ) -> Observable[list[Trade]]:
        """One page of plain trades from id ``from_id`` on, at the lowest weight the
        venue allows (``since``: the time of a trade at or before it)."""
        plan = self._plans.trades_after(symbol, from_id, since, _URGENCY[priority], continuation)
        return self._run(plan)

    # -- account and trading ------------------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> Observable[tuple[Balance, ...]]:
        """The balances (``omit_zero_balances``: leave out assets with none)."""
        return self._run(self._plans.account(omit_zero_balances))

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Amount = None,
        price: Amount = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[Order]:
        """Place an order; ``extra`` passes any other parameter by the venue's name.
        The client order id is fixed now (generated if not given), the symbol's rules
        are checked before sending. Never retried: a lost answer is
        :class:`~rxconnector.errors.OrderStatusUnknownError` carrying that id."""
        return self._run(
            self._plans.place_order(
                symbol, side, type, quantity, price, time_in_force, client_order_id, extra
            )
        )

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Amount = None,
        price: Amount = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        compute_commission_rates: bool = False,
        **extra: Any,
    ) -> Observable[dict[str, Any]]:
        """Validate an order without placing it (safe to retry)."""
        plan = self._plans.test_order(
            symbol,
            side,
            type,
            quantity,
            price,
            time_in_force,
            client_order_id,
            extra,
            compute_commission_rates,
        )
        return self._run(plan)

    def cancel_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Cancel by exchange id or client order id; emits the cancelled order."""
        return self._run(self._plans.cancel_order(symbol, order_id, client_order_id))

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """One order's current state."""
        return self._run(self._plans.get_order(symbol, order_id, client_order_id))

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """Open orders of one symbol, or of every symbol."""
        return self._run(self._plans.open_orders(symbol))

    # -- derivatives --------------------------------------------------------------------

    def positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """Open positions (flat ones left out)."""
        return self._run(self._plans.positions(symbol))

    def set_leverage(self, symbol: str, leverage: int) -> Observable[dict[str, Any]]:
        return self._run(self._plans.set_leverage(symbol, leverage))

    def set_margin_type(self, symbol: str, margin_type: str) -> Observable[dict[str, Any]]:
        return self._run(self._plans.set_margin_type(symbol, margin_type))

    def set_position_mode(self, hedge: bool, **options: Any) -> Observable[Any]:
        return self._run(self._plans.set_position_mode(hedge, **options))

    def create_listen_key(self) -> Observable[str]:
        return self._run(self._plans.create_listen_key())

    def keepalive_listen_key(self, listen_key: str | None = None) -> Observable[None]:
        return self._run(self._plans.keepalive_listen_key(listen_key))

    def close_listen_key(self) -> Observable[None]:
        return self._run(self._plans.close_listen_key())


class _Signing:
    """The RestClient signer of one SIGNED call: the venue's signer, with the synced
    clock read when the request leaves."""

    __slots__ = ("_endpoint", "_now_ms", "_signer")

    def __init__(
        self, signer: PlanSigner, endpoint: Endpoint, now_ms: Callable[[], int | float]
    ) -> None:
        self._signer = signer
        self._endpoint = endpoint
        self._now_ms = now_ms

    def __call__(self, params: Mapping[str, Any]) -> SignedRequest:
        return self._signer.sign(self._endpoint, params, int(self._now_ms()))


class _KeyOnly:
    """The RestClient signer of an API-keyed call (no signature)."""

    __slots__ = ("_endpoint", "_signer")

    def __init__(self, signer: PlanSigner, endpoint: Endpoint) -> None:
        self._signer = signer
        self._endpoint = endpoint

    def __call__(self, params: Mapping[str, Any]) -> SignedRequest:
        return self._signer.key_only(self._endpoint, params)


if TYPE_CHECKING:
    # mypy proves here that the client satisfies the shared protocols.
    _SATISFIES: type[DerivativesRestApi] = PlannedRest
