"""Typed readers of account (private) frames, measured by ``bench_decode_account.py``.

Not used by the library: on every account event type they measured slower than (or,
on fill events, level with) today's ``orjson.loads`` + dict parsing, so the account
streams keep the dict parsers (benchmarks/RESULTS.md, "Typed decoding on account feeds
(seventh session)"). They live here so the measurement can be repeated.

This module holds what the readers share (:mod:`_wire_spot`, :mod:`_wire_usdm`,
:mod:`_wire_bybit`: one ``msgspec`` pass over the frame's bytes into Structs of only the
fields the dict parser reads, numbers to ``Decimal`` in C, then the models built with
the same constructors and rules).

A typed reader never decides that a frame is bad: it returns ``None`` whenever it cannot
read the frame exactly as the dict parser would (a missing key, another type, a JSON
number where the venue sends a string, ``""`` for a number, an unknown side, a number
that is not finite or out of range), and a stream using it would then run the dict
parser, which accepts the frame or reports the one ``ParseError`` it always reported.

Numbers are typed :data:`WireNumber` (``Decimal | float``): the venues send numbers as
strings, which decode to ``Decimal``; a bare JSON number decodes to ``float``, which
:func:`all_sane` refuses, because the dict parser reads it through ``float``
(``Decimal(0.1)`` is not ``Decimal("0.1")``) and only the dict parser's answer counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec

from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT

__all__ = ["READ_FAILED", "WireNumber", "all_sane", "TypedReader"]

if TYPE_CHECKING:
    #: To the type checker a number field is the ``Decimal`` that :func:`all_sane` lets
    #: through (the readers build models only after that check).
    WireNumber = Decimal
else:
    #: A number field of a wire Struct: ``Decimal`` from a JSON string, ``float`` from a
    #: JSON number (then the frame goes to the dict parser, see the module docstring).
    WireNumber = Decimal | float

#: ``reader(frame, received_at)`` → the models the dict parser would give, in its
#: order, or ``None``: let the dict parser read this frame.
TypedReader = Callable[[Any, float], list[Any] | None]

#: What a typed reader turns into ``None``: the decoder's refusals, a non-UTF-8 frame,
#: a ``float`` meeting a ``Decimal`` method (``TypeError``), a time that is no integer
#: text (``ValueError``) or arithmetic failing.
READ_FAILED: Final = (
    msgspec.DecodeError,
    UnicodeDecodeError,
    TypeError,
    ValueError,
    ArithmeticError,
)

_is_finite = Decimal.is_finite
_adjusted = Decimal.adjusted
#: The allowed ``Decimal.adjusted()`` values as a set: one membership test per number.
_EXPONENTS: Final = frozenset(range(-MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT + 1))


def all_sane(numbers: Iterable[WireNumber]) -> bool:
    """True when every number is a finite ``Decimal`` within 1e±50 (the rule of
    :func:`~rxconnector.exchanges._parsing.to_decimal`); raises ``TypeError`` for a
    ``float`` (a JSON number), which the readers catch as :data:`READ_FAILED`."""
    for number in numbers:  # noqa: SIM110 - cheaper than all() over a generator
        if not (_is_finite(number) and _adjusted(number) in _EXPONENTS):
            return False
    return True
