"""The ``rxconnector`` command line: demo, watch, sim, record, replay, history.

This module and ``__main__`` are the only places allowed to own an event loop
(``asyncio.run`` in :func:`main`); everything they run is ordinary library code. Every
argument is validated before anything connects, with the same checks the connector
applies (venue, feed, symbol spelling, kline interval, depth), so a typo fails at once
with exit status 2 and a message that lists what is valid. Ctrl-C stops cleanly: the
connector is stopped, files are finished, a summary is printed, and the exit status
is 130 without a traceback. Other failures print one line and exit with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, TextIO, TypeVar

import attrs
from reactivex import Observable
from reactivex import operators as ops

from rxconnector._version import __version__
from rxconnector.config import Config
from rxconnector.demo_view import DemoState, inject_faults
from rxconnector.errors import (
    ConfigError,
    NotSupportedError,
    RecordingError,
    RxConnectorError,
    SubscriptionError,
)
from rxconnector.models import ConnectionEvent, ConnectionState, Kline
from rxconnector.terminal import (
    LiveView,
    ProgressLine,
    describe,
    estimate_eta,
    format_bytes,
    format_duration,
    progress_bar,
)
from rxconnector.venues import cli_venues, venue_spec

if TYPE_CHECKING:
    from rxconnector.connector import Connector

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FEEDS",
    "VENUES",
    "FeedRequest",
    "UsageError",
    "build_parser",
    "main",
    "parse_feed",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, what shells report for Ctrl-C

#: CLI venue name -> Config factory, from the venue registry. ``bybit`` is Bybit spot.
VENUES: Final[dict[str, Callable[..., Config]]] = cli_venues()

#: Feed name (a Connector method) -> its extra arguments: (name, type, required).
FEEDS: Final[dict[str, tuple[tuple[str, type, bool], ...]]] = {
    "ticker": (),
    "mini_ticker": (),
    "book_ticker": (),
    "trades": (),
    "agg_trades": (),
    "klines": (("interval", str, True),),
    "depth": (("levels", int, False),),
    "order_book": (("depth", int, False),),
    "diff_depth": (),
    "avg_price": (),
    "mark_price": (),
    "liquidations": (),
}

_REFRESH: Final = 0.25  # seconds between redraws of live views (~4/s)


class UsageError(Exception):
    """A bad command-line argument: printed with the command's usage, exit status 2."""


# -- argument helpers -------------------------------------------------------------------


@attrs.frozen
class FeedRequest:
    """A feed named on the command line: ``klines:1m`` is ``FeedRequest("klines", ("1m",))``."""

    name: str
    args: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return ":".join([self.name, *(str(a) for a in self.args)])

    def open(self, connector: Any, symbol: str) -> Observable[Any]:
        """``connector.<name>(symbol, *args)``."""
        feed: Observable[Any] = getattr(connector, self.name)(symbol, *self.args)
        return feed


def parse_feed(text: str, extra: Sequence[str] = ()) -> FeedRequest:
    """``"klines:1m"`` (or ``"klines"`` + ``extra=["1m"]``) -> FeedRequest; UsageError if bad."""
    name, *inline = text.strip().split(":")
    name = name.strip().lower().replace("-", "_")
    if name not in FEEDS:
        raise UsageError(f"unknown feed {text!r}; choose from: {', '.join(FEEDS)}")
    raw = [*inline, *extra]
    spec = FEEDS[name]
    if len(raw) > len(spec):
        wanted = " ".join(f"[{n}]" for n, _t, _r in spec) or "no arguments"
        raise UsageError(f"feed {name!r} takes {wanted}, got {' '.join(raw)!r}")
    args: list[Any] = []
    for (arg_name, kind, required), value in zip(spec, [*raw, *[None] * len(spec)], strict=False):
        if value is None:
            if required:
                example = " e.g. klines:1m" if name == "klines" else ""
                raise UsageError(f"feed {name!r} needs its {arg_name}{example}")
            break
        if kind is int:
            try:
                args.append(int(value))
            except ValueError:
                raise UsageError(
                    f"{name} {arg_name} must be a whole number, got {value!r}"
                ) from None
        else:
            args.append(value)
    return FeedRequest(name, tuple(args))


def parse_list(text: str, what: str) -> tuple[str, ...]:
    """``"a,b , c"`` -> ``("a", "b", "c")``; empty items are an error."""
    items = tuple(part.strip() for part in text.split(","))
    if not items or any(not part for part in items):
        raise UsageError(f"{what} must be a comma-separated list without empty items, got {text!r}")
    return items


def make_config(
    venue: str, rest_url: str | None = None, ws_url: str | None = None, **extra: Any
) -> Config:
    """The Config of a CLI venue name with optional URL overrides (UsageError if invalid)."""
    factory = VENUES.get(venue.strip().lower())
    if factory is None:
        raise UsageError(f"unknown venue {venue!r}; choose from: {', '.join(VENUES)}")
    overrides = dict(extra)
    if rest_url:
        overrides["rest_url"] = rest_url
    if ws_url:
        overrides["ws_url"] = ws_url
    try:
        return factory(**overrides)
    except ConfigError as exc:
        raise UsageError(f"--{exc.field.replace('_', '-')}: {exc}") from None


def check_feed(config: Config, feed: FeedRequest, symbol: str) -> str:
    """Validate ``feed`` for ``symbol`` exactly as the connector would; returns the symbol
    normalized. Building a feed is lazy and offline, so this connects nowhere."""
    from rxconnector.connector import Connector

    connector = Connector(config)
    try:
        feed.open(connector, symbol)
    except NotSupportedError as exc:
        raise UsageError(f"{exc}; feeds of {config.exchange}: {_supported(connector)}") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    return symbol.strip().upper()


def _supported(connector: Any) -> str:
    names = set(connector.venue.supported_feeds)
    if "diff_depth" in names:
        names.add("order_book")
    return ", ".join(n for n in FEEDS if n in names)


def parse_time(text: str, option: str) -> int:
    """An ISO 8601 date or date-time (UTC unless it says otherwise) -> epoch ms."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option}: invalid date {text!r}; use ISO 8601 like 2024-01-31 or 2024-01-31T12:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {value}")
    return value


# -- small runtime helpers --------------------------------------------------------------


def _report_task(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("rxconnector.cli").error(
            "background task failed: %r", task.exception(), exc_info=task.exception()
        )


async def _run_for(
    seconds: float | None, tick: Callable[[], None], done: asyncio.Future[Any] | None = None
) -> None:
    """Call ``tick`` every ~0.25 s until ``seconds`` passed (forever if None) or ``done``."""
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    while True:
        tick()
        if done is not None and done.done():
            return
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                return
            wait = min(_REFRESH, left)
        else:
            wait = _REFRESH
        if done is not None:
            await asyncio.wait([done], timeout=wait)
        else:
            await asyncio.sleep(wait)


_C = TypeVar("_C", bound="Connector")


@contextlib.asynccontextmanager
async def _running(conn: _C) -> AsyncIterator[_C]:
    """``async with conn`` that also stops ``conn`` when ``start()`` itself is cancelled
    or fails: Ctrl-C while start() waits for the first clock sync must not leave the
    HTTP session and the clock-sync task open (``__aexit__`` is never reached then)."""
    try:
        await conn.start()
        yield conn
    finally:
        await conn.stop()


def _out(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")


class _ConnectionReport:
    """Watches ``connection_state`` for a command: prints every reconnect attempt at
    ``-v`` (the first failure always, so an unreachable stream is never a silent
    hang) and says afterwards why nothing arrived."""

    def __init__(self, verbose: int, command: str) -> None:
        self._verbose = verbose
        self._command = command
        self.attempts = 0
        self.last_failure: ConnectionEvent | None = None
        self.connected = False

    def on_event(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.CONNECTED:
            self.connected = True
        if event.state is not ConnectionState.RECONNECTING:
            return
        self.attempts += 1
        self.last_failure = event
        if self._verbose:
            _out(
                sys.stderr,
                f"  {event.url} reconnecting (attempt {event.attempt} in {event.delay:.1f} s): "
                f"{event.reason}",
            )
        elif self.attempts == 1 and not self.connected:
            _out(
                sys.stderr,
                f"! cannot connect to {event.url}: {event.reason}; retrying "
                f"(-v shows every attempt)",
            )
        sys.stderr.flush()

    def why_nothing(self) -> str | None:
        """Why nothing was received, when it is because no connection worked."""
        failure = self.last_failure
        if failure is None or self.connected:
            return None
        return (
            f"received nothing: {failure.url} could not be reached after "
            f"{self.attempts} attempt(s): {failure.reason}"
        )


# -- demo -----------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> int:
    from rxconnector.connector import Connector
    from rxconnector.testing.simulator import ExchangeSimulator

    symbol: str = args.symbol
    state = DemoState(symbol)
    view = LiveView(sys.stdout)
    started = time.monotonic()
    faults: asyncio.Task[None] | None = None
    async with ExchangeSimulator(
        seed=args.seed, symbols=(symbol,), tick_interval=0.05, periodic_ticks=20
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
            async with _running(Connector(config)) as conn:
                subscriptions = [
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
                if args.faults:
                    faults = asyncio.get_running_loop().create_task(
                        inject_faults(sim, state, every=2.5), name="demo-faults"
                    )
                    faults.add_done_callback(_report_task)
                with contextlib.suppress(Exception):  # reported on conn.errors; shown raw
                    state.on_symbol_info((await conn.exchange_info([symbol]))[symbol])

                def redraw() -> None:
                    elapsed = time.monotonic() - started
                    limit = f" / {args.seconds:g}s" if args.seconds else ""
                    view.render(
                        state.lines(f"{header}  {elapsed:5.1f}s{limit}"),
                        plain=state.status_line(f"{elapsed:.1f}s"),
                    )

                try:
                    await _run_for(args.seconds, redraw)
                finally:
                    if faults is not None:
                        faults.cancel()
                        await asyncio.gather(faults, return_exceptions=True)
                    for subscription in subscriptions:
                        subscription.dispose()
        finally:
            view.render(
                state.lines(header),
                force=True,
                plain=state.status_line(f"{time.monotonic() - started:.1f}s"),
            )
            for line in state.summary(time.monotonic() - started):
                _out(sys.stdout, line)
            sys.stdout.flush()
    return EXIT_OK if state.crossed_books == 0 else EXIT_FAILURE


# -- watch ----------------------------------------------------------------------------------


async def _watch(args: argparse.Namespace, config: Config, feed: FeedRequest, symbol: str) -> int:
    from rxconnector.connector import Connector

    count = 0
    loop = asyncio.get_running_loop()
    done: asyncio.Future[BaseException | None] = loop.create_future()

    def on_next(model: Any) -> None:
        nonlocal count
        count += 1
        _out(sys.stdout, describe(model))

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_result(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(None)

    def on_problem(error: Exception) -> None:
        # A rejected subscription also fails the feed, which says so below: once.
        if not isinstance(error, SubscriptionError):
            _out(sys.stderr, f"! {type(error).__name__}: {error}")

    report = _ConnectionReport(getattr(args, "verbose", 0), "watch")
    async with _running(Connector(config)) as conn:
        errors = conn.errors.subscribe(on_problem)
        states = conn.connection_state.subscribe(report.on_event)
        subscription = feed.open(conn, symbol).subscribe(on_next, on_error, on_completed)
        try:
            await _run_for(args.seconds, sys.stdout.flush, done)
        finally:
            subscription.dispose()
            errors.dispose()
            states.dispose()
            sys.stdout.flush()
    error = done.result() if done.done() else None
    if error is not None:
        _out(sys.stderr, f"rxconnector watch: {feed.label} {symbol} failed: {error}")
        return EXIT_FAILURE
    why = report.why_nothing() if count == 0 else None
    if why is not None:
        _out(sys.stderr, f"rxconnector watch: {feed.label} {symbol}: {why}")
        return EXIT_FAILURE
    _out(sys.stderr, f"{count} {feed.label} message(s) from {config.exchange} {symbol}")
    return EXIT_OK


# -- sim ------------------------------------------------------------------------------------


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
    if len(venue_spec(config.exchange).categories) > 1:
        args.append(repr(config.category))
    fields = ("api_key", "rest_url", "ws_url", "ws_api_url", "private_ws_url")
    for field in fields:
        value = getattr(config, field)
        if value:
            args.append(f"{field}={value!r}")
        if field == "api_key" and value:
            args.append(f"api_secret={config.api_secret.reveal()!r}")
    return f"rxc.Config.{config.exchange}({', '.join(args)})"


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
        _out(
            sys.stdout,
            f"simulator (Binance Spot, USD-M, Bybit v5) seed={args.seed} "
            f"symbols={','.join(symbols)}",
        )
        _out(sys.stdout, f"  REST       {sim.rest_url}/api/v3/...")
        _out(sys.stdout, f"  WebSocket  {sim.ws_url}/stream")
        _out(
            sys.stdout,
            f"  try        rxconnector watch binance ticker {symbols[0]} "
            f"--rest-url {sim.rest_url} --ws-url {sim.ws_url}",
        )
        _out(sys.stdout, "  Python config (import rxconnector as rxc):")
        for venue in _SIM_VENUES:
            _out(sys.stdout, f"    {venue:<16} config = {config_line(sim.connector_config(venue))}")
        for account in accounts:
            for venue in _SIM_VENUES:
                config = sim.connector_config(venue, api_key=account.key, api_secret=account.secret)
                _out(sys.stdout, f"    {venue:<16} config = {config_line(config)}")
        _out(sys.stdout, "Ctrl-C to stop")
        sys.stdout.flush()
        tasks: list[asyncio.Task[None]] = []
        if args.faults_every:
            state = DemoState(symbols[0])

            async def announce() -> None:
                seen = 0
                while True:
                    await asyncio.sleep(0.1)
                    for text in state.faults[seen:]:
                        _out(sys.stdout, f"fault {text}")
                        sys.stdout.flush()
                    seen = len(state.faults)

            loop = asyncio.get_running_loop()
            tasks.append(loop.create_task(inject_faults(sim, state, args.faults_every)))
            tasks.append(loop.create_task(announce()))
            for task in tasks:
                task.add_done_callback(_report_task)
        try:
            await _run_for(args.seconds, lambda: None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            _out(sys.stdout, "simulator stopped")
    return EXIT_OK


# -- record ---------------------------------------------------------------------------------


async def _record(
    args: argparse.Namespace,
    config: Config,
    feeds: list[FeedRequest],
    symbols: tuple[str, ...],
) -> int:
    from rxconnector.replay import RecordingConnector

    progress = ProgressLine(sys.stdout)
    failures: list[str] = []
    started = time.monotonic()
    conn = RecordingConnector(config, args.output, feeds=[f.label for f in feeds], symbols=symbols)

    def status() -> str:
        writer = conn.writer
        if writer is None:
            return "starting..."
        elapsed = max(time.monotonic() - started, 1e-9)
        return (
            f"recording {writer.frames} frames  {format_bytes(writer.frame_bytes)} received  "
            f"{format_bytes(writer.file_bytes)} written  "
            f"{writer.frames / elapsed:.1f} frames/s  {format_duration(elapsed)}"
        )

    report = _ConnectionReport(getattr(args, "verbose", 0), "record")
    all_failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    wanted = len(feeds) * len(symbols)
    try:
        async with _running(conn):
            subscriptions = [conn.connection_state.subscribe(report.on_event)]
            for feed in feeds:
                for symbol in symbols:

                    def failed(error: Exception, label: str = f"{feed.label} {symbol}") -> None:
                        failures.append(f"{label}: {error}")
                        # nothing left to record: stop now, not after --seconds
                        if len(failures) >= wanted and not all_failed.done():
                            all_failed.set_result(None)

                    subscriptions.append(feed.open(conn, symbol).subscribe(on_error=failed))
            try:
                await _run_for(args.seconds, lambda: progress.update(status()), all_failed)
            finally:
                for subscription in subscriptions:
                    subscription.dispose()
    finally:
        writer = conn.writer
        if writer is not None:
            progress.finish(
                f"wrote {args.output}: {writer.frames} frames, {format_bytes(writer.file_bytes)} "
                f"in {format_duration(time.monotonic() - started)}"
            )
        else:
            progress.finish()
        for failure in failures:
            _out(sys.stderr, f"! {failure}")
    writer = conn.writer
    why = report.why_nothing() if writer is None or writer.frames == 0 else None
    if why is not None and not failures:
        _out(sys.stderr, f"rxconnector record: {why}")
        return EXIT_FAILURE
    return EXIT_FAILURE if failures else EXIT_OK


# -- replay ---------------------------------------------------------------------------------


async def _replay(args: argparse.Namespace) -> int:
    from rxconnector.replay import ReplayConnector

    try:
        replay = ReplayConnector(args.file)
    except RecordingError as exc:
        raise UsageError(f"cannot replay: {exc}") from None
    header = replay.header
    try:
        recorded = [parse_feed(label) for label in header.feeds]
    except UsageError as exc:
        replay.close()
        raise UsageError(
            f"{args.file}: the header lists a feed this version cannot open ({exc})"
        ) from None
    chosen = recorded
    if args.feed:
        wanted = parse_feed(args.feed)
        chosen = [f for f in recorded if f == wanted or (not wanted.args and f.name == wanted.name)]
        if not chosen:
            replay.close()
            available = ", ".join(f.label for f in recorded) or "none"
            raise UsageError(
                f"--feed {args.feed!r} is not in this recording; it holds: {available}"
            )
    symbols = header.symbols
    if not chosen or not symbols:
        replay.close()
        raise UsageError(f"{args.file}: the header names no feeds/symbols to replay")
    count = 0
    stdout = sys.stdout

    def show(model: Any) -> None:
        nonlocal count
        count += 1
        stdout.write(describe(model) + "\n")

    def problem(error: Exception) -> None:
        _out(sys.stderr, f"! {type(error).__name__}: {error}")

    try:
        for feed in chosen:
            for symbol in symbols:
                feed.open(replay, symbol).subscribe(show, problem)
        replay.errors.subscribe(problem)
        speed = None if args.as_fast_as_possible else args.speed
        stats = await replay.play(speed=speed)
    finally:
        replay.close()
        stdout.flush()
    when = datetime.fromtimestamp(header.started_at / 1000, tz=UTC).isoformat(timespec="seconds")
    # a file cut short is not repeated here: the reader said so once (a warning with the line)
    _out(
        sys.stderr,
        f"replayed {header.exchange} recording of {when}: {stats.frames} frames, {count} "
        f"model(s) printed, {stats.recorded_ms / 1000:.1f}s of recording in "
        f"{stats.wall_seconds:.2f}s ({stats.speedup:.0f}x)",
    )
    return EXIT_OK


# -- history --------------------------------------------------------------------------------


_CSV_COLUMNS: Final = (
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
)


async def _history(
    args: argparse.Namespace, config: Config, symbol: str, start: int, end: int
) -> int:
    try:
        return await _download_history(args, config, symbol, start, end)
    except _EmptyHistory as exc:
        _out(sys.stderr, f"rxconnector history: {exc}")
        return EXIT_FAILURE


async def _download_history(
    args: argparse.Namespace, config: Config, symbol: str, start: int, end: int
) -> int:
    from rxconnector.connector import Connector

    progress = ProgressLine(sys.stdout)
    started = time.monotonic()
    span = end - start
    rows = 0
    partial = args.output + ".part"  # renamed on success: no half file under the real name

    with _csv_file(partial) as writer:
        writer.writerow(_CSV_COLUMNS)

        def on_kline(kline: Kline) -> None:
            nonlocal rows
            rows += 1
            writer.writerow(
                (
                    kline.open_time,
                    kline.close_time,
                    kline.open,
                    kline.high,
                    kline.low,
                    kline.close,
                    kline.volume,
                    kline.quote_volume,
                    kline.trades,
                )
            )
            done = min(span, max(0, kline.close_time + 1 - start))
            elapsed = time.monotonic() - started
            eta = estimate_eta(done, span, elapsed)
            progress.update(
                f"{progress_bar(done / span)} {100 * done / span:5.1f}%  {rows} candles  "
                f"ETA {format_duration(eta)}"
            )

        async with _running(Connector(config)) as conn:
            # --end is exclusive; the REST walk includes a candle opening at its end
            candles: Observable[Kline] = conn.kline_history(symbol, args.interval, start, end - 1)
            tapped: Observable[Kline] = candles.pipe(ops.do_action(on_kline))
            counted: Observable[int] = tapped.pipe(ops.count())
            total = await counted
        if total == 0:
            # an empty CSV under the real name would look like a finished download
            raise _EmptyHistory(
                f"no {args.interval} candles of {symbol} between {args.start} and {args.end} "
                f"on {config.exchange} (not listed or not trading then?); nothing written"
            )
    os.replace(partial, args.output)
    progress.finish(
        f"wrote {args.output}: {total} {args.interval} candles of {symbol} in "
        f"{format_duration(time.monotonic() - started)}"
    )
    return EXIT_OK


class _EmptyHistory(RxConnectorError):
    """``history`` found no candles in the range (exit 1, the CSV is not written)."""


@contextlib.contextmanager
def _csv_file(path: str) -> Iterator[Any]:
    """A csv writer on ``path``; the file is removed again if the download fails."""
    handle = open(path, "w", newline="")  # noqa: SIM115 - closed below
    try:
        yield csv.writer(handle)
    except BaseException:
        handle.close()
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    handle.close()


# -- parser ---------------------------------------------------------------------------------


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every sub-command has ``--help`` with examples)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="rxconnector",
        description="Crypto exchange feeds as ReactiveX streams: try them from the shell.",
        epilog=_examples(
            "rxconnector demo --seconds 20 --faults",
            "rxconnector watch binance ticker BTCUSDT",
            "rxconnector record binance trades,order_book:10 BTCUSDT -o btc.jsonl.gz --seconds 60",
            "rxconnector replay btc.jsonl.gz --feed trades",
        ),
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"rxconnector {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    venues = ", ".join(VENUES)
    feeds = ", ".join(FEEDS)

    demo = commands.add_parser(
        "demo",
        help="run a live pipeline against a local exchange simulator",
        description=(
            "Start the exchange simulator on 127.0.0.1 and run a real pipeline against it "
            "through the ordinary Connector: ticker, a 1-second VWAP and trade count, the "
            "best bid/ask of a depth-10 order book, and health (connections, breaker, "
            "clock offset, errors). Redrawn in place on a terminal, plain lines otherwise."
        ),
        epilog=_examples(
            "rxconnector demo",
            "rxconnector demo --seconds 15",
            "rxconnector demo --faults --symbol ETHUSDT",
        ),
        formatter_class=fmt,
    )
    demo.set_defaults(command_parser=demo)
    demo.add_argument("--seconds", type=_positive_float, help="stop after N seconds (exit 0)")
    demo.add_argument(
        "--faults", action="store_true", help="inject disconnects and stalls to show recovery"
    )
    demo.add_argument("--symbol", default="BTCUSDT", help="symbol to simulate (default BTCUSDT)")
    demo.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")

    watch = commands.add_parser(
        "watch",
        help="print one feed of one venue live",
        description=f"Print a feed live. Venues: {venues}. Feeds: {feeds}.",
        epilog=_examples(
            "rxconnector watch binance ticker BTCUSDT",
            "rxconnector watch binance klines BTCUSDT 1m --seconds 30",
            "rxconnector watch binance order_book BTCUSDT 10",
            "rxconnector watch binance_futures mark_price BTCUSDT",
            "rxconnector watch bybit-linear trades BTCUSDT",
            "rxconnector watch binance trades BTCUSDT --rest-url http://127.0.0.1:8765 "
            "--ws-url ws://127.0.0.1:8765",
        ),
        formatter_class=fmt,
    )
    watch.set_defaults(command_parser=watch)
    watch.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    watch.add_argument("feed", metavar="FEED", help=f"one of: {feeds}")
    watch.add_argument("symbol", metavar="SYMBOL", help="e.g. BTCUSDT")
    watch.add_argument("args", metavar="ARGS", nargs="*", help="feed arguments (klines: 1m)")
    _add_urls(watch)
    watch.add_argument("--seconds", type=_positive_float, help="stop after N seconds")

    sim = commands.add_parser(
        "sim",
        help="run the exchange simulator standalone",
        description="Run the exchange simulator (Binance Spot, USD-M futures, Bybit v5) "
        "until Ctrl-C; it prints a ready Config line for every venue and account.",
        epilog=_examples(
            "rxconnector sim",
            "rxconnector sim --port 8765 --symbols BTCUSDT,ETHUSDT,SOLUSDT",
            "rxconnector sim --account mykey:mysecret:USDT=10000,BTC=1",
            "rxconnector sim --faults-every 10 --seed 7",
        ),
        formatter_class=fmt,
    )
    sim.set_defaults(command_parser=sim)
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 = any)")
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
        "--tick-interval", type=_positive_float, default=0.05, help="seconds per market tick"
    )
    sim.add_argument(
        "--faults-every",
        type=_positive_float,
        metavar="S",
        help="alternate a disconnect and a stall every S seconds",
    )
    sim.add_argument("--seconds", type=_positive_float, help="stop after N seconds")

    record = commands.add_parser(
        "record",
        help="record raw feeds to a zstd JSON-lines file (gzip if the name ends in .gz)",
        description=(
            "Subscribe FEEDS x SYMBOLS and write every raw frame with its receive time (and "
            "the REST snapshots the order book needed) to FILE, for 'rxconnector replay' "
            "and rxconnector.replay.open(). API keys are never written."
        ),
        epilog=_examples(
            "rxconnector record binance trades,ticker BTCUSDT,ETHUSDT -o md.jsonl.gz",
            "rxconnector record binance order_book:10,klines:1m BTCUSDT -o btc.jsonl.gz "
            "--seconds 300",
        ),
        formatter_class=fmt,
    )
    record.set_defaults(command_parser=record)
    record.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    record.add_argument("feeds", metavar="FEEDS", help="comma-separated, e.g. trades,klines:1m")
    record.add_argument("symbols", metavar="SYMBOLS", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    record.add_argument(
        "--force", action="store_true", help="overwrite FILE if it exists (refused otherwise)"
    )
    record.add_argument("--seconds", type=_positive_float, help="stop after N seconds")
    _add_urls(record)

    replay = commands.add_parser(
        "replay",
        help="print what a recording holds, through the normal parsers",
        description=(
            "Replay a recording through the same parsers and order-book code as live data "
            "and print the models. As fast as possible unless --speed is given."
        ),
        epilog=_examples(
            "rxconnector replay btc.jsonl.gz",
            "rxconnector replay btc.jsonl.gz --feed order_book --as-fast-as-possible",
            "rxconnector replay btc.jsonl.gz --speed 1   # real time",
        ),
        formatter_class=fmt,
    )
    replay.set_defaults(command_parser=replay)
    replay.add_argument("file", metavar="FILE", help="a recording made by 'rxconnector record'")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive_float, help="X times real time (1 = real time)")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing (the default)")
    replay.add_argument("--feed", metavar="F", help="only this recorded feed (e.g. trades)")

    history = commands.add_parser(
        "history",
        help="download klines over a date range to CSV",
        description="Download every candle between --start and --end (UTC) to a CSV file.",
        epilog=_examples(
            "rxconnector history binance BTCUSDT 1h --start 2024-01-01 --end 2024-02-01 "
            "-o btc-1h.csv",
            "rxconnector history bybit ETHUSDT 1d --start 2023-01-01 --end 2024-01-01 -o eth.csv",
        ),
        formatter_class=fmt,
    )
    history.set_defaults(command_parser=history)
    history.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    history.add_argument("symbol", metavar="SYMBOL")
    history.add_argument("interval", metavar="INTERVAL", help="kline interval, e.g. 1m, 1h, 1d")
    history.add_argument("--start", required=True, help="ISO date/time (UTC), inclusive")
    history.add_argument("--end", required=True, help="ISO date/time (UTC), exclusive")
    history.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    _add_urls(history)

    from rxconnector.bus.command import add_publish_parser

    add_publish_parser(commands, _examples, venues)
    return parser


def _add_urls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rest-url", metavar="URL", help="REST base URL (e.g. the simulator)")
    parser.add_argument("--ws-url", metavar="URL", help="WebSocket base URL")


# -- entry point ----------------------------------------------------------------------------


def _prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Validate everything for ``args.command``; return the coroutine factory to run."""
    command = args.command
    if command == "demo":
        args.symbol = _simulated_symbol(args.symbol, "--symbol")
        return lambda: _demo(args)
    if command == "watch":
        config = make_config(args.venue, args.rest_url, args.ws_url)
        feed = parse_feed(args.feed, args.args)
        symbol = check_feed(config, feed, args.symbol)
        return lambda: _watch(args, config, feed, symbol)
    if command == "sim":
        symbols = tuple(
            _simulated_symbol(symbol, "--symbols")
            for symbol in parse_list(args.symbols, "--symbols")
        )
        twice = sorted({s for s in symbols if symbols.count(s) > 1})
        if twice:
            raise UsageError(f"--symbols lists {', '.join(twice)} twice (symbols ignore case)")
        accounts = parse_accounts(args.account)
        return lambda: _sim(args, symbols, accounts)
    if command == "record":
        config = make_config(args.venue, args.rest_url, args.ws_url)
        feeds = [parse_feed(text) for text in parse_list(args.feeds, "FEEDS")]
        symbols = tuple(
            check_feed(config, feed, symbol)
            for symbol in parse_list(args.symbols, "SYMBOLS")
            for feed in feeds
        )
        symbols = tuple(dict.fromkeys(symbols))
        _check_output(args.output)
        if os.path.exists(args.output) and not args.force:
            # a recording cannot be made again: never replace one by accident
            raise UsageError(f"{args.output} already exists; pass --force to overwrite it")
        return lambda: _record(args, config, feeds, symbols)
    if command == "replay":
        if not os.path.exists(args.file):
            raise UsageError(f"no such file: {args.file}")
        return lambda: _replay(args)
    if command == "history":
        config = make_config(args.venue, args.rest_url, args.ws_url)
        symbol = check_feed(config, FeedRequest("klines", (args.interval,)), args.symbol)
        start = parse_time(args.start, "--start")
        end = parse_time(args.end, "--end")
        if end <= start:
            raise UsageError(f"--end ({args.end}) must be after --start ({args.start})")
        _check_output(args.output)
        return lambda: _history(args, config, symbol, start, end)
    if command == "publish":
        from rxconnector.bus.command import prepare_publish

        return prepare_publish(args)
    raise UsageError(f"unknown command {command!r}")  # pragma: no cover - argparse stops it


def _simulated_symbol(symbol: str, option: str) -> str:
    """The simulator lists plain alphanumeric symbols (``BTCUSDT``): check it up front."""
    from rxconnector.testing.simulator.config import symbol_spec

    upper = symbol.strip().upper()
    try:
        symbol_spec(upper)
    except ValueError as exc:
        raise UsageError(f"{option}: the simulator cannot list {symbol!r}: {exc}") from None
    return upper


def _check_output(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a folder")


def _log_handler(verbose: int, command: str) -> logging.Handler:
    """Library logs to stderr: warnings by default (errors only under the live demo view)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    default = logging.ERROR if command == "demo" else logging.WARNING
    level = {0: default, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler.setLevel(level)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad arguments, 130 Ctrl-C)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse's own errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    subparser: argparse.ArgumentParser = args.command_parser
    try:
        factory = _prepare(args)
    except UsageError as exc:
        subparser.print_usage(sys.stderr)
        _out(sys.stderr, f"rxconnector {args.command}: error: {exc}")
        return EXIT_USAGE

    logger = logging.getLogger("rxconnector")
    handler = _log_handler(args.verbose, args.command)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(handler.level, logging.WARNING))
    try:
        return asyncio.run(factory())
    except UsageError as exc:
        subparser.print_usage(sys.stderr)
        _out(sys.stderr, f"rxconnector {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _out(sys.stderr, f"rxconnector {args.command}: interrupted")
        return EXIT_INTERRUPTED
    except (RxConnectorError, OSError) as exc:
        _out(sys.stderr, f"rxconnector {args.command}: error: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
