"""The REST requests of one gapless trade subscription (:mod:`.continuity`).

:class:`PageFetch` asks for one backfill page and merges it with the held live trades;
:class:`IdLookup` asks whether the venue has a trade id beyond a gap (a hostile id must
not become the baseline). Both report back to their run and stop quietly once it is
stopped or they were superseded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from reactivex import abc
from reactivex.disposable import SingleAssignmentDisposable

from rxconnector.log import get_logger
from rxconnector.models import Trade

if TYPE_CHECKING:
    from rxconnector.streams.continuity import _GaplessRun as GaplessRun

__all__ = ["CONFIRM_ATTEMPTS", "IdLookup", "PageFetch"]

_log = get_logger(component="continuity")

#: Lookups of a far id before it is rejected (REST can lag the stream by a moment).
CONFIRM_ATTEMPTS = 3


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


class PageFetch:
    """One backfill page request of a :class:`_GaplessRun`, from id ``start``."""

    def __init__(self, run: GaplessRun, start: int) -> None:
        self.run = run
        self.start_id = start
        self.progress = False  # the page let something be emitted
        self.finished = False
        self.count = 0  # trades the page brought
        #: the page reached a held live trade: the present was reached (issue 16: a
        #: page that waited for budget is full because its trades also came live)
        self.joined = False

    def start(self) -> None:
        run = self.run
        current = SingleAssignmentDisposable()
        run.request.disposable = current
        since = run.settings.backfill_since
        try:
            if since is not None:
                page_request = since(self.start_id, run.last_time, run.fills.share())
            else:
                page_request = run.settings.backfill(self.start_id)
        except Exception as exc:
            self.finished = True
            run.failed(self.start_id, exc)
            return
        current.disposable = page_request.subscribe(
            self.on_page, self.on_error, self.on_completed, scheduler=run.scheduler_
        )

    def on_page(self, page: Iterable[Trade]) -> None:
        """Merge the page (up to the newest held id; all of it when nothing is held)
        with the held trades (a live copy wins) and emit what follows on."""
        run = self.run
        if self.finished or run.stopped:
            return
        trades = sorted(page, key=_trade_id)
        self.count += len(trades)
        if not trades:
            return
        assert run.last is not None
        held = run.held
        if held:
            self.joined = self.joined or trades[-1].trade_id >= held.first()
            newest = held.newest()
            trades = [t for t in trades if t.trade_id <= newest]
            if not trades:
                return
        for trade in trades:
            if trade.trade_id > run.last and trade.trade_id not in held:
                held.add(attrs.evolve(trade, backfilled=True))
        before = run.last
        run.emit_following(upto=trades[-1].trade_id)
        if run.last > before:
            self.progress = True

    def on_error(self, error: Exception) -> None:
        if self.finished or self.run.stopped:
            return
        self.finished = True
        self.run.failed(self.start_id, error)

    def on_completed(self) -> None:
        run = self.run
        if self.finished or run.stopped:
            return
        self.finished = True
        assert run.last is not None
        if not run.held:  # after a restart: fetch until the present is reached
            if self.progress and self.count >= run.settings.page_size and not self.joined:
                run.failures = 0
                run.fetch()
            else:
                run.release()
        elif self.progress or run.last + 1 >= run.held.first():
            run.release()  # the next hole (or page), checked against max_backfill
        elif run.held.first() not in run.confirmed:
            # nothing new before the trade beyond the gap: does the venue have it?
            run.confirm(run.held.first(), run.fetch)
        else:
            run.failed(self.start_id, None)


class IdLookup:
    """Whether the venue has trade ``head``: found (or a live ``head + 1`` came) ->
    ``proceed()``; not found :data:`CONFIRM_ATTEMPTS` times (per id) -> rejected."""

    def __init__(self, run: GaplessRun, head: int, proceed: Callable[[], None]) -> None:
        self.run = run
        self.head = head
        self.proceed = proceed
        self.found = False
        self.finished = False

    def start(self) -> None:
        run = self.run
        current = SingleAssignmentDisposable()
        run.request.disposable = current
        try:
            lookup = run.settings.backfill(self.head)
        except Exception as exc:
            self.on_error(exc)  # (it used to be swallowed here: the lookup then hung)
            return
        current.disposable = lookup.subscribe(
            self.on_page, self.on_error, self.on_completed, scheduler=run.scheduler_
        )

    def on_page(self, page: Iterable[Trade]) -> None:
        self.found = self.found or any(trade.trade_id >= self.head for trade in page)

    def on_error(self, error: Exception) -> None:
        run = self.run
        if self.finished or run.stopped:
            return
        self.finished = True
        _log.info(
            "trade id lookup failed",
            topic=run.settings.topic,
            trade_id=self.head,
            error=repr(error),
        )
        self.later(run.misses.get(self.head, 0) + 1)  # says nothing about the id: not a miss

    def on_completed(self) -> None:
        run, head = self.run, self.head
        if self.finished or run.stopped:
            return
        self.finished = True
        if self.found or head + 1 in run.held:
            run.misses.pop(head, None)
            run.confirmed.add(head)
            self.proceed()
            return
        run.misses[head] = missed = run.misses.get(head, 0) + 1
        if missed >= CONFIRM_ATTEMPTS:
            run.misses.pop(head, None)
            run.reject(head)
        else:
            self.later(missed)

    def later(self, attempt: int) -> None:
        run = self.run
        delay = run.settings.retry_delay(attempt)
        run.timer.disposable = run.clock().schedule_relative(delay, self._again)

    def _again(self, _: abc.SchedulerBase, __: Any = None) -> None:
        run = self.run
        if run.stopped or run.last is None:
            return
        if run.held and run.held.first() == self.head:
            run.confirm(self.head, self.proceed)
        else:
            run.release()  # live trades came before it meanwhile: go on from there
