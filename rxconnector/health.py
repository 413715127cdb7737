"""A connector's health streams: non-fatal problems and connection-state events.

Hubs, parsers, the clock sync and the account streams report into one
:class:`Health`; users read :attr:`Health.errors` and :attr:`Health.connection_state`
(the connector's ``errors`` and ``connection_state``). It is its own object, rather than
two subjects inside the connector, so that whatever builds parts of a connector
(recording, replay) reports through the same declared door.
"""

from __future__ import annotations

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.subject import Subject

from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.operators import isolate

__all__ = ["Health"]


class Health:
    """Where a connector's components report problems and connection states.

    After :meth:`close` reports are dropped (a stopping connector's hubs and sockets
    report their own shutdown, which is not news); :meth:`complete` then ends both
    streams.
    """

    def __init__(self) -> None:
        self._errors: Subject[Exception] = Subject()
        self._states: Subject[ConnectionEvent] = Subject()
        # A raising subscriber of a health stream is logged and detached; it must not
        # reach the hub or parser that reported the event (nor the other subscribers).
        self._errors_view: Observable[Exception] = self._errors.pipe(isolate())
        self._states_view: Observable[ConnectionEvent] = self._states.pipe(isolate())
        self._latest: dict[str, ConnectionEvent] = {}
        self._closed = False

    def report(self, error: Exception) -> None:
        """A non-fatal problem, for :attr:`errors` (dropped once closed)."""
        if not self._closed:
            self._errors.on_next(error)

    def on_state(self, event: ConnectionEvent) -> None:
        """A connection's new state: remembered per connection and emitted (unless closed)."""
        if event.state is ConnectionState.CLOSED:
            self._latest.pop(event.connection_id, None)
        else:
            self._latest[event.connection_id] = event
        if not self._closed:
            self._states.on_next(event)

    @property
    def errors(self) -> Observable[Exception]:
        """Hot stream of reported problems; completes on :meth:`complete`."""
        return self._errors_view

    @property
    def connection_state(self) -> Observable[ConnectionEvent]:
        """The latest event of each open connection first, then live ones."""

        def build(_: abc.SchedulerBase | None) -> Observable[ConnectionEvent]:
            latest = list(self._latest.values())
            return reactivex.from_iterable(latest).pipe(ops.concat(self._states_view))

        return reactivex.defer(build)

    def close(self) -> None:
        """Stop emitting reports (the connector is stopping)."""
        self._closed = True

    def complete(self) -> None:
        """End both streams (the connector has stopped)."""
        self._closed = True
        self._states.on_completed()
        self._errors.on_completed()
