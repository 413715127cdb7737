"""BybitWsProtocol: URLs, limits, request frames, routing and every documented control shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rxconnector.exchanges.base import Control, ControlKind
from rxconnector.exchanges.bybit import ws_protocol as w
from rxconnector.exchanges.bybit.feeds import BybitFeeds
from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol

#: Failure shape observed in sieblyio/bybit-api issue #561 (PROTOCOL.md §C1; not in the docs).
SUBSCRIBE_FAILURE = {
    "success": False,
    "ret_msg": "error:handler not found,topic:dcp.future",
    "conn_id": "d266o6hqo29sqmnq4vk0-1mcsb",
    "req_id": "7",
    "op": "subscribe",
}

DATA_KEYS = [
    "bybit.v5.ws.orderbook.snapshot",
    "bybit.v5.ws.orderbook.delta",
    "bybit.v5.ws.orderbook_full.delta",
    "bybit.v5.ws.publicTrade",
    "bybit.v5.ws.kline",
    "bybit.v5.ws.tickers.linear_perpetual",
    "bybit.v5.ws.tickers.linear_futures",
    "bybit.v5.ws.tickers.option",
    "bybit.v5.ws.tickers.spot",
]
CONTROL_KEYS = [
    "bybit.v5.ws.pong.public_spot",
    "bybit.v5.ws.pong.public_linear_inverse",
    "bybit.v5.ws.pong.public_option_spread",
    "bybit.v5.ws.pong.private",
    "bybit.v5.ws.subscribe.response.private",
    "bybit.v5.ws.subscribe.response.public_spot",
    "bybit.v5.ws.subscribe.response.public_linear_inverse",
    "bybit.v5.ws.subscribe.response.public_option_spread",
    "bybit.v5.ws.auth.response",
]


class TestEndpoints:
    """One URL per category; a base that already has the path is kept."""

    @pytest.mark.parametrize("category", ["spot", "linear", "inverse"])
    def test_connection_url(self, category: str) -> None:
        proto = BybitWsProtocol(category)
        expected = f"wss://stream.bybit.com/v5/public/{category}"
        assert proto.connection_url("wss://stream.bybit.com", "") == expected
        assert proto.connection_url("wss://stream.bybit.com/", "") == expected
        assert proto.connection_url(expected, "") == expected
        assert proto.endpoint_for("tickers.BTCUSDT") == ""

    def test_local_simulator_base(self) -> None:
        url = BybitWsProtocol("linear").connection_url("ws://127.0.0.1:8765", "")
        assert url == "ws://127.0.0.1:8765/v5/public/linear"

    def test_unknown_endpoint(self) -> None:
        with pytest.raises(ValueError, match="one endpoint per category"):
            BybitWsProtocol().connection_url("wss://x", "market")

    @pytest.mark.parametrize("category", ["option", "spread", "SPOT", ""])
    def test_unsupported_category(self, category: str) -> None:
        with pytest.raises(ValueError, match="spot, linear, inverse"):
            BybitWsProtocol(category)


class TestLimits:
    """The documented limits, and that the derived topic cap honours the 21 000-char budget."""

    def test_constants(self) -> None:
        proto = BybitWsProtocol("spot")
        assert proto.max_topics_per_request == 10
        assert proto.max_connection_attempts == 500
        assert proto.connection_attempt_window == 300.0
        assert proto.client_ping_interval == 20.0
        assert proto.max_messages_per_second == 5.0
        assert proto.name == "bybit"

    def test_streams_per_connection_fit_the_args_budget(self) -> None:
        longest_symbol = "A" * 30
        extra_args: dict[str, tuple[Any, ...]] = {"klines": ("M",), "depth": (1000,)}
        extra_args["diff_depth"] = (1000,)
        topics: list[str] = []
        for category in ("spot", "linear", "inverse"):
            feeds = BybitFeeds(category)
            for feed in feeds.supported_feeds:
                spec = getattr(feeds, feed)(longest_symbol, *extra_args.get(feed, ()))
                topics.append(spec.topic)
        longest = max(len(t) for t in topics)
        assert longest == w.MAX_TOPIC_LENGTH
        full = orjson.dumps([max(topics, key=len)] * BybitWsProtocol.max_streams_per_connection)
        assert len(full) <= w.MAX_ARGS_CHARS_PER_CONNECTION
        assert BybitWsProtocol.max_streams_per_connection == 437


class TestRequests:
    """subscribe/unsubscribe/ping frames in the documented shape."""

    def test_subscribe_matches_documented_request(self, examples: dict[str, Any]) -> None:
        documented = examples["bybit.v5.ws.subscribe.request_multi"]
        frame = orjson.loads(BybitWsProtocol().subscribe_message(documented["args"], 42))
        assert frame == {**documented, "req_id": "42"}

    def test_unsubscribe(self, examples: dict[str, Any]) -> None:
        documented = examples["bybit.v5.ws.unsubscribe.request"]
        frame = orjson.loads(BybitWsProtocol().unsubscribe_message(documented["args"], 3))
        assert frame == {**documented, "req_id": "3"}

    def test_at_most_ten_topics(self) -> None:
        proto = BybitWsProtocol("linear")
        topics = [f"publicTrade.S{i}" for i in range(11)]
        assert len(orjson.loads(proto.subscribe_message(topics[:10], 1))["args"]) == 10
        with pytest.raises(ValueError, match="at most 10 topics, got 11"):
            proto.subscribe_message(topics, 1)
        with pytest.raises(ValueError, match="at least one topic"):
            proto.unsubscribe_message([], 1)

    def test_ping(self, examples: dict[str, Any]) -> None:
        ping = orjson.loads(BybitWsProtocol().ping_message())
        assert ping == {"op": "ping"}
        assert ping["op"] == examples["bybit.v5.ws.ping.request"]["op"]


class TestRoute:
    """Data messages route by ``topic`` and keep the whole message; control frames do not."""

    @pytest.mark.parametrize("key", DATA_KEYS)
    def test_data(self, examples: dict[str, Any], key: str) -> None:
        message = examples[key]
        assert BybitWsProtocol().route(message) == (message["topic"], message)

    @pytest.mark.parametrize("key", CONTROL_KEYS)
    def test_control_is_not_data(self, examples: dict[str, Any], key: str) -> None:
        assert BybitWsProtocol().route(examples[key]) is None

    @pytest.mark.parametrize("message", [[1, 2], "pong", 3, None, SUBSCRIBE_FAILURE])
    def test_non_data(self, message: Any) -> None:
        assert BybitWsProtocol().route(message) is None


class TestControl:
    """Every documented ack / pong shape, the observed failure, and the unknown."""

    @pytest.mark.parametrize(
        ("key", "request_id"),
        [
            ("bybit.v5.ws.pong.public_spot", None),
            ("bybit.v5.ws.pong.public_linear_inverse", None),
            ("bybit.v5.ws.pong.public_option_spread", None),
            ("bybit.v5.ws.pong.private", "test"),
        ],
    )
    def test_pongs(self, examples: dict[str, Any], key: str, request_id: Any) -> None:
        control = BybitWsProtocol().control(examples[key])
        assert control == Control(ControlKind.PONG, request_id=request_id)

    def test_spot_ack_returns_our_int_id(self, examples: dict[str, Any]) -> None:
        control = BybitWsProtocol("spot").control(
            examples["bybit.v5.ws.subscribe.response.public_spot"]
        )
        assert control == Control(ControlKind.ACK, request_id=10001, message="subscribe")

    def test_linear_ack_without_id(self, examples: dict[str, Any]) -> None:
        control = BybitWsProtocol("linear").control(
            examples["bybit.v5.ws.subscribe.response.public_linear_inverse"]
        )
        assert control.kind is ControlKind.ACK
        assert control.request_id is None

    @pytest.mark.parametrize(
        "key", ["bybit.v5.ws.subscribe.response.private", "bybit.v5.ws.auth.response"]
    )
    def test_private_and_auth_acks(self, examples: dict[str, Any], key: str) -> None:
        assert BybitWsProtocol().control(examples[key]).kind is ControlKind.ACK

    def test_command_resp_ack(self, examples: dict[str, Any]) -> None:
        control = BybitWsProtocol().control(
            examples["bybit.v5.ws.subscribe.response.public_option_spread"]
        )
        assert control.kind is ControlKind.ACK
        assert control.result == ("orderbook.100.BTC-6JAN23-18000-C",)

    def test_command_resp_with_failed_topics(self) -> None:
        control = BybitWsProtocol().control(
            {
                "success": True,
                "conn_id": "c",
                "req_id": "12",
                "data": {"failTopics": ["orderbook.100.NOPE"], "successTopics": []},
                "type": "COMMAND_RESP",
            }
        )
        assert control.kind is ControlKind.ERROR
        assert control.request_id == 12
        assert control.result == ("orderbook.100.NOPE",)
        assert "orderbook.100.NOPE" in control.message

    def test_subscribe_failure(self) -> None:
        control = BybitWsProtocol().control(SUBSCRIBE_FAILURE)
        assert control == Control(
            ControlKind.ERROR,
            request_id=7,
            message="error:handler not found,topic:dcp.future",
            result=("dcp.future",),
        )

    def test_failure_without_topic_or_message(self) -> None:
        control = BybitWsProtocol().control({"success": False, "op": "unsubscribe"})
        assert control.kind is ControlKind.ERROR
        assert control.message == "unsubscribe failed"
        assert control.result is None
        assert control.request_id is None

    def test_failed_ping_is_an_error_not_a_pong(self) -> None:
        control = BybitWsProtocol().control({"success": False, "ret_msg": "x", "op": "ping"})
        assert control.kind is ControlKind.ERROR

    @pytest.mark.parametrize("message", [{"hello": 1}, [1], "text", {"op": "subscribe"}])
    def test_unknown(self, message: Any) -> None:
        control = BybitWsProtocol().control(message)
        assert control.kind is ControlKind.UNKNOWN
        assert control.message

    def test_non_numeric_request_id_is_kept(self) -> None:
        control = BybitWsProtocol().control(
            {"success": True, "ret_msg": "", "req_id": "abc", "op": "subscribe"}
        )
        assert control.request_id == "abc"


class TestDataFrameHead:
    """The bytes the hub finds a raw topic's frames by (no decode): Bybit writes
    ``topic`` first in every public data frame (PROTOCOL.md §C1 verbatim heads)."""

    head = staticmethod(BybitWsProtocol("linear").data_frame_head)

    @pytest.mark.parametrize(
        "name",
        [
            "bybit.v5.ws.orderbook.snapshot",
            "bybit.v5.ws.orderbook.delta",
            "bybit.v5.ws.orderbook_full.delta",
            "bybit.v5.ws.publicTrade",
            "bybit.v5.ws.kline",
            "bybit.v5.ws.tickers.linear_perpetual",
            "bybit.v5.ws.tickers.spot",
        ],
    )
    def test_documented_frames_start_with_it(self, name: str, examples: dict[str, Any]) -> None:
        message = examples[name]
        raw = orjson.dumps(message)
        assert raw.startswith(self.head(message["topic"]))

    def test_it_includes_the_closing_quote(self) -> None:
        """So a longer name sharing the prefix is another topic's frame."""
        assert self.head("orderbook.1.BTCUSDT") == b'{"topic":"orderbook.1.BTCUSDT"'
        raw = b'{"topic":"orderbook.1.BTCUSDTX","data":{}}'
        assert not raw.startswith(self.head("orderbook.1.BTCUSDT"))

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b'{"op":"ping","success":true}',
            b'{ "topic":"publicTrade.BTCUSDT","data":[]}',
            b'{"data":[],"topic":"publicTrade.BTCUSDT"}',
            b'{"topic":"publicTrade.ETHUSDT","data":[]}',
        ],
    )
    def test_other_frames_do_not_start_with_it(self, raw: bytes) -> None:
        assert not raw.startswith(self.head("publicTrade.BTCUSDT"))
