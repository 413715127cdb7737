"""Helpers every venue's payload parsers share (Binance, Bybit; WS and REST).

They live here, not in one venue's module, because the rules they carry are the
project's, not a venue's: which exceptions count as "malformed payload" and how that is
reported (:data:`MALFORMED`, :func:`raise_malformed`), how a number, a price level or an
optional number is read (:func:`to_decimal`, :func:`parse_levels`, :func:`opt_decimal`:
finite and of sane magnitude, or malformed), what a strict JSON boolean is
(:func:`json_flag`), and how a model is constructed cheaply on the hot path
(:func:`model_builder`). Keeping one copy means a fix to any of them reaches every feed.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, NoReturn, ParamSpec, TypeVar, cast

import attrs

from rxconnector.errors import ParseError, excerpt
from rxconnector.models import Level

__all__ = [
    "MALFORMED",
    "MAX_DECIMAL_EXPONENT",
    "json_flag",
    "json_str",
    "model_builder",
    "opt_decimal",
    "parse_levels",
    "raise_malformed",
    "to_decimal",
]

#: What a malformed payload raises inside a parser (InvalidOperation is an ArithmeticError).
MALFORMED: Final = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)

_P = ParamSpec("_P")
_M = TypeVar("_M")


def raise_malformed(venue: str, kind: str, payload: Any, exc: BaseException) -> NoReturn:
    """Raise the :class:`ParseError` for a payload a parser could not read.

    Shared by every venue's parsers so the messages look alike:
    ``malformed binance trade payload (missing key 'p'): "{'e': 'trade', ...}"``.
    """
    if isinstance(exc, KeyError):
        reason = f"missing key {exc.args[0]!r}" if exc.args else "missing key"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    raise ParseError(f"malformed {venue} {kind} payload ({reason})", payload) from exc


def json_flag(value: Any) -> bool:
    """A JSON boolean, strictly: anything else is malformed.

    ``bool(...)`` would be wrong: ``"false"`` is a truthy string, and a trade's side or a
    candle's "closed" would silently invert.
    """
    if value is True or value is False:
        return value
    # an excerpt, not the value's repr: a hostile flag may be megabytes or deeply nested
    raise ValueError(f"expected a JSON boolean, got {excerpt(value)}")


#: Largest decimal exponent (``Decimal.adjusted()``, either sign) a venue number may
#: have: 1e-50 .. 1e50 holds every price, size, balance and rate traded anywhere with
#: room to spare, and keeps arithmetic on it (notional = price x size, an average =
#: quote / base) far inside the decimal context's limits (Emax 999999), where
#: ``"1e999999"`` times anything overflows and raises in the middle of ``place_order``.
MAX_DECIMAL_EXPONENT: Final = 50

_is_finite = Decimal.is_finite
_adjusted = Decimal.adjusted


def _not_a_number(value: Any) -> ValueError:
    return ValueError(
        f"not a finite number within 1e±{MAX_DECIMAL_EXPONENT}: {excerpt(value, 40)!r}"
    )


def to_decimal(value: Any) -> Decimal:
    """A venue number as ``Decimal``: finite and within 1e±:data:`MAX_DECIMAL_EXPONENT`.

    The one constructor every parser uses (WebSocket and REST, every venue), so the
    rule reaches every model. ``Decimal`` itself accepts ``"NaN"``, ``"Infinity"``,
    ``"sNaN"`` and ``"1e999999"``; one of those inside a ticker or an exchange filter
    would poison everything computed from it (a NaN tick size made ``place_order`` raise
    ``decimal.InvalidOperation``). They raise ``ValueError`` here, which the parsers
    report as :class:`ParseError`. Cost: two C method calls, ≈50-80 ns per number
    (benchmarks/RESULTS.md, "Parsers").
    """
    number = Decimal(value)
    if _is_finite(number) and -MAX_DECIMAL_EXPONENT <= _adjusted(number) <= MAX_DECIMAL_EXPONENT:
        return number
    raise _not_a_number(value)


#: A typed decoder's refusal is cut to this many characters in a ParseError's message:
#: msgspec quotes a refused ``Literal`` value whole, and a hostile frame's ``stream`` or
#: ``topic`` may be megabytes.
MAX_REASON: Final = 160


def bounded_reason(reason: str) -> str:
    """``reason`` cut to :data:`MAX_REASON` characters (marked ``...`` where cut)."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def json_str(value: Any) -> str:
    """A JSON string, strictly: a name the library uses as a key (a symbol, an asset)
    must not be a list or an object, which would fail later, far from the parse."""
    if type(value) is str:
        return value
    raise TypeError(f"expected a JSON string, got {type(value).__name__}")


def parse_levels(raw: Any) -> tuple[Level, ...]:
    """``[["price", "qty"], ...]`` → ``((Decimal, Decimal), ...)`` in the order given.

    Both venues send book levels in this shape; ``Decimal`` straight from the strings,
    never via float. Every number obeys :func:`to_decimal`'s rule; the check runs over
    the built tuple in one loop (cheaper than a call per number on the book's hot path).

    The side and each level must be JSON arrays (lists; tuples for callers in code):
    unpacking alone would read ``{"12": 1}`` or ``["12"]`` as the level ``(1, 2)`` (a
    dict iterates its keys, a two-character string its characters), a made-up level
    from a hostile or broken frame.
    """
    D = Decimal
    if type(raw) is not list and type(raw) is not tuple:
        raise TypeError(f"expected a JSON array of levels, got {type(raw).__name__}")
    levels = tuple([(D(p), D(q)) for p, q in raw])
    low, high = -MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT
    for level, (price, quantity) in zip(raw, levels, strict=True):
        kind = type(level)
        if kind is not list and kind is not tuple:
            raise TypeError(f"expected a [price, quantity] array, got {kind.__name__}")
        if not (
            _is_finite(price)
            and _is_finite(quantity)
            and low <= _adjusted(price) <= high
            and low <= _adjusted(quantity) <= high
        ):
            price_ok = _is_finite(price) and low <= _adjusted(price) <= high
            raise _not_a_number(level[1] if price_ok else level[0])  # as the wire wrote it
    return levels


def opt_decimal(value: Any) -> Decimal | None:
    """Optional number: absent (``None``) or empty string → ``None``, else :func:`to_decimal`.

    Venues send ``""`` for "not applicable" (a delivery contract's funding rate, say);
    ``None`` says so instead of a fake zero.
    """
    if value is None or value == "":
        return None
    return to_decimal(value)


def _plain_model(cls: Any) -> bool:
    """True if writing ``cls``'s slots directly is exactly what its ``__init__`` does.

    That holds for a slotted attrs class whose ``__init__`` attrs generated, with no
    pre/post-init hook, no slot besides its fields (``cache_hash`` adds one), and fields
    that ``__init__`` simply stores: no validator, converter, factory default, alias or
    keyword-only marker.
    """
    if not (isinstance(cls, type) and attrs.has(cls)) or "__slots__" not in vars(cls):
        return False
    if cls.__new__ is not object.__new__:
        return False
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return False
    code = getattr(cls.__init__, "__code__", None)
    if code is None or "attrs generated" not in code.co_filename:
        return False
    fields = attrs.fields(cls)
    slots: set[str] = set()
    for klass in cls.__mro__:
        declared = vars(klass).get("__slots__", ())
        slots.update((declared,) if isinstance(declared, str) else declared)
    if slots - {"__weakref__", "__dict__"} != {field.name for field in fields}:
        return False
    return all(
        field.init
        and not field.kw_only
        and field.validator is None
        and field.converter is None
        and not isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
        and field.alias == field.name
        and type(getattr(cls, field.name, None)) is types.MemberDescriptorType
        for field in fields
    )


def model_builder(cls: Callable[_P, _M]) -> Callable[_P, _M]:
    """A drop-in constructor for the model class ``cls`` that is cheaper to call.

    Why: a frozen attrs class stores every field through ``object.__setattr__``, found
    by name per field. A parser builds one model per market-data frame, and that was its
    largest cost (a :class:`Trade`: ~0.8 µs of a ~1.6 µs parse). The builder returns the
    very same object (same class, equal, hashable, still frozen, same repr and pickle)
    in ~0.25 µs: it creates the object as an instance of a private *writable twin* (a
    subclass of ``cls`` that adds no slot and only restores ``object``'s
    ``__setattr__``), stores the fields with plain attribute writes (which the
    interpreter turns into direct slot stores), then sets ``__class__`` back to ``cls``
    (allowed: same layout). The twin never escapes the builder. Where the interpreter
    refuses that class switch, the builder writes the slots through their descriptors
    instead (~0.5 µs). It takes the same parameters as ``cls`` (same names, order and
    defaults), so type checkers check calls like ``cls(...)``.

    Only for models where that is exactly what ``__init__`` does (see
    :func:`_plain_model`); any other class - one that gains a validator or converter,
    say - gets ``cls`` itself back, so nothing a model enforces is ever skipped.
    """
    if not _plain_model(cls):
        return cls
    model = cast(type, cls)
    twin = _writable_twin(model)
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": model, "_twin": twin}
    params: list[str] = []
    body: list[str] = []
    for field in attrs.fields(model):
        name = field.name
        if field.default is attrs.NOTHING:
            params.append(name)
        else:
            namespace[f"_default_{name}"] = field.default
            params.append(f"{name}=_default_{name}")
        if twin is None:
            namespace[f"_set_{name}"] = getattr(model, name).__set__
            body.append(f"    _set_{name}(self, {name})")
        else:
            body.append(f"    self.{name} = {name}")
    if twin is None:
        source = f"def build({', '.join(params)}):\n    self = _new(_cls)\n"
        source += "\n".join(body) + "\n    return self\n"
    else:
        source = f"def build({', '.join(params)}):\n    self = _new(_twin)\n"
        source += "\n".join(body) + "\n    self.__class__ = _cls\n    return self\n"
    exec(compile(source, f"<model_builder {model.__qualname__}>", "exec"), namespace)
    build = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{model.__name__}"
    build.__doc__ = f"Construct a {model.__qualname__} (see model_builder)."
    return cast(Callable[_P, _M], build)


def _writable_twin(model: type) -> type | None:
    """A subclass of ``model`` with the same layout whose attributes can be written
    (``object``'s ``__setattr__``/``__delattr__``: both, or the interpreter falls back
    to a Python-level ``__setattr__`` call); ``None`` if an instance of it cannot be
    switched to ``model`` (then the builder uses the slot descriptors)."""
    twin = type(
        f"_Writable{model.__name__}",
        (model,),
        {
            "__slots__": (),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": __name__,
            "__doc__": f"Private to model_builder: a {model.__name__} under construction.",
        },
    )
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = model
    except TypeError:
        return None
    return twin
