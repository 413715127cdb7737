"""The gapless-trade tests again, through the path the connector runs for venues with
consecutive ids: :func:`gapless_stage` inside :func:`shared_stage` (parse, id check and
multicast in one fan-out) instead of the :func:`gapless_trades` Observable.

Every test of ``test_continuity`` (the ``gapless_trades`` classes) and
``test_continuity_hostile`` runs unchanged, with ``gapless_trades`` swapped for
:func:`staged_gapless_trades`, so the two entry points cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex.testing import TestScheduler

from rxconnector.models import Trade
from rxconnector.operators._share import StageObserver, shared_stage
from rxconnector.streams.continuity import gapless_stage
from rxconnector.streams.messages import StreamRestart

try:
    import test_continuity as base
    import test_continuity_hostile as hostile
except ImportError:  # pragma: no cover - package-style collection
    from . import test_continuity as base  # type: ignore[no-redef]
    from . import test_continuity_hostile as hostile  # type: ignore[no-redef]


def staged_gapless_trades(
    live: Observable[Trade | StreamRestart],
    backfill: Callable[[int], Observable[list[Trade]]],
    **options: Any,
) -> Observable[Trade]:
    """``gapless_trades(live, backfill, **options)`` built the connector's way."""
    attach = gapless_stage(backfill, **options)

    def stage(
        downstream: abc.ObserverBase[Trade], scheduler: abc.SchedulerBase | None
    ) -> tuple[StageObserver[Any], abc.DisposableBase]:
        run = attach(downstream, scheduler)
        return StageObserver(run.on_next, run.on_error, run.on_completed), run

    return shared_stage(lambda _scheduler: live, stage)


class _Staged:
    """Swaps the tested function for the staged one around each test (xunit-style
    setup, so hypothesis' tests run it per example without a function-scoped fixture)."""

    def setup_method(self, _method: Any) -> None:
        self._saved = (base.gapless_trades, hostile.gapless_trades)
        base.gapless_trades = staged_gapless_trades  # type: ignore[assignment]
        hostile.gapless_trades = staged_gapless_trades  # type: ignore[assignment]

    def teardown_method(self, _method: Any) -> None:
        base.gapless_trades, hostile.gapless_trades = self._saved


class TestBackfillStaged(_Staged, base.TestBackfill):
    pass


class TestReportedGapsStaged(_Staged, base.TestReportedGaps):
    pass


class TestExactlyOnceStaged(_Staged):
    """The property of ``TestExactlyOnceProperty`` with the same strategies (its body
    is called, not its hypothesis wrapper: one wrapper must not run on two classes)."""

    @settings(max_examples=200, deadline=None)
    @given(
        st.integers(5, 60),
        st.lists(st.sampled_from(["send", "send", "drop", "dup", "late"]), min_size=1, max_size=60),
        st.integers(1, 7),
    )
    def test_exactly_once_in_order(self, n: int, actions: list[str], page_size: int) -> None:
        body = base.TestExactlyOnceProperty.test_exactly_once_in_order.hypothesis.inner_test  # type: ignore[attr-defined]
        assert base.gapless_trades is staged_gapless_trades  # (setup_method ran)
        body(base.TestExactlyOnceProperty(), n, actions, page_size)


class TestHostileStaged(_Staged):
    """The module-level tests of ``test_continuity_hostile``."""

    def test_an_id_far_ahead_is_a_parse_error_and_real_trades_keep_flowing(self) -> None:
        hostile.test_an_id_far_ahead_is_a_parse_error_and_real_trades_keep_flowing()

    def test_a_small_jump_the_venue_does_not_have_is_rejected_too(self) -> None:
        hostile.test_a_small_jump_the_venue_does_not_have_is_rejected_too()

    def test_a_real_jump_the_venue_confirms_is_still_a_reported_gap(self) -> None:
        hostile.test_a_real_jump_the_venue_confirms_is_still_a_reported_gap()

    def test_a_jump_followed_by_its_own_successor_is_confirmed_by_the_stream(self) -> None:
        hostile.test_a_jump_followed_by_its_own_successor_is_confirmed_by_the_stream()

    def test_a_hostile_first_trade_does_not_stay_the_baseline(self) -> None:
        hostile.test_a_hostile_first_trade_does_not_stay_the_baseline()

    def test_a_real_first_trade_with_replayed_older_ones_stays_the_baseline(self) -> None:
        hostile.test_a_real_first_trade_with_replayed_older_ones_stays_the_baseline()


def test_every_hostile_test_runs_staged() -> None:
    names = {n for n in vars(hostile) if n.startswith("test_")}
    assert names == {n for n in vars(TestHostileStaged) if n.startswith("test_")}


def test_the_swap_is_effective() -> None:
    """Guards the harness itself: inside a staged test the modules call the stage."""
    staged = TestBackfillStaged()
    staged.setup_method(None)
    try:
        assert base.gapless_trades is staged_gapless_trades
        assert hostile.gapless_trades is staged_gapless_trades
    finally:
        staged.teardown_method(None)
    assert base.gapless_trades is not staged_gapless_trades


# ---------------------------------------------------------------------------------------
# The connector's fused entries: _GaplessRun.frame_feeder and .message_feeder (the hub
# calls the latter with a message's two parts) == parse step + run.on_next
# ---------------------------------------------------------------------------------------

_TOPIC = "btcusdt@trade"


def _raw(trade_id: int) -> bytes:
    data = {
        "e": "trade",
        "E": 5,
        "s": "BTCUSDT",
        "t": trade_id,
        "p": "100.5",
        "q": "1",
        "T": 1000 + trade_id,
        "m": bool(trade_id & 1),
    }
    return orjson.dumps({"stream": _TOPIC, "data": data})


_MESSAGES = st.one_of(
    st.integers(1, 40).map(lambda i: ("raw", i)),
    st.integers(1, 40).map(lambda i: ("decoded", i)),
    st.sampled_from([("restart", 0), ("garbage", 0), ("nan", 0), ("other-stream", 0)]),
)


def _message(kind: str, value: int) -> Any:
    if kind == "raw":
        return (float(value), _raw(value))
    if kind == "decoded":  # a payload another hub (a replay) hands over decoded
        return (float(value), orjson.loads(_raw(value))["data"])
    if kind == "restart":
        return StreamRestart(_TOPIC, "reconnected")
    if kind == "garbage":
        return (1.0, b'{"stream":"btcusdt@trade","data":{"t":')
    if kind == "nan":
        return (1.0, _raw(3).replace(b'"100.5"', b'"NaN"'))
    return (1.0, _raw(4).replace(b"btcusdt@trade", b"ethusdt@trade"))


def _run_path(fused: bool | str, messages: list[Any]) -> tuple[list[Any], list[str]]:
    """``fused``: False the parse step, True ``frame_feeder``, ``"message"``
    ``message_feeder`` for tuples (as the hub hands them over) and the parse step for
    markers (which the hub sends to ``on_next``)."""
    from rxconnector.connector import _message_parser
    from rxconnector.exchanges.binance.feeds import BinanceSpotFeeds

    spec = BinanceSpotFeeds().trades("BTCUSDT")
    assert spec.parse_frame is not None
    venue = [base.tr(i) for i in range(1, 41)]
    got: list[Any] = []
    reports: list[str] = []

    def report(error: Exception) -> None:
        reports.append(f"{type(error).__name__}: {error}")

    downstream = StageObserver(got.append, lambda e: got.append(e), lambda: got.append("|"))
    attach = gapless_stage(
        lambda start: reactivex.of([t for t in venue if t.trade_id >= start][:5]),
        topic=_TOPIC,
        report=report,
        scheduler=TestScheduler(),  # retries wait (never fire): the same for both paths
    )
    run = attach(downstream, None)  # type: ignore[arg-type]
    on_next = _message_parser(spec, report, True)(run.on_next)
    on_message = run.message_feeder(spec.parse_frame, on_next)
    if fused is True:
        on_next = run.frame_feeder(spec.parse_frame, on_next)
    for message in messages:
        if fused == "message" and type(message) is tuple:
            on_message(*message)
        else:
            on_next(message)
    run.on_completed()
    return [(t.trade_id, t.backfilled) if isinstance(t, Trade) else t for t in got], reports


class TestFrameFeeder:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(_MESSAGES, max_size=40))
    def test_same_output_and_reports_as_the_parse_step(self, items: list[Any]) -> None:
        messages = [_message(kind, value) for kind, value in items]
        expected = _run_path(False, messages)
        assert _run_path(True, messages) == expected
        assert _run_path("message", messages) == expected

    def test_the_examples_cover_every_branch(self) -> None:
        messages = [_message(k, v) for k, v in [("raw", 1), ("raw", 2), ("raw", 2), ("raw", 5)]]
        messages += [_message("garbage", 0), _message("restart", 0), _message("decoded", 9)]
        for fused in (True, "message"):
            got, reports = _run_path(fused, messages)
            assert [t for t in got if t != "|"][:2] == [(1, False), (2, False)]
            assert (3, True) in got and (5, False) in got
            assert any(r.startswith("ParseError") for r in reports)
