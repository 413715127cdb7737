"""The README's examples run: every code block after a ``.. runs-in-tests`` marker is executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.rst"
_BLOCK = re.compile(
    r"^\.\. runs-in-tests\s*\n\s*\n\.\. code-block:: python\s*\n\s*\n((?:    .*\n|\s*\n)+)",
    re.MULTILINE,
)


def _blocks() -> list[str]:
    text = README.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        lines = match.group(1).splitlines()
        blocks.append("\n".join(line[4:] for line in lines) + "\n")
    return blocks


def test_readme_has_executable_examples() -> None:
    """The marker is used: the README keeps several executed examples."""
    assert len(_blocks()) >= 4


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_example_runs(index: int) -> None:
    """Each marked example runs without error (against the simulator, no network)."""
    code = _blocks()[index]
    namespace: dict[str, object] = {"__name__": f"readme_example_{index}"}
    exec(compile(code, f"README.rst[example {index}]", "exec"), namespace)
    # An example written as pytest tests: run what it defines, so it cannot rot.
    ran = 0
    for name, obj in list(namespace.items()):
        if name.startswith("Test") and isinstance(obj, type):
            instance = obj()
            for attr in dir(instance):
                if attr.startswith("test_"):
                    getattr(instance, attr)()
                    ran += 1
        elif name.startswith("test_") and callable(obj):
            obj()
            ran += 1
    assert ran > 0 or "def test_" not in code
