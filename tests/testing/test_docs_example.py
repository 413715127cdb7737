"""README "Testing your pipelines": strategies tested in virtual time, without a socket."""

from decimal import Decimal

from reactivex import operators as ops

from rxconnector.testing.account_factories import make_order
from rxconnector.testing.fake import FakeConnector
from rxconnector.testing.marbles import emitted, expected
from rxconnector.testing.model_marbles import book_tickers


def spread_alerts(conn):
    """The spread, when wider than 5 and the quotes then stayed quiet for 2 seconds."""
    return conn.book_ticker("BTCUSDT").pipe(
        ops.map(lambda b: b.ask - b.bid), ops.filter(lambda s: s > 5), ops.debounce(2)
    )


class TestSpreadAlerts:
    """One marble is one virtual second on the fake's TestScheduler: no real waiting."""

    def test_alerts_after_a_quiet_period(self):
        fake = FakeConnector()
        quotes = {"n": (100, 101), "w": (100, 107), "x": (100, 108)}
        fake.set_feed("book_ticker", "BTCUSDT", book_tickers("-n-w-x-----n-|", quotes))
        result = fake.run(spread_alerts(fake))  # subscribes at t=200
        assert result == expected("-------a-----|", {"a": Decimal(8)})

    def test_orders_are_scripted_and_recorded(self):
        fake = FakeConnector()
        fake.script("place_order", result=lambda **req: make_order(status="FILLED", **req))
        fake.set_feed("book_ticker", "BTCUSDT", book_tickers("-w-|", {"w": (100, 107)}))
        buy_on_alert = spread_alerts(fake).pipe(
            ops.flat_map(lambda _: fake.place_order("BTCUSDT", "buy", "LIMIT", "1", "100"))
        )
        (order,) = emitted(fake.run(buy_on_alert))
        assert order.status == "FILLED"
        assert fake.calls("place_order")[0]["price"] == "100"
