"""User-style tests: how to unit-test a strategy in virtual time with FakeConnector.

Each strategy below is written the way a user writes one: a plain function of a
connector that returns an Observable. In production it gets a ``Connector``; in these
tests it gets a ``FakeConnector`` whose feeds are marble diagrams. ``fake.run`` subscribes
the strategy at virtual time 200 on a ``TestScheduler``, so time operators
(``debounce``, ``timer``...) wait virtual seconds and every test runs in milliseconds.
Read a diagram column by column: one character is one virtual second.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest

from rxconnector.errors import ExchangeError, RateLimitError
from rxconnector.models import ConnectionEvent, ConnectionState, Order
from rxconnector.testing.account_factories import make_order
from rxconnector.testing.fake import FakeConnector
from rxconnector.testing.marbles import emitted, expected
from rxconnector.testing.model_marbles import book_tickers, ticks, trades_from

#: What a strategy receives: a ``Connector``, or a ``FakeConnector`` in tests.
Conn = Any
subscribe = ReactiveTest.subscribe


# ------------------------------------------------------------------------------------
# 1. moving-average crossover
# ------------------------------------------------------------------------------------
def crossover_signals(conn: Conn, symbol: str, fast: int = 2, slow: int = 4) -> Observable[str]:
    """ "buy" when the fast moving average of the last price crosses above the slow one,
    "sell" when it crosses below. No signal until both averages exist."""

    def fast_minus_slow(window: list[Decimal]) -> Decimal:
        return sum(window[-fast:], Decimal(0)) / fast - sum(window, Decimal(0)) / slow

    return conn.ticker(symbol).pipe(
        ops.map(lambda t: t.last),
        ops.buffer_with_count(slow, 1),  # sliding windows of the last `slow` prices
        ops.filter(lambda window: len(window) == slow),
        ops.map(fast_minus_slow),
        ops.map(lambda difference: difference > 0),  # is the fast average above?
        ops.distinct_until_changed(),
        ops.pairwise(),  # each pair is a change of side: a crossover
        ops.map(lambda pair: "buy" if pair[1] else "sell"),
    )


class TestMovingAverageCrossover:
    """Signals come out at the exact virtual time of the tick that crosses."""

    PRICES: ClassVar = {"a": 10, "b": 11, "c": 12, "d": 13, "e": 12, "f": 10, "g": 9, "h": 14}

    def test_signals_at_the_crossing_ticks(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", ticks("-a-b-c-d-e-f-g-h-|", self.PRICES))
        # d: averages exist (fast above) . f: fast drops below -> sell . h: back above -> buy
        assert fake.run(crossover_signals(fake, "BTCUSDT")) == expected(
            "-----------s---b-|", {"s": "sell", "b": "buy"}
        )

    def test_a_flat_market_gives_no_signal(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", ticks("-a-a-a-a-a-a-|", {"a": 100}))
        assert fake.run(crossover_signals(fake, "BTCUSDT")) == expected("-------------|")


# ------------------------------------------------------------------------------------
# 2. spread alert with debounce
# ------------------------------------------------------------------------------------
def spread_alerts(
    conn: Conn, symbol: str = "BTCUSDT", threshold: Decimal = Decimal(5), quiet: float = 3.0
) -> Observable[Decimal]:
    """The spread, once it has been wider than ``threshold`` and the book then stayed
    quiet for ``quiet`` seconds (a burst of wide quotes raises one alert)."""
    return conn.book_ticker(symbol).pipe(
        ops.map(lambda book: book.spread),
        ops.filter(lambda spread: spread > threshold),
        ops.debounce(quiet),
    )


class TestSpreadAlert:
    """debounce runs on the fake's TestScheduler: three virtual seconds, no real wait."""

    QUOTES: ClassVar = {"n": (100, 101), "w": (100, 107), "x": (100, 108), "y": (100, 109)}

    def test_a_burst_of_wide_quotes_raises_one_alert_after_the_quiet_period(self) -> None:
        fake = FakeConnector()
        fake.set_feed("book_ticker", "BTCUSDT", book_tickers("-n-w-x-----y---|", self.QUOTES))
        # w (7) is superseded by x (8) within 3 s; x is alerted at 205+3; y at 211+3
        assert fake.run(spread_alerts(fake)) == expected(
            "--------x-----y|", {"x": Decimal(8), "y": Decimal(9)}
        )

    def test_narrow_spreads_raise_nothing(self) -> None:
        fake = FakeConnector()
        fake.set_feed("book_ticker", "BTCUSDT", book_tickers("-n-n-n-|", self.QUOTES))
        assert fake.run(spread_alerts(fake)) == expected("-------|")


# ------------------------------------------------------------------------------------
# 3. reconnect-tolerant trade counter
# ------------------------------------------------------------------------------------
def trade_counter(conn: Conn, symbol: str = "BTCUSDT") -> Observable[int]:
    """Running number of distinct trades of ``symbol``.

    A reconnect is not the end of a feed (the connector resubscribes by itself), so the
    counter just keeps its one subscription; and it does not trust the feed blindly: a
    trade delivered again after the feed restarted is counted once.
    """
    return conn.trades(symbol).pipe(
        ops.distinct(lambda trade: trade.trade_id),
        ops.scan(lambda count, _: count + 1, 0),
    )


def naive_trade_counter(conn: Conn, symbol: str = "BTCUSDT") -> Observable[int]:
    """The same counter written wrongly: it starts over at every CONNECTED event."""
    return conn.connection_state.pipe(
        ops.filter(lambda event: event.state is ConnectionState.CONNECTED),
        ops.switch_map(lambda _: conn.trades(symbol).pipe(ops.scan(lambda count, _: count + 1, 0))),
    )


class TestReconnectTolerantTradeCounter:
    """Across RECONNECTING and a restarted feed, counting goes on where it was."""

    # Trades a, b, c; the connection drops at 206 and is back at 210; the restarted feed
    # delivers c again, then d and e. The same letter twice is the same trade (same id).
    TRADES = "-a-b-c------c-d-e-|"
    TABLE: ClassVar = {t: (100, 1, "buy") for t in "abcde"}

    def _fake(self) -> FakeConnector:
        fake = FakeConnector()
        fake.set_feed("trades", "BTCUSDT", trades_from(self.TRADES, self.TABLE))
        fake.set_connection_state(ConnectionState.CONNECTED, at=200)
        fake.simulate_reconnect(206, downtime=4)
        return fake

    def test_the_count_carries_on_across_the_reconnect(self) -> None:
        fake = self._fake()
        seen: list[ConnectionEvent] = []
        fake.connection_state.subscribe(seen.append)
        assert fake.run(trade_counter(fake)) == expected("-1-2-3--------4-5-|")
        assert [(e.state, e.time) for e in seen] == [
            (ConnectionState.CONNECTED, 200_000.0),
            (ConnectionState.RECONNECTING, 206_000.0),
            (ConnectionState.CONNECTED, 210_000.0),
        ]
        # one subscription, held through the reconnect until the feed ended
        assert fake.feed_subscriptions("trades", "BTCUSDT") == [subscribe(200, 218)]

    def test_the_naive_counter_is_caught_starting_over(self) -> None:
        fake = self._fake()
        assert fake.run(naive_trade_counter(fake)) == expected("-1-2-3------1-2-3")


# ------------------------------------------------------------------------------------
# 4. a strategy that trades through the scripted REST
# ------------------------------------------------------------------------------------
def breakout_buyer(
    conn: Conn,
    symbol: str = "BTCUSDT",
    level: Decimal = Decimal(105),
    quantity: Decimal = Decimal("0.01"),
    retries: int = 2,
) -> Observable[Order]:
    """Buy ``quantity`` at market, once, the first time the price trades above ``level``.

    A rate limit is waited out (``retry_after`` seconds) up to ``retries`` times; the
    client order id is derived from the tick so a retry is recognisably the same order.
    """

    def place(event_time: int, retries_left: int) -> Observable[Order]:
        def on_error(error: Exception, _: Observable[Order]) -> Observable[Order]:
            if isinstance(error, RateLimitError) and retries_left > 0:
                return reactivex.timer(error.retry_after).pipe(
                    ops.flat_map(lambda _: place(event_time, retries_left - 1))
                )
            return reactivex.throw(error)

        request = conn.place_order(
            symbol, "buy", "MARKET", quantity=quantity, client_order_id=f"breakout-{event_time}"
        )
        return request.pipe(ops.catch(on_error))

    return conn.ticker(symbol).pipe(
        ops.filter(lambda tick: tick.last > level),
        ops.take(1),
        ops.flat_map(lambda tick: place(tick.event_time, retries)),
    )


class TestBreakoutBuyer:
    """Orders go out at the right virtual time with the right arguments, and errors too."""

    PRICES: ClassVar = {"a": 100, "b": 104, "c": 106, "d": 110}

    def _fake(self) -> FakeConnector:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", ticks("-a-b-c-d-|", self.PRICES))
        return fake

    def test_places_one_market_order_on_the_breakout(self) -> None:
        fake = self._fake()
        # the exchange fills what it is sent, one virtual second later
        fake.script("place_order", result=lambda **req: make_order(status="FILLED", **req), delay=1)
        (order,) = emitted(fake.run(breakout_buyer(fake)))
        assert fake.calls("place_order") == [
            {
                "symbol": "BTCUSDT",
                "side": "buy",
                "type": "MARKET",
                "quantity": Decimal("0.01"),
                "price": None,
                "time_in_force": None,
                "client_order_id": "breakout-205000",  # tick c, at 205
            }
        ]
        assert (order.status, order.filled_quantity) == ("FILLED", Decimal("0.01"))
        assert [call.time for call in fake.call_log] == [205.0]

    def test_waits_out_a_rate_limit_then_places_the_same_order(self) -> None:
        fake = self._fake()
        fake.script("place_order", error=RateLimitError("too many orders", retry_after=2), times=1)
        fake.script("place_order", result=lambda **req: make_order(status="FILLED", **req))
        result = fake.run(breakout_buyer(fake))
        assert [call.time for call in fake.call_log] == [205.0, 207.0]
        ids = {call["client_order_id"] for call in fake.calls("place_order")}
        assert ids == {"breakout-205000"}
        assert [record.time for record in result] == [207.0, 207.0]  # the order, completed

    def test_a_rejected_order_fails_the_strategy(self) -> None:
        fake = self._fake()
        rejected = ExchangeError("Account has insufficient balance", status=400, code=-2010)
        fake.script("place_order", error=rejected)
        assert fake.run(breakout_buyer(fake)) == expected("-----#", error=rejected)
        assert len(fake.calls("place_order")) == 1  # not retried: retrying cannot fix it

    def test_no_breakout_no_order(self) -> None:
        fake = FakeConnector()
        fake.set_feed("ticker", "BTCUSDT", ticks("-a-b-a-|", self.PRICES))
        assert fake.run(breakout_buyer(fake)) == expected("-------|")
        assert fake.call_log == []
