"""Liveness of connections that carry only quiet streams, in virtual time (1 tick = 1 s).

A USD-M ``@forceOrder`` (liquidation) stream can be silent for many minutes; the server
pings every 3 minutes. The stale watchdog must not tear such a healthy connection down
every minute, yet it must still notice a connection that went dead: it counts every
frame received (pings included) as liveness of the link, and judges data silence only
on connections that carry at least one stream expected to be busy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rxconnector._scheduling import now_ms
from rxconnector.config import ConnectionConfig
from rxconnector.exchanges.binance.ws_protocol import BinanceFuturesWsProtocol
from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem

LIQUIDATIONS = "btcusdt@forceOrder"
TRADES = "btcusdt@aggTrade"


class Socket:
    """A fake socket that answers subscriptions at once and can receive server pings
    (they reach the transport, never the hub, exactly like protocol ping frames)."""

    def __init__(self, observer: abc.ObserverBase[WsItem], scheduler: TestScheduler) -> None:
        self.observer = observer
        self.scheduler = scheduler
        self.heard = 0
        self.disposed = False

    # ControlSender
    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        text = build()
        if text is None or self.disposed:
            return
        request = orjson.loads(text)
        if "method" in request:  # Binance
            self.push({"result": None, "id": request["id"]})
        elif request.get("op") == "subscribe":  # Bybit
            self.push({"success": True, "op": "subscribe", "req_id": request.get("req_id")})
        elif request.get("op") == "ping":
            self.push({"success": True, "ret_msg": "pong", "op": "ping"})

    def push(self, message: Any) -> None:
        self.heard += 1
        self.observer.on_next((now_ms(self.scheduler), orjson.dumps(message)))

    def ping(self) -> None:
        """A protocol-level ping from the server: heard by the link, not data."""
        self.heard += 1


class Rig:
    def __init__(self, protocol: Any, **config: Any) -> None:
        self.scheduler = TestScheduler()
        self.sockets: list[Socket] = []
        self.states: list[ConnectionEvent] = []
        self.hub = SubscriptionHub(
            protocol,
            "wss://venue.test",
            lambda: None,  # type: ignore[arg-type,return-value]
            ConnectionConfig(reconnect_delay=1.0, reconnect_jitter=0.0, **config),
            scheduler=self.scheduler,
            report_error=lambda _e: None,
            report_state=self.states.append,
            connect=self.connect,
        )

    def connect(self, spec: SocketSpec, _session: Any, _tasks: OwnedTasks) -> Observable[WsItem]:
        def subscribe(
            observer: abc.ObserverBase[WsItem], _s: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            socket = Socket(observer, self.scheduler)
            self.sockets.append(socket)
            event = ConnectionEvent(
                ConnectionState.CONNECTED, spec.connection_id, spec.url, now_ms(self.scheduler)
            )
            observer.on_next(Connected(event, socket, heard=lambda: socket.heard))
            pings = None
            ping, interval = spec.ping_message, spec.ping_interval
            if ping is not None and interval:  # what WsLink does: application pings

                def send_ping(_s: Any = None, _state: Any = None) -> None:
                    socket.send(lambda: ping)

                pings = self.scheduler.schedule_periodic(interval, send_ping)

            def dispose() -> None:
                socket.disposed = True
                if pings is not None:
                    pings.dispose()

            return Disposable(dispose)

        return Observable(subscribe)

    def every(self, period: float, until: float, action: Callable[[], None]) -> None:
        t = period
        while t <= until:
            self.scheduler.schedule_absolute(t, lambda *_: action())
            t += period

    def stale_times(self) -> list[float]:
        return [e.time / 1000.0 for e in self.states if e.state is ConnectionState.STALE]


class TestQuietUsdmStreams:
    def test_a_quiet_liquidation_stream_answering_pings_stays_up_for_5_minutes(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol())
        rig.hub.feed(LIQUIDATIONS).subscribe(lambda _m: None)
        rig.scheduler.advance_to(1.0)
        (socket,) = rig.sockets
        rig.every(180.0, 300.0, socket.ping)  # the server's 3-minute pings; no data at all
        rig.scheduler.advance_to(300.0)
        assert rig.stale_times() == []
        assert len(rig.sockets) == 1 and not socket.disposed

    def test_a_quiet_connection_that_hears_nothing_at_all_is_still_called_dead(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol())
        rig.hub.feed(LIQUIDATIONS).subscribe(lambda _m: None)
        rig.scheduler.advance_to(600.0)  # no pings, no data: the link is gone
        stale = rig.stale_times()
        assert stale, "a dead quiet connection must be noticed"
        # the USD-M link threshold: two missed 3-minute pings and a margin (400 s)
        assert 400.0 <= stale[0] <= 500.0
        assert len(rig.sockets) >= 2  # and reconnected

    def test_a_busy_stream_on_the_same_connection_is_still_judged_on_its_data(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol())
        rig.hub.feed(LIQUIDATIONS).subscribe(lambda _m: None)
        rig.hub.feed(TRADES).subscribe(lambda _m: None)
        rig.scheduler.advance_to(1.0)
        (socket,) = rig.sockets
        rig.every(5.0, 200.0, socket.ping)  # the link is alive, but trades stopped
        rig.scheduler.advance_to(200.0)
        stale = rig.stale_times()
        assert stale and 60.0 <= stale[0] <= 80.0  # the data threshold (60 s), as before

    def test_the_link_threshold_is_configurable(self) -> None:
        rig = Rig(BinanceFuturesWsProtocol(), link_stale_after=30.0)
        rig.hub.feed(LIQUIDATIONS).subscribe(lambda _m: None)
        rig.scheduler.advance_to(100.0)
        stale = rig.stale_times()
        assert stale and 30.0 <= stale[0] <= 40.0


class TestQuietBybitStreams:
    def test_a_liquidation_topic_kept_alive_by_our_pings_is_not_stale(self) -> None:
        # Bybit: we ping every 20 s and the server answers with a pong frame
        rig = Rig(BybitWsProtocol("linear"))
        rig.hub.feed("allLiquidation.BTCUSDT").subscribe(lambda _m: None)
        rig.scheduler.advance_to(300.0)
        assert rig.stale_times() == []
        assert len(rig.sockets) == 1
