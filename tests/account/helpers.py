"""Test doubles shared by the account tests: a recording SessionOutput, independent
signature checks (written from the exchange docs, not from the library's signing code)
and scripted REST callables."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import reactivex
from reactivex import Observable
from reactivex import operators as ops

from rxconnector.models import Balance, Order

#: Credentials the fake exchanges know. The secret must never show up anywhere.
API_KEY = "test-api-key-0123456789"
SECRET = "s3cr3t-HMAC-key-that-must-never-leak-9f8e7d"


def binance_ws_payload(params: dict[str, Any]) -> str:
    """PROTOCOL.md §A3: params but signature, sorted by name, k=v joined by &."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class RecordingOutput:
    """A SessionOutput that records everything a session does; builds run at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.emitted: list[Any] = []
        self.subscribed_count = 0
        self.resubscribes: list[str] = []
        self.failures: list[tuple[Exception, bool, bool]] = []
        self.reports: list[Exception] = []

    def send(self, build: Callable[[], str]) -> None:
        self.sent.append(orjson.loads(build()))

    def emit(self, item: object) -> None:
        self.emitted.append(item)

    def subscribed(self) -> None:
        self.subscribed_count += 1

    def resubscribing(self, reason: str) -> None:
        self.resubscribes.append(reason)

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        self.failures.append((error, fatal, resync_clock))

    def report(self, error: Exception) -> None:
        self.reports.append(error)

    def models(self) -> list[Any]:
        """What was emitted, raw events left out."""
        return [item for item in self.emitted if not isinstance(item, tuple)]


def order(
    order_id: str,
    status: str = "NEW",
    *,
    symbol: str = "BTCUSDT",
    quantity: str = "1",
    price: str = "100",
    filled: str = "0",
    average: str | None = None,
    update_time: int = 0,
) -> Order:
    """An Order as a REST ``fetch_*`` callable would return it."""
    return Order(
        symbol=symbol,
        order_id=order_id,
        client_order_id=f"c-{order_id}",
        side="buy",
        type="LIMIT",
        status=status,
        price=Decimal(price),
        quantity=Decimal(quantity),
        filled_quantity=Decimal(filled),
        average_price=Decimal(average) if average is not None else None,
        time_in_force="GTC",
        time=1,
        update_time=update_time,
    )


def balance(asset: str, free: str, locked: str = "0") -> Balance:
    return Balance(asset, Decimal(free), Decimal(locked))


class ScriptedRest:
    """REST callables answering from mutable state, counting calls.

    ``delay`` (scheduler seconds) makes the answers arrive later, on ``scheduler``.
    ``fail`` makes the named call error.
    """

    def __init__(self, scheduler: Any = None, delay: float = 0.0) -> None:
        self.open: list[Order] = []
        self.orders: dict[str, Order] = {}
        self.balances: list[Balance] = []
        self.calls: list[tuple[str, ...]] = []
        self.fail: set[str] = set()
        self.scheduler = scheduler
        self._delay = delay

    def _answer(self, name: str, value: Callable[[], Any]) -> Observable[Any]:
        def build(_: Any = None) -> Observable[Any]:
            if name in self.fail:
                return reactivex.throw(ConnectionError(f"{name} unavailable"))
            return reactivex.of(value())

        source = reactivex.defer(build)
        if self._delay and self.scheduler is not None:
            return reactivex.timer(self._delay, scheduler=self.scheduler).pipe(
                ops.flat_map(lambda _: source)
            )
        return source

    def fetch_open_orders(self) -> Observable[list[Order]]:
        self.calls.append(("open_orders",))
        return self._answer("open_orders", lambda: list(self.open))

    def fetch_balances(self) -> Observable[tuple[Balance, ...]]:
        self.calls.append(("balances",))
        return self._answer("balances", lambda: tuple(self.balances))

    def fetch_order(self, symbol: str, order_id: str) -> Observable[Order]:
        self.calls.append(("order", symbol, order_id))
        return self._answer("order", lambda: self.orders[order_id])

    def callables(self) -> dict[str, Any]:
        return {
            "fetch_open_orders": self.fetch_open_orders,
            "fetch_balances": self.fetch_balances,
            "fetch_order": self.fetch_order,
        }
