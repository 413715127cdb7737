"""Type stub of the compiled order-book core (``_cbook.c``; see its header comment)."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, overload

Level = tuple[Decimal, Decimal]

class PackedLevels(Sequence[Level]):
    """One side's levels parsed from the wire (read-only, Decimals built on access)."""

    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int) -> Level: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Level]: ...
    def as_tuple(self) -> tuple[Level, ...]: ...
    def __hash__(self) -> int: ...

def pack_levels(raw: bytes | bytearray | memoryview) -> Any: ...
