"""The REST pipeline of one venue, as cold Observables.

Every call goes through the same stages, built lazily on subscription::

    retry( guard( resync_once( acquire(weight) → sign → send → interpret ) ) )

* ``acquire`` waits for request weight (:class:`~rxconnector.rate.limiter.RequestWeightLimiter`);
* ``sign`` runs *after* the wait, so the timestamp is taken at send time from the
  synced clock, never minutes early while queued;
* ``send`` is one HTTP exchange through the transport (disposal cancels it);
* ``interpret`` turns statuses and error bodies into the error tree: 429/418 become
  :class:`~rxconnector.errors.RateLimitError` and put the limiter on hold; 5xx,
  timeouts and "execution status unknown" codes on a non-idempotent call become
  :class:`~rxconnector.errors.OrderStatusUnknownError` and are never retried;
* ``resync_once``: a rejected timestamp (Binance -1021) calls the clock re-sync hook and
  sends the request once more with a fresh timestamp; a second rejection is final;
* ``guard`` (the circuit breaker) sees the outcome of every attempt;
* ``retry`` (idempotent calls only) sits **outside** the guard, so each new attempt
  asks the breaker again: once the breaker opens, a retry loop fails fast with
  ``CircuitOpenError`` instead of hammering a venue that is down or has banned us.
  Inside the guard, a retry loop would keep sending while the breaker is open.

Priorities: a call made with ``priority=Priority.RECOVERY`` (a feed healing itself:
order-book snapshots, trade backfills) acquires its weight behind every user call and
never from the share kept for them, and passes the ``recovery_guard`` instead of the
``guard``: a guard that *waits* while the breaker is open or half-open, or while a ban
holds, instead of failing (see :func:`rxconnector.operators.breaker_waiting`).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar

import orjson
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.errors import (
    ConnectorStoppedError,
    ExchangeError,
    OrderStatusUnknownError,
    ParseError,
    RateLimitError,
    TransportError,
)
from rxconnector.exchanges.dialect import ErrorDialect
from rxconnector.exchanges.query import encode_query
from rxconnector.exchanges.rest_spec import RestReply, Signer
from rxconnector.log import get_logger
from rxconnector.rate.limiter import Priority, RequestWeightLimiter
from rxconnector.transport.errors import may_have_reached_server
from rxconnector.transport.http import HttpResponse, Transport

__all__ = [
    "Operator",
    "RestClient",
]

_T = TypeVar("_T")

#: A pipeable operator (the breaker guard, the retry policy).
Operator = Callable[[Observable[Any]], Observable[Any]]

_EXCERPT = 200
_module_log = get_logger(component="rest")


class RestClient:
    """Cold, cancellable REST calls for one venue, through limiter, breaker and retry.

    ``transport_factory`` is called for every attempt, so the connector can create its
    aiohttp session lazily on the running loop and replace it after a restart.
    ``on_timestamp_rejected`` returns an Observable that re-syncs the clock (only its
    completion, or first item, is awaited). ``dialect`` tells error bodies apart: the
    venue's :class:`~rxconnector.exchanges.dialect.ErrorDialect`, always given (the
    engine knows no venue of its own).
    """

    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        *,
        base_url: str,
        exchange: str,
        limiter: RequestWeightLimiter | None = None,
        guard: Operator | None = None,
        retry: Operator | None = None,
        on_timestamp_rejected: Callable[[], Observable[Any]] | None = None,
        dialect: ErrorDialect,
        scheduler: abc.SchedulerBase | None = None,
        log: Any = None,
        recovery_guard: Operator | None = None,
    ) -> None:
        self._transport_factory = transport_factory
        self._base_url = base_url.rstrip("/")
        self._exchange = exchange
        self._limiter = limiter
        self._guard = guard
        self._recovery_guard = recovery_guard if recovery_guard is not None else guard
        self._retry = retry
        self._on_timestamp_rejected = on_timestamp_rejected
        self._dialect = dialect
        self._scheduler = scheduler
        self._log = log if log is not None else get_logger(component="rest", exchange=exchange)
        self._closed = False
        self._closing: Subject[None] = Subject()

    @property
    def exchange(self) -> str:
        return self._exchange

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def limiter(self) -> RequestWeightLimiter | None:
        return self._limiter

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        """The scheduler this client's timing runs on (``None``: the running loop's)."""
        return self._scheduler

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int,
        signer: Signer | None = None,
        idempotent: bool,
        client_order_id: str | None = None,
        priority: Priority = Priority.USER,
    ) -> Observable[Any]:
        """The decoded JSON body of one call: emits once, then completes. Cold: each
        subscription sends (at most) one request per attempt; disposing cancels it::

            subscribe ──(wait for weight)──(send)────(body|)     success
            subscribe ──(wait for weight)──(send)────#           error from the tree
            subscribe ─#                                          limiter hold / breaker open

        ``idempotent=False`` (placing an order) means: never retried, and an unknown
        outcome is reported as ``OrderStatusUnknownError(client_order_id)``.
        """
        return self.request(
            method,
            path,
            params,
            weight=weight,
            signer=signer,
            idempotent=idempotent,
            client_order_id=client_order_id,
            priority=priority,
        ).pipe(ops.map(_reply_data))

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int,
        signer: Signer | None = None,
        idempotent: bool,
        client_order_id: str | None = None,
        priority: Priority = Priority.USER,
    ) -> Observable[RestReply]:
        """Like :meth:`call` but emits the whole :class:`RestReply` (receive time,
        headers), which venue modules need to build models."""
        frozen = dict(params or {})
        what = f"{method} {path}"

        def build(_scheduler: abc.SchedulerBase | None) -> Observable[RestReply]:
            # Built per subscription: ``sent`` belongs to this call only.
            if self._closed:
                return reactivex.throw(ConnectorStoppedError(what))
            sending = _Sending(
                lambda: self._send(
                    method, path, frozen, weight, signer, idempotent, client_order_id
                )
            )

            def attempt() -> Observable[RestReply]:
                request = _from_coroutine(sending.send)
                if self._limiter is None:
                    return request
                return self._limiter.acquire(weight, priority).pipe(ops.flat_map(lambda _: request))

            pipeline: Observable[Any] = self._resync_once(attempt, method, path)
            guard = self._guard if priority is Priority.USER else self._recovery_guard
            if guard is not None:
                pipeline = guard(pipeline)
            if idempotent and self._retry is not None:
                pipeline = self._retry(pipeline)

            def stopped(_: Any) -> Observable[RestReply]:
                if not idempotent and sending.sent:
                    return reactivex.throw(
                        OrderStatusUnknownError(
                            f"{what}: connector stopped while the request was in flight",
                            client_order_id=client_order_id or "",
                            exchange=self._exchange,
                        )
                    )
                return reactivex.throw(ConnectorStoppedError(what))

            # Whichever comes first: the answer, or close() (which disposes the call).
            stop: Observable[RestReply] = self._closing.pipe(ops.take(1), ops.flat_map(stopped))
            return reactivex.amb(pipeline, stop)

        return reactivex.defer(build)

    def close(self) -> None:
        """The connector is stopping: end every call now, before its session closes.

        Calls in flight (or waiting for weight, or for a retry) end with
        :class:`~rxconnector.errors.ConnectorStoppedError`, later calls fail with it at
        once. Their pipelines are disposed, so the breaker records nothing: closing the
        session under them used to make each fail as a transport error, open the
        breaker and hand every caller a misleading ``CircuitOpenError``. An order
        already on its way is different: it may have been placed, so it ends with
        :class:`~rxconnector.errors.OrderStatusUnknownError` saying the connector stopped.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.on_next(None)
        self._closing.on_completed()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    # -- stages -----------------------------------------------------------------------

    def _resync_once(
        self, attempt: Callable[[], Observable[RestReply]], method: str, path: str
    ) -> Observable[RestReply]:
        hook = self._on_timestamp_rejected
        codes = self._dialect.timestamp_codes
        if hook is None or not codes:
            return reactivex.defer(lambda _: attempt())

        def handler(exc: Exception, _source: Observable[RestReply]) -> Observable[RestReply]:
            if not (isinstance(exc, ExchangeError) and exc.code in codes):
                return reactivex.throw(exc)
            self._log.warning(
                "rest.timestamp_rejected", method=method, path=path, code=exc.code, action="resync"
            )

            def resync_failed(resync_exc: Exception, _src: Observable[Any]) -> Observable[Any]:
                self._log.warning(
                    "rest.resync_failed", method=method, path=path, error=repr(resync_exc)
                )
                return reactivex.throw(exc)

            resync: Observable[Any] = reactivex.defer(lambda _: hook()).pipe(
                ops.take(1), ops.ignore_elements(), ops.catch(resync_failed)
            )
            return resync.pipe(ops.concat(reactivex.defer(lambda _: attempt())))

        return reactivex.defer(lambda _: attempt()).pipe(ops.catch(handler))

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        weight: int,
        signer: Signer | None,
        idempotent: bool,
        client_order_id: str | None,
    ) -> RestReply:
        if signer is not None:
            signed = signer(params)  # timestamp taken now, after any limiter wait
            query, body, headers = signed.query, signed.body, signed.headers
        else:
            query, body, headers = encode_query(params), None, {}
        url = self._base_url + path
        transport = self._transport_factory()
        try:
            response = await transport.request(
                method, url, params=query or None, body=body, headers=headers
            )
        except TransportError as exc:
            if not idempotent and may_have_reached_server(exc):
                self._log.error(
                    "rest.status_unknown",
                    method=method,
                    path=path,
                    client_order_id=client_order_id,
                    error=type(exc).__name__,
                )
                raise OrderStatusUnknownError(
                    f"{method} {path}: {exc}",
                    client_order_id=client_order_id or "",
                    exchange=self._exchange,
                ) from exc
            # info, not warning: the caller gets the error (after the retries of an
            # idempotent call); a warning per attempt repeated one failure three times
            self._log.info(
                "rest.transport_error", method=method, path=path, error=type(exc).__name__
            )
            raise
        if self._limiter is not None:
            self._limiter.observe_headers(response.headers)
        self._log.debug(
            "rest.response",
            method=method,
            path=path,
            status=response.status,
            weight=weight,
            used_weight=(
                response.header(self._dialect.used_weight_header)
                if self._dialect.used_weight_header
                else None
            ),
            elapsed_ms=round(response.elapsed * 1000.0, 1),
        )
        return self._interpret(response, method, path, idempotent, client_order_id)

    def _interpret(
        self,
        response: HttpResponse,
        method: str,
        path: str,
        idempotent: bool,
        client_order_id: str | None,
    ) -> RestReply:
        status = response.status
        try:
            data: Any = orjson.loads(response.body) if response.body else None
            decoded = bool(response.body)
        except orjson.JSONDecodeError:
            data, decoded = None, False
        error = self._dialect.extract(status, data) if decoded else None
        code, message = error if error is not None else (None, _excerpt(response))
        if status in (418, 429):
            raise self._rate_limited(response, code, message, method, path)
        if error is None and 200 <= status < 300:
            if not decoded:
                raise ParseError(f"{method} {path}: the answer is not JSON", response.body)
            return RestReply(
                data=data,
                status=status,
                headers=response.headers,
                received_at=response.received_at,
                elapsed=response.elapsed,
            )
        if not idempotent and (status >= 500 or code in self._dialect.status_unknown_codes):
            self._log.error(
                "rest.status_unknown",
                method=method,
                path=path,
                status=status,
                code=code,
                client_order_id=client_order_id,
            )
            detail = f"code {code}: {message}" if code is not None else message
            raise OrderStatusUnknownError(
                f"{method} {path} answered HTTP {status} ({detail})",
                client_order_id=client_order_id or "",
                exchange=self._exchange,
                status=status,
            )
        retryable = status >= 500 or code in self._dialect.retryable_codes
        raise ExchangeError(
            message, exchange=self._exchange, status=status, code=code, retryable=retryable
        )

    def _rate_limited(
        self, response: HttpResponse, code: int | None, message: str, method: str, path: str
    ) -> RateLimitError:
        banned = response.status == 418
        retry_after = _parse_retry_after(response.header("retry-after"))
        hold = True
        dialect = self._dialect
        if retry_after is None:
            if banned:
                retry_after = self._ban_from_message(message) or dialect.ban_seconds
            elif code in dialect.order_rate_codes:
                # The account's order count, not the IP's weight: other calls may go on.
                retry_after, hold = dialect.order_rate_retry_seconds, False
            else:
                retry_after = dialect.retry_after_seconds
        if hold and self._limiter is not None:
            self._limiter.hold_for(retry_after, banned=banned)
        self._log.warning(
            "rest.rate_limited",
            method=method,
            path=path,
            status=response.status,
            code=code,
            retry_after=retry_after,
            banned=banned,
        )
        return RateLimitError(
            message,
            retry_after=retry_after,
            exchange=self._exchange,
            status=response.status,
            code=code,
            banned=banned,
        )

    def _ban_from_message(self, message: str) -> float | None:
        pattern = self._dialect.banned_until
        match = pattern.search(message) if pattern is not None else None
        if match is None:
            return None
        until = int(match.group(1))
        if until > 10**14:  # microseconds
            until //= 1000
        remaining = (until - now_ms(resolve_scheduler(self._scheduler))) / 1000.0
        return remaining if remaining > 0 else None


def _reply_data(reply: RestReply) -> Any:
    return reply.data


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


def _excerpt(response: HttpResponse) -> str:
    text = response.body[:_EXCERPT].decode("utf-8", "replace").strip()
    return text or f"HTTP {response.status} with an empty body"


class _Sending:
    """One subscription of a REST call: whether its request has left (``sent``), which
    decides how a stop mid-call is reported (an order that may have been placed)."""

    def __init__(self, request: Callable[[], Coroutine[Any, Any, RestReply]]) -> None:
        self._request = request
        self.sent = False

    async def send(self) -> RestReply:
        self.sent = True
        return await self._request()


class _TaskRun(Generic[_T]):
    """A task owned by one subscription: disposal cancels it; its done-callback delivers
    the result or the error, so no exception is ever left unretrieved."""

    def __init__(self, task: asyncio.Task[_T], observer: abc.ObserverBase[_T]) -> None:
        self._task = task
        self._observer = observer
        self._disposed = False
        task.add_done_callback(self._done)

    def _done(self, finished: asyncio.Task[_T]) -> None:
        if finished.cancelled():
            return
        exc = finished.exception()
        if self._disposed:
            # The subscriber left; the outcome (retrieved above) is moot, but say so.
            if exc is not None:
                _module_log.debug("rest.error_after_dispose", error=repr(exc))
            return
        try:
            if exc is not None:
                self._observer.on_error(exc if isinstance(exc, Exception) else RuntimeError(exc))
                return
            self._observer.on_next(finished.result())
            self._observer.on_completed()
        except Exception:
            # A subscriber without on_error raised: report it, never lose it.
            _module_log.exception("rest.subscriber_raised")

    def dispose(self) -> None:
        self._disposed = True
        self._task.cancel()


def _from_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> Observable[_T]:
    """A cold Observable running ``factory()`` as a task per subscription.

    The task is owned by the subscription: disposal cancels it; its done-callback
    delivers the result or the error, so no exception is ever left unretrieved.
    """

    def subscribe(
        observer: abc.ObserverBase[_T], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _TaskRun(asyncio.get_running_loop().create_task(factory()), observer)
        return Disposable(run.dispose)

    return reactivex.create(subscribe)
