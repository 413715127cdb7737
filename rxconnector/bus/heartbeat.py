"""Is a publisher alive? Heartbeats judged on the consumer's own clock.

Each publisher writes ``{"time": ms, "period_ms": p, ...}`` into the hash
``rxc:{venue}:heartbeats`` every ``p`` ms. A consumer does not compare ``time`` with its
own clock (the machines' clocks may differ): it notes, on its scheduler's clock, when a
holder's ``time`` last *changed*, and calls the holder stale when that is more than
``STALE_FACTOR`` periods ago. Pure state machine, driven with explicit times, so its
tests need no sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from rxconnector.models import ConnectionEvent, ConnectionState

__all__ = [
    "STALE_FACTOR",
    "HeartbeatTracker",
    "event_entry",
    "publisher_connection_id",
]

#: A publisher is stale after this many heartbeat periods without a new beat.
STALE_FACTOR = 3.0


def publisher_connection_id(holder: str) -> str:
    return f"publisher:{holder}"


def event_entry(holder: str, event: ConnectionEvent) -> bytes:
    """A publisher's exchange connection event as written to ``rxc:{venue}:events``
    (``RemoteConnector.connection_state`` forwards it as ``{holder}/{connection id}``)."""
    return orjson.dumps(
        {
            "holder": holder,
            "state": event.state.value,
            "connection_id": event.connection_id,
            "url": event.url,
            "time": event.time,
            "attempt": event.attempt,
            "delay": event.delay,
            "reason": event.reason,
        }
    )


@attrs.define
class _Seen:
    beat: float
    period_ms: float
    changed_at: float
    state: ConnectionState


class HeartbeatTracker:
    """Turns heartbeat readings into ``ConnectionEvent``s (CONNECTED / STALE / CLOSED)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._seen: dict[str, _Seen] = {}

    @property
    def alive(self) -> list[str]:
        """Holders whose heartbeat is fresh."""
        return [h for h, s in self._seen.items() if s.state is ConnectionState.CONNECTED]

    def observe(self, beats: Mapping[str, Mapping[str, Any]], now: float) -> list[ConnectionEvent]:
        """Feed one reading of the heartbeat hash (holder -> beat) taken at ``now`` (ms)."""
        events: list[ConnectionEvent] = []
        for holder, beat in beats.items():
            stamp = float(beat.get("time", 0.0))
            period = float(beat.get("period_ms", 1000.0))
            seen = self._seen.get(holder)
            if seen is None:
                # A beat we have never seen change may be a dead publisher's last one:
                # fresh only once it changes (or, the first time, for one stale window).
                seen = self._seen[holder] = _Seen(stamp, period, now, ConnectionState.CONNECTED)
                events.append(self._event(holder, ConnectionState.CONNECTED, now, "heartbeat"))
                continue
            seen.period_ms = period
            if stamp != seen.beat:
                seen.beat = stamp
                seen.changed_at = now
                if seen.state is not ConnectionState.CONNECTED:
                    seen.state = ConnectionState.CONNECTED
                    events.append(self._event(holder, ConnectionState.CONNECTED, now, "heartbeat"))
        for holder in [h for h in self._seen if h not in beats]:
            del self._seen[holder]
            events.append(self._event(holder, ConnectionState.CLOSED, now, "publisher stopped"))
        events.extend(self.check(now))
        return events

    def check(self, now: float) -> list[ConnectionEvent]:
        """Stale events for holders whose beat has not changed for STALE_FACTOR periods."""
        events: list[ConnectionEvent] = []
        for holder, seen in self._seen.items():
            if (
                seen.state is ConnectionState.CONNECTED
                and now - seen.changed_at > STALE_FACTOR * seen.period_ms
            ):
                seen.state = ConnectionState.STALE
                silent = (now - seen.changed_at) / 1000.0
                events.append(
                    self._event(
                        holder, ConnectionState.STALE, now, f"no heartbeat for {silent:.1f} s"
                    )
                )
        return events

    def _event(
        self, holder: str, state: ConnectionState, now: float, reason: str
    ) -> ConnectionEvent:
        return ConnectionEvent(
            state, publisher_connection_id(holder), self._url, now, reason=reason
        )
