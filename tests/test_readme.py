"""The README's examples run, every one of them.

Each ``.. code-block:: python`` must follow a marker: ``.. runs-in-tests`` (the block is
self-contained: it starts its own simulator, or needs none) or
``.. runs-in-tests-on-simulator`` (the block is written for the real exchange, as a user
would paste it; here it runs with ``Config.binance()`` and ``Config.from_env("binance")``
pointed at a simulator with a funded test key), ``.. bus-example`` (needs a
redis-server: run by ``tests/bus/test_readme_example.py``), or
``.. not-executed: REASON`` for a deployment snippet (a Redis host, a production
server), which must be followed by an executed block doing the same thing. A block
without a marker fails the test, so no recipe can be added that the suite does not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rxconnector as rxc
from rxconnector.testing import ExchangeSimulator
from tests.simthread import SimThread

README = Path(__file__).resolve().parent.parent / "README.rst"
_BLOCK = re.compile(
    r"^(?:\.\. (runs-in-tests(?:-on-simulator)?|bus-example|not-executed:.*)\s*\n\s*\n)?"
    r"\.\. code-block:: python\s*\n\s*\n((?:    .*\n|\s*\n)+)",
    re.MULTILINE,
)
KEY, SECRET = "readme-key", "readme-secret"


def _blocks() -> list[tuple[str | None, str, int]]:
    """(marker, code, line) of every python block, in order."""
    text = README.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        lines = match.group(2).splitlines()
        code = "\n".join(line[4:] for line in lines) + "\n"
        blocks.append((match.group(1), code, text.count("\n", 0, match.start()) + 1))
    return blocks


#: markers of the blocks this module executes (the others: see the module doc)
_RUN_HERE = ("runs-in-tests", "runs-in-tests-on-simulator")


def _runnable() -> list[tuple[str | None, str, int]]:
    return [block for block in _blocks() if block[0] in _RUN_HERE]


def _ids() -> list[str]:
    return [f"line{line}" for _, _, line in _runnable()]


def _run(code: str, name: str) -> None:
    namespace: dict[str, object] = {"__name__": name}
    exec(compile(code, f"README.rst[{name}]", "exec"), namespace)
    # An example written as pytest tests: run what it defines, so it cannot rot.
    ran = 0
    for key, obj in list(namespace.items()):
        if key.startswith("Test") and isinstance(obj, type):
            instance = obj()
            for attr in dir(instance):
                if attr.startswith("test_"):
                    getattr(instance, attr)()
                    ran += 1
        elif key.startswith("test_") and callable(obj):
            obj()
            ran += 1
    assert ran > 0 or "def test_" not in code


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with SimThread(("BTCUSDT", "ETHUSDT"), seed=1, api_keys={KEY: SECRET}) as simulator:
        yield simulator


@pytest.fixture
def exchange_is_the_simulator(sim: ExchangeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Config.binance()`` / ``from_env("binance")`` give a config for ``sim``."""
    original = rxc.Config.binance

    def binance(cls: type[rxc.Config], **overrides: Any) -> rxc.Config:
        pointed = {
            "rest_url": sim.rest_url,
            "ws_url": sim.ws_url,
            "api_key": KEY,
            "api_secret": SECRET,
        }
        return original(**{**pointed, **overrides})

    def from_env(cls: type[rxc.Config], exchange: str, **overrides: Any) -> rxc.Config:
        assert exchange == "binance", "README examples on the simulator speak Binance Spot"
        return binance(cls, **overrides)

    monkeypatch.setattr(rxc.Config, "binance", classmethod(binance))
    monkeypatch.setattr(rxc.Config, "from_env", classmethod(from_env))


def test_every_python_block_is_executed() -> None:
    """No recipe escapes the suite: every python block carries a marker, and a snippet
    that cannot run here is followed by an executed block doing the same."""
    blocks = _blocks()
    unmarked = [line for marker, _, line in blocks if marker is None]
    assert unmarked == [], f"README python blocks without a runs-in-tests marker: {unmarked}"
    for index, (marker, _, line) in enumerate(blocks):
        if marker is not None and marker.startswith("not-executed:"):
            assert marker.split(":", 1)[1].strip(), f"line {line}: say why it is not executed"
            follower = blocks[index + 1][0] if index + 1 < len(blocks) else None
            assert follower in (*_RUN_HERE, "bus-example"), f"line {line}: no executed twin"
    assert len(_runnable()) >= 8


@pytest.mark.parametrize("index", range(len(_runnable())), ids=_ids())
def test_readme_example_runs(index: int, request: pytest.FixtureRequest) -> None:
    """Each example runs without error (against the simulator, no network)."""
    marker, code, line = _runnable()[index]
    if marker == "runs-in-tests-on-simulator":
        request.getfixturevalue("exchange_is_the_simulator")
    _run(code, f"readme_example_line{line}")
