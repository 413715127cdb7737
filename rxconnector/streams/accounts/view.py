"""The view of one account as its subscribers saw it: what reconciliation compares with.

Every model the stream delivers passes through :meth:`AccountView.saw`, so after a
re-subscription the REST answers are compared with exactly what subscribers know.
Between a connect and the end of its reconciliation the view also notes what live
events *touched* (:meth:`AccountView.watch`): REST answers, asked for before those
events, never overwrite something newer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from rxconnector.exchanges.account_protocol import TERMINAL_STATUSES
from rxconnector.models import Balance, Order, OrderUpdate, Position
from rxconnector.streams.accounts.differences import (
    balance_changes,
    order_is_news,
    position_changes,
    reconciled_update,
    with_last_fill,
)

__all__ = ["FINISHED_MEMORY", "AccountView"]

#: Finished orders remembered so a late duplicate (Bybit may send "Filled" twice when a
#: cancel races a fill, PROTOCOL.md §C2) is not mistaken for a new fill; also the number
#: of announced orders (:meth:`AccountView.note_placed`) remembered.
FINISHED_MEMORY: Final = 1024

OrderKey = tuple[str, str]


class AccountView:
    """Orders (open, finished, announced), balances and positions as subscribers saw
    them, and what live events touched while a reconciliation is pending.

    Args:
        reports_last_fill: False when the venue's order events lack the last fill
            (Bybit); it is then derived from the cumulative filled quantity.
    """

    def __init__(self, reports_last_fill: bool) -> None:
        self._reports_last_fill = reports_last_fill
        self.watching = False
        self.touched_orders: set[OrderKey] = set()
        self.touched_assets: set[str] = set()
        self.touched_positions: set[tuple[str, str]] = set()
        self.orders: dict[OrderKey, OrderUpdate] = {}
        self.finished: OrderedDict[OrderKey, OrderUpdate] = OrderedDict()
        #: orders announced by note_placed that no event or REST answer has shown yet
        self.placed: OrderedDict[OrderKey, None] = OrderedDict()
        self.balances: dict[str, Balance] = {}
        self.positions: dict[tuple[str, str], Position] = {}

    def watch(self, on: bool) -> None:
        """Start (``True``) or stop noting what live events touch, from a clean slate."""
        self.watching = on
        self.touched_orders.clear()
        self.touched_assets.clear()
        self.touched_positions.clear()

    # -- live events ----------------------------------------------------------------------

    def saw(self, item: object) -> object:
        """Record a live event on its way to subscribers; returns what to deliver (an
        order update completed with its last fill where the venue leaves it out)."""
        if type(item) is OrderUpdate:
            return self.track_order(item, live=True)
        if type(item) is Balance:
            self.balances[item.asset] = item
            if self.watching:
                self.touched_assets.add(item.asset)
        elif type(item) is Position:
            self.positions[item.key] = item
            if self.watching:
                self.touched_positions.add(item.key)
        return item

    def note_placed(self, symbol: str, order_id: str) -> None:
        """Remember an order placed over REST that the stream has not reported yet."""
        key = (symbol, order_id)
        if self.known(key) is not None:
            return
        placed = self.placed
        placed[key] = None
        while len(placed) > FINISHED_MEMORY:
            placed.popitem(last=False)

    def known(self, key: OrderKey) -> OrderUpdate | None:
        """The last update subscribers saw of the order ``(symbol, order_id)``."""
        known = self.orders.get(key)
        return known if known is not None else self.finished.get(key)

    def known_open(self) -> list[OrderKey]:
        """Orders open as far as subscribers know, and placed but never reported."""
        return [*self.orders, *self.placed]

    def track_order(self, update: OrderUpdate, *, live: bool) -> OrderUpdate:
        """Record ``update`` (a live event, or a reconciled one when not ``live``)."""
        key = (update.symbol, update.order_id)
        self.placed.pop(key, None)
        known = self.known(key)
        if live and not self._reports_last_fill:
            update = with_last_fill(update, known)
        if live and self.watching:
            self.touched_orders.add(key)
        if update.status in TERMINAL_STATUSES:
            self.orders.pop(key, None)
            finished = self.finished
            finished[key] = update
            finished.move_to_end(key)
            while len(finished) > FINISHED_MEMORY:
                finished.popitem(last=False)
        else:
            self.orders[key] = update
        return update

    # -- REST answers after a gap ---------------------------------------------------------

    def order_change(self, order: Order, status: str, received_at: float) -> OrderUpdate | None:
        """The reconciled update for REST's ``order`` (canonical ``status``), recorded,
        or ``None`` when it is no news or a live event said something newer."""
        key = (order.symbol, order.order_id)
        if key in self.touched_orders:
            return None
        known = self.known(key)
        if not order_is_news(order, status, known):
            return None
        return self.track_order(reconciled_update(order, status, known, received_at), live=False)

    def missing_open(self, listed: list[Order], known_open: list[OrderKey]) -> list[OrderKey]:
        """The ``known_open`` orders REST's open orders no longer list (and no live event
        touched): they ended while nobody listened and must be looked up one by one."""
        seen = {(order.symbol, order.order_id) for order in listed}
        touched = self.touched_orders
        return [key for key in known_open if key not in seen and key not in touched]

    def balance_changes(self, listed: tuple[Balance, ...], received_at: float) -> list[Balance]:
        """The reconciled balances that differ from what subscribers saw, recorded."""
        changed = balance_changes(self.balances, self.touched_assets, listed, received_at)
        for balance in changed:
            self.balances[balance.asset] = balance
        return changed

    def position_changes(self, listed: list[Position], received_at: float) -> list[Position]:
        """The reconciled positions that differ from what subscribers saw, recorded."""
        changed = position_changes(self.positions, self.touched_positions, listed, received_at)
        for position in changed:
            self.positions[position.key] = position
        return changed
