"""Healing after a stall (``streams/hub_stalls.py``), in virtual time (1 tick = 1 s).

A connection whose data stops for ``stall_heal_after`` seconds and then resumes (no
reconnect: the stale watchdog's 1000 s are far away) tells the topics the hub's
``heals_after_stall`` names with a :class:`StreamRestart` marker, all at once, at the
resumption - not when each topic happens to deliver again.
"""

from __future__ import annotations

from typing import Any

from rxconnector.config import ConnectionConfig
from rxconnector.models import ConnectionState
from rxconnector.streams.messages import StreamRestart
from tests.streams.test_hub_virtual import Rig

HEAL = ConnectionConfig(
    reconnect_delay=1.0, reconnect_jitter=0.0, stale_after=1000.0, stall_heal_after=3.0
)
TRADES = {"busy@trade", "quiet@trade"}


def markers(got: list[Any]) -> list[StreamRestart]:
    return [m for m in got if isinstance(m, StreamRestart)]


def flow(rig: Rig, topic: str, start: int, end: int) -> None:
    """One message of ``topic`` per second from ``start`` to ``end`` (inclusive)."""
    socket = rig.transport.sockets[-1]
    for t in range(start, end + 1):
        rig.run(float(t))
        socket.data(topic, {"t": t})


class TestStallHeal:
    def test_every_marked_topic_is_told_when_the_data_resumes(self) -> None:
        rig = Rig(config=HEAL, heals_after_stall=TRADES.__contains__)
        busy, _e, _s = rig.collect("busy@trade")
        quiet, _e2, _s2 = rig.collect("quiet@trade")
        book, _e3, _s3 = rig.collect("busy@depth@100ms")
        rig.run(1.0)
        rig.transport.sockets[0].data("quiet@trade", {"t": 1})
        flow(rig, "busy@trade", 2, 5)  # then nothing from 5 s to 10 s
        rig.run(7.9)
        assert not rig.states_of(ConnectionState.STALE)  # 2.9 s of silence: normal
        rig.run(9.0)
        (stale,) = rig.states_of(ConnectionState.STALE)
        assert 8.0 <= stale.time / 1000.0 <= 8.75  # 3 s, seen by a check 0.75 s apart
        assert "no data for" in stale.reason and "stays up" in stale.reason
        assert markers(quiet) == []  # pending until the data comes back
        rig.run(10.0)
        rig.transport.sockets[0].data("busy@trade", {"t": 10})
        # the quiet feed hears it at once, from the busy topic's first frame
        (marker,) = markers(quiet)
        assert marker.topic == "quiet@trade" and marker.reason.startswith("stalled: no data")
        assert isinstance(busy[-2], StreamRestart) and busy[-1][1] == {"t": 10}
        assert markers(book) == []  # an order book is not told (own sequence check)
        (resumed,) = [e for e in rig.states_of(ConnectionState.CONNECTED) if e.reason]
        assert resumed.time / 1000.0 == 10.0
        assert "data resumed after" in resumed.reason and "2 feeds" in resumed.reason
        assert len(rig.transport.sockets) == 1 and not rig.states_of(ConnectionState.RECONNECTING)
        flow(rig, "busy@trade", 11, 13)
        assert len(markers(busy)) == 1 and len(markers(quiet)) == 1  # once per stall

    def test_resumption_seen_by_the_check_when_no_marked_topic_delivers(self) -> None:
        rig = Rig(config=HEAL, heals_after_stall=TRADES.__contains__)
        quiet, _e, _s = rig.collect("quiet@trade")
        rig.collect("busy@ticker")
        rig.run(1.0)
        flow(rig, "busy@ticker", 2, 5)
        rig.run(10.0)
        rig.transport.sockets[0].data("busy@ticker", {"t": 10})
        assert markers(quiet) == []
        rig.run(10.75)  # the next check (a quarter of the threshold) sees it
        (marker,) = markers(quiet)
        assert marker.reason.startswith("stalled")

    def test_a_second_stall_is_told_again(self) -> None:
        rig = Rig(config=HEAL, heals_after_stall=TRADES.__contains__)
        quiet, _e, _s = rig.collect("quiet@trade")
        rig.collect("busy@trade")
        rig.run(1.0)
        flow(rig, "busy@trade", 2, 5)
        flow(rig, "busy@trade", 10, 12)
        flow(rig, "busy@trade", 20, 21)
        assert len(markers(quiet)) == 2
        assert len(rig.states_of(ConnectionState.STALE)) == 2

    def test_a_stall_that_becomes_a_reconnect_marks_once(self) -> None:
        config = ConnectionConfig(
            reconnect_delay=1.0, reconnect_jitter=0.0, stale_after=20.0, stall_heal_after=3.0
        )
        rig = Rig(config=config, heals_after_stall=TRADES.__contains__)
        quiet, _e, _s = rig.collect("quiet@trade")
        rig.collect("busy@trade")
        rig.run(1.0)
        flow(rig, "busy@trade", 2, 5)
        rig.run(40.0)  # the watchdog gives the socket up (20 s), a new one subscribes
        assert len(rig.transport.sockets) == 2
        rig.transport.sockets[1].data("quiet@trade", {"t": 40})
        (marker,) = markers(quiet)
        assert marker.reason.startswith("reconnected after")  # the reconnect's, once

    def test_off_without_the_threshold_or_the_predicate(self) -> None:
        for rig in (
            Rig(config=HEAL),
            Rig(
                config=ConnectionConfig(
                    reconnect_delay=1.0,
                    reconnect_jitter=0.0,
                    stale_after=1000.0,
                    stall_heal_after=None,
                ),
                heals_after_stall=TRADES.__contains__,
            ),
        ):
            quiet, _e, _s = rig.collect("quiet@trade")
            rig.collect("busy@trade")
            rig.run(1.0)
            flow(rig, "busy@trade", 2, 5)
            flow(rig, "busy@trade", 12, 13)
            assert markers(quiet) == [] and not rig.states_of(ConnectionState.STALE)

    def test_a_connection_with_nothing_to_heal_reports_nothing(self) -> None:
        rig = Rig(config=HEAL, heals_after_stall=TRADES.__contains__)
        rig.collect("busy@ticker")
        rig.run(1.0)
        flow(rig, "busy@ticker", 2, 5)
        flow(rig, "busy@ticker", 12, 13)
        assert not rig.states_of(ConnectionState.STALE)

    def test_a_closed_connection_is_no_longer_watched(self) -> None:
        rig = Rig(config=HEAL, heals_after_stall=TRADES.__contains__)
        _got, _e, sub = rig.collect("quiet@trade")
        rig.run(1.0)
        stalls = rig.hub._delivery.stalls
        assert stalls is not None and len(stalls.watches) == 1
        sub.dispose()
        rig.run(20.0)  # unsubscribed, then the idle socket closes (10 s)
        assert rig.transport.sockets[0].disposed
        assert stalls.watches == {}
