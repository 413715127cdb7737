"""Helpers for Jupyter: watch a feed in place, collect items, tabulate and plot them.

In a notebook a plain cell already runs inside the kernel's asyncio loop, so feeds keep
flowing between cells and ``await`` works at top level. These helpers are built for that
setting and never block the loop: nothing here calls ``asyncio.run``,
``run_until_complete``, ``Observable.run()`` or ``time.sleep``.

* :func:`live_display` shows the latest item of a feed in one output area, redrawn in
  place (IPython display handles) at most every ``every`` seconds; outside a kernel it
  prints plain lines instead. It returns a disposable :class:`LiveDisplay`.
* :func:`collect` gathers items into a list and is awaited: ``await collect(feed, n=5)``.
* :func:`to_dataframe` turns models into a pandas ``DataFrame`` (one column per field).
* :func:`timeline` plots connection states, breaker states and clock offsets on one
  time axis; :func:`show_figure` displays any matplotlib figure as a PNG.

pandas, matplotlib and IPython are optional (the ``notebooks`` extra): they are imported
only when a helper needs them, and a missing one raises an ``ImportError`` that names
the extra. Their types are partial, so they are held as ``Any`` at this boundary.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import importlib
import io
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TextIO, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import SerialDisposable

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.models import BreakerState, ClockOffset, ConnectionEvent, ConnectionState
from rxconnector.terminal import describe

__all__ = [
    "LiveDisplay",
    "collect",
    "figure_png",
    "live_display",
    "show_figure",
    "timeline",
    "to_dataframe",
]

_T = TypeVar("_T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXTRA_HINT = "install the notebooks extra: pip install 'rxconnector[notebooks]'"

#: Colours of well-known states: green healthy, red down, others in between.
_STATE_COLOURS: dict[Any, str] = {
    ConnectionState.CONNECTED: "#2ca02c",
    ConnectionState.CONNECTING: "#bcbd22",
    ConnectionState.ROTATING: "#17becf",
    ConnectionState.STALE: "#9467bd",
    ConnectionState.RECONNECTING: "#d62728",
    ConnectionState.CLOSED: "#7f7f7f",
    BreakerState.CLOSED: "#2ca02c",
    BreakerState.HALF_OPEN: "#ff7f0e",
    BreakerState.OPEN: "#d62728",
}
_PALETTE = ("#1f77b4", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _optional(module: str, what: str) -> Any:
    """Import an optional dependency lazily, with an error that says how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs {module.split('.')[0]}: {_EXTRA_HINT}") from exc


def _kernel_shell() -> Any:
    """The running IPython *kernel* shell, or None (plain Python, terminal IPython).

    Display handles only update in place in a kernel's front end, so only a shell with a
    ``kernel`` attribute counts.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return shell


# -- live_display ---------------------------------------------------------------------------


class _Printed:
    """Output for plain Python: one line per redraw, statuses too."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def show(self, content: Any) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(f"{content}\n")
        stream.flush()

    def status(self, text: str) -> None:
        self.show(text)


class _Displayed:
    """Output in a kernel: one display area updated in place, and one for the status.

    Strings are wrapped in ``IPython.display.Pretty`` so they show as text, not as their
    quoted ``repr``.
    """

    def __init__(self) -> None:
        module = _optional("IPython.display", "live_display")
        self._display = module.display
        self._text = module.Pretty
        self._handle: Any = None
        self._status: Any = None

    def _shown(self, content: Any) -> Any:
        return self._text(content) if isinstance(content, str) else content

    def show(self, content: Any) -> None:
        if self._handle is None:
            self._handle = self._display(self._shown(content), display_id=True)
        else:
            self._handle.update(self._shown(content))

    def status(self, text: str) -> None:
        if self._status is None:
            self._status = self._display(self._text(text), display_id=True)
        else:
            self._status.update(self._text(text))


class LiveDisplay(abc.DisposableBase, Generic[_T]):
    """A feed shown in place; dispose it to stop watching (the feed is unsubscribed).

    Made by :func:`live_display`. ``latest`` is the newest item, ``count`` how many
    arrived, ``error`` the exception that ended the feed (or that ``render`` raised),
    ``done`` whether it ended (completed, errored or disposed).
    """

    def __init__(
        self,
        render: Callable[[_T], Any],
        every: float,
        scheduler: abc.SchedulerBase,
        output: _Printed | _Displayed,
    ) -> None:
        self.latest: _T | None = None
        self.count = 0
        self.error: BaseException | None = None
        self.done = False
        self._render = render
        self._every = every
        self._scheduler = scheduler
        self._output = output
        self._last_draw: float | None = None
        self._drawn = 0
        self._timer = SerialDisposable()
        self._subscription = SerialDisposable()
        # ipykernel routes output to a cell through a context variable: the feed's socket
        # task was started by whichever cell subscribed first, so output written from it
        # would land under *that* cell. Writing in the creating cell's context keeps the
        # display where live_display was called.
        self._context = contextvars.copy_context()

    def _write(self, write: Callable[[Any], None], content: Any) -> None:
        self._context.copy().run(write, content)

    # -- wiring (called by live_display) --------------------------------------------------

    def _attach(self, source: Observable[_T]) -> None:
        self._subscription.disposable = source.subscribe(
            self._on_next, self._on_error, self._on_completed, scheduler=self._scheduler
        )

    def _now(self) -> float:
        return now_ms(self._scheduler) / 1000.0

    def _on_next(self, item: _T) -> None:
        if self.done:
            return
        self.latest = item
        self.count += 1
        if self._timer.disposable is not None:
            return  # a redraw is already due; it will show this item
        due = 0.0 if self._last_draw is None else self._last_draw + self._every - self._now()
        if due <= 0:
            self._draw()
        else:
            self._timer.disposable = self._scheduler.schedule_relative(due, self._on_timer)

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._timer.disposable = None
        if not self.done:
            self._draw()

    def _draw(self) -> bool:
        """Render the latest item; a failing ``render`` ends the display (reported)."""
        if self._drawn == self.count:
            return True
        try:
            content = self._render(self.latest)  # type: ignore[arg-type]
        except Exception as exc:
            self._finish(f"live_display stopped: render raised {exc!r}", exc)
            return False
        self._drawn = self.count
        self._last_draw = self._now()
        self._write(self._output.show, content)
        return True

    def _on_error(self, error: Exception) -> None:
        if not self.done and self._draw():
            self._finish(f"feed failed after {self.count} items: {error!r}", error)

    def _on_completed(self) -> None:
        if not self.done and self._draw():
            self._finish(f"feed completed after {self.count} items", None)

    def _finish(self, status: str, error: BaseException | None) -> None:
        self.done = True
        self.error = error
        self._timer.dispose()
        self._subscription.dispose()
        self._write(self._output.status, status)

    # -- public -----------------------------------------------------------------------------

    def dispose(self) -> None:
        """Stop watching: unsubscribe, show the latest item one last time."""
        if self.done:
            return
        self._timer.disposable = None
        if self._draw():
            self._finish(f"stopped after {self.count} items", None)

    def __repr__(self) -> str:
        state = "done" if self.done else "live"
        return f"<LiveDisplay {state} items={self.count}>"


def live_display(
    observable: Observable[_T],
    render: Callable[[_T], Any] = describe,
    every: float = 0.25,
    *,
    output: Literal["auto", "display", "print"] = "auto",
    stream: TextIO | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> LiveDisplay[_T]:
    """Watch ``observable``: its latest item, rendered, in one place, redrawn at most
    every ``every`` seconds. Returns at once; dispose the result to stop.

    A feed can emit hundreds of items a second and a notebook front end cannot draw that
    fast, so redraws are throttled: the first item draws at once, later ones at most
    every ``every`` seconds (only the latest is drawn; nothing is queued). The redraw
    timer runs on ``scheduler`` (the running loop's by default), never on a thread.

    ``render`` turns an item into what is shown: a string, or anything IPython can
    display (a DataFrame, an ``IPython.display.HTML``...); the default is a one-line
    description of the model. ``output="auto"`` updates an IPython display area in place
    when running in a kernel and prints one line per redraw otherwise (to ``stream``,
    default stdout). When the feed ends, errors, or ``render`` raises, the last item is
    drawn and a status line says why it stopped; the exception is kept on ``.error``.

    .. code-block:: text

        items:    -a-b-c--------d-------|
        every:    |<--->|
        shown:    -a----c-------d-------(d,"completed after 4 items")
    """
    if not every > 0 or math.isinf(every):
        raise ValueError(f"every must be a positive number of seconds, got {every!r}")
    if output not in ("auto", "display", "print"):
        raise ValueError(f"output must be 'auto', 'display' or 'print', got {output!r}")
    sink: _Printed | _Displayed
    if output == "display" or (output == "auto" and _kernel_shell() is not None):
        sink = _Displayed()
    else:
        sink = _Printed(stream)
    view: LiveDisplay[_T] = LiveDisplay(render, every, resolve_scheduler(scheduler), sink)
    view._attach(observable)
    return view


# -- collect --------------------------------------------------------------------------------


def collect(
    observable: Observable[_T],
    n: int | None = None,
    seconds: float | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> asyncio.Future[list[_T]]:
    """Subscribe now and gather items into a list; await the result.

    Stops after ``n`` items, after ``seconds`` (timed on ``scheduler``, the loop's by
    default), whichever comes first, or when the feed completes. With neither limit it
    waits for completion (fine for REST calls and replays, forever for a live feed). The
    subscription starts when ``collect`` is called, not when it is awaited, so several
    collections can run side by side while other code runs. Cancelling the returned
    future unsubscribes; a feed error becomes the future's exception.

    .. code-block:: text

        feed:                   -a-b-c-d-e-
        collect(feed, n=3):     -----[a,b,c]
        collect(feed, seconds=4): ---[a,b]      (4 marbles = 4 s)
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if seconds is not None and (not seconds >= 0 or math.isinf(seconds)):
        raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[_T]] = loop.create_future()
    sched = resolve_scheduler(scheduler)
    source = observable
    if n is not None:
        source = source.pipe(ops.take(n))
    if seconds is not None:
        source = source.pipe(ops.take_with_time(seconds, scheduler=sched))
    items: list[_T] = []

    def on_error(error: Exception) -> None:
        if not future.done():
            future.set_exception(error)

    def on_completed() -> None:
        if not future.done():
            future.set_result(items)

    holder = SerialDisposable()
    future.add_done_callback(lambda _f: holder.dispose())
    subscription = source.subscribe(items.append, on_error, on_completed, scheduler=sched)
    holder.disposable = subscription
    return future


# -- to_dataframe ---------------------------------------------------------------------------


def _cell(value: Any, decimals: str) -> Any:
    if isinstance(value, Decimal):
        return float(value) if decimals == "float" else value
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _row(item: Any, decimals: str) -> dict[str, Any]:
    stamped = _stamped(item)
    if stamped is not None:
        return {"timestamp": stamped[0], **_row(stamped[1], decimals)}
    if attrs.has(type(item)):
        fields = attrs.fields(type(item))
        return {f.name: _cell(getattr(item, f.name), decimals) for f in fields}
    if isinstance(item, Mapping):
        return {str(k): _cell(v, decimals) for k, v in item.items()}
    return {"value": _cell(item, decimals)}


def to_dataframe(
    items: Iterable[Any],
    *,
    decimals: Literal["float", "decimal"] = "float",
    time_index: str | None = None,
) -> Any:
    """A pandas ``DataFrame`` with one row per item and one column per model field.

    attrs models (every rxconnector model) give their fields; mappings give their keys;
    ``ops.timestamp()`` records give a ``timestamp`` column plus their value's columns;
    anything else is one ``value`` column. ``Decimal`` prices become floats so they can
    be plotted and averaged (``decimals="decimal"`` keeps them exact, as objects); enums
    become their values; nested values (a book's ``bids`` levels) are kept as they are.
    ``time_index`` names an epoch-milliseconds column (such as ``event_time`` or
    ``received_at``) to turn into a UTC ``DatetimeIndex``.
    """
    if decimals not in ("float", "decimal"):
        raise ValueError(f"decimals must be 'float' or 'decimal', got {decimals!r}")
    pd = _optional("pandas", "to_dataframe")
    frame = pd.DataFrame.from_records([_row(item, decimals) for item in items])
    if time_index is not None:
        if time_index not in frame.columns:
            raise KeyError(f"no column {time_index!r}; columns are {list(frame.columns)}")
        index = pd.to_datetime(frame[time_index], unit="ms", utc=True)
        frame = frame.set_index(index.rename(time_index))
        frame = frame.drop(columns=[time_index])
    return frame


# -- figures --------------------------------------------------------------------------------


def figure_png(figure: Any, *, dpi: int = 72) -> bytes:
    """``figure`` (a matplotlib Figure) rendered as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def show_figure(figure: Any, *, dpi: int = 72) -> None:
    """Display ``figure`` as a PNG image in the notebook.

    Rendering to PNG ourselves works with every matplotlib backend (``inline`` in a
    notebook, ``Agg`` on a headless machine, where ``plt.show()`` shows nothing). Build
    figures with ``matplotlib.figure.Figure`` rather than ``pyplot`` so the inline
    backend does not show them a second time. Outside a kernel nothing is displayed
    (use :func:`figure_png` or ``figure.savefig`` there). Returns None so that a cell
    ending with it does not also print the image's bytes.
    """
    if _kernel_shell() is None:
        return
    display = _optional("IPython.display", "show_figure")
    display.display(display.Image(data=figure_png(figure, dpi=dpi), format="png"))


# -- timeline -------------------------------------------------------------------------------


@attrs.frozen
class _Point:
    time_ms: float
    value: Any
    lane: str


def _epoch_ms(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH).total_seconds() * 1000.0


def _stamped(item: Any) -> tuple[datetime, Any] | None:
    """(timestamp, value) of an ``ops.timestamp()`` record (duck-typed: the class is
    private to reactivex), else None."""
    moment = getattr(item, "timestamp", None)
    if isinstance(moment, datetime) and hasattr(item, "value"):
        return moment, item.value
    return None


def _point(event: Any, track: str) -> _Point:
    """Where ``event`` sits: epoch ms, the value drawn, and its lane (connection id for
    connection events, so two connections never overwrite each other's states)."""
    stamped = _stamped(event)
    if stamped is not None:
        moment, value = stamped
        if isinstance(value, ConnectionEvent):
            return _Point(_epoch_ms(moment), value.state, value.connection_id)
        if isinstance(value, ClockOffset):
            return _Point(_epoch_ms(moment), value.offset_ms, track)
        return _Point(_epoch_ms(moment), value, track)
    if isinstance(event, ConnectionEvent):
        return _Point(event.time, event.state, event.connection_id)
    if isinstance(event, ClockOffset):
        return _Point(event.measured_at, event.offset_ms, track)
    if isinstance(event, tuple) and len(event) == 2:
        moment, value = event
        time_ms = _epoch_ms(moment) if isinstance(moment, datetime) else float(moment)
        return _Point(time_ms, value, track)
    raise TypeError(
        f"timeline track {track!r}: cannot place {event!r} in time; give ConnectionEvent, "
        "ClockOffset, ops.timestamp() records or (epoch_ms, value) pairs"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _label(value: Any) -> str:
    return str(value.value) if isinstance(value, enum.Enum) else str(value)


def timeline(
    tracks: Mapping[str, Sequence[Any]],
    *,
    start: float | None = None,
    end: float | None = None,
    title: str | None = None,
    width: float = 9.0,
) -> Any:
    """One matplotlib ``Figure`` with a row per track on a shared time axis (seconds).

    A track is a sequence of events (sorted by time here): ``ConnectionEvent`` (at its
    ``time``, one lane per connection), ``ClockOffset`` (``offset_ms`` at
    ``measured_at``), records of ``ops.timestamp(scheduler=...)`` (for streams without
    a time of their own, such as ``breaker_state``), or ``(epoch_ms, value)`` pairs.
    Numeric tracks are drawn as step lines; the others as coloured spans, each state
    lasting until the next event of its lane (or ``end``). ``start``/``end`` are epoch
    ms (default: the first and last events, the end padded a little); the axis shows
    seconds since ``start``. Nothing is shown: pass the figure to :func:`show_figure`,
    or save it.
    """
    if not tracks:
        raise ValueError("timeline needs at least one track")
    figure_module = _optional("matplotlib.figure", "timeline")
    points = {
        name: sorted((_point(event, name) for event in events), key=lambda p: p.time_ms)
        for name, events in tracks.items()
    }
    times = [p.time_ms for track_points in points.values() for p in track_points]
    if start is None:
        start = min(times) if times else 0.0
    last = max(times, default=start)
    if end is None:
        end = last + max((last - start) * 0.03, 500.0)
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")

    figure = figure_module.Figure(figsize=(width, 0.5 + 1.4 * len(points)), layout="constrained")
    axes = figure.subplots(len(points), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, track_points) in zip(axes, points.items(), strict=True):
        if track_points and all(_is_number(p.value) for p in track_points):
            _draw_numeric(ax, track_points, start, end)
        else:
            _draw_states(ax, name, track_points, start, end)
        ax.set_title(name, loc="left", fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlim(0.0, (end - start) / 1000.0)
    axes[-1].set_xlabel("seconds")
    if title:
        figure.suptitle(title)
    return figure


def _draw_numeric(ax: Any, points: list[_Point], first: float, end: float) -> None:
    xs = [(p.time_ms - first) / 1000.0 for p in points]
    ys = [float(p.value) for p in points]
    xs.append((end - first) / 1000.0)
    ys.append(ys[-1])
    ax.step(xs, ys, where="post", color="#1f77b4")
    ax.plot(xs[:-1], ys[:-1], "o", color="#1f77b4", markersize=3)


def _draw_states(ax: Any, name: str, points: list[_Point], first: float, end: float) -> None:
    lanes: dict[str, list[_Point]] = {}
    for point in points:
        lanes.setdefault(point.lane, []).append(point)
    colours: dict[str, str] = {}

    def colour(value: Any) -> str:
        label = _label(value)
        if label not in colours:
            spare = _PALETTE[len(colours) % len(_PALETTE)]
            known = _STATE_COLOURS.get(value) if isinstance(value, enum.Enum) else None
            colours[label] = known or spare
        return colours[label]

    for row, lane_points in enumerate(lanes.values()):
        for current, following in zip(lane_points, [*lane_points[1:], None], strict=True):
            stop = following.time_ms if following is not None else end
            x0 = (current.time_ms - first) / 1000.0
            span = max((stop - current.time_ms) / 1000.0, 0.0)
            ax.broken_barh([(x0, span)], (row - 0.4, 0.8), facecolors=colour(current.value))
            ax.plot([x0], [row], "|", color="black", markersize=10)
    if list(lanes) == [name]:
        ax.set_yticks([])  # one lane named after the track: nothing to tell apart
    else:
        ax.set_yticks(range(len(lanes)), [str(lane) for lane in lanes])
    ax.set_ylim(-0.6, max(len(lanes), 1) - 0.4)
    patches = _optional("matplotlib.patches", "timeline")
    handles = [patches.Patch(color=c, label=label) for label, c in colours.items()]
    if handles:
        ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=len(handles),
            fontsize="small",
            frameon=False,
            borderaxespad=0.1,
        )
