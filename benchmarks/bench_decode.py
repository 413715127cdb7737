"""One-pass typed decoding (msgspec Structs) against today's orjson + dict parsing.

Run::

    .venv/bin/python benchmarks/bench_decode.py            # best of 7 x 20,000 per feed
    .venv/bin/python benchmarks/bench_decode.py --number 5000 --repeat 5   # quicker

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

The same comparison runs on every other Binance market feed (aggTrade, 24hrTicker,
kline, USD-M markPriceUpdate, Spot partial depth ``depth20``) and on Bybit v5
``publicTrade`` and spot ``tickers`` snapshots, with the payloads of the reference
examples: Structs of the fields the dict parser reads, the same finite-number check on
every number it reads, the same model construction. A perpetual's markPriceUpdate
decodes typed; a delivery contract's (``r`` empty, ``T`` 0) is no ``Decimal`` for the
schema, so it falls back to the dict parser after the failed decode (both measured).
``ratio`` is today's time over msgspec's, the two timed alternately in each round
(above 1: msgspec faster).

Both must produce equal models (asserted). The library decodes trade, aggTrade and
bookTicker frames this way (``rxconnector/exchanges/binance/wire.py``), and every other
Binance market feed with its own schemas (``binance/wire_market.py``, measured by the
last part below); the public ``diff_depth`` feed stays on orjson (see
benchmarks/RESULTS.md, "Hot path (issue #12): trades and the Rx edge").

Last, the order book's own reader (``wire.depth_frame_parser``: the frame decoded in one
pass with ids typed and the level arrays kept as raw text, then packed for the book by
``wire_levels.pack_levels``, no ``DepthUpdate``): its decoder alone, the packing of both
sides, and the whole reader, against today's ``orjson.loads`` + ``parse_depth_update``.

Then the library's own typed parsers of the remaining market feeds (24hrTicker,
miniTicker, kline, avgPrice, partial depth, markPriceUpdate, forceOrder:
``binance/wire_market.py``) against the dict path, on reference and simulator-shaped
frames (:mod:`bench_decode_market`, which also runs alone).
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

import bench_decode_market  # the remaining market feeds, the library's typed parsers

from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, model_builder
from rxconnector.exchanges.binance.parsers import (
    parse_agg_trade,
    parse_book_ticker,
    parse_depth_update,
    parse_kline,
    parse_mark_price,
    parse_ticker,
    parse_trade,
    partial_depth_parser,
)
from rxconnector.exchanges.binance.wire import DepthUpdateData, depth_frame_parser
from rxconnector.exchanges.bybit.parsers import (
    BybitTickerMerger,
    bybit_trade_id,
    parse_trades,
    ticker_parser,
)
from rxconnector.exchanges.wire_levels import pack_levels
from rxconnector.models import (
    BookTicker,
    DepthUpdate,
    Kline,
    MarkPrice,
    OrderBook,
    Side,
    Ticker,
    Trade,
)

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


# ------------------------------------------------------------------ the remaining feeds
#
# Payloads of /work/shared/reference/examples.json (``binance.spot.ws.*``,
# ``binance.usdm.ws.markPriceUpdate``, ``bybit.v5.ws.*``), wrapped as the connection
# receives them. Partial depth has the example's shape with 20 levels a side (the
# example holds one), as a ``depth20`` frame does.

AGG_TRADE = (
    b'{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1672515782136,"s":"BNBBTC",'
    b'"a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}}'
)
TICKER = (
    b'{"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC",'
    b'"p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10",'
    b'"b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","l":"0.0010",'
    b'"v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}}'
)
KLINE = (
    b'{"stream":"bnbbtc@kline_1m","data":{"e":"kline","E":1672515782136,"s":"BNBBTC",'
    b'"k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,'
    b'"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,'
    b'"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}}'
)
MARK_PRICE = (
    b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,'
    b'"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265",'
    b'"r":"0.00038167","T":1562306400000}}'
)
#: A delivery contract's mark price: no funding (``r`` empty, ``T`` 0), which the
#: typed schema refuses, so it takes the fallback (the dict parser) after the failed try.
MARK_PRICE_DELIVERY = MARK_PRICE.replace(b'"0.00038167"', b'""').replace(
    b'"T":1562306400000', b'"T":0'
)
PARTIAL_DEPTH = orjson.dumps(
    {
        "stream": "bnbbtc@depth20@100ms",
        "data": {
            "lastUpdateId": 160,
            "bids": [[f"{0.0024 - i * 0.0001:.4f}", f"{10 + i}"] for i in range(20)],
            "asks": [[f"{0.0026 + i * 0.0001:.4f}", f"{100 + i}"] for i in range(20)],
        },
    }
)
BYBIT_TRADE = (
    b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{'
    b'"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
    b'"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}'
)
BYBIT_TICKER = (
    b'{"topic":"tickers.BTCUSDT","ts":1673853746003,"type":"snapshot","cs":2588407389,'
    b'"data":{"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99",'
    b'"lowPrice24h":"20575","prevPrice24h":"20704.93","volume24h":"6780.866843",'
    b'"turnover24h":"141946527.22907118","price24hPcnt":"0.0196",'
    b'"usdIndexPrice":"21120.2400136"}}'
)


class AggTradeS(msgspec.Struct, gc=False):
    E: int
    s: str
    a: int
    p: Decimal
    q: Decimal
    f: int
    l: int  # noqa: E741 - the wire's name
    T: int
    m: bool


class TickerS(msgspec.Struct, gc=False):
    """24hrTicker: USD-M has no ``b``/``B``/``a``/``A`` (``None``, as the dict parser)."""

    E: int
    s: str
    c: Decimal
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire's name
    v: Decimal
    q: Decimal
    b: Decimal | None = None
    B: Decimal | None = None
    a: Decimal | None = None
    A: Decimal | None = None


class KlineBarS(msgspec.Struct, gc=False):
    t: int
    T: int
    i: str
    o: Decimal
    c: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire's name
    v: Decimal
    n: int
    x: bool
    q: Decimal


class KlineS(msgspec.Struct, gc=False):
    E: int
    s: str
    k: KlineBarS


class MarkPriceS(msgspec.Struct, gc=False):
    """markPriceUpdate of a perpetual. A delivery contract's empty ``r`` is no
    ``Decimal``: such a frame fails here and is read by the dict parser instead."""

    E: int
    s: str
    p: Decimal
    i: Decimal | None = None
    P: Decimal | None = None
    r: Decimal | None = None
    T: int | None = None


class PartialDepthS(msgspec.Struct, gc=False):
    lastUpdateId: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


class BybitTradeS(msgspec.Struct, gc=False):
    T: int
    s: str
    S: str
    v: Decimal
    p: Decimal
    i: str


class BybitTradesFrame(msgspec.Struct, gc=False):
    topic: str
    ts: int
    data: list[BybitTradeS]


class BybitSpotTickerS(msgspec.Struct, gc=False):
    """Spot tickers (snapshot only; linear/inverse deltas are not modelled here)."""

    symbol: str
    lastPrice: Decimal
    highPrice24h: Decimal
    lowPrice24h: Decimal
    prevPrice24h: Decimal
    volume24h: Decimal
    turnover24h: Decimal
    bid1Price: Decimal | None = None
    bid1Size: Decimal | None = None
    ask1Price: Decimal | None = None
    ask1Size: Decimal | None = None


class BybitTickerFrame(msgspec.Struct, gc=False):
    topic: str
    ts: int
    data: BybitSpotTickerS
    type: str = "snapshot"


def _frame(name: str, data: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    frame = msgspec.defstruct(name, [("stream", str), ("data", data)], gc=False)
    return msgspec.json.Decoder(frame)


def _opt_check(*numbers: Decimal | None) -> None:
    for n in numbers:
        if n is not None:
            _check(n)


def _best_first(levels: tuple[tuple[Decimal, Decimal], ...], descending: bool) -> Any:
    """As the Binance parsers' ``_best_first``: the best level first."""
    if len(levels) > 1 and (levels[0][0] < levels[-1][0]) == descending:
        return levels[::-1]
    return levels


_Ticker = model_builder(Ticker)
_Kline = model_builder(Kline)
_MarkPrice = model_builder(MarkPrice)
_OrderBook = model_builder(OrderBook)
_BYBIT_SIDES: dict[str, Side] = {"Buy": "buy", "Sell": "sell"}


def remaining_cases() -> list[tuple[str, bytes, Callable[[], Any], Callable[[], Any]]]:
    """(feed, frame, today, msgspec) for the feeds beyond trade/bookTicker/depthUpdate."""
    loads = orjson.loads
    agg = _frame("AggFrame", AggTradeS).decode
    ticker = _frame("TickerFrame", TickerS).decode
    kline = _frame("KlineFrame", KlineS).decode
    mark = _frame("MarkFrame", MarkPriceS).decode
    partial = _frame("PartialFrame", PartialDepthS).decode
    bybit_trades = msgspec.json.Decoder(BybitTradesFrame).decode
    bybit_ticker = msgspec.json.Decoder(BybitTickerFrame).decode

    def ms_agg() -> Trade:
        d = agg(AGG_TRADE).data
        _check(d.p, d.q)
        return _Trade(d.s, d.a, d.p, d.q, "sell" if d.m else "buy", d.T, d.E, 0.0, d.f, d.l)

    def ms_ticker() -> Ticker:
        d = ticker(TICKER).data
        _check(d.c, d.o, d.h, d.l, d.v, d.q)
        _opt_check(d.b, d.B, d.a, d.A)
        return _Ticker(d.s, d.c, d.b, d.B, d.a, d.A, d.o, d.h, d.l, d.v, d.q, d.E, 0.0)

    def ms_kline() -> Kline:
        d = kline(KLINE).data
        k = d.k
        _check(k.o, k.h, k.l, k.c, k.v, k.q)
        return _Kline(d.s, k.i, k.t, k.T, k.o, k.h, k.l, k.c, k.v, k.q, k.n, k.x, d.E, 0.0)

    def ms_mark(frame: bytes) -> MarkPrice:
        try:
            d = mark(frame).data
        except msgspec.ValidationError:  # "" for "no funding": the dict parser reads it
            return parse_mark_price(loads(frame)["data"], 0.0)
        _check(d.p)
        _opt_check(d.i, d.P, d.r)
        t = d.T
        return _MarkPrice(d.s, d.p, d.i, d.P, d.r, t or None, d.E, 0.0)

    def ms_partial() -> OrderBook:
        d = partial(PARTIAL_DEPTH).data
        bids, asks = tuple(d.bids), tuple(d.asks)
        for level in bids:
            _check(*level)
        for level in asks:
            _check(*level)
        return _OrderBook(
            "BNBBTC", _best_first(bids, True), _best_first(asks, False), d.lastUpdateId, 0, 0.0
        )

    def ms_bybit_trades() -> list[Trade]:
        m = bybit_trades(BYBIT_TRADE)
        out = []
        for t in m.data:
            _check(t.p, t.v)
            side = _BYBIT_SIDES[t.S]
            out.append(_Trade(t.s, bybit_trade_id(t.i), t.p, t.v, side, t.T, m.ts, 0.0))
        return out

    merger = BybitTickerMerger()
    typed_last: dict[str, BybitSpotTickerS] = {}
    parse_bybit_ticker = ticker_parser(merger)

    def ms_bybit_ticker() -> Ticker:
        m = bybit_ticker(BYBIT_TICKER)
        if m.type == "delta":
            raise NotImplementedError("deltas: not modelled in this benchmark")
        t = typed_last[m.data.symbol] = m.data  # the snapshot replaces, as the merger's
        _check(t.lastPrice, t.prevPrice24h, t.highPrice24h, t.lowPrice24h)
        _check(t.volume24h, t.turnover24h)
        _opt_check(t.bid1Price, t.bid1Size, t.ask1Price, t.ask1Size)
        return _Ticker(
            t.symbol, t.lastPrice, t.bid1Price, t.bid1Size, t.ask1Price, t.ask1Size,
            t.prevPrice24h, t.highPrice24h, t.lowPrice24h, t.volume24h, t.turnover24h, m.ts, 0.0,
        )  # fmt: skip

    spot_partial = partial_depth_parser("BNBBTC")
    return [
        ("aggTrade", AGG_TRADE, lambda: parse_agg_trade(loads(AGG_TRADE)["data"], 0.0), ms_agg),
        ("24hrTicker", TICKER, lambda: parse_ticker(loads(TICKER)["data"], 0.0), ms_ticker),
        ("kline", KLINE, lambda: parse_kline(loads(KLINE)["data"], 0.0), ms_kline),
        ("markPriceUpdate (perpetual)", MARK_PRICE,
         lambda: parse_mark_price(loads(MARK_PRICE)["data"], 0.0), lambda: ms_mark(MARK_PRICE)),
        ("markPriceUpdate (delivery)", MARK_PRICE_DELIVERY,
         lambda: parse_mark_price(loads(MARK_PRICE_DELIVERY)["data"], 0.0),
         lambda: ms_mark(MARK_PRICE_DELIVERY)),
        ("depth20 (partial, 20+20)", PARTIAL_DEPTH,
         lambda: spot_partial(loads(PARTIAL_DEPTH)["data"], 0.0), ms_partial),
        ("bybit publicTrade (1 trade)", BYBIT_TRADE,
         lambda: parse_trades(loads(BYBIT_TRADE), 0.0), ms_bybit_trades),
        ("bybit tickers (spot snapshot)", BYBIT_TICKER,
         lambda: parse_bybit_ticker(loads(BYBIT_TICKER), 0.0), ms_bybit_ticker),
    ]  # fmt: skip


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

    cases: list[tuple[str, bytes, Callable[[], Any], Callable[[], Any]]] = [
        ("trade", TRADE, lambda: parse_trade(loads(TRADE)["data"], 0.0), ms_trade),
        ("bookTicker", BOOK_TICKER,
         lambda: parse_book_ticker(loads(BOOK_TICKER)["data"], 0.0), ms_ticker),
        ("depthUpdate 12+13 levels", DEPTH,
         lambda: parse_depth_update(loads(DEPTH)["data"], 0.0), ms_depth),
        *remaining_cases(),
    ]  # fmt: skip
    print(
        f"msgspec {msgspec.__version__}, orjson {orjson.__version__}, best of {args.repeat} x "
        f"{args.number:,}, load average {os.getloadavg()[0]:.2f}"
    )
    two_pass: dict[str, Callable[[], Any]] = {
        "trade": two_pass_trade,
        "bookTicker": two_pass_ticker,
    }
    print(
        f"  {'feed':30s} {'orjson+parse µs':>16s} {'msgspec µs':>11s} {'ratio':>6s}"
        f" {'orjson.loads µs':>16s} {'msgspec 2-pass µs':>18s}"
    )
    for name, raw, today, typed in cases:
        want = today()
        got = typed()
        assert got == want, (got, want)
        second = two_pass.get(name)
        t_two = "-"
        if second is not None:
            assert second() == want
            best = min(timeit.repeat(second, number=args.number, repeat=args.repeat))
            t_two = f"{best / args.number * 1e6:.2f}"
        t_today, t_typed = _best_interleaved(today, typed, args.number, args.repeat)
        t_loads = min(
            timeit.repeat(lambda raw=raw: loads(raw), number=args.number, repeat=args.repeat)
        )
        print(
            f"  {name:30s} {t_today / args.number * 1e6:16.2f} "
            f"{t_typed / args.number * 1e6:11.2f} {t_today / t_typed:6.2f}"
            f" {t_loads / args.number * 1e6:16.2f} {t_two:>18s}"
        )
    book_reader(args.number, args.repeat)
    bench_decode_market.run(args.number, args.repeat)


def _best_interleaved(
    first: Callable[[], Any], second: Callable[[], Any], number: int, repeat: int
) -> tuple[float, float]:
    """Best time of each over ``repeat`` rounds, the two timed alternately in every
    round: on a loaded machine, a slow spell then hits both, not only one (the ratio
    of two back-to-back ``timeit.repeat`` runs moved by ±40 % under load)."""
    best_first = best_second = float("inf")
    for _ in range(repeat):
        best_first = min(best_first, timeit.timeit(first, number=number))
        best_second = min(best_second, timeit.timeit(second, number=number))
    return best_first, best_second


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
