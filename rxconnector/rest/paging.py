"""Pagination, the engine's way: one page at a time, in order, cancellable.

Venues page differently (Binance by ``fromId`` or time, Bybit by an opaque cursor);
what they share is here: the next page is requested only after the previous one's
items were emitted (pages never overlap in flight, so a long walk paces itself through
the limiter), and disposing stops the walk and cancels the page in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SerialDisposable,
    SingleAssignmentDisposable,
)

__all__ = ["paged", "walk_cursors"]

_T = TypeVar("_T")
_C = TypeVar("_C")


def paged(
    first: int,
    fetch: Callable[[int], Observable[list[_T]]],
    advance: Callable[[list[_T]], int | None],
) -> Observable[_T]:
    """Items of page after page, in order: ``fetch(cursor)`` gives a page, ``advance(page)``
    the next cursor or ``None`` when the walk is over::

        fetch(c0) --[a,b]|
        fetch(c1)         --[c]|            advance([c]) is None
        result    --a,b-----c|
    """

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        walk = _PageWalk(observer, scheduler, fetch, advance)
        walk.load(first)
        return CompositeDisposable(Disposable(walk.stop), walk.current)

    return reactivex.create(subscribe)


class _PageWalk(Generic[_T]):
    """One subscription's walk: the page in flight and whether the walk was disposed."""

    def __init__(
        self,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None,
        fetch: Callable[[int], Observable[list[_T]]],
        advance: Callable[[list[_T]], int | None],
    ) -> None:
        self._observer = observer
        self._scheduler = scheduler
        self._fetch = fetch
        self._advance = advance
        self.current = SerialDisposable()
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def load(self, cursor: int) -> None:
        if self._stopped:
            return
        page: list[_T] = []

        def on_page(items: list[_T]) -> None:
            page.extend(items)
            for item in items:
                self._observer.on_next(item)

        def on_page_done() -> None:
            following = self._advance(page)
            if following is None:
                self._observer.on_completed()
            else:
                self.load(following)

        holder = SingleAssignmentDisposable()
        self.current.disposable = holder
        holder.disposable = self._fetch(cursor).subscribe(
            on_page, self._observer.on_error, on_page_done, scheduler=self._scheduler
        )


def walk_cursors(
    first: _C, page: Callable[[_C], Observable[tuple[Sequence[_T], _C | None]]]
) -> Observable[_T]:
    """Fetch pages one after another by cursor, emitting their items in order.

    ``page(cursor)`` emits ``(items, next_cursor)`` once; ``next_cursor=None`` ends the
    walk. Built on :func:`paged` (page numbers stand for the cursors)::

        page(c0) --(items0, c1)|
        page(c1)                --(items1, None)|
        result   --i0,i0,...----i1,i1,...|
    """

    def start(_scheduler: abc.SchedulerBase | None) -> Observable[_T]:
        cursors = _Cursors(first, page)
        return paged(0, cursors.fetch, cursors.advance)

    return reactivex.defer(start)


class _Cursors(Generic[_C, _T]):
    """The cursors one walk has seen, by page number, and whether the last page ended it."""

    def __init__(
        self, first: _C, page: Callable[[_C], Observable[tuple[Sequence[_T], _C | None]]]
    ) -> None:
        self._cursors: list[_C] = [first]
        self._page = page
        self._ended = False

    def fetch(self, number: int) -> Observable[list[_T]]:
        self._ended = True  # until this page names a next cursor
        return self._page(self._cursors[number]).pipe(ops.map(self._unpack))

    def _unpack(self, got: tuple[Sequence[_T], _C | None]) -> list[_T]:
        items, following = got
        if following is not None:
            self._cursors.append(following)
            self._ended = False
        return list(items)

    def advance(self, _items: list[_T]) -> int | None:
        return None if self._ended else len(self._cursors) - 1
