"""Book levels straight from the wire, in the form the local book applies fastest.

A depth frame's level arrays (``[["price", "qty"], ...]`` as JSON text) are turned into
*packed levels* once, at parse time, so that a malformed level is still found (and
reported as one :class:`~rxconnector.errors.ParseError`) before the book sees the
event, and the book's hot path never builds per-level ``Decimal`` objects it may never
show. What "packed" means is the book implementation's business:

* pure Python (:func:`pack_levels_py`, always available): the parser's own
  ``((Decimal, Decimal), ...)`` tuples, exactly what :func:`parse_levels` returns;
* the compiled core (``_cbook``, when built and not disabled by ``RXC_PURE_PYTHON``, see
  :mod:`~rxconnector.exchanges._compiled`): a ``PackedLevels`` object holding scaled
  integers, which the compiled book applies without a single ``Decimal``. It is also a
  read-only sequence of ``(Decimal, Decimal)`` tuples built on access, so the
  pure-Python book (or any reader) can still consume it.

Both obey one contract, pinned by the tests: :func:`pack_levels` raises exactly when
``parse_levels(json.loads(raw))`` raises (``ValueError``/``TypeError``/
``ArithmeticError``, which the parsers report as ``ParseError``), and a book fed the
packed levels ends in the same state as one fed ``parse_levels``' tuples. The compiled
parser accepts only a strict fast grammar (plain digits with an optional fraction) and
hands any other input, for that call, to :func:`pack_levels_py`, so odd but valid
numbers (``"1E+3"``) and every error come out of the same Python code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from rxconnector.exchanges._compiled import cbook
from rxconnector.exchanges._parsing import parse_levels

__all__ = ["PackedLevels", "RawLevels", "pack_levels", "pack_levels_py"]

#: Opaque to everything but the book that applies them (see the module docstring).
PackedLevels = Any


#: What :func:`pack_levels` reads: JSON text in any buffer.
RawLevels = bytes | bytearray | memoryview | msgspec.Raw


_ORJSON_INPUTS = frozenset([bytes, bytearray, memoryview, str])


def pack_levels_py(raw: RawLevels) -> PackedLevels:
    """JSON text of one side's ``[[price, qty], ...]`` → packed levels (pure Python).

    Any buffer is read (``msgspec.Raw`` through a ``memoryview``, which orjson takes);
    anything else raises ``TypeError``, as ``orjson.loads`` would.
    """
    if type(raw) not in _ORJSON_INPUTS:
        raw = memoryview(raw)
    return parse_levels(orjson.loads(raw))


#: JSON text of one side's ``[[price, qty], ...]`` → packed levels: the compiled parser
#: when the compiled core runs, else :func:`pack_levels_py` (see the module docstring).
#: Accepts ``bytes``, ``bytearray``, ``memoryview`` and ``msgspec.Raw``.
pack_levels: Callable[[RawLevels], PackedLevels] = (
    cbook.pack_levels if cbook is not None else pack_levels_py
)
