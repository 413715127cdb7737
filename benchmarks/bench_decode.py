"""One-pass typed decoding (msgspec Structs) against today's orjson + dict parsing.

Run::

    .venv/bin/python benchmarks/bench_decode.py            # best of 7 x 20,000 per feed

For each feed, a Binance combined-stream frame (``{"stream": ..., "data": {...}}``, the
documented shapes) is taken from bytes to the model the connector emits:

* **today**: ``orjson.loads`` of the frame, ``["data"]``, the venue parser (``Decimal``
  per number through ``to_decimal``: finite, exponent within 1e±50), the attrs model;
* **msgspec**: one ``msgspec.json.Decoder`` pass into a Struct for the wrapper with the
  payload Struct inside (numbers decoded to ``Decimal`` in C), then the same finite-
  number check and the same model built from the Struct's fields;
* **msgspec 2-pass** (trade, bookTicker): the wrapper first with ``data`` kept as
  ``msgspec.Raw``, then the payload's own decoder: what a hub that picks the decoder
  from the stream name would pay.

Both must produce equal models (asserted). The library decodes trade, aggTrade and
bookTicker frames this way since (``rxconnector/exchanges/binance/wire.py``); the public
``diff_depth`` feed stays on orjson (see benchmarks/RESULTS.md, "Hot path (issue #12):
trades and the Rx edge").

Last, the order book's own reader (``wire.depth_frame_parser``: the frame decoded in one
pass with ids typed and the level arrays kept as raw text, then packed for the book by
``wire_levels.pack_levels``, no ``DepthUpdate``): its decoder alone, the packing of both
sides, and the whole reader, against today's ``orjson.loads`` + ``parse_depth_update``.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, model_builder
from rxconnector.exchanges.binance.parsers import (
    parse_book_ticker,
    parse_depth_update,
    parse_trade,
)
from rxconnector.exchanges.binance.wire import DepthUpdateData, depth_frame_parser
from rxconnector.exchanges.wire_levels import pack_levels
from rxconnector.models import BookTicker, DepthUpdate, Trade

TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000123,"s":"BTCUSDT",'
    b'"t":12345,"p":"60000.01000000","q":"0.01200000","T":1700000000120,"m":true,"M":true}}'
)
BOOK_TICKER = (
    b'{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT",'
    b'"b":"60000.01000000","B":"31.21000000","a":"60000.02000000","A":"40.66000000"}}'
)
DEPTH = orjson.dumps(
    {
        "stream": "btcusdt@depth@100ms",
        "data": {
            "e": "depthUpdate",
            "E": 1700000000123,
            "s": "BTCUSDT",
            "U": 157,
            "u": 160,
            "b": [[f"{60000 - i * 0.01:.2f}", f"{0.5 + i:.8f}"] for i in range(12)],
            "a": [
                [f"{60000.01 + i * 0.01:.2f}", "0" if i % 5 == 0 else "1.25000000"]
                for i in range(13)
            ],
        },
    }
)


class TradeS(msgspec.Struct):
    e: str
    E: int
    s: str
    t: int
    p: Decimal
    q: Decimal
    T: int
    m: bool


class TradeFrame(msgspec.Struct):
    stream: str
    data: TradeS


class BookTickerS(msgspec.Struct):
    u: int
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal


class BookTickerFrame(msgspec.Struct):
    stream: str
    data: BookTickerS


class DepthS(msgspec.Struct):
    e: str
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[Decimal, Decimal]]
    a: list[tuple[Decimal, Decimal]]


class DepthFrame(msgspec.Struct):
    stream: str
    data: DepthS


class RawFrame(msgspec.Struct):
    """The wrapper only: what a hub that does not know the topic yet could decode first,
    keeping ``data`` as raw bytes for a per-topic decoder (the two-pass design)."""

    stream: str
    data: msgspec.Raw


_finite = Decimal.is_finite
_adjusted = Decimal.adjusted
_LIMIT = MAX_DECIMAL_EXPONENT


def _check(*numbers: Decimal) -> None:
    for n in numbers:
        if not (_finite(n) and -_LIMIT <= _adjusted(n) <= _LIMIT):
            raise ValueError(n)


_Trade = model_builder(Trade)
_BookTicker = model_builder(BookTicker)
_Depth = model_builder(DepthUpdate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    loads = orjson.loads
    trade_dec = msgspec.json.Decoder(TradeFrame)
    ticker_dec = msgspec.json.Decoder(BookTickerFrame)
    depth_dec = msgspec.json.Decoder(DepthFrame)
    raw_dec = msgspec.json.Decoder(RawFrame)
    trade_data_dec = msgspec.json.Decoder(TradeS)
    ticker_data_dec = msgspec.json.Decoder(BookTickerS)

    def two_pass_trade() -> Trade:
        d = trade_data_dec.decode(raw_dec.decode(TRADE).data)
        _check(d.p, d.q)
        return _Trade(d.s, d.t, d.p, d.q, "sell" if d.m else "buy", d.T, d.E, 0.0)

    def two_pass_ticker() -> BookTicker:
        d = ticker_data_dec.decode(raw_dec.decode(BOOK_TICKER).data)
        _check(d.b, d.B, d.a, d.A)
        return _BookTicker(d.s, d.b, d.B, d.a, d.A, d.u, 0, 0.0)

    def ms_trade() -> Trade:
        d = trade_dec.decode(TRADE).data
        _check(d.p, d.q)
        return _Trade(d.s, d.t, d.p, d.q, "sell" if d.m else "buy", d.T, d.E, 0.0)

    def ms_ticker() -> BookTicker:
        d = ticker_dec.decode(BOOK_TICKER).data
        _check(d.b, d.B, d.a, d.A)
        return _BookTicker(d.s, d.b, d.B, d.a, d.A, d.u, 0, 0.0)

    def ms_depth() -> DepthUpdate:
        d = depth_dec.decode(DEPTH).data
        bids = tuple(d.b)
        asks = tuple(d.a)
        for level in bids:
            _check(*level)
        for level in asks:
            _check(*level)
        return _Depth(d.s, d.U, d.u, bids, asks, d.E, 0.0)

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("trade", lambda: parse_trade(loads(TRADE)["data"], 0.0), ms_trade),
        ("bookTicker", lambda: parse_book_ticker(loads(BOOK_TICKER)["data"], 0.0), ms_ticker),
        (
            "depthUpdate 12+13 levels",
            lambda: parse_depth_update(loads(DEPTH)["data"], 0.0),
            ms_depth,
        ),
    ]
    print(
        f"msgspec {msgspec.__version__}, orjson {orjson.__version__}, best of {args.repeat} x "
        f"{args.number:,}, load average {os.getloadavg()[0]:.2f}"
    )
    two_pass: dict[str, Callable[[], Any]] = {
        "trade": two_pass_trade,
        "bookTicker": two_pass_ticker,
    }
    print(
        f"  {'feed':26s} {'orjson+parse µs':>16s} {'msgspec µs':>11s} {'decode only':>12s}"
        f" {'msgspec 2-pass µs':>18s}"
    )
    for name, today, typed in cases:
        want = today()
        got = typed()
        assert got == want, (got, want)
        second = two_pass.get(name)
        t_two = "-"
        if second is not None:
            assert second() == want
            best = min(timeit.repeat(second, number=args.number, repeat=args.repeat))
            t_two = f"{best / args.number * 1e6:.2f}"
        raw = {"trade": TRADE, "bookTicker": BOOK_TICKER}.get(name, DEPTH)
        t_today = min(timeit.repeat(today, number=args.number, repeat=args.repeat))
        t_typed = min(timeit.repeat(typed, number=args.number, repeat=args.repeat))
        t_loads = min(
            timeit.repeat(lambda raw=raw: loads(raw), number=args.number, repeat=args.repeat)
        )
        print(
            f"  {name:26s} {t_today / args.number * 1e6:16.2f} "
            f"{t_typed / args.number * 1e6:11.2f} {t_loads / args.number * 1e6:12.2f}"
            f" {t_two:>18s}"
        )
    book_reader(args.number, args.repeat)


def book_reader(number: int, repeat: int) -> None:
    """The order book's one-pass reader against the dict path, on the same frame."""
    topic = "btcusdt@depth@100ms"
    read = depth_frame_parser(topic)
    decode = msgspec.json.Decoder(
        msgspec.defstruct("Frame", [("stream", str), ("data", DepthUpdateData)])
    ).decode
    data = decode(DEPTH).data
    bids, asks = memoryview(data.b), memoryview(data.a)
    event, want = read(DEPTH, 0.0), parse_depth_update(orjson.loads(DEPTH)["data"], 0.0)
    assert (event.first_update_id, event.final_update_id) == (want.first_update_id, 160)
    packed_type = type(pack_levels(bids)).__name__
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("today: orjson.loads + parse_depth_update", lambda: parse_depth_update(
            orjson.loads(DEPTH)["data"], 0.0)),
        ("msgspec decode (ids typed, levels raw)", lambda: decode(DEPTH)),
        (f"pack_levels of both sides ({packed_type})", lambda: (pack_levels(bids),
                                                              pack_levels(asks))),
        ("depth_frame_parser (all of it)", lambda: read(DEPTH, 0.0)),
    ]  # fmt: skip
    print(f"  order book reader, depthUpdate 12+13 levels (pack_levels: {pack_levels.__module__})")
    for name, fn in cases:
        best = min(timeit.repeat(fn, number=number, repeat=repeat))
        print(f"    {name:52s} {best / number * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
