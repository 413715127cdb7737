"""Run a venue's REST *plan* (:mod:`rxconnector.exchanges.rest_plan`) as a cold,
cancellable Observable.

A plan is a generator that yields steps and receives their answers; this module is the
one place that drives it, so every venue's flows (pages, fallbacks, "fetch the mark
price, then check, then send") get the engine's behaviour without engine code of their
own::

    plan:    Call(p1)      Emit(page1)     Call(p2)      Emit(page2)   return
    engine:  --[==p1==]r1--(a,b)-----------[==p2==]r2----(c)-----------|
    result:  ---------------a,b-------------------------c---------------|

* ``Call``: sent through the :class:`PlanHost` (the REST pipeline: weight, signing at
  send time, breaker, retry); the parsed reply resumes the plan, an error is thrown
  into it at the ``yield`` (it may catch it and fall back; uncaught it ends the
  Observable with that error);
* ``Emit``: the items go downstream; the plan resumes only after ``on_next`` returned
  for each, so the next page is asked for only after the previous one was delivered;
* ``RulesFor`` / ``ForgetRules`` / ``Remember`` / ``Now`` / ``WeightBudget``: answered by
  the host (rules cache, synced clock, limiter).

Each subscription starts a fresh plan from its factory. Disposing stops it: the
request (or rules fetch) in flight is disposed, hence cancelled, and the generator is
closed (its ``finally`` blocks run). Answers that arrive synchronously (a cached rule,
the clock) are handled in a loop, not by recursion, so a long plan never grows the
stack.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final, Generic, Protocol, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxconnector.exchanges.rest_plan import (
    Call,
    Emit,
    ForgetRules,
    Now,
    Plan,
    PlanFactory,
    Remember,
    RulesFor,
    WeightBudget,
)
from rxconnector.models import SymbolInfo
from rxconnector.rate.limiter import Priority

__all__ = ["URGENCY_PRIORITY", "PlanHost", "run_plan"]

_T = TypeVar("_T")

#: The limiter priority of each ``Call.urgency``.
URGENCY_PRIORITY: Final[Mapping[str, Priority]] = {
    "user": Priority.USER,
    "recovery": Priority.RECOVERY,
    "backfill": Priority.BACKFILL,
}


class PlanHost(Protocol):
    """What a plan's steps need from the engine (:class:`~rxconnector.rest.planned.PlannedRest`
    is the real one; runner tests give a scripted one in virtual time)."""

    def send(self, call: Call[Any]) -> Observable[Any]:
        """The request of ``call``: emits ``call.parse(reply)`` once, or errors."""

    def rules_for(self, symbol: str) -> Observable[SymbolInfo | None]:
        """``symbol``'s trading rules, from the cache or fetched."""

    def forget_rules(self, symbol: str) -> None: ...

    def remember_rules(self, infos: Mapping[str, SymbolInfo]) -> None: ...

    def now(self) -> int:
        """The synced exchange clock, ms."""

    def weight_budget(self, per_minute: int) -> None:
        """The venue announced its request weight per minute."""


def run_plan(factory: PlanFactory[_T], host: PlanHost) -> Observable[_T]:
    """A cold Observable running a fresh plan from ``factory`` per subscription."""

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _PlanRun(factory(), host, observer, scheduler)
        disposable = CompositeDisposable(Disposable(run.stop), run.current)
        run.start()
        return disposable

    return reactivex.create(subscribe)


class _Answer:
    """The answer of one awaited step: the last item its Observable emitted."""

    __slots__ = ("_run", "value")

    def __init__(self, run: _PlanRun[Any]) -> None:
        self._run = run
        self.value: Any = None

    def on_next(self, value: Any) -> None:
        self.value = value

    def on_completed(self) -> None:
        self._run.resume(self.value)


class _PlanRun(Generic[_T]):
    """One subscription's plan: the step in flight, the answers waiting to be sent in,
    and whether the subscriber left."""

    def __init__(
        self,
        plan: Plan[_T],
        host: PlanHost,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._plan = plan
        self._host = host
        self._observer = observer
        self._scheduler = scheduler
        #: the request (or rules fetch) in flight; disposing cancels it
        self.current = SerialDisposable()
        self._inbox: deque[tuple[bool, Any]] = deque()
        self._draining = False
        self._stopped = False
        self._emitted = False

    @property
    def stopped(self) -> bool:
        """True once the subscriber left or the plan ended (read anew each time: the
        plan's own steps may stop it)."""
        return self._stopped

    def start(self) -> None:
        self.resume(None)

    def resume(self, value: Any) -> None:
        """Send ``value`` into the plan (the answer of its last step)."""
        self._post(False, value)

    def fail(self, error: Exception) -> None:
        """Throw ``error`` into the plan at its last ``yield``."""
        self._post(True, error)

    def stop(self) -> None:
        """The subscriber left (or the plan ended): nothing more is sent or delivered."""
        if self._stopped:
            return
        self._stopped = True
        self._inbox.clear()
        self.current.dispose()
        if not self._draining:
            self._plan.close()  # runs the plan's finally blocks

    def _post(self, failed: bool, value: Any) -> None:
        if self._stopped:
            return
        self._inbox.append((failed, value))
        if self._draining:
            return  # answered synchronously: the loop below takes it next
        self._draining = True
        try:
            while self._inbox and not self.stopped:
                self._advance(*self._inbox.popleft())
        finally:
            self._draining = False
            if self.stopped:
                self._plan.close()

    def _advance(self, failed: bool, value: Any) -> None:
        try:
            step = self._plan.throw(value) if failed else self._plan.send(value)
        except StopIteration as done:
            self._finish(done.value)
            return
        except Exception as error:
            self.stop()
            self._observer.on_error(error)
            return
        if isinstance(step, Emit):
            try:
                self._deliver(step)
            except Exception:
                # The subscriber's own on_next raised: not the plan's business (it is not
                # thrown in), but the walk ends; the error goes up as Rx reports it.
                self.stop()
                raise
            return
        try:
            self._take(step)
        except Exception as error:  # the host refused the step (a bad argument...)
            self.fail(error)

    def _take(self, step: object) -> None:
        """Answer one step (``object``: a plan may yield anything; only a Step is taken)."""
        host = self._host
        if isinstance(step, Call):
            self._await(host.send(step))
        elif isinstance(step, RulesFor):
            self._await(host.rules_for(step.symbol))
        elif isinstance(step, Now):
            self.resume(host.now())
        elif isinstance(step, ForgetRules):
            host.forget_rules(step.symbol)
            self.resume(None)
        elif isinstance(step, Remember):
            host.remember_rules(step.infos)
            self.resume(None)
        elif isinstance(step, WeightBudget):
            host.weight_budget(step.per_minute)
            self.resume(None)
        else:
            raise TypeError(f"a REST plan yielded {step!r}, which is not a step")

    def _await(self, source: Observable[Any]) -> None:
        answer = _Answer(self)
        # assigned before subscribing, so a synchronous answer finds it replaced
        slot = SerialDisposable()
        self.current.disposable = slot
        slot.disposable = source.subscribe(
            answer.on_next, self.fail, answer.on_completed, scheduler=self._scheduler
        )

    def _deliver(self, step: Emit[Any]) -> None:
        self._emitted = True
        for item in step.items:
            if self._stopped:
                return
            self._observer.on_next(item)
        self.resume(None)

    def _finish(self, value: Any) -> None:
        self.stop()
        if not self._emitted:
            self._observer.on_next(value)
        self._observer.on_completed()
