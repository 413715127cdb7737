"""The order-book sync rules are pure venue code: importable without reactivex/aiohttp.

Each module is imported in a fresh interpreter in which ``reactivex`` and ``aiohttp``
cannot be imported and the top-level package ``rxconnector`` is an empty namespace (its
``__init__`` re-exports the whole public API, the Connector included, which is not
what this checks): what loads is the module and what it imports itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PURE_MODULES = [
    "rxconnector.exchanges.book",
    "rxconnector.exchanges.book_sync",
    "rxconnector.exchanges.book_rules",
    "rxconnector.exchanges.binance.book_sync",
    "rxconnector.exchanges.bybit.book_sync",
]

_PROBE = """
import importlib, importlib.abc, sys, types

FORBIDDEN = ("reactivex", "aiohttp")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"pure module imported {{name}}")
        return None

sys.meta_path.insert(0, Block())
package = types.ModuleType("rxconnector")
package.__path__ = [{package_dir!r}]
sys.modules["rxconnector"] = package
importlib.import_module({module!r})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
assert not loaded, loaded
"""


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importable_without_reactivex_or_aiohttp(module: str) -> None:
    code = _PROBE.format(package_dir=str(ROOT / "rxconnector"), module=module)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_probe_can_fail() -> None:
    """The probe itself catches a module that needs reactivex (the operator does)."""
    code = _PROBE.format(
        package_dir=str(ROOT / "rxconnector"), module="rxconnector.streams.orderbook"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "pure module imported reactivex" in result.stderr


def test_every_rule_is_named_in_the_catalog() -> None:
    """Each venue rule object is reachable from the catalog ``venues.py`` chooses from."""
    from rxconnector.exchanges.binance import book_sync as binance
    from rxconnector.exchanges.book_rules import BookRule
    from rxconnector.exchanges.bybit import book_sync as bybit

    specs = {rule.spec for rule in BookRule}
    assert specs == {binance.SPOT_RULE, binance.USDM_RULE, bybit.DEPTH_RULE, bybit.FULL_RULE}
    assert {rule.value for rule in BookRule} == {spec.name for spec in specs}
