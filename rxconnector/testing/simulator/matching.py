"""A simple matching engine: the simulator's accounts trade against its own market.

Long module: it is one class, :class:`MatchingEngine`, whose methods share one invariant
(every balance change is a reservation, a fill or a release, so balances stay exactly
conserved); its data types live in :mod:`.orders`.

Venue-agnostic: the Binance and Bybit dialects turn HTTP/WebSocket requests into an
:class:`OrderRequest`, map a :class:`Rejection` to their own error codes, and turn the
:class:`OrderEvent` / :class:`~rxconnector.testing.simulator.accounts.BalanceChange`
announcements into their own wire events.

How orders meet the market (simple on purpose, deterministic given the seed):

* **Taking.** A MARKET order, or a LIMIT order whose price crosses the book when it
  arrives, walks the opposite side of the simulator's book from the best level, one
  fill per level (taker fills at the level's price), as far as its limit price allows.
* **Resting.** What a LIMIT GTC order does not fill rests. After every market tick the
  engine looks at that tick: a resting BUY at ``p`` fills completely (as maker, at
  ``p``) when the market traded *through* it - the best ask is at or below ``p``, or a
  taker sold below ``p`` - and fills partially by the quantity takers sold exactly at
  ``p``; SELL orders mirror that. Resting orders of one symbol share that at-price
  quantity first come, first served.
* **No market impact.** Our fills do not consume the public book or appear on the
  public tape: the public market stays exactly what the seed makes it (every client
  of the simulator sees the same market), and an account is a price taker.
* IOC and MARKET remainders expire (``EXPIRED``); FOK expires unfilled unless the book
  can fill it completely now; a post-only order (Binance ``LIMIT_MAKER``, Bybit
  ``PostOnly``) that would take is rejected or cancelled, as the request says.

Balances (exact ``Decimal``): an order reserves (locks) what it may spend when it is
accepted - a BUY LIMIT ``price * quantity`` of the quote asset, a MARKET BUY the cost
of walking the book (or its quote quantity), a SELL its quantity of the base asset -
and insufficient free balance rejects it. Each fill spends from the reservation and
credits the received asset minus the fee (:data:`FEE_RATE`, charged in the received
asset, as Binance and Bybit spot do); a BUY LIMIT filled below its price gets the
difference back at once; whatever is left when the order ends is unlocked.

Linear (USDT-margined perpetual: Bybit ``category=linear``, Binance USD-M) orders
trade the same book but settle in the quote asset only, at the account's leverage of
the symbol (:meth:`MatchingEngine.set_leverage`, default :data:`LEVERAGE`): an order
locks its initial margin (notional / leverage); a fill moves that margin into the
account's :class:`SimPosition` of the symbol (average entry price; a fill against the
position realizes ``closed size x (price - entry)`` into the free balance and unlocks
the closed part's margin; a fill larger than the position flips it), and pays the fee
in the quote asset. In hedge mode (:meth:`MatchingEngine.set_hedge_mode`) an account
holds a LONG and a SHORT position per symbol and every order names one
(``position_side``); an order that closes one may not be larger than it. A
``reduce_only`` order (one-way mode) must be against the position and not larger.
Every change of a linear order also announces the position (:class:`PositionEvent`;
Bybit sends ``position`` on every order create and cancel).
Not simulated: liquidation, funding, mark-price margin; a loss or fee larger than the
free balance takes the free balance to 0 and no further.

Trading rules (:class:`SymbolRules`) are the ones Binance's ``exchangeInfo`` of the
simulator publishes: price multiple of the tick in ``[tick, 100 x initial price]``,
quantity multiple of the step in ``[step, 10000 lots]`` (MARKET: at most 1000 lots),
notional at least :data:`MIN_NOTIONAL` of the quote asset, at most
:data:`MAX_OPEN_ORDERS` open orders per symbol and account.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal

from rxconnector.testing.simulator.accounts import Account, Accounts, BalanceChange
from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.market import Market, SymbolMarket, TickEvents
from rxconnector.testing.simulator.numbers import to_decimal
from rxconnector.testing.simulator.orders import (
    FEE_RATE,
    LEVERAGE,
    MAX_DECIMALS,
    MAX_OPEN_ORDERS,
    Fill,
    OrderEvent,
    OrderRequest,
    PositionEvent,
    Rejection,
    SimOrder,
    SimPosition,
    SymbolRules,
)

__all__ = ["MatchingEngine"]

#: Our fills get trade ids from here up, far above the public tape's ids.
FIRST_TRADE_ID = 900_000_000
FIRST_ORDER_ID = 7_000_000
_ZERO = Decimal(0)
#: Partial closes split the position's cost and margin at this precision; the amounts
#: moved are what the position keeps track of, so balances stay exactly conserved.
_SPLIT = Decimal("1e-12")


def _ticks(value: Decimal, exp: int) -> Decimal:
    """``value`` in units of ``10**-exp`` (may be fractional: the caller checks)."""
    return value.scaleb(exp)


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class MatchingEngine:
    """Orders of every account, matched against ``market`` (see the module docstring)."""

    def __init__(self, market: Market, accounts: Accounts, fee_rate: Decimal = FEE_RATE) -> None:
        self._market = market
        self._accounts = accounts
        self.fee_rate = fee_rate
        self._rules = {s: SymbolRules.of(m) for s, m in market.symbols.items()}
        self._orders: dict[int, SimOrder] = {}
        self._resting: dict[str, list[SimOrder]] = {s: [] for s in market.symbols}
        self._by_account: dict[str, list[SimOrder]] = {}
        self._positions: dict[tuple[str, str, str], SimPosition] = {}
        self._leverage: dict[tuple[str, str], Decimal] = {}
        self._hedge: set[str] = set()
        #: symbols an account margins in isolation (Binance USD-M ``marginType``)
        self._isolated: set[tuple[str, str]] = set()
        self._next_order_id = FIRST_ORDER_ID
        self._next_trade_id = FIRST_TRADE_ID

    # -- queries --------------------------------------------------------------------------

    def rules(self, symbol: str) -> SymbolRules:
        """The trading rules of ``symbol`` (``Rejection("unknown_symbol")`` if unlisted)."""
        rules = self._rules.get(symbol)
        if rules is None:
            raise Rejection("unknown_symbol", symbol)
        return rules

    def position(self, api_key: str, symbol: str, position_side: str = "BOTH") -> SimPosition:
        """The linear position of an account in ``symbol`` (flat if it never traded)."""
        key = (api_key, symbol, position_side)
        found = self._positions.get(key)
        if found is None:
            found = self._positions[key] = SimPosition(api_key, symbol, position_side)
        return found

    def positions(self, api_key: str) -> list[SimPosition]:
        """Every position of the account that ever traded, by symbol and side."""
        return [p for (key, _s, _p), p in sorted(self._positions.items()) if key == api_key]

    def leverage(self, api_key: str, symbol: str) -> Decimal:
        """The account's leverage of ``symbol`` (default :data:`LEVERAGE`)."""
        return self._leverage.get((api_key, symbol), LEVERAGE)

    def set_leverage(self, api_key: str, symbol: str, leverage: int | Decimal) -> None:
        """Change the leverage new orders of ``symbol`` use (positions keep their margin)."""
        self.rules(symbol)
        value = Decimal(leverage)
        if not 1 <= value <= 125 or value != value.to_integral_value():
            raise Rejection("unsupported", "leverage")
        self._leverage[(api_key, symbol)] = value

    def margin_type(self, api_key: str, symbol: str) -> str:
        """``"isolated"`` or ``"cross"`` (the default)."""
        return "isolated" if (api_key, symbol) in self._isolated else "cross"

    def set_margin_type(self, api_key: str, symbol: str, margin_type: str) -> None:
        """Margin ``symbol`` in isolation or cross; refused (``"margin_type"``) while a
        position or an order of the symbol is open, as Binance refuses it (-4048)."""
        self.rules(symbol)
        if margin_type not in ("isolated", "cross"):
            raise Rejection("unsupported", margin_type)
        open_position = any(p.size for p in self.positions(api_key) if p.symbol == symbol)
        if open_position or self.open_orders(api_key, symbol=symbol, category="linear"):
            raise Rejection("margin_type")
        if margin_type == "isolated":
            self._isolated.add((api_key, symbol))
        else:
            self._isolated.discard((api_key, symbol))

    def isolated_margin(self, api_key: str, asset: str) -> Decimal:
        """What the account's isolated positions hold of ``asset`` (their margin)."""
        return sum(
            (
                p.margin
                for p in self.positions(api_key)
                if (api_key, p.symbol) in self._isolated
                and self._rules[p.symbol].quote_asset == asset
            ),
            _ZERO,
        )

    def hedge_mode(self, api_key: str) -> bool:
        return api_key in self._hedge

    def set_hedge_mode(self, api_key: str, hedge: bool) -> None:
        """Switch position mode; refused (``"position_mode"``) with a position or a
        linear order open, as Binance refuses it (-4068 / -4067)."""
        if hedge == self.hedge_mode(api_key):
            return
        if any(p.size for p in self.positions(api_key)) or any(
            o.category == "linear" for o in self.open_orders(api_key)
        ):
            raise Rejection("position_mode")
        if hedge:
            self._hedge.add(api_key)
        else:
            self._hedge.discard(api_key)

    @property
    def orders(self) -> list[SimOrder]:
        """Every order ever accepted, oldest first."""
        return list(self._orders.values())

    def orders_of(self, api_key: str, venue: str | None = None) -> list[SimOrder]:
        """Orders of one account (optionally of one venue), oldest first."""
        return [o for o in self._by_account.get(api_key, []) if venue in (None, o.venue)]

    def open_orders(
        self,
        api_key: str,
        venue: str | None = None,
        symbol: str | None = None,
        category: str | None = None,
    ) -> list[SimOrder]:
        return [
            o
            for o in self.orders_of(api_key, venue)
            if o.is_open and symbol in (None, o.symbol) and category in (None, o.category)
        ]

    def find(
        self,
        api_key: str,
        venue: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> SimOrder | None:
        """The order with ``order_id``, else the latest one with ``client_order_id``, of
        this account, venue and symbol."""
        if order_id is not None:
            order = self._orders.get(order_id)
            if order and (order.api_key, order.venue, order.symbol) == (api_key, venue, symbol):
                return order
            return None
        if not client_order_id:
            return None
        for order in reversed(self.orders_of(api_key, venue)):
            if order.symbol == symbol and order.client_order_id == client_order_id:
                return order
        return None

    # -- requests -------------------------------------------------------------------------

    def validate(self, account: Account, req: OrderRequest) -> tuple[int, int]:
        """Check ``req`` against the symbol's rules and the account's open orders
        (what Binance's ``order/test`` checks); ``(price ticks, quantity steps)``."""
        rules = self.rules(req.symbol)
        if req.type not in ("LIMIT", "MARKET"):
            raise Rejection("unsupported", req.type)
        if req.time_in_force not in ("GTC", "IOC", "FOK"):
            raise Rejection("unsupported", req.time_in_force)
        price_ticks = 0
        if req.type == "LIMIT":
            if req.price is None:
                raise Rejection("precision", "price")
            price_ticks = self._price_ticks(req.price, rules)
        qty_steps = 0
        if req.quantity is not None:
            qty_steps = self._qty_steps(req.quantity, rules, market=req.type == "MARKET")
        elif not (req.type == "MARKET" and req.side == "BUY" and req.quote_quantity):
            raise Rejection("precision", "quantity")
        notional = self._notional(req, rules, price_ticks, qty_steps)
        if notional < rules.min_notional:
            raise Rejection("filter", "NOTIONAL", "min")
        if req.category == "linear":
            self._check_position_side(account.api_key, req, qty_steps, rules)
        open_here = self.open_orders(account.api_key, req.venue, req.symbol)
        if len(open_here) >= MAX_OPEN_ORDERS:
            raise Rejection("filter", "MAX_NUM_ORDERS", "max")
        self._check_client_id(account, req)
        return price_ticks, qty_steps

    def place(self, account: Account, req: OrderRequest, now: int) -> SimOrder:
        """Accept, match and (if anything is left) rest a new order; announce it.

        Raises :class:`Rejection` without changing anything when the order is refused.
        """
        price_ticks, qty_steps = self.validate(account, req)
        rules = self.rules(req.symbol)
        m = self._market[req.symbol]
        crosses = req.type == "MARKET" or self._crosses(m, req.side, price_ticks)
        if req.post_only and crosses and req.post_only_rejects:
            raise Rejection("would_take")
        leverage = self.leverage(account.api_key, req.symbol)
        asset, reserve = self._reservation(m, rules, req, price_ticks, qty_steps, leverage)
        if account.free(asset) < reserve:
            raise Rejection("insufficient_balance", asset)
        order = SimOrder(
            id=self._next_order_id,
            venue=req.venue,
            api_key=account.api_key,
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            post_only=req.post_only,
            category=req.category,
            rules=rules,
            price_ticks=price_ticks,
            qty_steps=qty_steps,
            quote_quantity=req.quote_quantity if req.quantity is None else None,
            client_order_id=req.client_order_id,
            created=now,
            updated=now,
            reserve=reserve,
            reserve_asset=asset,
            label=req.label or req.type,
            reduce_only=req.reduce_only,
            position_side=req.position_side,
        )
        self._next_order_id += 1
        self._orders[order.id] = order
        self._by_account.setdefault(account.api_key, []).append(order)
        account.move(asset, free=-reserve, locked=reserve)
        changed = {asset: None}
        if order.quote_quantity is not None:
            order.qty_steps = self._quote_steps(m, order)
        self._announce(OrderEvent(order, "NEW", now))
        if req.post_only and crosses:
            self._end(order, "CANCELED", now, changed, reason="POST_ONLY")
        elif req.time_in_force == "FOK" and not self._fillable(m, order):
            self._end(order, "EXPIRED", now, changed)
        else:
            if crosses:
                self._take(m, order, now, changed)
            if order.is_open:
                if order.type == "MARKET" or order.time_in_force != "GTC":
                    self._end(order, "EXPIRED", now, changed)
                else:
                    self._resting[order.symbol].append(order)
        self._balances(account, changed, now)
        return order

    def cancel(
        self,
        account: Account,
        venue: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
        *,
        now: int,
        cancel_client_order_id: str = "",
    ) -> SimOrder:
        """Cancel an open order; ``Rejection("unknown_order")`` if there is none."""
        self.rules(symbol)
        order = self.find(account.api_key, venue, symbol, order_id, client_order_id)
        if order is None or not order.is_open:
            raise Rejection("unknown_order")
        changed: dict[str, None] = {}
        self._end(order, "CANCELED", now, changed, cancel_client_order_id=cancel_client_order_id)
        self._balances(account, changed, now)
        return order

    def set_balance(self, api_key: str, asset: str, free: Decimal | str | int, now: int) -> None:
        """A deposit or withdrawal that makes ``asset``'s free amount ``free``."""
        self._accounts.set_balance(api_key, asset, free, now)

    # -- the market moves -----------------------------------------------------------------

    def on_tick(self, events: Iterable[TickEvents]) -> None:
        """Fill resting orders the tick's trades and book went through."""
        for ev in events:
            resting = self._resting.get(ev.symbol)
            if not resting:
                continue
            m = self._market[ev.symbol]
            best_bid, best_ask = m.book.best_bid(), m.book.best_ask()
            at_price: dict[tuple[str, int], int] = {}
            lowest_sold: int | None = None
            highest_bought: int | None = None
            for t in ev.trades:
                key = (t.taker_side, t.price_ticks)
                at_price[key] = at_price.get(key, 0) + t.qty_steps
                if t.taker_side == "SELL":
                    if lowest_sold is None or t.price_ticks < lowest_sold:
                        lowest_sold = t.price_ticks
                elif highest_bought is None or t.price_ticks > highest_bought:
                    highest_bought = t.price_ticks
            touched: dict[str, dict[str, None]] = {}
            for order in list(resting):
                price = order.price_ticks
                if order.side == "BUY":
                    through = (best_ask is not None and best_ask <= price) or (
                        lowest_sold is not None and lowest_sold < price
                    )
                    key = ("SELL", price)
                else:
                    through = (best_bid is not None and best_bid >= price) or (
                        highest_bought is not None and highest_bought > price
                    )
                    key = ("BUY", price)
                left = order.qty_steps - order.filled_steps
                qty = left if through else min(left, at_price.get(key, 0))
                if qty <= 0:
                    continue
                if not through:
                    at_price[key] -= qty
                changed = touched.setdefault(order.api_key, {})
                self._execute(order, price, qty, maker=True, now=ev.time, changed=changed)
            for api_key, changed in touched.items():
                self._balances(self._accounts[api_key], changed, ev.time)

    # -- internals ------------------------------------------------------------------------

    def _price_ticks(self, price: Decimal, rules: SymbolRules) -> int:
        if not price.is_finite() or _decimals(price) > MAX_DECIMALS:
            raise Rejection("precision", "price")
        ticks = _ticks(price, rules.price_exp)
        if ticks != ticks.to_integral_value():
            raise Rejection("filter", "PRICE_FILTER", "step")
        if price < rules.min_price:
            raise Rejection("filter", "PRICE_FILTER", "min")
        if price > rules.max_price:
            raise Rejection("filter", "PRICE_FILTER", "max")
        return int(ticks)

    def _qty_steps(self, qty: Decimal, rules: SymbolRules, *, market: bool) -> int:
        if not qty.is_finite() or _decimals(qty) > MAX_DECIMALS:
            raise Rejection("precision", "quantity")
        steps = _ticks(qty, rules.qty_exp)
        if steps != steps.to_integral_value():
            raise Rejection("filter", "LOT_SIZE", "step")
        if qty < rules.min_qty:
            raise Rejection("filter", "LOT_SIZE", "min")
        if qty > rules.max_qty:
            raise Rejection("filter", "LOT_SIZE", "max")
        if market and qty > rules.market_max_qty:
            raise Rejection("filter", "MARKET_LOT_SIZE", "max")
        return int(steps)

    def _notional(
        self, req: OrderRequest, rules: SymbolRules, price_ticks: int, qty_steps: int
    ) -> Decimal:
        if req.type == "LIMIT":
            return to_decimal(price_ticks * qty_steps, rules.price_exp + rules.qty_exp)
        if req.quantity is None:
            return req.quote_quantity or _ZERO
        last = self._market[req.symbol].last_price_ticks()
        return to_decimal(last * qty_steps, rules.price_exp + rules.qty_exp)

    def _check_position_side(
        self, api_key: str, req: OrderRequest, qty_steps: int, rules: SymbolRules
    ) -> None:
        """Hedge / one-way mode and reduce-only rules (module docstring)."""
        hedge = self.hedge_mode(api_key)
        side = req.position_side
        if hedge != (side in ("LONG", "SHORT")):
            raise Rejection("position_side", side)
        qty = to_decimal(qty_steps, rules.qty_exp)
        held = self.position(api_key, req.symbol, side).size
        if hedge:
            if req.reduce_only:
                raise Rejection("reduce_only", "hedge mode")
            closing = (side == "LONG") == (req.side == "SELL")
            if closing and qty > abs(held):
                raise Rejection("reduce_only", "larger than the position")
        elif req.reduce_only:
            against = (held > 0 and req.side == "SELL") or (held < 0 and req.side == "BUY")
            if not against or qty > abs(held):
                raise Rejection("reduce_only", "would not reduce the position")

    def _check_client_id(self, account: Account, req: OrderRequest) -> None:
        cid = req.client_order_id
        if not cid:
            return
        for order in self.orders_of(account.api_key, req.venue):
            if order.client_order_id == cid and (req.client_ids_unique == "all" or order.is_open):
                raise Rejection("duplicate_client_id", cid)

    @staticmethod
    def _crosses(m: SymbolMarket, side: str, price_ticks: int) -> bool:
        if side == "BUY":
            ask = m.book.best_ask()
            return ask is not None and ask <= price_ticks
        bid = m.book.best_bid()
        return bid is not None and bid >= price_ticks

    @staticmethod
    def _levels(m: SymbolMarket, order: SimOrder) -> list[tuple[int, int]]:
        """The opposite side's levels this order may take, best first."""
        levels = m.book.levels(ASK if order.side == "BUY" else BID)
        if order.type == "MARKET":
            return levels
        limit = order.price_ticks
        if order.side == "BUY":
            return [(p, q) for p, q in levels if p <= limit]
        return [(p, q) for p, q in levels if p >= limit]

    def _fillable(self, m: SymbolMarket, order: SimOrder) -> bool:
        return sum(q for _, q in self._levels(m, order)) >= order.qty_steps

    def _reservation(
        self,
        m: SymbolMarket,
        rules: SymbolRules,
        req: OrderRequest,
        price_ticks: int,
        qty_steps: int,
        leverage: Decimal = LEVERAGE,
    ) -> tuple[str, Decimal]:
        """``(asset, amount)`` to lock while the order lives."""
        scale = rules.price_exp + rules.qty_exp
        if req.category == "linear":
            if req.type == "LIMIT":
                notional = price_ticks * qty_steps
            else:
                notional = self._walk_cost(m, ASK if req.side == "BUY" else BID, qty_steps)
            return rules.quote_asset, to_decimal(notional, scale) / leverage
        if req.side == "SELL":
            return rules.base_asset, to_decimal(qty_steps, rules.qty_exp)
        if req.type == "LIMIT":
            return rules.quote_asset, to_decimal(price_ticks * qty_steps, scale)
        if req.quantity is None:
            return rules.quote_asset, req.quote_quantity or _ZERO
        return rules.quote_asset, to_decimal(self._walk_cost(m, ASK, qty_steps), scale)

    @staticmethod
    def _walk_cost(m: SymbolMarket, side: int, qty_steps: int) -> int:
        """Ticks x steps it costs to take ``qty_steps`` from ``side`` now (or all of it)."""
        cost, left = 0, qty_steps
        for price, qty in m.book.levels(side):
            take = min(left, qty)
            cost += price * take
            left -= take
            if not left:
                break
        return cost

    @staticmethod
    def _quote_steps(m: SymbolMarket, order: SimOrder) -> int:
        """How much a quote-quantity MARKET BUY buys walking the asks now."""
        rules = order.rules
        budget = (order.quote_quantity or _ZERO).scaleb(rules.price_exp + rules.qty_exp)
        left = int(budget.to_integral_value(ROUND_FLOOR))
        steps = 0
        for price, qty in m.book.levels(ASK):
            take = min(qty, left // price)
            steps += take
            left -= take * price
            if take < qty:
                break
        return steps

    def _take(self, m: SymbolMarket, order: SimOrder, now: int, changed: dict[str, None]) -> None:
        for price, available in self._levels(m, order):
            qty = min(available, order.qty_steps - order.filled_steps)
            if qty <= 0:
                break
            self._execute(order, price, qty, maker=False, now=now, changed=changed)
            if not order.is_open:
                break

    def _execute(
        self,
        order: SimOrder,
        price_ticks: int,
        qty_steps: int,
        *,
        maker: bool,
        now: int,
        changed: dict[str, None],
    ) -> None:
        """One fill: move balances, update the order, announce the trade."""
        rules = order.rules
        account = self._accounts[order.api_key]
        price = to_decimal(price_ticks, rules.price_exp)
        qty = to_decimal(qty_steps, rules.qty_exp)
        quote = price * qty
        base_asset, quote_asset = rules.base_asset, rules.quote_asset
        if order.category == "linear":
            fee = self._settle_linear(account, order, price, qty, now)
            changed[quote_asset] = None
        elif order.side == "BUY":
            fee = qty * self.fee_rate
            account.move(quote_asset, locked=-quote)
            account.move(base_asset, free=qty - fee)
            order.reserve -= quote
        else:
            fee = quote * self.fee_rate
            account.move(base_asset, locked=-qty)
            account.move(quote_asset, free=quote - fee)
            order.reserve -= qty
        if order.category != "linear":
            changed[base_asset] = changed[quote_asset] = None
        order.filled_steps += qty_steps
        order.cum_quote += quote
        order.cum_fee += fee
        order.updated = now
        done = order.filled_steps >= order.qty_steps
        order.status = "FILLED" if done else "PARTIALLY_FILLED"
        if order.side == "BUY" and order.type == "LIMIT" and order.category != "linear":
            # keep exactly price * remaining locked; a better price is refunded now
            target = order.price * order.remaining
            excess = order.reserve - target
            if excess > 0:
                account.move(quote_asset, free=excess, locked=-excess)
                order.reserve = target
        fill = Fill(self._next_trade_id, price, qty, quote, fee, order.fee_asset, maker, now)
        self._next_trade_id += 1
        order.fills.append(fill)
        if done:
            self._release(order, changed)
        self._announce(OrderEvent(order, "TRADE", now, fill))

    def _end(
        self,
        order: SimOrder,
        status: str,
        now: int,
        changed: dict[str, None],
        *,
        reason: str = "",
        cancel_client_order_id: str = "",
    ) -> None:
        """End an open order as CANCELED or EXPIRED: unlock what it still holds."""
        order.status = status
        order.end_reason = reason or status
        order.updated = now
        self._release(order, changed)
        self._announce(
            OrderEvent(order, status, now, cancel_client_order_id=cancel_client_order_id)
        )

    def _release(self, order: SimOrder, changed: dict[str, None]) -> None:
        if order.reserve:
            account = self._accounts[order.api_key]
            account.move(order.reserve_asset, free=order.reserve, locked=-order.reserve)
            changed[order.reserve_asset] = None
            order.reserve = _ZERO
        resting = self._resting[order.symbol]
        if order in resting:
            resting.remove(order)

    def _balances(self, account: Account, changed: dict[str, None], now: int) -> None:
        if not changed:
            return
        account.update_time = now
        self._accounts.emit(BalanceChange(account, account.snapshot(changed), now))

    def _announce(self, event: OrderEvent) -> None:
        self._accounts.emit(event)
        order = event.order
        if order.category == "linear":
            position = self.position(order.api_key, order.symbol, order.position_side)
            self._accounts.emit(PositionEvent(position, event.time))

    def _settle_linear(
        self, account: Account, order: SimOrder, price: Decimal, qty: Decimal, now: int
    ) -> Decimal:
        """A linear fill: the order's margin for ``qty`` becomes position margin (or is
        released where the fill closes the position), PnL is realized, the fee paid.
        Returns the fee."""
        asset = order.rules.quote_asset
        leverage = self.leverage(order.api_key, order.symbol)
        basis = order.price if order.type == "LIMIT" else price
        order_margin = min(order.reserve, basis * qty / leverage)
        account.move(asset, free=order_margin, locked=-order_margin)
        order.reserve -= order_margin
        pos = self.position(order.api_key, order.symbol, order.position_side)
        if not pos.created:
            pos.created = now
        signed = qty if order.side == "BUY" else -qty
        realized = _ZERO
        opening = qty
        if pos.size and (pos.size > 0) != (signed > 0):  # against the position
            held = abs(pos.size)
            closed = min(qty, held)
            direction = 1 if pos.size > 0 else -1
            if closed == held:
                cost, released = pos.cost, pos.margin
            else:
                cost = (pos.cost * closed / held).quantize(_SPLIT)
                released = (pos.margin * closed / held).quantize(_SPLIT)
            realized = (price * closed - cost) * direction
            account.move(asset, free=released, locked=-released)
            pos.cost -= cost
            pos.margin -= released
            pos.size += closed if pos.size < 0 else -closed
            opening = qty - closed
        if opening:
            pos.cost += price * opening
            pos.size += opening if signed > 0 else -opening
            margin = min(account.free(asset), price * opening / leverage)
            account.move(asset, free=-margin, locked=margin)
            pos.margin += margin
        fee = price * qty * self.fee_rate
        net = realized - fee
        account.move(asset, free=max(net, -account.free(asset)))
        pos.realized += realized
        pos.last_realized = realized
        pos.updated = now
        return fee
