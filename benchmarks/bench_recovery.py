"""How fast and how cheaply the connector recovers from faults (issue 16).

The simulator runs in a child process (``_simproc.py``) with the venue's documented
REST limits (it answers 429/418 when they are broken). One ``Connector`` with default
settings subscribes N symbols x (``trades``, ``order_book(depth=20)``, ``ticker``) on
one connection. Then faults are injected one at a time, with full recovery in between:

* ``startup``: from the first ``subscribe`` call;
* ``disconnect``: every WebSocket dropped (no close frame);
* ``stall5``: no market data for 5 s (frames dropped, pings go on);
* ``disconnect_429``: a drop, and the next REST call answers 429 Retry-After 1;
* ``ban418``: a drop, and the next REST call answers 418 Retry-After 1;
* ``shutdown``: ``serverShutdown`` notice, connections closed after its grace.

When the fault is over, the simulator reports per symbol its book's update id, its last
trade id and its clock. Times are measured from that moment until *every* symbol has
(a) a ticker with a later event time, (b) delivered every trade up to that id with no
hole, (c) emitted a book past that update id. "resubscribed" is when the simulator saw
every stream subscribed again (reconnect backoff and jitter are in it; the rest is
recovery proper). Also: REST calls and weight the
recovery used, the simulator's peak used weight in a minute (its limit enforced), trade
ids reported lost, and how long a user call (``server_time``) issued at that moment took
to succeed (retrying after a ``RateLimitError``/``CircuitOpenError`` as a user would).

Run: ``.venv/bin/python benchmarks/bench_recovery.py --symbols 50`` (``--faults`` to
pick, ``--timeout`` per fault).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

import rxconnector as rxc
from rxconnector.errors import CircuitOpenError, FeedGapError, RateLimitError

HERE = os.path.dirname(os.path.abspath(__file__))
ALL = ("startup", "disconnect", "stall5", "disconnect_429", "ban418", "shutdown")


class Sim:
    """The child simulator process and its JSON-lines channel."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, symbols: int, extra: list[str] | None = None) -> tuple[Sim, Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            os.path.join(HERE, "_simproc.py"),
            "--symbols",
            str(symbols),
            *(extra or []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        sim = cls(proc)
        return sim, await sim._read()

    async def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("simulator process ended")
        return orjson.loads(line)

    async def ask(self, **cmd: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        await self.proc.stdin.drain()
        return await self._read()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ask(cmd="quit"), 10)
        except Exception:
            self.proc.kill()
        await self.proc.wait()


class Tracker:
    """Per-symbol progress of the three feeds and the moments each caught up."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.ticker_time = dict.fromkeys(symbols, 0)
        self.trade_id = dict.fromkeys(symbols, 0)
        self.book_id = dict.fromkeys(symbols, 0)
        self.books_emitted = 0
        self.trades_seen = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.lost_ids = 0
        self.lost_ranges: list[tuple[str, int, int]] = []
        self.resyncs = 0
        self.other_errors: list[str] = []
        self.marks: dict[str, Any] | None = None
        self.done: dict[str, dict[str, float]] = {"ticker": {}, "trades": {}, "books": {}}
        self.t_end = 0.0

    def arm(self, marks: dict[str, Any], origin: float) -> None:
        self.marks = marks
        self.t_end = origin
        self.done = {"ticker": {}, "trades": {}, "books": {}}
        for s in self.symbols:
            self._check(s)

    def _check(self, s: str) -> None:
        if self.marks is None:
            return
        now = time.monotonic() - self.t_end
        mark = self.marks["symbols"][s]
        if s not in self.done["ticker"] and self.ticker_time[s] > self.marks["server_time"]:
            self.done["ticker"][s] = now
        if s not in self.done["trades"] and self.trade_id[s] >= max(mark["trade_id"], 1):
            self.done["trades"][s] = now
        if s not in self.done["books"] and self.book_id[s] > mark["update_id"]:
            self.done["books"][s] = now

    def complete(self) -> bool:
        n = len(self.symbols)
        return all(len(v) == n for v in self.done.values())

    def on_ticker(self, s: str) -> Callable[[rxc.Ticker], None]:
        def f(t: rxc.Ticker) -> None:
            self.ticker_time[s] = max(self.ticker_time[s], t.event_time)
            self._check(s)

        return f

    def on_trade(self, s: str) -> Callable[[rxc.Trade], None]:
        def f(t: rxc.Trade) -> None:
            self.trades_seen += 1
            last = self.trade_id[s]
            if last and t.trade_id <= last:
                self.duplicates += 1
                return
            if last and t.trade_id != last + 1:
                self.out_of_order += 1
            self.trade_id[s] = t.trade_id
            self._check(s)

        return f

    def on_book(self, s: str) -> Callable[[rxc.OrderBook], None]:
        def f(b: rxc.OrderBook) -> None:
            self.books_emitted += 1
            self.book_id[s] = max(self.book_id[s], b.update_id)
            self._check(s)

        return f

    def on_error(self, e: Exception) -> None:
        if isinstance(e, FeedGapError):
            if e.first_missing is not None and e.last_missing is not None:
                self.lost_ids += e.last_missing - e.first_missing + 1
                self.lost_ranges.append((e.topic, e.first_missing, e.last_missing))
                # the tape skipped these ids: count the jump as expected, not out of order
                sym = e.topic.split("@")[0].upper()
                if sym in self.trade_id:
                    self.out_of_order -= 1
            else:
                self.resyncs += 1
        else:
            self.other_errors.append(repr(e)[:200])


async def user_call(conn: rxc.Connector) -> tuple[float, int]:
    """Seconds until ``server_time`` succeeds, retrying after rate-limit/breaker errors
    exactly as long as the error says; and how many attempts it took."""
    start = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            await asyncio.wait_for(_first(conn.server_time()), 30)
            return time.monotonic() - start, attempts
        except (RateLimitError, CircuitOpenError) as exc:
            await asyncio.sleep(max(exc.retry_after, 0.01))
        except Exception:
            await asyncio.sleep(0.1)
        if time.monotonic() - start > 120:
            return float("inf"), attempts


async def _at_phase(sim: Sim, phase: float) -> None:
    """Wait until ``phase`` seconds into a weight minute (the exchange's fixed window)
    in which less than a tenth of the limit is spent: the fault then starts from a
    fresh budget at a known point of the minute."""
    while True:
        state = await sim.ask(cmd="rest", since=0)
        past = ((state["server_time"] % 60_000) / 1000.0 - phase) % 60.0
        if past < 1.0 and state["used"] < state["limit"] // 10:
            return
        await asyncio.sleep(60.0 - past if past >= 1.0 else 1.0)


async def _first(obs: Any) -> Any:
    from reactivex import operators as ops

    return await obs.pipe(ops.first())


def _fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s"


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    extra = [] if args.weight_limit is None else ["--weight-limit", str(args.weight_limit)]
    extra += ["--fill-model", args.fill_model, "--quiet", str(args.quiet)]
    extra += ["--quiet-activity", str(args.quiet_activity)]
    extra += ["--quiet-fill-model", args.quiet_fill_model]
    sim, urls = await Sim.start(args.symbols, extra)
    symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
    tracker = Tracker(symbols)
    results: list[dict[str, Any]] = []
    cfg = rxc.Config.binance(rest_url=urls["rest_url"], ws_url=urls["ws_url"])
    try:
        async with rxc.Connector(cfg) as conn:
            subs = [conn.errors.subscribe(tracker.on_error)]
            rest_index = (await sim.ask(cmd="rest", since=0))["index"]
            faults = [f for f in ALL if f in args.faults]
            t_sub = time.monotonic()
            marks = await sim.ask(cmd="fault", name="none")
            for s in symbols:
                subs.append(conn.ticker(s).subscribe(tracker.on_ticker(s)))
                subs.append(conn.trades(s).subscribe(tracker.on_trade(s)))
                subs.append(conn.order_book(s, 20).subscribe(tracker.on_book(s)))
            for name in faults:
                if name != "startup":
                    await asyncio.sleep(args.settle)
                    if args.phase is not None:
                        await _at_phase(sim, args.phase)
                    rest_index = (await sim.ask(cmd="rest", since=0))["index"]
                    lost_before = tracker.lost_ids
                    # times count from the fault (a stall: from its end, 5 s later)
                    origin = time.monotonic() + (5.0 if name == "stall5" else 0.0)
                    probe = asyncio.ensure_future(user_call(conn))
                    marks = await sim.ask(cmd="fault", name=name)
                    resubscribed = time.monotonic() - origin
                    tracker.arm(marks, origin)
                else:
                    lost_before = 0
                    resubscribed = 0.0
                    tracker.arm(marks, t_sub)
                    probe = asyncio.ensure_future(user_call(conn))
                deadline = time.monotonic() + args.timeout
                while not tracker.complete() and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                user_s, user_attempts = await probe
                rest = await sim.ask(cmd="rest", since=rest_index)
                row = {
                    "fault": name,
                    "ticker": max(tracker.done["ticker"].values(), default=None)
                    if len(tracker.done["ticker"]) == len(symbols)
                    else None,
                    "trades": max(tracker.done["trades"].values(), default=None)
                    if len(tracker.done["trades"]) == len(symbols)
                    else None,
                    "books": max(tracker.done["books"].values(), default=None)
                    if len(tracker.done["books"]) == len(symbols)
                    else None,
                    "missing": {k: len(symbols) - len(v) for k, v in tracker.done.items()},
                    "rest_calls": rest["calls"],
                    "rest_weight": rest["weight"],
                    "statuses": rest["statuses"],
                    "paths": rest["paths"],
                    "peak_minute_weight": rest["max_minute_weight"],
                    "limit": rest["limit"],
                    "lost_ids": tracker.lost_ids - lost_before,
                    "resubscribed": resubscribed,
                    "user_call": user_s,
                    "user_attempts": user_attempts,
                    # where in the exchange's fixed weight minute the fault fell
                    "minute_phase": (marks["server_time"] % 60_000) / 1000.0,
                }
                results.append(row)
                print(
                    f"{name:15s} resubscribed {_fmt(row['resubscribed'])}  "
                    f"ticker {_fmt(row['ticker'])}  trades {_fmt(row['trades'])}  "
                    f"books {_fmt(row['books'])}  REST {row['rest_calls']} calls / "
                    f"{row['rest_weight']} weight  peak {row['peak_minute_weight']}/{row['limit']}"
                    f"  lost ids {row['lost_ids']}  user call {row['user_call']:.2f} s "
                    f"({user_attempts} tries)  statuses {row['statuses']}  "
                    f"load {os.getloadavg()[0]:.1f}\n    calls by path {row['paths']}, "
                    f"recovery from {row['minute_phase']:.1f} s into the weight minute\n"
                    f"    weight by second after the first call {rest.get('timeline')}"
                    + (f"  NOT BACK {row['missing']}" if not tracker.complete() else ""),
                    flush=True,
                )
                late = [s for s in symbols if s not in tracker.done["trades"]][:5]
                for s in late:  # which tapes, and how far they got
                    got, want = tracker.trade_id[s], marks["symbols"][s]["trade_id"]
                    print(f"    tape {s}: delivered up to {got}, needed {want}", flush=True)
            for sub in subs:
                sub.dispose()
            print(
                f"totals: trades {tracker.trades_seen}, duplicates {tracker.duplicates}, "
                f"out of order {tracker.out_of_order}, books {tracker.books_emitted}, "
                f"book resyncs reported {tracker.resyncs}, lost ids {tracker.lost_ids}, "
                f"other errors {len(tracker.other_errors)}",
                flush=True,
            )
            for e in tracker.other_errors[:5]:
                print("  error:", e)
    finally:
        await sim.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--faults", default=",".join(ALL))
    parser.add_argument("--timeout", type=float, default=180.0, help="per fault, seconds")
    parser.add_argument("--settle", type=float, default=5.0, help="pause between faults")
    parser.add_argument(
        "--weight-limit", type=int, default=None, help="simulator REST weight limit per minute"
    )
    parser.add_argument(
        "--fill-model",
        default="binance_spot",
        help="the simulator's market: binance_spot (recorded fills, default), binance_usdm, "
        "stress (the original uniform 1..3 fills per aggregate)",
    )
    parser.add_argument(
        "--phase",
        type=float,
        default=None,
        help="start each fault this many seconds into a weight minute whose budget is "
        "still unspent (default: whenever the settle pause ends)",
    )
    parser.add_argument(
        "--quiet",
        type=int,
        default=0,
        help="make the last N symbols quiet (a scenario: the simulator's symbols are "
        "otherwise all as busy as BTCUSDT)",
    )
    parser.add_argument(
        "--quiet-activity",
        type=float,
        default=0.03,
        help="their activity (share of ticks with takers; 0.03 = about 0.5 aggregates/s)",
    )
    parser.add_argument(
        "--quiet-fill-model",
        default="binance_spot_quiet",
        help="their fill model (default: as recorded on quiet Binance Spot symbols)",
    )
    args = parser.parse_args()
    args.faults = args.faults.split(",")
    print(
        f"bench_recovery: {args.symbols} symbols x (trades, order_book(20), ticker), "
        f"fill model {args.fill_model}, quiet {args.quiet} at activity {args.quiet_activity} "
        f"({args.quiet_fill_model}), "
        f"rxconnector {rxc.__version__}, "
        f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
