"""The stale watchdog: fail a connection whose data (or whose whole link) went silent.

A dead TCP connection often looks alive: no FIN, no RST, just nothing. The watchdog
turns that silence into an error the reconnect logic can act on. It is an operator
over a connection attempt's items (:data:`~rxconnector.transport.ws_types.WsItem`),
applied by :func:`rxconnector.transport.ws.websocket` when ``stale_after`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import StaleConnectionError
from rxconnector.models import ConnectionState
from rxconnector.rate.pacing import scheduler_seconds
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem, socket_event

__all__ = ["stale_watchdog"]

#: The stale watchdog looks this many times per ``stale_after`` period.
_STALE_CHECKS_PER_PERIOD = 4


def stale_watchdog(
    stale_after: float,
    spec: SocketSpec,
    *,
    data_count: Callable[[], int] | None = None,
    active: Callable[[], bool] | None = None,
    link_stale_after: float | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[WsItem]], Observable[WsItem]]:
    """Fail a connection that delivers no data for ``stale_after`` seconds.

    .. marble::
        :alt: stale_watchdog(4), checks every 1 s

        -C-f-f---------
        [ stale_watchdog(4) ]
        -C-f-f---(S,#)         S: STALE event, #: StaleConnectionError

    Watching starts at :class:`Connected`. ``data_count()`` is the number of data
    messages so far (default: frames seen here; the hub counts routed data only, so acks
    and application pongs cannot keep a dead feed "alive"); while ``active()`` is false
    (no topic subscribed, or only topics that may rightly stay silent for minutes, such
    as liquidations) data silence is normal and not measured.

    ``link_stale_after`` guards the link itself, whatever it carries: when
    :class:`Connected` brings a ``heard()`` value (it changes with every frame, protocol
    pings and pongs included) and it does not change for that long, the connection is
    dead too. So a connection with only quiet streams stays up as long as the server
    pings it (USD-M: every 3 minutes) or answers our pings (Bybit), and still fails when
    it goes silent.

    Checks run a quarter of the shorter threshold apart on the scheduler - no timer per
    message - so a stall is detected between ``stale_after`` and ``1.25 * stale_after``
    after the last data (likewise for the link).
    """

    def _operator(source: Observable[WsItem]) -> Observable[WsItem]:
        def subscribe(
            observer: abc.ObserverBase[WsItem], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            watch = _StaleWatch(
                observer,
                resolve_scheduler(scheduler, scheduler_),
                spec,
                stale_after,
                data_count,
                active,
                link_stale_after,
            )
            watch.upstream.disposable = source.subscribe(
                watch.on_next, observer.on_error, observer.on_completed, scheduler=watch.sched
            )
            return CompositeDisposable(watch.upstream, watch.timer)

        return Observable(subscribe)

    return _operator


class _StaleWatch:
    """One subscription of :func:`stale_watchdog`: the counters it compares between
    checks, and the one timer that runs the next check."""

    def __init__(
        self,
        observer: abc.ObserverBase[WsItem],
        sched: abc.SchedulerBase,
        spec: SocketSpec,
        stale_after: float,
        data_count: Callable[[], int] | None,
        active: Callable[[], bool] | None,
        link_stale_after: float | None,
    ) -> None:
        self.observer = observer
        self.sched = sched
        self.spec = spec
        self.stale_after = stale_after
        self.link_stale_after = link_stale_after
        self.period = min(stale_after, link_stale_after or stale_after) / _STALE_CHECKS_PER_PERIOD
        self.upstream = SingleAssignmentDisposable()
        self.timer = SerialDisposable()
        self.seen = 0  # frames seen here (the default data count)
        self.count: Callable[[], int] = data_count if data_count is not None else self._seen
        self.is_active: Callable[[], bool] = active if active is not None else _always_active
        self.last_count = 0
        self.quiet_since = 0.0
        self.heard: Callable[[], float] | None = None
        self.last_heard = 0.0
        self.unheard_since = 0.0
        self.watching = False

    def _seen(self) -> int:
        return self.seen

    def on_next(self, item: WsItem) -> None:
        """Count frames; start watching at the first :class:`Connected`."""
        if type(item) is tuple:
            self.seen += 1
        elif type(item) is Connected and not self.watching:
            self.watching = True
            self.last_count, self.quiet_since = self.count(), scheduler_seconds(self.sched)
            self.heard = heard = item.heard
            self.last_heard = heard() if heard else 0.0
            self.unheard_since = self.quiet_since
            self.timer.disposable = self.sched.schedule_relative(self.period, self.check)
        self.observer.on_next(item)

    def check(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        """One periodic look at the data count and the link's last-frame value."""
        now = scheduler_seconds(self.sched)
        current = self.count()
        if current != self.last_count or not self.is_active():
            self.last_count, self.quiet_since = current, now
        elif now - self.quiet_since >= self.stale_after - 1e-9:
            self.stale(f"no data for {self.stale_after:g} s", self.stale_after)
            return
        heard, link_stale_after = self.heard, self.link_stale_after
        if heard is not None and link_stale_after is not None:
            frames = heard()
            if frames != self.last_heard:
                self.last_heard, self.unheard_since = frames, now
            elif now - self.unheard_since >= link_stale_after - 1e-9:
                self.stale(
                    f"nothing received, not even a ping, for {link_stale_after:g} s",
                    link_stale_after,
                )
                return
        self.timer.disposable = self.sched.schedule_relative(self.period, self.check)

    def stale(self, message: str, threshold: float) -> None:
        """Give up on the connection: STALE event, then the error."""
        self.upstream.dispose()
        self.observer.on_next(
            socket_event(self.sched, self.spec, ConnectionState.STALE, reason=message)
        )
        self.observer.on_error(
            StaleConnectionError(f"WebSocket {self.spec.public_url}: {message}", threshold)
        )


def _always_active() -> bool:
    return True
