"""Binance Spot / USD-M WebSocket protocols (what the hub relies on), checked against
the exchange's own documented examples (tests/fixtures/examples.json)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rxconnector.exchanges.base import ControlKind
from rxconnector.exchanges.binance.ws_protocol import (
    BinanceFuturesWsProtocol,
    BinanceSpotWsProtocol,
)

spot = BinanceSpotWsProtocol()
futures = BinanceFuturesWsProtocol()


class TestLimits:
    """The constants the hub enforces are the documented ones (PROTOCOL.md §A1.1, §B)."""

    def test_spot(self) -> None:
        assert spot.name == "binance"
        assert spot.max_messages_per_second == 5
        assert spot.max_streams_per_connection == 1024
        assert (spot.max_connection_attempts, spot.connection_attempt_window) == (300, 300.0)
        assert spot.client_ping_interval is None and spot.ping_message() is None
        assert spot.stale_after == 60.0
        assert spot.max_topics_per_request == 200

    def test_futures(self) -> None:
        assert futures.name == "binance_futures"
        assert futures.max_messages_per_second == 10
        assert futures.max_streams_per_connection == 200
        assert futures.client_ping_interval is None


class TestEndpoints:
    """Spot has one combined endpoint; USD-M routes streams to /public or /market."""

    def test_spot_combined_endpoint(self) -> None:
        assert spot.connection_url("wss://stream.binance.com:9443", "") == (
            "wss://stream.binance.com:9443/stream"
        )
        assert spot.connection_url("ws://127.0.0.1:1234/", "") == "ws://127.0.0.1:1234/stream"
        assert spot.endpoint_for("btcusdt@trade") == ""
        with pytest.raises(ValueError):
            spot.connection_url("wss://x", "market")

    @pytest.mark.parametrize(
        "topic, endpoint",
        [
            ("btcusdt@depth", "public"),
            ("btcusdt@depth@100ms", "public"),
            ("btcusdt@depth20@500ms", "public"),
            ("btcusdt@bookTicker", "public"),
            ("!bookTicker", "public"),
            ("btcusdt@rpiDepth@500ms", "public"),
            ("btcusdt@aggTrade", "market"),
            ("btcusdt@markPrice@1s", "market"),
            ("!markPrice@arr", "market"),
            ("btcusdt@kline_1m", "market"),
            ("btcusdt_perpetual@continuousKline_1m", "market"),
            ("btcusdt@forceOrder", "market"),
            ("btcusdt@ticker", "market"),
            ("!miniTicker@arr", "market"),
        ],
    )
    def test_futures_routing(self, topic: str, endpoint: str) -> None:
        assert futures.endpoint_for(topic) == endpoint
        assert futures.connection_url("wss://fstream.binance.com", endpoint) == (
            f"wss://fstream.binance.com/{endpoint}/stream"
        )

    def test_futures_rejects_unknown_endpoints(self) -> None:
        with pytest.raises(ValueError):
            futures.connection_url("wss://fstream.binance.com", "")


class TestRequests:
    """SUBSCRIBE / UNSUBSCRIBE frames are the documented JSON."""

    def test_subscribe_matches_the_documented_request(self, examples: dict[str, Any]) -> None:
        frame = spot.subscribe_message(["btcusdt@aggTrade", "btcusdt@depth"], 1)
        assert orjson.loads(frame) == examples["binance.spot.ws.SUBSCRIBE.request"]

    def test_unsubscribe_matches_the_documented_request(self, examples: dict[str, Any]) -> None:
        frame = futures.unsubscribe_message(["btcusdt@depth"], 312)
        assert orjson.loads(frame) == examples["binance.spot.ws.UNSUBSCRIBE.request"]

    def test_an_empty_request_is_a_bug(self) -> None:
        with pytest.raises(ValueError):
            spot.subscribe_message([], 1)


class TestRouting:
    """Data goes to its stream in one lookup; everything else is classified."""

    @pytest.mark.parametrize(
        "key, stream",
        [
            ("binance.spot.ws.aggTrade", "bnbbtc@aggTrade"),
            ("binance.spot.ws.depthUpdate", "bnbbtc@depth"),
            ("binance.spot.ws.partialDepth", "bnbbtc@depth5"),
            ("binance.spot.ws.bookTicker", "bnbusdt@bookTicker"),
        ],
    )
    def test_combined_data_routes_to_its_stream(
        self, examples: dict[str, Any], key: str, stream: str
    ) -> None:
        payload = examples[key]
        message = orjson.loads(orjson.dumps({"stream": stream, "data": payload}))
        assert spot.route(message) == (stream, payload)

    def test_acks_are_matched_by_id(self, examples: dict[str, Any]) -> None:
        for key, request_id in (
            ("binance.spot.ws.SUBSCRIBE.response", 1),
            ("binance.spot.ws.UNSUBSCRIBE.response", 312),
        ):
            message = examples[key]
            assert spot.route(message) is None
            control = spot.control(message)
            assert (control.kind, control.request_id) == (ControlKind.ACK, request_id)

    def test_list_subscriptions_answer_is_an_ack_with_its_result(
        self, examples: dict[str, Any]
    ) -> None:
        control = spot.control(examples["binance.spot.ws.LIST_SUBSCRIPTIONS.response"])
        assert control.kind is ControlKind.ACK
        assert control.result == ["btcusdt@aggTrade"]

    def test_documented_errors(self, examples: dict[str, Any]) -> None:
        errors = [v for k, v in examples.items() if k.startswith("binance.spot.ws.error.")]
        assert errors
        for message in errors:
            assert spot.route(message) is None
            control = spot.control(message)
            assert control.kind is ControlKind.ERROR
            assert control.code == message["code"] and control.message == message["msg"]

    def test_error_with_id_and_nested_error_form(self) -> None:
        control = spot.control({"code": 0, "msg": "Unknown property", "id": 7})
        assert (control.kind, control.request_id, control.code) == (ControlKind.ERROR, 7, 0)
        nested = spot.control({"error": {"code": 2, "msg": "Invalid request"}, "id": 9})
        assert (nested.kind, nested.request_id, nested.code, nested.message) == (
            ControlKind.ERROR,
            9,
            2,
            "Invalid request",
        )

    @pytest.mark.parametrize(
        "key", ["binance.spot.ws.serverShutdown.raw", "binance.spot.ws.serverShutdown.combined"]
    )
    def test_server_shutdown_is_never_data(self, examples: dict[str, Any], key: str) -> None:
        message = examples[key]
        assert spot.route(message) is None
        assert futures.route(message) is None
        assert spot.control(message).kind is ControlKind.SHUTDOWN

    @pytest.mark.parametrize(
        "message", [[1, 2], "text", 42, None, {"stream": "x@trade"}, {"surprise": True}]
    )
    def test_anything_else_is_unknown(self, message: Any) -> None:
        assert spot.route(message) is None
        assert spot.control(message).kind is ControlKind.UNKNOWN
