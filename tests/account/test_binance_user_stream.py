"""Binance user data over the WebSocket API: parsers on the documented examples and the
login conversation of one socket (pure: a recording SessionOutput, no I/O)."""

from __future__ import annotations

import base64
import copy
import pickle
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from rxconnector.config import Config, Secret
from rxconnector.errors import (
    ConfigError,
    ExchangeError,
    ParseError,
    RateLimitError,
    WebSocketClosedError,
)
from rxconnector.exchanges.binance import user_stream as us
from rxconnector.models import Balance, BalanceDelta, Execution, OrderUpdate
from rxconnector.venues import resolve_endpoints

from .helpers import API_KEY, SECRET, RecordingOutput, binance_ws_payload, hmac_hex

D = Decimal
NOW = 1_747_385_641_636


def stream(**kw: Any) -> us.BinanceUserStream:
    return us.BinanceUserStream(API_KEY, Secret(SECRET), lambda: NOW, **kw)


def trade_report(examples: dict[str, Any]) -> dict[str, Any]:
    """The documented executionReport turned into a partial fill (fields per §A5.1)."""
    event = copy.deepcopy(examples["binance.spot.uds.executionReport"]["event"])
    event.update(
        x="TRADE",
        X="PARTIALLY_FILLED",
        l="0.40000000",
        z="0.60000000",
        L="0.10000000",
        Z="0.06100000",
        n="0.00004000",
        N="BNB",
        t=77,
        m=True,
        T=1499405658700,
    )
    return event


def logged_in(out: RecordingOutput, session: Any, sid: int = 0) -> None:
    """Answer the pending subscribe request with success."""
    request_id = out.sent[-1]["id"]
    session.on_message(
        {"id": request_id, "status": 200, "result": {"subscriptionId": sid}}, 1.0, out
    )


class TestExecutionReport:
    """executionReport becomes an OrderUpdate (and an Execution for fills)."""

    def test_documented_example(self, examples: dict[str, Any]) -> None:
        event = examples["binance.spot.uds.executionReport"]["event"]
        update = us.parse_execution_report(event, 5.0)
        assert update == OrderUpdate(
            symbol="ETHBTC",
            order_id="4293153",
            client_order_id="mUvoqJxFIILMdfAW5iGSOW",
            side="buy",
            type="LIMIT",
            status="NEW",
            execution_type="NEW",
            price=D("0.10264410"),
            quantity=D("1.00000000"),
            filled_quantity=D("0"),
            average_price=None,
            last_fill_price=D("0"),
            last_fill_quantity=D("0"),
            fee=D("0"),
            fee_asset=None,
            event_time=1499405658658,
            received_at=5.0,
        )
        assert us.parse_execution(event, 5.0) is None  # x=NEW is no fill

    def test_legacy_unwrapped_example_parses_the_same(self, examples: dict[str, Any]) -> None:
        legacy = examples["binance.spot.uds.executionReport.legacy_listenkey_unwrapped"]
        wrapped = examples["binance.spot.uds.executionReport"]["event"]
        assert us.parse_execution_report(legacy, 1.0) == us.parse_execution_report(wrapped, 1.0)

    def test_fill_average_price_is_cumulative_quote_over_quantity(
        self, examples: dict[str, Any]
    ) -> None:
        update = us.parse_execution_report(trade_report(examples), 1.0)
        assert update.average_price == D("0.06100000") / D("0.60000000")
        assert (update.status, update.execution_type) == ("PARTIALLY_FILLED", "TRADE")
        assert (update.last_fill_price, update.last_fill_quantity) == (D("0.1"), D("0.4"))
        assert (update.fee, update.fee_asset) == (D("0.00004"), "BNB")

    def test_fill_is_also_an_execution(self, examples: dict[str, Any]) -> None:
        fill = us.parse_execution(trade_report(examples), 2.0)
        assert fill == Execution(
            symbol="ETHBTC",
            order_id="4293153",
            client_order_id="mUvoqJxFIILMdfAW5iGSOW",
            execution_id="77",
            side="buy",
            price=D("0.1"),
            quantity=D("0.4"),
            fee=D("0.00004"),
            fee_asset="BNB",
            is_maker=True,
            time=1499405658700,
            received_at=2.0,
        )

    def test_a_cancel_reports_the_orders_own_client_id(self, examples: dict[str, Any]) -> None:
        event = dict(examples["binance.spot.uds.executionReport"]["event"])
        event.update(x="CANCELED", X="CANCELED", c="cancel-request-id", C="my-order-id", S="SELL")
        update = us.parse_execution_report(event, 1.0)
        assert (update.client_order_id, update.side, update.status) == (
            "my-order-id",
            "sell",
            "CANCELED",
        )

    def test_an_unknown_status_passes_through(self, examples: dict[str, Any]) -> None:
        event = dict(examples["binance.spot.uds.executionReport"]["event"], X="NEW_STATUS_2030")
        assert us.parse_execution_report(event, 1.0).status == "NEW_STATUS_2030"

    @pytest.mark.parametrize(
        "change",
        [{"S": "HOLD"}, {"z": "lots"}, {"i": None, "E": "x"}, {"m": "false", "x": "TRADE"}],
    )
    def test_malformed_payloads_raise_parse_error(
        self, examples: dict[str, Any], change: dict[str, Any]
    ) -> None:
        event = dict(examples["binance.spot.uds.executionReport"]["event"], **change)
        with pytest.raises(ParseError, match="executionReport"):
            us.parse_execution_report(event, 1.0)
            us.parse_execution(event, 1.0)

    def test_missing_key_is_a_parse_error_not_a_key_error(self, examples: dict[str, Any]) -> None:
        event = dict(examples["binance.spot.uds.executionReport"]["event"])
        del event["q"]
        with pytest.raises(ParseError, match="missing key 'q'"):
            us.parse_execution_report(event, 1.0)


class TestBalanceEvents:
    """outboundAccountPosition → Balances; balanceUpdate/externalLockUpdate → deltas."""

    def test_account_position_example(self, examples: dict[str, Any]) -> None:
        event = examples["binance.spot.uds.outboundAccountPosition"]["event"]
        assert us.parse_user_event(event, 3.0) == [
            Balance("ETH", D("10000"), D("0"), event_time=1564034571105, received_at=3.0)
        ]

    def test_wsapi_event_example_has_two_assets(self, examples: dict[str, Any]) -> None:
        event = examples["binance.spot.wsapi.event_example"]["event"]
        balances = us.parse_account_position(event, 1.0)
        assert [(b.asset, b.free, b.locked, b.total) for b in balances] == [
            ("BTC", D("11818"), D("182"), D("12000")),
            ("USDT", D("10580"), D("70"), D("10650")),
        ]

    def test_balance_update_is_a_delta(self, examples: dict[str, Any]) -> None:
        event = examples["binance.spot.uds.balanceUpdate"]["event"]
        assert us.parse_user_event(event, 1.0) == [
            BalanceDelta("BTC", D("100"), "balance", 1573200697068, 1573200697110, 1.0)
        ]

    def test_external_lock_update_is_a_delta(self, examples: dict[str, Any]) -> None:
        event = examples["binance.spot.uds.externalLockUpdate"]["event"]
        assert us.parse_user_event(event, 1.0) == [
            BalanceDelta("NEO", D("10"), "external_lock", 1581557507268, 1581557507324, 1.0)
        ]

    def test_negative_delta(self, examples: dict[str, Any]) -> None:
        event = dict(examples["binance.spot.uds.balanceUpdate"]["event"], d="-2.5")
        assert us.parse_balance_delta(event, 1.0).delta == D("-2.5")

    def test_malformed_balances_raise_parse_error(self, examples: dict[str, Any]) -> None:
        event = copy.deepcopy(examples["binance.spot.uds.outboundAccountPosition"]["event"])
        event["B"][0]["f"] = None
        with pytest.raises(ParseError, match="outboundAccountPosition"):
            us.parse_account_position(event, 1.0)


class TestRawOnlyEvents:
    """listStatus, eventStreamTerminated and unknown types have no model (and no error)."""

    @pytest.mark.parametrize(
        "key", ["binance.spot.uds.listStatus", "binance.spot.uds.eventStreamTerminated"]
    )
    def test_documented_raw_only_events(self, examples: dict[str, Any], key: str) -> None:
        assert us.parse_user_event(examples[key]["event"], 1.0) == []

    def test_unknown_event_type_is_not_an_error(self) -> None:
        assert us.parse_user_event({"e": "somethingNew", "E": 1}, 1.0) == []

    def test_event_without_type_is_a_parse_error(self) -> None:
        with pytest.raises(ParseError):
            us.parse_user_event({"E": 1}, 1.0)


class TestSubscribeRequest:
    """The login frame is a correctly signed userDataStream.subscribe.signature."""

    def test_hmac_signature_verifies(self) -> None:
        out = RecordingOutput()
        stream().new_session().on_connected(out)
        [frame] = out.sent
        assert frame["method"] == "userDataStream.subscribe.signature"
        params = frame["params"]
        assert params["apiKey"] == API_KEY and params["timestamp"] == NOW
        assert "recvWindow" not in params
        assert params["signature"] == hmac_hex(SECRET, binance_ws_payload(params))

    def test_recv_window_is_signed_too(self) -> None:
        out = RecordingOutput()
        stream(recv_window=6000).new_session().on_connected(out)
        params = out.sent[0]["params"]
        assert params["recvWindow"] == 6000
        assert binance_ws_payload(params) == (f"apiKey={API_KEY}&recvWindow=6000&timestamp={NOW}")
        assert params["signature"] == hmac_hex(SECRET, binance_ws_payload(params))

    def test_ed25519_keys_work_too(self) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        out = RecordingOutput()
        us.BinanceUserStream("ed-key", Secret(pem), lambda: NOW).new_session().on_connected(out)
        params = out.sent[0]["params"]
        signature = base64.b64decode(params["signature"])
        key.public_key().verify(signature, binance_ws_payload(params).encode())  # raises if bad

    def test_the_timestamp_is_taken_when_the_frame_is_built(self) -> None:
        clock = [100]
        proto = us.BinanceUserStream(API_KEY, Secret(SECRET), lambda: clock[0])
        builds: list[Any] = []

        class Deferred(RecordingOutput):
            def send(self, build: Any) -> None:
                builds.append(build)

        proto.new_session().on_connected(Deferred())
        clock[0] = 250
        assert '"timestamp":250' in builds[0]()

    def test_missing_credentials_fail_at_construction(self) -> None:
        with pytest.raises(ConfigError):
            us.BinanceUserStream("", Secret(""), lambda: 0)

    def test_secret_not_in_repr_and_not_picklable(self) -> None:
        proto = stream()
        assert SECRET not in repr(proto)
        with pytest.raises(TypeError):
            pickle.dumps(proto)

    def test_ping_frame_and_urls(self) -> None:
        assert us.BinanceUserStream.ping_message(stream()) == '{"id":"ping","method":"ping"}'
        # the default endpoints are the venue registry's (§A5.1, alt port 9443)
        api_url = resolve_endpoints(Config.binance()).ws_api_url
        assert api_url == "wss://ws-api.binance.com:443/ws-api/v3"
        testnet_url = resolve_endpoints(Config.binance(testnet=True)).ws_api_url
        assert testnet_url == "wss://ws-api.testnet.binance.vision/ws-api/v3"


class TestSessionAnswers:
    """The answer to the subscription decides: live, retry, or give up."""

    def test_documented_success_answer_subscribes(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        answer = dict(examples["binance.spot.wsapi.userDataStream.subscribe.response"])
        answer["id"] = out.sent[0]["id"]
        session.on_message(answer, 1.0, out)
        assert out.subscribed_count == 1 and session.subscription_id == 0
        assert not out.failures and not out.reports

    def test_an_answer_to_another_request_does_not_subscribe(
        self, examples: dict[str, Any]
    ) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        session.on_message(examples["binance.spot.wsapi.userDataStream.subscribe.response"], 1, out)
        assert out.subscribed_count == 0

    @pytest.mark.parametrize(
        ("status", "code", "fatal", "resync"),
        [
            (400, -1022, True, False),  # bad signature: retrying cannot help
            (401, -2015, True, False),  # invalid key / IP / permissions
            (400, -2014, True, False),
            (400, -1102, True, False),  # any other client error: a bug, do not loop
            (400, -1021, False, True),  # timestamp: resync the clock and try again
            (503, -1001, False, False),  # server trouble: reconnect with backoff
        ],
    )
    def test_rejections(self, status: int, code: int, fatal: bool, resync: bool) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        answer = {"id": out.sent[0]["id"], "status": status, "error": {"code": code, "msg": "no"}}
        session.on_message(answer, 1.0, out)
        [(error, was_fatal, was_resync)] = out.failures
        assert isinstance(error, ExchangeError)
        assert (error.code, error.status, was_fatal, was_resync) == (code, status, fatal, resync)
        assert error.retryable is not fatal
        assert "userDataStream.subscribe.signature" in str(error)
        assert out.subscribed_count == 0

    def test_documented_ban_answer_waits_until_the_ban_ends(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        answer = dict(examples["binance.spot.wsapi.response.banned_418"], id=out.sent[0]["id"])
        session.on_message(answer, 1.0, out)
        [(error, fatal, _)] = out.failures
        assert isinstance(error, RateLimitError) and not fatal and error.banned
        assert error.retry_after == pytest.approx((1659146400000 - 1659142907531) / 1000)

    def test_documented_revoked_key_error_is_fatal(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        logged_in(out, session)
        session.on_message(examples["binance.spot.wsapi.session.revoked_error"], 1.0, out)
        [(error, fatal, _)] = out.failures
        assert isinstance(error, ExchangeError) and error.code == -2015 and fatal

    def test_ping_answers_are_ignored_and_other_errors_reported(self) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        session.on_message({"id": "ping", "status": 200, "result": {}}, 1.0, out)
        session.on_message({"id": "x", "status": 400, "error": {"code": -1, "msg": "?"}}, 1, out)
        assert not out.failures and len(out.reports) == 1

    def test_server_shutdown_reconnects(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_message(examples["binance.spot.wsapi.serverShutdown"], 1.0, out)
        [(error, fatal, _)] = out.failures
        assert isinstance(error, WebSocketClosedError) and not fatal

    @pytest.mark.parametrize("frame", [[1, 2], {"hello": 1}, {"event": {"e": "x"}}])
    def test_unrecognised_frames_are_reported(self, frame: Any) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_message(frame, 1.0, out)
        assert len(out.reports) == 1 and isinstance(out.reports[0], ParseError)
        assert not out.failures and not out.emitted


class TestSessionEvents:
    """Events are emitted raw, then as models; termination resubscribes."""

    @pytest.mark.parametrize(
        ("key", "models"),
        [
            ("binance.spot.uds.executionReport", [OrderUpdate]),
            ("binance.spot.uds.outboundAccountPosition", [Balance]),
            ("binance.spot.wsapi.event_example", [Balance, Balance]),
            ("binance.spot.uds.balanceUpdate", [BalanceDelta]),
            ("binance.spot.uds.externalLockUpdate", [BalanceDelta]),
            ("binance.spot.uds.listStatus", []),
        ],
    )
    def test_every_documented_event(
        self, examples: dict[str, Any], key: str, models: list[type]
    ) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_message(examples[key], 42.0, out)
        assert out.emitted[0] == (42.0, examples[key]["event"])
        assert [type(m) for m in out.models()] == models
        assert [m.received_at for m in out.models()] == [42.0] * len(models)
        assert not out.reports and not out.failures

    def test_a_fill_emits_order_update_then_execution(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_message({"subscriptionId": 0, "event": trade_report(examples)}, 1.0, out)
        assert [type(m) for m in out.models()] == [OrderUpdate, Execution]

    def test_malformed_event_is_reported_and_the_next_one_flows(
        self, examples: dict[str, Any]
    ) -> None:
        out, session = RecordingOutput(), stream().new_session()
        bad = {"subscriptionId": 0, "event": {"e": "executionReport", "E": 1}}
        session.on_message(bad, 1.0, out)
        session.on_message(examples["binance.spot.uds.balanceUpdate"], 2.0, out)
        assert len(out.reports) == 1 and isinstance(out.reports[0], ParseError)
        assert [type(m) for m in out.models()] == [BalanceDelta]

    def test_event_stream_terminated_resubscribes(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        logged_in(out, session, sid=0)
        session.on_message(examples["binance.spot.uds.eventStreamTerminated"], 9.0, out)
        assert out.resubscribes == ["eventStreamTerminated"]
        assert [f["method"] for f in out.sent] == ["userDataStream.subscribe.signature"] * 2
        assert out.sent[0]["id"] != out.sent[1]["id"]
        assert out.emitted[0] == (9.0, examples["binance.spot.uds.eventStreamTerminated"]["event"])
        logged_in(out, session, sid=1)
        assert out.subscribed_count == 2 and session.subscription_id == 1

    def test_termination_of_an_older_subscription_is_ignored(self) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        logged_in(out, session, sid=3)
        session.on_message({"subscriptionId": 2, "event": {"e": "eventStreamTerminated"}}, 1, out)
        assert out.resubscribes == [] and len(out.sent) == 1
