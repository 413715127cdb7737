"""The engine's gates for limits a per-minute weight limiter cannot express.

Driven by a venue's declared rules (:mod:`rxconnector.exchanges.dialect`), not by its
name:

* :class:`BanGate` (an :class:`~rxconnector.exchanges.dialect.IpBanRule`): the status
  a venue bans an IP with becomes ``RateLimitError(banned=True)``, puts the weight
  limiter on hold, and every later call fails at once, without sending, until the
  ban is over;
* :class:`EndpointPacer` (an :class:`~rxconnector.exchanges.dialect.EndpointLimitRule`
  and a :class:`~rxconnector.exchanges.dialect.RequestWindow`): per-endpoint budgets
  read from answer headers hold the next call to an exhausted endpoint until its reset
  time, and every request is paced by the IP's rolling request window.

Both read ``now_ms``, the clock-synced exchange time, because the venue's reset and
ban times are in exchange time. :class:`RequestGates` puts whichever of them a venue
declared around each request, so the REST engine applies a venue's limits from its
data alone (an empty set of rules: every request passes unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector._scheduling import now_ms as scheduler_now_ms
from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import ExchangeError, RateLimitError
from rxconnector.exchanges.dialect import EndpointLimitRule, IpBanRule, RestLimits
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rate.pacing import RollingWindow

__all__ = ["BanGate", "EndpointPacer", "RequestGates"]


class BanGate:
    """Refuses every call while the venue's IP ban holds; learns of a ban from errors."""

    def __init__(
        self,
        rule: IpBanRule,
        now_ms: Callable[[], int | float],
        limiter: RequestWeightLimiter | None,
        *,
        exchange: str,
        log: Any,
    ) -> None:
        self._rule = rule
        self._now_ms = now_ms
        self._limiter = limiter
        self._exchange = exchange
        self._log = log
        self._banned_until_ms = 0.0

    def refusal(self) -> RateLimitError | None:
        """The error a call gets now instead of being sent, or ``None``."""
        remaining = (self._banned_until_ms - float(self._now_ms())) / 1000.0
        if remaining <= 0:
            return None
        rule = self._rule
        return RateLimitError(
            f"IP banned by {rule.venue_title} (HTTP {rule.status}): nothing may be sent "
            f"for another {remaining:.3f}s",
            retry_after=remaining,
            exchange=self._exchange,
            status=rule.status,
            banned=True,
        )

    def on_error(self, exc: Exception, _source: Observable[Any]) -> Observable[Any]:
        """A ``catch`` handler: the ban status becomes a banned RateLimitError (and
        starts the ban); anything else passes unchanged."""
        if (
            isinstance(exc, ExchangeError)
            and not isinstance(exc, RateLimitError)
            and exc.status == self._rule.status
        ):
            return reactivex.throw(self._banned(exc))
        return reactivex.throw(exc)

    def _banned(self, cause: ExchangeError) -> RateLimitError:
        seconds, status = self._rule.seconds, self._rule.status
        until = float(self._now_ms()) + seconds * 1000.0
        self._banned_until_ms = max(self._banned_until_ms, until)
        if self._limiter is not None:
            self._limiter.hold_for(seconds, banned=True)
        self._log.error("rest.ip_banned", status=status, retry_after=seconds, reason=cause.message)
        error = RateLimitError(
            f"HTTP {status} (IP rate limit or access denied): {cause.message}; "
            f"nothing is sent for {seconds:.0f}s",
            retry_after=seconds,
            exchange=self._exchange,
            status=status,
            code=cause.code,
            banned=True,
        )
        error.__cause__ = cause
        return error


class EndpointPacer:
    """When each request may go: after its endpoint's reset (if its budget is spent)
    and in a free slot of the IP's rolling request window."""

    def __init__(
        self,
        rule: EndpointLimitRule,
        window: RollingWindow,
        now_ms: Callable[[], int | float],
        *,
        exchange: str,
        log: Any,
    ) -> None:
        self._rule = rule
        self._window = window
        self._now_ms = now_ms
        self._exchange = exchange
        self._log = log
        #: Endpoint path → exchange ms before which it has no requests left.
        self._reset: dict[str, int] = {}

    @property
    def window(self) -> RollingWindow:
        return self._window

    def wait(self, path: str, scheduler: abc.SchedulerBase) -> float:
        """Seconds to wait before sending: the endpoint's reset (if it has no requests
        left), then a free slot in the IP window, which is booked now."""
        endpoint_wait = 0.0
        reset = self._reset.get(path)
        if reset is not None:
            left = (reset - float(self._now_ms())) / 1000.0
            endpoint_wait = min(left, self._rule.max_wait_seconds)
            if endpoint_wait <= 0:
                del self._reset[path]
                endpoint_wait = 0.0
        send_at = scheduler_now_ms(scheduler) / 1000.0 + endpoint_wait
        return endpoint_wait + self._window.reserve(send_at)

    def observe(self, path: str, reply: RestReply) -> None:
        """Read the answer's budget headers; raise ``RateLimitError`` when the envelope
        says the endpoint's budget was broken (and hold the endpoint until its reset)."""
        rule = self._rule
        left = _int_header(reply.headers, rule.status_header)
        reset = _int_header(reply.headers, rule.reset_header)
        if left == 0 and reset is not None and reset > self._now_ms():
            self._reset[path] = reset
        data = reply.data
        if isinstance(data, dict) and data.get(rule.code_key) == rule.code:
            raise self._limited(path, reply, data)

    def _limited(self, path: str, reply: RestReply, data: Mapping[str, Any]) -> RateLimitError:
        rule = self._rule
        now = float(self._now_ms())
        reset = _int_header(reply.headers, rule.reset_header)
        if reset is not None and reset > now:
            retry_after = (reset - now) / 1000.0
            self._reset[path] = reset
        else:
            retry_after = rule.retry_seconds
            self._reset[path] = int(now + retry_after * 1000.0)
        self._log.warning(
            "rest.rate_limited",
            path=path,
            code=rule.code,
            retry_after=retry_after,
            limit=reply.headers.get(rule.limit_header),
        )
        message = data.get(rule.message_key)
        return RateLimitError(
            f"{path}: {message if isinstance(message, str) else 'too many visits'}",
            retry_after=retry_after,
            exchange=self._exchange,
            status=reply.status,
            code=rule.code,
        )


class RequestGates:
    """A venue's declared REST limits (:class:`~rxconnector.exchanges.dialect.RestLimits`),
    applied around every request it sends.

    ``limits.ip_ban`` becomes a :class:`BanGate`; ``limits.endpoint_limits`` with
    ``limits.ip_window`` an :class:`EndpointPacer`; a venue without them passes every
    request unchanged. ``scheduler`` times the pacing waits (default: the one given at
    subscription, else the running loop's)::

        around(path, request), subscribed:
          during a ban             -#                          refused, nothing sent
          budget spent / window    --(wait)--request--reply|   paced on the scheduler
          reply: "budget broken"   --request--#                RateLimitError until reset
          the venue's ban status   --request--#                banned; the ban starts
    """

    def __init__(
        self,
        limits: RestLimits,
        now_ms: Callable[[], int | float],
        limiter: RequestWeightLimiter | None,
        *,
        exchange: str,
        log: Any,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self._scheduler = scheduler
        ban, endpoints, window = limits.ip_ban, limits.endpoint_limits, limits.ip_window
        self._ban = (
            BanGate(ban, now_ms, limiter, exchange=exchange, log=log) if ban is not None else None
        )
        self._pacer = (
            EndpointPacer(
                endpoints,
                RollingWindow(window.limit, window.seconds),
                now_ms,
                exchange=exchange,
                log=log,
            )
            if endpoints is not None and window is not None
            else None
        )

    @property
    def window(self) -> RollingWindow | None:
        """The IP request window every request is paced by (``None``: not paced)."""
        return self._pacer.window if self._pacer is not None else None

    def around(self, path: str, request: Observable[RestReply]) -> Observable[RestReply]:
        """``request`` (one call to ``path``, cold) behind the venue's gates: refused at
        once during a ban, sent after the pacing wait, its reply's budget read."""
        if self._ban is None and self._pacer is None:
            return request
        return reactivex.defer(lambda scheduler_: self._gated(path, request, scheduler_))

    def _gated(
        self, path: str, request: Observable[RestReply], scheduler_: abc.SchedulerBase | None
    ) -> Observable[RestReply]:
        ban, pacer = self._ban, self._pacer
        if ban is not None:
            refusal = ban.refusal()
            if refusal is not None:
                return reactivex.throw(refusal)
        sent = request
        if pacer is not None:
            scheduler = resolve_scheduler(self._scheduler, scheduler_)
            wait = pacer.wait(path, scheduler)
            if wait > 0:
                sent = reactivex.timer(wait, scheduler=scheduler).pipe(
                    ops.flat_map(lambda _: request)
                )
        if ban is not None:
            sent = sent.pipe(ops.catch(ban.on_error))
        if pacer is not None:
            sent = sent.pipe(ops.map(_Observed(pacer, path)))
        return sent


class _Observed:
    """Reads a reply's budget headers (raising on the venue's "budget broken" code)."""

    def __init__(self, pacer: EndpointPacer, path: str) -> None:
        self._pacer = pacer
        self._path = path

    def __call__(self, reply: RestReply) -> RestReply:
        self._pacer.observe(self._path, reply)
        return reply


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
