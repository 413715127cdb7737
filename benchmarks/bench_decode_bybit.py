"""Typed (msgspec) decoding of Bybit v5 public frames against orjson + the dict parsers.

Run::

    uptime; .venv/bin/python benchmarks/bench_decode_bybit.py --number 2000 --repeat 30

For each feed a Bybit frame is taken from bytes to the models the connector emits, two
ways, both with the library's own code:

* **today**: ``orjson.loads`` of the frame, then the dict parser of
  :mod:`rxconnector.exchanges.bybit.parsers` (``Decimal`` per number through
  ``to_decimal``, tickers merged by ``BybitTickerMerger``);
* **typed**: the feed's ``parse_frame`` (:mod:`rxconnector.exchanges.bybit.wire`: one
  ``msgspec`` pass into Structs, numbers to ``Decimal`` in C, the same checks, the same
  model builders; :mod:`~rxconnector.exchanges.bybit.wire_tickers`: one pass with
  ``data`` as strings into the same merger, each feed converting only what a delta
  changed; a frame the schema does not take goes to the dict parser).

Frames: the documented examples (``bybit.v5.ws.publicTrade``, ``.kline``,
``.tickers.*``; ``allLiquidation`` from Bybit's docs) and frames of the simulator's
shape (Spot trade ids as digits, several trades per frame, linear ticker deltas of the
fields the simulator changes per tick, a small bid/ask-only delta, inverse). The
``tickers`` rows run the feeds of one topic the way the connector does: today one
``orjson.loads`` shared by every feed's dict parser; typed every feed's ``parse_frame``
on the same ``bytes`` object (the topic's reader decodes and merges it once). Each call
gets a fresh frame object (two frames alternate), so the reader's one-frame memory never
carries over from one call to the next; for tickers the second frame has other values
where a real next frame has them (last price, volumes, bid/ask, mark/index; every number
of a delta), so remembered conversions help only where real frames repeat a value.
Deltas run against a merged snapshot (applying a delta again is what the merger allows:
idempotent).

Both paths must produce equal models (asserted). ``ratio`` is today's time over the
typed time, the two timed alternately in every round (a loaded spell hits both): above
1 the typed path is faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire
from rxconnector.exchanges.bybit.feeds import BybitFeeds

EXAMPLES = Path("/work/shared/reference/examples.json")
FALLBACK_EXAMPLES = Path(__file__).resolve().parent.parent / "tests/fixtures/examples.json"

#: Bybit docs, websocket/public/all-liquidation "Response Example".
ALL_LIQUIDATION: dict[str, Any] = {
    "topic": "allLiquidation.ROSEUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}],
}


def _sim_trades(category: str, count: int) -> dict[str, Any]:
    """A ``publicTrade`` frame as the simulator writes it (``L`` and UUIDs on linear)."""
    data = []
    for n in range(count):
        entry: dict[str, Any] = {
            "T": 1700000000120 + n,
            "s": "BTCUSDT",
            "S": "Buy" if n % 2 else "Sell",
            "v": f"0.{n + 1:03d}",
            "p": f"{60000 + n}.50",
        }
        if category != "spot":
            entry["L"] = "PlusTick"
            entry["i"] = f"{n:08x}-d8dd-5b31-9112-a178eb6023af"
        else:
            entry["i"] = str(2290000000012345 + n)
        entry["BT"] = False
        entry["seq"] = 1783284617 + n
        data.append(entry)
    return {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1700000000123, "data": data}


SIM_KLINE_INVERSE: dict[str, Any] = {
    "topic": "kline.1.BTCUSD",
    "data": [
        {
            "start": 1700000040000,
            "end": 1700000099999,
            "interval": "1",
            "open": "60000.5",
            "close": "60010",
            "high": "60012.5",
            "low": "59990",
            "volume": "125000",
            "turnover": "2.08312345",
            "confirm": False,
            "timestamp": 1700000061234,
        }
    ],
    "ts": 1700000061234,
    "type": "snapshot",
}

#: The fields the simulator's linear ticker changes on a tick with a trade.
SIM_LINEAR_DELTA: dict[str, Any] = {
    "topic": "tickers.BTCUSDT",
    "type": "delta",
    "data": {
        "symbol": "BTCUSDT",
        "tickDirection": "PlusTick",
        "price24hPcnt": "0.012345",
        "lastPrice": "66667.10",
        "markPrice": "66667.00",
        "indexPrice": "66667.10",
        "openInterestValue": "32824900000.75",
        "turnover24h": "4936790900.6521",
        "volume24h": "73191.4010",
        "bid1Price": "66666.90",
        "bid1Size": "1.234",
        "ask1Price": "66667.10",
        "ask1Size": "0.567",
    },
    "cs": 9532239500,
    "ts": 1760325052730,
}
#: A book-only change (no mark field: mark_price emits nothing).
SMALL_DELTA: dict[str, Any] = {
    "topic": "tickers.BTCUSDT",
    "type": "delta",
    "data": {"symbol": "BTCUSDT", "bid1Price": "66666.50", "bid1Size": "2.5", "ask1Size": "3"},
    "cs": 9532239501,
    "ts": 1760325052830,
}

Case = tuple[str, Callable[[], Any], Callable[[], Any]]


#: The numbers a Spot/linear ticker snapshot changes from one frame to the next (a
#: delta carries only changed fields: all of its numbers change).
_MOVING: Final = frozenset(
    {"lastPrice", "volume24h", "turnover24h", "price24hPcnt", "markPrice", "indexPrice"}
    | {"bid1Price", "bid1Size", "ask1Price", "ask1Size", "openInterestValue"}
)


def _moved(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with its moving numbers changed (one more digit)."""
    delta = message.get("type") == "delta"
    data = {
        k: v + "1" if k != "symbol" and (delta or k in _MOVING) and v[:1].isdigit() else v
        for k, v in message["data"].items()
    }
    return {**message, "data": data}


def _pool(message: dict[str, Any], moving: bool = False) -> Callable[[], bytes]:
    """Two distinct frame objects, alternately: a fresh object per call; with
    ``moving``, the second one has other values where a real next frame has them (so
    a field's remembered ``Decimal`` helps only where the value really stays)."""
    raw = orjson.dumps(message)
    other = orjson.dumps(_moved(message)) if moving else raw
    copies = [bytes(bytearray(raw)), bytes(bytearray(other))]
    state = [0]

    def next_frame() -> bytes:
        state[0] ^= 1
        return copies[state[0]]

    return next_frame


def _flat(models: Any) -> list[Any]:
    return list(models) if isinstance(models, (list, tuple)) else [models]


def _one_feed(name: str, message: dict[str, Any], plain: Any, typed: Any) -> Case:
    frame, frame_too = _pool(message), _pool(message)
    loads = orjson.loads
    return (
        name,
        lambda: plain(loads(frame()), 0.0),
        lambda: typed(frame_too(), 0.0),
    )


def _ticker_feeds(
    name: str,
    category: str,
    feeds: Sequence[str],
    message: dict[str, Any],
    before: dict[str, Any] | None = None,
) -> Case:
    """The ``feeds`` of one tickers topic on ``message`` (after ``before``, a snapshot)."""
    symbol = message["data"]["symbol"]
    inverse = category == "inverse"
    merger = p.BybitTickerMerger()
    makers: dict[str, Any] = {
        "ticker": lambda: p.ticker_parser(merger, inverse=inverse),
        "mini_ticker": lambda: p.mini_ticker_parser(merger, inverse=inverse),
        "mark_price": lambda: p.mark_price_parser(merger),
    }
    plain = [makers[f]() for f in feeds]
    library = BybitFeeds(category)
    typed = [getattr(library, f)(symbol).parse_frame for f in feeds]
    if before is not None:
        raw = orjson.dumps(before)
        for parse in plain:
            parse(orjson.loads(raw), 0.0)
        for parse_frame in typed:
            parse_frame(raw, 0.0)
    frame, frame_too = _pool(message, moving=True), _pool(message, moving=True)
    loads = orjson.loads

    def today() -> list[Any]:
        decoded = loads(frame())
        return [parse(decoded, 0.0) for parse in plain]

    def typed_path() -> list[Any]:
        raw = frame_too()
        return [parse_frame(raw, 0.0) for parse_frame in typed]

    return name, today, typed_path


def cases(examples: dict[str, Any]) -> list[Case]:
    spot = examples["bybit.v5.ws.tickers.spot"]
    perpetual = examples["bybit.v5.ws.tickers.linear_perpetual"]
    dated = examples["bybit.v5.ws.tickers.linear_futures"]
    kline = examples["bybit.v5.ws.kline"]
    inverse_snapshot = {**perpetual, "topic": "tickers.BTCUSD"}
    inverse_snapshot["data"] = {**perpetual["data"], "symbol": "BTCUSD"}
    inverse_delta = {**SIM_LINEAR_DELTA, "topic": "tickers.BTCUSD"}
    inverse_delta["data"] = {**SIM_LINEAR_DELTA["data"], "symbol": "BTCUSD"}
    three = ("ticker", "mini_ticker", "mark_price")
    trade_sim_spot, trade_sim_linear = _sim_trades("spot", 1), _sim_trades("linear", 5)
    return [
        _one_feed("publicTrade, example (1, UUID)", examples["bybit.v5.ws.publicTrade"],
                  p.parse_trades, wire.trades_frame_parser("publicTrade.BTCUSDT")),
        _one_feed("publicTrade, sim spot (1)", trade_sim_spot,
                  p.parse_trades, wire.trades_frame_parser("publicTrade.BTCUSDT")),
        _one_feed("publicTrade, sim linear (5)", trade_sim_linear,
                  p.parse_trades, wire.trades_frame_parser("publicTrade.BTCUSDT")),
        _one_feed("kline, example", kline, p.kline_parser("BTCUSDT"),
                  wire.kline_frame_parser(kline["topic"], "BTCUSDT")),
        _one_feed("kline, sim inverse", SIM_KLINE_INVERSE, p.kline_parser("BTCUSD", inverse=True),
                  wire.kline_frame_parser("kline.1.BTCUSD", "BTCUSD", inverse=True)),
        _one_feed("allLiquidation, docs example", ALL_LIQUIDATION, p.parse_liquidations,
                  wire.liquidations_frame_parser("allLiquidation.ROSEUSDT")),
        _ticker_feeds("tickers spot snapshot: ticker", "spot", ("ticker",), spot),
        _ticker_feeds("tickers spot snapshot: ticker+mini", "spot", three[:2], spot),
        _ticker_feeds("tickers linear snapshot: ticker", "linear", ("ticker",), perpetual),
        _ticker_feeds("tickers linear snapshot: all 3", "linear", three, perpetual),
        _ticker_feeds("tickers dated snapshot: all 3 ('')", "linear", three, dated),
        _ticker_feeds("tickers linear delta: ticker", "linear", ("ticker",),
                      SIM_LINEAR_DELTA, perpetual),
        _ticker_feeds("tickers linear delta: mark_price", "linear", ("mark_price",),
                      SIM_LINEAR_DELTA, perpetual),
        _ticker_feeds("tickers linear delta: all 3", "linear", three, SIM_LINEAR_DELTA, perpetual),
        _ticker_feeds("tickers small delta: ticker", "linear", ("ticker",),
                      SMALL_DELTA, perpetual),
        _ticker_feeds("tickers small delta: all 3", "linear", three, SMALL_DELTA, perpetual),
        _ticker_feeds("tickers inverse delta: all 3", "inverse", three,
                      inverse_delta, inverse_snapshot),
    ]  # fmt: skip


def _best_interleaved(
    first: Callable[[], Any], second: Callable[[], Any], number: int, repeat: int
) -> tuple[float, float]:
    """Best time of each over ``repeat`` rounds, timed alternately in every round."""
    best_first = best_second = float("inf")
    for _ in range(repeat):
        best_first = min(best_first, timeit.timeit(first, number=number))
        best_second = min(best_second, timeit.timeit(second, number=number))
    return best_first, best_second


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    source = EXAMPLES if EXAMPLES.exists() else FALLBACK_EXAMPLES
    examples = orjson.loads(source.read_bytes())
    print(
        f"msgspec {msgspec.__version__}, orjson {orjson.__version__}, best of {args.repeat} x "
        f"{args.number:,} (alternated), load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'feed':40s} {'today µs':>9s} {'typed µs':>9s} {'ratio':>6s}")
    for name, today, typed in cases(examples):
        for _ in range(4):  # both pools alternate the same frames
            want, got = _flat(today()), _flat(typed())
            assert got == want, (name, got, want)
        t_today, t_typed = _best_interleaved(today, typed, args.number, args.repeat)
        print(
            f"  {name:40s} {t_today / args.number * 1e6:9.2f} "
            f"{t_typed / args.number * 1e6:9.2f} {t_today / t_typed:6.2f}"
        )


if __name__ == "__main__":
    main()
