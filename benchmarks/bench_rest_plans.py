"""What running REST flows as plans costs (issue 11): the plan runner against the Rx
composition it replaced, in one process, with the network taken out.

Both sides get the same answers synchronously (``reactivex.just``), so the figures are
the engine's own overhead per call and per page, not HTTP (a loopback round trip through
aiohttp costs hundreds of µs; a real exchange tens of ms):

* ``call``: one request and its parser. Plan: ``run_plan(partial(single, Call(...)))``;
  before: ``just(reply).pipe(ops.map(parse))``, what the per-venue clients built
  around ``RestClient.request``.
* ``walk``: a trade backfill of ``--pages`` pages of 1000 trades by ``fromId``. Plan:
  the Binance ``trade_walk`` plan; before: ``paged`` with the same fetch and advance
  (the old ``_trades_by_id``; ``rest/paging.py`` is gone with the per-venue clients, so
  its walk is kept below as the baseline). Items per second and peak traced memory.

Run: ``.venv/bin/python benchmarks/bench_rest_plans.py`` (``--calls``, ``--pages``).
Ratios from one run are meaningful on a loaded machine; absolute times are not.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance.rest_plans import call, trade_walk
from rxconnector.exchanges.rest_plan import Call, single
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.models import SymbolInfo, Trade
from rxconnector.rest.plan_runner import run_plan

PAGE = ep.TRADES_MAX_LIMIT


def _rows(first: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "price": "1.5", "qty": "2", "time": i, "isBuyerMaker": True}
        for i in range(first, first + PAGE)
    ]


class SyncHost:
    """A PlanHost answering every Call at once from ``answer(params)``."""

    def __init__(self, answer: Callable[[Mapping[str, Any]], Any]) -> None:
        self._answer = answer

    def send(self, request: Call[Any]) -> Observable[Any]:
        reply = RestReply(self._answer(request.params), 200, {}, 0.0, 0.0)
        return reactivex.just(request.parse(reply))

    def rules_for(self, symbol: str) -> Observable[SymbolInfo | None]:
        return reactivex.just(None)

    def forget_rules(self, symbol: str) -> None: ...

    def remember_rules(self, infos: Mapping[str, SymbolInfo]) -> None: ...

    def now(self) -> int:
        return 0

    def weight_budget(self, per_minute: int) -> None: ...


def _timed(run: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """Best wall time of ``repeat`` runs and what the run counted."""
    best, count = float("inf"), 0
    for _ in range(repeat):
        gc.collect()
        began = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - began)
    return best, count


def paged(
    first: int,
    fetch: Callable[[int], Observable[list[Trade]]],
    advance: Callable[[list[Trade]], int | None],
) -> Observable[Trade]:
    """The baseline: the removed ``rest/paging.paged`` (page after page, each after the
    previous one's items were emitted, cancellable)."""

    def subscribe(
        observer: abc.ObserverBase[Trade], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        walk = _PageWalk(observer, fetch, advance)
        walk.load(first)
        return CompositeDisposable(Disposable(walk.stop), walk.current)

    return reactivex.create(subscribe)


class _PageWalk:
    def __init__(
        self,
        observer: abc.ObserverBase[Trade],
        fetch: Callable[[int], Observable[list[Trade]]],
        advance: Callable[[list[Trade]], int | None],
    ) -> None:
        self._observer, self._fetch, self._advance = observer, fetch, advance
        self.current = SerialDisposable()
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def load(self, cursor: int) -> None:
        if self._stopped:
            return
        page: list[Trade] = []

        def on_page(items: list[Trade]) -> None:
            page.extend(items)
            for item in items:
                self._observer.on_next(item)

        def on_page_done() -> None:
            following = self._advance(page)
            if following is None:
                self._observer.on_completed()
            else:
                self.load(following)

        self.current.disposable = self._fetch(cursor).subscribe(
            on_page, self._observer.on_error, on_page_done
        )


def bench_calls(n: int) -> None:
    server_time = call(ep.TIME, {}, lambda reply: int(reply.data["serverTime"]))
    host = SyncHost(lambda _params: {"serverTime": 1})
    reply = RestReply({"serverTime": 1}, 200, {}, 0.0, 0.0)
    parse = rp.reply_parser(lambda r: int(r.data["serverTime"]), ep.TIME.path)

    def planned() -> int:
        got: list[int] = []
        for _ in range(n):
            run_plan(partial(single, server_time), host).subscribe(got.append)
        return len(got)

    def composed() -> int:
        got: list[int] = []
        for _ in range(n):
            reactivex.just(reply).pipe(ops.map(parse)).subscribe(got.append)
        return len(got)

    plan_s, plan_n = _timed(planned)
    old_s, old_n = _timed(composed)
    assert plan_n == old_n == n
    print(
        f"call   plan {plan_s / n * 1e6:7.2f} µs/call   before {old_s / n * 1e6:7.2f} µs/call"
        f"   ratio {plan_s / old_s:5.2f}x   ({n} calls)"
    )


def bench_walk(pages: int) -> None:
    last = pages * PAGE
    host = SyncHost(lambda params: _rows(int(params["fromId"])))

    def to_trade(symbol: str, row: Mapping[str, Any], received_at: float) -> Trade:
        return rp.trade(symbol, row, received_at)

    def planned() -> int:
        got: list[Trade] = []
        walk = partial(trade_walk, ep.HISTORICAL_TRADES, to_trade, "BTCUSDT", 1, last, "backfill")
        run_plan(walk, host).subscribe(got.append)
        return len(got)

    def fetch(cursor: int) -> Observable[list[Trade]]:
        page = call(ep.HISTORICAL_TRADES, {"fromId": cursor}, _page_parser(last))
        return host.send(page)

    def advance(page: list[Trade]) -> int | None:
        if len(page) < PAGE or page[-1].trade_id >= last:
            return None
        return page[-1].trade_id + 1

    def composed() -> int:
        got: list[Trade] = []
        paged(1, fetch, advance).subscribe(got.append)
        return len(got)

    for name, run in (("plan", planned), ("before", composed)):
        tracemalloc.start()
        count = run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        seconds, count = _timed(run)
        print(
            f"walk   {name:6} {count / seconds:12,.0f} trades/s   peak traced "
            f"{peak / 1e6:6.1f} MB   ({pages} pages of {PAGE})"
        )


def _page_parser(last: int) -> Callable[[RestReply], list[Trade]]:
    def parse(reply: RestReply) -> list[Trade]:
        trades = (rp.trade("BTCUSDT", row, reply.received_at) for row in reply.data)
        return [attrs.evolve(t, backfilled=True) for t in trades if t.trade_id <= last]

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), cpus {os.cpu_count()}")
    bench_calls(args.calls)
    bench_walk(args.pages)


if __name__ == "__main__":
    main()
