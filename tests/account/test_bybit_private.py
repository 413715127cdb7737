"""Bybit v5 private stream: parsers on the documented examples and the auth/subscribe
conversation of one socket (pure: a recording SessionOutput, no I/O)."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal
from typing import Any

import pytest

from rxconnector.config import Config, Secret
from rxconnector.errors import ConfigError, ExchangeError, ParseError, SubscriptionError
from rxconnector.exchanges.bybit import private as pv
from rxconnector.models import Balance, Execution, OrderUpdate, Position
from rxconnector.venues import resolve_endpoints

from .helpers import API_KEY, SECRET, RecordingOutput, hmac_hex

D = Decimal
NOW = 1_662_350_400_000


def stream(**kw: Any) -> pv.BybitPrivateStream:
    return pv.BybitPrivateStream(API_KEY, Secret(SECRET), lambda: NOW, **kw)


def order_message(examples: dict[str, Any], **row: Any) -> dict[str, Any]:
    message = copy.deepcopy(examples["bybit.v5.ws.private.order"])
    message["data"][0].update(row)
    return message


class TestOrders:
    """The order topic becomes OrderUpdates in the canonical (Binance) vocabulary."""

    def test_documented_example(self, examples: dict[str, Any]) -> None:
        [update] = pv.parse_orders(examples["bybit.v5.ws.private.order"], 7.0)
        assert update == OrderUpdate(
            symbol="ETH-30DEC22-1400-C",
            order_id="5cf98598-39a7-459e-97bf-76ca765ee020",
            client_order_id="",
            side="sell",
            type="MARKET",
            status="FILLED",
            execution_type="TRADE",
            price=D("72.5"),
            quantity=D("1"),
            filled_quantity=D("1"),
            average_price=D("75"),
            last_fill_price=D("0"),
            last_fill_quantity=D("0"),
            fee=D("0.358635"),
            fee_asset=None,  # feeCurrency "" and cumFeeDetail in MNT: not the fee's coin
            event_time=1672364262474,
            received_at=7.0,
        )

    @pytest.mark.parametrize(
        ("bybit", "status", "execution_type"),
        [
            ("New", "NEW", "NEW"),
            ("PartiallyFilled", "PARTIALLY_FILLED", "TRADE"),
            ("Untriggered", "NEW", "NEW"),
            ("Triggered", "NEW", "NEW"),
            ("Filled", "FILLED", "TRADE"),
            ("Cancelled", "CANCELED", "CANCELED"),
            ("PartiallyFilledCanceled", "CANCELED", "CANCELED"),
            ("Deactivated", "CANCELED", "CANCELED"),
            ("Rejected", "REJECTED", "REJECTED"),
            ("SomethingNew", "SomethingNew", "SomethingNew"),  # tolerated, not dropped
        ],
    )
    def test_statuses(
        self, examples: dict[str, Any], bybit: str, status: str, execution_type: str
    ) -> None:
        [update] = pv.parse_orders(order_message(examples, orderStatus=bybit), 1.0)
        assert (update.status, update.execution_type) == (status, execution_type)
        assert stream().order_status(bybit) == status

    @pytest.mark.parametrize(("raw", "average"), [("", None), ("0", None), ("75.5", D("75.5"))])
    def test_average_price_only_once_filled(
        self, examples: dict[str, Any], raw: str, average: Decimal | None
    ) -> None:
        [update] = pv.parse_orders(order_message(examples, avgPrice=raw), 1.0)
        assert update.average_price == average

    def test_link_id_fee_currency_and_empty_amounts(self, examples: dict[str, Any]) -> None:
        message = order_message(
            examples, orderLinkId="mine-1", feeCurrency="USDT", cumExecFee="", side="Buy"
        )
        [update] = pv.parse_orders(message, 1.0)
        assert (update.client_order_id, update.fee_asset, update.fee, update.side) == (
            "mine-1",
            "USDT",
            D(0),
            "buy",
        )

    def test_malformed(self, examples: dict[str, Any]) -> None:
        with pytest.raises(ParseError, match="bybit order"):
            pv.parse_orders(order_message(examples, side="Up"), 1.0)
        with pytest.raises(ParseError, match="creationTime"):
            pv.parse_orders({"topic": "order", "data": []}, 1.0)


class TestExecutions:
    """The execution topic becomes one Execution per fill."""

    def test_documented_example(self, examples: dict[str, Any]) -> None:
        assert pv.parse_executions(examples["bybit.v5.ws.private.execution"], 3.0) == [
            Execution(
                symbol="BTCUSDT",
                order_id="9aac161b-8ed6-450d-9cab-c5cc67c21784",
                client_order_id="",
                execution_id="0ab1bdf7-4219-438b-b30a-32ec863018f7",
                side="sell",
                price=D("95900.1"),
                quantity=D("0.5"),
                fee=D("26.3725275"),
                fee_asset="USDT",
                is_maker=False,
                time=1746270400353,
                received_at=3.0,
            )
        ]

    def test_funding_is_not_a_fill(self, examples: dict[str, Any]) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.execution"])
        funding = dict(message["data"][0], execType="Funding", execId="f-1")
        message["data"].append(funding)
        assert [e.execution_id for e in pv.parse_executions(message, 1.0)] == [
            "0ab1bdf7-4219-438b-b30a-32ec863018f7"
        ]

    def test_is_maker_must_be_a_boolean(self, examples: dict[str, Any]) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.execution"])
        message["data"][0]["isMaker"] = "false"
        with pytest.raises(ParseError, match="bybit execution"):
            pv.parse_executions(message, 1.0)


class TestWallet:
    """The wallet topic becomes one Balance per coin: free = what is owned - locked."""

    def test_documented_example(self, examples: dict[str, Any]) -> None:
        assert pv.parse_wallet(examples["bybit.v5.ws.private.wallet"], 2.0) == [
            Balance(
                "BTC",
                D("0.00102964"),
                D("0"),
                event_time=1700034722104,
                received_at=2.0,
                equity=D("0.00102964"),
            )
        ]

    def test_locked_part(self, examples: dict[str, Any]) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.wallet"])
        message["data"][0]["coin"][0].update(walletBalance="10", equity="10", locked="2.5")
        [balance] = pv.parse_wallet(message, 1.0)
        assert (balance.free, balance.locked, balance.total) == (D("7.5"), D("2.5"), D("10"))

    def test_borrowed_funds_are_not_free(self, examples: dict[str, Any]) -> None:
        # the figures: wallet 1200 of which 200 borrowed, equity 1000
        message = copy.deepcopy(examples["bybit.v5.ws.private.wallet"])
        message["data"][0]["coin"][0].update(
            coin="USDT",
            walletBalance="1200",
            equity="1000",
            borrowAmount="200",
            accruedInterest="0.35",
            locked="0",
        )
        [balance] = pv.parse_wallet(message, 1.0)
        assert (balance.free, balance.borrowed, balance.interest, balance.equity) == (
            D("1000"),
            D("200"),
            D("0.35"),
            D("1000"),
        )
        assert balance.debt == D("200.35")

    def test_spot_short_shows_its_debt(self, examples: dict[str, Any]) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.wallet"])
        message["data"][0]["coin"][0].update(
            coin="ETH", walletBalance="0", equity="-0.06", borrowAmount="0.06", locked="0"
        )
        [balance] = pv.parse_wallet(message, 1.0)
        assert (balance.free, balance.locked, balance.borrowed) == (D(0), D(0), D("0.06"))

    def test_classic_account_without_equity_nets_the_borrowed_part(
        self, examples: dict[str, Any]
    ) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.wallet"])
        coin = message["data"][0]["coin"][0]
        del coin["equity"]
        coin.update(walletBalance="50", borrowAmount="20", locked="5")
        [balance] = pv.parse_wallet(message, 1.0)
        assert (balance.free, balance.locked, balance.equity) == (D("25"), D("5"), None)

    def test_malformed(self, examples: dict[str, Any]) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.wallet"])
        message["data"][0]["coin"][0]["walletBalance"] = "n/a"
        with pytest.raises(ParseError, match="bybit wallet"):
            pv.parse_wallet(message, 1.0)


class TestPositions:
    """The position topic becomes Positions with long/short/flat sides."""

    def test_documented_example(self, examples: dict[str, Any]) -> None:
        assert pv.parse_positions(examples["bybit.v5.ws.private.position"], 4.0) == [
            Position(
                symbol="BTCUSDT",
                side="flat",
                size=D("0"),
                entry_price=D("0"),
                mark_price=D("28184.5"),
                unrealised_pnl=D("0"),
                leverage=D("10"),
                event_time=1697682317044,
                received_at=4.0,
                margin_mode="cross",
                liquidation_price=None,
                position_side="short",  # positionIdx 2: the sell side in hedge mode
            )
        ]

    @pytest.mark.parametrize(("side", "expected"), [("Buy", "long"), ("Sell", "short")])
    def test_sides(self, examples: dict[str, Any], side: str, expected: str) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.position"])
        message["data"][0].update(side=side, size="0.5", entryPrice="28000", leverage="")
        [position] = pv.parse_positions(message, 1.0)
        assert (position.side, position.size, position.entry_price, position.leverage) == (
            expected,
            D("0.5"),
            D("28000"),
            None,
        )

    def test_unknown_side_is_malformed(self, examples: dict[str, Any]) -> None:
        message = copy.deepcopy(examples["bybit.v5.ws.private.position"])
        message["data"][0]["side"] = "Both"
        with pytest.raises(ParseError, match="bybit position"):
            pv.parse_positions(message, 1.0)


class TestAuth:
    """On connect: a correctly signed auth; after its ack, one subscribe; then live."""

    def test_auth_frame_is_signed_with_a_future_expiry(self) -> None:
        out = RecordingOutput()
        stream().new_session().on_connected(out)
        [frame] = out.sent
        assert frame["op"] == "auth"
        key, expires, signature = frame["args"]
        assert key == API_KEY and expires == NOW + pv.AUTH_EXPIRES_AFTER_MS
        assert signature == hmac_hex(SECRET, f"GET/realtime{expires}")

    def test_documented_auth_ack_then_subscribe_ack(self, examples: dict[str, Any]) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        session.on_message(examples["bybit.v5.ws.auth.response"], 1.0, out)
        assert out.sent[1] == {
            "req_id": "subscribe",
            "op": "subscribe",
            "args": ["order", "execution", "wallet", "position"],
        }
        assert out.subscribed_count == 0
        session.on_message(examples["bybit.v5.ws.subscribe.response.private"], 1.0, out)
        assert out.subscribed_count == 1 and not out.failures and not out.reports

    def test_custom_topics(self) -> None:
        out, session = RecordingOutput(), stream(topics=["order.spot"]).new_session()
        session.on_message({"op": "auth", "success": True}, 1.0, out)
        assert out.sent[0]["args"] == ["order.spot"]

    def test_rejected_auth_is_fatal(self) -> None:
        out, session = RecordingOutput(), stream().new_session()
        session.on_connected(out)
        refusal = {"success": False, "ret_msg": "Request not authorized", "op": "auth"}
        session.on_message(refusal, 1.0, out)
        [(error, fatal, _)] = out.failures
        assert fatal and isinstance(error, ExchangeError) and error.exchange == "bybit"
        assert "Request not authorized" in str(error)
        assert len(out.sent) == 1  # no subscribe after a refusal

    def test_rejected_subscribe_is_fatal(self) -> None:
        out, session = RecordingOutput(), stream().new_session()
        refusal = {"success": False, "ret_msg": "error:handler not found", "op": "subscribe"}
        session.on_message(refusal, 1.0, out)
        [(error, fatal, _)] = out.failures
        assert fatal and isinstance(error, SubscriptionError)

    @pytest.mark.parametrize("key", ["bybit.v5.ws.pong.private", "bybit.v5.ws.pong.public_spot"])
    def test_pongs_are_ignored(self, examples: dict[str, Any], key: str) -> None:
        out = RecordingOutput()
        stream().new_session().on_message(examples[key], 1.0, out)
        assert not (out.reports or out.failures or out.emitted or out.sent)

    @pytest.mark.parametrize("frame", ["text", {"op": "weird"}, {"success": True}])
    def test_unrecognised_frames_are_reported(self, frame: Any) -> None:
        out = RecordingOutput()
        stream().new_session().on_message(frame, 1.0, out)
        assert [type(r) for r in out.reports] == [ParseError]

    def test_credentials_required_and_kept_secret(self) -> None:
        with pytest.raises(ConfigError):
            pv.BybitPrivateStream(API_KEY, Secret(""), lambda: 0)
        with pytest.raises(ValueError):
            pv.BybitPrivateStream(API_KEY, Secret(SECRET), lambda: 0, topics=())
        assert SECRET not in repr(stream())
        with pytest.raises(TypeError):
            pickle.dumps(stream())

    def test_ping_frame_and_urls(self) -> None:
        assert stream().ping_message() == '{"op":"ping"}'
        # the default endpoints are the venue registry's (§C2)
        private = resolve_endpoints(Config.bybit()).private_ws_url
        assert private == "wss://stream.bybit.com/v5/private"
        testnet = resolve_endpoints(Config.bybit(testnet=True)).private_ws_url
        assert testnet == "wss://stream-testnet.bybit.com/v5/private"


class TestData:
    """Topic messages are emitted raw, then as models."""

    @pytest.mark.parametrize(
        ("key", "model"),
        [
            ("bybit.v5.ws.private.order", OrderUpdate),
            ("bybit.v5.ws.private.execution", Execution),
            ("bybit.v5.ws.private.wallet", Balance),
            ("bybit.v5.ws.private.position", Position),
        ],
    )
    def test_every_documented_topic(self, examples: dict[str, Any], key: str, model: type) -> None:
        out = RecordingOutput()
        stream().new_session().on_message(examples[key], 8.0, out)
        assert out.emitted[0] == (8.0, examples[key])
        assert [type(m) for m in out.models()] == [model]
        assert [m.received_at for m in out.models()] == [8.0]

    def test_categorised_topic(self, examples: dict[str, Any]) -> None:
        out = RecordingOutput()
        message = dict(examples["bybit.v5.ws.private.order"], topic="order.option")
        stream().new_session().on_message(message, 1.0, out)
        assert [type(m) for m in out.models()] == [OrderUpdate]

    def test_other_topics_are_raw_only(self) -> None:
        out = RecordingOutput()
        message = {"topic": "greeks", "creationTime": 1, "data": [{"baseCoin": "BTC"}]}
        stream().new_session().on_message(message, 1.0, out)
        assert out.emitted == [(1.0, message)] and not out.reports

    def test_malformed_topic_message_is_reported(self) -> None:
        out = RecordingOutput()
        stream().new_session().on_message({"topic": "wallet", "data": "x"}, 1.0, out)
        assert [type(r) for r in out.reports] == [ParseError] and len(out.emitted) == 1
