"""Hostile frames for every typed Binance market feed of ``wire_market`` (issue #12).

Each hostile frame - another stream, a repeated ``stream`` key, a missing key, a field
of the wrong type, a number that is NaN, infinite or absurdly large or small (as a
string or as a JSON number), a huge string, nested garbage, invalid UTF-8, a duplicate
key whose last value is bad - is one :class:`ParseError` with a bounded excerpt and a
bounded message, never another exception, and the decoded path (``orjson.loads`` + the
dict parser) refuses it too. The parser keeps working afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges.binance import parsers as bp
from rxconnector.exchanges.binance import wire_market as wm

try:
    from test_binance_wire_market import FEEDS, Feed
except ImportError:  # pragma: no cover - package-style collection
    from .test_binance_wire_market import FEEDS, Feed  # type: ignore[no-redef]


def frame(stream: str, data: Any) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


#: Per feed: where the fields live (``None``: the payload itself), the fields both paths
#: require, the number fields and the integer fields.
SHAPES: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "ticker": (None, ("E", "s", "c", "o", "h", "l", "v", "q"), tuple("cohlvqbBaA"), ("E",)),
    "mini_ticker": (None, ("E", "s", "c", "o", "h", "l", "v", "q"), tuple("cohlvq"), ("E",)),
    "kline": ("k", ("t", "T", "i", "o", "c", "h", "l", "v", "n", "x", "q"), tuple("ochlvq"),
              ("t", "T", "n")),
    "avg_price": (None, ("E", "s", "i", "w", "T"), ("w",), ("E", "T")),
    "mark_price": (None, ("E", "s", "p"), ("p", "i", "P", "r"), ("E", "T")),
    "liquidations": ("o", ("s", "S", "o", "p", "q", "X", "T"), ("p", "q", "ap"), ("T",)),
    "spot depth": (None, ("lastUpdateId", "bids", "asks"), (), ("lastUpdateId",)),
    "usdm depth": (None, ("E", "s", "u", "b", "a"), (), ("E", "u")),
}  # fmt: skip
BAD_NUMBERS = ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "1e999999", "1e-999", "x", "",
               "1" * 100_000, "0E-60"]  # fmt: skip
#: Optional numbers, where ``""`` means "not applicable" (``None``) on both paths.
OPTIONAL_NUMBERS = {("mark_price", "i"), ("mark_price", "P"), ("mark_price", "r"),
                    ("liquidations", "ap")}  # fmt: skip
LEVEL_SIDES = {"spot depth": ("bids", "asks"), "usdm depth": ("b", "a")}


def _with(data: dict[str, Any], where: str | None, key: str, value: Any) -> dict[str, Any]:
    if where is None:
        return {**data, key: value}
    return {**data, where: {**data[where], key: value}}


def _without(data: dict[str, Any], where: str | None, key: str) -> dict[str, Any]:
    if where is None:
        return {k: v for k, v in data.items() if k != key}
    return {**data, where: {k: v for k, v in data[where].items() if k != key}}


def hostile(feed: Feed, data: dict[str, Any]) -> list[tuple[str, bytes]]:
    where, required, numbers, integers = SHAPES[feed.name]
    topic = feed.topic
    good = frame(topic, data)
    cases: list[tuple[str, bytes]] = [
        ("not JSON", b"this is not json"),
        ("empty", b""),
        ("truncated", good[:-7]),
        ("trailing garbage", good + b"garbage"),
        ("not an object", b"[1,2,3]"),
        ("null", b"null"),
        ("no data", orjson.dumps({"stream": topic})),
        ("data not an object", frame(topic, [1, 2])),
        ("data a string", frame(topic, "x")),
        ("data null", frame(topic, None)),
        ("another stream", frame("ethusdt@" + topic.split("@", 1)[1], data)),
        ("another stream of the symbol", frame(topic + "@1s", data)),
        ("stream a number", orjson.dumps({"stream": 5, "data": data})),
        ("a repeated stream key, the last one foreign",
         b'{"stream":"' + topic.encode() + b'","stream":"x@y","data":' + orjson.dumps(data) + b"}"),
        ("a huge foreign stream", frame("x" * 2_000_000, data)),
        ("nested garbage", b'{"stream":"' + topic.encode() + b'","data":' + b"[" * 5000
         + b"]" * 5000 + b"}"),
        ("invalid UTF-8", good.replace(b'"data"', b'"d\xff\xfeta"', 1)),
        ("invalid UTF-8 in a field no parser reads",
         frame(topic, {**data, "zz": "AB"}).replace(b"AB", b"\xff\xfe")),
    ]  # fmt: skip
    for key in required:
        cases.append((f"missing {key}", frame(topic, _without(data, where, key))))
        wrong: list[tuple[str, Any]] = [("a list", [1]), ("an object", {"a": 1}), ("null", None)]
        for name, bad in wrong:
            cases.append((f"{key} {name}", frame(topic, _with(data, where, key, bad))))
    for key in numbers:
        for number in BAD_NUMBERS:
            if number == "" and (feed.name, key) in OPTIONAL_NUMBERS:
                continue  # "" is "not applicable" there (a delivery contract's funding)
            cases.append((f"{key}={number[:12]!r}", frame(topic, _with(data, where, key, number))))
        raw = frame(topic, _with(data, where, key, 123456789))
        cases.append((f"{key} a JSON number 1e999", raw.replace(b"123456789", b"1e999")))
        # duplicate key: the last one counts, for orjson and msgspec alike
        dup = frame(topic, _with(data, where, key, "1.5")).replace(
            b'"' + key.encode() + b'":"1.5"', b'"' + key.encode() + b'":"1.5","' + key.encode()
            + b'":"NaN"'
        )  # fmt: skip
        cases.append((f"{key} duplicated, the last NaN", dup))
    for key in integers:
        cases.append((f"{key} a word", frame(topic, _with(data, where, key, "abc"))))
    for side in LEVEL_SIDES.get(feed.name, ()):
        bad_sides: list[tuple[str, Any]] = [
            ("a string", "30000.01"),
            ("an object", {"12": 1}),
            ("null", None),
            ("a level of one entry", [["30000.01"]]),
            ("a level of three entries", [["30000.01", "1", "2"]]),
            ("a level that is a string", ["30000.01"]),
            ("a level that is null", [None]),
            ("a NaN quantity", [["30000.01", "NaN"]]),
            ("an infinite price", [["Infinity", "1"]]),
            ("an absurd exponent", [["1e999999", "1"]]),
            ("a tiny exponent", [["30000", "1e-99"]]),
            ("a price that is a list", [[["30000"], "1"]]),
            ("a price that is no number", [["abc", "1"]]),
        ]
        for name, bad in bad_sides:
            cases.append((f"{side} {name}", frame(topic, {**data, side: bad})))
    if feed.name == "kline":
        cases.append(("x a string", frame(topic, _with(data, "k", "x", "false"))))
        cases.append(("x a number", frame(topic, _with(data, "k", "x", 0))))
    if feed.name == "liquidations":
        for bad_side in ("buy", "LONG", "", "BUY "):
            cases.append((f"S={bad_side!r}", frame(topic, _with(data, "o", "S", bad_side))))
    return cases


def _decoded_path_refuses(feed: Feed, raw: bytes) -> bool:
    """The hub's decoded path: no JSON or no routable frame is reported by the hub,
    a frame of another stream is not this feed's; else the dict parser decides."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True
    if type(message) is not dict or "data" not in message or message.get("stream") != feed.topic:
        return True
    try:
        feed.plain(message["data"], 0.0)
    except ParseError:
        return True
    return False


def _params(examples: dict[str, Any]) -> list[Any]:
    return [
        pytest.param(feed, raw, id=f"{feed.name}: {case}")
        for feed in FEEDS
        for case, raw in hostile(feed, examples[feed.example])
    ]


#: The documented examples, read here too: the hostile frames are test parameters.
EXAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "examples.json").read_text()
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"feed", "raw"} <= set(metafunc.fixturenames):
        metafunc.parametrize(("feed", "raw"), _params(EXAMPLES))


class TestHostileFrames:
    def test_each_is_one_bounded_parse_error_and_the_decoded_path_refuses_it(
        self, feed: Feed, raw: bytes
    ) -> None:
        with pytest.raises(ParseError) as caught:
            feed.typed(raw, 0.0)
        assert len(str(caught.value)) < 1000
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT
        assert _decoded_path_refuses(feed, raw)


class TestAfterwards:
    def test_every_parser_keeps_working_after_refusing(self, examples: dict[str, Any]) -> None:
        for feed in FEEDS:
            data = examples[feed.example]
            for _, raw in hostile(feed, data):
                with pytest.raises(ParseError):
                    feed.typed(raw, 0.0)
            assert feed.typed(frame(feed.topic, data), 1.0) == feed.plain(data, 1.0)

    def test_a_foreign_stream_is_named_as_such(self, examples: dict[str, Any]) -> None:
        for feed in FEEDS:
            data = examples[feed.example]
            for stream in ("ethusdt@x", "y" * 100_000):
                with pytest.raises(ParseError, match="not this feed's topic") as caught:
                    feed.typed(frame(stream, data), 0.0)
                assert len(str(caught.value)) < 1000

    def test_a_json_number_that_underflows_is_refused_typed_only(self) -> None:
        """A known difference, on a number Binance sends as a string: orjson reads
        ``1e-999`` as the float 0.0 (accepted as ``Decimal(0)``); the typed path reads
        the text, 1e-999, which is outside 1e±50 and refused."""
        data = {"e": "avgPrice", "E": 1, "s": "X", "i": "5m", "w": 7, "T": 2}
        raw = frame("x@avgPrice", data).replace(b'"w":7', b'"w":1e-999')
        assert bp.parse_avg_price(orjson.loads(raw)["data"], 0.0).price == 0
        with pytest.raises(ParseError, match="not a finite number"):
            wm.avg_price_frame_parser("x@avgPrice")(raw, 0.0)

    def test_the_dict_parsers_are_the_ones_named(self) -> None:
        """The slow read of a refused frame is the feed's own dict parser."""
        data = {"lastUpdateId": "7", "bids": [], "asks": []}  # an id as text: int() reads it
        parse = wm.partial_depth_frame_parser("x@depth5", "X")
        assert parse(frame("x@depth5", data), 0.0) == bp.parse_partial_depth(data, 0.0, "X")
