"""The blocking facade: a plain script gets data without asyncio, and leaves nothing behind.

The simulator runs on its own loop in a thread of this test module (as an exchange runs
elsewhere); ``rxc.connect`` runs the connector on the private loop of the thread it
owns. Checked: blocking REST calls (one value, or every value of a paged call), the same
Observables with ``pipe``/``subscribe``/``take``/``iterate``, notifications on the
connector's thread, clear errors instead of deadlocks, Ctrl-C in a real subprocess, and
that no thread, task or session outlives ``close()``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops

import rxconnector as rxc
from rxconnector.testing import ExchangeSimulator
from tests.simthread import SimThread

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "sync-key", "sync-secret"
SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with SimThread((SYMBOL,), seed=11, tick_interval=0.02, api_keys={KEY: SECRET}) as simulator:
        yield simulator


def _config(sim: ExchangeSimulator) -> rxc.Config:
    return rxc.Config.binance(
        api_key=KEY, api_secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url
    )


def _rxc_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rxconnector")]


def test_every_connector_call_is_on_the_facade() -> None:
    """A Connector method added later cannot be forgotten here. Left out on purpose:
    the lifecycle, also offline (``connect``/``close``/``closed`` replace it) and the loop-bound
    objects (``conn.connector.rest``/``.breaker``, for use on the connector's thread)."""
    declared = {name for cls in rxc.Connector.__mro__[:-1] for name in vars(cls)}
    public = {name for name in declared if not name.startswith("_")}
    assert {"ticker", "place_order", "kline_history"} <= public  # feeds and REST calls
    lifecycle_and_loop_bound = {"start", "stop", "started", "rest", "breaker"}
    lifecycle_and_loop_bound |= {"start_offline", "stop_offline"}  # offline lifecycle
    facade = {name for cls in rxc.SyncConnector.__mro__[:-1] for name in vars(cls)}
    missing = sorted(n for n in public - lifecycle_and_loop_bound if n not in facade)
    assert missing == []


class TestBlockingRest:
    """REST calls block and return the value the awaitable would give."""

    def test_three_lines_to_data(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn:
            server = conn.server_time()
            assert isinstance(server, int) and abs(server - sim.server_time_ms()) < 5_000
            conn.ping()
            infos = conn.exchange_info([SYMBOL])
            assert infos[SYMBOL].tick_size == Decimal("0.01")
            now = conn.now()
            candles = conn.kline_history(SYMBOL, "1m", now - 5 * 60_000, now)
            assert candles and all(isinstance(k, rxc.Kline) for k in candles)
            assert [k.open_time for k in candles] == sorted(k.open_time for k in candles)
            last = conn.kline_history(SYMBOL, "1m", limit=3)  # keyword-only, forwarded as is
            assert len(last) == 3 and last[-1].open_time >= candles[-1].open_time
            assert conn.depth_snapshot(SYMBOL, 5).best_bid is not None
        assert _rxc_threads() == []

    def test_signed_calls(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn:
            book = conn.depth_snapshot(SYMBOL, 5)
            assert book.best_bid is not None
            info = conn.exchange_info([SYMBOL])[SYMBOL]
            price = info.round_price(book.best_bid * Decimal("0.9"), "buy")
            order = conn.place_order(SYMBOL, "buy", "LIMIT", quantity="0.001", price=price)
            assert isinstance(order, rxc.Order) and order.price == price
            assert [o.order_id for o in conn.open_orders(SYMBOL)] == [order.order_id]
            cancelled = conn.cancel_order(SYMBOL, order_id=order.order_id)
            assert cancelled.status == "CANCELED"
            assert conn.open_orders(SYMBOL) == []

    def test_collect_reaches_any_connector_call(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn:
            rxc.sync.take(conn.trades(SYMBOL), 5, timeout=20)  # the tape has 5 trades by now
            trades = conn.collect(lambda c: c.recent_trades(SYMBOL, 5))
            assert len(trades) == 1 and len(trades[0]) == 5

    def test_exchange_errors_are_raised_in_the_caller(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn, pytest.raises(rxc.ExchangeError):
            conn.depth_snapshot("NOSUCHSYM", 5)


class TestObservables:
    """The same Observables; notifications arrive on the connector's thread."""

    def test_take_pipe_and_threads(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn:
            tickers = rxc.sync.take(conn.ticker(SYMBOL), 2, timeout=20)
            assert len(tickers) == 2 and all(t.symbol == SYMBOL for t in tickers)
            prices = rxc.sync.take(
                conn.trades(SYMBOL).pipe(ops.map(lambda t: t.price), ops.take(5)), 5, timeout=20
            )
            assert len(prices) == 5 and all(isinstance(p, Decimal) for p in prices)
            seen: list[str] = []
            got = threading.Event()

            def on_book(_: Any) -> None:
                seen.append(threading.current_thread().name)
                got.set()

            subscription = conn.order_book(SYMBOL, depth=5).subscribe(on_book)
            assert got.wait(20)
            subscription.dispose()
            assert seen[0] == conn.thread_name != threading.current_thread().name

    def test_iterate(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn:
            books = []
            with rxc.sync.iterate(conn.order_book(SYMBOL, depth=5), timeout=20) as items:
                for book in items:
                    books.append(book)
                    if len(books) == 3:
                        break
            assert [b.is_crossed for b in books] == [False] * 3
            assert list(rxc.sync.iterate(reactivex.of(1, 2, 3))) == [1, 2, 3]

    def test_take_timeout_error_and_early_end(self) -> None:
        with pytest.raises(TimeoutError, match="0 of 1"):
            rxc.sync.take(reactivex.never(), 1, timeout=0.2)
        with pytest.raises(ValueError, match="boom"):
            rxc.sync.take(reactivex.throw(ValueError("boom")), 1, timeout=1)
        assert rxc.sync.take(reactivex.of(1, 2), 5, timeout=1) == [1, 2]  # ended early
        with pytest.raises(TimeoutError):
            next(iter(rxc.sync.iterate(reactivex.never(), timeout=0.2)))
        with pytest.raises(ValueError, match="n must be"):
            rxc.sync.take(reactivex.of(1), 0)

    def test_health_streams(self, sim: ExchangeSimulator) -> None:
        with rxc.connect(_config(sim)) as conn:
            offset = rxc.sync.take(conn.clock, 1, timeout=20)[0]
            assert isinstance(offset, rxc.ClockOffset)
            state = rxc.sync.take(conn.breaker_state, 1, timeout=5)[0]
            assert state is rxc.BreakerState.CLOSED


class TestLifecycle:
    """Nothing leaks, nothing deadlocks, the caller's loop is never touched."""

    def test_close_releases_everything(self, sim: ExchangeSimulator) -> None:
        conn = rxc.connect(_config(sim))
        subscription = conn.ticker(SYMBOL).subscribe(lambda _: None)
        rxc.sync.take(conn.ticker(SYMBOL), 1, timeout=20)
        inner = conn.connector
        loop = conn.loop
        conn.close()
        conn.close()  # idempotent
        subscription.dispose()  # after close: harmless
        assert loop.is_closed() and not inner.started
        assert _rxc_threads() == []
        gc.collect()  # an unclosed aiohttp session would warn here (warnings are errors)
        with pytest.raises(rxc.RxConnectorError, match="closed"):
            conn.server_time()
        with pytest.raises(rxc.RxConnectorError, match="closed"):
            conn.ticker(SYMBOL)

    def test_a_blocking_call_inside_a_callback_raises_instead_of_deadlocking(
        self, sim: ExchangeSimulator
    ) -> None:
        with rxc.connect(_config(sim)) as conn:
            errors: list[BaseException] = []
            done = threading.Event()

            def on_ticker(_: Any) -> None:
                try:
                    conn.server_time()
                except rxc.RxConnectorError as error:
                    errors.append(error)
                done.set()

            subscription = conn.ticker(SYMBOL).pipe(ops.take(1)).subscribe(on_ticker)
            assert done.wait(20)
            subscription.dispose()
            assert errors and "connector's thread" in str(errors[0])

    def test_start_failure_leaves_nothing(self) -> None:
        config = rxc.Config.binance(api_key=KEY, api_secret=SECRET)
        with pytest.raises(rxc.RxConnectorError):
            rxc.connect(config, connector_factory=_failing_connector)
        assert _rxc_threads() == []

    async def test_inside_a_running_loop_the_callers_loop_is_left_alone(
        self, sim: ExchangeSimulator
    ) -> None:
        """What a Jupyter cell does: the facade runs on its own loop, not the caller's."""
        mine = asyncio.get_running_loop()
        with rxc.connect(_config(sim)) as conn:
            assert conn.loop is not mine
            assert isinstance(conn.server_time(), int)
        assert asyncio.get_running_loop() is mine and not mine.is_closed()

    def test_ctrl_c_while_blocked_stops_cleanly(self, sim: ExchangeSimulator) -> None:
        script = textwrap.dedent(
            f"""
            import sys, threading
            import rxconnector as rxc
            config = rxc.Config.binance(rest_url={sim.rest_url!r}, ws_url={sim.ws_url!r})
            try:
                with rxc.connect(config) as conn:
                    rxc.sync.take(conn.ticker("{SYMBOL}"), 1, timeout=30)
                    print("ready", flush=True)
                    rxc.sync.take(conn.ticker("{SYMBOL}"), 10**9)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            print("threads", sorted(t.name for t in threading.enumerate()), flush=True)
            """
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.Popen(
            [sys.executable, "-X", "dev", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.3)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert out.splitlines() == ["interrupted", "threads ['MainThread']"], (out, err)
        assert took < 10
        for leak in ("Unclosed", "Task was destroyed", "Traceback", "ResourceWarning"):
            assert leak not in err, err


class _FailingConnector(rxc.Connector):
    async def start(self) -> None:
        raise rxc.ConnectError("cannot reach the exchange (test)")


def _failing_connector(config: rxc.Config) -> rxc.Connector:
    return _FailingConnector(config)
