"""REST calls and multi-step REST flows as pure data: *plans*.

Why: a venue's REST surface used to be Rx code of its own under ``rest/`` (its pages,
its fallbacks, its "fetch the mark price, then check, then send"), so adding a venue
meant writing engine code. A venue now writes plans instead: ordinary generators that
yield the steps below and receive each answer. The one REST engine (:mod:`rxconnector.rest`)
runs every plan the same way: weight limiter and priorities, breaker, retry for what
may be repeated, signing at send time, ban gates and pacing, cancellation on disposal.
Plans import nothing but the base modules and ``exchanges/``, so they are tested by
sending answers by hand, without a socket or a scheduler::

    def klines(symbol: str, interval: str) -> Plan[list[Kline]]:
        page = yield Call(KLINES, {"symbol": symbol, "interval": interval}, parse_klines)
        return page

The engine's contract when it runs a plan:

- ``yield Call(...)`` sends the request and resumes the plan with ``call.parse(reply)``;
  when the request fails, the error (always one of :mod:`rxconnector.errors`) is thrown
  into the plan at that ``yield``, so a plan may catch it and fall back; uncaught, it
  ends the Observable.
- ``yield Emit(items)`` hands the items downstream and resumes the plan (with ``None``)
  only after they were delivered: a walk over pages asks for the next page only after
  the previous one was consumed, and disposing stops it.
- ``yield RulesFor(symbol)`` resumes with the symbol's cached trading rules
  (:class:`~rxconnector.models.SymbolInfo`), fetched once through the venue's
  exchange-info plan when missing or stale, or ``None`` when the venue does not know the
  symbol. ``yield ForgetRules(symbol)`` drops them (an order the exchange refused on a
  filter the cache passed).
- ``yield Now()`` resumes with the synced exchange clock in ms (an ``int``).
- ``yield WeightBudget(n)`` tells the engine the venue announced ``n`` request weight per
  minute (``exchangeInfo`` ``rateLimits``); the engine sets its limiter to it, capped by
  the user's ``Config``.
- ``yield Remember(infos)`` hands the engine trading rules just fetched (an
  exchange-info answer), so :class:`RulesFor` and ``symbol_info`` find them.
- The plan's ``return`` value is the Observable's single item (a plan that only emits
  returns ``None`` and the engine completes after the last ``Emit``). The rule is by
  what the plan did: a plan that yielded at least one ``Emit`` ends the Observable when
  it returns (a walk should yield ``Emit`` for every page, empty ones too); any other
  plan's return value, ``None`` included (``ping``), is emitted.

Arguments are checked *at the call*, before anything is subscribed, and an Observable is
cold (each subscription runs the flow anew, with the same arguments: a retried order
sends the same client order id). A generator function checks nothing until it runs and
runs only once, so a venue's plan function checks its arguments and returns a
:data:`PlanFactory` (``functools.partial`` of its generator function and the checked
arguments) from which the engine starts a fresh plan per subscription::

    def klines(self, symbol: str, interval: str) -> PlanFactory[list[Kline]]:
        check_interval(interval)                      # ValueError now
        return partial(self._klines, symbol.upper(), interval)

Signed calls are signed by the venue's :class:`PlanSigner`, which the engine is given
explicitly and calls when the request leaves (after any wait for weight).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

import attrs

from rxconnector.exchanges.rest_spec import Endpoint, RestReply, SignedRequest
from rxconnector.models import SymbolInfo

__all__ = [
    "Call",
    "Emit",
    "ForgetRules",
    "Now",
    "Plan",
    "PlanFactory",
    "PlanSigner",
    "Remember",
    "RulesFor",
    "Step",
    "URGENCIES",
    "WeightBudget",
    "single",
]

_T = TypeVar("_T")

#: The priorities a :class:`Call` may ask for, most urgent first.
URGENCIES = ("user", "recovery", "backfill")


@attrs.frozen
class Call(Generic[_T]):
    """Send one request of ``endpoint`` with ``params`` and parse the reply.

    ``weight``: the request weight when it depends on the parameters (``None``: the
    endpoint's). ``urgency``: ``"user"`` (trading and the user's own calls, served
    first), ``"recovery"`` (a book resyncing) or ``"backfill"`` (a trade feed healing),
    which fill the budget the user leaves. ``idempotent=False`` (placing an order):
    never retried, and a lost answer becomes
    :class:`~rxconnector.errors.OrderStatusUnknownError` carrying ``client_order_id``.
    Signed when ``endpoint.signed``; the engine signs when the request leaves.
    ``keyed=True``: not signed, but sent with the API key (Binance's USER_STREAM
    security, the listenKey routes): :meth:`PlanSigner.key_only`.
    """

    endpoint: Endpoint
    params: Mapping[str, Any]
    parse: Callable[[RestReply], _T]
    weight: int | None = None
    urgency: str = "user"
    idempotent: bool = True
    client_order_id: str | None = None
    keyed: bool = False

    def __attrs_post_init__(self) -> None:
        if self.urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {URGENCIES}, got {self.urgency!r}")


@attrs.frozen
class Emit(Generic[_T]):
    """Deliver ``items`` downstream now; the plan resumes once they were delivered."""

    items: Sequence[_T]


@attrs.frozen
class RulesFor:
    """Ask for ``symbol``'s trading rules (``SymbolInfo | None``)."""

    symbol: str


@attrs.frozen
class ForgetRules:
    """Drop ``symbol``'s cached trading rules, so the next order fetches them anew."""

    symbol: str


@attrs.frozen
class Now:
    """Ask for the synced exchange clock, in ms."""


@attrs.frozen
class WeightBudget:
    """The venue announced ``per_minute`` request weight per minute."""

    per_minute: int


@attrs.frozen
class Remember:
    """Trading rules just fetched (an exchange-info answer), by symbol: the engine
    caches them for :class:`RulesFor` and ``symbol_info``."""

    infos: Mapping[str, SymbolInfo]


#: What a plan may yield.
Step: TypeAlias = Call[Any] | Emit[Any] | RulesFor | ForgetRules | Now | WeightBudget | Remember

#: A REST flow: yields steps, receives their answers, returns its result.
Plan: TypeAlias = Generator[Step, Any, _T]

#: What a venue's plan function returns once its arguments are checked: a fresh plan
#: per call (the engine starts one per subscription).
PlanFactory: TypeAlias = Callable[[], Plan[_T]]


def single(call: Call[_T]) -> Plan[_T]:
    """The plan of one request: its parsed reply is the result
    (``partial(single, Call(...))`` is a ready :data:`PlanFactory`)."""
    result: _T = yield call
    return result


class PlanSigner(Protocol):
    """How a venue signs, as the engine calls it when a request leaves.

    Pure: ``timestamp`` (ms, the synced exchange clock) is given, nothing is read.
    """

    def sign(self, endpoint: Endpoint, params: Mapping[str, Any], timestamp: int) -> SignedRequest:
        """The signed request for ``params`` of a SIGNED ``endpoint``."""

    def key_only(self, endpoint: Endpoint, params: Mapping[str, Any]) -> SignedRequest:
        """The request for ``params`` sent with the API key but no signature."""
