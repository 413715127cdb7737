"""A connector's REST side at run time: the venue REST object, the clock sync, and whether
the exchange can be reached at all.

:class:`RestRuntime` is what :meth:`Connector.start <rxconnector.connector.Connector.start>`
sets up before any feed is subscribed and what ``stop`` closes first: it builds the
venue REST object (limiter, breaker guard, retry, signing, through the connector's
``rest_factory`` seam), asks ``exchangeInfo`` for the current weight limit, runs the
first clock sync, and turns a first sync that failed for network reasons into one
:class:`~rxconnector.errors.ConnectError` that names the host and what was tried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.clock import ClockSync
from rxconnector.config import Config
from rxconnector.errors import (
    CircuitOpenError,
    ConnectError,
    RateLimitError,
    RequestTimeoutError,
    TransportError,
)
from rxconnector.operators import (
    CircuitBreaker,
    breaker,
    breaker_waiting,
    default_retry_if,
    retry_with_backoff,
)
from rxconnector.rate.limiter import documented_limiter
from rxconnector.rest.client import RestClient
from rxconnector.rest.planned import PlannedRest
from rxconnector.seams import RestFactory
from rxconnector.transport.session import SessionOwner
from rxconnector.venues import Venue

__all__ = ["REST_ATTEMPTS", "REST_BACKOFF_BUDGET", "RestRuntime"]

#: Attempts of an idempotent REST call (the first and two retries, short backoff).
REST_ATTEMPTS = 3
#: Most the retry backoff adds over those attempts: 0.5 s + 1 s, each + up to 0.25 s.
REST_BACKOFF_BUDGET = 2.0


class RestRuntime:
    """The REST object, the rate-limit probe and the clock sync of one connector.

    Args:
        config: the connector's Config.
        venue: its venue (URLs, REST factory, dialect).
        breaker: the connector's REST circuit breaker.
        sessions: where HTTP requests get their session.
        report: where a failed clock sync is reported (the connector's ``errors``).
        log: the connector's logger.
    """

    def __init__(
        self,
        config: Config,
        venue: Venue,
        breaker: CircuitBreaker,
        sessions: SessionOwner,
        report: Callable[[Exception], None],
        log: Any,
    ) -> None:
        self._config = config
        self._venue = venue
        self._breaker = breaker
        self._sessions = sessions
        self._report = report
        self._log = log
        #: The venue REST object (or what ``rest_factory`` made of it); None until built.
        self.rest: Any = None
        self._client: RestClient | None = None
        #: The clock sync, once the first one was started.
        self.clock: ClockSync | None = None
        self._clock_subscription: abc.DisposableBase | None = None
        self._rate_limit_probe: abc.DisposableBase | None = None
        self._probe_failure: TransportError | None = None

    @property
    def probing(self) -> bool:
        """True once the ``exchangeInfo`` rate-limit probe was sent."""
        return self._rate_limit_probe is not None

    @property
    def clock_running(self) -> bool:
        """True while the clock sync runs (started by :meth:`first_clock_sync`, ended by
        :meth:`close`)."""
        return self._clock_subscription is not None

    def build(
        self, scheduler: abc.SchedulerBase, factory: RestFactory | None, now: Callable[[], int]
    ) -> Any:
        """Build the REST object (through ``factory`` when given); ``now`` signs requests."""

        def own() -> Any:
            return self._build(scheduler, now)

        self.rest = own() if factory is None else factory(own)
        return self.rest

    def _build(self, scheduler: abc.SchedulerBase, now: Callable[[], int]) -> Any:
        """The connector's own venue REST object over one :class:`RestClient`."""
        cfg = self._config
        limiter = (
            documented_limiter(
                self._venue.weight_per_minute,
                cfg.rate_limit.max_weight_per_minute,
                exchange=cfg.exchange,
                scheduler=scheduler,
            )
            if cfg.rate_limit.enabled
            else None
        )
        guard = breaker(self._breaker) if cfg.breaker.enabled else None
        recovery_guard = breaker_waiting(self._breaker) if cfg.breaker.enabled else None
        import tenacity

        retry = retry_with_backoff(
            wait=tenacity.wait_exponential(multiplier=0.5, max=8) + tenacity.wait_random(0, 0.25),
            stop=tenacity.stop_after_attempt(REST_ATTEMPTS),
            retry_if=_rest_retryable,
            scheduler=scheduler,
        )
        sessions, timeout = self._sessions, cfg.connection.rest_timeout
        client = RestClient(
            lambda: sessions.http(timeout),
            base_url=self._venue.rest_url,
            exchange=cfg.exchange,
            limiter=limiter,
            guard=guard,
            recovery_guard=recovery_guard,
            retry=retry,
            on_timestamp_rejected=self.resync_clock,
            dialect=self._venue.make_dialect(),
            scheduler=scheduler,
            log=self._log.bind(component="rest"),
        )
        self._client = client
        venue = self._venue
        signer = venue.make_signer(cfg) if venue.make_signer is not None else None
        return PlannedRest(client, venue.make_plans(cfg), signer, now)

    def resync_clock(self) -> Observable[Any]:
        """Measure the clock again now (a request was rejected for its timestamp)."""
        if self.clock is None:
            return reactivex.empty()
        return self.clock.sync_now()

    async def learn_rate_limits(self, scheduler: abc.SchedulerBase) -> None:
        """Ask ``exchangeInfo`` for the venue's current weight limit (waiting at most
        ``rest_timeout``): the REST object hands its ``rateLimits`` to the limiter,
        capped by the Config. A failure is logged; the documented limit stays."""
        rest = self.rest
        client = self._client  # None when the rest_factory never built the venue's own
        if client is None or client.limiter is None or not hasattr(rest, "request_weight_limit"):
            return
        if not self._venue.rate_limits_in_exchange_info:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def finish(_: object = None) -> None:
            if not done.done():
                done.set_result(None)

        def failed(error: Exception) -> None:
            if isinstance(error, TransportError):
                # the exchange is unreachable: start() says so once, with the reason
                # (the first clock sync fails too and is what start() raises)
                self._probe_failure = error
                self._log.info("exchangeInfo for rate limits failed", error=repr(error))
            else:
                self._log.warning("exchangeInfo for rate limits failed", error=repr(error))
            finish()

        try:
            self._rate_limit_probe = rest.exchange_info().subscribe(
                finish, failed, finish, scheduler=scheduler
            )
        except Exception as exc:  # never let the probe stop start()
            failed(exc)
        timeout = self._config.connection.rest_timeout
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            self._log.warning("exchangeInfo for rate limits did not answer", timeout=timeout)

    async def first_clock_sync(self, scheduler: abc.SchedulerBase) -> ConnectError | None:
        """Start the clock sync and wait for its first result.

        Returns the :class:`ConnectError` to raise when that first sync failed because
        the exchange cannot be reached at all; None otherwise (another failure is
        reported and retried every ``sync_interval``)."""
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        first_failure: list[Exception] = []
        began = time.monotonic()

        def _first(_: object) -> None:
            if not first.done():
                first.set_result(None)

        def clock_report(error: Exception) -> None:
            # The first sync failed (reported, retried every sync_interval): start()
            # need not wait any longer for it.
            if not first.done():
                first_failure.append(error)
            _first(error)
            self._report(error)

        clock = self.clock = ClockSync(
            lambda: self.rest.server_time(),
            self._config.clock_sync,
            scheduler=scheduler,
            report=clock_report,
        )
        probe = clock.offsets.pipe(ops.take(1)).subscribe(_first, lambda _e: None)
        self._clock_subscription = clock.start()
        # Long enough for a dead host to fail all its attempts (each up to rest_timeout,
        # with the retry backoff between them) and for a live one to answer every
        # sample: otherwise start() would shrug at a silent host.
        cfg = self._config
        timeout = (
            cfg.connection.rest_timeout * (cfg.clock_sync.samples + REST_ATTEMPTS)
            + REST_BACKOFF_BUDGET
        )
        try:
            await asyncio.wait_for(first, timeout)
        except TimeoutError:
            self._log.warning("first clock sync did not finish", timeout=timeout)
        finally:
            probe.dispose()
        unreachable = self._network_failure(first_failure[0] if first_failure else None)
        if unreachable is None:
            return None
        return self._unreachable(unreachable, time.monotonic() - began)

    def _network_failure(self, first_sync: Exception | None) -> TransportError | None:
        """The transport error that made the first clock sync fail, if that is why.

        The rate-limit probe (``exchangeInfo``) runs alongside; its failures count in
        the breaker too, so against a dead host the sync may end with the breaker open
        rather than with the transport error itself.
        """
        if isinstance(first_sync, TransportError):
            return first_sync
        if isinstance(first_sync, CircuitOpenError) and self._probe_failure is not None:
            return self._probe_failure
        return None

    def _unreachable(self, error: TransportError, elapsed: float) -> ConnectError:
        """One error saying which host could not be reached, why, and what was tried."""
        venue, cfg = self._venue, self._config
        host = urlsplit(venue.rest_url).netloc or venue.rest_url
        if isinstance(error, ConnectError) and error.kind:
            why = error.kind
        elif isinstance(error, RequestTimeoutError):
            why = f"no answer within rest_timeout ({cfg.connection.rest_timeout:g} s)"
        else:
            why = "connection failed"
        path = venue.time_path or "the server time"
        # the operating system's / TLS library's own words, e.g. "[SSL:
        # WRONG_VERSION_NUMBER] wrong version number" or "Name or service not known"
        detail = str(getattr(error.__cause__, "os_error", "") or "")
        tried = f"GET {path}"
        if self._rate_limit_probe is not None:
            tried += " and the exchange info"
        message = (
            f"cannot reach {cfg.exchange} at {host}: {why}"
            f"{f' ({detail})' if detail else ''}; tried {tried} on {venue.rest_url} "
            f"(up to {REST_ATTEMPTS} attempts each) for {elapsed:.1f} s; check rest_url, "
            "the network or DNS"
        )
        failure = ConnectError(message)
        failure.kind = why
        failure.__cause__ = error
        return failure

    def close(self) -> None:
        """End calls in flight (as ConnectorStoppedError, before the session closes under
        them, which the breaker would count as failures), the probe and the clock sync."""
        if self._client is not None:
            self._client.close()
        if self._rate_limit_probe is not None:
            self._rate_limit_probe.dispose()
        if self._clock_subscription is not None:
            self._clock_subscription.dispose()
            self._clock_subscription = None
        if self.clock is not None:
            self.clock.close()


def _rest_retryable(error: Exception) -> bool:
    """Which REST failures an idempotent call retries (3 attempts, short backoff).

    An open circuit and a rate limit are answers, not accidents: retrying would either
    wait out the breaker's whole open window (no longer "failing fast") or queue behind
    a ban, so they go straight to the caller, who sees ``retry_after``.
    """
    if isinstance(error, CircuitOpenError | RateLimitError):
        return False
    return default_retry_if(error)
