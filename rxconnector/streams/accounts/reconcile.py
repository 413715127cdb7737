"""Reconciliation: after a re-subscription, fetch the account over REST and emit what
changed while nothing was subscribed.

Events that happen while no subscription is live are lost by the exchange, not
delayed. So after every re-subscription (never after the first) :class:`Reconciliation`
asks for the open orders, the balances and (derivatives) the positions with the
callables the owner injected (:class:`Fetchers`), and emits whatever differs from the
:class:`~.view.AccountView` with ``reconciled=True``. Orders that were open before and
are no longer open are looked up one by one, so an order filled during the disconnect
shows up as FILLED:

.. marble::
    :alt: reconciliation

    open orders: --[A]|                  (B was open before: look it up)
    order B:          --B(FILLED)|
    balances:    ----[USDT 90]|
    emit:        --A'--USDT'--B'         (each reconciled=True; then finished)

A failed call is reported as a :class:`~rxconnector.errors.FeedGapError` (the view may
be stale) and counts as done, so one failing endpoint never stalls the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from rxconnector._scheduling import now_ms
from rxconnector.errors import FeedGapError
from rxconnector.models import Balance, Order, Position
from rxconnector.streams.accounts.view import AccountView
from rxconnector.transport.ws_types import describe_error

__all__ = ["Fetchers", "Reconciliation"]

_T = TypeVar("_T")


@attrs.frozen
class Fetchers:
    """The REST calls reconciliation uses (each optional; see ``AccountStreams``)."""

    open_orders: Callable[[], Observable[list[Order]]] | None = None
    balances: Callable[[], Observable[tuple[Balance, ...]]] | None = None
    order: Callable[[str, str], Observable[Order]] | None = None
    positions: Callable[[], Observable[list[Position]]] | None = None

    @property
    def any_state(self) -> bool:
        """Whether anything of the account can be fetched at all."""
        return not (self.open_orders is None and self.balances is None and self.positions is None)


class Reconciliation:
    """One reconciliation; disposing :attr:`group` abandons it (a new gap, or the end).

    Args:
        fetch: The REST calls.
        view: What subscribers saw; updated with every reconciled change.
        order_status: The venue's REST status → canonical spelling.
        deliver: Emits a reconciled model to subscribers.
        report: Reports a non-fatal problem.
        connection_id: Names the connection in gap reports.
        scheduler: Timing of the REST calls and of ``received_at``.
        finished: Called once every call has answered or failed.
    """

    def __init__(
        self,
        fetch: Fetchers,
        view: AccountView,
        order_status: Callable[[str], str],
        deliver: Callable[[object], None],
        report: Callable[[Exception], None],
        connection_id: str,
        scheduler: abc.SchedulerBase,
        finished: Callable[[], None],
    ) -> None:
        self._fetch = fetch
        self._view = view
        self._order_status = order_status
        self._deliver = deliver
        self._report = report
        self._connection_id = connection_id
        self.scheduler = scheduler
        self._finished = finished
        self.group = CompositeDisposable()
        self._pending = 0
        self._known_open = view.known_open()

    def start(self) -> None:
        fetch = self._fetch
        if fetch.open_orders is not None:
            self._call(fetch.open_orders, self._on_open_orders, "open orders")
        if fetch.balances is not None:
            self._call(fetch.balances, self._on_balances, "balances")
        if fetch.positions is not None:
            self._call(fetch.positions, self._on_positions, "positions")

    def _call(
        self, make: Callable[[], Observable[_T]], on_value: Callable[[_T], None], what: str
    ) -> None:
        self._pending += 1
        _RestCall(self, on_value, what).subscribe(make)

    def part_done(self) -> None:
        """One REST call answered or failed."""
        self._pending -= 1
        if self._pending == 0 and not self.group.is_disposed:
            self._finished()

    def report(self, error: Exception) -> None:
        """A non-fatal problem (a failed apply of an answer)."""
        self._report(error)

    def failed(self, what: str, error: Exception) -> None:
        """A REST call failed: the view may be stale."""
        self._report(
            FeedGapError(
                self._connection_id,
                f"reconciliation could not fetch {what} ({describe_error(error)}); "
                "changes made while disconnected may be missing",
            )
        )

    # -- answers ------------------------------------------------------------------------

    def _on_open_orders(self, orders: list[Order]) -> None:
        for order in orders:
            self._on_order(order)
        gone = self._view.missing_open(orders, self._known_open)
        fetch_order = self._fetch.order
        if fetch_order is None:
            if gone:
                self._report(
                    FeedGapError(
                        self._connection_id,
                        f"{len(gone)} order(s) closed while disconnected cannot be "
                        "looked up (no fetch_order callable was given)",
                    )
                )
            return
        for symbol, order_id in gone:
            self._call(
                _bind(fetch_order, symbol, order_id), self._on_order, f"order {symbol} {order_id}"
            )

    def _on_order(self, order: Order) -> None:
        status = self._order_status(order.status)
        update = self._view.order_change(order, status, now_ms(self.scheduler))
        if update is not None:
            self._deliver(update)

    def _on_balances(self, balances: tuple[Balance, ...]) -> None:
        for balance in self._view.balance_changes(balances, now_ms(self.scheduler)):
            self._deliver(balance)

    def _on_positions(self, positions: list[Position]) -> None:
        for position in self._view.position_changes(positions, now_ms(self.scheduler)):
            self._deliver(position)


class _RestCall(Generic[_T]):
    """One REST call of a :class:`Reconciliation`: its answer is applied unless the
    reconciliation was abandoned; a failure is reported; either way it is done once."""

    def __init__(self, owner: Reconciliation, on_value: Callable[[_T], None], what: str) -> None:
        self._owner = owner
        self._on_value = on_value
        self._what = what
        self._done = False

    def subscribe(self, make: Callable[[], Observable[_T]]) -> None:
        try:
            source = make()
        except Exception as exc:
            self._on_error(exc)
            return
        self._owner.group.add(
            source.subscribe(
                self._on_next, self._on_error, self._complete, scheduler=self._owner.scheduler
            )
        )

    def _on_next(self, value: _T) -> None:
        if self._owner.group.is_disposed:
            return
        try:
            self._on_value(value)
        except Exception as exc:
            self._owner.report(exc)

    def _on_error(self, error: Exception) -> None:
        self._owner.failed(self._what, error)
        self._complete()

    def _complete(self) -> None:
        if not self._done:
            self._done = True
            self._owner.part_done()


def _bind(
    fetch_order: Callable[[str, str], Observable[Order]], symbol: str, order_id: str
) -> Callable[[], Observable[Order]]:
    return lambda: fetch_order(symbol, order_id)
