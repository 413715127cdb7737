"""The library's typed frame parsers of the remaining Binance market feeds against the
dict path (``orjson.loads`` + the venue parser), frame by frame (issue #12).

Run (alone, or as the last part of ``bench_decode.py``)::

    .venv/bin/python benchmarks/bench_decode_market.py --number 2000 --repeat 30
    # the dict path as it was before this work (parsers.py of main at b0f4bd7):
    .venv/bin/python benchmarks/bench_decode_market.py --number 2000 --repeat 30 --dict-from b0f4bd7

For every feed of ``rxconnector/exchanges/binance/wire_market.py`` - 24hrTicker,
24hrMiniTicker, kline, avgPrice, Spot and USD-M partial depth, USD-M markPriceUpdate
(perpetual and delivery) and forceOrder - on the reference examples
(``/work/shared/reference/examples.json`` shapes, wrapped as the combined stream sends
them) and on simulator-shaped frames (the simulator's key order and 8-decimal strings;
partial depth with 5, 10 and 20 levels a side): the dict path and the typed parser
(``parse_frame``) produce equal models (asserted) and are timed alternately, round by
round (``ratio`` = dict ÷ typed; above 1: typed faster).

Alternatives measured beside the library's choice (``alt`` column, same ratio):

* markPriceUpdate: ``r`` as a ``Decimal`` field with a fallback to the dict parser when
  the schema refuses the frame (a delivery contract's ``"r": ""``), against the
  library's ``r`` read as text (``to_decimal`` in Python, ``""`` → ``None``);
* partial depth: the levels decoded by msgspec into ``list[tuple[Decimal, Decimal]]``
  (+ the finite/exponent check per number), against the library's raw level text
  packed by ``wire_levels.pack_levels`` and read out as ``Decimal`` pairs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, model_builder
from rxconnector.exchanges.binance import parsers as p
from rxconnector.exchanges.binance import wire_market as wm
from rxconnector.exchanges.wire_levels import pack_levels
from rxconnector.models import MarkPrice, OrderBook

Case = tuple[str, bytes, Callable[[bytes], Any], Callable[[bytes], Any], Callable[[bytes], Any]]


def _frame(stream: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


# Reference examples (examples.json ``binance.*``), as the connection receives them.
EX_TICKER = {
    "e": "24hrTicker", "E": 1672515782136, "s": "BNBBTC", "p": "0.0015", "P": "250.00",
    "w": "0.0018", "x": "0.0009", "c": "0.0025", "Q": "10", "b": "0.0024", "B": "10",
    "a": "0.0026", "A": "100", "o": "0.0010", "h": "0.0025", "l": "0.0010", "v": "10000",
    "q": "18", "O": 0, "C": 86400000, "F": 0, "L": 18150, "n": 18151,
}  # fmt: skip
EX_MINI = {
    "e": "24hrMiniTicker", "E": 1672515782136, "s": "BNBBTC", "c": "0.0025", "o": "0.0010",
    "h": "0.0025", "l": "0.0010", "v": "10000", "q": "18",
}  # fmt: skip
EX_KLINE = {
    "e": "kline", "E": 1672515782136, "s": "BNBBTC",
    "k": {"t": 1672515780000, "T": 1672515839999, "s": "BNBBTC", "i": "1m", "f": 100,
          "L": 200, "o": "0.0010", "c": "0.0020", "h": "0.0025", "l": "0.0015", "v": "1000",
          "n": 100, "x": False, "q": "1.0000", "V": "500", "Q": "0.500", "B": "123456"},
}  # fmt: skip
EX_AVG = {
    "e": "avgPrice", "E": 1693907033000, "s": "BTCUSDT", "i": "5m", "w": "25776.86000000",
    "T": 1693907032213,
}  # fmt: skip
EX_MARK = {
    "e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
    "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000,
}  # fmt: skip
EX_MARK_DELIVERY = {**EX_MARK, "r": "", "T": 0}
EX_FORCE = {
    "e": "forceOrder", "E": 1568014460893,
    "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910",
          "ap": "9910", "X": "FILLED", "l": "0.014", "z": "0.014", "T": 1568014460893},
}  # fmt: skip
EX_PARTIAL = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}
EX_USDM_PARTIAL = {
    "e": "depthUpdate", "E": 123456789, "T": 123456788, "s": "BTCUSDT", "U": 157, "u": 160,
    "pu": 149, "b": [["0.0024", "10"]], "a": [["0.0026", "100"]],
}  # fmt: skip


def _sim_ticker(futures: bool) -> dict[str, Any]:
    """The simulator's 24hrTicker (``binance_payloads.ticker``): its keys, its order."""
    top = {"b": "60000.01000000", "B": "1.25000000", "a": "60000.02000000", "A": "0.75000000"}
    data: dict[str, Any] = {
        "e": "24hrTicker", "E": 1700000000123, "s": "BTCUSDT", "p": "125.01000000",
        "P": "0.208", "w": "59987.12345678", "x": "59875.00000000", "c": "60000.01000000",
        "Q": "0.01200000", **({} if futures else top), "o": "59875.00000000",
        "h": "60125.50000000", "l": "59800.00000000", "v": "1234.56789000",
        "q": "74052345.12345678", "O": 1699913600123, "C": 1700000000123, "F": 1000,
        "L": 25999, "n": 25000,
    }  # fmt: skip
    return data


SIM_MINI = {
    "e": "24hrMiniTicker", "E": 1700000000123, "s": "BTCUSDT", "c": "60000.01000000",
    "o": "59875.00000000", "h": "60125.50000000", "l": "59800.00000000",
    "v": "1234.56789000", "q": "74052345.12345678",
}  # fmt: skip
SIM_KLINE = {
    "e": "kline", "E": 1700000000123, "s": "BTCUSDT",
    "k": {"t": 1699999980000, "T": 1700000039999, "s": "BTCUSDT", "i": "1m", "f": 25000,
          "L": 25099, "o": "59990.00000000", "c": "60000.01000000", "h": "60001.00000000",
          "l": "59989.50000000", "v": "12.34500000", "n": 100, "x": False,
          "q": "740611.1234567800000000", "V": "6.10000000", "Q": "365944.5000000000000000",
          "B": "0"},
}  # fmt: skip
SIM_AVG = {
    "e": "avgPrice", "E": 1700000000123, "s": "BTCUSDT", "i": "5m", "w": "59995.12345678",
    "T": 1700000000120,
}  # fmt: skip


def _sim_partial(levels: int) -> dict[str, Any]:
    return {
        "lastUpdateId": 1027024,
        "bids": [[f"{60000 - i * 0.01:.8f}", f"{0.5 + i * 0.125:.8f}"] for i in range(levels)],
        "asks": [[f"{60000.01 + i * 0.01:.8f}", f"{1.25 + i:.8f}"] for i in range(levels)],
    }


def _sim_usdm_partial(levels: int) -> dict[str, Any]:
    spot = _sim_partial(levels)
    return {
        "e": "depthUpdate", "E": 1700000000123, "T": 1700000000123, "s": "BTCUSDT",
        "U": 1027024, "u": 1027024, "pu": 1027023, "b": spot["bids"], "a": spot["asks"],
    }  # fmt: skip


# ------------------------------------------------------------------ the alternatives

_MarkPrice = model_builder(MarkPrice)
_OrderBook = model_builder(OrderBook)
_finite, _adjusted, _LIMIT = Decimal.is_finite, Decimal.adjusted, MAX_DECIMAL_EXPONENT


def _sane(*numbers: Decimal | None) -> bool:
    return all(n is None or (_finite(n) and -_LIMIT <= _adjusted(n) <= _LIMIT) for n in numbers)


class MarkPriceDecimalR(msgspec.Struct, gc=False):
    """markPriceUpdate with ``r`` a ``Decimal``: a delivery frame's ``""`` fails it."""

    E: int
    s: str
    p: Decimal
    i: Decimal | None = None
    P: Decimal | None = None
    r: Decimal | None = None
    T: int | None = None


class PartialDepthDecimals(msgspec.Struct, gc=False):
    lastUpdateId: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


class FuturesPartialDepthDecimals(msgspec.Struct, gc=False):
    E: int
    s: str
    u: int
    b: list[tuple[Decimal, Decimal]]
    a: list[tuple[Decimal, Decimal]]


def _decoder(name: str, data: type[msgspec.Struct]) -> Callable[[bytes], Any]:
    frame = msgspec.defstruct(name, [("stream", str), ("data", data)], gc=False)
    return msgspec.json.Decoder(frame).decode


def mark_price_decimal_r(topic: str) -> Callable[[bytes], MarkPrice]:
    decode = _decoder("MarkDecimalR", MarkPriceDecimalR)
    loads = orjson.loads

    def parse(frame: bytes) -> MarkPrice:
        try:
            d = decode(frame).data
        except msgspec.ValidationError:  # "" for "no funding": the dict parser reads it
            return p.parse_mark_price(loads(frame)["data"], 0.0)
        if not _sane(d.p, d.i, d.P, d.r):
            raise ValueError("not a number")
        return _MarkPrice(d.s, d.p, d.i, d.P, d.r, d.T or None, d.E, 0.0)

    return parse


def _best_first(levels: tuple[Any, ...], descending: bool) -> tuple[Any, ...]:
    if len(levels) > 1 and (levels[0][0] < levels[-1][0]) == descending:
        return levels[::-1]
    return levels


def _checked(levels: list[tuple[Decimal, Decimal]]) -> tuple[Any, ...]:
    for price, quantity in levels:
        if not _sane(price, quantity):
            raise ValueError("not a number")
    return tuple(levels)


def partial_decimals(symbol: str) -> Callable[[bytes], OrderBook]:
    decode = _decoder("PartialDecimals", PartialDepthDecimals)

    def parse(frame: bytes) -> OrderBook:
        d = decode(frame).data
        bids = _best_first(_checked(d.bids), True)
        return _OrderBook(symbol, bids, _best_first(_checked(d.asks), False), d.lastUpdateId, 0)

    return parse


def futures_partial_decimals(frame: bytes) -> OrderBook:
    d = _FUTURES_DECIMALS(frame).data
    bids = _best_first(_checked(d.b), True)
    return _OrderBook(d.s, bids, _best_first(_checked(d.a), False), d.u, d.E)


_FUTURES_DECIMALS = _decoder("FuturesPartialDecimals", FuturesPartialDepthDecimals)


# ------------------------------------------------------------------ the cases


def cases(plain_parsers: ModuleType = p) -> list[Case]:
    """(feed, frame, dict path, typed parser, alternative or the typed parser again);
    the dict path uses ``plain_parsers`` (the library's ``binance.parsers`` unless
    ``--dict-from`` names another revision)."""
    loads = orjson.loads

    def dict_path(parse: Callable[[Any, float], Any]) -> Callable[[bytes], Any]:
        return lambda frame: parse(loads(frame)["data"], 0.0)

    def typed(parser: Callable[[Any, float], Any]) -> Callable[[bytes], Any]:
        return lambda frame: parser(frame, 0.0)

    out: list[Case] = []

    def add(name: str, topic: str, data: dict[str, Any], plain: Any, parser: Any,
            alt: Callable[[bytes], Any] | None = None) -> None:  # fmt: skip
        fast = typed(parser)
        out.append((name, _frame(topic, data), dict_path(plain), fast, alt or fast))

    add("24hrTicker (example)", "bnbbtc@ticker", EX_TICKER, plain_parsers.parse_ticker,
        wm.ticker_frame_parser("bnbbtc@ticker"))  # fmt: skip
    for futures in (False, True):
        label = "USD-M" if futures else "Spot"
        add(f"24hrTicker (sim, {label})", "btcusdt@ticker", _sim_ticker(futures),
            plain_parsers.parse_ticker, wm.ticker_frame_parser("btcusdt@ticker"))  # fmt: skip
    for name, data in (("example", EX_MINI), ("sim", SIM_MINI)):
        topic = f"{str(data['s']).lower()}@miniTicker"
        add(f"24hrMiniTicker ({name})", topic, data, plain_parsers.parse_mini_ticker,
            wm.mini_ticker_frame_parser(topic))  # fmt: skip
    for name, data in (("example", EX_KLINE), ("sim", SIM_KLINE)):
        topic = f"{str(data['s']).lower()}@kline_1m"
        add(f"kline ({name})", topic, data, plain_parsers.parse_kline, wm.kline_frame_parser(topic))
    for name, data in (("example", EX_AVG), ("sim", SIM_AVG)):
        topic = f"{str(data['s']).lower()}@avgPrice"
        add(
            f"avgPrice ({name})",
            topic,
            data,
            plain_parsers.parse_avg_price,
            wm.avg_price_frame_parser(topic),
        )
    for name, data in (("perpetual", EX_MARK), ("delivery", EX_MARK_DELIVERY)):
        topic = "btcusdt@markPrice@1s"
        add(f"markPriceUpdate ({name})", topic, data, plain_parsers.parse_mark_price,
            wm.mark_price_frame_parser(topic), mark_price_decimal_r(topic))  # fmt: skip
    add("forceOrder (example)", "btcusdt@forceOrder", EX_FORCE, plain_parsers.parse_force_order,
        wm.force_order_frame_parser("btcusdt@forceOrder"))  # fmt: skip
    spot = [("example, 1+1", EX_PARTIAL, "bnbbtc", "BNBBTC")] + [
        (f"sim, {n}+{n}", _sim_partial(n), "btcusdt", "BTCUSDT") for n in (5, 10, 20)
    ]
    for name, data, sym, symbol in spot:
        topic = f"{sym}@depth20@100ms"
        add(f"Spot partial depth ({name})", topic, data, plain_parsers.partial_depth_parser(symbol),
            wm.partial_depth_frame_parser(topic, symbol), partial_decimals(symbol))  # fmt: skip
    usdm = [("example, 1+1", EX_USDM_PARTIAL)] + [
        (f"sim, {n}+{n}", _sim_usdm_partial(n)) for n in (5, 10, 20)
    ]
    for name, data in usdm:
        topic = "btcusdt@depth20@100ms"
        add(f"USD-M partial depth ({name})", topic, data, plain_parsers.parse_futures_partial_depth,
            wm.futures_partial_depth_frame_parser(topic), futures_partial_decimals)  # fmt: skip
    return out


def _alternating(fns: list[Callable[[], Any]], number: int, repeat: int) -> list[float]:
    """Best time of each, all timed in turn in every round (a slow spell hits all)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timeit.timeit(fn, number=number))
    return best


def run(number: int, repeat: int, plain_parsers: ModuleType = p) -> None:
    print(
        f"  typed parse_frame of the remaining Binance market feeds (wire_market), best of "
        f"{repeat} x {number:,}, alternated; pack_levels: {pack_levels.__module__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  {'feed':38s} {'dict µs':>8s} {'typed µs':>9s} {'ratio':>6s} {'alt µs':>7s}"
        f" {'alt ratio':>9s}"
    )
    for name, raw, plain, fast, alt in cases(plain_parsers):
        want = plain(raw)
        assert fast(raw) == want, (name, fast(raw), want)
        assert alt(raw) == want, (name, alt(raw), want)
        timed: list[Callable[[], Any]] = [partial(plain, raw), partial(fast, raw)]
        if alt is not fast:
            timed.append(partial(alt, raw))
        times = _alternating(timed, number, repeat)
        t_alt = ""
        if alt is not fast:
            t_alt = f"{times[2] / number * 1e6:7.2f} {times[0] / times[2]:9.2f}"
        print(
            f"  {name:38s} {times[0] / number * 1e6:8.2f} {times[1] / number * 1e6:9.2f}"
            f" {times[0] / times[1]:6.2f} {t_alt}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--dict-from",
        metavar="REV",
        help="time the dict path with binance/parsers.py of this git revision (a 'before')",
    )
    args = parser.parse_args()
    print(f"msgspec {msgspec.__version__}, orjson {orjson.__version__}")
    plain = p if args.dict_from is None else parsers_of(args.dict_from)
    print(f"  dict path: binance/parsers.py of {args.dict_from or 'this tree'}")
    run(args.number, args.repeat, plain)


def parsers_of(revision: str) -> ModuleType:
    """``rxconnector/exchanges/binance/parsers.py`` as it was at ``revision`` (git)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{revision}:rxconnector/exchanges/binance/parsers.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = ModuleType(f"parsers_at_{revision}")
    module.__dict__["__name__"] = module.__name__
    exec(compile(source, f"<parsers.py at {revision}>", "exec"), module.__dict__)
    return module


if __name__ == "__main__":
    main()
