"""The REST half of :class:`~rxconnector.testing.fake.FakeConnector`: scripted answers.

Every REST call of the Connector surface is recorded when it is subscribed (a real
connector sends the request then) and answered as :meth:`ScriptedRest.script` says: a
value, an error, a function of the call's arguments, after a virtual delay, for the next
``times`` calls or from then on. Split from the feeds so each module has one job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rxconnector._scheduling import now_ms
from rxconnector.errors import NotScriptedError
from rxconnector.market_data import TRADING_METHODS
from rxconnector.models import Kline, Order, OrderBook, Position, SymbolInfo, Ticker, Trade

__all__ = ["REST_METHODS", "Call", "ScriptedRest"]

#: REST methods of the Connector surface (the :class:`~rxconnector.market_data.Trading`
#: protocol's, in its order).
REST_METHODS = TRADING_METHODS

#: REST calls that emit many items (one per candle) rather than one answer.
_MANY = frozenset({"kline_history"})


@attrs.frozen
class Call:
    """One REST call the strategy made: which method, its arguments, when (virtual s).

    ``time`` is the virtual time of the *subscription*, when a real connector would
    have sent the request.
    """

    method: str
    kwargs: dict[str, Any] = attrs.field(eq=True, hash=False)
    time: float


@attrs.define
class _Response:
    result: Any
    error: Exception | None
    delay: float
    remaining: int | None


class ScriptedRest:
    """REST calls answered by script, on a ``TestScheduler`` (see the module docstring).

    Args:
        scheduler: The virtual-time scheduler answers are delivered on.
        strict: If True, an unscripted call fails with
            :class:`~rxconnector.errors.NotScriptedError`; if False it never answers.
    """

    def __init__(self, scheduler: TestScheduler, *, strict: bool) -> None:
        self._scheduler = scheduler
        self.strict = strict
        self._defaults: dict[str, _Response] = {}
        self._queued: dict[str, list[_Response]] = {}
        self._log: list[Call] = []

    def now(self) -> int:
        """Exchange time in ms (the virtual clock; FakeConnector adds its clock offset)."""
        return int(now_ms(self._scheduler))

    # --------------------------------------------------------------------------------
    # scripting REST
    # --------------------------------------------------------------------------------
    def script(
        self,
        method: str,
        *,
        result: Any = None,
        error: Exception | None = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Say how REST ``method`` answers.

        Args:
            method: A REST method name, e.g. ``"place_order"``.
            result: The value to emit, or a callable that receives the call's
                arguments as keywords and returns it (or raises: that becomes the
                error), e.g. ``lambda **req: make_order(status="FILLED", **req)``.
            error: Fail the call with this exception instead.
            delay: Virtual seconds between the call and the answer.
            times: Answer this way for the next ``times`` calls only. Such answers
                are used first, in the order scripted; after them (or with
                ``times=None``) the method's standing answer, which each
                ``times=None`` script replaces.
        """
        if method not in REST_METHODS:
            raise ValueError(f"unknown REST method {method!r}; methods are {REST_METHODS}")
        if result is not None and error is not None:
            raise ValueError("script a result or an error, not both")
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        response = _Response(result, error, delay, times)
        if times is None:
            self._defaults[method] = response
        else:
            self._queued.setdefault(method, []).append(response)

    def calls(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call of ``method`` so far, in order (copies)."""
        if method not in REST_METHODS:
            raise ValueError(f"unknown REST method {method!r}; methods are {REST_METHODS}")
        return [dict(call.kwargs) for call in self._log if call.method == method]

    @property
    def call_log(self) -> list[Call]:
        """Every REST call so far, all methods, in order, with its virtual time."""
        return list(self._log)

    def _take_response(self, method: str) -> _Response | None:
        queue = self._queued.get(method)
        if queue:
            response = queue[0]
            assert response.remaining is not None
            response.remaining -= 1
            if response.remaining == 0:
                queue.pop(0)
            return response
        return self._defaults.get(method)

    def _unscripted(self, method: str, kwargs: Mapping[str, Any]) -> tuple[Any, Exception | None]:
        if method == "ping":
            return None, None
        if method == "server_time":
            return self.now(), None
        return None, NotScriptedError(
            method,
            f"FakeConnector has no answer for {method}"
            f"({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})",
            f'fake.script("{method}", result=...) or error=...',
        )

    def _rest(self, method: str, **kwargs: Any) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self._log.append(Call(method, dict(kwargs), self._scheduler.clock))
            response = self._take_response(method)
            delay = 0.0
            if response is None:
                value, error = self._unscripted(method, kwargs)
                if error is not None and not self.strict:
                    return Disposable()  # never answers
            else:
                delay, value, error = response.delay, response.result, response.error
                if error is None and callable(value):
                    try:
                        value = value(**kwargs)
                    except Exception as exc:
                        value, error = None, exc

            def answer(_: abc.SchedulerBase | None = None, __: Any = None) -> None:
                if error is not None:
                    observer.on_error(error)
                    return
                if method in _MANY and isinstance(value, list | tuple):
                    for item in value:
                        observer.on_next(item)
                else:
                    observer.on_next(value)
                observer.on_completed()

            if delay > 0:
                return self._scheduler.schedule_relative(delay, answer)
            answer()
            return Disposable()

        return Observable(subscribe)

    # --------------------------------------------------------------------------------
    # REST (the Connector surface)
    # --------------------------------------------------------------------------------
    def ping(self) -> Observable[None]:
        """Connectivity check; answers ``None`` unless scripted."""
        return self._rest("ping")

    def server_time(self) -> Observable[int]:
        """Exchange time in ms; answers :meth:`now` unless scripted."""
        return self._rest("server_time")

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules per symbol (script a ``{symbol: SymbolInfo}`` dict)."""
        return self._rest("exchange_info", symbols=symbols)

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]:
        """A REST book snapshot."""
        return self._rest("depth_snapshot", symbol=symbol, limit=limit)

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """The latest trades."""
        return self._rest("recent_trades", symbol=symbol, limit=limit)

    def kline_history(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        *,
        limit: int | None = None,
    ) -> Observable[Kline]:
        """Candles from ``start`` (ms) or the last ``limit``: a scripted list is emitted
        item by item, as the real call walks the pages (``limit`` is recorded with the
        call, not applied: script the candles you want)."""
        return self._rest(
            "kline_history", symbol=symbol, interval=interval, start=start, end=end, limit=limit
        )

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """The 24 h ticker over REST."""
        return self._rest("ticker_24h", symbol=symbol)

    def account(self) -> Observable[Any]:
        """Account information (balances)."""
        return self._rest("account")

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,  # same name as the Connector's parameter
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[Order]:
        """Place an order (recorded with any ``extra`` venue parameters; answered by the
        script)."""
        return self._rest(
            "place_order",
            symbol=symbol,
            side=side,
            type=type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            **extra,
        )

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,  # same name as the Connector's parameter
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        **extra: Any,
    ) -> Observable[Any]:
        """Validate an order without placing it (recorded; answered by the script)."""
        return self._rest(
            "test_order",
            symbol=symbol,
            side=side,
            type=type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            **extra,
        )

    def cancel_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Cancel an order (recorded; answered by the script)."""
        return self._rest(
            "cancel_order", symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )

    def get_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Look an order up (recorded; answered by the script)."""
        return self._rest(
            "get_order", symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """Our open orders (recorded; answered by the script)."""
        return self._rest("open_orders", symbol=symbol)

    def open_positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """Our derivatives positions over REST (recorded; answered by the script)."""
        return self._rest("open_positions", symbol=symbol)
