"""Make-before-break rotation of the private stream, in virtual time (scripted Binance).

The replacement socket logs in while the old one still serves; the switch happens when
the replacement is subscribed, the old socket closes only then, and an event both
sockets carried in the overlap is delivered once.
"""

from __future__ import annotations

from typing import Any

import attrs

from rxconnector.models import ConnectionState
from rxconnector.streams.accounts.rotation import RETRY_SECONDS

from .test_account_streams import CONFIG, Harness, report

LIFETIME = 100.0
ROTATING = attrs.evolve(CONFIG, connection_lifetime=LIFETIME)


def _deliver(h: Harness, conn: Any, event: dict[str, Any]) -> None:
    h.exchange.deliver(conn, {"subscriptionId": conn.subscription_id, "event": event})


def _at(h: Harness, seconds: float) -> None:
    h.scheduler.advance_to(seconds)


class TestRotation:
    def test_switches_once_subscribed_and_delivers_overlap_events_once(self) -> None:
        h = Harness(config=ROTATING)
        orders: list[Any] = []
        h.streams.orders().subscribe(orders.append)
        h.run()
        (old,) = h.exchange.connections
        _at(h, LIFETIME + 0.001)  # rotation starts: a second socket logs in
        assert len(h.exchange.connections) == 2
        new = h.exchange.connections[1]
        assert h.states_of(ConnectionState.ROTATING)
        _deliver(h, old, report(1, "NEW", "NEW"))  # before the switch: from the old socket
        assert not old.closed  # made before broken: the old one still serves
        _at(h, LIFETIME + 0.02)  # the replacement's subscribe answer arrives: switch
        assert old.closed and not new.closed
        _deliver(h, new, report(1, "NEW", "NEW"))  # the venue sent it to both sockets
        _deliver(h, new, report(2, "NEW", "NEW"))
        assert [u.order_id for u in orders] == ["1", "2"]
        assert not h.gaps() and not h.errors
        closed = h.states_of(ConnectionState.CLOSED)
        assert closed and "rotated" in closed[-1].reason
        assert not h.states_of(ConnectionState.RECONNECTING)

    def test_a_genuine_repeat_after_the_overlap_passes(self) -> None:
        h = Harness(config=ROTATING)
        executions: list[Any] = []
        h.streams.executions().subscribe(executions.append)
        h.run()
        old = h.exchange.connections[0]
        _at(h, LIFETIME + 0.001)
        fill = report(3, "TRADE", "FILLED", z="1", quote="100", last="1", last_price="100", trade=9)
        _deliver(h, old, fill)
        _at(h, LIFETIME + 0.02)
        new = h.exchange.connections[1]
        _deliver(h, new, fill)  # dropped: the old socket delivered it
        assert len(executions) == 1
        _at(h, LIFETIME + 30)  # the overlap is over: nothing is remembered any more
        _deliver(h, new, fill)
        assert len(executions) == 2

    def test_a_refused_replacement_is_abandoned_and_retried(self) -> None:
        h = Harness(config=ROTATING)
        orders: list[Any] = []
        h.streams.orders().subscribe(orders.append)
        h.run()
        h.exchange.rejections.append((503, -1001, "busy"))
        _at(h, LIFETIME + 0.1)
        old, refused = h.exchange.connections
        assert refused.closed and not old.closed  # the old socket keeps serving
        _deliver(h, old, report(4, "NEW", "NEW"))
        _at(h, LIFETIME + RETRY_SECONDS + 0.1)  # tried again, and this time it works
        assert old.closed and not h.exchange.connections[2].closed
        _deliver(h, h.exchange.connections[2], report(5, "NEW", "NEW"))
        assert [u.order_id for u in orders] == ["4", "5"]

    def test_the_old_socket_dying_first_is_a_gap(self) -> None:
        h = Harness(config=ROTATING)
        h.streams.orders().subscribe(lambda _: None)
        h.run()
        _at(h, LIFETIME + 0.001)
        old = h.exchange.connections[0]
        old.closed = True
        old.observer.on_error(ConnectionError("reset"))  # dies before the switch
        _at(h, LIFETIME + 0.02)  # the replacement takes over and reports the gap
        assert len(h.gaps()) == 1  # no REST callables here: reported, not reconciled
        assert not h.exchange.connections[1].closed
