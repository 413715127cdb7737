"""Trading through the real ``rxc.Connector`` against the simulator's matching engine.

Binance Spot (REST + WebSocket-API user data) and Bybit spot (REST + private stream),
with the same flow: place a limit order, see it NEW on ``conn.orders()``, let the market
go through it, see the fill on ``orders()`` / ``executions()`` and the new amounts on
``balances()``; cancel another; and the faults a trading client must survive: a wrong
secret, a server clock that jumped, a private stream that drops while an order fills;
and on Bybit linear, the position feed. Every test captures all log output and checks
the secret never appears in it.

The simulator is paused: the market moves only when a test steps it, so fills happen
exactly when the test says (seed 7 crosses the orders placed here within a few ticks).
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
from rxconnector.testing.simulator.book import ASK, BID

D = Decimal
SYMBOL = "BTCUSDT"
KEY = "flow-key"
SECRET = "flow-secret-6a1f0c-never-in-any-log"
#: A reconnect slow enough that the test can fill an order while the stream is down.
CONNECTION = {"reconnect_delay": 0.4, "reconnect_jitter": 0.0, "healthy_after": 1.0}


@attrs.frozen
class Venue:
    """How one venue is configured and how the simulator shows its private stream."""

    id: str
    config: Callable[..., rxc.Config]
    #: whether the simulator holds a live private subscription for ``KEY``
    subscribed: Callable[[ExchangeSimulator], bool]
    #: the error code of a bad signature
    bad_signature: int


def _binance_config(sim: ExchangeSimulator, **overrides: Any) -> rxc.Config:
    return rxc.Config.binance(
        api_key=KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        ws_api_url=f"{sim.ws_url}/ws-api/v3",
        **{"connection": CONNECTION, **overrides},
    )


def _bybit_config(sim: ExchangeSimulator, **overrides: Any) -> rxc.Config:
    return rxc.Config.bybit(
        "spot",
        api_key=KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        private_ws_url=f"{sim.ws_url}/v5/private",
        **{"connection": CONNECTION, **overrides},
    )


VENUES = [
    Venue(
        "binance",
        _binance_config,
        lambda sim: any(key == KEY for _c, _s, key in sim.user_stream_subscriptions()),
        -1022,
    ),
    Venue(
        "bybit",
        _bybit_config,
        lambda sim: any(key == KEY and topics for _c, key, topics in sim.private_subscriptions()),
        10004,
    ),
]


@pytest.fixture(params=VENUES, ids=[v.id for v in VENUES])
def venue(request: pytest.FixtureRequest) -> Venue:
    result: Venue = request.param
    return result


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Capture every log record of the test (DEBUG and up) and check none shows the
    secret, in its message or its arguments."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]
    assert records, "nothing was logged: the secrecy check would be empty"
    for record in records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert SECRET not in text, record


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Account:
    """Everything ``orders()``, ``executions()``, ``balances()`` and ``errors`` emit."""

    def __init__(self, conn: rxc.Connector) -> None:
        self.orders: list[rxc.OrderUpdate] = []
        self.executions: list[rxc.Execution] = []
        self.balances: list[rxc.Balance] = []
        self.failures: list[Exception] = []
        self.errors: list[Exception] = []
        conn.errors.subscribe(self.errors.append)
        self._subscriptions = [
            conn.orders().subscribe(self.orders.append, self.failures.append),
            conn.executions().subscribe(self.executions.append, self.failures.append),
            conn.balances().subscribe(self.balances.append, self.failures.append),
        ]

    def statuses(self, order_id: str) -> list[str]:
        return [u.status for u in self.orders if u.order_id == order_id]

    def last_balance(self, asset: str) -> rxc.Balance | None:
        found = [b for b in self.balances if b.asset == asset]
        return found[-1] if found else None

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.dispose()


def touch(sim: ExchangeSimulator, side: int) -> Decimal:
    return D(sim.symbol(SYMBOL).book.levels(side, 1)[0][0]).scaleb(-2)


async def fill(sim: ExchangeSimulator, order_id: str, limit: int = 300) -> None:
    """Step the market until it has gone through the order."""
    for _ in range(limit):
        order = next(o for o in sim.orders(KEY) if str(o.id) == order_id)
        if not order.is_open:
            assert order.status == "FILLED"
            return
        await sim.step()
    raise AssertionError("the market never went through the order")


async def place_resting_buy(conn: rxc.Connector, sim: ExchangeSimulator) -> rxc.Order:
    """A buy one tick under the best ask: it rests, and the market soon crosses it."""
    return await conn.place_order(
        SYMBOL, "buy", "LIMIT", quantity=D("0.01"), price=touch(sim, ASK) - D("0.01")
    )


class TestOrderLifecycle:
    """New, filled and cancelled orders show on the account feeds as they happen."""

    async def test_a_limit_order_rests_then_fills_and_moves_the_balances(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(venue.config(sim)) as conn:
            account = Account(conn)
            await until(lambda: venue.subscribed(sim))
            placed = await place_resting_buy(conn, sim)
            await until(lambda: account.statuses(placed.order_id) == ["NEW"])
            usdt = account.last_balance("USDT")
            assert usdt is not None and usdt.locked == placed.price * D("0.01")
            await fill(sim, placed.order_id)
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            update = account.orders[-1]
            assert (update.filled_quantity, update.last_fill_quantity) == (D("0.01"), D("0.01"))
            await until(lambda: len(account.executions) == 1)
            execution = account.executions[0]
            assert (execution.order_id, execution.price, execution.quantity) == (
                placed.order_id,
                placed.price,
                D("0.01"),
            )
            assert execution.is_maker and execution.fee == D("0.00001")
            btc_free, _ = sim.balance(KEY, "BTC")

            def settled() -> bool:
                btc, usdt = account.last_balance("BTC"), account.last_balance("USDT")
                return (
                    btc is not None
                    and btc.free == btc_free
                    and usdt is not None
                    and (usdt.locked == 0)
                )

            await until(settled)
            assert btc_free == 1 + D("0.01") - D("0.00001")
            assert await conn.open_orders(SYMBOL) == []
            account.close()
            assert account.failures == []

    async def test_a_cancelled_order_shows_canceled(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(venue.config(sim)) as conn:
            account = Account(conn)
            await until(lambda: venue.subscribed(sim))
            placed = await conn.place_order(
                SYMBOL, "buy", "LIMIT", quantity=D("0.01"), price=touch(sim, BID) - 100
            )
            await until(lambda: account.statuses(placed.order_id) == ["NEW"])
            assert [o.order_id for o in await conn.open_orders(SYMBOL)] == [placed.order_id]
            cancelled = await conn.cancel_order(SYMBOL, order_id=placed.order_id)
            assert cancelled.status == "CANCELED"
            await until(lambda: account.statuses(placed.order_id) == ["NEW", "CANCELED"])
            await until(lambda: (b := account.last_balance("USDT")) is not None and b.locked == 0)
            assert sim.balance(KEY, "USDT") == (D(100_000), 0)
            account.close()
            assert account.failures == []


class TestFaults:
    """What a trading client must survive, end to end."""

    async def test_a_wrong_secret_is_refused_and_fails_the_account_feeds(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        sim.add_api_key(KEY, "the-secret-the-exchange-knows")
        async with rxc.Connector(venue.config(sim)) as conn:
            with pytest.raises(rxc.ExchangeError) as info:
                await place_resting_buy(conn, sim)
            assert info.value.code == venue.bad_signature
            account = Account(conn)
            await until(lambda: bool(account.failures))
            failure = account.failures[0]
            assert isinstance(failure, rxc.ExchangeError)
            if venue.id == "binance":  # the user stream subscription is signed per request
                assert failure.code == venue.bad_signature
            else:  # Bybit's auth answer carries only ret_msg, no retCode
                assert "authentication" in str(failure) and "not authorized" in str(failure)
            assert SECRET not in repr(account.failures[0]) + str(info.value)
            assert sim.orders() == [] and not venue.subscribed(sim)

    async def test_a_server_clock_jump_is_resynced_and_the_order_retried(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(venue.config(sim)) as conn:
            synced = conn.now()
            sim.clock_offset_ms = 8_000  # our signed timestamps are now 8 s late
            placed = await place_resting_buy(conn, sim)
            assert [str(o.id) for o in sim.orders(KEY)] == [placed.order_id]
            assert conn.now() - synced >= 7_500  # the clock was re-synced before the retry
            account = Account(conn)
            await until(lambda: venue.subscribed(sim))
            await fill(sim, placed.order_id)
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            account.close()
            assert account.failures == []

    async def test_binance_user_stream_resyncs_when_its_subscription_is_refused(
        self, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(_binance_config(sim)) as conn:
            sim.clock_offset_ms = 8_000  # the next subscribe's timestamp is refused (-1021)
            account = Account(conn)
            await until(lambda: VENUES[0].subscribed(sim))
            refused = [r for r in sim.control_log if "subscribe.signature" in r.text]
            assert len(refused) >= 2  # refused once, accepted after the re-sync
            sim.set_balance(KEY, "ETH", "4")
            await until(lambda: (b := account.last_balance("ETH")) is not None and b.free == 4)
            account.close()
            assert account.failures == []

    async def test_a_fill_while_the_private_stream_is_down_is_reconciled(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(venue.config(sim)) as conn:
            account = Account(conn)
            await until(lambda: venue.subscribed(sim))
            placed = await place_resting_buy(conn, sim)
            await until(lambda: account.statuses(placed.order_id) == ["NEW"])
            assert await sim.drop_connections() >= 1
            await fill(sim, placed.order_id)  # the exchange sends this fill to nobody
            assert not venue.subscribed(sim), "reconnected before the fill: nothing tested"
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            update = account.orders[-1]
            assert update.reconciled and update.filled_quantity == D("0.01")
            btc_free, _ = sim.balance(KEY, "BTC")
            await until(
                lambda: (b := account.last_balance("BTC")) is not None and b.free == btc_free
            )
            btc = account.last_balance("BTC")
            assert btc is not None and btc.reconciled
            account.close()
            assert account.failures == []

    async def test_an_order_placed_and_filled_while_the_stream_is_down_is_reconciled(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with rxc.Connector(venue.config(sim)) as conn:
            account = Account(conn)
            await until(lambda: venue.subscribed(sim))
            assert await sim.drop_connections() >= 1
            # placed AND filled before the stream is back: never open, never reported
            # a limit buy through the best ask takes at once (on Bybit spot a market
            # buy's qty is in the quote coin, so a limit order keeps both venues alike)
            placed = await conn.place_order(
                SYMBOL, "buy", "LIMIT", quantity=D("0.01"), price=touch(sim, ASK) + D("5")
            )
            assert not venue.subscribed(sim), "reconnected before the order: nothing tested"
            await until(lambda: "FILLED" in account.statuses(placed.order_id))
            update = account.orders[-1]
            assert update.reconciled and update.filled_quantity == D("0.01")
            account.close()
            assert account.failures == []

    async def test_binance_event_stream_terminated_is_renewed(self, sim: ExchangeSimulator) -> None:
        async with rxc.Connector(_binance_config(sim)) as conn:
            account = Account(conn)
            await until(lambda: VENUES[0].subscribed(sim))
            (first,) = sim.user_stream_subscriptions()
            assert sim.terminate_user_streams() == 1
            await until(lambda: sim.user_stream_subscriptions() not in ([], [first]))
            placed = await place_resting_buy(conn, sim)
            await fill(sim, placed.order_id)
            await until(lambda: account.statuses(placed.order_id)[-1:] == ["FILLED"])
            account.close()
            assert account.failures == []

    async def test_logs_are_captured_while_trading(
        self, venue: Venue, sim: ExchangeSimulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The secrecy check runs on real output: signed calls and the private stream log."""
        async with rxc.Connector(venue.config(sim)) as conn:
            account = Account(conn)
            await until(lambda: venue.subscribed(sim))
            await place_resting_buy(conn, sim)
            account.close()
        text = caplog.text
        assert "private stream subscribed" in text and "/order" in text


class TestBybitLinear:
    """USDT perpetuals through the Connector: the position feed follows the fills."""

    async def test_positions_follow_market_orders(self, sim: ExchangeSimulator) -> None:
        config = _bybit_config(sim)
        async with rxc.Connector(attrs.evolve(config, category="linear")) as conn:
            positions: list[rxc.Position] = []
            failures: list[Exception] = []
            subscription = conn.positions().subscribe(positions.append, failures.append)
            await until(lambda: VENUES[1].subscribed(sim))
            await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
            await until(lambda: any(p.side == "long" for p in positions))
            long = positions[-1]
            engine = sim.engine.position(KEY, SYMBOL)
            assert (long.size, long.entry_price, long.leverage) == (
                D("0.05"),
                engine.entry_price,
                D(10),
            )
            await conn.place_order(SYMBOL, "sell", "MARKET", quantity=D("0.05"))
            await until(lambda: positions[-1].side == "flat")
            assert engine.size == 0 and sim.balance(KEY, "USDT")[1] == 0
            assert await conn.open_orders() == []
            subscription.dispose()
            assert failures == []
