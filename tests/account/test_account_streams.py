"""AccountStreams in virtual time: sharing, login outcomes, reconnects with backoff,
resubscription and REST reconciliation. The socket is an in-process scripted exchange
(``scripted.py``); the reconnect/backoff/watchdog machinery is the real one, on a
``TestScheduler`` (1 unit = 1 second)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rxconnector._scheduling import now_ms
from rxconnector.config import ConnectionConfig, Secret
from rxconnector.errors import (
    ExchangeError,
    FeedGapError,
    NotSupportedError,
    ParseError,
    StaleConnectionError,
)
from rxconnector.exchanges.binance.user_stream import BinanceUserStream
from rxconnector.exchanges.bybit.private import BybitPrivateStream
from rxconnector.models import (
    BalanceDelta,
    ConnectionEvent,
    ConnectionState,
    Execution,
    OrderUpdate,
    Position,
)
from rxconnector.streams.accounts.account_streams import AccountStreams
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_link import WsLink
from rxconnector.transport.ws_types import Connected

from .helpers import API_KEY, SECRET, ScriptedRest, balance, order
from .scripted import ScriptedBinance, ScriptedBybit

D = Decimal
CONFIG = ConnectionConfig(
    reconnect_delay=1.0,
    reconnect_max_delay=8.0,
    reconnect_jitter=0.0,
    healthy_after=30.0,
    stale_after=3600.0,
)


def report(
    order_id: int,
    x: str,
    status: str,
    *,
    q: str = "1",
    p: str = "100",
    z: str = "0",
    quote: str = "0",
    last: str = "0",
    last_price: str = "0",
    trade: int = -1,
) -> dict[str, Any]:
    """A Binance executionReport with the keys of PROTOCOL.md §A5.1."""
    return {
        "e": "executionReport",
        "E": 10,
        "s": "BTCUSDT",
        "c": f"c-{order_id}",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": q,
        "p": p,
        "P": "0",
        "F": "0",
        "g": -1,
        "C": "",
        "x": x,
        "X": status,
        "r": "NONE",
        "i": order_id,
        "l": last,
        "z": z,
        "L": last_price,
        "n": "0",
        "N": None,
        "T": 10,
        "t": trade,
        "v": 0,
        "I": 1,
        "w": True,
        "m": False,
        "M": False,
        "O": 1,
        "Z": quote,
        "Y": "0",
        "Q": "0",
        "W": 1,
        "V": "NONE",
    }


def position_event(*rows: tuple[str, str, str]) -> dict[str, Any]:
    balances = [{"a": a, "f": f, "l": lk} for a, f, lk in rows]
    return {"e": "outboundAccountPosition", "E": 10, "u": 10, "B": balances}


class Sink:
    """Everything one subscriber received."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = False

    def on_next(self, value: Any) -> None:
        self.values.append(value)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    def on_completed(self) -> None:
        self.completed = True


class Harness:
    """AccountStreams wired to a scripted exchange on a TestScheduler."""

    def __init__(
        self,
        venue: str = "binance",
        *,
        rest: ScriptedRest | None = None,
        secret: str = SECRET,
        config: ConnectionConfig = CONFIG,
        **kw: Any,
    ) -> None:
        self.scheduler = TestScheduler()
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []

        def clock() -> int:
            return int(now_ms(self.scheduler))

        self.exchange: Any
        protocol: Any
        if venue == "binance":
            self.exchange = ScriptedBinance(self.scheduler, secret=secret)
            protocol = BinanceUserStream(API_KEY, Secret(SECRET), clock)
        else:
            self.exchange = ScriptedBybit(self.scheduler, secret=secret)
            protocol = BybitPrivateStream(API_KEY, Secret(SECRET), clock)
        callables = {}
        if rest is not None:
            rest.scheduler = self.scheduler
            callables = rest.callables()
        kw.setdefault("report_error", self.errors.append)
        kw.setdefault("report_state", self.states.append)
        self.streams = AccountStreams(
            protocol,
            "ws://fake/private",
            lambda: None,  # type: ignore[arg-type,return-value]
            config,
            scheduler=self.scheduler,
            connect=self.exchange.connect,
            **callables,
            **kw,
        )

    def collect(self, feed: Observable[Any]) -> Sink:
        sink = Sink()
        feed.subscribe(sink.on_next, sink.on_error, sink.on_completed)
        return sink

    def run(self, seconds: float = 0.1) -> None:
        self.scheduler.advance_by(seconds)

    def states_of(self, state: ConnectionState) -> list[ConnectionEvent]:
        return [s for s in self.states if s.state is state]

    def gaps(self) -> list[FeedGapError]:
        return [e for e in self.errors if isinstance(e, FeedGapError)]


def reconciled(values: list[Any]) -> list[Any]:
    return [v for v in values if getattr(v, "reconciled", False)]


class TestOneConnection:
    """Every feed shares one connection and one exchange subscription."""

    def test_feeds_share_one_subscription_and_the_last_dispose_closes_it(self) -> None:
        h = Harness()
        orders1 = Sink()
        subs = [
            h.streams.orders().subscribe(orders1.on_next),
            h.streams.orders().subscribe(lambda _: None),
            h.streams.balances().subscribe(lambda _: None),
        ]
        h.run()
        assert len(h.exchange.connections) == 1
        assert len(h.exchange.subscribe_requests()) == 1
        h.exchange.push(report(1, "NEW", "NEW"))
        assert [u.order_id for u in orders1.values] == ["1"]
        for sub in subs[:2]:
            sub.dispose()
        assert not h.exchange.live.closed  # the balances subscriber still holds it
        subs[2].dispose()
        assert h.exchange.connections[0].closed
        assert h.states_of(ConnectionState.CLOSED)[-1].reason == "no subscribers left"
        h.streams.orders().subscribe(lambda _: None)
        h.run()
        assert len(h.exchange.connections) == 2  # a new subscriber connects again

    def test_each_feed_gets_its_own_models(self) -> None:
        h = Harness()
        orders, balances, deltas, executions, raw = (
            h.collect(h.streams.orders()),
            h.collect(h.streams.balances()),
            h.collect(h.streams.balance_deltas()),
            h.collect(h.streams.executions()),
            h.collect(h.streams.raw_events()),
        )
        everything = h.collect(h.streams.events())
        h.run()
        fill = report(5, "TRADE", "FILLED", z="1", quote="100", last="1", last_price="100", trade=9)
        h.exchange.push(fill)
        h.exchange.push(position_event(("BTC", "1", "0"), ("USDT", "900", "0")))
        h.exchange.push({"e": "balanceUpdate", "E": 1, "a": "USDT", "d": "5", "T": 1})
        h.exchange.push({"e": "listStatus", "E": 1, "s": "BTCUSDT", "g": 2, "O": []})
        assert [type(v) for v in orders.values] == [OrderUpdate]
        assert [b.asset for b in balances.values] == ["BTC", "USDT"]
        assert [type(v) for v in deltas.values] == [BalanceDelta]
        assert [(e.execution_id, e.quantity) for e in executions.values] == [("9", D(1))]
        assert [event["e"] for _t, event in raw.values] == [
            "executionReport",
            "outboundAccountPosition",
            "balanceUpdate",
            "listStatus",
        ]
        assert len(everything.values) == 4 + 1 + 1 + 2 + 1  # raw + order + execution + ...

    def test_a_raising_subscriber_is_detached_and_the_others_carry_on(self) -> None:
        h = Harness()

        def broken(_: Any) -> None:
            raise RuntimeError("subscriber bug")

        h.streams.orders().subscribe(broken)
        good = h.collect(h.streams.orders())
        h.run()
        h.exchange.push(report(1, "NEW", "NEW"))
        h.exchange.push(report(2, "NEW", "NEW"))
        assert [u.order_id for u in good.values] == ["1", "2"]
        assert [str(e) for e in h.errors] == ["subscriber bug"]
        assert not h.exchange.live.closed

    def test_unsupported_feeds_raise_at_the_call(self) -> None:
        with pytest.raises(NotSupportedError, match="positions"):
            Harness("binance").streams.positions()
        with pytest.raises(NotSupportedError, match="balance_deltas"):
            Harness("bybit").streams.balance_deltas()

    async def test_close_completes_every_feed(self) -> None:
        h = Harness()
        orders, balances = h.collect(h.streams.orders()), h.collect(h.streams.balances())
        h.run()
        await h.streams.close()
        assert orders.completed and balances.completed and not orders.errors
        assert h.exchange.connections[0].closed and h.streams.closed
        late = h.collect(h.streams.orders())
        assert late.completed and len(h.exchange.connections) == 1

    def test_garbage_frames_are_reported_and_the_stream_continues(self) -> None:
        h = Harness()
        orders = h.collect(h.streams.orders())
        h.run()
        conn = h.exchange.live
        conn.observer.on_next((0.0, b"{not json"))
        h.exchange.push(report(1, "NEW", "NEW"))
        assert len(orders.values) == 1 and [type(e) for e in h.errors] == [ParseError]


class TestLogin:
    """A refused login errors the feeds when retrying cannot help, else reconnects."""

    def test_a_bad_signature_errors_every_feed_and_never_retries(self) -> None:
        h = Harness(secret="the-exchange-knows-another-secret")
        orders, balances = h.collect(h.streams.orders()), h.collect(h.streams.balances())
        h.run(600)
        assert len(h.exchange.connections) == 1
        for sink in (orders, balances):
            [error] = sink.errors
            assert isinstance(error, ExchangeError) and error.code == -1022
            assert "Signature for this request is not valid" in str(error)
        closed = h.states_of(ConnectionState.CLOSED)
        assert closed and "-1022" in closed[-1].reason
        assert h.exchange.connections[0].closed

    def test_a_stale_timestamp_resyncs_the_clock_and_retries(self) -> None:
        resyncs: list[int] = []

        def resync() -> Observable[Any]:
            resyncs.append(1)
            return reactivex.empty()

        h = Harness(resync_clock=resync)
        h.exchange.rejections = [(400, -1021, "Timestamp for this request is outside recvWindow.")]
        orders = h.collect(h.streams.orders())
        h.run(0.5)
        assert resyncs == [1] and len(h.exchange.connections) == 1
        h.run(1.0)  # backoff: 1 s
        assert len(h.exchange.connections) == 2 and h.exchange.connections[0].closed
        h.exchange.push(report(1, "NEW", "NEW"))
        assert len(orders.values) == 1 and not orders.errors
        reconnecting = h.states_of(ConnectionState.RECONNECTING)
        assert [(r.attempt, r.delay) for r in reconnecting] == [(1, 1.0)]
        assert "-1021" in reconnecting[0].reason

    def test_a_resync_still_running_is_disposed_when_the_stream_stops(self) -> None:
        disposed: list[int] = []

        def resync() -> Observable[Any]:
            return reactivex.never().pipe(ops.finally_action(lambda: disposed.append(1)))

        h = Harness(resync_clock=resync)
        h.exchange.rejections = [(400, -1021, "Timestamp for this request is outside recvWindow.")]
        subscription = h.streams.orders().subscribe(lambda _o: None)
        h.run(0.5)
        assert disposed == []  # the resync is still in flight
        subscription.dispose()
        assert disposed == [1]

    def test_a_server_error_reconnects_with_backoff(self) -> None:
        h = Harness()
        h.exchange.rejections = [(503, -1001, "Internal error")] * 2
        orders = h.collect(h.streams.orders())
        h.run(10)
        assert len(h.exchange.connections) == 3 and not orders.errors
        starts = [round(c.opened_at / 1000, 2) for c in h.exchange.connections]
        assert starts == [0.0, 1.01, 3.02]  # answers take 0.01 s, then 1 s and 2 s backoff

    def test_the_secret_is_never_in_what_was_sent_or_reported(self) -> None:
        h = Harness(secret="wrong")
        sink = h.collect(h.streams.orders())
        h.run(5)
        texts = [*h.exchange.frames, *map(repr, sink.errors), *map(str, sink.errors)]
        texts += [repr(s) for s in h.states] + [repr(h.streams)]
        assert texts and not any(SECRET in text for text in texts)


class TestReconnect:
    """A lost socket is reconnected forever with capped exponential backoff."""

    def test_refused_connections_back_off_and_the_feed_never_errors(self) -> None:
        h = Harness()
        h.exchange.refuse = 5
        orders = h.collect(h.streams.orders())
        h.run(60)
        assert h.exchange.attempt_times == [0.0, 1.0, 3.0, 7.0, 15.0, 23.0]  # 1 2 4 8 8
        assert not orders.errors and len(h.exchange.connections) == 1
        assert len(h.exchange.subscribe_requests()) == 1

    def test_a_dropped_socket_resubscribes(self) -> None:
        h = Harness()
        orders = h.collect(h.streams.orders())
        h.run()
        h.exchange.drop()
        h.run(1.5)
        assert len(h.exchange.connections) == 2
        assert len(h.exchange.subscribe_requests()) == 2
        h.exchange.push(report(3, "NEW", "NEW"))
        assert [u.order_id for u in orders.values] == ["3"] and not orders.errors
        assert h.gaps()  # no REST callables: the gap is reported, not hidden

    def test_a_silent_socket_is_declared_stale_and_replaced(self) -> None:
        config = ConnectionConfig(
            reconnect_delay=1.0, reconnect_max_delay=8.0, reconnect_jitter=0.0, stale_after=10.0
        )
        h = Harness(config=config)
        orders = h.collect(h.streams.orders())
        h.run(14)
        assert h.states_of(ConnectionState.STALE)
        assert len(h.exchange.connections) == 2 and h.exchange.connections[0].closed
        reasons = [r.reason for r in h.states_of(ConnectionState.RECONNECTING)]
        assert StaleConnectionError.__name__ in reasons[0]
        assert not orders.errors

    def test_the_socket_spec_pings_every_ping_interval(self) -> None:
        h = Harness("bybit", config=ConnectionConfig(ping_interval=20.0, stale_after=3600.0))
        h.collect(h.streams.orders())
        h.run()
        [spec] = h.exchange.specs
        assert (spec.ping_message, spec.ping_interval) == ('{"op":"ping"}', 20.0)
        assert spec.max_messages == 5 and spec.message_window == pytest.approx(1.5)
        assert spec.connection_id == "bybit-private#1"


class TestReconciliation:
    """After a re-subscription, what changed while disconnected is emitted reconciled."""

    def setup_open_order(self, h: Harness, rest: ScriptedRest) -> Sink:
        orders = h.collect(h.streams.orders())
        h.run()
        h.exchange.push(report(7, "NEW", "NEW", q="2", p="100"))
        h.exchange.push(position_event(("USDT", "800", "200")))
        rest.open = [order("7", quantity="2")]
        rest.balances = [balance("USDT", "800", "200")]
        return orders

    def test_the_first_connect_calls_no_rest(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        h.collect(h.streams.orders())
        h.run(5)
        assert rest.calls == []

    def test_an_order_filled_during_a_disconnect_shows_up_filled(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        balances = h.collect(h.streams.balances())
        h.exchange.drop()
        # While disconnected: the order fills at 101 and the balances move.
        rest.open = []
        rest.orders["7"] = order("7", "FILLED", quantity="2", filled="2", average="101")
        rest.balances = [balance("USDT", "798", "0"), balance("BTC", "2")]
        h.run(2)
        assert rest.calls == [("open_orders",), ("balances",), ("order", "BTCUSDT", "7")]
        [update] = reconciled(orders.values)
        assert (update.status, update.execution_type, update.filled_quantity) == (
            "FILLED",
            "TRADE",
            D(2),
        )
        assert (update.last_fill_quantity, update.last_fill_price) == (D(2), D(101))
        assert (update.average_price, update.fee, update.client_order_id) == (D(101), 0, "c-7")
        assert [(b.asset, b.free, b.locked) for b in reconciled(balances.values)] == [
            ("USDT", D(798), D(0)),
            ("BTC", D(2), D(0)),
        ]
        assert not h.gaps()

    def test_an_order_placed_and_filled_during_a_disconnect_is_looked_up(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.drop()
        # While disconnected: our own order 8 is placed (announced) and fills at once;
        # it is neither open nor known, so only the announcement can find it.
        h.streams.note_placed("BTCUSDT", "8")
        rest.orders["8"] = order("8", "FILLED", quantity="1", filled="1", average="99")
        h.run(2)
        assert ("order", "BTCUSDT", "8") in rest.calls
        [update] = reconciled(orders.values)
        assert (update.order_id, update.status, update.filled_quantity) == ("8", "FILLED", D(1))
        assert update.last_fill_quantity == D(1)
        # resolved: the next gap does not look it up again
        calls = len(rest.calls)
        h.exchange.drop()
        h.run(2)
        assert ("order", "BTCUSDT", "8") not in rest.calls[calls:]
        assert not h.gaps()

    def test_an_announced_order_the_stream_reported_is_not_looked_up(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.streams.note_placed("BTCUSDT", "7")  # already known from the stream: ignored
        h.exchange.drop()
        h.run(2)
        assert ("order", "BTCUSDT", "7") not in rest.calls
        assert reconciled(orders.values) == []

    def test_announcing_without_subscribers_does_nothing(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        h.streams.note_placed("BTCUSDT", "9")  # no run: nothing to keep current
        orders = h.collect(h.streams.orders())
        h.run(2)
        h.exchange.drop()
        h.run(2)
        assert ("order", "BTCUSDT", "9") not in rest.calls
        assert reconciled(orders.values) == []

    def test_a_partial_fill_during_the_gap_reports_the_missed_quantity(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.push(
            report(7, "TRADE", "PARTIALLY_FILLED", q="2", z="0.5", quote="50", last="0.5")
        )
        h.exchange.drop()
        rest.open = [order("7", "PARTIALLY_FILLED", quantity="2", filled="1.5", average="102")]
        h.run(2)
        [update] = reconciled(orders.values)
        # 0.5 at 100 seen live; 1.0 more during the gap: (1.5*102 - 0.5*100) / 1.0 = 103
        assert (update.status, update.last_fill_quantity, update.last_fill_price) == (
            "PARTIALLY_FILLED",
            D(1),
            D(103),
        )
        assert rest.calls.count(("order", "BTCUSDT", "7")) == 0  # still open: no lookup

    def test_nothing_changed_nothing_emitted(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        balances = h.collect(h.streams.balances())
        h.exchange.drop()
        h.run(2)
        assert ("open_orders",) in rest.calls and ("balances",) in rest.calls
        assert reconciled(orders.values) == [] and reconciled(balances.values) == []

    def test_orders_placed_during_the_gap_appear_as_new(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.drop()
        rest.open.append(order("8", quantity="3"))
        h.run(2)
        [update] = reconciled(orders.values)
        assert (update.order_id, update.execution_type, update.last_fill_quantity) == (
            "8",
            "NEW",
            0,
        )

    def test_a_cancel_during_the_gap(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.drop()
        rest.open = []
        rest.orders["7"] = order("7", "CANCELED", quantity="2")
        h.run(2)
        [update] = reconciled(orders.values)
        assert (update.status, update.execution_type) == ("CANCELED", "CANCELED")

    def test_an_asset_gone_from_rest_is_reported_as_zero(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        self.setup_open_order(h, rest)
        balances = h.collect(h.streams.balances())
        h.exchange.drop()
        rest.balances = []
        h.run(2)
        assert [(b.asset, b.total) for b in reconciled(balances.values)] == [("USDT", D(0))]

    def test_live_events_during_reconciliation_win_over_older_rest_answers(self) -> None:
        rest = ScriptedRest(delay=3.0)
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        balances = h.collect(h.streams.balances())
        h.exchange.drop()
        rest.open = [order("7", "PARTIALLY_FILLED", quantity="2", filled="1", average="100")]
        rest.balances = [balance("USDT", "700", "100")]
        h.run(1.5)  # reconnected and subscribed; REST answers are 3 s away
        fill = report(7, "TRADE", "FILLED", q="2", z="2", quote="200", last="1", last_price="100")
        h.exchange.push(fill)
        h.exchange.push(position_event(("USDT", "600", "0")))
        h.run(5)
        assert ("open_orders",) in rest.calls
        assert reconciled(orders.values) == [] and reconciled(balances.values) == []
        assert orders.values[-1].status == "FILLED" and not h.gaps()

    def test_a_failing_rest_call_is_reported_and_the_stream_continues(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        rest.fail = {"open_orders"}
        h.exchange.drop()
        h.run(2)
        [gap] = h.gaps()
        assert "open orders" in str(gap) and "ConnectionError" in str(gap)
        h.exchange.push(report(9, "NEW", "NEW"))
        assert orders.values[-1].order_id == "9" and not orders.errors

    def test_a_failing_order_lookup_is_reported(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        self.setup_open_order(h, rest)
        rest.fail = {"order"}
        rest.open = []
        h.exchange.drop()
        h.run(2)
        [gap] = h.gaps()
        assert "order BTCUSDT 7" in str(gap)

    def test_without_fetch_order_closed_orders_are_reported_as_a_gap(self) -> None:
        rest = ScriptedRest()
        callables = rest.callables()
        del callables["fetch_order"]
        h = Harness(**callables)
        h.collect(h.streams.orders())
        h.run()
        h.exchange.push(report(7, "NEW", "NEW"))
        h.exchange.drop()
        h.run(2)
        [gap] = h.gaps()
        assert "1 order(s) closed while disconnected" in str(gap)

    def test_event_stream_terminated_resubscribes_on_the_same_socket_and_reconciles(
        self,
    ) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.terminate()
        rest.open = []
        rest.orders["7"] = order("7", "FILLED", quantity="2", filled="2", average="100")
        h.run(1)
        assert len(h.exchange.connections) == 1
        assert len(h.exchange.subscribe_requests()) == 2
        assert [u.status for u in reconciled(orders.values)] == ["FILLED"]
        h.exchange.push(report(8, "NEW", "NEW"))
        assert orders.values[-1].order_id == "8"

    def test_a_reconnect_during_reconciliation_reconciles_again(self) -> None:
        rest = ScriptedRest(delay=3.0)
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.drop()
        h.run(1.5)  # resubscribed; answers pending
        h.exchange.drop()  # lost again before they came
        rest.open = []
        rest.orders["7"] = order("7", "FILLED", quantity="2", filled="2", average="100")
        h.run(10)
        assert rest.calls.count(("open_orders",)) == 2
        assert [u.status for u in reconciled(orders.values)] == ["FILLED"]
        assert not h.gaps()

    def test_a_second_gap_compares_with_what_was_reconciled(self) -> None:
        rest = ScriptedRest()
        h = Harness(rest=rest)
        orders = self.setup_open_order(h, rest)
        h.exchange.drop()
        rest.open = [order("7", "PARTIALLY_FILLED", quantity="2", filled="1", average="100")]
        h.run(2)
        h.exchange.drop()
        rest.open = []
        rest.orders["7"] = order("7", "FILLED", quantity="2", filled="2", average="110")
        h.run(5)
        updates = reconciled(orders.values)
        assert [(u.status, u.last_fill_quantity, u.last_fill_price) for u in updates] == [
            ("PARTIALLY_FILLED", D(1), D(100)),
            ("FILLED", D(1), D(120)),
        ]
        assert sum(u.last_fill_quantity for u in orders.values) == D(2)


class TestBybit:
    """The same machinery speaks Bybit: auth, subscribe, topics, derived last fills."""

    def order_row(self, status: str, cum: str, avg: str) -> dict[str, Any]:
        return {
            "symbol": "BTCUSDT",
            "orderId": "o-1",
            "orderLinkId": "mine",
            "side": "Buy",
            "orderType": "Limit",
            "price": "100",
            "qty": "1",
            "orderStatus": status,
            "cumExecQty": cum,
            "avgPrice": avg,
            "cumExecFee": "0",
            "feeCurrency": "",
        }

    def test_auth_then_subscribe_then_events(self, examples: dict[str, Any]) -> None:
        h = Harness("bybit")
        positions, executions = h.collect(h.streams.positions()), h.collect(h.streams.executions())
        h.run()
        conn = h.exchange.live
        assert [r["op"] for r in conn.requests] == ["auth", "subscribe"]
        assert conn.topics == ["order", "execution", "wallet", "position"]
        h.exchange.push("position", examples["bybit.v5.ws.private.position"]["data"])
        h.exchange.push("execution", examples["bybit.v5.ws.private.execution"]["data"])
        assert [type(v) for v in positions.values] == [Position]
        assert [type(v) for v in executions.values] == [Execution]

    def test_last_fill_is_derived_from_cumulative_quantity(self) -> None:
        h = Harness("bybit")
        orders = h.collect(h.streams.orders())
        h.run()
        h.exchange.push("order", [self.order_row("New", "0", "")])
        h.exchange.push("order", [self.order_row("PartiallyFilled", "0.3", "100")])
        h.exchange.push("order", [self.order_row("Filled", "1", "100.7")])
        h.exchange.push("order", [self.order_row("Filled", "1", "100.7")])  # documented dup
        assert [(u.status, u.last_fill_quantity, u.last_fill_price) for u in orders.values] == [
            ("NEW", D(0), D(0)),
            ("PARTIALLY_FILLED", D("0.3"), D(100)),
            ("FILLED", D("0.7"), D(101)),
            ("FILLED", D(0), D(0)),
        ]

    def test_rejected_auth_errors_the_feeds(self) -> None:
        h = Harness("bybit", secret="another")
        orders = h.collect(h.streams.orders())
        h.run(100)
        [error] = orders.errors
        assert isinstance(error, ExchangeError) and "Request not authorized" in str(error)
        assert len(h.exchange.connections) == 1

    def test_reconciliation_maps_bybit_rest_statuses(self) -> None:
        rest = ScriptedRest()
        h = Harness("bybit", rest=rest)
        orders = h.collect(h.streams.orders())
        h.run()
        h.exchange.push("order", [self.order_row("New", "0", "")])
        h.exchange.drop()
        rest.orders["o-1"] = order("o-1", "Filled", filled="1", average="99")
        h.run(2)
        [update] = reconciled(orders.values)
        assert (update.status, update.last_fill_quantity, update.last_fill_price) == (
            "FILLED",
            D(1),
            D(99),
        )
        h.exchange.push("order", [self.order_row("Filled", "1", "99")])  # late duplicate
        assert orders.values[-1].last_fill_quantity == 0


class TestReporting:
    """Connection states are reported; a misbehaving reporter breaks nothing."""

    def test_states(self) -> None:
        h = Harness()
        h.collect(h.streams.orders())
        h.run()
        h.exchange.drop()
        h.run(2)
        kinds = [s.state for s in h.states]
        assert kinds[:2] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
        assert ConnectionState.RECONNECTING in kinds
        assert {s.connection_id for s in h.states} == {"binance-private#1"}

    def test_raising_reporters_are_contained(self) -> None:
        def boom(_: Any) -> None:
            raise RuntimeError("reporter bug")

        h = Harness(report_error=boom, report_state=boom)  # type: ignore[arg-type]
        orders = h.collect(h.streams.orders())
        h.run()
        h.exchange.live.observer.on_next((0.0, b"garbage"))
        h.exchange.push(report(1, "NEW", "NEW"))
        assert len(orders.values) == 1

    def test_repr_names_the_venue_not_the_secret(self) -> None:
        text = repr(Harness().streams)
        assert "BinanceUserStream" in text and SECRET not in text


class _RecordingSocket:
    """Stands in for an aiohttp socket under the real WsLink: records what is written."""

    def __init__(self, scheduler: TestScheduler) -> None:
        self.scheduler = scheduler
        self.written: list[tuple[float, str]] = []

    async def send_str(self, text: str) -> None:
        self.written.append((now_ms(self.scheduler) / 1000.0, text))

    async def pong(self, _payload: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


class TestPingCadence:
    """The private socket pings every ``ping_interval`` (20 s by default), in virtual time."""

    async def test_bybit_pings_every_20_seconds_through_the_real_link(self) -> None:
        scheduler = TestScheduler()
        socket = _RecordingSocket(scheduler)
        tasks = OwnedTasks()

        def connect(spec: Any, _session: Any, _tasks: Any) -> Observable[Any]:
            def subscribe(observer: Any, _scheduler: Any = None) -> Any:
                link = WsLink(socket, spec, scheduler, tasks)  # type: ignore[arg-type]
                event = ConnectionEvent(ConnectionState.CONNECTED, spec.connection_id, "", 0)
                observer.on_next(Connected(event, link))
                return Disposable(link.close)

            return Observable(subscribe)

        streams = AccountStreams(
            BybitPrivateStream(API_KEY, Secret(SECRET), lambda: int(now_ms(scheduler))),
            "ws://fake/v5/private",
            lambda: None,  # type: ignore[arg-type,return-value]
            ConnectionConfig(stale_after=3600.0),  # default ping_interval: 20 s
            scheduler=scheduler,
            connect=connect,
        )
        subscription = streams.orders().subscribe(lambda _: None)
        for _ in range(13):
            scheduler.advance_by(5.0)
            for _ in range(3):
                await asyncio.sleep(0)
        pings = [t for t, text in socket.written if text == '{"op":"ping"}']
        assert pings == [20.0, 40.0, 60.0]
        assert '"op":"auth"' in socket.written[0][1]
        subscription.dispose()
        tasks.cancel_all()
        await tasks.wait()
        await streams.close()
