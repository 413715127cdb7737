"""Hot-path cost of the venue parsers: microseconds per documented payload.

Run: ``.venv/bin/python benchmarks/bench_parsers.py`` (no network; uses the documented
examples in tests/fixtures/examples.json). Prints one line per parser, best of 5 runs.
The numbers are what one market-data frame costs between routing and ``on_next``.
"""

from __future__ import annotations

import functools
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rxconnector.exchanges.binance import parsers as bp
from rxconnector.exchanges.bybit import parsers as yp

EXAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "tests" / "fixtures" / "examples.json").read_text()
)


def cases() -> list[tuple[str, Callable[[Any, float], Any], Any]]:
    ticker_merger = yp.BybitTickerMerger()
    book = yp.BybitBookMerger()
    book.apply(EXAMPLES["bybit.v5.ws.orderbook.snapshot"], 0.0, 50)
    delta_as_delta = EXAMPLES["bybit.v5.ws.orderbook.delta"]
    return [
        ("binance ticker", bp.parse_ticker, EXAMPLES["binance.spot.ws.ticker"]),
        ("binance miniTicker", bp.parse_mini_ticker, EXAMPLES["binance.spot.ws.miniTicker"]),
        ("binance bookTicker", bp.parse_book_ticker, EXAMPLES["binance.spot.ws.bookTicker"]),
        ("binance trade", bp.parse_trade, EXAMPLES["binance.spot.ws.trade"]),
        ("binance aggTrade", bp.parse_agg_trade, EXAMPLES["binance.spot.ws.aggTrade"]),
        ("binance kline", bp.parse_kline, EXAMPLES["binance.spot.ws.kline"]),
        ("binance depthUpdate", bp.parse_depth_update, EXAMPLES["binance.spot.ws.depthUpdate"]),
        (
            "binance partial depth",
            bp.partial_depth_parser("BNBBTC"),
            EXAMPLES["binance.spot.ws.partialDepth"],
        ),
        ("binance markPrice", bp.parse_mark_price, EXAMPLES["binance.usdm.ws.markPriceUpdate"]),
        (
            "bybit ticker (linear snapshot)",
            yp.ticker_parser(ticker_merger),
            EXAMPLES["bybit.v5.ws.tickers.linear_perpetual"],
        ),
        ("bybit publicTrade (1 trade)", yp.parse_trades, EXAMPLES["bybit.v5.ws.publicTrade"]),
        ("bybit orderbook delta → DepthUpdate", yp.parse_depth, delta_as_delta),
        ("bybit orderbook delta → OrderBook(50)", book.parser(50), delta_as_delta),
        ("bybit kline", yp.kline_parser("BTCUSDT"), EXAMPLES["bybit.v5.ws.kline"]),
    ]


def main() -> None:
    width = max(len(name) for name, _, _ in cases())
    for name, parse, payload in cases():
        number = 20_000
        run = functools.partial(parse, payload, 1.0)
        best = min(timeit.repeat(run, number=number, repeat=5))
        print(f"{name:<{width}}  {best / number * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
