"""The trading rules an order is checked against, fetched once per symbol and kept fresh.

An order whose price is off the tick size or whose quantity is off the step size is
refused by the exchange anyway; checking it locally first saves a request (and its
weight, and an order-rate slot) and gives a clear :class:`~rxconnector.errors.OrderRejectedError`
instead of a venue error code. That check is only worth something if it *always*
runs, also on a fresh connector that never asked for ``exchange_info``: so before an
order on a symbol whose rules are not cached (or are older than ``ttl``), the rules
are fetched first.

.. marble::
    :alt: rules_for("BTCUSDT") twice at once, then after the TTL

    order A:   -r--------------|        r: rules_for subscribed
    order B:   --r-------------|
    fetch:     -[=====]        |         one request serves both
    result A:  -------(i|)
    result B:  -------(i|)
    after ttl: ---------------------r-[=====](i|)   fetched again

Concurrent first orders on one symbol share one request (a burst of N orders costs one
``exchangeInfo``, not N); a failed fetch fails the orders that waited for it and is
tried again by the next order. Time (the TTL) is read from ``scheduler``, the
connector's, so tests run it in virtual time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import reactivex
from reactivex import Observable, abc
from reactivex.subject import AsyncSubject

from rxconnector._scheduling import loop_scheduler, now_ms
from rxconnector.models import SymbolInfo

__all__ = ["SYMBOL_RULES_TTL", "SymbolRules"]

#: How long fetched rules are trusted before the next order fetches them again (s).
#: Exchanges change tick and step sizes rarely and announce it days ahead; ten minutes
#: bounds how long a changed rule can make a valid order fail locally (or a newly
#: invalid one reach the exchange), at one light request per symbol per ten minutes.
SYMBOL_RULES_TTL: Final = 600.0


class SymbolRules:
    """Cached :class:`~rxconnector.models.SymbolInfo` per symbol with fetch times.

    Args:
        fetch: ``fetch(symbol)`` → Observable of the rules it found (the venue's
            ``exchange_info([symbol])``); it must also :meth:`remember` what it got
            (the venue REST objects do, so an explicit ``exchange_info`` call fills the
            cache as well).
        ttl: seconds fetched rules stay fresh.
        scheduler: the clock of the TTL; default: the running loop's.
    """

    def __init__(
        self,
        fetch: Callable[[str], Observable[Mapping[str, SymbolInfo]]],
        *,
        ttl: float = SYMBOL_RULES_TTL,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
        self._fetch = fetch
        self.ttl = ttl
        self._scheduler = scheduler
        #: symbol → its rules (read by ``symbol_info``; updated in place)
        self.infos: dict[str, SymbolInfo] = {}
        self._fetched_at: dict[str, float] = {}
        self._pending: dict[str, AsyncSubject[SymbolInfo | None]] = {}
        self.fetches = 0

    def _now(self) -> float:
        if self._scheduler is None:
            try:
                return now_ms(loop_scheduler()) / 1000.0
            except RuntimeError:  # no loop runs (rules remembered by plain code): wall clock
                return time.time()
        return now_ms(self._scheduler) / 1000.0

    def remember(self, infos: Mapping[str, SymbolInfo]) -> None:
        """Store rules just received (from any ``exchange_info`` call), stamped now."""
        if not infos:
            return
        now = self._now()
        self.infos.update(infos)
        for symbol in infos:
            self._fetched_at[symbol] = now

    def forget(self, symbol: str | None = None) -> None:
        """Treat ``symbol``'s rules (``None``: every symbol's) as stale: the next order
        fetches them again. The rules stay readable (``symbol_info``) until then."""
        if symbol is None:
            self._fetched_at.clear()
        else:
            self._fetched_at.pop(symbol, None)

    def fresh(self, symbol: str) -> bool:
        """Whether ``symbol``'s rules were fetched less than :attr:`ttl` ago."""
        at = self._fetched_at.get(symbol)
        return at is not None and self._now() - at < self.ttl

    def rules_for(self, symbol: str) -> Observable[SymbolInfo | None]:
        """The rules of ``symbol``: from the cache while fresh, else fetched (one request
        shared by every order waiting for it). Emits ``None`` when the venue's answer
        does not list the symbol (the order then goes to the exchange, which decides)."""

        def subscribe(
            observer: abc.ObserverBase[SymbolInfo | None],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            if self.fresh(symbol):
                return reactivex.just(self.infos.get(symbol)).subscribe(observer)
            pending = self._pending.get(symbol)
            if pending is None:
                pending = self._start_fetch(symbol)
            return pending.subscribe(observer)

        return Observable(subscribe)

    def _start_fetch(self, symbol: str) -> AsyncSubject[SymbolInfo | None]:
        subject: AsyncSubject[SymbolInfo | None] = AsyncSubject()
        self._pending[symbol] = subject
        self.fetches += 1
        found: list[SymbolInfo | None] = [None]

        def on_next(infos: Mapping[str, SymbolInfo]) -> None:
            found[0] = infos.get(symbol, found[0])

        def on_error(error: Exception) -> None:
            self._pending.pop(symbol, None)
            subject.on_error(error)

        def on_completed() -> None:
            self._pending.pop(symbol, None)
            if found[0] is None:
                # not listed: remember that too, or every order would ask again
                self._fetched_at[symbol] = self._now()
            subject.on_next(found[0])
            subject.on_completed()

        # The request runs to its end even if every waiting order is disposed: it is a
        # cheap read, and its answer serves the next order.
        source: Observable[Any] = self._fetch(symbol)
        source.subscribe(on_next, on_error, on_completed)
        return subject
