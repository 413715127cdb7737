"""What PyPI and a fresh install see: the README renders, the metadata is complete, the
sdist holds the whole test suite, and the notebooks extra can run the notebooks headless.

``.ci/run`` also runs ``twine check --strict`` on the built sdist and wheel and installs
the wheel into a fresh venv to run the demo from it; these are the quick checks.
"""

from __future__ import annotations

import configparser
import io
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_readme_renders_on_pypi() -> None:
    """PyPI renders README.rst with readme_renderer and rejects an upload it cannot render
    (``twine check --strict`` also fails on warnings)."""
    readme_renderer = pytest.importorskip("readme_renderer.rst")
    problems = io.StringIO()
    html = readme_renderer.render((ROOT / "README.rst").read_text(), stream=problems)
    assert html is not None, problems.getvalue()
    assert problems.getvalue() == ""


def test_license_file_matches_the_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 rxconnector authors" in text
    metadata = _setup_cfg()["metadata"]
    assert metadata["license"] == "MIT"
    assert _lines(metadata["license_files"]) == ["LICENSE"]


def test_pyproject_declares_the_build_system() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    system = pyproject["build-system"]
    assert system["build-backend"] == "setuptools.build_meta"
    assert any(req.startswith("setuptools") for req in system["requires"])


def test_classifiers() -> None:
    classifiers = _lines(_setup_cfg()["metadata"]["classifiers"])
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    for prefix in ("Development Status ::", "Topic ::", "Operating System ::"):
        assert any(c.startswith(prefix) for c in classifiers), prefix
    # setuptools >= 77 warns about license classifiers next to an SPDX ``license``
    assert not any(c.startswith("License ::") for c in classifiers)


def test_the_notebooks_extra_runs_notebooks_headless() -> None:
    extras = _setup_cfg()["options.extras_require"]
    notebooks = {line.split(">")[0].split("=")[0] for line in _lines(extras["notebooks"])}
    assert {"nbclient", "nbconvert", "nbformat", "ipykernel"} <= notebooks


@pytest.mark.slow
def test_the_sdist_holds_the_whole_test_suite(tmp_path: Path) -> None:
    """All of ``tests/`` (fixtures and helpers too) and the notebooks the suite runs, or
    a user who unpacks the sdist gets a test suite that cannot pass."""
    pytest.importorskip("build")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("rxconnector-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "notebooks"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    tracked = [name for name in tracked if (ROOT / name).exists()]
    missing = sorted(set(tracked) - names)
    assert missing == []
    assert "LICENSE" in names and "pyproject.toml" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
