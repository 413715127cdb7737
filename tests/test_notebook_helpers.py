"""rxconnector.notebook without a kernel: live_display, collect, to_dataframe, timeline.

Time behaviour runs on a ``TestScheduler`` (one tick = one second, as in FakeConnector);
the IPython display path is exercised with a recording stand-in for ``display``.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import sys
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import IPython
import IPython.display
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector.models import BreakerState, ConnectionState
from rxconnector.notebook import (
    collect,
    figure_png,
    live_display,
    show_figure,
    timeline,
    to_dataframe,
)
from rxconnector.testing.factories import (
    make_clock_offset,
    make_connection_event,
    make_ticker,
    make_trade,
)

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class _Handle:
    def __init__(self, log: list[tuple[str, int, Any]], number: int) -> None:
        self._log = log
        self.number = number

    def update(self, content: Any) -> None:
        self._log.append(("update", self.number, content))


class _FakeDisplay:
    """Stands in for IPython.display.display(obj, display_id=True) and its handles."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, Any]] = []
        self.handles = 0

    def __call__(self, content: Any, display_id: bool = False) -> _Handle:
        assert display_id is True
        self.handles += 1
        self.log.append(("display", self.handles, content))
        return _Handle(self.log, self.handles)

    def texts(self) -> list[tuple[str, int, str]]:
        return [(kind, n, content.data) for kind, n, content in self.log]


class _FakeKernelShell:
    kernel = object()


@pytest.fixture
def fake_display(monkeypatch: pytest.MonkeyPatch) -> _FakeDisplay:
    fake = _FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake)
    return fake


@pytest.fixture
def in_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IPython, "get_ipython", lambda: _FakeKernelShell())


class TestLiveDisplayThrottling:
    """The first item draws at once, later ones at most every ``every`` seconds."""

    def test_draws_the_latest_item_at_most_every_period(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(
            on_next(201, "a"),
            on_next(201.5, "b"),
            on_next(201.8, "c"),
            on_next(205, "d"),
            on_completed(206),
        )
        drawn: list[tuple[float, str]] = []

        def render(item: str) -> str:
            drawn.append((scheduler.clock, item))
            return f"item {item}"

        out = io.StringIO()
        view = live_display(
            source, render, every=1.0, output="print", stream=out, scheduler=scheduler
        )
        scheduler.advance_to(210)
        assert drawn == [(201, "a"), (202, "c"), (205, "d")]
        assert out.getvalue().splitlines() == [
            "item a",
            "item c",
            "item d",
            "feed completed after 4 items",
        ]
        assert (view.count, view.latest, view.done, view.error) == (4, "d", True, None)

    def test_the_pending_item_is_drawn_when_the_feed_completes(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(
            on_next(201, 1), on_next(201.2, 2), on_completed(201.4)
        )
        out = io.StringIO()
        live_display(source, str, every=5.0, output="print", stream=out, scheduler=scheduler)
        scheduler.advance_to(300)
        assert out.getvalue().splitlines() == ["1", "2", "feed completed after 2 items"]

    def test_nothing_is_redrawn_without_new_items(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(on_next(201, "x"))
        calls: list[str] = []
        live_display(
            source,
            calls.append,
            every=0.5,
            output="print",
            stream=io.StringIO(),
            scheduler=scheduler,
        )
        scheduler.advance_to(260)
        assert calls == ["x"]

    @pytest.mark.parametrize("every", [0, -1.0, float("inf"), float("nan")])
    def test_rejects_a_period_that_is_not_positive(self, every: float) -> None:
        with pytest.raises(ValueError, match="every"):
            live_display(reactivex.never(), every=every, output="print")

    def test_rejects_an_unknown_output(self) -> None:
        with pytest.raises(ValueError, match="output"):
            live_display(reactivex.never(), output="html")  # type: ignore[arg-type]


class TestLiveDisplayEnding:
    """Errors, render failures and dispose end the display with a status line."""

    def test_a_feed_error_is_kept_and_reported(self) -> None:
        scheduler = TestScheduler()
        boom = ConnectionError("gone")
        source = scheduler.create_hot_observable(on_next(201, "a"), on_error(203, boom))
        out = io.StringIO()
        view = live_display(source, str, output="print", stream=out, scheduler=scheduler)
        scheduler.advance_to(210)
        assert view.error is boom and view.done
        assert out.getvalue().splitlines() == [
            "a",
            "feed failed after 1 items: ConnectionError('gone')",
        ]

    def test_a_render_that_raises_stops_the_display_and_unsubscribes(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(on_next(201, 1), on_next(203, 0), on_next(205, 2))

        def render(item: int) -> str:
            return f"{10 / item:.1f}"

        out = io.StringIO()
        view = live_display(
            source, render, every=0.1, output="print", stream=out, scheduler=scheduler
        )
        scheduler.advance_to(210)
        assert isinstance(view.error, ZeroDivisionError) and view.done
        assert source.subscriptions == [Subscription(0, 203)]
        assert out.getvalue().splitlines() == [
            "10.0",
            "live_display stopped: render raised ZeroDivisionError('division by zero')",
        ]
        assert view.count == 2  # the item at 205 was never taken

    def test_dispose_unsubscribes_and_draws_the_pending_item(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(on_next(201, "a"), on_next(201.5, "b"))
        out = io.StringIO()
        view = live_display(source, str, every=2.0, output="print", stream=out, scheduler=scheduler)
        scheduler.advance_to(201.7)
        view.dispose()
        view.dispose()  # idempotent
        scheduler.advance_to(210)
        assert source.subscriptions == [Subscription(0, 201.7)]
        assert out.getvalue().splitlines() == ["a", "b", "stopped after 2 items"]
        assert view.done and view.error is None
        assert repr(view) == "<LiveDisplay done items=2>"

    def test_default_render_describes_models(self) -> None:
        subject: Subject[Any] = Subject()
        out = io.StringIO()
        live_display(subject, output="print", stream=out, scheduler=TestScheduler())
        subject.on_next(make_ticker("ETHUSDT", 3000))
        assert "ETHUSDT ticker last=3000" in out.getvalue()


class TestLiveDisplayInAKernel:
    """In a kernel one display area is updated in place, under the calling cell."""

    def test_updates_one_display_handle_and_shows_the_status_apart(
        self, fake_display: _FakeDisplay
    ) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(
            on_next(201, "a"), on_next(203, "b"), on_completed(204)
        )
        live_display(source, lambda s: f"<{s}>", output="display", scheduler=scheduler)
        scheduler.advance_to(210)
        assert fake_display.texts() == [
            ("display", 1, "<a>"),
            ("update", 1, "<b>"),
            ("display", 2, "feed completed after 2 items"),
        ]

    def test_rich_content_is_displayed_as_is(self, fake_display: _FakeDisplay) -> None:
        subject: Subject[int] = Subject()
        shown = {"rich": True}
        live_display(subject, lambda _: shown, output="display", scheduler=TestScheduler())
        subject.on_next(1)
        assert fake_display.log == [("display", 1, shown)]

    def test_auto_output_uses_the_display_only_in_a_kernel(
        self, fake_display: _FakeDisplay, in_kernel: None
    ) -> None:
        subject: Subject[str] = Subject()
        live_display(subject, str, scheduler=TestScheduler())
        subject.on_next("x")
        assert fake_display.texts() == [("display", 1, "x")]

    def test_auto_output_prints_outside_a_kernel(
        self, fake_display: _FakeDisplay, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(IPython, "get_ipython", lambda: None)
        subject: Subject[str] = Subject()
        out = io.StringIO()
        live_display(subject, str, stream=out, scheduler=TestScheduler())
        subject.on_next("x")
        assert out.getvalue() == "x\n"
        assert fake_display.log == []

    def test_output_is_written_in_the_context_of_the_calling_cell(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # ipykernel picks the cell an output belongs to from a context variable; items
        # arrive from a task that an earlier cell started, in that cell's context.
        cell: contextvars.ContextVar[str] = contextvars.ContextVar("cell", default="none")
        seen: list[tuple[str, Any]] = []

        class _Recorder:
            def update(self, content: Any) -> None:
                seen.append((cell.get(), content.data))

        def display(content: Any, display_id: bool = False) -> _Recorder:
            seen.append((cell.get(), content.data))
            return _Recorder()

        monkeypatch.setattr(IPython.display, "display", display)
        subject: Subject[str] = Subject()
        scheduler = TestScheduler()
        cell.set("cell 3")
        live_display(subject, str, every=1.0, output="display", scheduler=scheduler)
        feed_task_context = contextvars.Context()
        feed_task_context.run(cell.set, "cell 1")
        feed_task_context.run(subject.on_next, "a")
        scheduler.advance_to(5)
        feed_task_context.run(subject.on_next, "b")
        feed_task_context.run(subject.on_completed)
        assert seen == [
            ("cell 3", "a"),
            ("cell 3", "b"),
            ("cell 3", "feed completed after 2 items"),
        ]


class TestCollect:
    """collect subscribes at once and resolves to a list, never blocking the loop."""

    async def test_stops_after_n_items(self) -> None:
        assert await collect(reactivex.from_iterable(range(10)), n=3) == [0, 1, 2]

    async def test_n_zero_is_an_empty_list(self) -> None:
        assert await collect(reactivex.never(), n=0) == []

    async def test_without_limits_waits_for_completion(self) -> None:
        assert await collect(reactivex.from_iterable("abc")) == ["a", "b", "c"]

    async def test_stops_after_seconds_in_virtual_time(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(
            on_next(1, "a"), on_next(2, "b"), on_next(3, "c"), on_next(5, "d")
        )
        future = collect(source, seconds=3.5, scheduler=scheduler)
        scheduler.advance_to(3)
        assert not future.done()
        scheduler.advance_to(10)
        assert await future == ["a", "b", "c"]
        assert source.subscriptions == [Subscription(0, 3.5)]

    async def test_whichever_limit_comes_first(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(on_next(1, "a"), on_next(2, "b"))
        future = collect(source, n=1, seconds=10, scheduler=scheduler)
        scheduler.advance_to(20)
        assert await future == ["a"]

    async def test_times_on_the_loop_by_default(self) -> None:
        threads: set[str] = set()
        feed = reactivex.interval(0.01).pipe(
            ops.do_action(lambda _: threads.add(threading.current_thread().name))
        )
        items = await asyncio.wait_for(collect(feed, seconds=0.1), 2.0)
        assert 3 <= len(items) <= 11
        assert threads == {threading.current_thread().name}

    async def test_subscribes_when_called_not_when_awaited(self) -> None:
        subject: Subject[int] = Subject()
        future = collect(subject, n=2)
        subject.on_next(1)
        subject.on_next(2)
        assert await future == [1, 2]

    async def test_a_feed_error_is_raised_by_await(self) -> None:
        with pytest.raises(ValueError, match="bad"):
            await collect(reactivex.throw(ValueError("bad")))

    async def test_cancelling_unsubscribes(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_hot_observable(on_next(5, "a"))
        future = collect(source)
        scheduler.advance_to(2)
        future.cancel()
        await asyncio.sleep(0)  # done-callbacks run on the next loop iteration
        assert source.subscriptions == [Subscription(0, 2)]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"n": -1}, "n"), ({"n": True}, "n"), ({"n": 1.5}, "n"), ({"seconds": -1.0}, "seconds")],
    )
    async def test_rejects_bad_limits(self, kwargs: dict[str, Any], field: str) -> None:
        with pytest.raises(ValueError, match=field):
            collect(reactivex.never(), **kwargs)


class TestToDataFrame:
    """Models become rows, fields columns, Decimals floats, enums their values."""

    def test_model_fields_become_columns(self) -> None:
        trades = [
            make_trade("BTCUSDT", "100.5", "0.25", "buy", trade_id=1, time=1000),
            make_trade("BTCUSDT", "101", "2", "sell", trade_id=2, time=2000),
        ]
        frame = to_dataframe(trades)
        assert list(frame["trade_id"]) == [1, 2]
        assert list(frame["price"]) == [100.5, 101.0]
        assert str(frame["price"].dtype) == "float64"
        assert list(frame["side"]) == ["buy", "sell"]
        assert "backfilled" in frame.columns

    def test_decimals_can_stay_exact(self) -> None:
        frame = to_dataframe([make_trade(price="0.1")], decimals="decimal")
        assert frame["price"][0] == Decimal("0.1")

    def test_enums_become_their_values(self) -> None:
        frame = to_dataframe([make_connection_event(ConnectionState.STALE)])
        assert list(frame["state"]) == ["stale"]

    def test_mappings_and_plain_values(self) -> None:
        assert to_dataframe([{"a": Decimal("1.5"), "b": "x"}]).to_dict("records") == [
            {"a": 1.5, "b": "x"}
        ]
        assert list(to_dataframe([1, 2]).columns) == ["value"]

    def test_timestamp_records_keep_their_time(self) -> None:
        scheduler = TestScheduler()
        records: list[Any] = []
        reactivex.of(BreakerState.OPEN).pipe(ops.timestamp(scheduler=scheduler)).subscribe(
            records.append, scheduler=scheduler
        )
        scheduler.start()
        frame = to_dataframe(records)
        assert list(frame.columns) == ["timestamp", "value"]
        assert frame["value"][0] == "open"

    def test_time_index_from_epoch_milliseconds(self) -> None:
        frame = to_dataframe(
            [make_trade(time=1_700_000_000_000), make_trade(time=1_700_000_000_500)],
            time_index="time",
        )
        assert "time" not in frame.columns
        assert list(frame.index) == [
            datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC),
        ]

    def test_unknown_time_index_names_the_columns(self) -> None:
        with pytest.raises(KeyError, match="event_time"):
            to_dataframe([{"event_time": 1}], time_index="when")

    def test_rejects_an_unknown_decimal_mode(self) -> None:
        with pytest.raises(ValueError, match="decimals"):
            to_dataframe([], decimals="str")  # type: ignore[arg-type]

    def test_missing_pandas_says_which_extra_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "pandas", None)
        with pytest.raises(ImportError, match=r"rxconnector\[notebooks\]"):
            to_dataframe([1])


def _spans(ax: Any) -> list[tuple[float, float, tuple[float, ...]]]:
    """(x start, width, face colour) of every span drawn with broken_barh."""
    spans = []
    for collection in ax.collections:
        for path, colour in zip(collection.get_paths(), collection.get_facecolors(), strict=False):
            xs = path.vertices[:, 0]
            spans.append((round(xs.min(), 6), round(xs.max() - xs.min(), 6), tuple(colour)))
    return spans


class TestTimeline:
    """State streams become coloured spans, numbers step lines, on one time axis."""

    def test_connection_states_span_until_the_next_event(self) -> None:
        events = [
            make_connection_event(ConnectionState.CONNECTING, time=10_000),
            make_connection_event(ConnectionState.CONNECTED, time=10_500),
            make_connection_event(ConnectionState.RECONNECTING, time=12_000),
        ]
        figure = timeline({"ws": events}, end=13_000)
        (ax,) = figure.axes
        spans = _spans(ax)
        assert [(x, width) for x, width, _ in spans] == [(0.0, 0.5), (0.5, 1.5), (2.0, 1.0)]
        green, red = (0.172549, 0.627451), (0.839216, 0.152941)
        assert tuple(round(c, 6) for c in spans[1][2][:2]) == green
        assert tuple(round(c, 6) for c in spans[2][2][:2]) == red
        assert ax.get_xlim() == (0.0, 3.0)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "connecting",
            "connected",
            "reconnecting",
        ]

    def test_events_out_of_order_are_sorted_by_time(self) -> None:
        late = make_connection_event(ConnectionState.RECONNECTING, time=2000)
        early = make_connection_event(ConnectionState.CONNECTED, time=0)
        (ax,) = timeline({"ws": [late, early]}, start=0, end=3000).axes
        assert [(x, width) for x, width, _ in _spans(ax)] == [(0.0, 2.0), (2.0, 1.0)]

    def test_each_connection_gets_its_own_lane(self) -> None:
        events = [
            make_connection_event(ConnectionState.CONNECTED, connection_id="a", time=0),
            make_connection_event(ConnectionState.CONNECTED, connection_id="b", time=1000),
            make_connection_event(ConnectionState.CLOSED, connection_id="a", time=2000),
        ]
        (ax,) = timeline({"ws": events}, start=0, end=3000).axes
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
        assert len(_spans(ax)) == 3

    def test_clock_offsets_are_a_step_line(self) -> None:
        offsets = [
            make_clock_offset(1.0, measured_at=1000),
            make_clock_offset(3000.0, measured_at=2000),
        ]
        (ax,) = timeline({"clock": offsets}, start=0, end=4000).axes
        step = ax.get_lines()[0]
        assert list(step.get_ydata()) == [1.0, 3000.0, 3000.0]
        assert list(step.get_xdata()) == [1.0, 2.0, 4.0]

    def test_timestamp_records_and_pairs_are_placed_at_their_time(self) -> None:
        scheduler = TestScheduler()
        stamped: list[Any] = []
        scheduler.create_hot_observable(
            on_next(2, BreakerState.CLOSED), on_next(4, BreakerState.OPEN)
        ).pipe(ops.timestamp(scheduler=scheduler)).subscribe(stamped.append)
        scheduler.advance_to(5)
        pairs = [(1000.0, "up"), (datetime(1970, 1, 1, 0, 0, 3, tzinfo=UTC), "down")]
        figure = timeline({"breaker": stamped, "custom": pairs}, start=0, end=6000)
        breaker_ax, custom_ax = figure.axes
        assert [(x, w) for x, w, _ in _spans(breaker_ax)] == [(2.0, 2.0), (4.0, 2.0)]
        assert [(x, w) for x, w, _ in _spans(custom_ax)] == [(1.0, 2.0), (3.0, 3.0)]
        assert breaker_ax.get_title(loc="left") == "breaker"

    def test_default_range_covers_every_event(self) -> None:
        events = [make_connection_event(time=5000), make_connection_event(time=15_000)]
        (ax,) = timeline({"ws": events}).axes
        low, high = ax.get_xlim()
        assert low == 0.0 and high > 10.0

    def test_an_event_without_a_time_is_refused_by_name(self) -> None:
        with pytest.raises(TypeError, match="'breaker'"):
            timeline({"breaker": [BreakerState.OPEN]})

    def test_needs_tracks_and_a_forward_range(self) -> None:
        with pytest.raises(ValueError, match="track"):
            timeline({})
        with pytest.raises(ValueError, match="end"):
            timeline({"ws": [make_connection_event(time=5000)]}, end=4000)

    def test_missing_matplotlib_says_which_extra_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
        with pytest.raises(ImportError, match=r"rxconnector\[notebooks\]"):
            timeline({"ws": [make_connection_event()]})


class TestFigures:
    """Figures render to PNG bytes, and are displayed only inside a kernel."""

    def test_figure_png_is_a_png(self) -> None:
        figure = timeline({"ws": [make_connection_event(time=0)]}, end=1000)
        assert figure_png(figure).startswith(b"\x89PNG\r\n\x1a\n")

    def test_show_figure_displays_a_png_image_in_a_kernel(
        self, monkeypatch: pytest.MonkeyPatch, in_kernel: None
    ) -> None:
        shown: list[Any] = []
        monkeypatch.setattr(IPython.display, "display", shown.append)
        figure = timeline({"ws": [make_connection_event(time=0)]}, end=1000)
        assert show_figure(figure) is None
        (image,) = shown
        assert isinstance(image, IPython.display.Image)
        assert image.data.startswith(b"\x89PNG")

    def test_show_figure_shows_nothing_outside_a_kernel(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(IPython, "get_ipython", lambda: None)
        shown: list[Any] = []
        monkeypatch.setattr(IPython.display, "display", shown.append)
        show_figure(timeline({"ws": [make_connection_event(time=0)]}, end=1000))
        assert shown == []


def test_notebook_all_lists_every_public_helper() -> None:
    """``rxconnector.notebook.__all__`` names every public function and class defined
    there (``from rxconnector.notebook import *`` and the docs rely on it)."""
    import inspect

    import rxconnector.notebook as nb

    defined = {
        name
        for name, value in vars(nb).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == nb.__name__
    }
    assert defined == set(nb.__all__)
    assert "live_display" in nb.__all__
