"""The small pieces of streams/accounts/ on their own: the view, the pure comparisons,
reconciliation, the connection attempts and the listenKey protocol wrapper.

The whole stream is exercised in test_account_streams.py / test_account_live.py; these
pin each piece's contract, so a regression names the piece that broke."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import reactivex
from reactivex import Observable
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rxconnector.errors import FeedGapError, RxConnectorError
from rxconnector.exchanges.binance.futures_user_stream import BinanceFuturesUserStream
from rxconnector.models import Balance, Order, OrderUpdate
from rxconnector.streams.accounts.attempts import (
    AttemptSlot,
    UrlLease,
    login_attempt,
    url_attempt,
)
from rxconnector.streams.accounts.differences import balance_changes, order_is_news
from rxconnector.streams.accounts.listen_key import LeasedProtocol
from rxconnector.streams.accounts.reconcile import Fetchers, Reconciliation
from rxconnector.streams.accounts.view import FINISHED_MEMORY, AccountView
from rxconnector.testing.account_factories import make_balance, make_order, make_order_update
from rxconnector.transport.ws_types import SocketSpec

D = Decimal


class TestAccountView:
    def test_live_order_events_complete_the_last_fill_where_the_venue_omits_it(self) -> None:
        view = AccountView(reports_last_fill=False)
        view.saw(make_order_update(status="PARTIALLY_FILLED", filled_quantity=1, average_price=100))
        second = view.saw(make_order_update(status="FILLED", filled_quantity=3, average_price=102))
        assert isinstance(second, OrderUpdate)
        # 3 @ 102 = 306 minus 1 @ 100 = 206 over 2
        assert (second.last_fill_quantity, second.last_fill_price) == (D(2), D(103))
        assert view.known(("BTCUSDT", "1")) is second and view.orders == {}

    def test_what_live_events_touch_is_noted_only_while_watching(self) -> None:
        view = AccountView(reports_last_fill=True)
        view.saw(make_balance("BTC", 1))
        assert view.touched_assets == set()
        view.watch(True)
        view.saw(make_balance("ETH", 1))
        view.saw(make_order_update(order_id="7"))
        assert view.touched_assets == {"ETH"} and view.touched_orders == {("BTCUSDT", "7")}
        view.watch(False)
        assert view.touched_assets == set() and view.touched_orders == set()

    def test_announced_orders_are_remembered_until_seen_and_bounded(self) -> None:
        view = AccountView(reports_last_fill=True)
        view.saw(make_order_update(order_id="1"))
        view.note_placed("BTCUSDT", "1")  # already known: nothing to remember
        view.note_placed("BTCUSDT", "2")
        assert view.known_open() == [("BTCUSDT", "1"), ("BTCUSDT", "2")]
        view.saw(make_order_update(order_id="2"))
        assert list(view.placed) == []
        for n in range(FINISHED_MEMORY + 5):
            view.note_placed("ETHUSDT", str(n))
        assert len(view.placed) == FINISHED_MEMORY and ("ETHUSDT", "0") not in view.placed

    def test_rest_orders_behind_the_stream_are_no_news(self) -> None:
        view = AccountView(reports_last_fill=True)
        view.saw(make_order_update(status="FILLED", filled_quantity=1))
        behind = make_order(status="PARTIALLY_FILLED", filled_quantity=D("0.5"), price=100)
        assert view.order_change(behind, "PARTIALLY_FILLED", 5.0) is None


class TestDifferences:
    def test_balance_changes(self) -> None:
        known = {"BTC": make_balance("BTC", 1), "ETH": make_balance("ETH", 2)}
        listed = [make_balance("BTC", 1), make_balance("USDT", 0), make_balance("SOL", 3)]
        changed = balance_changes(known, set(), listed, 9.0)
        # SOL is new, ETH vanished (zero); BTC unchanged; a new empty USDT is no news
        assert [(b.asset, b.free, b.reconciled, b.received_at) for b in changed] == [
            ("SOL", D(3), True, 9.0),
            ("ETH", D(0), True, 9.0),
        ]
        assert balance_changes(known, {"ETH", "SOL"}, listed, 9.0) == []

    def test_order_is_news(self) -> None:
        seen = make_order_update(status="NEW", price=100, quantity=1)
        same = make_order(status="NEW", price=100, quantity=1, filled_quantity=0)
        assert order_is_news(same, "NEW", None)
        assert not order_is_news(same, "NEW", seen)
        assert order_is_news(same, "CANCELED", seen)
        finished = make_order_update(status="CANCELED", price=100, quantity=1)
        assert not order_is_news(same, "NEW", finished)  # REST is behind


class TestReconciliation:
    def _run(self, fetch: Fetchers, view: AccountView) -> tuple[list[Any], list[Exception], int]:
        delivered: list[Any] = []
        reports: list[Exception] = []
        finished: list[None] = []
        scheduler = TestScheduler()
        reconciliation = Reconciliation(
            fetch,
            view,
            str.upper,
            delivered.append,
            reports.append,
            "c1",
            scheduler,
            lambda: finished.append(None),
        )
        reconciliation.start()
        scheduler.start()
        return delivered, reports, len(finished)

    def test_orders_gone_from_the_open_list_are_looked_up(self) -> None:
        view = AccountView(reports_last_fill=True)
        view.saw(make_order_update(order_id="1", price=100))
        filled = make_order(order_id="1", price=100, status="filled", filled_quantity=1)
        looked_up: list[tuple[str, str]] = []

        def fetch_order(symbol: str, order_id: str) -> Observable[Order]:
            looked_up.append((symbol, order_id))
            return reactivex.just(filled)

        fetch = Fetchers(open_orders=lambda: reactivex.just([]), order=fetch_order)
        delivered, reports, finished = self._run(fetch, view)
        assert looked_up == [("BTCUSDT", "1")] and reports == [] and finished >= 1
        (update,) = delivered
        assert update.status == "FILLED" and update.execution_type == "TRADE"
        assert update.reconciled and update.last_fill_quantity == D(1)

    def test_a_failed_call_is_a_reported_gap_and_counts_as_done(self) -> None:
        view = AccountView(reports_last_fill=True)
        balances: tuple[Balance, ...] = (make_balance("BTC", 2),)
        fetch = Fetchers(
            open_orders=lambda: reactivex.throw(RxConnectorError("down")),
            balances=lambda: reactivex.just(balances),
        )
        delivered, reports, finished = self._run(fetch, view)
        assert [b.asset for b in delivered] == ["BTC"] and finished >= 1
        (gap,) = reports
        assert isinstance(gap, FeedGapError) and "open orders" in str(gap)

    def test_without_fetch_order_a_vanished_order_is_reported(self) -> None:
        view = AccountView(reports_last_fill=True)
        view.saw(make_order_update(order_id="9"))
        fetch = Fetchers(open_orders=lambda: reactivex.just([]))
        _, reports, _ = self._run(fetch, view)
        (gap,) = reports
        assert isinstance(gap, FeedGapError) and "1 order(s)" in str(gap)

    def test_nothing_to_fetch_is_said_by_any_state(self) -> None:
        assert not Fetchers().any_state
        assert Fetchers(positions=lambda: reactivex.just([])).any_state


SPEC = SocketSpec(url="ws://shown", connection_id="c1", max_messages=5, message_window=1.0)


class TestAttempts:
    def test_the_slot_ends_the_live_attempt_once_and_empties_on_dispose(self) -> None:
        slot = AttemptSlot()
        disposed: list[bool] = []
        inner: Observable[Any] = Observable(
            lambda _o, _s=None: Disposable(lambda: disposed.append(True))
        )
        errors: list[Exception] = []
        subscription = login_attempt(inner, slot).subscribe(on_error=errors.append)
        refused = RxConnectorError("login refused")
        slot.fail(refused)
        slot.fail(RxConnectorError("again"))
        assert errors == [refused] and disposed == [True]
        subscription.dispose()
        assert slot.current is None
        slot.fail(RxConnectorError("no attempt"))  # nothing live: no effect
        assert errors == [refused]

    def test_a_plain_protocol_connects_at_the_spec_url(self) -> None:
        seen: list[SocketSpec] = []

        def connect(spec: SocketSpec, _session: Any, _tasks: Any) -> Observable[Any]:
            seen.append(spec)
            return reactivex.empty()

        url_attempt(object(), connect, SPEC, lambda: None, None).subscribe()
        assert seen == [SPEC]

    def test_a_leased_url_is_used_and_shown_as_the_configured_one(self) -> None:
        seen: list[SocketSpec] = []

        def connect(spec: SocketSpec, _session: Any, _tasks: Any) -> Observable[Any]:
            seen.append(spec)
            return reactivex.never()

        leased = LeasedProtocol(BinanceFuturesUserStream(), lambda: reactivex.just("ws://key"))
        assert isinstance(leased, UrlLease) and leased.feeds == BinanceFuturesUserStream.feeds
        url_attempt(leased, connect, SPEC, lambda: None, None).subscribe()
        (spec,) = seen
        assert spec.url == "ws://key" and spec.public_url == "ws://shown"

    def test_a_lease_that_ends_without_a_url_is_an_error(self) -> None:
        class NoUrl:
            def open_url(self) -> Observable[str]:
                return reactivex.empty()

        errors: list[Exception] = []

        def connect(*_: Any) -> Observable[Any]:
            raise AssertionError("no URL, no socket")

        url_attempt(NoUrl(), connect, SPEC, lambda: None, None).subscribe(on_error=errors.append)
        assert len(errors) == 1 and "no socket URL" in str(errors[0])
