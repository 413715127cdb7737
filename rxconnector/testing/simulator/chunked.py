"""A first-in first-out log of many small records that the cyclic collector skips.

Why: the simulator keeps long histories (the trade tape, up to a million trades per
symbol; the 24-h and 5-min statistics windows; the book's undo log). Held in a list or
a deque, every full pass of Python's cyclic collector visits each record: measured at
~0.5 million trades, passes of ~100 ms that stall the whole exchange, growing with the
history. A real venue does not pause like that, so a simulator that does misrepresents
it (clients measure the simulator's pauses as network or exchange latency).

:class:`ChunkedLog` keeps its items in sealed tuples of :data:`CHUNK` items plus one
open list for the newest. A tuple whose items the collector does not track is untracked
itself by a pass that sees it (by the pass after its items' at the latest: a pass does
not always look at a tuple's items before the tuple), so a full pass visits one object per
:data:`CHUNK` records instead of every record. That holds for records that are not
tracked: ints, strings, Decimals, flat tuples of those, ``gc=False`` msgspec structs. (Other
records work the same, only without the saving.)

It supports what the histories need: append at the end, drop from the front, the
length, indexing (negative too), slices as lists, iteration both ways; and is a
``Sequence`` for :mod:`bisect`. Records dropped from the front stay referenced until
their whole chunk is dropped (at most ``CHUNK - 1`` of them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar, overload

__all__ = ["CHUNK", "ChunkedLog"]

T = TypeVar("T")

#: records per sealed tuple: a full pass visits ~1/CHUNK of the records; the open list
#: (up to CHUNK - 1 records, visited on every pass) stays small
CHUNK = 1024


class ChunkedLog(Generic[T]):
    """Append at the end, drop from the front, index anywhere (see the module doc)."""

    __slots__ = ("_chunks", "_open", "_size", "_skip")

    def __init__(self, items: Iterable[T] = ()) -> None:
        #: sealed chunks, each exactly CHUNK items, oldest first
        self._chunks: deque[tuple[T, ...]] = deque()
        #: the newest items (fewer than CHUNK), after every sealed chunk
        self._open: list[T] = []
        #: items of the first chunk (or of the open list when no chunk is sealed) that
        #: were dropped from the front but are still held
        self._skip = 0
        self._size = 0
        self.extend(items)

    def append(self, item: T) -> None:
        self._open.append(item)
        self._size += 1
        if len(self._open) == CHUNK:
            self._seal()

    def extend(self, items: Iterable[T]) -> None:
        batch = items if isinstance(items, list | tuple) else list(items)
        done, total = 0, len(batch)
        while done < total:
            room = CHUNK - len(self._open)
            part = batch[done : done + room]
            self._open.extend(part)
            self._size += len(part)
            done += len(part)
            if len(self._open) == CHUNK:
                self._seal()

    def _seal(self) -> None:
        self._chunks.append(tuple(self._open))
        self._open = []
        self._trim_front()

    def _trim_front(self) -> None:
        while self._chunks and self._skip >= CHUNK:
            self._chunks.popleft()
            self._skip -= CHUNK

    def drop_front(self, count: int) -> None:
        """Forget the ``count`` oldest items (all of them if there are fewer)."""
        count = min(max(count, 0), self._size)
        self._size -= count
        self._skip += count
        self._trim_front()
        if not self._chunks and self._size == 0:
            self._open.clear()
            self._skip = 0

    def popleft(self) -> T:
        """Remove and return the oldest item (``IndexError`` when empty)."""
        if self._size == 0:
            raise IndexError("pop from an empty ChunkedLog")
        item = self[0]
        self.drop_front(1)
        return item

    def clear(self) -> None:
        self.drop_front(self._size)

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def _at(self, index: int) -> T:
        position = index + self._skip
        chunk, offset = divmod(position, CHUNK)
        if chunk < len(self._chunks):
            return self._chunks[chunk][offset]
        return self._open[position - len(self._chunks) * CHUNK]

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._size)
            if step != 1:
                return [self._at(i) for i in range(start, stop, step)]
            return self.between(start, stop)
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError("ChunkedLog index out of range")
        return self._at(index)

    def between(self, start: int, stop: int) -> list[T]:
        """Items ``start <= i < stop`` (clamped to the log) as a new list."""
        start, stop = max(start, 0), min(stop, self._size)
        out: list[T] = []
        position, end = start + self._skip, stop + self._skip
        sealed = len(self._chunks) * CHUNK
        while position < end and position < sealed:
            chunk, offset = divmod(position, CHUNK)
            take = min(CHUNK - offset, end - position)
            out.extend(self._chunks[chunk][offset : offset + take])
            position += take
        if position < end:
            out.extend(self._open[position - sealed : end - sealed])
        return out

    def __iter__(self) -> Iterator[T]:
        skip = self._skip
        for chunk in self._chunks:
            yield from chunk[skip:] if skip else chunk
            skip = 0
        yield from self._open[skip:] if skip else self._open

    def __reversed__(self) -> Iterator[T]:
        chunks, items = self._chunks, self._open
        for index in range(len(items) - 1, -1 if chunks else self._skip - 1, -1):
            yield items[index]
        for number in range(len(chunks) - 1, -1, -1):
            chunk = chunks[number]
            for index in range(CHUNK - 1, (self._skip if number == 0 else 0) - 1, -1):
                yield chunk[index]
