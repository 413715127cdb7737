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

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc

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
