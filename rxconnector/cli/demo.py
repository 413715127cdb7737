"""``rxconnector demo``: the exchange simulator and a live pipeline against it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from reactivex import abc
from reactivex import operators as ops

from rxconnector.arguments import UsageError, positive_float
from rxconnector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    examples,
    out,
    report_task,
    run_for,
    running,
)
from rxconnector.config import Config
from rxconnector.demo_view import DemoState, inject_faults
from rxconnector.terminal import LiveView

if TYPE_CHECKING:
    from rxconnector.connector import Connector

__all__ = ["add_parser", "prepare", "simulated_symbol"]


def add_parser(commands: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """The ``demo`` sub-command."""
    demo = commands.add_parser(
        "demo",
        help="run a live pipeline against a local exchange simulator",
        description=(
            "Start the exchange simulator on 127.0.0.1 and run a real pipeline against it "
            "through the ordinary Connector: ticker, a 1-second VWAP and trade count, the "
            "best bid/ask of a depth-10 order book, and health (connections, breaker, "
            "clock offset, errors). Redrawn in place on a terminal, plain lines otherwise."
        ),
        epilog=examples(
            "rxconnector demo",
            "rxconnector demo --seconds 15",
            "rxconnector demo --faults --symbol ETHUSDT",
        ),
        formatter_class=fmt,
    )
    demo.set_defaults(command_parser=demo)
    demo.add_argument("--seconds", type=positive_float, help="stop after N seconds (exit 0)")
    demo.add_argument(
        "--faults", action="store_true", help="inject disconnects and stalls to show recovery"
    )
    demo.add_argument("--symbol", default="BTCUSDT", help="symbol to simulate (default BTCUSDT)")
    demo.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")


def prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Check ``--symbol``; the coroutine factory that runs the demo."""
    args.symbol = simulated_symbol(args.symbol, "--symbol")
    return lambda: _demo(args)


def simulated_symbol(symbol: str, option: str) -> str:
    """The simulator lists plain alphanumeric symbols (``BTCUSDT``): check it up front."""
    from rxconnector.testing.simulator.config import symbol_spec

    upper = symbol.strip().upper()
    try:
        symbol_spec(upper)
    except ValueError as exc:
        raise UsageError(f"{option}: the simulator cannot list {symbol!r}: {exc}") from None
    return upper


async def _demo(args: argparse.Namespace) -> int:
    from rxconnector.testing.simulator import ExchangeSimulator

    state = DemoState(args.symbol)
    view = LiveView(sys.stdout)
    started = time.monotonic()
    async with ExchangeSimulator(
        seed=args.seed, symbols=(args.symbol,), tick_interval=0.05, periodic_ticks=20
    ) as sim:
        config = Config.binance(
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            connection={"reconnect_delay": 0.2, "reconnect_max_delay": 2.0, "stale_after": 1.5},
        )
        header = (
            f"rxconnector demo  simulator {sim.ws_url}  "
            f"{'faults on  ' if args.faults else ''}Ctrl-C to stop"
        )
        try:
            await _show(args, sim, config, state, view, header, started)
        finally:
            view.render(
                state.lines(header),
                force=True,
                plain=state.status_line(f"{time.monotonic() - started:.1f}s"),
            )
            for line in state.summary(time.monotonic() - started):
                out(sys.stdout, line)
            sys.stdout.flush()
    return EXIT_OK if state.crossed_books == 0 else EXIT_FAILURE


async def _show(
    args: argparse.Namespace,
    sim: Any,
    config: Config,
    state: DemoState,
    view: LiveView,
    header: str,
    started: float,
) -> None:
    """Run the pipeline and redraw the view until ``--seconds`` (or Ctrl-C)."""
    from rxconnector.connector import Connector

    faults: asyncio.Task[None] | None = None
    async with running(Connector(config)) as conn:
        subscriptions = _subscribe(conn, args.symbol, state)
        if args.faults:
            faults = asyncio.get_running_loop().create_task(
                inject_faults(sim, state, every=2.5), name="demo-faults"
            )
            faults.add_done_callback(report_task)
        with contextlib.suppress(Exception):  # reported on conn.errors; shown raw
            state.on_symbol_info((await conn.exchange_info([args.symbol]))[args.symbol])

        def redraw() -> None:
            elapsed = time.monotonic() - started
            limit = f" / {args.seconds:g}s" if args.seconds else ""
            view.render(
                state.lines(f"{header}  {elapsed:5.1f}s{limit}"),
                plain=state.status_line(f"{elapsed:.1f}s"),
            )

        try:
            await run_for(args.seconds, redraw)
        finally:
            if faults is not None:
                faults.cancel()
                await asyncio.gather(faults, return_exceptions=True)
            for subscription in subscriptions:
                subscription.dispose()


def _subscribe(conn: Connector, symbol: str, state: DemoState) -> list[abc.DisposableBase]:
    """The demo's pipeline: every feed and health stream it shows, into ``state``."""
    return [
        conn.ticker(symbol).subscribe(state.on_ticker, state.on_error),
        conn.trades(symbol)
        .pipe(ops.buffer_with_time(1.0, scheduler=conn.scheduler))
        .subscribe(state.on_window, state.on_error),
        conn.order_book(symbol, depth=10).subscribe(state.on_book, state.on_error),
        conn.connection_state.subscribe(state.on_state),
        conn.breaker_state.subscribe(lambda s: setattr(state, "breaker", s)),
        conn.clock.subscribe(lambda o: setattr(state, "offset", o)),
        conn.errors.subscribe(state.on_error),
    ]
