"""Shared fixtures. Tests never touch the internet: servers run on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

_EXAMPLES_CANDIDATES = [
    Path(__file__).parent / "fixtures" / "examples.json",
]


@pytest.fixture(scope="session")
def examples() -> dict[str, Any]:
    """The exchanges' own documented example payloads (copied from shared/reference)."""
    for path in _EXAMPLES_CANDIDATES:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
    raise FileNotFoundError("tests/fixtures/examples.json is missing")
