"""Hostile account frames: each is one bounded ParseError at most, and the stream lives.

The account feeds keep the dict path (typed decoding measured slower on every account
event type: benchmarks/RESULTS.md, "Typed decoding on account feeds (seventh
session)"), so this pins the dict path against what a broken or hostile venue can send,
on all three venues:

* in the session (Binance Spot, Binance USD-M, Bybit): every field a parser reads
  deleted or replaced by another JSON type, a non-finite or absurd number, a 1 MB
  string or nested garbage - the frame gives its models (a value the parser accepts) or
  exactly one ParseError whose message stays short, never another exception, and the
  next valid frame still gives its models;
* in the running stream (``AccountStreams`` on a scripted exchange, Spot and Bybit): raw
  frames that are not JSON (non-UTF-8, ``NaN`` / ``Infinity`` tokens, ``1e999``, nesting
  deeper than the decoder allows) or repeat keys - one report each, then the feeds go on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from reactivex.testing import TestScheduler

from rxconnector._scheduling import now_ms
from rxconnector.config import ConnectionConfig, Secret
from rxconnector.errors import ParseError
from rxconnector.exchanges.binance.futures_user_stream import BinanceFuturesUserStream
from rxconnector.exchanges.binance.user_stream import BinanceUserStream
from rxconnector.exchanges.bybit.private import BybitPrivateStream
from rxconnector.models import Execution, OrderUpdate
from rxconnector.streams.accounts.account_streams import AccountStreams

from .helpers import API_KEY, SECRET, RecordingOutput
from .scripted import ScriptedBinance, ScriptedBybit

#: A ParseError's message: the reason plus an excerpt of at most 200 characters.
MAX_MESSAGE = 600
HUGE = "x" * 1_000_000


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE: list[tuple[str, Any]] = [
    ("list", [1, 2]),
    ("object", {"a": 1}),
    ("number", 5),
    ("float", 1.5),
    ("true", True),
    ("null", None),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
    ("1e999", "1e999"),
    ("1e-999", "1e-999"),
    ("empty", ""),
    ("huge string", HUGE),
    ("nested garbage", nested(300)),
]
DELETE = object()

SPOT_FILL: dict[str, Any] = {
    "e": "executionReport", "E": 1700000000123, "s": "BTCUSDT", "c": "rx-1", "S": "BUY",
    "o": "LIMIT", "f": "GTC", "q": "0.01", "p": "30000", "C": "", "x": "TRADE",
    "X": "FILLED", "i": 41, "l": "0.01", "z": "0.01", "L": "30000", "n": "0.00001",
    "N": "BTC", "T": 1700000000123, "t": 9001, "m": False, "Z": "300",
}  # fmt: skip
SPOT_POSITION: dict[str, Any] = {
    "e": "outboundAccountPosition", "E": 1700000000123, "u": 1,
    "B": [{"a": "BTC", "f": "1.01", "l": "0"}],
}  # fmt: skip
SPOT_DELTA: dict[str, Any] = {
    "e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100", "T": 1573200697068,
}  # fmt: skip
USDM_FILL: dict[str, Any] = {
    "e": "ORDER_TRADE_UPDATE", "E": 1700000000123, "T": 1700000000123, "o": {
        "s": "BTCUSDT", "c": "rx-2", "S": "SELL", "o": "LIMIT", "q": "0.010", "p": "30000",
        "ap": "30000", "x": "TRADE", "X": "FILLED", "i": 8886774, "l": "0.010",
        "z": "0.010", "L": "30000", "T": 1700000000123, "t": 555, "m": True, "N": "USDT",
        "n": "0.12", "ps": "BOTH"},
}  # fmt: skip
USDM_ACCOUNT: dict[str, Any] = {
    "e": "ACCOUNT_UPDATE", "E": 1700000000123, "T": 1700000000123, "a": {
        "m": "ORDER", "B": [{"a": "USDT", "wb": "9999.88", "cw": "9999.88"}],
        "P": [{"s": "BTCUSDT", "pa": "-0.010", "ep": "30000", "up": "-0.05", "mt": "cross",
               "ps": "BOTH"}]},
}  # fmt: skip
BYBIT_ORDER = {"symbol": "BTCUSDT", "orderId": "41", "orderLinkId": "rx-3", "side": "Buy",
               "orderType": "Limit", "orderStatus": "PartiallyFilled", "price": "30000",
               "qty": "0.02", "cumExecQty": "0.01", "avgPrice": "30000",
               "cumExecFee": "0.165", "feeCurrency": "USDT"}  # fmt: skip
BYBIT_FILL = {"symbol": "BTCUSDT", "orderId": "41", "orderLinkId": "rx-3", "execId": "9001",
              "side": "Buy", "execPrice": "30000", "execQty": "0.01", "execFee": "0.165",
              "execType": "Trade", "feeCurrency": "USDT", "isMaker": True,
              "execTime": "1700000000123"}  # fmt: skip
BYBIT_COIN = {"coin": "USDT", "walletBalance": "10000", "locked": "0", "borrowAmount": "0",
              "equity": "10000", "accruedInterest": "0"}  # fmt: skip
BYBIT_POSITION = {"symbol": "BTCUSDT", "side": "Buy", "size": "0.01", "entryPrice": "30000",
                  "markPrice": "30000.5", "unrealisedPnl": "0.005", "leverage": "10",
                  "liqPrice": "27150", "tradeMode": 0, "positionIdx": 0}  # fmt: skip


def spot(event: dict[str, Any]) -> dict[str, Any]:
    return {"subscriptionId": 0, "event": event}


def bybit(topic: str, row: dict[str, Any], *, wallet: bool = False) -> dict[str, Any]:
    data = [{"coin": [row]}] if wallet else [row]
    return {"id": "1", "topic": topic, "creationTime": 1700000000123, "data": data}


#: (name, protocol, the valid frame, a function giving the dict whose keys are mangled)
Target = tuple[str, Any, dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]
TARGETS: list[Target] = [
    ("spot executionReport", BinanceUserStream(API_KEY, Secret(SECRET), lambda: 0),
     spot(SPOT_FILL), lambda f: f["event"]),
    ("spot outboundAccountPosition", BinanceUserStream(API_KEY, Secret(SECRET), lambda: 0),
     spot(SPOT_POSITION), lambda f: f["event"]["B"][0]),
    ("spot balanceUpdate", BinanceUserStream(API_KEY, Secret(SECRET), lambda: 0),
     spot(SPOT_DELTA), lambda f: f["event"]),
    ("usdm ORDER_TRADE_UPDATE", BinanceFuturesUserStream(), USDM_FILL, lambda f: f["o"]),
    ("usdm ORDER_TRADE_UPDATE top", BinanceFuturesUserStream(), USDM_FILL, lambda f: f),
    ("usdm ACCOUNT_UPDATE balance", BinanceFuturesUserStream(), USDM_ACCOUNT,
     lambda f: f["a"]["B"][0]),
    ("usdm ACCOUNT_UPDATE position", BinanceFuturesUserStream(), USDM_ACCOUNT,
     lambda f: f["a"]["P"][0]),
    ("bybit order", BybitPrivateStream(API_KEY, Secret(SECRET), lambda: 0),
     bybit("order", BYBIT_ORDER), lambda f: f["data"][0]),
    ("bybit execution", BybitPrivateStream(API_KEY, Secret(SECRET), lambda: 0),
     bybit("execution", BYBIT_FILL), lambda f: f["data"][0]),
    ("bybit wallet", BybitPrivateStream(API_KEY, Secret(SECRET), lambda: 0),
     bybit("wallet", BYBIT_COIN, wallet=True), lambda f: f["data"][0]["coin"][0]),
    ("bybit position", BybitPrivateStream(API_KEY, Secret(SECRET), lambda: 0),
     bybit("position", BYBIT_POSITION), lambda f: f["data"][0]),
    ("bybit frame", BybitPrivateStream(API_KEY, Secret(SECRET), lambda: 0),
     bybit("order", BYBIT_ORDER), lambda f: f),
]  # fmt: skip


def cases() -> list[Any]:
    out = []
    for name, protocol, frame, pick in TARGETS:
        for key in list(pick(copy.deepcopy(frame))):
            for label, value in [("deleted", DELETE), *HOSTILE]:
                case_id = f"{name}-{key}-{label}"
                out.append(pytest.param(protocol, frame, pick, key, value, id=case_id))
    return out


def models_of(protocol: Any, message: Any) -> tuple[list[Any], list[Exception]]:
    out = RecordingOutput()
    protocol.new_session().on_message(message, 1.0, out)
    return out.models(), out.reports


@pytest.mark.parametrize(("protocol", "frame", "pick", "key", "value"), cases())
def test_a_mangled_field_is_models_or_one_short_parse_error(
    protocol: Any, frame: dict[str, Any], pick: Any, key: str, value: Any
) -> None:
    message = copy.deepcopy(frame)
    target = pick(message)
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    out = RecordingOutput()
    session = protocol.new_session()
    session.on_message(message, 1.0, out)
    assert len(out.reports) <= 1 and not out.failures
    for error in out.reports:
        assert type(error) is ParseError
        assert len(str(error)) <= MAX_MESSAGE
    valid, reports = RecordingOutput(), len(out.reports)
    session.on_message(copy.deepcopy(frame), 2.0, valid)
    assert valid.models() and not valid.reports, "the session is broken after the frame"
    assert reports == len(out.reports)


def test_a_huge_flag_is_quoted_cut_short() -> None:
    _models, reports = models_of(BinanceFuturesUserStream(), {**USDM_FILL, "o": {
        **USDM_FILL["o"], "m": HUGE}})  # fmt: skip
    assert len(reports) == 1 and len(str(reports[0])) <= MAX_MESSAGE


# --------------------------------------------------------------------------- the stream

CONFIG = ConnectionConfig(
    reconnect_delay=1.0,
    reconnect_max_delay=8.0,
    reconnect_jitter=0.0,
    healthy_after=30.0,
    stale_after=3600.0,
)

RAW_HOSTILE: list[tuple[str, bytes]] = [
    ("non-UTF-8", b'{"subscriptionId":0,"event":{"e":"executionReport","s":"\xff\xfe"}}'),
    ("NaN token", b'{"subscriptionId":0,"event":{"e":"balanceUpdate","d":NaN}}'),
    ("Infinity token", b'{"topic":"wallet","data":[{"coin":[{"walletBalance":Infinity}]}]}'),
    ("1e999", b'{"topic":"order","creationTime":1,"data":[{"price":1e999}]}'),
    ("too deep", b"[" * 5000 + b"]" * 5000),
    ("truncated", b'{"subscriptionId":0,"event":{"e":"executionRep'),
    ("text garbage", "\u0000 not json at all"),  # type: ignore[list-item]
    ("empty", b""),
]


class Stream:
    """``AccountStreams`` on a scripted exchange, collecting orders, fills and errors."""

    def __init__(self, venue: str) -> None:
        self.scheduler = TestScheduler()
        self.errors: list[Exception] = []
        self.models: list[Any] = []
        if venue == "binance":
            self.exchange: Any = ScriptedBinance(self.scheduler)
            protocol: Any = BinanceUserStream(API_KEY, Secret(SECRET), self._clock)
        else:
            self.exchange = ScriptedBybit(self.scheduler)
            protocol = BybitPrivateStream(API_KEY, Secret(SECRET), self._clock)
        self.streams = AccountStreams(
            protocol,
            "ws://fake/private",
            lambda: None,  # type: ignore[arg-type,return-value]
            CONFIG,
            scheduler=self.scheduler,
            connect=self.exchange.connect,
            report_error=self.errors.append,
        )
        self.streams.orders().subscribe(self.models.append)
        self.streams.executions().subscribe(self.models.append)
        self.scheduler.advance_by(0.1)

    def _clock(self) -> int:
        return int(now_ms(self.scheduler))

    def raw(self, frame: bytes | str) -> None:
        conn = self.exchange.live
        conn.observer.on_next((self.exchange.now(), frame))

    def valid(self) -> None:
        if isinstance(self.exchange, ScriptedBinance):
            self.exchange.push(SPOT_FILL)
        else:
            self.exchange.push("order", [BYBIT_ORDER])
            self.exchange.push("execution", [BYBIT_FILL])


@pytest.mark.parametrize("venue", ["binance", "bybit"])
@pytest.mark.parametrize(("name", "frame"), RAW_HOSTILE, ids=[n for n, _f in RAW_HOSTILE])
def test_a_frame_that_is_not_json_is_one_report_and_the_feeds_go_on(
    venue: str, name: str, frame: bytes
) -> None:
    s = Stream(venue)
    s.raw(frame)
    assert len(s.errors) == 1, name
    error = s.errors[0]
    assert type(error) is ParseError and len(str(error)) <= MAX_MESSAGE
    s.valid()
    assert [type(m) for m in s.models] == [OrderUpdate, Execution]
    assert len(s.errors) == 1


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_repeated_keys_read_the_last_value_like_any_frame(venue: str) -> None:
    s = Stream(venue)
    if venue == "binance":
        frame = (b'{"subscriptionId":0,"event":{"e":"listStatus"},'
                 b'"event":{"e":"balanceUpdate","E":1,"a":"BTC","d":"oops","T":1},'
                 b'"event":' + orjson.dumps(SPOT_FILL) + b"}")  # fmt: skip
    else:
        body = orjson.dumps([BYBIT_ORDER])
        frame = b'{"topic":"position","topic":"order","creationTime":1,"data":' + body + b"}"
    s.raw(frame)
    assert not s.errors
    assert OrderUpdate in [type(m) for m in s.models]


NAMES = [("spot executionReport", "s"), ("spot outboundAccountPosition", "a"),
         ("spot balanceUpdate", "a"), ("usdm ORDER_TRADE_UPDATE", "s"),
         ("usdm ACCOUNT_UPDATE balance", "a"), ("usdm ACCOUNT_UPDATE position", "s"),
         ("bybit order", "symbol"), ("bybit execution", "symbol"), ("bybit wallet", "coin"),
         ("bybit position", "symbol")]  # fmt: skip


@pytest.mark.parametrize(("target", "key"), NAMES, ids=[f"{t}-{k}" for t, k in NAMES])
@pytest.mark.parametrize("value", [[1], {"a": 1}, 5, None, True], ids=repr)
def test_a_symbol_or_asset_that_is_no_string_is_refused(target: str, key: str, value: Any) -> None:
    """A symbol or asset keys the account view and every subscriber's maps: one that is
    not a JSON string is a ParseError, not a model (nor a TypeError later, in the view)."""
    _name, protocol, frame, pick = next(t for t in TARGETS if t[0] == target)
    message = copy.deepcopy(frame)
    pick(message)[key] = value
    models, reports = models_of(protocol, message)
    assert not [m for m in models if getattr(m, "symbol", getattr(m, "asset", None)) == value]
    assert len(reports) == 1 and type(reports[0]) is ParseError
    assert "expected a JSON string" in str(reports[0])
