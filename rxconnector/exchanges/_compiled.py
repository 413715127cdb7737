"""Which order-book core runs: the compiled one (``_cbook``) or pure Python.

One place decides, so the parser (:mod:`~rxconnector.exchanges.wire_levels`) and the
book (:mod:`~rxconnector.exchanges.book`) never disagree: the compiled core is used when
the optional C extension was built (``pip install`` builds it wherever a C compiler and
the Python headers exist) and ``RXC_PURE_PYTHON`` is not set to a true value. The
pure-Python path gives the same results (pinned by ``tests/exchanges/test_cbook*.py``);
forcing it is for comparing, debugging, or a platform where the extension misbehaves.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["cbook", "pure_python_forced"]


def pure_python_forced() -> bool:
    """True when ``RXC_PURE_PYTHON`` asks for the pure-Python core (``1``, ``true``...)."""
    return os.environ.get("RXC_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no")


def _load() -> ModuleType | None:
    if pure_python_forced():
        return None
    try:
        from rxconnector.exchanges import _cbook
    except ImportError:  # not built (no compiler at install time): pure Python
        return None
    return _cbook


#: The compiled core module, or None when pure Python runs (decided once, at import).
cbook: ModuleType | None = _load()
