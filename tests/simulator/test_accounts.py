"""Accounts and the matching engine, without sockets: balances, fills, fees, rules, events."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxconnector.testing.simulator import SimulatorConfig
from rxconnector.testing.simulator.accounts import Account, Accounts, BalanceChange
from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.market import Market, SymbolMarket, TickEvents
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import (
    LEVERAGE,
    MAX_OPEN_ORDERS,
    OrderEvent,
    OrderRequest,
    PositionEvent,
    Rejection,
    SimOrder,
)
from rxconnector.testing.simulator.tape import SimTrade

D = Decimal
T0 = 1_700_000_000_000
KEY, SECRET = "key-1", "secret-1"
RATE = D("0.001")
#: what the bench account starts with (enough to walk a few levels of the book)
BTC0, USDT0 = D(100), D(1_000_000)


class Bench:
    """A market, its accounts and engine on a fake clock; records every announcement."""

    def __init__(self, seed: int = 7) -> None:
        cfg = SimulatorConfig(symbols=("BTCUSDT", "ETHUSDT"), seed=seed)
        self.now = T0
        self.market = Market(cfg.symbol_specs(), seed, self.clock)
        self.accounts = Accounts({KEY: SECRET}, cfg.symbol_specs())
        self.engine = MatchingEngine(self.market, self.accounts)
        self.account = self.accounts[KEY]
        self.account.move("BTC", free=BTC0 - 1)
        self.account.move("USDT", free=USDT0 - 10_000)
        #: (kind, status, filled) of every order event as delivered, and balance changes
        self.events: list[Any] = []
        self.accounts.listen(self._record)

    def clock(self) -> int:
        self.now += 100
        return self.now

    def _record(self, event: Any) -> None:
        if isinstance(event, OrderEvent):
            self.events.append((event.kind, event.order.status, event.order.filled, event.fill))
        elif isinstance(event, PositionEvent):
            self.events.append(("POSITION", event.position.size))
        else:
            self.events.append(event)

    @property
    def btc(self) -> SymbolMarket:
        return self.market["BTCUSDT"]

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events if isinstance(e, tuple)]

    def place(self, **fields: Any) -> SimOrder:
        request = OrderRequest(**{"venue": "binance", "symbol": "BTCUSDT", **fields})
        return self.engine.place(self.account, request, self.clock())

    def tick(self, trades: list[tuple[str, int, int]] | None = None) -> None:
        """Feed the engine a tick of BTCUSDT with the given (taker side, price ticks,
        qty steps) trades and the book as it is."""
        book = self.btc.book
        sim_trades = tuple(
            SimTrade("BTCUSDT", 1 + i, D(p).scaleb(-2), D(q).scaleb(-5), self.now, side, 1, p, q)
            for i, (side, p, q) in enumerate(trades or [])
        )
        event = TickEvents(
            "BTCUSDT", self.clock(), book.update_id, book.update_id, (), (), sim_trades, (), False
        )
        self.engine.on_tick([event])

    def free(self, asset: str) -> Decimal:
        return self.account.free(asset)

    def locked(self, asset: str) -> Decimal:
        return self.account.locked(asset)


def price(ticks: int) -> Decimal:
    """BTCUSDT ticks → price (tick 0.01)."""
    return D(ticks).scaleb(-2)


def qty(steps: int) -> Decimal:
    """BTCUSDT steps → quantity (step 0.00001)."""
    return D(steps).scaleb(-5)


@pytest.fixture
def bench() -> Bench:
    return Bench()


class TestAccounts:
    """Balances move exactly, never go negative, and keys verify their own signatures."""

    def test_new_accounts_hold_the_default_balances(self, bench: Bench) -> None:
        other = bench.accounts.add("key-2", "secret-2")
        assert other.balances == {
            "BTC": (D(1), D(0)),
            "ETH": (D(1), D(0)),
            "USDT": (D(10_000), D(0)),
        }
        assert other.uid != bench.account.uid and bench.accounts.get("key-2") is other

    def test_move_refuses_to_go_negative_and_changes_nothing(self, bench: Bench) -> None:
        with pytest.raises(ValueError, match="negative"):
            bench.account.move("USDT", free=-USDT0 - 1, locked=D(5))
        with pytest.raises(ValueError):
            bench.account.move("USDT", locked=D(-1))
        assert bench.account.balances["USDT"] == (USDT0, D(0))
        bench.account.move("USDT", free=D(-1), locked=D(1))
        assert bench.account.balances["USDT"] == (USDT0 - 1, D(1))

    def test_set_balance_announces_a_deposit_with_its_delta(self, bench: Bench) -> None:
        change = bench.accounts.set_balance(KEY, "USDT", USDT0 + D("2500.5"), T0)
        assert change.delta == ("USDT", D("2500.5"))
        assert change.balances == (("USDT", USDT0 + D("2500.5"), D(0)),)
        assert bench.events == [change] and bench.account.update_time == T0
        with pytest.raises(ValueError):
            bench.accounts.set_balance(KEY, "USDT", "-1", T0)

    def test_hmac_signatures_verify_case_insensitively(self, bench: Bench) -> None:
        payload = "symbol=BTCUSDT&timestamp=1"
        good = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        assert bench.account.verify(payload, good)
        assert bench.account.verify(payload, good.upper())
        assert not bench.account.verify(payload + "&x=1", good)
        assert not bench.account.verify(payload, "not-hex")
        assert bench.account.key_type == "hmac"

    @pytest.mark.parametrize("kind", ["ed25519", "rsa"])
    def test_pem_keys_verify_base64_signatures(self, kind: str) -> None:
        private: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
        if kind == "ed25519":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        account = Account("k", pem)
        payload = b"apiKey=k&timestamp=1"
        if isinstance(private, ed25519.Ed25519PrivateKey):
            raw = private.sign(payload)
        else:
            raw = private.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        signature = base64.b64encode(raw).decode()
        assert account.key_type == kind
        assert account.verify(payload.decode(), signature)
        assert not account.verify("apiKey=k&timestamp=2", signature)
        assert not account.verify(payload.decode(), "%%%not-base64")
        assert "BEGIN" not in repr(account)

    def test_a_failing_listener_does_not_stop_the_others(self, bench: Bench) -> None:
        def broken(_event: object) -> None:
            raise RuntimeError("boom")

        seen: list[object] = []
        bench.accounts.listen(broken)
        stop = bench.accounts.listen(seen.append)
        bench.accounts.set_balance(KEY, "BTC", "2", T0)
        assert len(seen) == 1
        stop()
        bench.accounts.set_balance(KEY, "BTC", "3", T0)
        assert len(seen) == 1


class TestTaking:
    """Orders that cross walk the book level by level, as taker, with exact balances."""

    def test_market_buy_walks_the_asks(self, bench: Bench) -> None:
        (p0, q0), (p1, q1) = bench.btc.book.levels(ASK, 2)
        steps = q0 + q1 // 2
        order = bench.place(side="BUY", type="MARKET", quantity=qty(steps))
        assert order.status == "FILLED" and order.filled == qty(steps)
        assert [(f.price, f.qty, f.maker) for f in order.fills] == [
            (price(p0), qty(q0), False),
            (price(p1), qty(q1 // 2), False),
        ]
        cost = price(p0) * qty(q0) + price(p1) * qty(q1 // 2)
        assert bench.free("USDT") == USDT0 - cost and bench.locked("USDT") == 0
        assert bench.free("BTC") == BTC0 + qty(steps) * (1 - RATE)
        assert order.cum_quote == cost and order.cum_fee == qty(steps) * RATE
        assert bench.kinds() == ["NEW", "TRADE", "TRADE"]

    def test_events_show_the_cumulative_state_of_each_fill(self, bench: Bench) -> None:
        (_, q0) = bench.btc.book.levels(BID, 1)[0]
        bench.place(side="SELL", type="MARKET", quantity=qty(q0 + 1))
        orders = [e for e in bench.events if isinstance(e, tuple)]
        assert [(k, s, f) for k, s, f, _ in orders] == [
            ("NEW", "NEW", qty(0)),
            ("TRADE", "PARTIALLY_FILLED", qty(q0)),
            ("TRADE", "FILLED", qty(q0 + 1)),
        ]
        changes = [e for e in bench.events if isinstance(e, BalanceChange)]
        assert len(changes) == 1 and bench.events[-1] is changes[0]
        assert {a for a, _f, _l in changes[0].balances} == {"BTC", "USDT"}

    def test_sell_fees_are_charged_in_the_quote_asset(self, bench: Bench) -> None:
        (p0, q0) = bench.btc.book.levels(BID, 1)[0]
        steps = min(q0, 1000)
        order = bench.place(side="SELL", type="MARKET", quantity=qty(steps))
        proceeds = price(p0) * qty(steps)
        assert order.fills[0].fee == proceeds * RATE and order.fills[0].fee_asset == "USDT"
        assert bench.free("USDT") == USDT0 + proceeds * (1 - RATE)
        assert bench.free("BTC") == BTC0 - qty(steps)

    def test_crossing_limit_buy_pays_the_book_prices_not_its_limit(self, bench: Bench) -> None:
        (p0, q0), (p1, _q1) = bench.btc.book.levels(ASK, 2)
        order = bench.place(side="BUY", type="LIMIT", price=price(p1 + 50), quantity=qty(q0 + 10))
        assert order.status == "FILLED"
        assert [f.price for f in order.fills] == [price(p0), price(p1)]
        spent = price(p0) * qty(q0) + price(p1) * qty(10)
        assert bench.free("USDT") == USDT0 - spent and bench.locked("USDT") == 0

    def test_partly_crossing_limit_rests_with_price_times_remaining_locked(
        self, bench: Bench
    ) -> None:
        (p0, q0) = bench.btc.book.levels(ASK, 1)[0]
        order = bench.place(side="BUY", type="LIMIT", price=price(p0), quantity=qty(q0 + 500))
        assert order.status == "PARTIALLY_FILLED" and order.filled == qty(q0)
        assert bench.locked("USDT") == price(p0) * qty(500)
        assert bench.free("USDT") == USDT0 - price(p0) * qty(q0 + 500)
        assert bench.engine.open_orders(KEY) == [order]

    def test_better_prices_are_refunded_while_the_rest_keeps_resting(self, bench: Bench) -> None:
        (p0, q0), (p1, q1) = bench.btc.book.levels(ASK, 2)
        order = bench.place(side="BUY", type="LIMIT", price=price(p1), quantity=qty(q0 + q1 + 500))
        assert order.status == "PARTIALLY_FILLED" and order.remaining == qty(500)
        spent = price(p0) * qty(q0) + price(p1) * qty(q1)
        assert bench.locked("USDT") == price(p1) * qty(500)
        assert bench.free("USDT") == USDT0 - spent - price(p1) * qty(500)

    def test_ioc_remainder_expires_and_is_unlocked(self, bench: Bench) -> None:
        (p0, q0) = bench.btc.book.levels(ASK, 1)[0]
        order = bench.place(
            side="BUY", type="LIMIT", price=price(p0), quantity=qty(q0 + 500), time_in_force="IOC"
        )
        assert order.status == "EXPIRED" and order.filled == qty(q0)
        assert bench.locked("USDT") == 0
        assert bench.free("USDT") == USDT0 - price(p0) * qty(q0)
        assert bench.kinds() == ["NEW", "TRADE", "EXPIRED"]

    def test_fok_fills_completely_or_not_at_all(self, bench: Bench) -> None:
        (p0, q0) = bench.btc.book.levels(ASK, 1)[0]
        thin = bench.place(
            side="BUY", type="LIMIT", price=price(p0), quantity=qty(q0 + 1), time_in_force="FOK"
        )
        assert thin.status == "EXPIRED" and thin.fills == []
        assert bench.free("USDT") == USDT0 and bench.locked("USDT") == 0
        full = bench.place(
            side="BUY", type="LIMIT", price=price(p0), quantity=qty(q0), time_in_force="FOK"
        )
        assert full.status == "FILLED"

    def test_market_buy_by_quote_quantity_spends_at_most_that(self, bench: Bench) -> None:
        order = bench.place(side="BUY", type="MARKET", quantity=None, quote_quantity=D(1000))
        assert order.status == "FILLED" and order.quantity == order.filled > 0
        assert D(1000) - order.cum_quote < price(bench.btc.book.levels(ASK, 1)[0][0]) * qty(1)
        assert bench.free("USDT") == USDT0 - order.cum_quote
        assert bench.locked("USDT") == 0


class TestResting:
    """Resting orders fill when the market trades through them, as maker, at their price."""

    def resting_buy(self, bench: Bench, below: int = 100, steps: int = 1000) -> SimOrder:
        bid = bench.btc.book.best_bid()
        assert bid is not None
        return bench.place(side="BUY", type="LIMIT", price=price(bid - below), quantity=qty(steps))

    def test_an_order_away_from_the_market_rests(self, bench: Bench) -> None:
        order = self.resting_buy(bench)
        bench.tick([("SELL", order.price_ticks + 1, 5000), ("BUY", order.price_ticks, 5000)])
        assert order.status == "NEW" and order.fills == []
        assert bench.locked("USDT") == order.price * order.quantity

    def test_a_trade_through_the_price_fills_it_completely(self, bench: Bench) -> None:
        order = self.resting_buy(bench)
        bench.tick([("SELL", order.price_ticks - 1, 1)])
        assert order.status == "FILLED"
        assert [(f.price, f.qty, f.maker) for f in order.fills] == [
            (order.price, order.quantity, True)
        ]
        assert bench.locked("USDT") == 0
        assert bench.free("BTC") == BTC0 + order.quantity * (1 - RATE)

    def test_trades_at_the_price_fill_partially_first_come_first_served(self, bench: Bench) -> None:
        first = self.resting_buy(bench, steps=1000)
        second = self.resting_buy(bench, steps=1000)
        at = first.price_ticks
        bench.tick([("SELL", at, 300), ("SELL", at, 300)])
        assert (first.status, first.filled, second.filled) == ("PARTIALLY_FILLED", qty(600), 0)
        bench.tick([("SELL", at, 900)])
        assert (first.status, second.status, second.filled) == (
            "FILLED",
            "PARTIALLY_FILLED",
            qty(500),
        )
        assert bench.locked("USDT") == second.price * qty(500)

    def test_a_resting_sell_mirrors_it(self, bench: Bench) -> None:
        ask = bench.btc.book.best_ask()
        assert ask is not None
        order = bench.place(side="SELL", type="LIMIT", price=price(ask + 100), quantity=qty(700))
        assert bench.locked("BTC") == qty(700)
        bench.tick([("BUY", ask + 100, 200), ("SELL", ask + 100, 5000)])
        assert order.filled == qty(200)
        bench.tick([("BUY", ask + 101, 1)])
        assert order.status == "FILLED" and bench.locked("BTC") == 0
        assert bench.free("USDT") == USDT0 + order.cum_quote * (1 - RATE)

    def test_the_real_market_moving_through_fills_it(self, bench: Bench) -> None:
        ask = bench.btc.book.best_ask()
        assert ask is not None
        order = bench.place(side="BUY", type="LIMIT", price=price(ask - 1), quantity=qty(1000))
        for _ in range(500):
            if not order.is_open:
                break
            bench.engine.on_tick(bench.market.tick())
        assert order.status == "FILLED"
        assert all(f.maker and f.price == order.price for f in order.fills)


class TestCancel:
    """Cancelling ends an open order and unlocks what it still held."""

    def test_cancel_unlocks_the_remainder_of_a_partial_fill(self, bench: Bench) -> None:
        (p0, q0) = bench.btc.book.levels(ASK, 1)[0]
        order = bench.place(
            side="BUY", type="LIMIT", price=price(p0), quantity=qty(q0 + 500), client_order_id="c1"
        )
        done = bench.engine.cancel(
            bench.account, "binance", "BTCUSDT", client_order_id="c1", now=T0
        )
        assert done is order and order.status == "CANCELED" and order.filled == qty(q0)
        assert bench.locked("USDT") == 0
        assert bench.free("USDT") == USDT0 - price(p0) * qty(q0)
        assert bench.kinds()[-1] == "CANCELED"

    def test_unknown_closed_or_foreign_orders_cannot_be_cancelled(self, bench: Bench) -> None:
        bid = bench.btc.book.best_bid()
        assert bid is not None
        order = bench.place(side="BUY", type="LIMIT", price=price(bid - 50), quantity=qty(1000))
        other = bench.accounts.add("key-2", "secret-2")
        cases = [
            (other, "binance", "BTCUSDT", order.id),  # another account's order
            (bench.account, "bybit", "BTCUSDT", order.id),  # another venue's
            (bench.account, "binance", "ETHUSDT", order.id),  # another symbol's
            (bench.account, "binance", "BTCUSDT", 1),  # unknown id
        ]
        for account, venue, symbol, order_id in cases:
            with pytest.raises(Rejection) as info:
                bench.engine.cancel(account, venue, symbol, order_id, now=T0)
            assert info.value.reason == "unknown_order"
        bench.engine.cancel(bench.account, "binance", "BTCUSDT", order.id, now=T0)
        with pytest.raises(Rejection):
            bench.engine.cancel(bench.account, "binance", "BTCUSDT", order.id, now=T0)


class TestRules:
    """Trading rules, balances and client ids refuse an order before anything changes."""

    @pytest.mark.parametrize(
        ("fields", "reason", "detail", "bound"),
        [
            ({"price": D("60000.001")}, "filter", "PRICE_FILTER", "step"),
            ({"price": D("0")}, "filter", "PRICE_FILTER", "min"),
            ({"price": D("6000000.01")}, "filter", "PRICE_FILTER", "max"),
            ({"price": D("60000.000000001")}, "precision", "price", ""),
            ({"quantity": D("0.000011")}, "filter", "LOT_SIZE", "step"),
            ({"quantity": D("0")}, "filter", "LOT_SIZE", "min"),
            ({"quantity": D("100000")}, "filter", "LOT_SIZE", "max"),
            ({"quantity": D("0.00001")}, "filter", "NOTIONAL", "min"),
            ({"symbol": "DOGEUSDT"}, "unknown_symbol", "DOGEUSDT", ""),
            ({"type": "STOP_LOSS"}, "unsupported", "STOP_LOSS", ""),
            ({"time_in_force": "GTD"}, "unsupported", "GTD", ""),
            ({"quantity": D("100")}, "insufficient_balance", "USDT", ""),
        ],
    )
    def test_rejections(
        self, bench: Bench, fields: dict[str, Any], reason: str, detail: str, bound: str
    ) -> None:
        base = {"side": "BUY", "type": "LIMIT", "price": D("20000"), "quantity": D("0.001")}
        with pytest.raises(Rejection) as info:
            bench.place(**{**base, **fields})
        assert (info.value.reason, info.value.detail, info.value.bound) == (reason, detail, bound)
        assert bench.engine.orders == [] and bench.events == []
        assert bench.account.balances["USDT"] == (USDT0, D(0))

    def test_market_orders_have_their_own_lot_limit(self, bench: Bench) -> None:
        bench.accounts.set_balance(KEY, "BTC", "100000", T0)
        too_big = bench.btc.lot * 1000 + 1
        with pytest.raises(Rejection) as info:
            bench.place(side="SELL", type="MARKET", quantity=qty(too_big))
        assert (info.value.detail, info.value.bound) == ("MARKET_LOT_SIZE", "max")

    def test_client_ids_repeat_only_after_the_order_closed_on_binance(self, bench: Bench) -> None:
        bid = bench.btc.book.best_bid()
        assert bid is not None
        fields = {"side": "BUY", "type": "LIMIT", "price": price(bid - 50), "quantity": qty(500)}
        first = bench.place(client_order_id="same", **fields)
        with pytest.raises(Rejection) as info:
            bench.place(client_order_id="same", **fields)
        assert info.value.reason == "duplicate_client_id"
        bench.engine.cancel(bench.account, "binance", "BTCUSDT", first.id, now=T0)
        again = bench.place(client_order_id="same", **fields)
        found = bench.engine.find(KEY, "binance", "BTCUSDT", client_order_id="same")
        assert found is again

    def test_client_ids_never_repeat_when_unique_among_all(self, bench: Bench) -> None:
        bid = bench.btc.book.best_bid()
        assert bid is not None
        fields = {
            "venue": "bybit",
            "side": "BUY",
            "type": "LIMIT",
            "price": price(bid - 50),
            "quantity": qty(500),
            "client_ids_unique": "all",
        }
        first = bench.place(client_order_id="link", **fields)
        bench.engine.cancel(bench.account, "bybit", "BTCUSDT", first.id, now=T0)
        with pytest.raises(Rejection):
            bench.place(client_order_id="link", **fields)
        # empty ids are never compared; another venue has its own ids
        bench.place(client_order_id="", **fields)
        bench.place(client_order_id="", **fields)
        bench.place(client_order_id="link", **{**fields, "venue": "binance"})

    def test_post_only_that_would_take_is_rejected_or_cancelled(self, bench: Bench) -> None:
        ask = bench.btc.book.best_ask()
        assert ask is not None
        fields = {"side": "BUY", "type": "LIMIT", "price": price(ask), "quantity": qty(500)}
        with pytest.raises(Rejection) as info:
            bench.place(post_only=True, **fields)
        assert info.value.reason == "would_take"
        order = bench.place(post_only=True, post_only_rejects=False, **fields)
        assert (order.status, order.end_reason, order.fills) == ("CANCELED", "POST_ONLY", [])
        assert bench.locked("USDT") == 0 and bench.free("USDT") == USDT0
        maker = bench.place(post_only=True, **{**fields, "price": price(ask - 1)})
        assert maker.status == "NEW"

    def test_open_orders_per_symbol_are_capped(self, bench: Bench) -> None:
        bid = bench.btc.book.best_bid()
        assert bid is not None
        fields = {"side": "BUY", "type": "LIMIT", "price": price(bid - 50), "quantity": qty(10)}
        for _ in range(MAX_OPEN_ORDERS):
            bench.place(**fields)
        with pytest.raises(Rejection) as info:
            bench.place(**fields)
        assert info.value.detail == "MAX_NUM_ORDERS"
        bench.place(**{**fields, "symbol": "ETHUSDT", "price": D("1000"), "quantity": D("0.01")})


class TestLinear:
    """Linear orders lock margin and build a position; closing realizes the PnL."""

    def linear(self, bench: Bench, **fields: Any) -> SimOrder:
        return bench.place(venue="bybit", category="linear", **fields)

    def test_an_order_locks_its_margin_and_announces_the_position(self, bench: Bench) -> None:
        bid = bench.btc.book.best_bid()
        assert bid is not None
        order = self.linear(bench, side="SELL", type="LIMIT", price=price(bid + 50),
                            quantity=qty(10_000))  # fmt: skip
        assert order.status == "NEW"
        assert bench.locked("USDT") == order.price * qty(10_000) / LEVERAGE
        assert bench.locked("BTC") == 0 and bench.free("BTC") == BTC0
        assert [e for e in bench.events if isinstance(e, tuple)] == [
            ("NEW", "NEW", 0, None),
            ("POSITION", 0),
        ]

    def test_open_then_close_realizes_the_difference(self, bench: Bench) -> None:
        opened = self.linear(bench, side="BUY", type="MARKET", quantity=qty(10_000))
        entry = opened.average_price
        assert entry is not None
        position = bench.engine.position(KEY, "BTCUSDT")
        assert (position.size, position.entry_price) == (qty(10_000), entry)
        assert bench.locked("USDT") == position.margin == opened.cum_quote / LEVERAGE
        closed = self.linear(bench, side="SELL", type="MARKET", quantity=qty(10_000))
        assert closed.average_price is not None
        pnl = (closed.average_price - entry) * qty(10_000)
        assert (position.size, position.margin, position.realized) == (0, 0, pnl)
        fees = (opened.cum_quote + closed.cum_quote) * RATE
        assert opened.fills[0].fee_asset == "USDT" and opened.cum_fee + closed.cum_fee == fees
        assert (bench.free("USDT"), bench.locked("USDT")) == (USDT0 + pnl - fees, 0)

    def test_a_bigger_opposite_fill_flips_the_position(self, bench: Bench) -> None:
        (bid, depth) = bench.btc.book.levels(BID, 1)[0]
        steps = depth // 4  # the sell below fits in the best bid level
        bought = self.linear(bench, side="BUY", type="MARKET", quantity=qty(steps))
        entry = bought.average_price
        assert entry is not None
        flip = self.linear(bench, side="SELL", type="MARKET", quantity=qty(3 * steps))
        assert [f.price for f in flip.fills] == [price(bid)]
        position = bench.engine.position(KEY, "BTCUSDT")
        assert (position.size, position.side, position.entry_price) == (
            -qty(2 * steps),
            "SELL",
            price(bid),
        )
        assert position.margin == price(bid) * qty(2 * steps) / LEVERAGE
        assert position.realized == (price(bid) - entry) * qty(steps)

    def test_margin_decides_what_a_linear_order_may_be(self, bench: Bench) -> None:
        bench.accounts.set_balance(KEY, "USDT", "1000", T0)
        bid = bench.btc.book.best_bid()
        assert bid is not None
        fields = {"side": "BUY", "type": "LIMIT", "price": price(bid - 10)}
        self.linear(bench, quantity=D("0.16"), **fields)  # 9600 notional: 960 margin
        with pytest.raises(Rejection) as info:
            self.linear(bench, quantity=D("0.01"), **fields)
        assert info.value.reason == "insufficient_balance"


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.sampled_from(["BUY", "SELL"]),
            st.sampled_from(["LIMIT", "MARKET"]),
            st.integers(-300, 300),  # price offset from the touch, ticks
            st.integers(1, 60_000),  # quantity, steps
            st.sampled_from(["GTC", "IOC", "FOK"]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 10)),
        st.tuples(st.just("tick"), st.integers(1, 5)),
    ),
    max_size=25,
)


class TestInvariants:
    """Whatever happens, balances are exactly what the fills and fees say."""

    @pytest.mark.parametrize("category", ["spot", "linear"])
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ops=_OPS)
    def test_balances_locks_and_fills_agree(
        self, category: str, ops: list[tuple[Any, ...]]
    ) -> None:
        bench = Bench(seed=3)
        for op in ops:
            if op[0] == "place":
                _, side, kind, offset, steps, tif = op
                bid, ask = bench.btc.book.best_bid(), bench.btc.book.best_ask()
                assert bid is not None and ask is not None
                touch = bid if side == "BUY" else ask
                fields: dict[str, Any] = {
                    "side": side,
                    "type": kind,
                    "quantity": qty(steps),
                    "category": category,
                    "venue": "bybit" if category == "linear" else "binance",
                }
                if kind == "LIMIT":
                    fields.update(price=price(max(1, touch + offset)), time_in_force=tif)
                with contextlib.suppress(Rejection):
                    bench.place(**fields)
            elif op[0] == "cancel":
                live = bench.engine.open_orders(KEY)
                if live:
                    target = live[op[1] % len(live)]
                    bench.engine.cancel(bench.account, target.venue, "BTCUSDT", target.id, now=T0)
            else:
                for _ in range(op[1]):
                    bench.engine.on_tick(bench.market.tick())
            if category == "linear":
                self.check_linear(bench)
            else:
                self.check(bench)

    @staticmethod
    def check_linear(bench: Bench) -> None:
        orders = bench.engine.orders
        position = bench.engine.position(KEY, "BTCUSDT")
        fees = sum((o.cum_fee for o in orders), D(0))
        assert bench.free("BTC") + bench.locked("BTC") == BTC0
        assert bench.free("USDT") + bench.locked("USDT") == USDT0 + position.realized - fees
        held = sum((o.reserve for o in orders), D(0))
        assert bench.locked("USDT") == held + position.margin
        filled = sum((o.filled if o.side == "BUY" else -o.filled for o in orders), D(0))
        assert position.size == filled
        assert (position.margin == 0) == (position.size == 0)
        for o in orders:
            if o.is_open and o.type == "LIMIT":
                assert o.reserve == o.price * o.remaining / LEVERAGE
            elif not o.is_open:
                assert o.reserve == 0

    @staticmethod
    def check(bench: Bench) -> None:
        orders = bench.engine.orders
        fills = [(o, f) for o in orders for f in o.fills]
        btc = BTC0 + sum((f.qty - f.fee if o.side == "BUY" else -f.qty for o, f in fills), D(0))
        usdt = USDT0 + sum(
            (-f.quote_qty if o.side == "BUY" else f.quote_qty - f.fee for o, f in fills), D(0)
        )
        assert bench.free("BTC") + bench.locked("BTC") == btc
        assert bench.free("USDT") + bench.locked("USDT") == usdt
        for asset in ("BTC", "USDT"):
            held = sum((o.reserve for o in orders if o.reserve_asset == asset), D(0))
            assert bench.locked(asset) == held
            assert bench.free(asset) >= 0
        for o in orders:
            assert o.filled_steps <= o.qty_steps
            assert o.cum_quote == sum((f.quote_qty for f in o.fills), D(0))
            if not o.is_open:
                assert o.reserve == 0 and o not in bench.engine.open_orders(KEY)
            elif o.side == "BUY":
                assert o.reserve == o.price * o.remaining
            else:
                assert o.reserve == o.remaining
