"""Derivatives accounts through the real ``rxc.Connector`` against the simulator.

Binance USD-M (REST on ``/fapi``, user data on the listenKey ``/private`` socket) and
Bybit linear (REST + private stream): a market order opens a position that
``positions()`` shows with the right size and entry; a fill while the private stream is
down is reconciled (``reconciled=True``); a listenKey that expires loses nothing; a bad
filter is refused before anything is sent; a non-idempotent call whose answer is lost
is never retried and says which client order id to look up; a borrowed balance shows
its debt. The simulator is paused: the market moves only when a test steps it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

D = Decimal
SYMBOL = "BTCUSDT"
KEY = "deriv-key"
SECRET = "deriv-secret-never-logged"
CONNECTION = {"reconnect_delay": 0.3, "reconnect_jitter": 0.0, "healthy_after": 1.0}


def futures_config(sim: ExchangeSimulator) -> rxc.Config:
    return sim.connector_config(
        "binance_futures", api_key=KEY, api_secret=SECRET, connection=CONNECTION
    )


def bybit_linear_config(sim: ExchangeSimulator) -> rxc.Config:
    return sim.connector_config(
        "bybit-linear", api_key=KEY, api_secret=SECRET, connection=CONNECTION
    )


def futures_config_from_urls(sim: ExchangeSimulator) -> rxc.Config:
    """The same, from REST and stream URLs only (the /private URL derives from them)."""
    return rxc.Config.binance_futures(
        api_key=KEY, api_secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url
    )


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Account:
    """Everything the account feeds emit."""

    def __init__(self, conn: rxc.Connector) -> None:
        self.orders: list[rxc.OrderUpdate] = []
        self.executions: list[rxc.Execution] = []
        self.balances: list[rxc.Balance] = []
        self.positions: list[rxc.Position] = []
        self.errors: list[Exception] = []
        self.failures: list[Exception] = []
        conn.errors.subscribe(self.errors.append)
        self.subscriptions = [
            conn.orders().subscribe(self.orders.append, self.failures.append),
            conn.executions().subscribe(self.executions.append, self.failures.append),
            conn.balances().subscribe(self.balances.append, self.failures.append),
            conn.positions().subscribe(self.positions.append, self.failures.append),
        ]

    def statuses(self, order_id: str) -> list[str]:
        return [u.status for u in self.orders if u.order_id == order_id]

    def position(self) -> rxc.Position | None:
        found = [p for p in self.positions if p.symbol == SYMBOL]
        return found[-1] if found else None

    def close(self) -> None:
        for subscription in self.subscriptions:
            subscription.dispose()
        assert self.failures == []


def futures_socket_open(sim: ExchangeSimulator) -> bool:
    return any(not c.closed for c in sim.futures_users.connections)


def order_posts(sim: ExchangeSimulator) -> list[Any]:
    return [r for r in sim.rest_log if r.method == "POST" and r.path == "/fapi/v1/order"]


class TestUsdmPositions:
    async def test_a_market_order_opens_a_position(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            placed = await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            await until(lambda: account.position() is not None)
            engine = sim.engine.position(KEY, SYMBOL)
            position = account.position()
            assert position is not None and not position.reconciled
            assert (position.side, position.size, position.entry_price) == (
                "long",
                D("0.05"),
                engine.entry_price,
            )
            assert (position.position_side, position.margin_mode) == ("both", "cross")
            filled = [u for u in account.orders if u.status == "FILLED"][-1]
            assert filled.average_price == engine.entry_price
            assert sum(e.quantity for e in account.executions) == D("0.05")
            # ACCOUNT_UPDATE's wallet balance is what the simulator holds
            usdt = [b for b in account.balances if b.asset == "USDT"][-1]
            assert usdt.total == sum(sim.balance(KEY, "USDT"))
            # the REST view agrees, with what the stream does not carry
            (rest,) = await conn.open_positions()
            assert (rest.size, rest.entry_price, rest.leverage) == (
                D("0.05"),
                engine.entry_price,
                D(10),
            )
            assert rest.mark_price is not None and rest.liquidation_price is not None
            assert rest.unrealised_pnl == D("0.05") * (rest.mark_price - rest.entry_price)
            # closing it flattens the position on the stream
            await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.05"), reduceOnly=True)
            await until(lambda: account.position() is not None and account.position().size == 0)
            assert await conn.open_positions() == []
            account.close()
            assert account.errors == []

    async def test_hedge_mode_keeps_a_long_and_a_short(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            account = Account(conn)
            notices: list[rxc.AccountEvent] = []
            conn.account_events().subscribe(notices.append)
            await until(lambda: futures_socket_open(sim))
            await conn.rest.set_position_mode(True)
            await conn.rest.set_leverage(SYMBOL, 20)
            await until(lambda: len(notices) == 2)
            assert (notices[0].kind, notices[0].hedge_mode) == ("account_config", True)
            assert (notices[1].kind, notices[1].symbol, notices[1].leverage) == (
                "leverage",
                SYMBOL,
                D(20),
            )
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.03"), positionSide="LONG")
            await conn.place_order(
                SYMBOL, "sell", "MARKET", quantity=D("0.02"), positionSide="SHORT"
            )
            await until(lambda: {p.position_side for p in account.positions} == {"long", "short"})
            by_side = {p.position_side: p for p in account.positions}
            assert (by_side["long"].side, by_side["long"].size) == ("long", D("0.03"))
            assert (by_side["short"].side, by_side["short"].size) == ("short", D("0.02"))
            rest = {p.position_side: p for p in await conn.open_positions()}
            assert rest["long"].leverage == D(20) and rest["short"].size == D("0.02")
            # closing more than the LONG holds is refused by the venue (-2022)
            with pytest.raises(rxc.ExchangeError) as refused:
                await conn.place_order(
                    SYMBOL, "sell", "MARKET", quantity=D("0.05"), positionSide="LONG"
                )
            assert refused.value.code == -2022
            account.close()

    async def test_isolated_margin_is_the_locked_part(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            await conn.rest.set_margin_type(SYMBOL, "ISOLATED")
            with pytest.raises(rxc.ExchangeError) as same:
                await conn.rest.set_margin_type(SYMBOL, "ISOLATED")
            assert same.value.code == -4046
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            await until(lambda: account.position() is not None)
            position = account.position()
            assert position is not None and position.margin_mode == "isolated"
            margin = sim.engine.position(KEY, SYMBOL).margin
            usdt = [b for b in account.balances if b.asset == "USDT"][-1]
            wallet = sum(sim.balance(KEY, "USDT"))
            assert (usdt.locked, usdt.free, usdt.total) == (margin, wallet - margin, wallet)
            (rest,) = [b for b in await conn.account() if b.asset == "USDT"]
            assert (rest.free, rest.locked) == (usdt.free, usdt.locked)
            (risk,) = await conn.open_positions()
            assert risk.margin_mode == "isolated"
            with pytest.raises(rxc.ExchangeError) as busy:
                await conn.rest.set_margin_type(SYMBOL, "CROSSED")
            assert busy.value.code == -4048  # not with a position open
            account.close()

    async def test_a_margin_call_comes_on_account_events(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            notices: list[rxc.AccountEvent] = []
            conn.account_events().subscribe(notices.append)
            await until(lambda: futures_socket_open(sim))
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            sim.futures_users.margin_call(KEY)
            await until(lambda: bool(notices))
            (call,) = notices
            assert call.kind == "margin_call" and call.positions[0].size == D("0.05")


class TestNoPositions:
    async def test_binance_spot_open_positions_is_not_supported(
        self, sim: ExchangeSimulator
    ) -> None:
        """Spot has no positions: the library's NotSupportedError naming where they are,
        not an AttributeError from inside it."""
        config = sim.connector_config("binance", api_key=KEY, api_secret=SECRET)
        async with rxc.Connector(config) as conn:
            with pytest.raises(rxc.NotSupportedError, match="binance_futures") as info:
                await conn.open_positions()
        assert (info.value.venue, info.value.feature) == ("binance", "positions")


class TestUsdmFastExecutions:
    async def test_trade_lite_reports_each_fill_once(self, sim: ExchangeSimulator) -> None:
        config = attrs.evolve(futures_config(sim), fast_executions=True)
        async with rxc.Connector(config) as conn:
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            placed = await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            await asyncio.sleep(0.2)  # a duplicate from ORDER_TRADE_UPDATE would be here now
            engine_fills = next(o for o in sim.orders(KEY) if str(o.id) == placed.order_id).fills
            assert [e.execution_id for e in account.executions] == [
                str(f.trade_id) for f in engine_fills
            ]
            assert all(e.fee is None and e.fee_asset is None for e in account.executions)
            fees = sum(u.fee for u in account.orders if u.order_id == placed.order_id)
            assert fees == sum(f.fee for f in engine_fills)  # the fee is on the order updates
            account.close()


class TestUsdmFaults:
    async def test_a_fill_while_the_stream_is_down_is_reconciled(
        self, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            sockets_before = sim.connection_count_total
            sim.drop_user_stream_on_next_fill(KEY)
            placed = await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.04"))
            await until(lambda: any(p.reconciled for p in account.positions))
            position = account.position()
            engine = sim.engine.position(KEY, SYMBOL)
            assert position is not None and position.reconciled
            assert (position.side, position.size, position.entry_price) == (
                "long",
                D("0.04"),
                engine.entry_price,
            )
            # the order, placed and filled in the gap, is looked up and reported FILLED
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            final = [u for u in account.orders if u.order_id == placed.order_id][-1]
            assert final.reconciled and final.filled_quantity == D("0.04")
            assert sim.connection_count_total > sockets_before  # it did reconnect
            account.close()

    async def test_the_listen_key_never_reaches_events_errors_or_logs(
        self, sim: ExchangeSimulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The socket URL carries the listenKey (anyone holding it can read the account's
        stream): connection events, errors and logs show the configured URL instead,
        also across a reconnect (whose reason quotes the closed socket)."""
        caplog.set_level(logging.DEBUG, logger="rxconnector")
        async with rxc.Connector(futures_config(sim)) as conn:
            events: list[rxc.ConnectionEvent] = []
            conn.connection_state.subscribe(events.append)
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            (key,) = sim.futures_users.listen_keys
            sim.drop_user_stream_on_next_fill(KEY)
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.04"))
            await until(lambda: any(p.reconciled for p in account.positions))
            account.close()
        private = [e for e in events if "/private" in e.url]
        states = {e.state for e in private}
        assert {rxc.ConnectionState.CONNECTED, rxc.ConnectionState.RECONNECTING} <= states
        assert all(key not in e.url and key not in (e.reason or "") for e in events)
        assert all(key not in str(error) for error in account.errors)
        assert "private stream reconnecting" in caplog.text  # the reason was logged...
        assert key not in caplog.text  # ...without the key

    async def test_a_position_closed_in_the_gap_comes_flat(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.04"))
            await until(lambda: account.position() is not None)
            sim.drop_user_stream_on_next_fill(KEY)
            await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.04"))
            await until(lambda: account.position() is not None and account.position().reconciled)
            flat = account.position()
            assert flat is not None and (flat.side, flat.size) == ("flat", D(0))
            account.close()

    async def test_a_listen_key_expiry_loses_nothing(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: futures_socket_open(sim))
            (old_key,) = sim.futures_users.listen_keys
            assert sim.expire_listen_keys(KEY) == 1
            # filled while the key is expired: its events never reach the old socket
            placed = await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.03"))
            await until(lambda: any(p.reconciled for p in account.positions))
            position = account.position()
            assert position is not None and (position.side, position.size) == ("short", D("0.03"))
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            (new_key,) = sim.futures_users.listen_keys
            assert new_key != old_key
            # the new socket is live: the next fill arrives unreconciled
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.03"))
            await until(lambda: account.position() is not None and account.position().size == 0)
            assert not account.position().reconciled  # type: ignore[union-attr]
            account.close()

    async def test_bad_filters_are_refused_before_sending(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            info = (await conn.exchange_info([SYMBOL]))[SYMBOL]
            assert info.step_size is not None and info.tick_size is not None
            too_fine = info.step_size / 10
            with pytest.raises(rxc.OrderRejectedError) as lot:
                await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05") + too_fine)
            assert lot.value.filter == "LOT_SIZE"
            huge = info.max_qty
            assert huge is not None
            with pytest.raises(rxc.OrderRejectedError) as market_lot:
                await conn.place_order(SYMBOL, "buy", "MARKET", quantity=huge)
            assert market_lot.value.filter == "MARKET_LOT_SIZE"
            mark = await conn.rest.mark_price_now(SYMBOL)
            far = (mark * D("1.2")).quantize(info.tick_size.normalize())
            with pytest.raises(rxc.OrderRejectedError) as percent:
                await conn.place_order(SYMBOL, "sell", "LIMIT", quantity=D("0.05"), price=far)
            assert percent.value.filter == "PERCENT_PRICE"
            with pytest.raises(rxc.OrderRejectedError) as notional:
                await conn.place_order(
                    SYMBOL, "buy", "LIMIT", quantity=info.step_size, price=info.tick_size * 10
                )
            assert notional.value.filter in ("NOTIONAL", "PERCENT_PRICE")
            with pytest.raises(ValueError, match="hedge mode"):
                conn.rest.place_order(
                    SYMBOL, "buy", "MARKET", quantity=D("1"), positionSide="LONG", reduceOnly=True
                )
            assert order_posts(sim) == []

    async def test_a_fresh_connector_fetches_the_rules_before_its_first_order(
        self, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(futures_config_from_urls(sim)) as conn:
            with pytest.raises(rxc.OrderRejectedError) as lot:
                await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.000001"))
            assert lot.value.filter == "LOT_SIZE"
            assert order_posts(sim) == []
            assert any(r.path == "/fapi/v1/exchangeInfo" for r in sim.rest_log)

    async def test_a_lost_order_answer_is_never_retried(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(futures_config(sim)) as conn:
            sim.fail_rest(503)
            with pytest.raises(rxc.OrderStatusUnknownError) as unknown:
                await conn.place_order(
                    SYMBOL, "buy", "MARKET", quantity=D("0.01"), client_order_id="lost-usdm-1"
                )
            assert unknown.value.client_order_id == "lost-usdm-1"
            assert len(order_posts(sim)) == 1


class TestBybitLinear:
    async def test_a_fill_while_the_stream_is_down_is_reconciled(
        self, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(bybit_linear_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: any(key == KEY for _c, key, _t in sim.private_subscriptions()))
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            await until(lambda: account.position() is not None)
            assert account.position().size == D("0.05")  # type: ignore[union-attr]
            await sim.drop_connections()
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            await until(lambda: any(p.reconciled for p in account.positions))
            position = account.position()
            engine = sim.engine.position(KEY, SYMBOL)
            assert position is not None and position.reconciled
            assert (position.size, position.entry_price) == (D("0.10"), engine.entry_price)
            (rest,) = await conn.open_positions()
            assert (rest.size, rest.leverage, rest.position_side) == (D("0.1"), D(10), "both")
            with pytest.raises(rxc.ExchangeError) as refused:  # more than the position
                await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.2"), reduceOnly=True)
            assert refused.value.code == 110017
            await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.1"), reduceOnly=True)
            await until(lambda: account.position() is not None and account.position().size == 0)
            account.close()


class TestSpotAccountsHaveNoPositions:
    async def test_a_bybit_spot_reconnect_does_not_ask_for_positions(
        self, sim: ExchangeSimulator
    ) -> None:
        config = sim.connector_config(
            "bybit", api_key=KEY, api_secret=SECRET, connection=CONNECTION
        )
        async with rxc.Connector(config) as conn:
            account = Account(conn)
            subscribed = lambda: any(key == KEY for _c, key, _t in sim.private_subscriptions())  # noqa: E731
            await until(subscribed)
            await sim.drop_connections()
            sim.set_balance(KEY, "USDT", "99000")  # a change to reconcile
            await until(lambda: any(b.reconciled for b in account.balances))
            assert [e for e in account.errors if isinstance(e, rxc.FeedGapError)] == []
            assert not any("/v5/position/list" in r.path for r in sim.rest_log)
            account.close()


class TestBybitHedgeMode:
    async def test_a_buy_side_and_a_sell_side(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(bybit_linear_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: any(key == KEY for _c, key, _t in sim.private_subscriptions()))
            await conn.rest.set_position_mode(True, symbol=SYMBOL)
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.03"), positionIdx=1)
            await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.02"), positionIdx=2)
            await until(lambda: {p.position_side for p in account.positions} >= {"long", "short"})
            sides = {p.position_side: p for p in await conn.open_positions()}
            assert (sides["long"].side, sides["long"].size) == ("long", D("0.03"))
            assert (sides["short"].side, sides["short"].size) == ("short", D("0.02"))
            with pytest.raises(rxc.ExchangeError) as mismatch:  # hedge mode needs a side
                await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.01"))
            assert mismatch.value.code == 10001
            account.close()


class TestBorrowedBalances:
    async def test_a_borrowed_balance_shows_its_debt(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(bybit_linear_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: any(key == KEY for _c, key, _t in sim.private_subscriptions()))
            sim.borrow(KEY, "USDT", "200")
            await until(lambda: any(b.borrowed for b in account.balances))
            usdt = [b for b in account.balances if b.asset == "USDT"][-1]
            wallet = sum(sim.balance(KEY, "USDT"))
            assert (usdt.borrowed, usdt.equity) == (D(200), wallet - 200)
            assert usdt.free == wallet - 200 - usdt.locked  # never more than is owned
            (rest,) = [b for b in await conn.account() if b.asset == "USDT"]
            assert (rest.free, rest.borrowed) == (usdt.free, D(200))
            account.close()
