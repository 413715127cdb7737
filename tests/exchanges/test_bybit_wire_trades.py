"""Typed one-pass decoding of Bybit ``publicTrade``, ``kline`` and ``allLiquidation``
frames (issue #12).

The typed ``parse_frame`` must give exactly the dict parser's models for every frame the
dict parser accepts, and refuse with one bounded ``ParseError`` every frame it refuses:
documented examples, simulator-shaped frames, every one-field mutation of them,
hypothesis-generated payloads and a hostile-frame suite (another topic, missing keys,
wrong types, NaN/Infinity/1e999, huge strings, nested garbage, non-UTF-8, duplicate keys).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire
from rxconnector.exchanges.bybit.feeds import BybitFeeds

from .helpers import mutations

#: Bybit docs, websocket/public/all-liquidation "Response Example" (not in examples.json).
ALL_LIQUIDATION: dict[str, Any] = {
    "topic": "allLiquidation.ROSEUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}],
}

#: The simulator's Spot shape: decimal trade ids, no ``L``; two trades in one frame.
SIM_SPOT_TRADES: dict[str, Any] = {
    "topic": "publicTrade.BTCUSDT",
    "type": "snapshot",
    "ts": 1700000000123,
    "data": [
        {"T": 1700000000120, "s": "BTCUSDT", "S": "Buy", "v": "0.012", "p": "60000.01",
         "i": "2290000000012345", "BT": False, "seq": 17},
        {"T": 1700000000121, "s": "BTCUSDT", "S": "Sell", "v": "1", "p": "59999.5",
         "i": "2290000000012346", "BT": False, "seq": 17},
    ],
}  # fmt: skip
SIM_INVERSE_KLINE: dict[str, Any] = {
    "topic": "kline.60.BTCUSD",
    "data": [
        {"start": 1700000000000, "end": 1700003599999, "interval": "60", "open": "60000.5",
         "close": "60010", "high": "60012.5", "low": "59990", "volume": "125000",
         "turnover": "2.08312345", "confirm": True, "timestamp": 1700003600001},
        {"start": 1700003600000, "end": 1700007199999, "interval": "60", "open": "60010",
         "close": "60010", "high": "60010", "low": "60010", "volume": "0",
         "turnover": "0", "confirm": False, "timestamp": 1700003600001},
    ],
    "ts": 1700003600001,
    "type": "snapshot",
}  # fmt: skip

Parser = Callable[[Any, float], Any]


def frame(message: Any) -> bytes:
    """As Bybit writes it (``topic`` first, no spaces); integers of any size."""
    return json.dumps(message, separators=(",", ":")).encode()


def outcome(parse: Parser, payload: Any) -> tuple[str, Any]:
    """``("ok", models)`` or ``("refused", "")`` - and nothing but ParseError escapes."""
    try:
        return "ok", list(parse(payload, 7.5))
    except ParseError as exc:
        assert len(exc.excerpt) <= ParseError.MAX_EXCERPT
        return "refused", ""


def feeds_of(examples: dict[str, Any]) -> list[tuple[str, dict[str, Any], Parser, Parser]]:
    """(name, message, typed parse_frame, dict parser) for every frame shape."""
    return [
        ("publicTrade example", examples["bybit.v5.ws.publicTrade"],
         wire.trades_frame_parser("publicTrade.BTCUSDT"), p.parse_trades),
        ("publicTrade sim spot", SIM_SPOT_TRADES,
         wire.trades_frame_parser("publicTrade.BTCUSDT"), p.parse_trades),
        ("kline example", examples["bybit.v5.ws.kline"],
         wire.kline_frame_parser("kline.5.BTCUSDT", "BTCUSDT"), p.kline_parser("BTCUSDT")),
        ("kline sim inverse", SIM_INVERSE_KLINE,
         wire.kline_frame_parser("kline.60.BTCUSD", "BTCUSD", inverse=True),
         p.kline_parser("BTCUSD", inverse=True)),
        ("allLiquidation docs", ALL_LIQUIDATION,
         wire.liquidations_frame_parser("allLiquidation.ROSEUSDT"), p.parse_liquidations),
    ]  # fmt: skip


NAMES = ["publicTrade example", "publicTrade sim spot", "kline example", "kline sim inverse",
         "allLiquidation docs"]  # fmt: skip


@pytest.fixture(params=NAMES)
def case(
    request: pytest.FixtureRequest, examples: dict[str, Any]
) -> tuple[str, dict[str, Any], Parser, Parser]:
    return next(c for c in feeds_of(examples) if c[0] == request.param)


class TestSameModels:
    def test_equal_to_the_dict_parser(self, case: Any) -> None:
        _name, message, typed, plain = case
        got, want = typed(frame(message), 7.5), plain(message, 7.5)
        assert got == want
        assert got and all(type(a) is type(b) for a, b in zip(got, want, strict=True))
        assert all(type(m.price if hasattr(m, "price") else m.open) is Decimal for m in got)

    def test_text_frames_too(self, case: Any) -> None:
        _name, message, typed, plain = case
        assert typed(frame(message).decode(), 1.0) == plain(message, 1.0)

    def test_key_order_and_unknown_fields_do_not_matter(self, case: Any) -> None:
        _name, message, typed, plain = case
        shuffled = dict(reversed(list(message.items())))
        shuffled["extra"] = {"nested": [1, None, {"x": "y"}]}
        assert typed(frame(shuffled), 0.0) == plain(message, 0.0)

    def test_every_one_field_mutation_agrees(self, case: Any) -> None:
        """Each field deleted or set to null, "", "abc", [], {}, true, [["1"]], 1.5 (and
        the frame replaced by null, [], text, 42): the same models or both refused."""
        _name, message, typed, plain = case
        for label, mutated in mutations(message):
            got = outcome(typed, frame(mutated))
            if isinstance(mutated, dict) and mutated.get("topic") != message["topic"]:
                assert got[0] == "refused", label  # another topic: never this feed's data
                continue
            assert got == outcome(plain, mutated), label

    def test_json_numbers_read_as_the_dict_parser_reads_them(self, case: Any) -> None:
        """msgspec would read 0.1 exactly; the dict parser reads the float: such frames
        go to the dict parser, so both give Decimal(0.1)."""
        _name, message, typed, plain = case
        entry = dict(message["data"][0])
        field = "p" if "p" in entry else "close"
        entry[field] = 0.1
        odd = {**message, "data": [entry]}
        assert outcome(typed, frame(odd)) == outcome(plain, odd)


class TestNumbers:
    @pytest.mark.parametrize(
        "value",
        ["NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e999", "1e999999",
         f"1e{MAX_DECIMAL_EXPONENT + 1}", f"1e-{MAX_DECIMAL_EXPONENT + 1}",
         f"9.99e{MAX_DECIMAL_EXPONENT}", f"1e-{MAX_DECIMAL_EXPONENT}", "0E-60", " 1", "1_0",
         "\u0661", "", "x", "0x10", "1e", "--1"],
    )  # fmt: skip
    def test_edge_numbers_agree(self, case: Any, value: str) -> None:
        _name, message, typed, plain = case
        for field in ("p", "v", "open", "high", "low", "close", "volume", "turnover"):
            if field not in message["data"][0]:
                continue
            odd = {**message, "data": [{**message["data"][0], field: value}]}
            assert outcome(typed, frame(odd)) == outcome(plain, odd), field

    def test_json_1e999_and_nan_literals_are_refused(self, case: Any) -> None:
        _name, message, typed, _plain = case
        raw = frame(message)
        first = message["data"][0]
        key = "p" if "p" in first else "close"
        quoted = orjson.dumps(first[key])
        for literal in (b"1e999", b"NaN", b"Infinity", b"-Infinity"):
            hostile = raw.replace(
                b'"' + key.encode() + b'":' + quoted, key.encode().join([b'"', b'":' + literal]), 1
            )
            assert hostile != raw
            assert outcome(typed, hostile) == ("refused", "")


def _topic(message: dict[str, Any]) -> str:
    topic: str = message["topic"]
    return topic


class TestHostileFrames:
    @pytest.mark.parametrize(
        "raw",
        [
            b"", b"{", b"[]", b"null", b'"x"', b"42", b"\xff\xfe\xfd",
            b'{"topic":"publicTrade.BTCUSDT"}',
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":{"a":1}}',
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":"x"}',
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[1,2]}',
            b'{"topic":5,"ts":1,"data":[]}',
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"s":"\xff\xfe"}]}',
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[]}garbage',
            b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"' + b"x" * 2_000_000
            + b'","S":"Buy","v":"1","p":"1","i":"1"}]',
        ],
        ids=lambda raw: repr(raw[:48]),
    )  # fmt: skip
    def test_broken_frames_are_one_bounded_parse_error(self, raw: bytes) -> None:
        parse = wire.trades_frame_parser("publicTrade.BTCUSDT")
        with pytest.raises(ParseError) as caught:
            parse(raw, 0.0)
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT
        assert len(str(caught.value)) < 2000

    def test_a_huge_string_field_is_read_like_the_dict_parser(self, case: Any) -> None:
        _name, message, typed, plain = case
        first = dict(message["data"][0])
        key = "s" if "s" in first else "interval"
        first[key] = "x" * 1_000_000
        odd = {**message, "data": [first]}
        assert outcome(typed, frame(odd)) == outcome(plain, odd)

    def test_another_topic_is_refused(self, case: Any) -> None:
        _name, message, typed, _plain = case
        other = {**message, "topic": _topic(message) + "X"}
        with pytest.raises(ParseError, match="topic"):
            typed(frame(other), 0.0)

    def test_a_repeated_topic_key_cannot_smuggle_another_topic(self, case: Any) -> None:
        """The hub found the frame by its first bytes; the decoder and the dict path
        both read the last ``topic``: refused."""
        _name, message, typed, _plain = case
        body = frame({k: v for k, v in message.items() if k != "topic"})
        smuggled = (
            b'{"topic":"' + _topic(message).encode() + b'","topic":"kline.1.ETHUSDT",' + body[1:]
        )
        with pytest.raises(ParseError):
            typed(smuggled, 0.0)

    def test_a_huge_foreign_topic_gives_a_bounded_message(self) -> None:
        hostile = b'{"topic":"' + b"x" * 1_000_000 + b'","ts":1,"data":[]}'
        for parse in (
            wire.trades_frame_parser("publicTrade.BTCUSDT"),
            wire.kline_frame_parser("kline.1.BTCUSDT", "BTCUSDT"),
            wire.liquidations_frame_parser("allLiquidation.BTCUSDT"),
        ):
            with pytest.raises(ParseError) as caught:
                parse(hostile, 0.0)
            assert len(str(caught.value)) < 1000

    def test_duplicate_keys_take_the_last_value_as_the_dict_parser(self, case: Any) -> None:
        _name, message, typed, plain = case
        first = message["data"][0]
        key = "p" if "p" in first else "close"
        raw = frame(message)
        quoted = b'"' + key.encode() + b'":' + orjson.dumps(first[key])
        doubled = raw.replace(quoted, b'"' + key.encode() + b'":"123.5",' + quoted, 1)
        assert doubled != raw
        assert typed(doubled, 0.0) == plain(orjson.loads(doubled), 0.0)
        # and the other way round: the last one wins
        doubled = raw.replace(quoted, quoted + b',"' + key.encode() + b'":"123.5"', 1)
        got = typed(doubled, 0.0)
        assert got == plain(orjson.loads(doubled), 0.0)
        assert Decimal("123.5") in {m.price if hasattr(m, "price") else m.close for m in got}

    def test_integers_beyond_int64_go_the_dict_way(self, case: Any) -> None:
        """orjson reads an integer beyond 64 bits as a float; the typed path leaves such
        a frame to the dict parser, so both read the same (inexact) number."""
        _name, message, typed, plain = case
        for big in (2**63, 2**64 - 1, 2**64, 10**22, -(2**63) - 1):
            raw = frame(message).replace(str(message["ts"]).encode(), str(big).encode(), 1)
            assert outcome(typed, raw) == outcome(plain, orjson.loads(raw))


# ------------------------------------------------------------------------ hypothesis

_number = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**12),
                max_value=10**12).map(str),
    st.sampled_from(["0", "1e5", "1E-7", "NaN", "Infinity", "1e51", "", "abc", " 2 "]),
)  # fmt: skip
_int = st.one_of(st.integers(min_value=0, max_value=2**63 - 1), st.sampled_from([-1, 2**64]))
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))

_trade = st.fixed_dictionaries(
    {"T": _int, "s": st.sampled_from(["BTCUSDT", "ETHUSDT"]),
     "S": st.sampled_from(["Buy", "Sell", "buy", "X"]), "v": _number, "p": _number,
     "i": st.one_of(st.uuids().map(str), st.integers(0, 10**18).map(str), st.text(max_size=8))},
    optional={"L": st.sampled_from(["PlusTick", "MinusTick"]), "BT": st.booleans(),
              "seq": st.integers(0, 2**40), "junk": _json_scalar},
)  # fmt: skip
_candle = st.fixed_dictionaries(
    {"start": _int, "end": _int, "interval": st.sampled_from(["1", "5", "60", "D", "W", "7"]),
     "open": _number, "close": _number, "high": _number, "low": _number,
     "volume": _number, "turnover": _number, "confirm": st.one_of(st.booleans(), _json_scalar)},
    optional={"timestamp": _int},
)  # fmt: skip
_liquidation = st.fixed_dictionaries(
    {"T": _int, "s": st.just("BTCUSDT"), "S": st.sampled_from(["Buy", "Sell", "x"]),
     "v": _number, "p": _number},
)  # fmt: skip


def _framed(topic: str, entries: Any) -> Any:
    return st.fixed_dictionaries(
        {"topic": st.just(topic), "ts": _int, "data": st.lists(entries, max_size=4)},
        optional={"type": st.just("snapshot")},
    )


class TestHypothesis:
    @settings(max_examples=300, deadline=None)
    @given(_framed("publicTrade.BTCUSDT", _trade))
    def test_trades(self, message: dict[str, Any]) -> None:
        typed, raw = wire.trades_frame_parser("publicTrade.BTCUSDT"), frame(message)
        assert outcome(typed, raw) == outcome(p.parse_trades, orjson.loads(raw))

    @settings(max_examples=300, deadline=None)
    @given(_framed("kline.60.BTCUSDT", _candle), st.booleans())
    def test_klines(self, message: dict[str, Any], inverse: bool) -> None:
        typed = wire.kline_frame_parser("kline.60.BTCUSDT", "BTCUSDT", inverse=inverse)
        plain = p.kline_parser("BTCUSDT", inverse=inverse)
        raw = frame(message)
        assert outcome(typed, raw) == outcome(plain, orjson.loads(raw))

    @settings(max_examples=200, deadline=None)
    @given(_framed("allLiquidation.BTCUSDT", _liquidation))
    def test_liquidations(self, message: dict[str, Any]) -> None:
        typed, raw = wire.liquidations_frame_parser("allLiquidation.BTCUSDT"), frame(message)
        assert outcome(typed, raw) == outcome(p.parse_liquidations, orjson.loads(raw))


class TestFeedSpecs:
    @pytest.mark.parametrize("category", ["spot", "linear", "inverse"])
    def test_trades_and_klines_have_a_typed_parse_frame(self, category: str) -> None:
        feeds = BybitFeeds(category)
        trades = feeds.trades("btcusdt")
        assert trades.parse_frame is not None and trades.many
        assert trades.sequence is None  # unchanged: no strictly increasing field
        klines = feeds.klines("BTCUSDT", "1h")
        assert klines.parse_frame is not None and klines.topic == "kline.60.BTCUSDT"

    def test_inverse_klines_swap_volume_and_turnover(self) -> None:
        spec = BybitFeeds("inverse").klines("BTCUSD", "1h")
        assert spec.parse_frame is not None
        candle = spec.parse_frame(frame(SIM_INVERSE_KLINE), 0.0)[0]
        assert (candle.volume, candle.quote_volume) == (Decimal("2.08312345"), Decimal(125000))

    def test_liquidations_have_one_on_derivatives(self) -> None:
        spec = BybitFeeds("linear").liquidations("ROSEUSDT")
        assert spec.parse_frame is not None
        (liquidation,) = spec.parse_frame(frame(ALL_LIQUIDATION), 3.0)
        assert liquidation.side == "buy"  # a short (Sell) position closed by a buy
        assert spec.sequence is not None
        assert spec.sequence(frame(ALL_LIQUIDATION)) == spec.sequence(ALL_LIQUIDATION)

    def test_linear_trade_ids_are_the_uuid(self, examples: dict[str, Any]) -> None:
        message = examples["bybit.v5.ws.publicTrade"]
        (trade,) = BybitFeeds("linear").trades("BTCUSDT").parse_frame(frame(message), 0.0)  # type: ignore[misc]
        assert uuid.UUID(int=trade.trade_id) == uuid.UUID(message["data"][0]["i"])


class TestSequenceKeys:
    @pytest.mark.parametrize(
        ("raw", "key"),
        [
            (b'{"topic":"kline.1.X","ts":1700000000123,"data":[]}', 1700000000123),
            (b'{"topic":"kline.1.X","ts":"1","data":[]}', None),
            (b'{"topic":"kline.1.X","ts":true}', None),
            (b'{"topic":"kline.1.X","ts":1.5}', None),
            (b'{"topic":"kline.1.X"}', None),
            (b'{"ts":99999999999999999999999}', None),
            (b"[]", None),
            (b"", None),
            (b"\xff", None),
            (b'{"ts":1,"ts":2}', 2),
        ],
    )
    def test_raw_frames_give_the_decoded_frames_key(self, raw: bytes, key: int | None) -> None:
        spec = BybitFeeds("linear").klines("X", "1m")
        assert spec.sequence is not None
        assert spec.sequence(raw) == key
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        assert spec.sequence(decoded) == key
