"""Book levels straight from the wire, in the form the local book applies fastest.

A depth frame's level arrays (``[["price", "qty"], ...]`` as JSON text) are turned into
*packed levels* once, at parse time, so that a malformed level is still found (and
reported as one :class:`~rxconnector.errors.ParseError`) before the book sees the
event, and the book's hot path never builds per-level ``Decimal`` objects it may never
show. What "packed" means is the book implementation's business:

* pure Python (this module, always available): the parser's own
  ``((Decimal, Decimal), ...)`` tuples, exactly what :func:`parse_levels` returns;
* the compiled book (when built): an opaque object only that book reads.

Both obey one contract, pinned by the tests: :func:`pack_levels` raises exactly when
``parse_levels(json.loads(raw))`` raises (``ValueError``/``TypeError``/
``ArithmeticError``, which the parsers report as ``ParseError``), and a book fed the
packed levels ends in the same state as one fed ``parse_levels``' tuples.
"""

from __future__ import annotations

from typing import Any

import orjson

from rxconnector.exchanges._parsing import parse_levels

__all__ = ["PackedLevels", "pack_levels"]

#: Opaque to everything but the book that applies them (see the module docstring).
PackedLevels = Any


def pack_levels(raw: bytes | bytearray | memoryview) -> PackedLevels:
    """JSON text of one side's ``[[price, qty], ...]`` → packed levels (pure Python)."""
    return parse_levels(orjson.loads(raw))
