"""Prometheus metrics of a publisher (the ``prometheus`` extra: ``prometheus-client``).

Built from the health Observables that already exist - the connector's ``errors``,
``connection_state``, ``breaker_state`` and ``clock`` - plus the publisher's own write
hooks and per-stream stats. Off unless asked for (``--metrics-port``); its own registry,
so nothing global is touched. The HTTP endpoint is prometheus-client's server thread,
which never touches the event loop; the gauges it reads are plain numbers.
"""

from __future__ import annotations

import importlib
from typing import Any

from reactivex import abc

from rxconnector.errors import FeedGapError, ParseError
from rxconnector.models import BreakerState, ClockOffset, ConnectionEvent, ConnectionState

__all__ = ["PublisherMetrics"]

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class PublisherMetrics:
    """Counters and gauges of one :class:`~rxconnector.bus.Publisher` in a registry.

    ``registry`` can be rendered with ``prometheus_client.generate_latest`` or served
    with :meth:`serve`.
    """

    def __init__(self, publisher: Any) -> None:
        try:
            prom = importlib.import_module("prometheus_client")
        except ImportError as exc:
            raise ImportError(
                "metrics need prometheus-client: pip install 'rxconnector[prometheus]'"
            ) from exc
        self._prom = prom
        self._publisher = publisher
        self._server: Any = None
        registry = self.registry = prom.CollectorRegistry()
        # First in the registry: a scrape refreshes the gauges before they are read.
        registry.register(_Refresh(self))
        self._add_stream_gauges(prom, registry)
        self.gaps = prom.Counter("rxc_gaps", "gaps reported (trade ranges lost)", registry=registry)
        self.resyncs = prom.Counter("rxc_book_resyncs", "order book resyncs", registry=registry)
        self.parse_errors = prom.Counter(
            "rxc_parse_errors", "unparseable frames", registry=registry
        )
        self.reconnects = prom.Counter(
            "rxc_reconnects", "exchange WebSocket reconnects", registry=registry
        )
        self.breaker = prom.Gauge(
            "rxc_breaker_state", "REST breaker: 0 closed, 1 half-open, 2 open", registry=registry
        )
        self.weight = prom.Gauge("rxc_rest_weight_used", "REST weight used", registry=registry)
        self.clock_offset = prom.Gauge(
            "rxc_clock_offset_ms", "exchange clock offset", registry=registry
        )
        self.redis_up = prom.Gauge("rxc_redis_up", "1 if Redis accepts writes", registry=registry)
        self.write_latency = prom.Histogram(
            "rxc_redis_write_seconds",
            "one pipelined fenced write",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        conn = publisher.connector
        self._subscriptions: list[abc.DisposableBase] = [
            conn.errors.subscribe(self._on_error),
            conn.connection_state.subscribe(self._on_state),
            conn.breaker_state.subscribe(lambda s: self.breaker.set(_BREAKER_VALUE.get(s, 0))),
            conn.clock.subscribe(self._on_clock),
        ]
        publisher.on_write.append(lambda seconds, _n: self.write_latency.observe(seconds))
        publisher.redis_state.append(lambda up: self.redis_up.set(1 if up else 0))

    def _add_stream_gauges(self, prom: Any, registry: Any) -> None:
        """One gauge per figure of :class:`~rxconnector.bus.PublisherStats`, by stream."""
        self.published = prom.Gauge(
            "rxc_published_entries", "entries written per stream", ["stream"], registry=registry
        )
        self.buffered = prom.Gauge(
            "rxc_buffered_entries", "entries waiting for Redis", ["stream"], registry=registry
        )
        self.dropped = prom.Gauge(
            "rxc_dropped_entries",
            "non-trade entries dropped while Redis was unavailable",
            ["stream"],
            registry=registry,
        )
        self.lag = prom.Gauge(
            "rxc_publish_lag_ms", "encode-to-written lag of the last batch", ["stream"],
            registry=registry,
        )  # fmt: skip
        self.holding = prom.Gauge(
            "rxc_lease_held", "1 if this publisher holds the stream's lease", ["stream"],
            registry=registry,
        )  # fmt: skip

    def _on_error(self, error: Exception) -> None:
        if isinstance(error, FeedGapError):
            if "resync" in str(error):
                self.resyncs.inc()
            else:
                self.gaps.inc()
        elif isinstance(error, ParseError):
            self.parse_errors.inc()

    def _on_state(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.RECONNECTING:
            self.reconnects.inc()

    def _on_clock(self, offset: ClockOffset) -> None:
        self.clock_offset.set(offset.offset_ms)

    def refresh(self) -> None:
        """Copy the publisher's per-stream stats into the gauges (done on every scrape)."""
        for stats in self._publisher.stats():
            self.published.labels(stats.key).set(stats.published)
            self.buffered.labels(stats.key).set(stats.buffered)
            self.dropped.labels(stats.key).set(stats.dropped)
            self.lag.labels(stats.key).set(stats.lag_ms)
            self.holding.labels(stats.key).set(1 if stats.holding else 0)
        self.redis_up.set(1 if self._publisher.redis_up else 0)
        # The REST API's public limiter (RestApi.limiter); none (not started, or rate
        # limiting disabled) leaves the gauge at 0.
        conn = self._publisher.connector
        limiter = conn.rest.limiter if conn.started else None
        used = getattr(limiter, "used", None)
        if isinstance(used, int):
            self.weight.set(used)

    def render(self) -> bytes:
        """The exposition text (what a scrape returns)."""
        data: bytes = self._prom.generate_latest(self.registry)
        return data

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` (prometheus-client's server thread)."""
        self._server = self._prom.start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        for sub in self._subscriptions:
            sub.dispose()
        server = self._server
        if isinstance(server, tuple) and server:
            server[0].shutdown()
            server[0].server_close()
        self._server = None


class _Refresh:
    """A collector that refreshes the gauges right before each scrape; it yields nothing."""

    def __init__(self, metrics: PublisherMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return []  # nothing of its own (and registering must not call collect early)

    def collect(self) -> list[Any]:
        self._metrics.refresh()
        return []
