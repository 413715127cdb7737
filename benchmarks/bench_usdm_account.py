"""Binance USD-M user data: how many events per second the session decodes into models.

Workload: the recorded real payloads of ``tests/fixtures/examples.json``
(``binance.usdm.uds.*.recorded``) turned into a fill stream - per fill one
``TRADE_LITE``, one ``ORDER_TRADE_UPDATE`` (x=TRADE) and one ``ACCOUNT_UPDATE`` with a
balance and a position, ids advancing - as raw JSON frames, decoded with ``orjson`` and
handed to the protocol session exactly as
:class:`~rxconnector.streams.accounts.account_streams.AccountStreams`
does (``fast_executions`` off and on). Prints frames/s, fills/s and the peak memory
(tracemalloc) of one pass.

    .venv/bin/python benchmarks/bench_usdm_account.py [--fills 50000] [--runs 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

from rxconnector.exchanges.binance.futures_user_stream import BinanceFuturesUserStream

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "examples.json"


class _Sink:
    """The SessionOutput of the benchmark: counts what the session emits."""

    def __init__(self) -> None:
        self.models = 0

    def send(self, build: Any) -> None: ...

    def emit(self, item: object) -> None:
        if type(item) is not tuple:
            self.models += 1

    def subscribed(self) -> None: ...

    def resubscribing(self, reason: str) -> None: ...

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        raise AssertionError(error)

    def report(self, error: Exception) -> None:
        raise AssertionError(error)


def frames(fills: int) -> list[bytes]:
    examples = json.loads(EXAMPLES.read_text())
    lite = examples["binance.usdm.uds.TRADE_LITE.recorded"]
    order = examples["binance.usdm.uds.ORDER_TRADE_UPDATE.recorded"]
    account = examples["binance.usdm.uds.ACCOUNT_UPDATE.recorded"]
    out: list[bytes] = []
    for n in range(fills):
        trade, order_id = 900_000_000 + n, 80_000_000_000 + n // 3
        a = dict(lite, t=trade, i=order_id, E=lite["E"] + n)
        o = copy.deepcopy(order)
        o["E"] = o["E"] + n
        o["o"].update(x="TRADE", X="FILLED", t=trade, i=order_id, l="0.473", z="0.473")
        o["o"].update(L="2463.26", ap="2463.26", n="0.2330")
        u = copy.deepcopy(account)
        u["E"] = u["E"] + n
        out += [orjson.dumps(a), orjson.dumps(o), orjson.dumps(u)]
    return out


def one_pass(data: list[bytes], fast: bool) -> tuple[float, int]:
    session = BinanceFuturesUserStream(fast_executions=fast).new_session()
    sink = _Sink()
    loads = orjson.loads
    start = time.perf_counter()
    for frame in data:
        session.on_message(loads(frame), 0.0, sink)
    return time.perf_counter() - start, sink.models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fills", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = frames(args.fills)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(data):,} frames, {args.fills:,} fills")
    for fast in (False, True):
        best, models = min(one_pass(data, fast) for _ in range(args.runs))
        tracemalloc.start()
        one_pass(data, fast)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"fast_executions={fast!s:5}: {len(data) / best:,.0f} frames/s "
            f"({best / len(data) * 1e6:.2f} µs/frame), {args.fills / best:,.0f} fills/s, "
            f"{models:,} models, peak {peak / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
