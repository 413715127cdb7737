"""Bybit v5 REST as plans: every call of the venue's REST API, written as pure generators.

The REST engine (:mod:`rxconnector.rest`) runs these plans
(:mod:`rxconnector.exchanges.rest_plan`): it sends each :class:`Call`, applies Bybit's
limits from the venue's data (the 600-per-5-s IP window, the per-endpoint
``X-Bapi-Limit-*`` budgets, the 403 ban: :mod:`~rxconnector.exchanges.bybit.endpoints`),
signs at send time and hands the reply to the parser named in the call. What is left
here is what only Bybit knows: the ``category`` every call carries, the cursor pages, the
kline windows, the order lookups and their fallbacks.

Every method checks its arguments *at the call* (``ValueError``, ``ConfigError`` for
missing keys, ``NotSupportedError`` for what Bybit lacks) and only then returns the
factory of its plan; the engine starts a fresh plan from it per subscription::

    plans = BybitPlans(Config.bybit("linear"))
    factory = plans.depth_snapshot("btcusdt", 50)  # checked now
    plan = factory()                               # one run (one per subscription)
    call = next(plan)                              # Call(ORDERBOOK, {...}, parser)
    plan.send(call.parse(reply))                   # StopIteration(value=OrderBook)

Market data lives in :class:`BybitMarketPlans`; the account and trading calls (signed)
are added by :class:`~rxconnector.exchanges.bybit.trade_plans.BybitPlans`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

from rxconnector.config import Config
from rxconnector.errors import ConfigError, NotSupportedError
from rxconnector.exchanges._args import int_in
from rxconnector.exchanges._parsing import MALFORMED, raise_malformed
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit import rest_parsers as rp
from rxconnector.exchanges.dialect import RestLimits
from rxconnector.exchanges.rest_plan import Call, Emit, Now, Plan, PlanFactory, Remember, single
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.exchanges.symbols import bybit_interval, normalize_symbol
from rxconnector.exchanges.venue_plans import VenuePlans
from rxconnector.models import Kline, OrderBook, SymbolInfo, Ticker, Trade

__all__ = ["BACKFILL_URGENCY", "BybitMarketPlans", "RecentTradesPlan"]

#: Trade backfills (a trade feed healing after a reconnect) fill the budget the user's
#: calls leave (:data:`rxconnector.exchanges.rest_plan.URGENCIES`).
BACKFILL_URGENCY: Final = "backfill"

#: What :meth:`BybitMarketPlans.trade_backfill` returns: ``backfill(from_id)`` (the
#: id-gap contract) or ``backfill()`` (the overlap contract) → the plan factory of the
#: most recent trades; ``from_id`` is ignored (Bybit cannot look trades up by id).
RecentTradesPlan = Callable[..., PlanFactory[list[Trade]]]


#: Calls only the derivatives categories answer.
_DERIVATIVES_ONLY: Final = frozenset({"positions", "set_position_mode"})

#: What to use on Bybit instead of a call it does not offer.
_INSTEAD: Final = {
    "agg_trades": "recent_trades (Bybit has no aggregate trades)",
    "trades_between": "trade_backfill (Bybit cannot look trades up by id)",
    "trades_after": "trade_backfill (Bybit cannot look trades up by id)",
}


def _no_result(_reply: RestReply, _result: Any) -> None:
    return None


class BybitMarketPlans(VenuePlans):
    """Bybit v5 public REST calls (PROTOCOL.md §C3) as plans, for one ``category``.

    ``config.category`` (``spot``, ``linear`` or ``inverse``) is sent with every call;
    another category is a :class:`~rxconnector.errors.ConfigError` here.
    ``ip_requests_per_window`` lowers the share of Bybit's 600-requests-per-5-s IP
    budget the client running these plans may use (several processes on one IP).
    """

    venue = ep.VENUE

    def __init__(
        self, config: Config, *, ip_requests_per_window: int = ep.IP_REQUEST_LIMIT
    ) -> None:
        if config.category not in ep.CATEGORIES:
            raise ConfigError("category", f"must be one of {', '.join(ep.CATEGORIES)}", config)
        self._config = config
        self._category: str = config.category
        self._limits = RestLimits(
            ip_ban=ep.IP_BAN,
            endpoint_limits=ep.ENDPOINT_LIMITS,
            ip_window=ep.IP_WINDOW.share(ip_requests_per_window),
        )

    @property
    def category(self) -> str:
        return self._category

    @property
    def limits(self) -> RestLimits:
        """Bybit's limits beyond request weight, for the engine's gates: the 403 ban,
        the per-endpoint ``X-Bapi-Limit-*`` budgets and this client's share of the IP
        window (:mod:`~rxconnector.exchanges.bybit.endpoints`)."""
        return self._limits

    @property
    def ip_requests_per_window(self) -> int:
        """Requests the client sends at most in any :attr:`ip_window_seconds`."""
        window = self._limits.ip_window
        assert window is not None
        return window.limit

    @property
    def ip_window_seconds(self) -> float:
        window = self._limits.ip_window
        assert window is not None
        return window.seconds

    def __repr__(self) -> str:
        return f"{type(self).__name__}(category={self._category!r})"

    def offers(self, call: str) -> bool:
        """As :meth:`VenuePlans.offers`, and spot has no positions (nor position modes)."""
        if self._category == "spot" and call in _DERIVATIVES_ONLY:
            return False
        return super().offers(call)

    def _unsupported(self, feature: str, instead: str = "") -> NotSupportedError:
        """The refusal of a call Bybit does not offer (``agg_trades``, ``avg_price``,
        ``trades_between``, ``trades_after``, ``test_order``: not overridden here, so
        :meth:`offers` says no), with what to use instead on Bybit."""
        return NotSupportedError(self.venue, feature, _INSTEAD.get(feature, instead))

    # -- general ------------------------------------------------------------------------

    def ping(self) -> PlanFactory[None]:
        """``GET /v5/market/time`` (Bybit has no ping route): ``None`` when the API answers."""
        return partial(single, Call(ep.TIME, {}, rp.InResult(ep.TIME.path, _no_result)))

    def server_time(self) -> PlanFactory[int]:
        """``GET /v5/market/time``: the server's clock in ms (from ``timeNano`` when present)."""
        return partial(single, Call(ep.TIME, {}, rp.InResult(ep.TIME.path, rp.server_time)))

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> PlanFactory[dict[str, SymbolInfo]]:
        """``GET /v5/market/instruments-info``: trading rules by symbol, also cached for
        order checks.

        One symbol is one request; several (or ``None``, every symbol) walk all pages
        (linear/inverse page with ``cursor``, 1000 per page) and keep the ones asked for.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        names = [normalize_symbol(s, ep.VENUE) for s in symbols] if symbols is not None else None
        base: dict[str, Any] = {"category": self._category}
        if names is not None and len(names) == 1:
            base["symbol"] = names[0]
        elif self._category != "spot":  # spot has no pagination: limit/cursor invalid
            base["limit"] = ep.INSTRUMENTS_PAGE_LIMIT
        return partial(self._instruments, base, set(names) if names is not None else None)

    def _instruments(
        self, base: dict[str, Any], wanted: set[str] | None
    ) -> Plan[dict[str, SymbolInfo]]:
        found: dict[str, SymbolInfo] = {}
        category = self._category
        cursor: str | None = ""
        while cursor is not None:
            params = dict(base, cursor=cursor or None)
            infos, cursor = yield Call(
                ep.INSTRUMENTS,
                params,
                rp.InResult(ep.INSTRUMENTS.path, _InstrumentPage(category, cursor)),
            )
            found.update((i.symbol, i) for i in infos if wanted is None or i.symbol in wanted)
        yield Remember(found)  # cached for the orders' filter checks and symbol_info
        return found

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(
        self, symbol: str, limit: int = 100, urgency: str = "user"
    ) -> PlanFactory[OrderBook]:
        """``GET /v5/market/orderbook``: ``limit`` levels a side (1-1000). ``update_id`` is
        ``u`` (the 1000-level stream's update id), ``event_time`` is ``ts``. ``urgency``
        ``"recovery"`` for a book resyncing itself."""
        sym = normalize_symbol(symbol, ep.VENUE)
        int_in("limit", limit, 1, ep.ORDERBOOK_MAX_LIMIT[self._category])
        params = {"category": self._category, "symbol": sym, "limit": limit}
        parse = rp.InResult(ep.ORDERBOOK.path, rp.order_book)
        return partial(single, Call(ep.ORDERBOOK, params, parse, urgency=urgency))

    def recent_trades(self, symbol: str, limit: int = 500) -> PlanFactory[list[Trade]]:
        """``GET /v5/market/recent-trade``: the latest trades, oldest first.

        ``limit`` is capped at the category's maximum (spot 60, others 1000), so the
        connector's default of 500 works everywhere.
        """
        sym = normalize_symbol(symbol, ep.VENUE)
        int_in("limit", limit, 1, 10**9)
        capped = min(limit, ep.RECENT_TRADE_MAX_LIMIT[self._category])
        return partial(_recent_trades, self._category, sym, capped, "user")

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Kline]]:
        """``GET /v5/market/kline``: up to ``limit`` (1-1000) candles, **oldest first**
        (Bybit sends them newest first). ``interval`` in either spelling (``"1h"`` or
        ``"60"``); ``Kline.interval`` is the canonical one. Bybit reports no trade
        count: ``trades`` is 0. A candle is ``closed`` when it ended before the
        exchange clock read right after the answer came."""
        sym = normalize_symbol(symbol, ep.VENUE)
        native = bybit_interval(interval)
        int_in("limit", limit, 1, ep.KLINE_MAX_LIMIT)
        return partial(self._klines, sym, native, start, end, limit)

    def _klines(
        self, symbol: str, native: str, start: int | None, end: int | None, limit: int
    ) -> Plan[list[Kline]]:
        params = {
            "category": self._category,
            "symbol": symbol,
            "interval": native,
            "start": start,
            "end": end,
            "limit": limit,
        }
        reply, rows = yield Call(ep.KLINE, params, rp.InResult(ep.KLINE.path, _rows))
        now = yield Now()
        inverse = self._category == "inverse"
        try:
            return rp.klines(symbol, native, rows, reply, int(now), inverse)
        except MALFORMED as exc:
            raise_malformed(ep.VENUE, ep.KLINE.path, reply.data, exc)

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> PlanFactory[None]:
        """Every candle opening in ``start``..``end`` (ms; ``end=None``: now), in order.

        .. marble::

            windows: --[w1: 1000 candles]---[w2: 1000 candles]---[w3: 345]|
            result:  --k1,...,k1000---------k1001,...,k2000------k2001..k2345|

        Bybit sends candles newest first and its ``start``/``end`` filter does not say
        which end of a longer range it keeps, so the range is cut into windows that hold
        at most 1000 candles each; each window is one :class:`Emit`, asked for only
        after the previous one was delivered. A window before the symbol was listed is
        simply empty.
        """
        sym = normalize_symbol(symbol, ep.VENUE)
        native = bybit_interval(interval)
        if isinstance(start, bool) or not isinstance(start, int):
            raise ValueError(f"start must be an integer (ms), got {start!r}")
        if end is not None and start > end:
            raise ValueError(f"start ({start}) must be <= end ({end})")
        return partial(self._kline_windows, sym, native, start, end)

    def _kline_windows(self, symbol: str, native: str, start: int, end: int | None) -> Plan[None]:
        last = end if end is not None else int((yield Now()))
        if start > last:
            raise ValueError(f"start ({start}) must be <= end ({last})")
        span = rp.INTERVAL_MS[native] * ep.KLINE_MAX_LIMIT
        cursor = start
        while True:
            window_end = min(cursor + span - 1, last)
            candles = yield from self._klines(
                symbol, native, cursor, window_end, ep.KLINE_MAX_LIMIT
            )
            # every window is emitted, an empty one too: a walk is a plan that emits
            yield Emit([k for k in candles if cursor <= k.open_time <= window_end])
            if window_end >= last:
                return None
            cursor = window_end + 1

    def ticker_24h(self, symbol: str) -> PlanFactory[Ticker]:
        """``GET /v5/market/tickers`` for one symbol; ``open`` is ``prevPrice24h``, volumes
        are base / quote on every category (inverse's are swapped back)."""
        sym = normalize_symbol(symbol, ep.VENUE)
        parse = rp.InResult(ep.TICKERS.path, _FirstTicker(self._category == "inverse"))
        params = {"category": self._category, "symbol": sym}
        return partial(single, Call(ep.TICKERS, params, parse))

    def trade_backfill(self, feed: str, symbol: str) -> RecentTradesPlan:
        """What the gapless trade feed calls after a reconnect: ``(from_id) → trades``.

        Bybit has no trade lookup by id, so each call plans the most recent trades (60
        on spot, 1000 on derivatives) whatever ``from_id`` is, marked ``backfilled``,
        at backfill urgency. The continuity logic drops those it already delivered and
        reports a *possible* gap when none of them overlaps what it delivered before
        the reconnect. Derivative trade ids are UUIDs (mapped to integers, not ordered),
        so id ranges mean nothing there: use it with ``gapless_trades_by_overlap``,
        which the returned callable also fits (``backfill()``).
        """
        if feed != "trades":
            raise NotSupportedError(ep.VENUE, f"trade_backfill({feed!r})")
        return _RecentTrades(self._category, normalize_symbol(symbol, ep.VENUE))


def _recent_trades(category: str, symbol: str, limit: int, urgency: str) -> Plan[list[Trade]]:
    params = {"category": category, "symbol": symbol, "limit": limit}
    parse = rp.InResult(ep.RECENT_TRADE.path, rp.trades)
    trades: list[Trade] = yield Call(ep.RECENT_TRADE, params, parse, urgency=urgency)
    return trades


class _RecentTrades:
    """The backfill callable of :meth:`BybitMarketPlans.trade_backfill`."""

    def __init__(self, category: str, symbol: str) -> None:
        self._category = category
        self._symbol = symbol

    def __call__(self, _from_id: int | None = None, /) -> PlanFactory[list[Trade]]:
        return self._plan

    def _plan(self) -> Plan[list[Trade]]:
        limit = ep.RECENT_TRADE_MAX_LIMIT[self._category]
        trades = yield from _recent_trades(self._category, self._symbol, limit, BACKFILL_URGENCY)
        return rp.mark_backfilled(trades)


class _InstrumentPage:
    """One instruments-info page → ``(rules, next cursor or None)``."""

    def __init__(self, category: str, cursor: str) -> None:
        self._category = category
        self._cursor = cursor

    def __call__(self, _reply: RestReply, result: Any) -> tuple[list[SymbolInfo], str | None]:
        infos = [rp.symbol_info(row, self._category) for row in result["list"]]
        return infos, rp.next_cursor(result, self._cursor)


class _FirstTicker:
    """A tickers answer for one symbol → its Ticker."""

    def __init__(self, inverse: bool) -> None:
        self._inverse = inverse

    def __call__(self, reply: RestReply, result: Any) -> Ticker:
        return rp.ticker(result["list"][0], reply, self._inverse)


def _rows(reply: RestReply, result: Any) -> tuple[RestReply, Sequence[Sequence[str]]]:
    rows = result["list"]
    if not isinstance(rows, list):
        raise TypeError(f"list is {type(rows).__name__}, not a list")
    return reply, rows
