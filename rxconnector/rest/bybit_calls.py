"""How every Bybit v5 REST call is made: the plumbing under
:class:`~rxconnector.rest.bybit.BybitRest`'s endpoint methods.

One call goes: ban gate → pacing wait (:mod:`rxconnector.rest.gates`, driven by the
rules in :mod:`rxconnector.exchanges.bybit.endpoints`) → the engine's pipeline
(:class:`~rxconnector.rest.client.RestClient`) → per-endpoint budget check → the
envelope's ``result`` → model (:mod:`rxconnector.exchanges.bybit.rest_parsers`).
Signed calls are signed at send time (:mod:`rxconnector.exchanges.bybit.rest_requests`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.config import Config
from rxconnector.errors import ConfigError, ExchangeError
from rxconnector.exchanges._args import default_client_order_ids
from rxconnector.exchanges._parsing import MALFORMED, raise_malformed
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit import rest_parsers as rp
from rxconnector.exchanges.bybit import rest_requests as rq
from rxconnector.exchanges.dialect import RestLimits
from rxconnector.exchanges.rest_spec import Endpoint, RestReply, SignedRequest, Signer
from rxconnector.log import get_logger
from rxconnector.models import Kline, Order, SymbolInfo
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rest.client import RestClient
from rxconnector.rest.gates import RequestGates
from rxconnector.rest.symbol_rules import SymbolRules

__all__ = ["BybitCalls"]

_T = TypeVar("_T")


class BybitCalls(ABC):
    """Bybit v5 REST endpoints (PROTOCOL.md §C3) returning rxconnector models.

    ``config.category`` (``spot``, ``linear`` or ``inverse``) is sent with every call.
    ``now_ms`` is the synced exchange clock (signing timestamps, closed candles, reset
    headers, ban expiry). ``client_order_id_factory`` makes ``orderLinkId`` values when
    the caller gives none (default: :class:`rxconnector.nonce.NonceGenerator`).
    ``scheduler`` times the pacing waits (default: the one given at subscription, else
    the running loop's). ``ip_requests_per_window`` lowers the share of Bybit's
    600-requests-per-5-s IP budget this object may use (several processes on one IP).
    """

    @abstractmethod
    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules by symbol; the orders' filter checks fetch a symbol's rules
        through it."""

    def __init__(
        self,
        client: RestClient,
        config: Config,
        now_ms: Callable[[], int | float],
        *,
        client_order_id_factory: Callable[[], str] | None = None,
        scheduler: abc.SchedulerBase | None = None,
        ip_requests_per_window: int = ep.IP_REQUEST_LIMIT,
    ) -> None:
        if config.category not in ep.CATEGORIES:
            raise ConfigError("category", f"must be one of {', '.join(ep.CATEGORIES)}", config)
        self._client = client
        self._config = config
        self._category: str = config.category
        self._now_ms = now_ms
        self._new_link_id = client_order_id_factory or default_client_order_ids()
        self._scheduler = scheduler
        #: the trading rules orders are checked against: fetched before the first order
        #: on a symbol and again after the TTL (one request shared by concurrent orders)
        self._rules = SymbolRules(
            lambda sym: self.exchange_info([sym]), scheduler=scheduler or client.scheduler
        )
        self._symbols: dict[str, SymbolInfo] = self._rules.infos
        self._log = get_logger(component="rest", exchange=ep.VENUE, category=self._category)
        window = ep.IP_WINDOW.share(ip_requests_per_window)
        limits = RestLimits(ip_ban=ep.IP_BAN, endpoint_limits=ep.ENDPOINT_LIMITS, ip_window=window)
        self._gates = RequestGates(
            limits, now_ms, client.limiter, exchange=ep.VENUE, log=self._log, scheduler=scheduler
        )
        self._window = window

    def __repr__(self) -> str:
        return f"BybitRest(category={self._category!r}, base_url={self._client.base_url!r})"

    @property
    def category(self) -> str:
        return self._category

    @property
    def ip_requests_per_window(self) -> int:
        """Requests this object sends at most in any :attr:`ip_window_seconds`."""
        return self._window.limit

    @property
    def ip_window_seconds(self) -> float:
        return self._window.seconds

    @property
    def limiter(self) -> RequestWeightLimiter | None:
        """The weight limiter this client's calls go through (``None``: not limited)."""
        return self._client.limiter

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """The cached trading rules of ``symbol`` (after :meth:`exchange_info`)."""
        return self._symbols.get(symbol.upper())

    @property
    def request_weight_limit(self) -> int | None:
        """Always ``None``: Bybit counts requests, not weights (see
        :attr:`ip_requests_per_window`)."""
        return None

    def _call(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any],
        parse: Callable[[RestReply, Any], _T],
        *,
        signed: bool = False,
        idempotent: bool = True,
        client_order_id: str | None = None,
    ) -> Observable[_T]:
        """One call: ban gate → pacing wait → RestClient pipeline → envelope → model."""
        frozen = dict(params)

        request: Observable[RestReply] = self._client.request(
            endpoint.method,
            endpoint.path,
            frozen,
            weight=endpoint.weight,
            signer=self._signer(endpoint.method) if signed else None,
            idempotent=idempotent,
            client_order_id=client_order_id,
        )

        def interpret(reply: RestReply) -> _T:
            data = reply.data
            try:
                return parse(reply, data["result"])
            except MALFORMED as exc:
                raise_malformed(ep.VENUE, endpoint.path, data, exc)

        return self._gates.around(endpoint.path, request).pipe(ops.map(interpret))

    def _require_credentials(self) -> None:
        if not self._config.has_credentials:
            raise ConfigError("api_key", "and api_secret are required for signed requests", "")

    def _signer(self, method: str) -> Signer:
        """Signs at send time: GET over the exact query string, POST over the exact JSON
        body that is sent (PROTOCOL.md §C3 "Signing")."""
        api_key = self._config.api_key
        secret = self._config.api_secret
        recv_window = self._config.recv_window
        now_ms = self._now_ms

        def sign(params: Mapping[str, Any]) -> SignedRequest:
            return rq.signed_request(method, params, api_key, secret, int(now_ms()), recv_window)

        return sign

    def _klines(
        self, symbol: str, native: str, start: int | None, end: int | None, limit: int
    ) -> Observable[list[Kline]]:
        params = {
            "category": self._category,
            "symbol": symbol,
            "interval": native,
            "start": start,
            "end": end,
            "limit": limit,
        }
        inverse = self._category == "inverse"

        def parse(reply: RestReply, result: Any) -> list[Kline]:
            now = int(self._now_ms())
            return rp.klines(symbol, native, result["list"], reply, now, inverse)

        return self._call(ep.KLINE, params, parse)

    def _get_order(self, ref: Mapping[str, Any]) -> Observable[Order]:
        params = {"category": self._category, **ref}

        def first(_reply: RestReply, result: Any) -> Order | None:
            rows = result["list"]
            return rp.order(rows[0]) if rows else None

        def from_history(found: Order | None) -> Observable[Order]:
            if found is not None:
                return reactivex.just(found)

            def required(reply: RestReply, result: Any) -> Order:
                order = first(reply, result)
                if order is None:
                    raise ExchangeError(
                        f"order {dict(ref)} not found", exchange=ep.VENUE, status=reply.status
                    )
                return order

            return self._call(ep.ORDER_HISTORY, params, required, signed=True)

        return self._call(ep.ORDER_REALTIME, params, first, signed=True).pipe(
            ops.flat_map(from_history)
        )
