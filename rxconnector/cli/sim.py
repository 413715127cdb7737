"""``rxconnector sim``: the exchange simulator, standalone, with accounts to trade on."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from collections.abc import Callable, Coroutine, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from rxconnector.arguments import UsageError, parse_list, port, positive_float
from rxconnector.cli.common import EXIT_OK, examples, out, report_task, run_for
from rxconnector.cli.demo import simulated_symbol
from rxconnector.config import Config
from rxconnector.demo_view import DemoState, inject_faults

__all__ = ["SimAccount", "add_parser", "config_line", "parse_accounts", "prepare"]

#: Venues the simulator speaks, as ``ExchangeSimulator.connector_config`` names them.
_SIM_VENUES: Final = ("binance", "binance_futures", "bybit-spot", "bybit-linear")


@attrs.frozen
class SimAccount:
    """An account ``sim --account KEY:SECRET[:BALANCES]`` creates."""

    key: str
    secret: str
    #: exactly what the account holds; ``None``: the simulator's default balances
    balances: tuple[tuple[str, Decimal], ...] | None = None


def parse_accounts(values: Sequence[str]) -> tuple[SimAccount, ...]:
    """``["k:s:USDT=10000,BTC=1", "k2:s2"]`` -> accounts; UsageError naming the problem."""
    accounts: list[SimAccount] = []
    for text in values:
        key, _, rest = text.partition(":")
        secret, _, balances_text = rest.partition(":")
        if not key.strip() or not secret.strip():
            raise UsageError(
                f"--account {text!r}: expected KEY:SECRET:BALANCES "
                "(e.g. mykey:mysecret:USDT=10000,BTC=1; BALANCES may be left out)"
            )
        if any(a.key == key.strip() for a in accounts):
            raise UsageError(f"--account: key {key.strip()!r} twice")
        balances = _parse_balances(text, balances_text) if balances_text.strip() else None
        accounts.append(SimAccount(key.strip(), secret.strip(), balances))
    return tuple(accounts)


def _parse_balances(text: str, balances: str) -> tuple[tuple[str, Decimal], ...]:
    result: dict[str, Decimal] = {}
    for item in balances.split(","):
        asset, equals, amount = item.partition("=")
        asset = asset.strip().upper()
        if not equals or not asset.isalnum():
            raise UsageError(f"--account {text!r}: balances are ASSET=AMOUNT, got {item!r}")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise UsageError(f"--account {text!r}: {amount.strip()!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise UsageError(f"--account {text!r}: {asset} must be >= 0, got {amount.strip()}")
        if asset in result:
            raise UsageError(f"--account {text!r}: {asset} twice")
        result[asset] = value
    return tuple(result.items())


def config_line(config: Config) -> str:
    """A Python expression that rebuilds ``config``'s venue, keys and URLs (for pasting)."""
    args: list[str] = []
    factory = getattr(Config, config.exchange)
    if "category" in inspect.signature(factory).parameters:  # the venue's factory asks for one
        args.append(repr(config.category))
    fields = ("api_key", "rest_url", "ws_url", "ws_api_url", "private_ws_url")
    for field in fields:
        value = getattr(config, field)
        if value:
            args.append(f"{field}={value!r}")
        if field == "api_key" and value:
            args.append(f"api_secret={config.api_secret.reveal()!r}")
    return f"rxc.Config.{config.exchange}({', '.join(args)})"


def add_parser(commands: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """The ``sim`` sub-command."""
    sim = commands.add_parser(
        "sim",
        help="run the exchange simulator standalone",
        description="Run the exchange simulator (Binance Spot, USD-M futures, Bybit v5) "
        "until Ctrl-C; it prints a ready Config line for every venue and account.",
        epilog=examples(
            "rxconnector sim",
            "rxconnector sim --port 8765 --symbols BTCUSDT,ETHUSDT,SOLUSDT",
            "rxconnector sim --account mykey:mysecret:USDT=10000,BTC=1",
            "rxconnector sim --faults-every 10 --seed 7",
        ),
        formatter_class=fmt,
    )
    sim.set_defaults(command_parser=sim)
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=port, default=8765, help="port (default 8765; 0 = any)")
    sim.add_argument("--seed", type=int, default=1, help="market seed (default 1)")
    sim.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated symbols")
    sim.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="KEY:SECRET[:BALANCES]",
        help="create an account (repeatable); BALANCES like USDT=10000,BTC=1 is exactly "
        "what it holds (default: 10000 of each quote asset, 1 of each base asset)",
    )
    sim.add_argument(
        "--tick-interval", type=positive_float, default=0.05, help="seconds per market tick"
    )
    sim.add_argument(
        "--faults-every",
        type=positive_float,
        metavar="S",
        help="alternate a disconnect and a stall every S seconds",
    )
    sim.add_argument("--seconds", type=positive_float, help="stop after N seconds")


def prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Check symbols and accounts; the coroutine factory that runs the simulator."""
    symbols = tuple(
        simulated_symbol(symbol, "--symbols") for symbol in parse_list(args.symbols, "--symbols")
    )
    twice = sorted({s for s in symbols if symbols.count(s) > 1})
    if twice:
        raise UsageError(f"--symbols lists {', '.join(twice)} twice (symbols ignore case)")
    accounts = parse_accounts(args.account)
    return lambda: _sim(args, symbols, accounts)


async def _sim(
    args: argparse.Namespace, symbols: tuple[str, ...], accounts: tuple[SimAccount, ...] = ()
) -> int:
    from rxconnector.testing.simulator import ExchangeSimulator

    async with ExchangeSimulator(
        host=args.host,
        port=args.port,
        seed=args.seed,
        symbols=symbols,
        tick_interval=args.tick_interval,
    ) as sim:
        for account in accounts:
            sim.add_api_key(account.key, account.secret)
            if account.balances is not None:
                wanted = dict(account.balances)
                held = set(sim.accounts[account.key].balances)
                for asset in sorted(held | set(wanted)):
                    sim.set_balance(account.key, asset, wanted.get(asset, Decimal(0)))
        _announce(sim, args.seed, symbols, accounts)
        tasks = _fault_tasks(sim, symbols[0], args.faults_every) if args.faults_every else []
        try:
            await run_for(args.seconds, lambda: None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            out(sys.stdout, "simulator stopped")
    return EXIT_OK


def _announce(
    sim: Any, seed: int, symbols: tuple[str, ...], accounts: tuple[SimAccount, ...]
) -> None:
    """Where the simulator listens, and a ready Config line per venue and account."""
    out(
        sys.stdout,
        f"simulator (Binance Spot, USD-M, Bybit v5) seed={seed} symbols={','.join(symbols)}",
    )
    out(sys.stdout, f"  REST       {sim.rest_url}/api/v3/...")
    out(sys.stdout, f"  WebSocket  {sim.ws_url}/stream")
    out(
        sys.stdout,
        f"  try        rxconnector watch binance ticker {symbols[0]} "
        f"--rest-url {sim.rest_url} --ws-url {sim.ws_url}",
    )
    out(sys.stdout, "  Python config (import rxconnector as rxc):")
    for venue in _SIM_VENUES:
        out(sys.stdout, f"    {venue:<16} config = {config_line(sim.connector_config(venue))}")
    for account in accounts:
        for venue in _SIM_VENUES:
            config = sim.connector_config(venue, api_key=account.key, api_secret=account.secret)
            out(sys.stdout, f"    {venue:<16} config = {config_line(config)}")
    out(sys.stdout, "Ctrl-C to stop")
    sys.stdout.flush()


def _fault_tasks(sim: Any, symbol: str, every: float) -> list[asyncio.Task[None]]:
    """``--faults-every``: the fault injector and a task printing each fault it injects."""
    state = DemoState(symbol)

    async def announce() -> None:
        seen = 0
        while True:
            await asyncio.sleep(0.1)
            for text in state.faults[seen:]:
                out(sys.stdout, f"fault {text}")
                sys.stdout.flush()
            seen = len(state.faults)

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(inject_faults(sim, state, every)), loop.create_task(announce())]
    for task in tasks:
        task.add_done_callback(report_task)
    return tasks
